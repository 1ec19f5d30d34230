/* Tasks: their records, how a switch finds the task it goes to, and how a
 * task ends.
 *
 * Identity (SPEC 2.2). A task is an execution, not a struct or a stack:
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
#include "internal.h"

#include <errno.h>
#include <string.h>

#define MAP_SHARDS 64

/* Writers take the shard's lock and make seq odd while they change it;
 * readers take no lock: they read seq, walk, and read seq again (a
 * sequence lock). Records never go back to the system and replaced bucket
 * arrays are kept, so a walk that races with a writer reads valid memory
 * and is simply done again. */
struct map_shard {
  struct tl__lock lock;
  _Atomic uint32_t seq;
  struct tl__task **_Atomic b;             /* chains through tl__task.hnext */
  _Atomic uint32_t nb;
  uint32_t n;
  struct tl__task *_Atomic one;            /* the bucket used before the first allocation */
  struct tl__task **retired[32];           /* replaced bucket arrays, kept for readers */
};

/* What a makecontext changes under the lock comes first, in the lock's
 * cache line; the map's shards, which it does not touch, come last. */
static struct {
  struct tl__lock lock;                    /* the tree, the live list, the pool, the counts */
  struct tl__task *tree;
  int tree_changing;                       /* a tree_add or tree_del is under way */
  struct tl__task *live;                   /* made tasks that have not ended, and roots */
  struct tl__task *pool;                   /* free records */
  uint64_t made, finished, live_n, peak;
  uint64_t next_id;                        /* the next task's id */
  uint64_t abandoned;
  struct tl__task *kept;                   /* abandoned tasks kept for the leak report */
  uint64_t kept_n;                         /* how many are kept */
  struct tl__thread *main;                 /* the state of the thread that loaded us */
  struct map_shard map[MAP_SHARDS];
} S __attribute__((aligned(64))) = {.next_id = 1};
/* For debuggers (debug.c). */
const struct tl__debug_tasks tl__debug_tasks = {&S.live, &S.kept, &S.made, &S.finished, &S.abandoned, &S.peak};

/* A task's id is handed out under S.lock, where its record enters the
 * registry: a plain increment instead of a locked one, and ids follow the
 * order in which tasks enter the tree, which it relies on. A thread's root
 * made by a signal handler that interrupted this thread while it held
 * S.lock cannot take it: its id comes from the top of the range, counting
 * down, and it stays out of the indexes. */
static _Atomic uint64_t orphan_id = UINT64_MAX - 1;

/* ------------------------------------------------------------------------
 * Records
 * ------------------------------------------------------------------------ */

/* Called with S.lock held. */
static struct tl__task *record_alloc(void)
{
  if (S.pool == NULL) {
    size_t size = 64 * 1024, n = size / sizeof(struct tl__task);
    char *page = tl__pages(size);
    for (size_t i = 0; page != NULL && i < n; i++) {
      struct tl__task *t = (struct tl__task *)(page + i * sizeof(struct tl__task));
      t->lnext = S.pool;
      S.pool = t;
    }
  }
  struct tl__task *t = S.pool;
  if (t != NULL)
    S.pool = t->lnext;
  return t;
}

struct tl__task_ext *tl__task_ext(struct tl__task *t)
{
  if (t->x == NULL)
    t->x = tl__calloc(1, sizeof *t->x);
  return t->x;
}

static void ext_destroy(struct tl__task_ext *x)
{
  tl__free(x->name);
  tl__free(x->bt);
  if (x->held != NULL)
    tl__vtab_free(x->held);
  tl__free(x->binds);
  tl__free(x->shared);
  tl__free(x->sets);
  for (struct tl__defer *d = x->defers, *next; d != NULL; d = next) {
    next = d->next;
    tl__free(d);
  }
  tl__free(x);
}

static void ext_free(struct tl__task *t)
{
  struct tl__task_ext *x = t->x;
  if (x == NULL)
    return;
  t->x = NULL;
  ext_destroy(x);
}

/* Called with S.lock held. The id goes to 0 first: a stale pointer to this
 * record (a context copied after the task ended) no longer matches. The
 * extension is freed by the caller, outside the lock. */
static void record_free(struct tl__task *t)
{
  t->id = 0;
  atomic_store_explicit(&t->state, TL__FINISHED, memory_order_relaxed);
  t->lnext = S.pool;
  S.pool = t;
}

static void live_add(struct tl__task *t)
{
  t->lprev = NULL;
  t->lnext = S.live;
  if (S.live)
    S.live->lprev = t;
  S.live = t;
}

