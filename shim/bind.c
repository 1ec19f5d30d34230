/* Scoped bindings (tl_bind, tl_unbind, TL_WITH), inheritance at spawn,
 * and the end of a task's scope, which undoes both (doc/lifetime.md).
 */
#include "internal.h"
#include "bind.h"
#include "alloc.h"
#include "thread.h"
#include "task/registry.h"
#include "task/identity.h"
#include "keys.h"
#include "vtab.h"
#include "scope.h"
#include "values.h"
#include "options.h"
#include "task/events.h"

#include <errno.h>
#include <string.h>
#include <sys/auxv.h>

/* ------------------------------------------------------------------------
 * Scoped bindings
 * ------------------------------------------------------------------------ */

static struct {
  _Atomic uint64_t secret;                 /* mixed into tokens; set once */
} tokens;

static uint64_t token_check(uint64_t id, uint64_t seq, uint64_t key)
{
  uint64_t x = id * 0x9e3779b97f4a7c15ull ^ seq * 0xbf58476d1ce4e5b9ull ^ key ^
               atomic_load_explicit(&tokens.secret, memory_order_relaxed);
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 29) ^ 0x746c746f6b656e21ull;
}

/* Threads that race here compute the same value from the same bytes. */
static void secret_init(void)
{
  if (atomic_load_explicit(&tokens.secret, memory_order_relaxed) != 0)
    return;
  /* The kernel's 16 random bytes (AT_RANDOM) are not 8-byte aligned. */
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  uint64_t v = (uint64_t)(uintptr_t)&tokens;
  if (r != NULL)
    memcpy(&v, r + 8, sizeof v);
  atomic_store_explicit(&tokens.secret, v | 1, memory_order_relaxed);
}

int tl__bind(tl_key_t key, const void *value, tl_token_t *token)
{
  if (token == NULL)
    return EINVAL;
  tl_key_attr_t a;
  if (tl__key_info(key, &a) != 0)
    return EINVAL;
  struct tl__task *t = tl__task_now();
  struct tl__task_ext *x = t ? tl__task_ext(t) : NULL;
  if (x == NULL)
    return ENOMEM;
  if (x->nbinds == x->capbinds) {
    uint32_t cap = x->capbinds ? x->capbinds * 2 : 4;
    struct tl__bind *b = tl__realloc(x->binds, cap * sizeof *b);
    if (b == NULL)
      return ENOMEM;
    x->binds = b;
    x->capbinds = cap;
  }
  struct tl__scope_ref ref;
  int err = tl__scope_enter(&a, t, 1, &ref);
  if (err != 0)
    return err;
  struct tl__ent *e = tl__vtab_find(atomic_load_explicit(ref.holder, memory_order_relaxed), key);
  struct tl__bind b = {0, key, e ? atomic_load_explicit(&e->value, memory_order_relaxed) : NULL, e != NULL};
  err = tl__vtab_put(ref.holder, key, (void *)value);
  tl__scope_leave(&ref);
  if (err != 0)
    return err;
  secret_init();
  b.seq = ++x->bind_seq;
  x->binds[x->nbinds++] = b;
  token->opaque[0] = t->id;
  token->opaque[1] = b.seq;
  token->opaque[2] = key;
  token->opaque[3] = token_check(t->id, b.seq, key);
  return 0;
}

/* Puts back what the innermost binding of t replaced. */
static int bind_restore(const struct tl__bind *b)
{
  int err = tl__store(b->key, b->prev, !b->prev_bound, 1);
  return err == EINVAL ? 0 : err;          /* a deleted key has nothing to restore */
}

int tl__unbind(tl_token_t *token)
{
  if (token == NULL || atomic_load_explicit(&tokens.secret, memory_order_relaxed) == 0 ||
      token->opaque[3] != token_check(token->opaque[0], token->opaque[1], token->opaque[2]))
    return EINVAL;
  struct tl__task *t = tl__task_now();
  if (t == NULL || t->id != token->opaque[0] || t->x == NULL || t->x->nbinds == 0)
    return EINVAL;
  struct tl__task_ext *x = t->x;
  struct tl__bind *top = &x->binds[x->nbinds - 1];
  if (top->seq != token->opaque[1] || top->key != token->opaque[2])
    return EINVAL;
  int err = bind_restore(top);
  if (err != 0)
    return err;
  x->nbinds--;
  memset(token, 0, sizeof *token);
  return 0;
}

/* ------------------------------------------------------------------------
 * Inheritance
 * ------------------------------------------------------------------------ */

static int record_shared(struct tl__task *child, tl_key_t key, void *value)
{
  struct tl__task_ext *x = tl__task_ext(child);
  if (x == NULL)
    return ENOMEM;
  struct tl__shared *s = tl__realloc(x->shared, (x->nshared + 1) * sizeof *s);
  if (s == NULL)
    return ENOMEM;
  s[x->nshared].key = key;
  s[x->nshared].value = value;
  x->shared = s;
  x->nshared++;
  return 0;
}

