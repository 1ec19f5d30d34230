/* Keys and values.
 *
 * A key is (generation << 32 | slot << 1). The slot indexes the key
 * records and each task's value table; the generation changes when the key
 * is deleted, so an old handle never matches the slot's next key (SPEC
 * 3.1). The slot is shifted so that the read path finds a key's entry with
 * one AND and an x86 scaled address (internal.h, struct tl__vtab); a key
 * with the low bit set is never valid.
 *
 * Reads take no lock and allocate nothing: tl_get finds the task, looks at
 * one entry of its value table, and checks the key's generation in a flat
 * array that is replaced, never resized in place, when it grows. Old arrays
 * are kept until exit, so a reader holding one reads valid memory.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define CHUNK_BITS 12
#define CHUNK (1u << CHUNK_BITS)
#define MAX_CHUNKS (1u << 16)              /* 2^28 keys alive at once */

struct keyrec {
  uint32_t gen;                            /* the live key's generation; 0 while free */
  uint32_t next_free;                      /* slot + 1 of the next free record */
  tl_key_attr_t attr;                      /* attr.name is our own copy */
};

/* For each slot, one word that the lock-free paths read at once: the live
 * key's generation in the low half (0 while the slot is free) and, in the
 * high half, what tl_set needs to know of the key's attributes (W_*). One
 * load then tells that a key is live and how to bind it, with no record to
 * read and nothing to check again. */
struct gens {
  uint32_t cap;
  struct gens *older;                      /* kept for readers that still hold it */
  _Atomic uint64_t word[];
};

#define W_NOT_TASK (1ull << 32)            /* scope other than TL_SCOPE_TASK */
#define W_SCOPED_ONLY (1ull << 33)         /* TL_KEY_SCOPED_ONLY */
#define W_NO_DESTROY (1ull << 34)          /* no destructor */

/* The generations before the first key: none, so that readers need no
 * test for a missing array. */
static struct gens no_gens;

/* The table of a task that never bound anything: one empty entry, so that
 * the read path needs no test for "no table". Its handle is its address
 * with nothing in the low bits: a capacity of 1. */
_Alignas(16) struct tl__ent tl__empty_ent;

_Atomic uint32_t tl__inheriting;

static struct {
  struct tl__lock lock;                    /* everything below, for writers */
  struct keyrec *chunk[MAX_CHUNKS];
  uint32_t nslots;                         /* slots ever used */
  uint32_t free_head;                      /* slot + 1, or 0 */
  struct gens *_Atomic gens;
  uint32_t *names;                         /* open addressing: slot + 1, 0 empty, UINT32_MAX removed */
  uint32_t names_cap, names_used;
  uint64_t created;
} K = {.gens = &no_gens};
/* For debuggers (debug.c). */
const struct tl__debug_keys tl__debug_keys = {K.chunk, &K.nslots, &K.created, CHUNK_BITS, sizeof(struct keyrec),
                                              offsetof(struct keyrec, gen), offsetof(struct keyrec, attr)};

/* Readers copy a key's attributes without the lock while tl_key_create may
 * be filling a reused slot; they check the generation before and after.
 * Field by field relaxed atomics make that race well defined. */
#define ATTR_FIELDS(X) X(name) X(destroy) X(init) X(init_arg) X(inherit) X(copy) X(flags) X(scope) X(disc)
#define LOAD_FIELD(f) dst->f = __atomic_load_n(&src->f, __ATOMIC_RELAXED);
#define STORE_FIELD(f) __atomic_store_n(&dst->f, src->f, __ATOMIC_RELAXED);

static void attr_load(tl_key_attr_t *dst, const tl_key_attr_t *src)
{
  ATTR_FIELDS(LOAD_FIELD)
}

static void attr_store(tl_key_attr_t *dst, const tl_key_attr_t *src)
{
  ATTR_FIELDS(STORE_FIELD)
}

static struct keyrec *rec(uint32_t slot)
{
  return &K.chunk[slot >> CHUNK_BITS][slot & (CHUNK - 1)];
}

/* How many keys were ever deleted. While none was, a key found in a value
 * table is live: the read path skips the generation check, and the inline
 * read path of tasklocal.h may have a view (internal.h). */