static void live_del(struct tl__task *t)
{
  if (t->lprev)
    t->lprev->lnext = t->lnext;
  else if (S.live == t)
    S.live = t->lnext;
  if (t->lnext)
    t->lnext->lprev = t->lprev;
  t->lnext = t->lprev = NULL;
}

/* ------------------------------------------------------------------------
 * The stack-range tree: a treap ordered by (hi ascending, id descending),
 * with the heap priority derived from the record's address, so a record
 * needs only two links, and one whose id changes in place (ended_take)
 * keeps its priority. Called with S.lock held.
 * ------------------------------------------------------------------------ */

static uint64_t prio(const struct tl__task *t)
{
  uint64_t x = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

static int before(uintptr_t hi, uint64_t id, const struct tl__task *t)
{
  return hi < t->hi || (hi == t->hi && id > t->id);
}

static struct tl__task *tree_insert(struct tl__task *root, struct tl__task *n)
{
  if (root == NULL) {
    n->left = n->right = NULL;
    return n;
  }
  if (before(n->hi, n->id, root)) {
    root->left = tree_insert(root->left, n);
    if (prio(root->left) > prio(root)) {
      struct tl__task *l = root->left;
      root->left = l->right;
      l->right = root;
      return l;
    }
  } else {
    root->right = tree_insert(root->right, n);
    if (prio(root->right) > prio(root)) {
      struct tl__task *r = root->right;
      root->right = r->left;
      r->left = root;
      return r;
    }
  }
  return root;
}

static struct tl__task *tree_merge(struct tl__task *a, struct tl__task *b)
{
  if (a == NULL)
    return b;
  if (b == NULL)
    return a;
  if (prio(a) > prio(b)) {
    a->right = tree_merge(a->right, b);
    return a;
  }
  b->left = tree_merge(a, b->left);
  return b;
}

static struct tl__task *tree_delete(struct tl__task *root, struct tl__task *n)
{
  if (root == NULL)
    return NULL;
  if (root == n)
    return tree_merge(n->left, n->right);
  if (before(n->hi, n->id, root))
    root->left = tree_delete(root->left, n);
  else
    root->right = tree_delete(root->right, n);
  return root;
}

/* The first task in tree order at or after (hi, id). */
static struct tl__task *tree_ceil(uintptr_t hi, uint64_t id)
{
  struct tl__task *n = S.tree, *best = NULL;
  while (n != NULL) {
    if (before(hi, id, n) || (hi == n->hi && id == n->id)) {
      best = n;
      n = n->left;
    } else {
      n = n->right;
    }
  }
  return best;
}

/* The innermost live task whose stack holds sp. Ranges are visited by
 * increasing top; the first one that also starts at or below sp is the
 * innermost for properly nested stacks. The walk is bounded: a pathological
 * layout gives "unknown", never a long stall. */
static struct tl__task *tree_find(uintptr_t sp)
{
  struct tl__task *n = tree_ceil(sp + 1, UINT64_MAX);
  for (int i = 0; n != NULL && i < 64; i++) {
    if (n->lo <= sp && atomic_load_explicit(&n->state, memory_order_relaxed) != TL__FINISHED)
      return n;
    n = tree_ceil(n->hi, n->id - 1);
  }
  return NULL;
}

/* Changes of the tree are marked (tree_changing) for a signal handler
 * that interrupts them on the same thread: see find_locked. */
static void tree_add(struct tl__task *t)
{
  S.tree_changing = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  S.tree = tree_insert(S.tree, t);
  t->in_tree = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  S.tree_changing = 0;
}

static void tree_del(struct tl__task *t)
{
  if (t->in_tree) {
    S.tree_changing = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    S.tree = tree_delete(S.tree, t);
    t->in_tree = 0;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    S.tree_changing = 0;
  }
}

/* The task whose stack holds sp, from the tree. A signal handler that
 * interrupted this very thread while it held S.lock cannot take the lock
 * (tl__lock says EDEADLK); no other thread can change the tree meanwhile,
 * since the lock is held, so the handler reads it as it is, unless the
 * interrupted code was changing it. That case matters: the interrupted
 * code is often a read that repairs the current task (tl__resolve), and
 * the handler would otherwise answer with the very task being repaired. */
static struct tl__task *find_locked(uintptr_t sp)
{
  int rc = tl__lock(&S.lock);
  if (rc == EDEADLK) {
    int changing = S.tree_changing;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return changing ? NULL : tree_find(sp);
  }
  if (rc != 0)
    return NULL;
  struct tl__task *t = tree_find(sp);
  tl__unlock(&S.lock);
  return t;
}

/* ------------------------------------------------------------------------
 * The context map: ucontext_t address -> the task that last saved itself
 * there. Sharded by address; chains run through the records themselves, so
 * the map costs one pointer per task plus its buckets.
 * ------------------------------------------------------------------------ */

static uint64_t addr_hash(const void *p)
{
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  return x ^ (x >> 29);
}

static struct map_shard *shard_of(const void *ctx, uint64_t *h)
{
  *h = addr_hash(ctx);
  return &S.map[*h % MAP_SHARDS];
}

/* Fields that the map's readers load while a writer may store them: plain
 * fields accessed with relaxed atomic operations, so that the races the
 * sequence lock tolerates are well defined (and quiet under TSan). */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

static struct tl__task **bucket(struct map_shard *s, uint64_t h)
{
  uint32_t nb = atomic_load_explicit(&s->nb, memory_order_relaxed);
  return nb ? &atomic_load_explicit(&s->b, memory_order_relaxed)[(h / MAP_SHARDS) & (nb - 1)]
            : (struct tl__task **)&s->one;
}

static void write_begin(struct map_shard *s)
{
  atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, memory_order_relaxed) + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

static void write_end(struct map_shard *s)
{
  atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, memory_order_relaxed) + 1, memory_order_release);
}

