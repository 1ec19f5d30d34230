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

#endif /* TL_LOCK_H */
