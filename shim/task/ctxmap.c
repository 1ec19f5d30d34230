/* The context map: which task last saved itself into (or was made in)
 * each ucontext_t address. Only the address is kept; the struct is never
 * read after control has left it (doc/tracking.md).
 */
#include "../internal.h"
#include "ctxmap.h"
#include "../lock.h"
#include "../alloc.h"

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

/* The context map. */
static struct {
  struct map_shard shard[MAP_SHARDS];
} ctxmap;

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
  return &ctxmap.shard[*h % MAP_SHARDS];
}


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
      TL__STORE(t->hnext, *bk);
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
      TL__STORE(*p, t->hnext);
      s->n--;
      break;
    }
  }
  TL__STORE(t->mapped, 0);
}

void tl__map_del(struct tl__task *t)
{
  if (!TL__LOAD(t->mapped))
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
  struct tl__task *t = TL__LOAD(*bucket(s, h));
  for (int n = 0; t != NULL && TL__LOAD(t->ctx) != ctx && n < 4096; n++)
    t = TL__LOAD(t->hnext);
  return t != NULL && TL__LOAD(t->ctx) == ctx ? t : NULL;
}

/* The task that last saved itself at ctx, or NULL. */
struct tl__task *tl__map_get(const void *ctx)
{
  uint64_t h;
  struct map_shard *s = shard_of(ctx, &h);
  for (int tries = 0; tries < 64; tries++) {
    uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (seq & 1) {
      tl__cpu_relax();
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
  if (TL__LOAD(t->mapped) && t->ctx == ctx)
    return;
  tl__map_del(t);
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
  TL__STORE(t->ctx, ctx);
  struct tl__task **bk = bucket(s, h);
  TL__STORE(t->hnext, *bk);
  TL__STORE(*bk, t);
  s->n++;
  TL__STORE(t->mapped, 1);
  write_end(s);
  tl__unlock(&s->lock);
}

void tl__map_atfork(int phase)
{
  for (int i = 0; i < MAP_SHARDS; i++)
    tl__lock_atfork(&ctxmap.shard[phase == 0 ? MAP_SHARDS - 1 - i : i].lock, phase);
}

/* ------------------------------------------------------------------------
 * The hints: a thread's cache in front of the map
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

struct tl__task *tl__hint_get(struct tl__thread *th, const void *ctx)
{
  struct tl__task *t = tl__hint_task(th, ctx);
  return t != NULL && TL__LOAD(t->mapped) ? t : NULL;
}