/* Called with the shard's lock held, inside write_begin/write_end. A failed
 * allocation keeps the old table: chains get longer, nothing is lost. */
static void shard_grow(struct map_shard *s)
{
  unsigned r = 0;
  while (r < sizeof s->retired / sizeof s->retired[0] && s->retired[r] != NULL)
    r++;
  if (s->nb != 0 && r == sizeof s->retired / sizeof s->retired[0])
    return;
  uint32_t nb = s->nb ? s->nb * 2 : 16;
  struct tl__task **b = tl__calloc(nb, sizeof *b);
  if (b == NULL)
    return;
  struct tl__task **old = s->b;
  uint32_t oldn = s->nb;
  struct tl__task *chain = s->one;
  for (uint32_t i = 0; i <= oldn; i++) {
    struct tl__task *t = i < oldn ? old[i] : chain, *next;
    for (; t; t = next) {
      next = t->hnext;
      struct tl__task **bk = &b[(addr_hash(t->ctx) / MAP_SHARDS) & (nb - 1)];
      STORE(t->hnext, *bk);
      *bk = t;
    }
  }
  atomic_store_explicit(&s->b, b, memory_order_relaxed);
  atomic_store_explicit(&s->nb, nb, memory_order_relaxed);
  atomic_store_explicit(&s->one, NULL, memory_order_relaxed);
  if (old != NULL)
    s->retired[r] = old;
}

/* Called with the shard's lock held, inside write_begin/write_end. */
static void map_unlink(struct map_shard *s, uint64_t h, struct tl__task *t)
{
  for (struct tl__task **p = bucket(s, h); *p; p = &(*p)->hnext) {
    if (*p == t) {
      STORE(*p, t->hnext);
      s->n--;
      break;
    }
  }
  STORE(t->mapped, 0);
}

static void map_del(struct tl__task *t)
{
  if (!LOAD(t->mapped))
    return;
  uint64_t h;
  struct map_shard *s = shard_of(t->ctx, &h);
  if (tl__lock(&s->lock) != 0)
    return;
  if (t->mapped) {
    write_begin(s);
    map_unlink(s, h, t);
    write_end(s);
  }
  tl__unlock(&s->lock);
}

static struct tl__task *map_walk(struct map_shard *s, uint64_t h, const void *ctx)
{
  struct tl__task *t = LOAD(*bucket(s, h));
  for (int n = 0; t != NULL && LOAD(t->ctx) != ctx && n < 4096; n++)
    t = LOAD(t->hnext);
  return t != NULL && LOAD(t->ctx) == ctx ? t : NULL;
}

/* The task that last saved itself at ctx, or NULL. */
static struct tl__task *map_get(const void *ctx)
{
  uint64_t h;
  struct map_shard *s = shard_of(ctx, &h);
  for (int tries = 0; tries < 64; tries++) {
    uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (seq & 1) {
      __builtin_ia32_pause();
      continue;
    }
    struct tl__task *t = map_walk(s, h, ctx);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) == seq)
      return t;
  }
  /* A writer keeps changing the shard, or this thread is that writer and a
   * signal handler switches now: the lock settles it, or says no. */
  if (tl__lock(&s->lock) != 0)
    return NULL;
  struct tl__task *t = map_walk(s, h, ctx);
  tl__unlock(&s->lock);
  return t;
}