_Atomic uint64_t tl__key_deletions;
#define deletions tl__key_deletions

/* The word of a live key (never 0), or 0 when the key is invalid. A
 * generation of 0 needs no test of its own: it matches only a free slot,
 * whose word is 0. */
static inline uint64_t key_word(tl_key_t key)
{
  struct gens *g = atomic_load_explicit(&K.gens, memory_order_acquire);
  uint32_t slot = tl__key_slot(key), gen = (uint32_t)(key >> 32);
  if ((key & 1) != 0 || slot >= g->cap)
    return 0;
  uint64_t w = atomic_load_explicit(&g->word[slot], memory_order_acquire);
  return (uint32_t)w == gen ? w : 0;
}

static inline int key_live(tl_key_t key)
{
  return key_word(key) != 0;
}

int tl__key_valid(tl_key_t key)
{
  return key_live(key);
}

/* Whether slot still holds generation gen, for a slot that held it a
 * moment ago: the generation arrays only grow, so slot is in range of the
 * newest one, and no bounds check is needed. */
static inline int slot_still(uint32_t slot, uint32_t gen)
{
  struct gens *g = atomic_load_explicit(&K.gens, memory_order_acquire);
  return (uint32_t)atomic_load_explicit(&g->word[slot], memory_order_relaxed) == gen;
}

/* The destructor of a key found in a value table when the key is live
 * (1), in one check: the value of a deleted key is dropped (0). A key in a
 * table was live when it was bound, so its record exists (records are
 * never freed) and may be read before the check; the generation read
 * after it tells whether what was read belongs to this key, since a slot
 * never gets a generation back. */
static inline int key_destroy_fn(tl_key_t key, void (**destroy)(void *))
{
  uint32_t slot = tl__key_slot(key);
  /* Acquire: the generation is read after the destructor, not before (a
   * load with acquire ordering rather than a fence, which ThreadSanitizer
   * does not model). */
  *destroy = __atomic_load_n(&rec(slot)->attr.destroy, __ATOMIC_ACQUIRE);
  return slot_still(slot, (uint32_t)(key >> 32));
}

/* ------------------------------------------------------------------------
 * Names
 * ------------------------------------------------------------------------ */

