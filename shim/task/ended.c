/* Finished tasks whose records wait, in their thread's ended list, for
 * release or for reuse in place by the next makecontext; and the teardown
 * of a record's extension.
 */
#include "../internal.h"
#include "ended.h"
#include "../alloc.h"
#include "stacktree.h"
#include "ctxmap.h"
#include "registry.h"
#include "../vtab.h"
#include "../scope.h"
#include "../tasktls.h"

void tl__ext_destroy(struct tl__task_ext *x)
{
  tl__free(x->name);
  tl__free(x->bt);
  if (x->held != NULL)
    tl__vtab_free(x->held);
  tl__free(x->binds);
  tl__free(x->shared);
  tl__free(x->sets);
  tl__tasktls_free(x->tls);
  for (struct tl__defer *d = x->defers, *next; d != NULL; d = next) {
    next = d->next;
    tl__free(d);
  }
  tl__free(x);
}

void tl__ext_free(struct tl__task *t)
{
  struct tl__task_ext *x = t->x;
  if (x == NULL)
    return;
  t->x = NULL;
  tl__ext_destroy(x);
}

/* A finished task is not released at once: it waits in its thread's ended
 * list until the thread takes the registry's lock anyway, at its next
 * makecontext (a full list, the thread's exit and the process's exit
 * release the list too). A waiting task is FINISHED, which every lookup
 * skips (tree_find, tl__predict, the reports), and it stays mapped at its
 * context until a makecontext takes that address over or the list is
 * released. In the common loop that makes each task in the ucontext_t of
 * the one before, the new task's map_save then replaces the entry in its
 * own pass instead of a removal under a lock of its own: a task life takes
 * the registry's lock once and its shard's lock once, not twice each
 * (and when ended_take can reuse the record in place, no map lock at all).
 * Memory stays proportional to the live tasks: at most TL__ENDED_MAX
 * records more a thread. A thread's finished tasks join the registry's
 * count of finished tasks and leave its live count at the same moment; tl__task_stats adds the ones not
 * counted yet, and the peak, taken at makecontext, may include up to
 * TL__ENDED_MAX finished tasks of each other thread. */

/* Removes the waiting tasks from the map, except the one at keep, whose
 * entry the makecontext under way replaces. */
void tl__ended_unmap(struct tl__thread *th, const void *keep)
{
  for (uint32_t i = 0; i < th->nended; i++) {
    struct tl__task *t = th->ended[i];
    if (TL__LOAD(t->mapped) && t->ctx != keep)
      tl__map_del(t);
  }
}

/* Called with the registry's lock held: counts the tasks that finished on th since the
 * last call and releases the waiting ones that have left the map (the one
 * that a makecontext is about to replace, or one whose map_del found its
 * shard locked by this very thread, waits for the next call). Their
 * extensions go to xs, for the caller to free without the lock; returns
 * how many. */
uint32_t tl__ended_release(struct tl__thread *th, struct tl__task_ext **xs)
{
  uint32_t fin = th->uncounted, kept = 0, n = 0;
  tl__registry_finished(fin);
  __atomic_store_n(&th->uncounted, 0, __ATOMIC_RELAXED);
  for (uint32_t i = 0; i < th->nended; i++) {
    struct tl__task *t = th->ended[i];
    if (TL__LOAD(t->mapped)) {
      th->ended[kept++] = t;
      continue;
    }
    tl__tree_del(t);
    if (tl__live_has(t))
      tl__live_del(t);
    if (t->x != NULL)
      xs[n++] = t->x;
    t->x = NULL;
    tl__record_free(th, t);
  }
  th->nended = kept;
  return n;
}

void tl__ext_destroy_all(struct tl__task_ext **xs, uint32_t n)
{
  while (n > 0)
    tl__ext_destroy(xs[--n]);
}

/* The task of th's ended list that is mapped at ctx: there can be only
 * one, and then it is the map's answer for ctx, found without the map. */
struct tl__task *tl__ended_at(struct tl__thread *th, const void *ctx)
{
  for (uint32_t i = 0; i < th->nended; i++) {
    struct tl__task *t = th->ended[i];
    if (t->ctx == ctx && TL__LOAD(t->mapped))
      return t;
  }
  return NULL;
}

/* Called with the registry's lock held, after ended_release. When old, the task last
 * mapped at the context being made, finished on this thread and waits
 * there with the same stack, its record becomes the new task's in place:
 * it stays in the live list, in the map at the same address, and in the
 * tree at the same position, which holds because the tree orders tasks of
 * one stack by decreasing id, old is the newest of its stack, and the new
 * id is newer still (the heap priority comes from the record's address,
 * which does not change). This is the loop of most programs: make a task
 * in a context, run it to its end, make the next one in the same context
 * and stack. Returns old, out of the ended list, or NULL. */
struct tl__task *tl__ended_take(struct tl__thread *th, struct tl__task *old, uintptr_t lo, uintptr_t hi)
{
  if (old->lo != lo || old->hi != hi || !old->in_tree)
    return NULL;
  for (uint32_t i = 0; i < th->nended; i++) {
    if (th->ended[i] == old) {
      if (tl__tree_ceil(hi, UINT64_MAX) != old)
        return NULL;
      th->ended[i] = th->ended[--th->nended];
      return old;
    }
  }
  return NULL;
}

/* Releases th's waiting tasks now. */
void tl__ended_flush(struct tl__thread *th)
{
  if (th->nended == 0 && th->uncounted == 0)
    return;
  struct tl__task_ext *xs[TL__ENDED_MAX];
  tl__ended_unmap(th, NULL);
  if (tl__registry_lock() != 0)
    return;
  uint32_t n = tl__ended_release(th, xs);
  tl__registry_unlock();
  tl__ext_destroy_all(xs, n);
}
