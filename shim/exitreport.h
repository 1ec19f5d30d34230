/* exitreport.c: the reports at exit and at _exit. */
#ifndef TL_EXITREPORT_H
#define TL_EXITREPORT_H

#include "internal.h"

void tl__report_exit(void);                /* leak report and stats line, at process exit */
void tl__report_quick_exit(void);          /* _exit: the stats line only */

#endif /* TL_EXITREPORT_H */
