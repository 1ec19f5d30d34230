/* Values: tl_get, tl_lookup, tl_set and tl_unset, and the per-key
 * initializers and singletons that bind a value on first use.
 *
 * Reads take no lock and allocate nothing: tl_get finds the task, looks at
 * one entry of its value table, and checks the key's generation (keys.c).
 */
#include "internal.h"
#include "values.h"
#include "options.h"
#include "lock.h"
#include "thread.h"
#include "task/identity.h"
#include "backtrace.h"
#include "keys.h"
#include "vtab.h"
#include "scope.h"

#include <errno.h>

/* Fills the thread's read view (tasklocal.h, tl__rview) once the running
 * task is certain, with a copy of key's value when key is bound (0 for
 * none). */
static inline void tl__view_fill(const struct tl__task *t, const struct tl__vtab *vt, tl_key_t key, void *value)
{
  if (atomic_load_explicit(&tl__key_deletions, memory_order_relaxed) != 0)
    return;
  tl__view_drop();
  tl__view.lo = t->lo;
  tl__view.ents = (uintptr_t)tl__vt_ent(vt);
  tl__view.tag = (uintptr_t)vt - (uintptr_t)tl__vt_ent(vt);
  tl__view.last = key;
  tl__view.value = (uintptr_t)value;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&tl__view.span, t->hi - t->lo, __ATOMIC_SEQ_CST);
  if (atomic_load_explicit(&tl__key_deletions, memory_order_seq_cst) != 0)
    tl__view_drop();
}


/* ------------------------------------------------------------------------
 * Reading and binding
 * ------------------------------------------------------------------------ */

/* The value of key in its scope: 0, ENOENT when unbound (after running the
 * key's initializer, if any), ESRCH for a custom scope with no owner,
 * EINVAL for an invalid key. */
int tl__lookup(tl_key_t key, void **value)
{
  tl_key_attr_t a;
  if (tl__key_info(key, &a) != 0)
    return EINVAL;
  struct tl__task *t = tl__task_now();
  if (t == NULL)
    return ENOENT;
  struct tl__scope_ref ref;
  int err = tl__scope_enter(&a, t, 0, &ref);
  if (err != 0)
    return err;
  struct tl__ent *e = tl__vtab_find(atomic_load_explicit(ref.holder, memory_order_acquire), key);
  if (e != NULL)
    *value = atomic_load_explicit(&e->value, memory_order_relaxed);
  tl__scope_leave(&ref);
  if (e != NULL)
    return 0;
  if (a.init != NULL) {
    /* A read from inside the key's own initializer sees it unbound. */
    err = tl__run_init(key, &a, t, a.init, a.init_arg, 1, value);
    return err == EDEADLK ? ENOENT : err;
  }
  return ENOENT;
}

static __attribute__((noinline)) void *get_slow(tl_key_t key)
{
  void *v = NULL;
  return tl__lookup(key, &v) == 0 ? v : NULL;
}

/* The read path. Every way off the common case is a tail call into
 * get_slow, so this function saves no register and sets up no frame. The
 * first read after a switch takes the slow path once, to note that the
 * switch is complete (tl__task_now clears in_switch). */
void *tl__get(tl_key_t key)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY))
    return get_slow(key);
  struct tl__task *t = th->current;
  if (TL__UNLIKELY(!tl__in_stack(t, tl__sp()) || th->in_switch))
    return get_slow(key);
  struct tl__vtab *vt = atomic_load_explicit(&t->vt, memory_order_acquire);
  struct tl__ent *e = tl__vt_home(vt, key);
  int hit = atomic_load_explicit(&e->key, memory_order_acquire) == key &&
            (TL__LIKELY(atomic_load_explicit(&tl__key_deletions, memory_order_relaxed) == 0) || tl__key_valid(key));
  void *value = hit ? atomic_load_explicit(&e->value, memory_order_relaxed) : NULL;
  /* The running task is certain here: the inline read path of tasklocal.h
   * may use it from now on, with this key's value at hand. */
  if (TL__UNLIKELY(__atomic_load_n(&tl__view.span, __ATOMIC_RELAXED) == 0) && th->override == NULL)
    tl__view_fill(t, vt, hit ? key : 0, value);
  if (TL__LIKELY(hit))
    return value;
  return get_slow(key);
}

/* Binds (or with remove, unbinds) key in its scope, for tl_set, tl_unset
 * and the scoped bindings. */
int tl__store(tl_key_t key, const void *value, int remove, int scoped)
{
  uint64_t w = tl__key_word(key);
  if (w == 0)
    return EINVAL;
  if (!scoped && (w & TL__W_SCOPED_ONLY))
    return EPERM;
  struct tl__task *t = tl__task_now();
  if (t == NULL)
    return ENOMEM;
  if (!(w & TL__W_NOT_TASK)) {
    /* Task keys, the common case: no scope to look up, no lock. */
    if (remove) {
      tl__vtab_remove(&t->vt, key);
      return 0;
    }
    int err = tl__vtab_put(&t->vt, key, (void *)value);
    if (err == 0 && (w & TL__W_NO_DESTROY) && tl__opt.backtrace && value != NULL)
      tl__bt_note_set(t, key);
    return err;
  }
  tl_key_attr_t a;
  if (tl__key_info(key, &a) != 0)
    return EINVAL;
  struct tl__scope_ref ref;
  int err = tl__scope_enter(&a, t, !remove, &ref);
  if (err != 0)
    return err;
  if (remove)
    tl__vtab_remove(ref.holder, key);
  else
    err = tl__vtab_put(ref.holder, key, (void *)value);
  tl__scope_leave(&ref);
  return err;
}

