/* lock.c: locks, and tl__tls, the one thread-local pointer. */
#ifndef TL_LOCK_H
#define TL_LOCK_H

#include "internal.h"

/* The library's locks (struct tl__lock, in internal.h, explains them),
 * and the one thread-local pointer of the library. */
uintptr_t tl__thread_token(void);          /* unique per thread, needs no allocation */
int tl__lock(struct tl__lock *lock);       /* 0, or EDEADLK when this thread already holds it */
void tl__unlock(struct tl__lock *lock);
void tl__lock_reset(struct tl__lock *lock); /* in a forked child: the owner thread is gone */
void tl__lock_atfork(struct tl__lock *lock, int phase); /* -1 lock, 0 unlock, 1 reset */
extern __thread struct tl__thread *tl__tls __attribute__((tls_model("initial-exec")));

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