static uint64_t str_hash(const char *s)
{
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/* Called with K.lock held. Returns the entry for name, or the place to put
 * it (an empty or removed entry) when absent. */
static uint32_t *name_slot(const char *name, int *found)
{
  *found = 0;
  if (K.names_cap == 0)
    return NULL;
  uint32_t *reuse = NULL, mask = K.names_cap - 1;
  for (uint32_t i = (uint32_t)str_hash(name) & mask, n = 0; n < K.names_cap; i = (i + 1) & mask, n++) {
    uint32_t v = K.names[i];
    if (v == 0)
      return reuse ? reuse : &K.names[i];
    if (v == UINT32_MAX) {
      if (reuse == NULL)
        reuse = &K.names[i];
    } else if (strcmp(rec(v - 1)->attr.name, name) == 0) {
      *found = 1;
      return &K.names[i];
    }
  }
  return reuse;
}

static int names_grow(void)
{
  uint32_t cap = K.names_cap ? K.names_cap * 2 : 64;
  uint32_t *t = tl__calloc(cap, sizeof *t);
  if (t == NULL)
    return ENOMEM;
  uint32_t *old = K.names, oldcap = K.names_cap;
  K.names = t;
  K.names_cap = cap;
  K.names_used = 0;
  for (uint32_t i = 0; i < oldcap; i++) {
    if (old[i] != 0 && old[i] != UINT32_MAX) {
      int found;
      *name_slot(rec(old[i] - 1)->attr.name, &found) = old[i];
      K.names_used++;
    }
  }
  tl__free(old);
  return 0;
}

/* ------------------------------------------------------------------------
 * Key records
 * ------------------------------------------------------------------------ */

/* Called with K.lock held: makes sure slot has a record and a generation. */
static int slot_reserve(uint32_t slot)
{
  if (slot >= MAX_CHUNKS * CHUNK)
    return EAGAIN;
  if (K.chunk[slot >> CHUNK_BITS] == NULL) {
    struct keyrec *c = tl__calloc(CHUNK, sizeof *c);
    if (c == NULL)
      return ENOMEM;
    K.chunk[slot >> CHUNK_BITS] = c;
  }
  struct gens *g = atomic_load_explicit(&K.gens, memory_order_relaxed);
  if (slot >= g->cap) {
    uint32_t cap = g->cap ? g->cap * 2 : 1024;
    while (cap <= slot)
      cap *= 2;
    struct gens *n = tl__calloc(1, sizeof *n + cap * sizeof n->word[0]);
    if (n == NULL)
      return ENOMEM;
    n->cap = cap;
    n->older = g;
    for (uint32_t i = 0; i < g->cap; i++)
      atomic_store_explicit(&n->word[i], atomic_load_explicit(&g->word[i], memory_order_relaxed),
                            memory_order_relaxed);
    atomic_store_explicit(&K.gens, n, memory_order_release);
  }
  return 0;
}

static int check_attr(const tl_key_attr_t *a)
{
  if (a->scope < TL_SCOPE_TASK || a->scope > TL_SCOPE_CUSTOM)
    return EINVAL;
  if (a->inherit < TL_INHERIT_NONE || a->inherit > TL_INHERIT_COPY)
    return EINVAL;
  if (a->inherit == TL_INHERIT_COPY && a->copy == NULL)
    return EINVAL;
  if (a->scope == TL_SCOPE_CUSTOM && (a->disc == NULL || a->disc->current == NULL))
    return EINVAL;
  if (a->scope != TL_SCOPE_TASK && a->inherit != TL_INHERIT_NONE)
    return EINVAL;
  if (a->flags & ~TL_KEY_SCOPED_ONLY)
    return EINVAL;
  if (a->name != NULL && a->name[0] == '\0')
    return EINVAL;
  return 0;
}

int tl_key_create_attr(tl_key_t *key, const tl_key_attr_t *attr)
{
  static const tl_key_attr_t defaults = TL_KEY_ATTR_INIT;
  if (key == NULL)
    return EINVAL;
  if (attr == NULL)
    attr = &defaults;
  int err = check_attr(attr);
  if (err != 0)
    return err;
  tl__init();
  char *name = NULL;
  if (attr->name != NULL) {
    size_t len = strlen(attr->name) + 1;
    name = tl__alloc(len);
    if (name == NULL)
      return ENOMEM;
    memcpy(name, attr->name, len);
  }
  if (tl__lock(&K.lock) != 0) {
    tl__free(name);
    return EDEADLK;
  }
  uint32_t *nslot = NULL;
  if (name != NULL) {
    int found;
    if ((K.names_used + 1) * 4 > K.names_cap * 3 && (err = names_grow()) != 0)
      goto out;
    nslot = name_slot(name, &found);
    if (found) {
      err = EEXIST;
      goto out;
    }
  }
  uint32_t slot = K.free_head ? K.free_head - 1 : K.nslots;
  if ((err = slot_reserve(slot)) != 0)
    goto out;
  struct keyrec *r = rec(slot);
  if (K.free_head)
    K.free_head = r->next_free;
  else
    K.nslots++;
  struct gens *g = atomic_load_explicit(&K.gens, memory_order_relaxed);
  uint32_t gen = (uint32_t)atomic_load_explicit(&g->word[slot], memory_order_relaxed);
  if (gen == 0)
    gen = r->gen ? r->gen : 1;
  r->gen = gen;
  r->next_free = 0;
  tl__free((char *)r->attr.name);
  tl_key_attr_t copy = *attr;
  copy.name = name;
  attr_store(&r->attr, &copy);
  if (nslot != NULL) {
    if (*nslot == 0)
      K.names_used++;
    *nslot = slot + 1;
  }
  K.created++;
  if (attr->inherit != TL_INHERIT_NONE)
    atomic_fetch_add_explicit(&tl__inheriting, 1, memory_order_relaxed);
  uint64_t w = gen;
  if (attr->scope != TL_SCOPE_TASK)
    w |= W_NOT_TASK;
  if (attr->flags & TL_KEY_SCOPED_ONLY)
    w |= W_SCOPED_ONLY;
  if (attr->destroy == NULL)
    w |= W_NO_DESTROY;
  atomic_store_explicit(&g->word[slot], w, memory_order_release);
  *key = (uint64_t)gen << 32 | slot << 1;
  name = NULL;
out:
  tl__unlock(&K.lock);
  tl__free(name);
  return err;
}

int tl_key_create(tl_key_t *key, void (*destroy)(void *value))
{
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.destroy = destroy;
  return tl_key_create_attr(key, &attr);
}

int tl_key_find(tl_key_t *key, const char *name)
{
  if (key == NULL || name == NULL)
    return EINVAL;
  if (tl__lock(&K.lock) != 0)
    return EDEADLK;
  int found, err = ENOENT;
  uint32_t *p = name_slot(name, &found);
  if (found) {
    uint32_t slot = *p - 1;
    *key = (uint64_t)rec(slot)->gen << 32 | slot << 1;
    err = 0;
  }
  tl__unlock(&K.lock);
  return err;
}

int tl_key_delete(tl_key_t key)
{
  if (tl__lock(&K.lock) != 0)
    return EDEADLK;
  if (!key_live(key)) {
    tl__unlock(&K.lock);
    return EINVAL;
  }
  uint32_t slot = tl__key_slot(key);
  struct keyrec *r = rec(slot);
  struct gens *g = atomic_load_explicit(&K.gens, memory_order_relaxed);
  /* The next key in this slot gets the next generation; 0 is skipped, as it
   * marks a free slot. Values bound under the old key stay in the tables
   * of tasks, unreachable, until the entry is reused or the task ends. */
  uint32_t next = r->gen + 1 ? r->gen + 1 : 1;
  atomic_fetch_add_explicit(&deletions, 1, memory_order_seq_cst);
  atomic_store_explicit(&g->word[slot], 0, memory_order_release);
  r->gen = next;
  /* The name leaves the index now; the record itself stays as it is until
   * the slot is reused, because readers copy it without the lock and then
   * check the generation (tl__key_info). */
  const char *name = r->attr.name;
  if (name != NULL) {
    int found;
    uint32_t *p = name_slot(name, &found);
    if (found)
      *p = UINT32_MAX;
  }
  if (r->attr.inherit != TL_INHERIT_NONE)
    atomic_fetch_sub_explicit(&tl__inheriting, 1, memory_order_relaxed);
  r->next_free = K.free_head;
  K.free_head = slot + 1;
  tl__unlock(&K.lock);
  /* From now on only the library reads: it checks generations. */
  tl__views_drop_all();
  return 0;
}

int tl__key_info(tl_key_t key, tl_key_attr_t *attr)
{
  if (!key_live(key))
    return EINVAL;
  attr_load(attr, &rec(tl__key_slot(key))->attr);
  return key_live(key) ? 0 : EINVAL;
}

const char *tl__key_name(tl_key_t key)
{
  if (!key_live(key))
    return NULL;
  return __atomic_load_n(&rec(tl__key_slot(key))->attr.name, __ATOMIC_RELAXED);
}

void tl__key_atfork(int phase)
{
  if (phase < 0)
    tl__lock(&K.lock);
  else if (phase == 0)
    tl__unlock(&K.lock);
  else
    tl__lock_reset(&K.lock);
}

uint64_t tl__keys_created(void)
{
  return K.created;
}

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
  return key == TL__TOMB || !key_live(key);
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
static __attribute__((noinline)) int vtab_first(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value)
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
    return vtab_first(holder, key, value);
  /* The common cases, decided by the key's home entry: the key is there
   * already, or the entry is free in a small table (which may fill up; a
   * larger one counts what it takes, in vtab_take). An empty entry needs
   * no tombstone first: a reader stops at it until the key appears, and
   * the key is stored after the value. */
  struct tl__ent *home = tl__vt_home(vt, key);
  uint64_t hk = atomic_load_explicit(&home->key, memory_order_relaxed);
  if (TL__LIKELY(hk == key)) {
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
    atomic_store_explicit(&e->key, TL__TOMB, memory_order_relaxed);
    atomic_store_explicit(&e->value, NULL, memory_order_relaxed);
    void (*destroy)(void *);
    if (value == NULL || !key_destroy_fn(key, &destroy))
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
      tl__report_dropped(t, key, value);
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

/* ------------------------------------------------------------------------
 * Public: values
 * ------------------------------------------------------------------------ */

/* The value of key in its scope: 0, ENOENT when unbound (after running the
 * key's initializer, if any), ESRCH for a custom scope with no owner,
 * EINVAL for an invalid key. */
static int lookup(tl_key_t key, void **value)
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
  return lookup(key, &v) == 0 ? v : NULL;
}

/* The read path. Every way off the common case is a tail call into
 * get_slow, so this function saves no register and sets up no frame. The
 * first read after a switch takes the slow path once, to note that the
 * switch is complete (tl__task_now clears in_switch). */
void *tl_get(tl_key_t key)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY))
    return get_slow(key);
  struct tl__task *t = th->current;
  if (TL__UNLIKELY(!tl__in_stack(t, tl__sp()) || th->in_switch))
    return get_slow(key);
  struct tl__vtab *vt = atomic_load_explicit(&t->vt, memory_order_acquire);
  /* The running task is certain here: the inline read path of tasklocal.h
   * may use it from now on. */
  if (TL__UNLIKELY(__atomic_load_n(&tl__view.span, __ATOMIC_RELAXED) == 0) && th->override == NULL)
    tl__view_fill(t, vt);
  struct tl__ent *e = tl__vt_home(vt, key);
  if (TL__LIKELY(atomic_load_explicit(&e->key, memory_order_acquire) == key) &&
      (TL__LIKELY(atomic_load_explicit(&deletions, memory_order_relaxed) == 0) || key_live(key)))
    return atomic_load_explicit(&e->value, memory_order_relaxed);
  return get_slow(key);
}

