/* Scopes: where a key's values live, and how a scope ends. A key's values
 * live in a value table chosen by its scope: the running task's (task/life.c),
 * the OS thread's (struct tl__thread.tvt), or a custom owner's, kept here
 * in a hash table shared by all threads under one lock. Deferred calls
 * (tl_defer) run when their task or thread ends (doc/lifetime.md).
 */
#include "internal.h"
#include "scope.h"
#include "lock.h"
#include "alloc.h"
#include "thread.h"
#include "task/registry.h"
#include "task/identity.h"
#include "vtab.h"

#include <errno.h>


struct owner {
  const struct tl_disc *disc;
  void *owner;
  struct tl__vtab *_Atomic vt;
  struct owner *next;
};

static struct {
  struct tl__lock lock;                    /* the owner table */
  struct owner **b;
  uint32_t nb, n;
  struct tl__vtab *_Atomic nothing;        /* the table of an owner with no values yet */
} owners = {.nothing = tl__vt_empty};
/* For debuggers (debug.c). */
const struct tl__debug_owners tl__debug_owners = {&owners.b, &owners.nb, offsetof(struct owner, disc),
                                                  offsetof(struct owner, owner), offsetof(struct owner, vt),
                                                  offsetof(struct owner, next)};

/* ------------------------------------------------------------------------
 * Custom owners
 * ------------------------------------------------------------------------ */

static uint64_t owner_hash(const struct tl_disc *disc, const void *owner)
{
  uint64_t x = (uint64_t)(uintptr_t)disc * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)owner;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  return x ^ (x >> 27);
}

/* Called with owners.lock held. */
static struct owner **owner_slot(const struct tl_disc *disc, const void *owner)
{
  if (owners.nb == 0)
    return NULL;
  struct owner **p = &owners.b[owner_hash(disc, owner) & (owners.nb - 1)];
  while (*p != NULL && ((*p)->disc != disc || (*p)->owner != owner))
    p = &(*p)->next;
  return p;
}

/* Called with owners.lock held. A failed allocation keeps the old buckets. */
static void owners_grow(void)
{
  uint32_t nb = owners.nb ? owners.nb * 2 : 64;
  struct owner **b = tl__calloc(nb, sizeof *b);
  if (b == NULL)
    return;
  for (uint32_t i = 0; i < owners.nb; i++) {
    for (struct owner *o = owners.b[i], *next; o != NULL; o = next) {
      next = o->next;
      struct owner **p = &b[owner_hash(o->disc, o->owner) & (nb - 1)];
      o->next = *p;
      *p = o;
    }
  }
  tl__free(owners.b);
  owners.b = b;
  owners.nb = nb;
}

int tl__scope_enter(const tl_key_attr_t *a, struct tl__task *t, int create, struct tl__scope_ref *ref)
{
  ref->lock = NULL;
  if (a->scope == TL_SCOPE_TASK) {
    ref->holder = &t->vt;
    return 0;
  }
  if (a->scope == TL_SCOPE_THREAD) {
    struct tl__thread *th = tl__self();
    if (th == NULL)
      return ENOMEM;
    ref->holder = &th->tvt;
    return 0;
  }
  void *owner = a->disc->current(a->disc->arg);
  if (owner == NULL)
    return ESRCH;
  if (tl__lock(&owners.lock) != 0)
    return EDEADLK;
  if (create && (owners.n + 1) * 4 > owners.nb * 3)
    owners_grow();
  struct owner **p = owner_slot(a->disc, owner);
  if (p != NULL && *p == NULL && create) {
    struct owner *o = tl__calloc(1, sizeof *o);
    if (o != NULL) {
      o->disc = a->disc;
      o->owner = owner;
      o->vt = tl__vt_empty;
      *p = o;
      owners.n++;
    }
  }
  if (p == NULL || *p == NULL) {
    if (create) {
      tl__unlock(&owners.lock);
      return ENOMEM;
    }
    ref->holder = &owners.nothing;
  } else {
    ref->holder = &(*p)->vt;
  }
  ref->lock = &owners.lock;
  return 0;
}

void tl__scope_atfork(int phase)
{
  tl__lock_atfork(&owners.lock, phase);
}

void tl__scope_leave(struct tl__scope_ref *ref)
{
  if (ref->lock != NULL)
    tl__unlock(ref->lock);
}

int tl__disc_end(const struct tl_disc *disc, void *owner)
{
  if (disc == NULL || owner == NULL)
    return EINVAL;
  /* Each round takes the owner's table out under the lock and destroys it
   * outside, so that destructors may use custom keys themselves; values
   * they bind for this owner are destroyed in the next round. */
  for (int round = 0;; round++) {
    if (tl__lock(&owners.lock) != 0)
      return EDEADLK;
    struct owner **p = owner_slot(disc, owner);
    if (p == NULL || *p == NULL) {
      tl__unlock(&owners.lock);
      return 0;
    }
    struct tl__vtab *_Atomic vt = atomic_exchange_explicit(&(*p)->vt, tl__vt_empty, memory_order_relaxed);
    if (vt == tl__vt_empty || round == 4) {
      struct owner *o = *p;
      *p = o->next;
      owners.n--;
      tl__unlock(&owners.lock);
      tl__free(o);
      tl__vtab_free(vt);                   /* what is left after 4 rounds is dropped */
      return 0;
    }
    tl__unlock(&owners.lock);
    tl__destroy_vals(&vt, NULL, NULL, NULL);
  }
}

/* ------------------------------------------------------------------------
 * Deferred calls and the end of a scope
 * ------------------------------------------------------------------------ */

int tl__defer(int scope, void (*fn)(void *arg), void *arg)
{
  if (fn == NULL || (scope != TL_SCOPE_TASK && scope != TL_SCOPE_THREAD))
    return EINVAL;
  struct tl__task *t = tl__task_now();
  struct tl__thread *th = tl__self();
  if (t == NULL || th == NULL)
    return ENOMEM;
  struct tl__defer **list;
  if (scope == TL_SCOPE_TASK) {
    struct tl__task_ext *x = tl__task_ext(t);
    if (x == NULL)
      return ENOMEM;
    list = &x->defers;
  } else {
    list = &th->defers;
  }
  struct tl__defer *d = tl__alloc(sizeof *d);
  if (d == NULL)
    return ENOMEM;
  d->fn = fn;
  d->arg = arg;
  d->next = *list;
  *list = d;
  return 0;
}

/* Last registered first; calls registered meanwhile run too. */
void tl__run_defers(struct tl__defer **list)
{
  struct tl__defer *d;
  while ((d = *list) != NULL) {
    *list = d->next;
    void (*fn)(void *) = d->fn;
    void *arg = d->arg;
    tl__free(d);
    fn(arg);
  }
}

/* The thread's loop ends (thread exit, process exit for the main thread,
 * or tl_loop_close): thread-scope values, then thread deferred calls. */
void tl__thread_scope_end(struct tl__thread *th)
{
  for (int pass = 0; pass < 2; pass++) {
    tl__destroy_vals(&th->tvt, NULL, NULL, NULL);
    if (th->defers == NULL)
      break;
    tl__run_defers(&th->defers);
  }
}

int tl__loop_close(void)
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return 0;                              /* no state: nothing to close */
  tl__thread_scope_end(th);
  return 0;
}
