/* ownstack.c: a stack of the library's own, for callers whose is small. */
#ifndef TL_OWNSTACK_H
#define TL_OWNSTACK_H

#include "internal.h"

/* Whether less than need bytes are left on the stack of task t, which
 * runs the caller. */
int tl__stack_small(const struct tl__task *t, size_t need);
/* Runs fn(arg), on the library's own stack when less than need bytes are
 * left on the caller's (that of task here). */
void tl__run_on_own_stack(const struct tl__task *here, size_t need, void (*fn)(void *arg), void *arg);
void tl__own_stack_range(uintptr_t *lo, uintptr_t *hi); /* 0, 0 before its first use */
void tl__own_stack_atfork(int phase);      /* -1 before fork, 0 parent, 1 child */

#endif /* TL_OWNSTACK_H */
