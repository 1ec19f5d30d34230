/* The registry of task records: where they come from, their extensions,
 * the list of live tasks and the abandoned ones kept for the leak report,
 * the ids and the counts, and each thread's ended list of finished tasks
 * whose records wait for release or reuse. One lock guards the lists and the counts, and
 * the stack-range tree (stacktree.c) with them, so that a makecontext
 * enters a task in both under one hold of the lock.
 *
 * The common loop of a scheduler (make a task in the context and on the
 * stack of the one that just finished, make.c's remake) takes no lock and
 * writes nothing another thread writes (threads scale as without the shim:
 * doc/performance.md): its record comes back in place, its id from a block of ids
 * its thread took for itself, and its counts are its thread's own
 * (made_here, finished_here), summed when they are read. Free records are
 * kept per thread too, so that the records of tasks running on different
 * threads seldom share a cache line.
 */
#include "../internal.h"
#include "registry.h"
#include "../lock.h"
#include "../alloc.h"
#include "../thread.h"
#include "stacktree.h"
#include "ctxmap.h"
#include "events.h"

#include <errno.h>

/* The registry: every record, live or free, and the counts. Its lock also
 * guards the stack-range tree, which changes with the live list. */
static struct {
  struct tl__lock lock;                    /* the live list, the counts, and the tree */
  struct tl__task *live;                   /* made tasks that have not ended, and roots */
  struct tl__task *pool;                   /* free records beyond what threads keep */
  struct tl__counts n;
  struct tl__task *kept;                   /* abandoned tasks kept for the leak report */
  uint64_t kept_n;                         /* how many are kept */
  /* Ids are handed out one at a time where a task enters the tree (under
   * the lock) and ID_BLOCK at a time to threads (without it), from one
   * counter, on a cache line of its own. */
  _Alignas(64) _Atomic uint64_t next_id;
} registry __attribute__((aligned(64))) = {.next_id = 1};

#define ID_BLOCK 1024
/* For debuggers (debug.c). */
const struct tl__debug_tasks tl__debug_tasks = {&registry.live, &registry.kept, &registry.n.made, &registry.n.finished, &registry.n.abandoned, &registry.n.peak,
                                                &registry.n.released};

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

int tl__registry_lock(void)
{
  return tl__lock(&registry.lock);
}

void tl__registry_unlock(void)
{
  tl__unlock(&registry.lock);
}

/* The counts change here only, with registry.lock held: a task made enters the
 * live list; one that ends leaves it (if it is there: a task caught
 * between its thread's counts and these is counted by tl__registry_finished)
 * and adds to the count of its way of ending. */
void tl__registry_made(struct tl__task *t)
{
  if (!tl__live_has(t))
    tl__live_add(t);                       /* a record reused in place is there already */
  registry.n.made++;
  if (++registry.n.live > registry.n.peak)
    registry.n.peak = registry.n.live;
}

void tl__registry_unmade(void)
{
  registry.n.made--;
}

void tl__registry_ended(struct tl__task *t, enum tl__gone how)
{
  if (tl__live_has(t)) {
    tl__live_del(t);
    registry.n.live--;
  }
  if (how == TL__GONE_FINISHED)
    registry.n.finished++;
  else if (how == TL__GONE_ABANDONED)
    registry.n.abandoned++;
  else if (how == TL__GONE_RELEASED)
    registry.n.released++;
}

/* n tasks finished on a thread, counted there until now (tl__ended_release), whose
 * records may still be in the live list. */
void tl__registry_finished(uint32_t n)
{
  registry.n.finished += n;
  registry.n.live -= n;
}

uint64_t tl__registry_new_id(void)
{
  return atomic_fetch_add_explicit(&registry.next_id, 1, memory_order_relaxed);
}

/* A task reused in place must stay the newest of its stack in the tree,
 * whose order among equal stacks is by id: its new id is above the old
 * one. Every id handed out so far is below the counter, so a new block
 * always is. */
uint64_t tl__registry_id_after(struct tl__thread *th, uint64_t above)
{
  if (TL__UNLIKELY(th->id_next >= th->id_end || th->id_next <= above)) {
    th->id_next = atomic_fetch_add_explicit(&registry.next_id, ID_BLOCK, memory_order_relaxed);
    th->id_end = th->id_next + ID_BLOCK;
  }
  return th->id_next++;
}

/* Records are carved from pages that are never given back, and kept free
 * per thread (th->pool), up to POOL_KEEP; a record freed on another thread
 * than the one it came from joins that thread's records, and beyond
 * POOL_KEEP the registry's, which a thread with none takes from before it
 * carves a new page. So a thread that only makes tasks that another thread
 * ends (an M:N hand-off) takes back the records its partner frees, and
 * memory stays proportional to the live tasks. Both are called with registry.lock
 * held, on th's own thread or for a thread a forked child does not have. */
#define POOL_KEEP 1024

