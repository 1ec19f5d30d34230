/* identity.c: which task runs: the switch's prediction, repair. */
#ifndef TL_IDENTITY_H
#define TL_IDENTITY_H

#include "../internal.h"
#include "../thread.h"

struct tl__task *tl__predict(struct tl__thread *th, const ucontext_t *ucp);
struct tl__task *tl__task_at(struct tl__thread *th, uintptr_t sp); /* whose stack holds sp, or NULL */
struct tl__task *tl__resolve(struct tl__thread *th, uintptr_t sp); /* slow path of tl__task_now */

/* Code that runs for task t on a stack that need not be t's (the end of
 * t's scope, a destructor of one of its values) makes t current and the
 * override between these two: the fast paths of tl_get and tl_set trust
 * the current task while the stack pointer is in its stack, and
 * tl__resolve answers with the override when it is elsewhere (an
 * abandoned task's destructors run on its maker's stack). */
struct tl__as {
  struct tl__task *current, *override;
};

static inline struct tl__as tl__as_begin(struct tl__thread *th, struct tl__task *t)
{
  struct tl__as saved = {th->current, th->override};
  tl__view_drop();
  th->current = t;
  th->override = t;
  return saved;
}

static inline void tl__as_end(struct tl__thread *th, struct tl__as saved)
{
  th->override = saved.override;
  th->current = saved.current;
  tl__view_drop();
}

/* The task running now, checked against the stack pointer; NULL only when
 * the thread has no state yet and none could be made. */
static inline struct tl__task *tl__task_now(void)
{
  struct tl__thread *th = tl__self();
  if (TL__UNLIKELY(th == NULL))
    return NULL;
  struct tl__task *t = th->current;          /* never NULL once the thread has state */
  uintptr_t sp = tl__sp();
  if (TL__LIKELY(tl__in_stack(t, sp))) {
    if (TL__UNLIKELY(th->in_switch))
      th->in_switch = 0;
    return t;
  }
  return tl__resolve(th, sp);
}

#endif /* TL_IDENTITY_H */