/* t saved itself (or was made) at ctx: it replaces whoever was there, and
 * its entry at its previous address goes. */
void tl__map_save(struct tl__task *t, const void *ctx)
{
  if (t->flags & TL__F_MADE)
    tl__flag_clear(t, TL__F_MADE);
  if (LOAD(t->mapped) && t->ctx == ctx)
    return;
  map_del(t);
  uint64_t h;
  struct map_shard *s = shard_of(ctx, &h);
  if (tl__lock(&s->lock) != 0)
    return;
  write_begin(s);
  for (struct tl__task **p = bucket(s, h); *p; p = &(*p)->hnext) {
    if ((*p)->ctx == ctx) {
      map_unlink(s, h, *p);
      break;
    }
  }
  /* Two tasks a bucket on average: chains stay short, and the buckets (with
   * the replaced arrays kept for readers) cost about 8 bytes a task. */
  if (s->n >= 2 * s->nb)
    shard_grow(s);
  STORE(t->ctx, ctx);
  struct tl__task **bk = bucket(s, h);
  STORE(t->hnext, *bk);
  STORE(*bk, t);
  s->n++;
  STORE(t->mapped, 1);
  write_end(s);
  tl__unlock(&s->lock);
}

/* ------------------------------------------------------------------------
 * Switching
 * ------------------------------------------------------------------------ */

/* Two-way: the newest answer goes first, the one it displaces second, so
 * two contexts that hash alike (a scheduler and its coroutine) both stay. */
void tl__hint_put(struct tl__thread *th, const void *ctx, struct tl__task *t)
{
  unsigned i = tl__hint_index(ctx);
  if (th->hint[i].ctx != ctx)
    th->hint[i ^ 1] = th->hint[i];
  th->hint[i].ctx = ctx;
  th->hint[i].task = t;
  th->hint[i].id = t->id;
}

static struct tl__task *hint_get(struct tl__thread *th, const void *ctx)
{
  struct tl__task *t = tl__hint_task(th, ctx);
  return t != NULL && LOAD(t->mapped) ? t : NULL;
}

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
  uintptr_t sp = (uintptr_t)ucp->uc_mcontext.gregs[REG_RSP];
  struct tl__task *t = map_get(ucp);
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
  }
  return t;
}

/* ------------------------------------------------------------------------
 * Lifetime
 * ------------------------------------------------------------------------ */

/* Ends t's scope (bindings, values, deferred calls) with t as the task
 * that reads and writes see, whatever stack this runs on (tl__as_begin). */
void tl__destroy_values(struct tl__thread *th, struct tl__task *t)
{
  struct tl__as saved = tl__as_begin(th, t);
  tl__task_scope_end(th, t);
  tl__as_end(th, saved);
}

/* An ended or abandoned task leaves every index and its record goes, in
 * one pass under the registry lock; *count is the statistic it adds to. */
