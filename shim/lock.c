/* The library's locks, and the one thread-local pointer of the library,
 * tl__tls, whose address in each thread names the thread that holds a
 * lock (internal.h explains why a lock remembers its owner). The pointer
 * leads to the thread's state (thread.c), which is made on first use.
 */
#include "internal.h"
#include "lock.h"

#include <errno.h>
#include <sched.h>

/* Exported (but not part of the API) for the inline read path of
 * tasklocal.h, which mirrors the first fields of struct tl__thread. */
__attribute__((visibility("default"))) __thread struct tl__thread *tl__tls
    __attribute__((tls_model("initial-exec")));

uintptr_t tl__thread_token(void)
{
  return (uintptr_t)&tl__tls;
}

int tl__lock(struct tl__lock *lock)
{
  uintptr_t me = tl__thread_token();
  if (TL__UNLIKELY(atomic_load_explicit(&lock->owner, memory_order_relaxed) == me))
    return EDEADLK;
  for (unsigned spins = 0;; spins++) {
    uintptr_t expected = 0;
    if (atomic_compare_exchange_weak_explicit(&lock->owner, &expected, me, memory_order_acquire,
                                              memory_order_relaxed))
      return 0;
    if (spins < 64)
      tl__cpu_relax();
    else
      sched_yield();
  }
}

void tl__unlock(struct tl__lock *lock)
{
  atomic_store_explicit(&lock->owner, 0, memory_order_release);
}

/* fork's three phases for one lock (init.c): taken before, released in the
 * parent, reset in the child, where its owner may not exist. */
void tl__lock_atfork(struct tl__lock *lock, int phase)
{
  if (phase < 0)
    tl__lock(lock);
  else if (phase == 0)
    tl__unlock(lock);
  else
    tl__lock_reset(lock);
}

void tl__lock_reset(struct tl__lock *lock)
{
  atomic_store_explicit(&lock->owner, 0, memory_order_relaxed);
}
