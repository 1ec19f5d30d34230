/* Value tables: the values of one scope (a task, a thread, a custom
 * owner), and the rounds of destructors that empty a table when its scope
 * ends.
 */
#include "internal.h"
#include "vtab.h"
#include "lock.h"
#include "alloc.h"
#include "thread.h"
#include "keys.h"
#include "drops.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Value tables
 * ------------------------------------------------------------------------ */

/* What follows the last entry of a table larger than TL__VT_SMALL. */
struct vt_tail {
  void *raw;                               /* what tl__alloc returned, before aligning */
  uint32_t used;                           /* live entries plus removed ones */
};

static struct tl__vtab *vt_handle(struct tl__ent *e, uint32_t cap)
{
  return (struct tl__vtab *)(void *)((uintptr_t)e | 2 * (cap - 1));
}

static struct vt_tail *vt_tail(struct tl__vtab *vt)
{
  return (struct vt_tail *)(void *)(tl__vt_ent(vt) + tl__vt_mask(vt) + 1);
}

/* An empty table of cap entries (a power of two, at least 4). */
static struct tl__vtab *vtab_alloc(uint32_t cap)
{
  size_t size = (size_t)cap * sizeof(struct tl__ent);
  struct tl__ent *e;
  if (cap <= TL__VT_SMALL) {
    e = tl__small_alloc(size);             /* aligned to its size, more than the handle needs */
    if (e == NULL)
      return NULL;
  } else {
    /* Aligned by hand to 4 x the capacity: a quarter of the size wasted
     * at most, on tables that are rare. */
    size_t align = 4 * (size_t)cap;
    char *raw = tl__alloc(size + sizeof(struct vt_tail) + align);
    if (raw == NULL)
      return NULL;
    e = (struct tl__ent *)(void *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
    struct vt_tail *tail = (struct vt_tail *)(void *)(e + cap);
    tail->raw = raw;
    tail->used = 0;
  }
  memset(e, 0, size);
  return vt_handle(e, cap);
}

/* How many bindings this thread has made (tl__vtab_put), 0 without state:
 * a round of destructors after which it has not changed bound nothing. */
static uint64_t binds_made(void)
{
  struct tl__thread *th = tl__tls;
  return th != NULL && th != TL__BUSY ? th->binds : 0;
}

void tl__vtab_free(struct tl__vtab *vt)
{
  if (vt == tl__vt_empty)
    return;
  uint32_t cap = tl__vt_mask(vt) + 1;
  if (cap <= TL__VT_SMALL)
    tl__small_free(tl__vt_ent(vt), (size_t)cap * sizeof(struct tl__ent));
  else
    tl__free(vt_tail(vt)->raw);
}

/* A copy of a table, for the report of an abandoned task. */
struct tl__vtab *tl__vtab_copy(struct tl__vtab *vt)
{
  if (vt == tl__vt_empty)
    return NULL;
  uint32_t cap = tl__vt_mask(vt) + 1;
  struct tl__vtab *copy = vtab_alloc(cap);
  if (copy == NULL)
    return NULL;
  memcpy(tl__vt_ent(copy), tl__vt_ent(vt), (size_t)cap * sizeof(struct tl__ent));
  if (cap > TL__VT_SMALL)
    vt_tail(copy)->used = vt_tail(vt)->used;
  return copy;
}

static int entry_dead(uint64_t key)
{
  return key == TL__TOMB || !tl__key_valid(key);
}

struct tl__ent *tl__vtab_find(struct tl__vtab *vt, tl_key_t key)
{
  struct tl__ent *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  for (uint32_t i = tl__key_slot(key) & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
    uint64_t k = atomic_load_explicit(&ent[i].key, memory_order_acquire);
    if (k == key)
      return &ent[i];
    if (k == TL__EMPTY)
      return NULL;
  }
  return NULL;
}

/* Whether an empty entry of vt may be taken. Small tables may fill up
 * completely (4 values in 4 entries), and an empty entry means room;
 * larger ones stay at most three quarters full so that misses end
 * quickly. Counts the entry as used when it may. */
static int vtab_take(struct tl__vtab *vt)
{
  uint32_t cap = tl__vt_mask(vt) + 1;
  if (cap <= TL__VT_SMALL)
    return 1;
  struct vt_tail *tail = vt_tail(vt);
  if (tail->used + 1 > cap / 4 * 3)
    return 0;
  tail->used++;
  return 1;
}

/* Called on a new table, made with room for what it receives. */
static void vtab_place(struct tl__vtab *vt, uint64_t key, void *value)
{
  struct tl__ent *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  uint32_t i = tl__key_slot(key) & mask;
  while (atomic_load_explicit(&ent[i].key, memory_order_relaxed) != TL__EMPTY)
    i = (i + 1) & mask;
  if (mask + 1 > TL__VT_SMALL)
    vt_tail(vt)->used++;
  atomic_store_explicit(&ent[i].value, value, memory_order_relaxed);
  atomic_store_explicit(&ent[i].key, key, memory_order_release);
}

/* A new table holding the live entries of old plus room for one more. The
 * old one stays valid until the caller publishes the new one and frees it. */
static struct tl__vtab *vtab_rebuild(struct tl__vtab *old)
{
  struct tl__ent *oe = tl__vt_ent(old);
  uint32_t omask = tl__vt_mask(old), live = 0;
  for (uint32_t i = 0; old != tl__vt_empty && i <= omask; i++) {
    uint64_t k = atomic_load_explicit(&oe[i].key, memory_order_relaxed);
    if (k != TL__EMPTY && !entry_dead(k))
      live++;
  }
  uint32_t cap = 4;
  while (cap <= TL__VT_SMALL ? cap < live + 1 : (live + 1) * 4 > cap * 3)
    cap *= 2;
  struct tl__vtab *vt = vtab_alloc(cap);
  if (vt == NULL)
    return NULL;
  for (uint32_t i = 0; old != tl__vt_empty && i <= omask; i++) {
    uint64_t k = atomic_load_explicit(&oe[i].key, memory_order_relaxed);
    if (k != TL__EMPTY && !entry_dead(k))
      vtab_place(vt, k, atomic_load_explicit(&oe[i].value, memory_order_relaxed));
  }
  return vt;
}

/* The first value of a scope: a table of 4 entries, published with the
 * value already in it. */
__attribute__((noinline)) int tl__vtab_first(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value)
{
  struct tl__ent *e = tl__small_alloc(4 * sizeof *e);
  if (e == NULL)
    return ENOMEM;
  memset(e, 0, 4 * sizeof *e);
  struct tl__vtab *vt = vt_handle(e, 4);
  struct tl__ent *home = tl__vt_home(vt, key);
  atomic_store_explicit(&home->value, value, memory_order_relaxed);
  atomic_store_explicit(&home->key, key, memory_order_relaxed);
  /* The thread's read view may show the empty table. */
  tl__view_drop();
  atomic_store_explicit(holder, vt, memory_order_release);
  return 0;
}

int tl__vtab_put(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value)
{
  struct tl__thread *th = tl__tls;
  if (th != NULL && th != TL__BUSY)
    th->binds++;
  struct tl__vtab *vt = atomic_load_explicit(holder, memory_order_relaxed);
  if (vt == tl__vt_empty)
    return tl__vtab_first(holder, key, value);
  /* The common cases, decided by the key's home entry: the key is there
   * already, or the entry is free in a small table (which may fill up; a
   * larger one counts what it takes, in vtab_take). An empty entry needs
   * no tombstone first: a reader stops at it until the key appears, and
   * the key is stored after the value. */
  struct tl__ent *home = tl__vt_home(vt, key);
  uint64_t hk = atomic_load_explicit(&home->key, memory_order_relaxed);
  if (TL__LIKELY(hk == key)) {
    tl__view_forget(key);
    atomic_store_explicit(&home->value, value, memory_order_release);
    return 0;
  }
  if (TL__LIKELY(hk == TL__EMPTY) && tl__vt_mask(vt) < TL__VT_SMALL) {
    atomic_store_explicit(&home->value, value, memory_order_relaxed);
    atomic_store_explicit(&home->key, key, memory_order_release);
    return 0;
  }
  struct tl__ent *reuse = NULL, *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  for (uint32_t i = tl__key_slot(key) & mask, n = 0; n <= mask; i = (i + 1) & mask, n++) {
    struct tl__ent *e = &ent[i];
    uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);
    if (k == key) {
      tl__view_forget(key);
      atomic_store_explicit(&e->value, value, memory_order_release);
      return 0;
    }
    if (k == TL__EMPTY) {
      if (reuse == NULL && vtab_take(vt))
        reuse = e;
      break;
    }
    if (reuse == NULL && entry_dead(k))
      reuse = e;
  }
  if (reuse != NULL) {
    /* The value first: a reader that sees the key sees its value. */
    atomic_store_explicit(&reuse->key, TL__TOMB, memory_order_relaxed);
    atomic_store_explicit(&reuse->value, value, memory_order_relaxed);
    atomic_store_explicit(&reuse->key, key, memory_order_release);
    return 0;
  }
  struct tl__vtab *nt = vtab_rebuild(vt);
  if (nt == NULL)
    return ENOMEM;
  vtab_place(nt, key, value);
  /* The thread's read view may show the table that goes (only the thread
   * running a scope replaces its table). */
  tl__view_drop();
  atomic_store_explicit(holder, nt, memory_order_release);
  tl__vtab_free(vt);
  return 0;
}

