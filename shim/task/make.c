/* makecontext's side of a task's life: every way a call makes a task,
 * each one decision in C (the never-started loop of arch/x86_64.S's
 * makecontext follows tl__task_remake's, and check_fastpath compares the
 * two): the record of the task that just finished in this context reused
 * in place (remake), the never-started task made last in this context
 * released in place (remake_unstarted), and everything else
 * (make_general). life.c ends what is made here.
 */
#include "../internal.h"
#include "../task.h"
#include "life.h"
#include "../options.h"
#include "../thread.h"
#include "stacktree.h"
#include "ctxmap.h"
#include "registry.h"
#include "identity.h"
#include "events.h"
#include "../backtrace.h"
#include "../keys.h"
#include "../vtab.h"
#include "../bind.h"
#include "../trace.h"

#include <string.h>

/* The new task's stack [lo, hi) and t's overlap: t's stack is taken. */
static int stack_taken(const struct tl__task *t, uintptr_t lo, uintptr_t hi)
{
  return t->lo < hi && lo < t->hi;
}

/* Whether making a context at t's address abandons t. Once a task has
 * started, the context it was made in is spent: only a switch that saves
 * it there again makes the address its own. QEMU makes every coroutine in
 * the same local ucontext_t and then switches them by siglongjmp; each new
 * makecontext there must not abandon the coroutines already running. */
static int abandonable(const struct tl__task *t, const struct tl__task *cur)
{
  uint32_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
  if ((t->flags & TL__F_STARTED) && (t->flags & TL__F_MADE))
    return 0;
  return t != cur && !(t->flags & TL__F_ROOT) && (st == TL__NEW || st == TL__SUSPENDED);
}

/* t's fields as a new task made by cur begins them. */
static inline void record_fill(struct tl__task *t, struct tl__task *cur, void (*entry)(void))
{
  atomic_store_explicit(&t->vt, tl__vt_empty, memory_order_relaxed);
  t->entry = entry;
  t->parent = cur ? cur->id : 0;
  t->flags = 0;
  t->ran_on = 0;
  t->x = NULL;
  atomic_store_explicit(&t->state, TL__NEW, memory_order_relaxed);
}

/* Called with the registry's lock held: t becomes the record of a new task made by
 * cur, whether it comes from the pool (zeroed, with its stack) or is
 * reused in place (ended_take). */
static inline void record_start(struct tl__task *t, struct tl__task *cur, void (*entry)(void))
{
  /* The id first: it is part of the tree's order. */
  TL__STORE(t->id, tl__registry_new_id());
  if (!t->in_tree) {
    /* Indexed now, in the same pass: nothing can switch to it before the
     * real makecontext has returned. */
    tl__tree_add(t);
  }
  record_fill(t, cur, entry);
  tl__registry_made(t);
}

/* One more in a count of th's own, which other threads read (the stats
 * line sums them: thread.c). */
static inline void count_here(uint64_t *count)
{
  __atomic_store_n(count, *count + 1, __ATOMIC_RELAXED);
}

/* t, reused in place on th without a lock, becomes a new task made by cur:
 * an id newer than its old one (the tree's order among the tasks of one
 * stack holds), its fields begun afresh, and one made on th. */
static inline void renew(struct tl__thread *th, struct tl__task *t, struct tl__task *cur, void (*entry)(void))
{
  TL__STORE(t->id, tl__registry_id_after(th, t->id));
  record_fill(t, cur, entry);
  count_here(&th->made_here);
}

/* The loop most programs run, without a lock: the only task waiting in
 * th's ended list, the only one finished here and not counted yet,
 * finished in this very context, on this very stack, and its record
 * becomes the new task's. It stays where it is in the live list, in the
 * map at the same address, and in the tree at the same position, which
 * holds because the tree orders the tasks of one stack by decreasing id,
 * the record is the newest of its stack, and the new id is newer still
 * (tl__registry_id_after); its record says whether a newer task of its
 * stack is in the tree (stacktree.c). Nothing else can be at ucp (a map entry is
 * unique), so there is nothing to abandon. The one finished and the one
 * made are counted on th (the number of live tasks does not change), and
 * nothing is written that another thread writes: threads that each run
 * their own loop scale as they do without the shim. Two threads cannot
 * make tasks on one stack at the same time in a working program, so
 * nothing can make another task of this stack while the record is reused.
 * The general path handles everything else. */
static inline __attribute__((always_inline)) struct tl__task *remake(struct tl__thread *th, struct tl__task *cur, const ucontext_t *ucp, uintptr_t lo,
                               uintptr_t hi, void (*entry)(void))
{
  if (th->nended != 1 || th->uncounted != 1)
    return NULL;
  struct tl__task *t = th->ended[0];
  if (t->ctx != ucp || !TL__LOAD(t->mapped) || t->lo != lo || t->hi != hi || TL__LOAD(t->in_tree) != TL__TREE_IN)
    return NULL;
  count_here(&th->finished_here);
  __atomic_store_n(&th->uncounted, 0, __ATOMIC_RELAXED);
  th->nended = 0;
  struct tl__task_ext *x = t->x;
  renew(th, t, cur, entry);
  if (x != NULL)
    tl__ext_destroy(x);
  return t;
}

