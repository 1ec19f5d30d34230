/* Scopes and what lives in them: thread-scope and custom-scope values,
 * per-key initializers and singletons, scoped bindings, inheritance at
 * spawn, and deferred calls (SPEC 3.3 to 3.7).
 *
 * A key's values live in a value table chosen by its scope: the running
 * task's (task.c), the OS thread's (struct tl__thread.tvt), or a custom
 * owner's, kept here in a hash table shared by all threads under one lock.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <sys/auxv.h>

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
  _Atomic uint64_t secret;                 /* mixed into tokens; set once */
} C = {.nothing = tl__vt_empty};
/* For debuggers (debug.c). */
const struct tl__debug_owners tl__debug_owners = {&C.b, &C.nb, offsetof(struct owner, disc),
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

/* Called with C.lock held. */
static struct owner **owner_slot(const struct tl_disc *disc, const void *owner)
{
  if (C.nb == 0)
    return NULL;
  struct owner **p = &C.b[owner_hash(disc, owner) & (C.nb - 1)];
  while (*p != NULL && ((*p)->disc != disc || (*p)->owner != owner))
    p = &(*p)->next;
  return p;
}

/* Called with C.lock held. A failed allocation keeps the old buckets. */
static void owners_grow(void)
{
  uint32_t nb = C.nb ? C.nb * 2 : 64;
  struct owner **b = tl__calloc(nb, sizeof *b);
  if (b == NULL)
    return;
  for (uint32_t i = 0; i < C.nb; i++) {
    for (struct owner *o = C.b[i], *next; o != NULL; o = next) {
      next = o->next;
      struct owner **p = &b[owner_hash(o->disc, o->owner) & (nb - 1)];
      o->next = *p;
      *p = o;
    }
  }
  tl__free(C.b);
  C.b = b;
  C.nb = nb;
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
  if (tl__lock(&C.lock) != 0)
    return EDEADLK;
  if (create && (C.n + 1) * 4 > C.nb * 3)
    owners_grow();
  struct owner **p = owner_slot(a->disc, owner);
  if (p != NULL && *p == NULL && create) {
    struct owner *o = tl__calloc(1, sizeof *o);
    if (o != NULL) {
      o->disc = a->disc;
      o->owner = owner;
      o->vt = tl__vt_empty;
      *p = o;
      C.n++;
    }
  }
  if (p == NULL || *p == NULL) {
    if (create) {
      tl__unlock(&C.lock);
      return ENOMEM;
    }
    ref->holder = &C.nothing;
  } else {
    ref->holder = &(*p)->vt;
  }
  ref->lock = &C.lock;
  return 0;
}

void tl__scope_atfork(int phase)
{
  if (phase < 0)
    tl__lock(&C.lock);
  else if (phase == 0)
    tl__unlock(&C.lock);
  else
    tl__lock_reset(&C.lock);
}

void tl__scope_leave(struct tl__scope_ref *ref)
{
  if (ref->lock != NULL)
    tl__unlock(ref->lock);
}

int tl_disc_end(const struct tl_disc *disc, void *owner)
{
  if (disc == NULL || owner == NULL)
    return EINVAL;
  /* Each round takes the owner's table out under the lock and destroys it
   * outside, so that destructors may use custom keys themselves; values
   * they bind for this owner are destroyed in the next round. */
  for (int round = 0;; round++) {
    if (tl__lock(&C.lock) != 0)
      return EDEADLK;
    struct owner **p = owner_slot(disc, owner);
    if (p == NULL || *p == NULL) {
      tl__unlock(&C.lock);
      return 0;
    }
    struct tl__vtab *_Atomic vt = atomic_exchange_explicit(&(*p)->vt, tl__vt_empty, memory_order_relaxed);
    if (vt == tl__vt_empty || round == 4) {
      struct owner *o = *p;
      *p = o->next;
      C.n--;
      tl__unlock(&C.lock);
      tl__free(o);
      tl__vtab_free(vt);                   /* what is left after 4 rounds is dropped */
      return 0;
    }
    tl__unlock(&C.lock);
    tl__destroy_vals(&vt, NULL, NULL, NULL);
  }
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

void *tl_singleton(tl_key_t key, void *(*make)(void *arg), void *arg)
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

/* ------------------------------------------------------------------------
 * Scoped bindings
 * ------------------------------------------------------------------------ */

static uint64_t token_check(uint64_t id, uint64_t seq, uint64_t key)
{
  uint64_t x = id * 0x9e3779b97f4a7c15ull ^ seq * 0xbf58476d1ce4e5b9ull ^ key ^
               atomic_load_explicit(&C.secret, memory_order_relaxed);
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 29) ^ 0x746c746f6b656e21ull;
}

/* Threads that race here compute the same value from the same bytes. */
static void secret_init(void)
{
  if (atomic_load_explicit(&C.secret, memory_order_relaxed) != 0)
    return;
  /* The kernel's 16 random bytes (AT_RANDOM) are not 8-byte aligned. */
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  uint64_t v = (uint64_t)(uintptr_t)&C;
  if (r != NULL)
    memcpy(&v, r + 8, sizeof v);
  atomic_store_explicit(&C.secret, v | 1, memory_order_relaxed);
}

int tl_bind(tl_key_t key, const void *value, tl_token_t *token)
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

int tl_unbind(tl_token_t *token)
{
  if (token == NULL || atomic_load_explicit(&C.secret, memory_order_relaxed) == 0 ||
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
 * child's values are when its making fails (task.c, make_undo): with the
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

/* ------------------------------------------------------------------------
 * Deferred calls and the end of a scope
 * ------------------------------------------------------------------------ */

int tl_defer(int scope, void (*fn)(void *arg), void *arg)
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
static void run_defers(struct tl__defer **list)
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

/* A task ends (finished, abandoned, or a root at thread exit): its open
 * bindings are dropped, innermost first, putting back what they replaced;
 * then its values go to their destructors; then its deferred calls run.
 * Called with the task current on this thread (or as th->override). */
void tl__task_scope_end(struct tl__thread *th, struct tl__task *t)
{
  struct tl__task_ext *x = t->x;
  while (x != NULL && x->nbinds > 0)
    bind_restore(&x->binds[--x->nbinds]);
  for (int pass = 0; pass < 2; pass++) {
    tl__destroy_vals(&t->vt, t, x && x->nshared ? is_shared : NULL, x);
    if (x == NULL || x->defers == NULL)
      break;
    run_defers(&x->defers);
    x = t->x;                              /* deferred calls may have made it */
  }
  (void)th;
}

/* The thread's loop ends (thread exit, process exit for the main thread,
 * or tl_loop_close): thread-scope values, then thread deferred calls. */
void tl__thread_scope_end(struct tl__thread *th)
{
  for (int pass = 0; pass < 2; pass++) {
    tl__destroy_vals(&th->tvt, NULL, NULL, NULL);
    if (th->defers == NULL)
      break;
    run_defers(&th->defers);
  }
}

int tl_loop_close(void)
{
  struct tl__thread *th = tl__self();
  if (th == NULL)
    return 0;                              /* no state: nothing to close */
  tl__thread_scope_end(th);
  return 0;
}
