/* report.c: what a leak report or a dump says. */
#ifndef TL_REPORT_H
#define TL_REPORT_H

#include "internal.h"
#include "writer.h"

void tl__report_body(struct tl__job *j);   /* the leak report or the dump */

#endif /* TL_REPORT_H */
