/* identity.c: which task runs: the switch's prediction, repair. */
#ifndef TL_IDENTITY_H
#define TL_IDENTITY_H

#include "../internal.h"
#include "../thread.h"

/* Each thread remembers a few recent answers of the context map
 * (tl__hint_put), so that the common switch (the same few contexts again
 * and again) takes no lock. A hint is only a guess: it counts when the
 * task still has the same id and still last saved itself at that address.
 * Records are never unmapped, so reading a stale one is safe. */
static inline unsigned tl__hint_index(const void *ctx)
{
  return (unsigned)((((uint64_t)(uintptr_t)ctx >> 4) * 0x9e3779b97f4a7c15ull) >> 61);
}

/* The hint for ctx, in either of its two ways, when its task still has
 * the hint's id and still last saved itself at ctx; or NULL. */
static inline struct tl__hint *tl__hint_slot(struct tl__thread *th, const void *ctx)
{
  struct tl__hint *h = &th->hint[tl__hint_index(ctx)];
  if (h->ctx != ctx) {
    h = &th->hint[tl__hint_index(ctx) ^ 1];
    if (h->ctx != ctx)
      return NULL;
  }
  struct tl__task *t = h->task;
  if (t == NULL || __atomic_load_n(&t->id, __ATOMIC_RELAXED) != h->id || __atomic_load_n(&t->ctx, __ATOMIC_RELAXED) != ctx)
    return NULL;
  return h;
}

static inline struct tl__task *tl__hint_task(struct tl__thread *th, const void *ctx)
{
  struct tl__hint *h = tl__hint_slot(th, ctx);
  return h != NULL ? h->task : NULL;
}

void tl__hint_put(struct tl__thread *th, const void *ctx, struct tl__task *t);
struct tl__task *tl__hint_get(struct tl__thread *th, const void *ctx);
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
