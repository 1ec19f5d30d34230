/* report/group.c: alike tasks grouped (private to shim/report/). */
#ifndef TL_REPORT_GROUP_H
#define TL_REPORT_GROUP_H

#include "../internal.h"
#include "scratch.h"

int tl__report_same_name(const struct report_task *a, const struct report_task *b);
void tl__report_group_tasks(void);         /* groups, ordered biggest first */

#endif /* TL_REPORT_GROUP_H */
