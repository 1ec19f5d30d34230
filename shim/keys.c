/* Keys: their records, names and generations.
 *
 * A key is (generation << 32 | slot << 1). The slot indexes the key
 * records and each task's value table; the generation changes when the key
 * is deleted, so an old handle never matches the slot's next key. The
 * slot is shifted so that the read path finds a key's entry with one AND
 * and an x86 scaled address (internal.h, struct tl__vtab); a key
 * with the low bit set is never valid.
 *
 * A key's generation is checked in a flat array that is replaced, never
 * resized in place, when it grows. Old arrays are kept until exit, so a
 * reader holding one reads valid memory.
 */
#include "internal.h"
#include "keys.h"
#include "lock.h"
#include "alloc.h"
#include "thread.h"

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

/* The generations before the first key: none, so that readers need no
 * test for a missing array. */
static struct tl__key_gens no_gens;

/* The newest generation array (keys.h, struct tl__key_gens), read inline
 * by tl_set and the destructor rounds: a variable of its own rather than a
 * field of keyreg, which is this file's. */
struct tl__key_gens *_Atomic tl__key_gens = &no_gens;

_Atomic uint32_t tl__inheriting;

static struct {
  struct tl__lock lock;                    /* everything below, for writers */
  struct keyrec *chunk[MAX_CHUNKS];
  uint32_t nslots;                         /* slots ever used */
  uint32_t free_head;                      /* slot + 1, or 0 */
  uint32_t *names;                         /* open addressing: slot + 1, 0 empty, UINT32_MAX removed */
  uint32_t names_cap, names_used;
  uint64_t created;
} keyreg;
/* For debuggers (debug.c). */
const struct tl__debug_keys tl__debug_keys = {keyreg.chunk, &keyreg.nslots, &keyreg.created, CHUNK_BITS, sizeof(struct keyrec),
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
  return &keyreg.chunk[slot >> CHUNK_BITS][slot & (CHUNK - 1)];
}

/* How many keys were ever deleted. While none was, a key found in a value
 * table is live: the read path skips the generation check, and the inline
 * read path of tasklocal.h may have a view (internal.h). */
_Atomic uint64_t tl__key_deletions;

