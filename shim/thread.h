/* thread.c's inline part: the calling thread's state, its read view, and
 * the empty value table that every scope starts with. */
#ifndef TL_THREAD_H
#define TL_THREAD_H

#include "internal.h"

extern struct tl__ent tl__empty_ent;
#define tl__vt_empty ((struct tl__vtab *)(void *)&tl__empty_ent)

static inline void tl__view_drop(void)
{
  __atomic_store_n(&tl__view.span, 0, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}


static inline struct tl__thread *tl__self(void)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY))
    th = tl__thread_init();
  return th;
}

#endif /* TL_THREAD_H */