/* Whether vt is a table of at most TL__VT_SMALL entries (not the empty
 * one): its tag, 2 x (capacity - 1), is then between 6 and
 * 2 x (TL__VT_SMALL - 1); the empty table's is 0. */
static inline int vt_small(const struct tl__vtab *vt)
{
  uintptr_t tag = (uintptr_t)vt - (uintptr_t)tl__vt_ent(vt);
  return tag - 1 < 2 * (TL__VT_SMALL - 1);
}

/* The common case of tl__store in one pass: a live task key without
 * TL_KEY_SCOPED_ONLY, set by the current task while the stack pointer is
 * in its stack, into a table that has the key's home entry for it (see
 * tl__vtab_put). That task is the one tl__task_now would name, also while
 * an ending task's destructors run here: the ending task is then current,
 * and when the stack pointer is outside its stack (an abandoned task, whose
 * destructors run on its maker's stack), the general path asks
 * tl__task_now, which answers with th->override. Anything else takes the
 * general path, which decides the same way. */
int tl__set(tl_key_t key, const void *value)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY))
    return tl__store(key, value, 0, 0);
  struct tl__task *t = th->current;
  uint64_t w = tl__key_word(key);
  if (TL__UNLIKELY(w == 0 || (w & (TL__W_NOT_TASK | TL__W_SCOPED_ONLY)) != 0 || !tl__in_stack(t, tl__sp())))
    return tl__store(key, value, 0, 0);
  if (TL__UNLIKELY(w & TL__W_NO_DESTROY) && tl__opt.backtrace)
    return tl__store(key, value, 0, 0);  /* notes where the value was set */
  /* As tl__task_now: the first access after a switch completes it. */
  th->in_switch = 0;
  struct tl__vtab *vt = atomic_load_explicit(&t->vt, memory_order_relaxed);
  struct tl__ent *home = tl__vt_home(vt, key);
  uint64_t hk = atomic_load_explicit(&home->key, memory_order_relaxed);
  if (TL__LIKELY(hk == key)) {
    tl__view_forget(key);
    atomic_store_explicit(&home->value, (void *)value, memory_order_release);
  } else if (TL__LIKELY(hk == TL__EMPTY && vt_small(vt))) {
    atomic_store_explicit(&home->value, (void *)value, memory_order_relaxed);
    atomic_store_explicit(&home->key, key, memory_order_release);
  } else if (vt == tl__vt_empty) {
    int err = tl__vtab_first(&t->vt, key, (void *)value);
    if (err != 0)
      return err;
  } else {
    return tl__vtab_put(&t->vt, key, (void *)value);
  }
  th->binds++;
  return 0;
}

/* ------------------------------------------------------------------------
 * Initializers and singletons
 * ------------------------------------------------------------------------ */

/* The identity of the scope instance a key's value would be bound in. */
static const void *instance_of(const tl_key_attr_t *a, struct tl__task *t)
{
  if (a->scope == TL_SCOPE_TASK)
    return t;
  if (a->scope == TL_SCOPE_THREAD)
    return tl__self();
  return a->disc->current(a->disc->arg);
}

/* Runs make(arg) for key in the current scope and binds the result, unless
 * the same key is already being made for the same scope instance on this
 * thread (a re-entrant read from inside make), which gives EDEADLK. */
int tl__run_init(tl_key_t key, const tl_key_attr_t *a, struct tl__task *t, void *(*make)(void *), void *arg,
                 int bind_null, void **value)
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return ENOMEM;
  const void *inst = instance_of(a, t);
  for (struct tl__init_frame *f = th->initing; f != NULL; f = f->next)
    if (f->key == key && f->instance == inst)
      return EDEADLK;
  struct tl__init_frame frame = {key, inst, th->initing};
  th->initing = &frame;
  void *v = make(arg);
  /* make() may have switched tasks and come back on another thread: take
   * the frame off the list it was put on. */
  for (struct tl__init_frame **p = &th->initing; *p != NULL; p = &(*p)->next) {
    if (*p == &frame) {
      *p = frame.next;
      break;
    }
  }
  if (v == NULL && !bind_null)
    return ENOENT;                         /* a singleton maker that failed binds nothing */
  int err = tl__store(key, v, 0, 1);
  if (err != 0) {
    if (v != NULL && a->destroy != NULL)
      a->destroy(v);
    return err;
  }
  *value = v;
  return 0;
}

void *tl__singleton(tl_key_t key, void *(*make)(void *arg), void *arg)
{
  tl_key_attr_t a;
  if (make == NULL || tl__key_info(key, &a) != 0) {
    errno = EINVAL;
    return NULL;
  }
  struct tl__task *t = tl__task_now();
  if (t == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  struct tl__scope_ref ref;
  int err = tl__scope_enter(&a, t, 0, &ref);
  if (err != 0) {
    errno = err;
    return NULL;
  }
  struct tl__ent *e = tl__vtab_find(atomic_load_explicit(ref.holder, memory_order_acquire), key);
  void *v = e ? atomic_load_explicit(&e->value, memory_order_relaxed) : NULL;
  tl__scope_leave(&ref);
  if (e != NULL)
    return v;
  err = tl__run_init(key, &a, t, make, arg, 0, &v);
  if (err != 0) {
    if (err != ENOENT)
      errno = err;
    return NULL;
  }
  return v;
}
