/* The task module's interface (shim/task/): a task made by makecontext
 * (task/make.c), started, ended, released or abandoned (task/life.c). The
 * layers that follow a task's life hear of it through task/events.h. */
#ifndef TL_TASK_H
#define TL_TASK_H

#include "internal.h"

struct tl__task *tl__task_make(ucontext_t *ucp, void (*entry)(void)); /* before the real makecontext; NULL: untracked */
struct tl__task *tl__task_remake(struct tl__thread *th, ucontext_t *ucp, void (*entry)(void)); /* the two loops; NULL: ask tl__task_make */
void tl__task_begin(struct tl__task *t, uint64_t id); /* from tl__trampoline */
void tl__task_end(struct tl__task *t, uint64_t id, const ucontext_t *const *link_slot); /* from the trampoline */
void tl__destroy_values(struct tl__thread *th, struct tl__task *t); /* the end of a task's scope */
int tl__task_claim_release(struct tl__task *t); /* never started or suspended -> released, once; 1 if so */
void tl__task_released(struct tl__thread *th, struct tl__task *t); /* claimed: it ends here */

#endif /* TL_TASK_H */
