/* Root tasks (each thread's own stack), and the events of the whole
 * process: fork and exit.
 */
#include "internal.h"
#include "root.h"
#include "lock.h"
#include "thread.h"
#include "task/stacktree.h"
#include "task/ctxmap.h"
#include "task/registry.h"
#include "scope.h"
#include "task.h"

/* The life of tasks. */
static struct {
  struct tl__thread *main;                 /* the state of the thread that loaded us */
} roots;

/* A task's id is handed out under the registry's lock, where its record
 * enters the registry: a plain increment instead of a locked one, and ids
 * follow the order in which tasks enter the tree, which it relies on. A
 * thread's root made by a signal handler that interrupted this thread
 * while it held the lock cannot take it: its id comes from the top of the
 * range, counting down, and it stays out of the indexes. */
static _Atomic uint64_t orphan_id = UINT64_MAX - 1;

/* ------------------------------------------------------------------------
 * Root tasks
 * ------------------------------------------------------------------------ */

void tl__root_init(struct tl__thread *th)
{
  struct tl__task *r = &th->root;
  r->vt = tl__vt_empty;
  r->flags = TL__F_ROOT | TL__F_STARTED;
  atomic_store_explicit(&r->state, TL__RUNNING, memory_order_relaxed);
  if (tl__registry_lock() != 0) {
    r->id = atomic_fetch_sub_explicit(&orphan_id, 1, memory_order_relaxed);
    return;
  }
  r->id = tl__registry_new_id();
  if (roots.main == NULL)
    roots.main = th;
  tl__tree_add(r);
  tl__live_add(r);
  tl__registry_unlock();
}

void tl__root_forget(struct tl__thread *th)
{
  struct tl__task *r = &th->root;
  struct tl__task_ext *xs[TL__ENDED_MAX];
  tl__map_del(r);
  tl__ended_unmap(th, NULL);
  if (tl__registry_lock() != 0)
    return;
  uint32_t n = tl__ended_release(th, xs);
  tl__tree_del(r);
  tl__live_del(r);
  if (roots.main == th)
    roots.main = NULL;
  tl__registry_unlock();
  tl__ext_destroy_all(xs, n);
}

void tl__root_fini(struct tl__thread *th)
{
  tl__view_drop();
  th->current = &th->root;
  th->in_switch = 0;
  tl__destroy_values(th, &th->root);
  tl__thread_scope_end(th);
  tl__root_forget(th);
  tl__ext_free(&th->root);
}

/* ------------------------------------------------------------------------
 * Process-wide events
 * ------------------------------------------------------------------------ */

/* Tasks that were running on the threads a forked child does not have can
 * only be resumed by a switch now; they are suspended. */
static int suspend_others(struct tl__task *t, void *arg)
{
  struct tl__thread *me = arg;
  if (!(t->flags & TL__F_ROOT) && atomic_load_explicit(&t->state, memory_order_relaxed) == TL__RUNNING &&
      (me == NULL || me->current != t))
    atomic_store_explicit(&t->state, TL__SUSPENDED, memory_order_relaxed);
  return 0;
}

void tl__task_atfork(int phase)
{
  if (phase < 0) {
    tl__registry_atfork(-1);
    tl__map_atfork(-1);
    tl__thread_atfork(-1);
    return;
  }
  if (phase == 0) {
    tl__thread_atfork(0);
    tl__map_atfork(0);
    tl__registry_atfork(0);
    return;
  }
  tl__map_atfork(1);
  tl__registry_atfork(1);
  struct tl__thread *me = tl__tls;
  tl__task_foreach(suspend_others, me);
  tl__thread_atfork(1);
  if (me != NULL)
    roots.main = me;
}

/* At process exit the main thread's root values are destroyed (doc/lifetime.md),
 * and those of the thread that called exit() if it is another one; the
 * exit report comes next (init.c). */
void tl__task_exit(void)
{
  struct tl__thread *th = tl__tls;
  if (th != NULL && th != TL__BUSY) {
    tl__ended_flush(th);
    struct tl__thread *main = roots.main;
    struct tl__task *cur = th->current;
    tl__view_drop();
    if (main != NULL && main != th)
      tl__destroy_values(th, &main->root);
    th->current = &th->root;
    tl__destroy_values(th, &th->root);
    tl__thread_scope_end(th);
    th->current = cur;
    tl__view_drop();
  }
}

/* After the exit report, which shows task names: the roots' extensions
 * are freed, so that leak checkers see nothing of ours left. */
void tl__task_exit_free(void)
{
  struct tl__thread *th = tl__tls;
  if (th != NULL && th != TL__BUSY) {
    if (roots.main != NULL)
      tl__ext_free(&roots.main->root);
    tl__ext_free(&th->root);
  }
}