/* The child starts with what its parent had bound when it called
 * makecontext, for the keys that ask for it: the same pointer (SHARE, not
 * the child's to destroy) or copy(value) (COPY, the child's own). */
/* A copy made for child that could not be bound is destroyed as the
 * child's values are when its making fails (task/make.c, make_undo): with the
 * child as the running task, so that the destructor does not see the
 * maker's values as its own. */
static void destroy_as(struct tl__task *child, void (*destroy)(void *), void *value)
{
  struct tl__thread *th = tl__self();
  if (th == NULL) {
    destroy(value);
    return;
  }
  struct tl__as saved = tl__as_begin(th, child);
  destroy(value);
  tl__as_end(th, saved);
}

int tl__inherit(struct tl__task *parent, struct tl__task *child)
{
  if (parent == NULL || atomic_load_explicit(&tl__inheriting, memory_order_relaxed) == 0)
    return 0;
  for (uint32_t i = 0;; i++) {
    struct tl__vtab *vt = atomic_load_explicit(&parent->vt, memory_order_relaxed);
    if (vt == tl__vt_empty || i > tl__vt_mask(vt))
      return 0;
    struct tl__ent *e = &tl__vt_ent(vt)[i];
    uint64_t key = atomic_load_explicit(&e->key, memory_order_relaxed);
    tl_key_attr_t a;
    if (key <= TL__TOMB || tl__key_info(key, &a) != 0 || a.inherit == TL_INHERIT_NONE)
      continue;
    void *value = atomic_load_explicit(&e->value, memory_order_relaxed);
    /* A shared value is noted as not the child's before it is bound, and
     * a copy is destroyed if it cannot be bound: when this fails, the
     * caller destroys what the child holds, and that must be exactly what
     * the child owns. */
    if (a.inherit == TL_INHERIT_SHARE && record_shared(child, key, value) != 0)
      return ENOMEM;
    if (a.inherit == TL_INHERIT_COPY)
      value = a.copy(value);
    if (tl__vtab_put(&child->vt, key, value) != 0) {
      if (a.inherit == TL_INHERIT_COPY && value != NULL && a.destroy != NULL)
        destroy_as(child, a.destroy, value);
      return ENOMEM;
    }
  }
}

static int is_shared(tl_key_t key, void *value, void *arg)
{
  struct tl__task_ext *x = arg;
  for (uint32_t i = 0; i < x->nshared; i++)
    if (x->shared[i].key == key && x->shared[i].value == value)
      return 1;
  return 0;
}

/* A task ends (finished, abandoned, or a root at thread exit): its open
 * bindings are dropped, innermost first, putting back what they replaced;
 * then its values go to their destructors; then its deferred calls run.
 * Called with the task current on this thread (or as th->override). */
static void task_scope_end(struct tl__thread *th, struct tl__task *t)
{
  struct tl__task_ext *x = t->x;
  while (x != NULL && x->nbinds > 0)
    bind_restore(&x->binds[--x->nbinds]);
  for (int pass = 0; pass < 2; pass++) {
    tl__destroy_vals(&t->vt, t, x && x->nshared ? is_shared : NULL, x);
    if (x == NULL || x->defers == NULL)
      break;
    tl__run_defers(&x->defers);
    x = t->x;                              /* deferred calls may have made it */
  }
  (void)th;
}

/* The task module's news (task/events.h) that concern values, the one way
 * in from a task's life to their teardown. A task's scope ends with the
 * task as the one that reads and writes see, whatever stack this runs on
 * (an abandoned task's destructors run on its maker's). */
static void values_scope_end(struct tl__thread *th, const struct tl__event *ev)
{
  struct tl__as saved = tl__as_begin(th, ev->t);
  task_scope_end(th, ev->t);
  tl__as_end(th, saved);
}

/* An abandoned task's values are copied first, for the leak report. */
static void values_abandoned(struct tl__thread *th, const struct tl__event *ev)
{
  (void)th;
  struct tl__task *t = ev->t;
  if (tl__opt.leaks && tl__task_ext(t) != NULL)
    t->x->held = tl__vtab_copy(atomic_load_explicit(&t->vt, memory_order_relaxed));
}

/* A record's extension goes with what the values' layers hung on it. */
static void values_freed(struct tl__thread *th, const struct tl__event *ev)
{
  (void)th;
  struct tl__task_ext *x = ev->x;
  if (x->held != NULL)
    tl__vtab_free(x->held);
  tl__free(x->binds);
  tl__free(x->shared);
  tl__free(x->sets);
  for (struct tl__defer *d = x->defers, *next; d != NULL; d = next) {
    next = d->next;
    tl__free(d);
  }
}

void tl__values_observe_tasks(void)
{
  tl__task_observe(TL__NEWS_SCOPE_END, values_scope_end);
  tl__task_observe(TL__NEWS_ABANDONED, values_abandoned);
  tl__task_observe(TL__NEWS_FREED, values_freed);
}
