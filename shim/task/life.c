/* The life of a task once made: started by the trampoline, ended when its
 * function returns, released when its stack is given back or taken by a
 * new task (release.c finds those given back), or abandoned when its
 * ucontext_t is made again while its stack is still held
 * (doc/lifetime.md). make.c makes it. Each step is announced to the
 * observers of events.h, in the order the step needs them told: the trace
 * records it, the program's thread-local state and the sanitizers' fibers
 * follow it, and the values end with the task's scope (bind.c).
 */
#include "../internal.h"
#include "../task.h"
#include "life.h"
#include "events.h"
#include "../options.h"
#include "../thread.h"
#include "stacktree.h"
#include "ctxmap.h"
#include "registry.h"
#include "identity.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------ */

/* Whether t's scope has anything to end: a task that never bound a
 * value, opened a binding or deferred a call has no extension either. */
static inline int holds_values(const struct tl__task *t)
{
  return t->x != NULL || atomic_load_explicit(&t->vt, memory_order_relaxed) != tl__vt_empty;
}

/* Ends t's scope (bindings, values, deferred calls): the values' layers
 * hear of it (bind.c), and end it with t as the task that reads and
 * writes see, whatever stack this runs on. Nobody is told of an empty
 * one. */
void tl__destroy_values(struct tl__thread *th, struct tl__task *t)
{
  if (holds_values(t))
    TL__ANNOUNCE(th, TL__NEWS_SCOPE_END, .t = t);
}

/* An ended task leaves every index and its record goes, in one pass
 * under the registry lock; how says which count it adds to. */
void tl__task_drop(struct tl__thread *th, struct tl__task *t, enum tl__gone how)
{
  TL__ANNOUNCE(th, TL__NEWS_GONE, .t = t);
  tl__map_del(t);
  if (tl__registry_lock() != 0)
    return;
  tl__tree_del(t);
  tl__registry_ended(t, how);
  struct tl__task_ext *x = t->x;
  t->x = NULL;
  tl__record_free(th, t);
  tl__registry_unlock();
  if (x != NULL)
    tl__ext_destroy(x);
}

/* With leak checking on, an abandoned task stays for the exit report with
 * the values it held. At most TL__KEEP_MAX are kept; the report counts the
 * rest from the statistics. */

static int task_keep(struct tl__thread *th, struct tl__task *t)
{
  if (!tl__opt.leaks)
    return 0;
  TL__ANNOUNCE(th, TL__NEWS_GONE, .t = t);
  tl__map_del(t);
  if (tl__registry_lock() != 0)
    return 0;
  int kept = tl__kept_add(t);
  if (kept)
    tl__tree_del(t);
  tl__registry_unlock();
  return kept;
}

/* A task whose ucontext_t is made again while its stack is still held
 * can never run: it is abandoned. Its values are destroyed here, on the
 * thread that made the new context, with the abandoned task current so
 * that destructors see its values (the leak report keeps a copy of them:
 * bind.c, at the news of it). */
void tl__task_abandon(struct tl__thread *th, struct tl__task *t)
{
  atomic_store_explicit(&t->state, TL__ABANDONED, memory_order_relaxed);
  TL__ANNOUNCE(th, TL__NEWS_ABANDONED, .t = t);
  tl__destroy_values(th, t);
  if (!task_keep(th, t))
    tl__task_drop(th, t, TL__GONE_ABANDONED);
}

/* A task whose stack was given back (release.c) or taken by a new task
 * has ended as surely as one whose function returned: most schedulers end
 * a task by switching away from it for the last time and then freeing or
 * reusing its stack. Its values are destroyed as an abandoned task's are,
 * on the thread that released it, and nothing of it is kept: it is no
 * leak. */
int tl__task_claim_release(struct tl__task *t)
{
  if (t->flags & TL__F_ROOT)
    return 0;
  uint8_t st = atomic_load_explicit(&t->state, memory_order_relaxed);
  return (st == TL__NEW || st == TL__SUSPENDED) &&
         atomic_compare_exchange_strong_explicit(&t->state, &st, TL__RELEASED, memory_order_relaxed,
                                                 memory_order_relaxed);
}

void tl__task_released(struct tl__thread *th, struct tl__task *t)
{
  TL__ANNOUNCE(th, TL__NEWS_RELEASED, .t = t);
  tl__destroy_values(th, t);
  tl__task_drop(th, t, TL__GONE_RELEASED);
}