int tl__key_valid(tl_key_t key)
{
  return tl__key_word(key) != 0;
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

/* Called with keyreg.lock held. Returns the entry for name, or the place to put
 * it (an empty or removed entry) when absent. */
static uint32_t *name_slot(const char *name, int *found)
{
  *found = 0;
  if (keyreg.names_cap == 0)
    return NULL;
  uint32_t *reuse = NULL, mask = keyreg.names_cap - 1;
  for (uint32_t i = (uint32_t)str_hash(name) & mask, n = 0; n < keyreg.names_cap; i = (i + 1) & mask, n++) {
    uint32_t v = keyreg.names[i];
    if (v == 0)
      return reuse ? reuse : &keyreg.names[i];
    if (v == UINT32_MAX) {
      if (reuse == NULL)
        reuse = &keyreg.names[i];
    } else if (strcmp(rec(v - 1)->attr.name, name) == 0) {
      *found = 1;
      return &keyreg.names[i];
    }
  }
  return reuse;
}

static int names_grow(void)
{
  uint32_t cap = keyreg.names_cap ? keyreg.names_cap * 2 : 64;
  uint32_t *t = tl__calloc(cap, sizeof *t);
  if (t == NULL)
    return ENOMEM;
  uint32_t *old = keyreg.names, oldcap = keyreg.names_cap;
  keyreg.names = t;
  keyreg.names_cap = cap;
  keyreg.names_used = 0;
  for (uint32_t i = 0; i < oldcap; i++) {
    if (old[i] != 0 && old[i] != UINT32_MAX) {
      int found;
      *name_slot(rec(old[i] - 1)->attr.name, &found) = old[i];
      keyreg.names_used++;
    }
  }
  tl__free(old);
  return 0;
}

/* ------------------------------------------------------------------------
 * Key records
 * ------------------------------------------------------------------------ */

/* Called with keyreg.lock held: makes sure slot has a record and a generation. */
static int slot_reserve(uint32_t slot)
{
  if (slot >= MAX_CHUNKS * CHUNK)
    return EAGAIN;
  if (keyreg.chunk[slot >> CHUNK_BITS] == NULL) {
    struct keyrec *c = tl__calloc(CHUNK, sizeof *c);
    if (c == NULL)
      return ENOMEM;
    keyreg.chunk[slot >> CHUNK_BITS] = c;
  }
  struct tl__key_gens *g = atomic_load_explicit(&tl__key_gens, memory_order_relaxed);
  if (slot >= g->cap) {
    uint32_t cap = g->cap ? g->cap * 2 : 1024;
    while (cap <= slot)
      cap *= 2;
    struct tl__key_gens *n = tl__calloc(1, sizeof *n + cap * sizeof n->e[0]);
    if (n == NULL)
      return ENOMEM;
    n->cap = cap;
    n->older = g;
    for (uint32_t i = 0; i < g->cap; i++) {
      atomic_store_explicit(&n->e[i].destroy, atomic_load_explicit(&g->e[i].destroy, memory_order_relaxed),
                            memory_order_relaxed);
      atomic_store_explicit(&n->e[i].word, atomic_load_explicit(&g->e[i].word, memory_order_relaxed),
                            memory_order_relaxed);
    }
    atomic_store_explicit(&tl__key_gens, n, memory_order_release);
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

int tl__key_create(tl_key_t *key, const tl_key_attr_t *attr)
{
  static const tl_key_attr_t defaults = TL_KEY_ATTR_INIT;
  if (key == NULL)
    return EINVAL;
  if (attr == NULL)
    attr = &defaults;
  int err = check_attr(attr);
  if (err != 0)
    return err;
  char *name = NULL;
  if (attr->name != NULL) {
    size_t len = strlen(attr->name) + 1;
    name = tl__alloc(len);
    if (name == NULL)
      return ENOMEM;
    memcpy(name, attr->name, len);
  }
  if (tl__lock(&keyreg.lock) != 0) {
    tl__free(name);
    return EDEADLK;
  }
  uint32_t *nslot = NULL;
  if (name != NULL) {
    int found;
    if ((keyreg.names_used + 1) * 4 > keyreg.names_cap * 3 && (err = names_grow()) != 0)
      goto out;
    nslot = name_slot(name, &found);
    if (found) {
      err = EEXIST;
      goto out;
    }
  }
  uint32_t slot = keyreg.free_head ? keyreg.free_head - 1 : keyreg.nslots;
  if ((err = slot_reserve(slot)) != 0)
    goto out;
  struct keyrec *r = rec(slot);
  if (keyreg.free_head)
    keyreg.free_head = r->next_free;
  else
    keyreg.nslots++;
  struct tl__key_gens *g = atomic_load_explicit(&tl__key_gens, memory_order_relaxed);
  uint32_t gen = (uint32_t)atomic_load_explicit(&g->e[slot].word, memory_order_relaxed);
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
      keyreg.names_used++;
    *nslot = slot + 1;
  }
  keyreg.created++;
  if (attr->inherit != TL_INHERIT_NONE)
    atomic_fetch_add_explicit(&tl__inheriting, 1, memory_order_relaxed);
  uint64_t w = gen;
  if (attr->scope != TL_SCOPE_TASK)
    w |= TL__W_NOT_TASK;
  if (attr->flags & TL_KEY_SCOPED_ONLY)
    w |= TL__W_SCOPED_ONLY;
  if (attr->destroy == NULL)
    w |= TL__W_NO_DESTROY;
  /* The destructor first, with release: a reader that sees it sees the
   * free slot's word of 0 before it, or this generation after it. */
  atomic_store_explicit(&g->e[slot].destroy, attr->destroy, memory_order_release);
  atomic_store_explicit(&g->e[slot].word, w, memory_order_release);
  *key = (uint64_t)gen << 32 | slot << 1;
  name = NULL;
out:
  tl__unlock(&keyreg.lock);
  tl__free(name);
  return err;
}

int tl__key_find(tl_key_t *key, const char *name)
{
  if (key == NULL || name == NULL)
    return EINVAL;
  if (tl__lock(&keyreg.lock) != 0)
    return EDEADLK;
  int found, err = ENOENT;
  uint32_t *p = name_slot(name, &found);
  if (found) {
    uint32_t slot = *p - 1;
    *key = (uint64_t)rec(slot)->gen << 32 | slot << 1;
    err = 0;
  }
  tl__unlock(&keyreg.lock);
  return err;
}

int tl__key_delete(tl_key_t key)
{
  if (tl__lock(&keyreg.lock) != 0)
    return EDEADLK;
  if (!tl__key_valid(key)) {
    tl__unlock(&keyreg.lock);
    return EINVAL;
  }
  uint32_t slot = tl__key_slot(key);
  struct keyrec *r = rec(slot);
  struct tl__key_gens *g = atomic_load_explicit(&tl__key_gens, memory_order_relaxed);
  /* The next key in this slot gets the next generation; 0 is skipped, as it
   * marks a free slot. Values bound under the old key stay in the tables
   * of tasks, unreachable, until the entry is reused or the task ends. */
  uint32_t next = r->gen + 1 ? r->gen + 1 : 1;
  atomic_fetch_add_explicit(&tl__key_deletions, 1, memory_order_seq_cst);
  atomic_store_explicit(&g->e[slot].word, 0, memory_order_release);
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
  r->next_free = keyreg.free_head;
  keyreg.free_head = slot + 1;
  tl__unlock(&keyreg.lock);
  /* From now on only the library reads: it checks generations. */
  tl__views_drop_all();
  return 0;
}

int tl__key_info(tl_key_t key, tl_key_attr_t *attr)
{
  if (!tl__key_valid(key))
    return EINVAL;
  attr_load(attr, &rec(tl__key_slot(key))->attr);
  return tl__key_valid(key) ? 0 : EINVAL;
}

const char *tl__key_name(tl_key_t key)
{
  if (!tl__key_valid(key))
    return NULL;
  return __atomic_load_n(&rec(tl__key_slot(key))->attr.name, __ATOMIC_RELAXED);
}

void tl__key_atfork(int phase)
{
  tl__lock_atfork(&keyreg.lock, phase);
}

uint64_t tl__keys_created(void)
{
  return keyreg.created;
}