int tl__vtab_remove(struct tl__vtab *_Atomic *holder, tl_key_t key)
{
  struct tl__ent *e = tl__vtab_find(atomic_load_explicit(holder, memory_order_relaxed), key);
  if (e == NULL)
    return ENOENT;
  tl__view_forget(key);
  atomic_store_explicit(&e->key, TL__TOMB, memory_order_release);
  atomic_store_explicit(&e->value, NULL, memory_order_relaxed);
  return 0;
}

/* The entries of a table and how many there are (none in the empty one). */
static inline uint32_t vt_span(struct tl__vtab *vt, struct tl__ent **ent)
{
  *ent = tl__vt_ent(vt);
  return vt == tl__vt_empty ? 0 : tl__vt_mask(vt) + 1;
}

/* One round of tl__destroy_vals; whether it called a destructor. Inlined
 * twice, so that the common round (nothing to keep) has registers for all
 * it holds. */
static inline __attribute__((always_inline)) int destroy_round(struct tl__vtab *_Atomic *holder, struct tl__task *t,
                                                                int (*keep)(tl_key_t, void *, void *), void *arg)
{
  int called = 0;
  struct tl__vtab *vt = atomic_load_explicit(holder, memory_order_relaxed);
  struct tl__ent *ent;
  uint32_t n = vt_span(vt, &ent);
  for (uint32_t i = 0; i < n; i++) {
    struct tl__ent *e = &ent[i];
    uint64_t key = atomic_load_explicit(&e->key, memory_order_relaxed);
    if (key <= TL__TOMB)
      continue;
    void *value = atomic_load_explicit(&e->value, memory_order_relaxed);
    tl__view_forget(key);
    atomic_store_explicit(&e->key, TL__TOMB, memory_order_relaxed);
    atomic_store_explicit(&e->value, NULL, memory_order_relaxed);
    void (*destroy)(void *);
    if (value == NULL || !tl__key_destroy_fn(key, &destroy))
      continue;                            /* a deleted key's values are dropped */
    if (keep != NULL && keep(key, value, arg))
      continue;
    if (destroy != NULL) {
      destroy(value);
      called = 1;
      /* A destructor may bind values in this scope, which may replace the
       * table: the walk goes on in the new one. */
      struct tl__vtab *now = atomic_load_explicit(holder, memory_order_relaxed);
      if (TL__UNLIKELY(now != vt)) {
        vt = now;
        n = vt_span(vt, &ent);
      }
    } else if (t != NULL) {
      tl__drop_note(t, key, value);
    }
  }
  return called;
}