/* The other loop, of programs that make contexts and never run them (the
 * Portable Coroutine Library's benchmark makes 27 million): t, the task
 * made last in this context (the thread's hint for it), on this stack,
 * never started, is released by this makecontext, which takes its stack;
 * its record becomes the new task's in place, without a lock, as in
 * remake. Only when nothing of it needs more than that: no values to
 * destroy, no extension (a name, a backtrace), and no leak report. */
/* Whether t, made in the context now made again, is a never-started task
 * that remake_unstarted takes: mapped there, made where it is, on this
 * very stack, holding nothing (no values, no extension), and no leak
 * report asked for. extra: flags that t must not have either. */
static inline int unstarted_takeable(const struct tl__task *t, const struct tl__task *cur, uintptr_t lo, uintptr_t hi,
                                     unsigned extra)
{
  return TL__LOAD(t->mapped) && t != cur && !tl__opt.leaks && t->x == NULL && t->lo == lo && t->hi == hi &&
         atomic_load_explicit(&t->state, memory_order_relaxed) == TL__NEW &&
         (t->flags & (TL__F_MADE | TL__F_STARTED | TL__F_ROOT | extra)) == TL__F_MADE &&
         atomic_load_explicit(&t->vt, memory_order_relaxed) == tl__vt_empty && TL__LOAD(t->in_tree) == TL__TREE_IN;
}

static inline __attribute__((always_inline)) struct tl__task *remake_unstarted(struct tl__thread *th, struct tl__task *cur,
                                                                               struct tl__task *t, uintptr_t lo, uintptr_t hi,
                                                                               void (*entry)(void))
{
  if (t == NULL || !unstarted_takeable(t, cur, lo, hi, 0))
    return NULL;
  TL__ANNOUNCE(th, TL__NEWS_RELEASED, .t = t);
  TL__ANNOUNCE(th, TL__NEWS_GONE, .t = t);
  count_here(&th->released_here);
  renew(th, t, cur, entry);
  return t;
}

/* The new task t is entered for ucp. The trampoline finds the task, its id
 * and the program's function in callee-saved registers of the new
 * context, which the real makecontext leaves alone (arch.h,
 * tl__uc_set_task): setcontext restores them, and a copy of the context
 * carries them along. The task takes ucp's entry in the map,
 * and the thread's hint for it: the switch that starts it usually comes
 * next, on this thread. Then its observers hear of it (valgrind is told
 * of its stack, the trace records it). */
static void commit(struct tl__thread *th, struct tl__task *t, ucontext_t *ucp, void (*entry)(void))
{
  tl__uc_set_task(ucp, t, t->id, entry);
  if (!(TL__LOAD(t->mapped) && t->ctx == ucp))
    tl__map_save(t, ucp);                  /* a record reused in place is there already */
  tl__flag_set(t, TL__F_MADE);
  tl__hint_put(th, ucp, t);
  TL__ANNOUNCE(th, TL__NEWS_MADE, .t = t);
}

/* The general case of tl__task_make: everything but the loop that remake
 * serves. *oldp is the task that was mapped at ucp and was not abandoned,
 * whose entry the new task takes (or loses, if none is made). */
static __attribute__((noinline)) struct tl__task *make_general(struct tl__thread *th, struct tl__task *cur,
                                                              const ucontext_t *ucp, uintptr_t lo, uintptr_t hi,
                                                              void (*entry)(void), struct tl__task **oldp)
{
  struct tl__task *t = NULL, *prevnew = NULL, *old;

  /* The same ucontext_t made again while its task is unfinished. Any
   * other task mapped there (running, finished, or started where it was
   * made) keeps its entry until commit replaces it in the same pass as
   * it enters the new task, or loses it here if no task is made. */
  old = tl__ended_at(th, ucp);
  if (old == NULL && (old = tl__hint_get(th, ucp)) == NULL)
    old = tl__map_get(ucp);
  if (old != NULL && abandonable(old, cur)) {
    if (!stack_taken(old, lo, hi))
      tl__task_abandon(th, old);
    else if (tl__task_claim_release(old))
      tl__task_released(th, old);
    old = NULL;
  }
  if (th->nended != 0)
    tl__ended_unmap(th, ucp);

  struct tl__task_ext *xs[TL__ENDED_MAX];
  uint32_t nxs = 0;
  if (tl__registry_lock() != 0) {
    *oldp = old;
    return NULL;
  }
  if (th->nended != 0 || th->uncounted != 0)
    nxs = tl__ended_release(th, xs);
  if (old != NULL && th->nended != 0)
    t = tl__ended_take(th, old, lo, hi);
  if (t != NULL) {
    if (t->x != NULL)
      xs[nxs++] = t->x;
  } else {
    /* A never-started task whose stack the new one takes: programs that
     * make millions of contexts and never run them reuse the same stacks. */
    prevnew = tl__tree_ceil(hi, UINT64_MAX);
    if (prevnew != NULL && (prevnew->hi != hi || prevnew->lo != lo ||
                            atomic_load_explicit(&prevnew->state, memory_order_relaxed) != TL__NEW ||
                            !abandonable(prevnew, cur)))
      prevnew = NULL;
    t = tl__record_alloc(th);
    if (t != NULL) {
      memset(t, 0, sizeof *t);
      t->lo = lo;
      t->hi = hi;
    }
  }
  if (t != NULL)
    record_start(t, cur, entry);
  tl__registry_unlock();
  tl__ext_destroy_all(xs, nxs);
  if (prevnew != NULL && tl__task_claim_release(prevnew))
    tl__task_released(th, prevnew);
  *oldp = old;
  return t;
}

