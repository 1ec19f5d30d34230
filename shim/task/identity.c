/* Which task runs: the prediction made at a switch, and the repair made
 * from the stack pointer after a switch the shim never saw.
 *
 * Identity (doc/tracking.md). A task is an execution, not a struct or a stack:
 * - The context map remembers, for each ucontext_t address, the task that
 *   last saved itself there (swapcontext's oucp) or was made there. Only the
 *   address is kept; the struct is never read after control has left it.
 * - The stack-range tree finds the task whose stack holds a stack pointer:
 *   the innermost range, and among equal ranges (shared-stack coroutines)
 *   the newest task.
 * A switch predicts its target from the map, checks the prediction against
 * the stack pointer saved in the target context (read before the switch,
 * while the struct is valid) and falls back to the tree. A read checks the
 * stack pointer against the tracked task and repairs it from the tree when
 * a switch happened that the shim never saw (siglongjmp).
 */
#include "../internal.h"
#include "identity.h"
#include "../thread.h"
#include "stacktree.h"
#include "ctxmap.h"
#include "registry.h"
#include "../trace.h"

#include <errno.h>

/* The hints' answer for a switch to ucp, inline for the switch's fast
 * path: the task last saved at ucp, when it is still mapped there, not
 * finished, and its stack holds the saved stack pointer; or NULL, and
 * tl__predict asks the map and the stack ranges. */
static inline struct tl__task *tl__predict_hint(struct tl__thread *th, const ucontext_t *ucp)
{
  struct tl__task *t = tl__hint_task(th, ucp);
  if (t == NULL || !__atomic_load_n(&t->mapped, __ATOMIC_RELAXED) ||
      atomic_load_explicit(&t->state, memory_order_relaxed) == TL__FINISHED ||
      !tl__in_stack(t, TL__UC_SP(ucp)))
    return NULL;
  return t;
}


/* The task whose stack holds sp, from the tree. A signal handler that
 * interrupted this very thread while it held the registry's lock cannot take it
 * (tl__lock says EDEADLK); no other thread can change the tree meanwhile,
 * since the lock is held, so the handler reads it as it is, unless the
 * interrupted code was changing it. That case matters: the interrupted
 * code is often a read that repairs the current task (tl__resolve), and
 * the handler would otherwise answer with the very task being repaired. */
static struct tl__task *find_locked(uintptr_t sp)
{
  int rc = tl__registry_lock();
  if (rc == EDEADLK)
    return tl__tree_changing() ? NULL : tl__tree_find(sp);
  if (rc != 0)
    return NULL;
  struct tl__task *t = tl__tree_find(sp);
  tl__registry_unlock();
  return t;
}

/* ------------------------------------------------------------------------
 * Switching
 * ------------------------------------------------------------------------ */

/* Whether t, found in the map or the hints, can be the target of a switch:
 * a finished task stays mapped until its record is released (see
 * ended_release), and is skipped like the tree skips it. */
static int resumable(const struct tl__task *t, uintptr_t sp)
{
  return t != NULL && tl__in_stack(t, sp) &&
         atomic_load_explicit(&t->state, memory_order_relaxed) != TL__FINISHED;
}

/* tl__predict when the hints do not know: kept out of line, so that the
 * common case sets up no frame. */
static __attribute__((noinline)) struct tl__task *predict_slow(struct tl__thread *th, const ucontext_t *ucp)
{
  uintptr_t sp = TL__UC_SP(ucp);
  struct tl__task *t = tl__map_get(ucp);
  if (resumable(t, sp)) {
    tl__hint_put(th, ucp, t);
    return t;
  }
  /* Not saved by a switch we saw (getcontext), or saved by a task that has
   * since saved itself elsewhere: the saved stack pointer tells. */
  return tl__task_at(th, sp);
}

struct tl__task *tl__predict(struct tl__thread *th, const ucontext_t *ucp)
{
  struct tl__task *t = tl__predict_hint(th, ucp);
  return t != NULL ? t : predict_slow(th, ucp);
}

struct tl__task *tl__task_at(struct tl__thread *th, uintptr_t sp)
{
  struct tl__task *t = find_locked(sp);
  if (t != NULL)
    return t;
  return tl__in_stack(&th->root, sp) ? &th->root : NULL;
}

struct tl__task *tl__resolve(struct tl__thread *th, uintptr_t sp)
{
  if (th->override != NULL)
    return th->override;
  struct tl__task *c = th->current;
  /* A signal may arrive between the wrapper's announcement of a switch and
   * the switch itself: the stack is still the one of the task that began
   * it. Answer with that task and leave the announcement alone. */
  if (th->in_switch && th->prev != NULL && tl__in_stack(th->prev, sp))
    return th->prev;
  struct tl__task *t = find_locked(sp);
  if (t == NULL)
    return c;                              /* an unknown stack (sigaltstack): trust the tracker */
  if (t != c) {
    /* A switch the shim never saw (siglongjmp between coroutines). */
    tl__view_drop();
    if (c != NULL && atomic_load_explicit(&c->state, memory_order_relaxed) == TL__RUNNING) {
      atomic_store_explicit(&c->state, TL__SUSPENDED, memory_order_relaxed);
      c->ran_on = (uint32_t)(uintptr_t)th;
    }
    atomic_store_explicit(&t->state, TL__RUNNING, memory_order_relaxed);
    th->current = t;
    th->in_switch = 0;
    th->untracked++;
    TL__TRACE(tl__trace_event(th, TL__TEV_UNTRACKED, c != NULL ? c->id : 0, t->id));
  }
  return t;
}