/* Destroys what a scope holds, in place, as pthreads do at thread exit:
 * each value is unbound, then passed to its key's destructor; if
 * destructors bind new values, the walk repeats, 4 rounds in all. Values
 * without a destructor are dropped (and reported for tasks). keep(key,
 * value, arg), when given, names values that are not this scope's to
 * destroy (shared by inheritance): they are dropped silently. */
void tl__destroy_vals(struct tl__vtab *_Atomic *holder, struct tl__task *t,
                      int (*keep)(tl_key_t key, void *value, void *arg), void *arg)
{
  for (int round = 0; round < 4; round++) {
    uint64_t binds = binds_made();
    int called = keep == NULL ? destroy_round(holder, t, NULL, NULL) : destroy_round(holder, t, keep, arg);
    /* Destructors run on this thread, and a scope is bound in only by the
     * thread running it: if they made no binding at all, none is left. */
    if (!called || binds_made() == binds)
      break;
  }
  /* A load and a store, not a locked exchange: no other thread binds in a
   * scope while it ends (a task's values are bound by the thread running
   * it, and a custom owner's table comes here in a variable of
   * tl_disc_end's own). */
  tl__view_drop();
  struct tl__vtab *vt = atomic_load_explicit(holder, memory_order_relaxed);
  atomic_store_explicit(holder, tl__vt_empty, memory_order_release);
  tl__vtab_free(vt);
}
