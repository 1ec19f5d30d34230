/* ctxmap.c: which task saved itself in a ucontext_t, and the hints in front of it. */
#ifndef TL_CTXMAP_H
#define TL_CTXMAP_H

#include "../internal.h"
#include "../thread.h"

void tl__map_save(struct tl__task *t, const void *ctx);
void tl__map_del(struct tl__task *t);
struct tl__task *tl__map_get(const void *ctx);
void tl__map_atfork(int phase);

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
struct tl__task *tl__hint_get(struct tl__thread *th, const void *ctx); /* the hint's task, if still mapped */

#endif /* TL_CTXMAP_H */
