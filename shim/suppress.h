/* suppress.c: TASKLOCAL_SUPPRESSIONS, rules that keep tasks out of reports. */
#ifndef TL_SUPPRESS_H
#define TL_SUPPRESS_H

#include "internal.h"
#include "writer.h"

void tl__suppress_read(void);              /* at load: the file's rules */
int tl__suppress_active(void);             /* there are rules */
void tl__suppress_reset(void);             /* a report begins: every rule's count to 0 */
/* The rule that matches a task (its entry function, a frame of its
 * creation backtrace, or one of where it is suspended when ctx is given),
 * counted; or -1. */
int tl__suppress_task(void (*entry)(void), const uintptr_t *bt, int n, const void *ctx, uintptr_t lo, uintptr_t hi);
void tl__suppress_lines(struct tl__job *j); /* one line per rule: how many tasks it suppressed */

#endif /* TL_SUPPRESS_H */
