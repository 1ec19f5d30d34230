/* The record of values dropped at a task's end for want of a destructor
 * (doc/reports.md): the pointer is dropped, usually a memory leak, and the leak
 * report lists it (report.c). The first TL__DROPS_KEPT are kept in full,
 * the rest only counted. Filled on the thread where the task ends, with
 * neither a lock nor an allocation: a slot is taken with one atomic
 * increment and marked ready last.
 */
#include "internal.h"
#include "drops.h"
#include "options.h"
#include "task/registry.h"
#include "backtrace.h"
#include "keys.h"

#include <string.h>

static struct {
  _Atomic uint64_t n;                      /* values dropped so far */
  struct tl__drop drop[TL__DROPS_KEPT];
} dropped;

void tl__drop_note(struct tl__task *t, tl_key_t key, void *value)
{
  int how = TL__DROP_FINISHED;
  if (t->flags & TL__F_ROOT) {
    const struct tl__thread *th =
      (const struct tl__thread *)((const char *)t - offsetof(struct tl__thread, root));
    if (!th->dying)
      return;                              /* process exit: still reachable, like a global */
    how = TL__DROP_THREAD_EXIT;
  } else if (atomic_load_explicit(&t->state, memory_order_relaxed) == TL__ABANDONED) {
    if (tl__opt.leaks)
      return;                              /* counted with the kept task's locals */
    how = TL__DROP_ABANDONED;
  } else if (atomic_load_explicit(&t->state, memory_order_relaxed) == TL__RELEASED) {
    how = TL__DROP_RELEASED;
  }
  uint64_t i = atomic_fetch_add_explicit(&dropped.n, 1, memory_order_relaxed);
  if (i >= TL__DROPS_KEPT)
    return;
  struct tl__drop *d = &dropped.drop[i];
  d->key = key;
  d->value = value;
  d->task = t->id;
  d->entry = t->entry;
  d->how = how;
  tl__safe_str(d->key_name, sizeof d->key_name, tl__key_name(key));
  struct tl__task_ext *x = t->x;
  tl__safe_str(d->task_name, sizeof d->task_name, x != NULL ? x->name : NULL);
  d->bt_n = 0;
  if (x != NULL && x->bt != NULL && x->bt_n <= TL__BT_MAX) {
    memcpy(d->bt, x->bt, x->bt_n * sizeof d->bt[0]);
    d->bt_n = x->bt_n;
  }
  const struct tl__setbt *set = tl__bt_set_of(t, key);
  d->set_n = set != NULL && set->n <= TL__BT_MAX ? set->n : 0;
  if (d->set_n)
    memcpy(d->set, set->pc, d->set_n * sizeof d->set[0]);
  atomic_store_explicit(&d->ready, 1, memory_order_release);
}

uint64_t tl__drops_count(void)
{
  return atomic_load_explicit(&dropped.n, memory_order_relaxed);
}

const struct tl__drop *tl__drop_get(uint64_t i)
{
  if (i >= TL__DROPS_KEPT || !atomic_load_explicit(&dropped.drop[i].ready, memory_order_acquire))
    return NULL;
  return &dropped.drop[i];
}
