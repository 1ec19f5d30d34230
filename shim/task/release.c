/* Tasks released by the program: the memory that holds a suspended or
 * never-started task's stack is given back (free, realloc, munmap,
 * mremap: heapwatch.c sees the calls), so the task can never run again.
 * Most schedulers end a task this way: the task switches away for the
 * last time, and the scheduler, or the next task, frees its stack. Such a
 * task has ended (doc/lifetime.md): its values go through the destructor
 * rounds, its deferred calls run, its record and index entries go, and it
 * is counted as released. It is no leak.
 *
 * The tasks are found in the stack-range tree, with the registry's lock
 * held, and claimed there by their state (tl__task_claim_release) (so that two threads freeing the
 * same memory never end one task twice); their values are destroyed with
 * the lock released, since destructors may free memory in turn. All this
 * happens before the memory is given back: a destructor may still read a
 * value that lives on the task's stack.
 *
 * A running task is never released: a program that frees the stack its
 * task runs on has a bug of its own, which the library does not make
 * worse. (A task left by a jump that the tracker did not see is believed
 * running on its thread until the stack pointer says otherwise: on the
 * releasing thread that is checked first.) Neither is a root task, or a finished one (its record is on its
 * way out already).
 */
#include "../internal.h"
#include "release.h"
#include "../thread.h"
#include "stacktree.h"
#include "registry.h"
#include "../task.h"
#include "../ownstack.h"
#include "identity.h"

#define BATCH 64

/* The destructors of a released task run on the thread that frees its
 * stack, on whatever stack that is: the library's own one when less than
 * this is left (ownstack.c). A coroutine library may free an ended
 * coroutine from a helper whose stack is a few kilobytes. */
#define RELEASE_STACK_NEED (64u << 10)

/* Whether t, in the tree with its stack ending in (a, b], is one that
 * giving back [a, b) ends: for a heap block, only a stack that starts in
 * it (the block holds the stack); for a mapping, any whose top is in it
 * (the frames a suspended task resumes into are gone). */
static int held_by(const struct tl__task *t, uintptr_t a, int how)
{
  return how == TL__RELEASE_UNMAP || t->lo >= a;
}

struct ends {
  struct tl__thread *th;
  struct tl__task **t;
  uint32_t n;
};

static void end_all(void *arg)
{
  struct ends *e = arg;
  for (uint32_t i = 0; i < e->n; i++)
    tl__task_released(e->th, e->t[i]);
}

uint64_t tl__release_range(uintptr_t a, uintptr_t b, int how)
{
  if (b <= a)
    return 0;
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return 0;
  /* The running task, checked against the stack pointer: a task left by a
   * jump the tracker did not see (OpenSSL's async jobs go back to the
   * caller with _longjmp, and free their stacks from there) is believed
   * running until a read finds out, and a running task is not released. */
  tl__task_now();
  uint64_t n = 0;
  for (;;) {
    struct tl__task *batch[BATCH];
    uint32_t k = 0;
    /* A signal handler that interrupted this thread while it held the
     * lock gives up: its free goes on, and the task stays as it was. */
    if (tl__registry_lock() != 0)
      return n;
    for (struct tl__task *t = tl__tree_first_in(a, b); t != NULL && k < BATCH; t = tl__tree_next_in(t, b))
      if (held_by(t, a, how) && tl__task_claim_release(t))
        batch[k++] = t;
    tl__registry_unlock();
    if (k != 0) {
      struct ends e = {th, batch, k};
      tl__run_on_own_stack(th->current, RELEASE_STACK_NEED, end_all, &e);
    }
    n += k;
    if (k < BATCH)
      return n;
  }
}