/* Whether t, the task of ucp's hint, is one remake_unstarted takes, and
 * holds nothing that its release has to undo (no stack registered with
 * valgrind, no thread it ran on): then the new task needs only its id, its
 * function and its parent written into the record, since state, flags,
 * values, extension and thread are already a new task's. Its release and
 * the new task's making are news nobody acts on then (no trace: see
 * tl__task_remake; no stack for the tools to forget; no values, no saved
 * thread-local state), so none is announced, as the assembly does. */
static inline int unstarted_bare(const struct tl__task *t, const struct tl__task *cur, uintptr_t lo, uintptr_t hi)
{
  return unstarted_takeable(t, cur, lo, hi, TL__F_VG) && t->ran_on == 0;
}

/* The two loops of remake and remake_unstarted, as makecontext's first
 * try (interpose.c), before anything general: no inheritance, creation
 * backtrace or trace event to make, and the running task certain (the new
 * task's parent). The record is renewed in place, where it already is in
 * the context map and in ucp's hint, so that all that is left to do is
 * the context's registers, the tools, the flag and the hint. NULL: nothing
 * was changed, and tl__task_make takes the call. */
struct tl__task *tl__task_remake(struct tl__thread *th, ucontext_t *ucp, void (*entry)(void))
{
  if (TL__UNLIKELY(tl__opt.backtrace || atomic_load_explicit(&tl__inheriting, memory_order_relaxed) != 0 ||
                   tl__trace_on))
    return NULL;
  struct tl__task *cur = th->current;
  if (TL__UNLIKELY(!tl__in_stack(cur, tl__sp())))
    return NULL;
  uintptr_t lo = (uintptr_t)ucp->uc_stack.ss_sp, hi = lo + ucp->uc_stack.ss_size;
  struct tl__task *t = remake(th, cur, ucp, lo, hi, entry);
  if (t != NULL) {
    tl__flag_set(t, TL__F_MADE);
    tl__hint_put(th, ucp, t);
    TL__ANNOUNCE(th, TL__NEWS_MADE, .t = t);
  } else {
    /* A never-started task released by a new one in its context: the
     * hint for ucp names it (commit put it there) and goes on naming the
     * record, with the new id. */
    struct tl__hint *h = tl__hint_slot(th, ucp);
    if (h == NULL || !unstarted_bare(t = h->task, cur, lo, hi))
      return NULL;
    uint64_t id = tl__registry_id_after(th, t->id);
    TL__STORE(t->id, id);
    t->entry = entry;
    t->parent = cur->id;
    count_here(&th->released_here);
    count_here(&th->made_here);
    h->id = id;
  }
  if (TL__UNLIKELY(th->in_switch))
    th->in_switch = 0;                     /* as tl__task_now: the switch is done */
  tl__uc_set_task(ucp, t, t->id, entry);
  return t;
}

/* The child could not start with what it should inherit: it runs
 * untracked rather than with wrong values. Its values go as an abandoned
 * task's do, with it current for its destructors. */
static __attribute__((noinline)) void make_undo(struct tl__thread *th, struct tl__task *t)
{
  tl__destroy_values(th, t);
  tl__task_drop(th, t, TL__GONE_UNCOUNTED);
  if (tl__registry_lock() == 0) {
    tl__registry_unmade();
    tl__registry_unlock();
  }
}

struct tl__task *tl__task_make(ucontext_t *ucp, void (*entry)(void))
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return NULL;
  struct tl__task *cur = tl__task_now();
  uintptr_t lo = (uintptr_t)ucp->uc_stack.ss_sp, hi = lo + ucp->uc_stack.ss_size;
  struct tl__task *old = NULL;
  struct tl__task *t = remake(th, cur, ucp, lo, hi, entry);
  if (TL__UNLIKELY(t == NULL) && (t = remake_unstarted(th, cur, tl__hint_get(th, ucp), lo, hi, entry)) == NULL)
    t = make_general(th, cur, ucp, lo, hi, entry, &old);
  else
    old = t;
  if (t != NULL && TL__UNLIKELY(atomic_load_explicit(&tl__inheriting, memory_order_relaxed) != 0) &&
      tl__inherit(cur, t) != 0) {
    make_undo(th, t);
    t = NULL;
  }
  if (TL__UNLIKELY(t == NULL)) {
    if (old != NULL)
      tl__map_del(old);
    return NULL;
  }
  if (TL__UNLIKELY(tl__opt.backtrace))
    tl__bt_capture_task(t);
  commit(th, t, ucp, entry);
  return t;
}