struct tl__task *tl__record_alloc(struct tl__thread *th)
{
  if (th->pool == NULL && registry.pool != NULL) {
    for (int i = 0; i < 64 && registry.pool != NULL; i++) {
      struct tl__task *t = registry.pool;
      registry.pool = t->lnext;
      t->lnext = th->pool;
      th->pool = t;
      th->pool_n++;
    }
  }
  if (th->pool == NULL) {
    size_t size = 64 * 1024, n = size / sizeof(struct tl__task);
    char *page = tl__pages(size);
    for (size_t i = 0; page != NULL && i < n; i++) {
      struct tl__task *t = (struct tl__task *)(page + i * sizeof(struct tl__task));
      t->lnext = th->pool;
      th->pool = t;
      th->pool_n++;
    }
  }
  struct tl__task *t = th->pool;
  if (t != NULL) {
    th->pool = t->lnext;
    th->pool_n--;
  }
  return t;
}

struct tl__task_ext *tl__task_ext(struct tl__task *t)
{
  if (t->x == NULL)
    t->x = tl__calloc(1, sizeof *t->x);
  return t->x;
}

/* The id goes to 0 first: a stale pointer to this record (a context
 * copied after the task ended) no longer matches. The extension is freed
 * by the caller. */
void tl__record_free(struct tl__thread *th, struct tl__task *t)
{
  TL__STORE(t->id, 0);
  atomic_store_explicit(&t->state, TL__FINISHED, memory_order_relaxed);
  if (th->pool_n < POOL_KEEP) {
    t->lnext = th->pool;
    th->pool = t;
    th->pool_n++;
  } else {
    t->lnext = registry.pool;
    registry.pool = t;
  }
}

/* The live list, with registry.lock held (a root task enters it uncounted). */
void tl__live_add(struct tl__task *t)
{
  t->lprev = NULL;
  t->lnext = registry.live;
  if (registry.live)
    registry.live->lprev = t;
  registry.live = t;
}

int tl__live_has(const struct tl__task *t)
{
  return t->lprev != NULL || registry.live == t;
}

void tl__live_del(struct tl__task *t)
{
  if (t->lprev)
    t->lprev->lnext = t->lnext;
  else if (registry.live == t)
    registry.live = t->lnext;
  if (t->lnext)
    t->lnext->lprev = t->lprev;
  t->lnext = t->lprev = NULL;
}

/* With registry.lock held: an abandoned task leaves the live list for the kept
 * ones, if there is room (TL__KEEP_MAX), and is counted; returns whether
 * it was kept (if not, tl__registry_ended counts it). */
int tl__kept_add(struct tl__task *t)
{
  if (registry.kept_n >= TL__KEEP_MAX)
    return 0;
  tl__live_del(t);
  registry.n.abandoned++;
  registry.n.live--;
  t->lnext = registry.kept;
  t->lprev = NULL;
  if (registry.kept)
    registry.kept->lprev = t;
  registry.kept = t;
  registry.kept_n++;
  return 1;
}

/* Walks the live and kept tasks with registry.lock held. */
int tl__task_foreach(int (*fn)(struct tl__task *t, void *arg), void *arg)
{
  if (tl__lock(&registry.lock) != 0)
    return EDEADLK;
  int r = 0;
  for (struct tl__task *t = registry.live; t != NULL && r == 0; t = t->lnext)
    r = fn(t, arg);
  for (struct tl__task *t = registry.kept; t != NULL && r == 0; t = t->lnext)
    r = fn(t, arg);
  tl__unlock(&registry.lock);
  return r;
}

void tl__task_stats(struct tl__stats *st)
{
  if (tl__lock(&registry.lock) != 0)
    return;
  /* Under the lock, which ended_release takes to move a thread's count of
   * finished tasks into the registry's: each task is counted once. */
  struct tl__thread_counts c;
  tl__thread_stats(&c);
  st->switches = c.switches;
  st->untracked = c.untracked;
  st->created = registry.n.made + c.made;
  st->finished = registry.n.finished + c.finished + c.ended;
  st->abandoned = registry.n.abandoned;
  st->released = registry.n.released + c.released;
  st->peak = registry.n.peak;
  tl__unlock(&registry.lock);
}

void tl__registry_atfork(int phase)
{
  tl__lock_atfork(&registry.lock, phase);
}

/* ------------------------------------------------------------------------
 * Finished tasks waiting for their records' release, and the teardown of
 * a record's extension
 * ------------------------------------------------------------------------ */

/* A record's extension goes: the layers that hung their parts on it
 * (bindings, values kept for the report, deferred calls, thread-local
 * state) free them at the news (bind.c); its name and backtrace are the
 * record's own. */
void tl__ext_destroy(struct tl__task_ext *x)
{
  TL__ANNOUNCE(NULL, TL__NEWS_FREED, .x = x);
  tl__free(x->name);
  tl__free(x->bt);
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
