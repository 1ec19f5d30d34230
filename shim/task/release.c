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

#include <link.h>

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

/* Which tasks of the tree a release ends. */
struct pick {
  int (*fn)(const struct tl__task *t, const struct pick *p);
  uintptr_t a;                             /* the memory given back starts here */
  int how;                                 /* TL__RELEASE_* */
};

static int pick_held(const struct tl__task *t, const struct pick *p)
{
  return held_by(t, p->a, p->how);
}

/* Ends, batch by batch, the tasks whose stacks end in (a, b] that the pick
 * takes and that can be claimed: claimed with the registry's lock held,
 * ended without it (destructors may free memory in turn). */
static uint64_t release_picked(struct tl__thread *th, uintptr_t a, uintptr_t b, const struct pick *p)
{
  uint64_t n = 0;
  for (;;) {
    struct tl__task *batch[BATCH], *t;
    uint32_t k = 0;
    /* A signal handler that interrupted this thread while it held the
     * lock gives up: its free goes on, and the task stays as it was. */
    if (tl__registry_lock() != 0)
      return n;
    for (t = tl__tree_first_in(a, b); t != NULL && k < BATCH; t = tl__tree_next_in(t, b)) {
      a = t->hi - 1;                       /* where the next batch looks again: claimed ones are gone */
      if (p->fn(t, p) && tl__task_claim_release(t))
        batch[k++] = t;
    }
    tl__registry_unlock();
    if (k != 0) {
      struct ends e = {th, batch, k};
      tl__run_on_own_stack(th->current, RELEASE_STACK_NEED, end_all, &e);
    }
    n += k;
    if (t == NULL)
      return n;
  }
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
  const struct pick p = {pick_held, a, how};
  return release_picked(th, a, b, &p);
}

/* ------------------------------------------------------------------------
 * Displaced tasks, at exit
 *
 * A pool may end a task by giving its stack to the next task, made in
 * another ucontext_t, while the old one is still suspended: the old task
 * can never run again (its frames are being overwritten). But a
 * stack-copying library (cloudwu's coroutine, libco's shared stacks) does
 * the same to coroutines that it will resume: it copies each one's frames
 * out of the shared stack when it yields and back before resuming it. The
 * two look alike when the new task is made, so nothing is released then
 * (the stack tree marks the old task displaced: TL__TREE_DISPLACED, with
 * ran_on cleared), and the difference shows later: a copied coroutine is
 * resumed, which sets ran_on again, and a stack one of whose displaced
 * tasks ran again is a copying one.
 *
 * At exit, before the report's scan, a suspended task that was displaced
 * and has not run since is released, as its stack's giving back would
 * release it, unless its stack is a copying one, lies in the static data
 * of a loaded object, or lies inside another task's stack (coroutines
 * carved from a coroutine's stack). A copying library's coroutine that was
 * displaced and then never resumed is released too: the report may miss
 * it, but it never names a task that a pool ended.
 * ------------------------------------------------------------------------ */

/* Another task of the same stack ran after it was displaced (copying), or
 * a task's stack holds t's (carved): looked for among the tasks from the
 * newest of t's top down in tree order, newer and older than t alike, a
 * bounded walk as tl__tree_find's. */
static int kept_by_stack(const struct tl__task *t)
{
  const struct tl__task *n = tl__tree_ceil(t->hi, UINT64_MAX);
  for (int i = 0; n != NULL && i < 64; i++, n = tl__tree_next_in(n, UINTPTR_MAX)) {
    if (n == t)
      continue;
    if (n->lo == t->lo && n->hi == t->hi) {
      if ((TL__LOAD(n->in_tree) & TL__TREE_DISPLACED) && TL__LOAD(n->ran_on) != 0)
        return 1;
    } else if (n->lo <= t->lo) {
      return 1;
    }
  }
  return 0;
}

/* The writable segments of the loaded objects, gathered before the lock
 * is taken (dl_iterate_phdr takes the dynamic linker's). A stack in one of
 * them is static data. */
#define STATIC_MAX 256
static struct {
  uintptr_t lo[STATIC_MAX], hi[STATIC_MAX];
  int n;
} statics;

static int gather_static(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  (void)arg;
  for (int i = 0; i < info->dlpi_phnum && statics.n < STATIC_MAX; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W)) {
      statics.lo[statics.n] = info->dlpi_addr + ph->p_vaddr;
      statics.hi[statics.n++] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
  }
  return 0;
}

static int in_static(const struct tl__task *t)
{
  if (statics.n == STATIC_MAX)
    return 1;                              /* not all known: taken as static, never released */
  for (int i = 0; i < statics.n; i++)
    if (t->lo >= statics.lo[i] && t->lo < statics.hi[i])
      return 1;
  return 0;
}

static int pick_displaced(const struct tl__task *t, const struct pick *p)
{
  (void)p;
  return tl__displaced(t) && !kept_by_stack(t) && !in_static(t);
}

uint64_t tl__release_displaced(void)
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return 0;
  statics.n = 0;
  dl_iterate_phdr(gather_static, NULL);
  const struct pick p = {pick_displaced, 0, 0};
  return release_picked(th, 0, UINTPTR_MAX, &p);
}