/* Whether the record t still belongs to the live task with this id. A
 * copy of a made context may start after that task was abandoned, and the
 * record then holds another task or none; and a finished task whose record
 * waits for release (ended_release) must not start or end again. */
static int still(const struct tl__task *t, uint64_t id)
{
  return t != NULL && id != 0 && t->id == id &&
         atomic_load_explicit(&t->state, memory_order_relaxed) != TL__FINISHED;
}

/* The first thing a made context runs (tl__trampoline). The switch that
 * started it already made it current; this confirms it (a copied context
 * may have been predicted wrong) and ends the switch. Called from the
 * trampoline only, on the thread that runs the task now, so the thread
 * read at the top is fresh whatever thread made the task. */
void tl__task_begin(struct tl__task *t, uint64_t id)
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return;
  tl__view_drop();
  th->in_switch = 0;
  if (!still(t, id))
    return;                                /* its record ended: it runs untracked */
  tl__flag_set(t, TL__F_STARTED);
  struct tl__task *c = th->current;
  /* When the switch predicted another task, the observers put right what
   * they were told at the switch (tasktls.c, tools.c). */
  TL__ANNOUNCE(th, TL__NEWS_STARTED, .t = t, .other = c, .id = id);
  if (TL__UNLIKELY(c != t)) {
    /* The switch predicted another task: it is not running after all. */
    if (c != NULL && atomic_load_explicit(&c->state, memory_order_relaxed) == TL__RUNNING)
      atomic_store_explicit(&c->state, (c->flags & TL__F_STARTED) ? TL__SUSPENDED : TL__NEW,
                            memory_order_relaxed);
    th->current = t;
    /* A signal handler may have filled the view with c's meanwhile. */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    tl__view_drop();
  }
  atomic_store_explicit(&t->state, TL__RUNNING, memory_order_relaxed);
}

/* The task's function returned: its scope ends while it is still the
 * running task, on its own stack. */
static void task_finished(struct tl__thread *th, struct tl__task *t)
{
  tl__view_drop();
  th->current = t;
  th->in_switch = 0;
  if (holds_values(t))                     /* tested here too: a task's end is a hot path */
    tl__destroy_values(th, t);
  atomic_store_explicit(&t->state, TL__FINISHED, memory_order_relaxed);
}

/* Its record goes once uc_link's task has been predicted (which skips
 * finished tasks): it waits in th's ended list (see ended_release). */
static void task_retire(struct tl__thread *th, struct tl__task *t)
{
  TL__ANNOUNCE(th, TL__NEWS_GONE, .t = t);
  if (TL__UNLIKELY(th->nended == TL__ENDED_MAX)) {
    tl__ended_flush(th);
    if (th->nended == TL__ENDED_MAX) {
      tl__task_drop(th, t, TL__GONE_FINISHED);      /* still full: a signal handler interrupted a lock holder */
      return;
    }
  }
  th->ended[th->nended++] = t;
  __atomic_store_n(&th->uncounted, th->uncounted + 1, __ATOMIC_RELAXED);
}

/* The program's function returned (tl__trampoline_return): the task
 * finishes (its values are destroyed on its own stack, with it current),
 * then glibc's __start_context switches to uc_link, which we predict like
 * any switch, or calls exit(0) when uc_link is NULL. link_slot is where
 * glibc keeps uc_link (%rbx). As in tl__task_begin, the thread read at the
 * top is the one running the task now, wherever it started. */
void tl__task_end(struct tl__task *t, uint64_t id, const ucontext_t *const *link_slot)
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return;
  tl__view_drop();
  const ucontext_t *link = *link_slot;
  int mine = still(t, id);
  if (TL__LIKELY(mine))
    task_finished(th, t);
  struct tl__task *n = link ? tl__predict(th, link) : NULL;
  if (n == NULL)
    n = &th->root;
  /* Before the record goes: the program's thread-local state and the
   * tools follow the switch to n while the task's stack is still its own. */
  TL__ANNOUNCE(th, TL__NEWS_FINISHING, .t = mine ? t : NULL, .other = n, .id = id, .exit = link == NULL);
  if (TL__LIKELY(mine))
    task_retire(th, t);
  atomic_store_explicit(&n->state, TL__RUNNING, memory_order_relaxed);
  th->prev = NULL;
  th->in_switch = 0;
  th->current = n;
  /* Again: a signal handler may have filled the view with the finished
   * task's since the first drop. */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  tl__view_drop();
  th->switches++;
  TL__ANNOUNCE(th, TL__NEWS_FINISHED, .t = mine ? t : NULL, .other = n, .id = id);
}