int tl_lookup(tl_key_t key, void **value)
{
  if (value == NULL)
    return EINVAL;
  return lookup(key, value);
}

/* Binds (or with remove, unbinds) key in its scope, for tl_set, tl_unset
 * and the scoped bindings. */
int tl__store(tl_key_t key, const void *value, int remove, int scoped)
{
  uint64_t w = key_word(key);
  if (w == 0)
    return EINVAL;
  if (!scoped && (w & W_SCOPED_ONLY))
    return EPERM;
  struct tl__task *t = tl__task_now();
  if (t == NULL)
    return ENOMEM;
  if (!(w & W_NOT_TASK)) {
    /* Task keys, the common case: no scope to look up, no lock. */
    if (remove) {
      tl__vtab_remove(&t->vt, key);
      return 0;
    }
    int err = tl__vtab_put(&t->vt, key, (void *)value);
    if (err == 0 && (w & W_NO_DESTROY) && tl__opt.backtrace && value != NULL)
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
int tl_set(tl_key_t key, const void *value)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY))
    return tl__store(key, value, 0, 0);
  struct tl__task *t = th->current;
  uint64_t w = key_word(key);
  if (TL__UNLIKELY(w == 0 || (w & (W_NOT_TASK | W_SCOPED_ONLY)) != 0 || !tl__in_stack(t, tl__sp())))
    return tl__store(key, value, 0, 0);
  if (TL__UNLIKELY(w & W_NO_DESTROY) && tl__opt.backtrace)
    return tl__store(key, value, 0, 0);  /* notes where the value was set */
  /* As tl__task_now: the first access after a switch completes it. */
  th->in_switch = 0;
  struct tl__vtab *vt = atomic_load_explicit(&t->vt, memory_order_relaxed);
  struct tl__ent *home = tl__vt_home(vt, key);
  uint64_t hk = atomic_load_explicit(&home->key, memory_order_relaxed);
  if (TL__LIKELY(hk == key)) {
    atomic_store_explicit(&home->value, (void *)value, memory_order_release);
  } else if (TL__LIKELY(hk == TL__EMPTY && vt_small(vt))) {
    atomic_store_explicit(&home->value, (void *)value, memory_order_relaxed);
    atomic_store_explicit(&home->key, key, memory_order_release);
  } else if (vt == tl__vt_empty) {
    int err = vtab_first(&t->vt, key, (void *)value);
    if (err != 0)
      return err;
  } else {
    return tl__vtab_put(&t->vt, key, (void *)value);
  }
  th->binds++;
  return 0;
}

int tl_unset(tl_key_t key)
{
  return tl__store(key, NULL, 1, 0);
}
