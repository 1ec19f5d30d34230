/* lock.c's inline part. */
#ifndef TL_LOCK_H
#define TL_LOCK_H

#include "internal.h"

/* tl__lock, inline when the lock is free: the once-a-task-life lock of
 * makecontext costs one compare-and-swap and no call. A held lock,
 * including one this thread holds (a signal handler), takes tl__lock. */
static inline int tl__lock_fast(struct tl__lock *lock)
{
  uintptr_t expected = 0;
  if (TL__LIKELY(atomic_compare_exchange_strong_explicit(&lock->owner, &expected, (uintptr_t)&tl__tls,
                                                          memory_order_acquire, memory_order_relaxed)))
    return 0;
  return tl__lock(lock);
}

#endif /* TL_LOCK_H */