static void task_release(struct tl__task *t, uint64_t *count)
{
  tl__tools_gone(t);
  map_del(t);
  if (tl__lock(&S.lock) != 0)
    return;
  tree_del(t);
  if (t->lprev != NULL || S.live == t) {
    live_del(t);
    S.live_n--;
  }
  if (count != NULL)
    (*count)++;
  struct tl__task_ext *x = t->x;
  t->x = NULL;
  record_free(t);
  tl__unlock(&S.lock);
  if (x != NULL)
    ext_destroy(x);
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
 * records more a thread. A thread's finished tasks join S.finished and
 * leave S.live_n at the same moment; tl__task_stats adds the ones not
 * counted yet, and the peak, taken at makecontext, may include up to
 * TL__ENDED_MAX finished tasks of each other thread. */

/* Removes the waiting tasks from the map, except the one at keep, whose
 * entry the makecontext under way replaces. */
static void ended_unmap(struct tl__thread *th, const void *keep)
{
  for (uint32_t i = 0; i < th->nended; i++) {
    struct tl__task *t = th->ended[i];
    if (LOAD(t->mapped) && t->ctx != keep)
      map_del(t);
  }
}

/* Called with S.lock held: counts the tasks that finished on th since the
 * last call and releases the waiting ones that have left the map (the one
 * that a makecontext is about to replace, or one whose map_del found its
 * shard locked by this very thread, waits for the next call). Their
 * extensions go to xs, for the caller to free without the lock; returns
 * how many. */
static uint32_t ended_release(struct tl__thread *th, struct tl__task_ext **xs)
{
  uint32_t fin = th->uncounted, kept = 0, n = 0;
  S.finished += fin;
  S.live_n -= fin;
  __atomic_store_n(&th->uncounted, 0, __ATOMIC_RELAXED);
  for (uint32_t i = 0; i < th->nended; i++) {
    struct tl__task *t = th->ended[i];
    if (LOAD(t->mapped)) {
      th->ended[kept++] = t;
      continue;
    }
    tree_del(t);
    if (t->lprev != NULL || S.live == t)
      live_del(t);
    if (t->x != NULL)
      xs[n++] = t->x;
    t->x = NULL;
    record_free(t);
  }
  th->nended = kept;
  return n;
}

static void ext_destroy_all(struct tl__task_ext **xs, uint32_t n)
{
  while (n > 0)
    ext_destroy(xs[--n]);
}

/* The task of th's ended list that is mapped at ctx: there can be only
 * one, and then it is the map's answer for ctx, found without the map. */
static struct tl__task *ended_at(struct tl__thread *th, const void *ctx)
{
  for (uint32_t i = 0; i < th->nended; i++) {
    struct tl__task *t = th->ended[i];
    if (t->ctx == ctx && LOAD(t->mapped))
      return t;
  }
  return NULL;
}

/* Called with S.lock held, after ended_release. When old, the task last
 * mapped at the context being made, finished on this thread and waits
 * there with the same stack, its record becomes the new task's in place:
 * it stays in the live list, in the map at the same address, and in the
 * tree at the same position, which holds because the tree orders tasks of
 * one stack by decreasing id, old is the newest of its stack, and the new
 * id is newer still (the heap priority comes from the record's address,
 * which does not change). This is the loop of most programs: make a task
 * in a context, run it to its end, make the next one in the same context
 * and stack. Returns old, out of the ended list, or NULL. */
static struct tl__task *ended_take(struct tl__thread *th, struct tl__task *old, uintptr_t lo, uintptr_t hi)
{
  if (old->lo != lo || old->hi != hi || !old->in_tree)
    return NULL;
  for (uint32_t i = 0; i < th->nended; i++) {
    if (th->ended[i] == old) {
      if (tree_ceil(hi, UINT64_MAX) != old)
        return NULL;
      th->ended[i] = th->ended[--th->nended];
      return old;
    }
  }
  return NULL;
}

/* Releases th's waiting tasks now. */
static void ended_flush(struct tl__thread *th)
{
  if (th->nended == 0 && th->uncounted == 0)
    return;
  struct tl__task_ext *xs[TL__ENDED_MAX];
  ended_unmap(th, NULL);
  if (tl__lock(&S.lock) != 0)
    return;
  uint32_t n = ended_release(th, xs);
  tl__unlock(&S.lock);
  ext_destroy_all(xs, n);
}

/* With leak checking on, an abandoned task stays for the exit report with
 * the values it held. At most TL__KEEP_MAX are kept; the report counts the
 * rest from the statistics. */

static int task_keep(struct tl__task *t)
{
  if (!tl__opt.leaks)
    return 0;
  tl__tools_gone(t);
  map_del(t);
  if (tl__lock(&S.lock) != 0)
    return 0;
  int kept = S.kept_n < TL__KEEP_MAX;
  if (kept) {
    S.abandoned++;                         /* else task_release counts it */
    tree_del(t);
    live_del(t);
    S.live_n--;
    t->lnext = S.kept;
    t->lprev = NULL;
    if (S.kept)
      S.kept->lprev = t;
    S.kept = t;
    S.kept_n++;
  }
  tl__unlock(&S.lock);
  return kept;
}

/* A task whose ucontext_t is made again, or whose stack a new task takes
 * before it ever ran, can never run: its values are destroyed here, on the
 * thread that made the new context, with the abandoned task current so that
 * destructors see its values. */
static void task_abandon(struct tl__thread *th, struct tl__task *t)
{
  atomic_store_explicit(&t->state, TL__ABANDONED, memory_order_relaxed);
  if (tl__opt.leaks && tl__task_ext(t) != NULL)
    t->x->held = tl__vtab_copy(atomic_load_explicit(&t->vt, memory_order_relaxed));
  tl__destroy_values(th, t);
  if (!task_keep(t))
    task_release(t, &S.abandoned);
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
  if (TL__UNLIKELY(c != t)) {
    if (TL__UNLIKELY(tl__fibers_on))
      tl__fibers_fix(th, c, t);
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
  /* A task that never bound a value, opened a binding or deferred a call
   * (no extension) has nothing to end. */
  if (t->x != NULL || atomic_load_explicit(&t->vt, memory_order_relaxed) != tl__vt_empty)
    tl__destroy_values(th, t);
  atomic_store_explicit(&t->state, TL__FINISHED, memory_order_relaxed);
}

/* Its record goes once uc_link's task has been predicted (which skips
 * finished tasks): it waits in th's ended list (see ended_release). */
static void task_retire(struct tl__thread *th, struct tl__task *t)
{
  /* Only the extension (a registered stack, a fiber) gives the tools anything to do. */
  if (TL__UNLIKELY(t->x != NULL))
    tl__tools_gone(t);
  if (TL__UNLIKELY(th->nended == TL__ENDED_MAX)) {
    ended_flush(th);
    if (th->nended == TL__ENDED_MAX) {
      task_release(t, &S.finished);        /* still full: a signal handler interrupted a lock holder */
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
  if (TL__UNLIKELY(tl__fibers_on))
    tl__fibers_end(th, n, link == NULL);
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

/* Called with S.lock held: t becomes the record of a new task made by
 * cur, whether it comes from the pool (zeroed, with its stack) or is
 * reused in place (ended_take). */
static inline void record_start(struct tl__task *t, struct tl__task *cur, void (*entry)(void))
{
  /* The id first: it is part of the tree's order. */
  STORE(t->id, S.next_id++);
  if (!t->in_tree) {
    /* Indexed now, in the same pass: nothing can switch to it before the
     * real makecontext has returned. */
    tree_add(t);
    live_add(t);
  }
  atomic_store_explicit(&t->vt, tl__vt_empty, memory_order_relaxed);
  t->entry = entry;
  t->parent = cur ? cur->id : 0;
  t->flags = 0;
  t->ran_on = 0;
  t->x = NULL;
  atomic_store_explicit(&t->state, TL__NEW, memory_order_relaxed);
  S.made++;
  if (++S.live_n > S.peak)
    S.peak = S.live_n;
}

/* The loop most programs run, in one pass: the only task waiting in th's
 * ended list finished in this very context, on this very stack, and its
 * record becomes the new task's (ended_take) under one short hold of the
 * lock. Nothing else can be at ucp (a map entry is unique), so there is
 * nothing to abandon; the general path handles everything else. */
static struct tl__task *remake(struct tl__thread *th, struct tl__task *cur, const ucontext_t *ucp, uintptr_t lo,
                               uintptr_t hi, void (*entry)(void))
{
  if (th->nended != 1)
    return NULL;
  struct tl__task *t = th->ended[0];
  if (t->ctx != ucp || !LOAD(t->mapped) || t->lo != lo || t->hi != hi)
    return NULL;
  if (tl__lock_fast(&S.lock) != 0)
    return NULL;
  if (!t->in_tree || tree_ceil(hi, UINT64_MAX) != t) {
    tl__unlock(&S.lock);
    return NULL;
  }
  uint32_t fin = th->uncounted;
  S.finished += fin;
  S.live_n -= fin;
  __atomic_store_n(&th->uncounted, 0, __ATOMIC_RELAXED);
  th->nended = 0;
  struct tl__task_ext *x = t->x;
  record_start(t, cur, entry);
  tl__unlock(&S.lock);
  if (x != NULL)
    ext_destroy(x);
  return t;
}

/* The new task t is entered for ucp. The trampoline finds the task, its id
 * and the program's function in callee-saved registers of the new
 * context, which the real makecontext leaves alone (it sets RIP, RSP, RBX
 * and the argument registers): setcontext restores them, and a copy of
 * the context carries them along. The task takes ucp's entry in the map,
 * and the thread's hint for it: the switch that starts it usually comes
 * next, on this thread. */
static void commit(struct tl__thread *th, struct tl__task *t, ucontext_t *ucp, void (*entry)(void))
{
  ucp->uc_mcontext.gregs[REG_R12] = (greg_t)(uintptr_t)t;
  ucp->uc_mcontext.gregs[REG_R13] = (greg_t)t->id;
  ucp->uc_mcontext.gregs[REG_R14] = (greg_t)(uintptr_t)entry;
  tl__tools_made(t);
  if (!(LOAD(t->mapped) && t->ctx == ucp))
    tl__map_save(t, ucp);                  /* a record reused in place is there already */
  tl__flag_set(t, TL__F_MADE);
  tl__hint_put(th, ucp, t);
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
  old = ended_at(th, ucp);
  if (old == NULL && (old = hint_get(th, ucp)) == NULL)
    old = map_get(ucp);
  if (old != NULL && abandonable(old, cur)) {
    task_abandon(th, old);
    old = NULL;
  }
  if (th->nended != 0)
    ended_unmap(th, ucp);

  struct tl__task_ext *xs[TL__ENDED_MAX];
  uint32_t nxs = 0;
  if (tl__lock(&S.lock) != 0) {
    *oldp = old;
    return NULL;
  }
  if (th->nended != 0 || th->uncounted != 0)
    nxs = ended_release(th, xs);
  if (old != NULL && th->nended != 0)
    t = ended_take(th, old, lo, hi);
  if (t != NULL) {
    if (t->x != NULL)
      xs[nxs++] = t->x;
  } else {
    /* A never-started task whose stack the new one takes: programs that
     * make millions of contexts and never run them reuse the same stacks. */
    prevnew = tree_ceil(hi, UINT64_MAX);
    if (prevnew != NULL && (prevnew->hi != hi || prevnew->lo != lo ||
                            atomic_load_explicit(&prevnew->state, memory_order_relaxed) != TL__NEW ||
                            !abandonable(prevnew, cur)))
      prevnew = NULL;
    t = record_alloc();
    if (t != NULL) {
      memset(t, 0, sizeof *t);
      t->lo = lo;
      t->hi = hi;
    }
  }
  if (t != NULL)
    record_start(t, cur, entry);
  tl__unlock(&S.lock);
  ext_destroy_all(xs, nxs);
  if (prevnew != NULL)
    task_abandon(th, prevnew);
  *oldp = old;
  return t;
}

/* The child could not start with what it should inherit: it runs
 * untracked rather than with wrong values. Its values go as an abandoned
 * task's do, with it current for its destructors. */
static __attribute__((noinline)) void make_undo(struct tl__thread *th, struct tl__task *t)
{
  tl__destroy_values(th, t);
  task_release(t, NULL);
  if (tl__lock(&S.lock) == 0) {
    S.made--;
    tl__unlock(&S.lock);
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
  if (TL__UNLIKELY(t == NULL))
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
      map_del(old);
    return NULL;
  }
  if (TL__UNLIKELY(tl__opt.backtrace))
    tl__bt_capture_task(t);
  commit(th, t, ucp, entry);
  return t;
}

/* ------------------------------------------------------------------------
 * Root tasks
 * ------------------------------------------------------------------------ */

void tl__root_init(struct tl__thread *th)
{
  struct tl__task *r = &th->root;
  r->vt = tl__vt_empty;
  r->flags = TL__F_ROOT | TL__F_STARTED;
  atomic_store_explicit(&r->state, TL__RUNNING, memory_order_relaxed);
  if (tl__lock(&S.lock) != 0) {
    r->id = atomic_fetch_sub_explicit(&orphan_id, 1, memory_order_relaxed);
    return;
  }
  r->id = S.next_id++;
  if (S.main == NULL)
    S.main = th;
  tree_add(r);
  live_add(r);
  tl__unlock(&S.lock);
}

void tl__root_forget(struct tl__thread *th)
{
  struct tl__task *r = &th->root;
  struct tl__task_ext *xs[TL__ENDED_MAX];
  map_del(r);
  ended_unmap(th, NULL);
  if (tl__lock(&S.lock) != 0)
    return;
  uint32_t n = ended_release(th, xs);
  tree_del(r);
  live_del(r);
  if (S.main == th)
    S.main = NULL;
  tl__unlock(&S.lock);
  ext_destroy_all(xs, n);
}

void tl__root_fini(struct tl__thread *th)
{
  tl__view_drop();
  th->current = &th->root;
  th->in_switch = 0;
  tl__destroy_values(th, &th->root);
  tl__thread_scope_end(th);
  tl__root_forget(th);
  ext_free(&th->root);
}

/* ------------------------------------------------------------------------
 * Process-wide events
 * ------------------------------------------------------------------------ */

void tl__task_atfork(int phase)
{
  if (phase < 0) {
    tl__lock(&S.lock);
    for (int i = 0; i < MAP_SHARDS; i++)
      tl__lock(&S.map[i].lock);
    tl__thread_atfork(-1);
    return;
  }
  if (phase == 0) {
    tl__thread_atfork(0);
    for (int i = MAP_SHARDS - 1; i >= 0; i--)
      tl__unlock(&S.map[i].lock);
    tl__unlock(&S.lock);
    return;
  }
  for (int i = 0; i < MAP_SHARDS; i++)
    tl__lock_reset(&S.map[i].lock);
  tl__lock_reset(&S.lock);
  /* Tasks that were running on the threads the child does not have can
   * only be resumed by a switch now; they are suspended. */
  struct tl__thread *me = tl__tls;
  for (struct tl__task *t = S.live; t; t = t->lnext)
    if (!(t->flags & TL__F_ROOT) && atomic_load_explicit(&t->state, memory_order_relaxed) == TL__RUNNING &&
        (me == NULL || me->current != t))
      atomic_store_explicit(&t->state, TL__SUSPENDED, memory_order_relaxed);
  tl__thread_atfork(1);
  if (me != NULL)
    S.main = me;
}

/* At process exit the main thread's root values are destroyed (SPEC 2.4),
 * and those of the thread that called exit() if it is another one. */
void tl__task_exit(void)
{
  struct tl__thread *th = tl__tls;
  if (th != NULL && th != TL__BUSY) {
    ended_flush(th);
    struct tl__thread *main = S.main;
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
  tl__report_exit();
  /* After the report, which shows task names: the roots' extensions are
   * freed, so that leak checkers see nothing of ours left. */
  if (th != NULL && th != TL__BUSY) {
    if (S.main != NULL)
      ext_free(&S.main->root);
    ext_free(&th->root);
  }
}

int tl__task_foreach(int (*fn)(struct tl__task *t, void *arg), void *arg)
{
  if (tl__lock(&S.lock) != 0)
    return EDEADLK;
  int r = 0;
  for (struct tl__task *t = S.live; t != NULL && r == 0; t = t->lnext)
    r = fn(t, arg);
  for (struct tl__task *t = S.kept; t != NULL && r == 0; t = t->lnext)
    r = fn(t, arg);
  tl__unlock(&S.lock);
  return r;
}

void tl__task_stats(struct tl__stats *st)
{
  if (tl__lock(&S.lock) != 0)
    return;
  /* Under the lock, which ended_release takes to move a thread's count of
   * finished tasks into S.finished: each task is counted once. */
  uint64_t ended = 0;
  tl__thread_stats(&st->switches, &st->untracked, &ended);
  st->created = S.made;
  st->finished = S.finished + ended;
  st->abandoned = S.abandoned;
  st->peak = S.peak;
  tl__unlock(&S.lock);
}

/* ------------------------------------------------------------------------
 * Public
 * ------------------------------------------------------------------------ */

tl_task_t *tl_current(void)
{
  return (tl_task_t *)tl__task_now();
}

uint64_t tl_task_id(const tl_task_t *task)
{
  return task ? ((const struct tl__task *)task)->id : 0;
}

int tl_task_set_name(tl_task_t *task, const char *name)
{
  struct tl__task *t = task ? (struct tl__task *)task : tl__task_now();
  if (t == NULL)
    return ENOMEM;                         /* the thread's state could not be made */
  if (t->id == 0)
    return EINVAL;
  char *copy = NULL;
  if (name != NULL) {
    size_t len = strlen(name) + 1;
    if ((copy = tl__alloc(len)) == NULL)
      return ENOMEM;
    memcpy(copy, name, len);
  }
  struct tl__task_ext *x = tl__task_ext(t);
  if (x == NULL) {
    tl__free(copy);
    return ENOMEM;
  }
  char *old = x->name;
  x->name = copy;
  tl__free(old);
  return 0;
}

const char *tl_task_name(const tl_task_t *task)
{
  const struct tl__task *t = task ? (const struct tl__task *)task : tl__task_now();
  return t != NULL && t->x != NULL ? t->x->name : NULL;
}

int tl_foreach(tl_task_t *task, int (*fn)(tl_key_t key, const char *name, void *value, void *arg), void *arg)
{
  struct tl__task *t = task ? (struct tl__task *)task : tl__task_now();
  if (t == NULL || fn == NULL || t->id == 0)
    return EINVAL;
  for (uint32_t i = 0;; i++) {
    /* The table is read again at each step: fn may bind values. */
    struct tl__vtab *vt = atomic_load_explicit(&t->vt, memory_order_acquire);
    if (vt == tl__vt_empty || i > tl__vt_mask(vt))
      return 0;
    struct tl__ent *e = &tl__vt_ent(vt)[i];
    uint64_t key = atomic_load_explicit(&e->key, memory_order_acquire);
    if (key <= TL__TOMB || !tl__key_valid(key))
      continue;
    int r = fn(key, tl__key_name(key), atomic_load_explicit(&e->value, memory_order_relaxed), arg);
    if (r != 0)
      return r;
  }
}
