/* keys.c: keys, their records, names and generations. */
#ifndef TL_KEYS_H
#define TL_KEYS_H

#include "internal.h"

/* A key's word holds its generation in the low half and, in the
 * high half, what tl_set needs of its attributes. */
#define TL__W_NOT_TASK (1ull << 32)        /* scope other than TL_SCOPE_TASK */
#define TL__W_SCOPED_ONLY (1ull << 33)     /* TL_KEY_SCOPED_ONLY */
#define TL__W_NO_DESTROY (1ull << 34)      /* no destructor */
/* Keys ever deleted. The read view trusts every entry it finds, so it
 * exists only while no key was ever deleted: a deleted key's values stay
 * in tables until their entries are reused, and only the library checks a
 * key's generation. tl_key_delete empties every thread's view after
 * counting the deletion; a fill that ran concurrently sees the count after
 * publishing its span and empties the view again (both sides sequentially
 * consistent: one of them sees the other). */
extern _Atomic uint64_t tl__key_deletions;
extern _Atomic uint32_t tl__inheriting;   /* live keys with inherit != NONE */
int tl__key_create(tl_key_t *key, const tl_key_attr_t *attr);
int tl__key_find(tl_key_t *key, const char *name);
int tl__key_delete(tl_key_t key);
int tl__key_valid(tl_key_t key);
int tl__key_info(tl_key_t key, tl_key_attr_t *attr); /* lock-free copy of the attributes */
const char *tl__key_name(tl_key_t key);   /* NULL when unnamed or invalid */
uint64_t tl__keys_created(void);
void tl__key_atfork(int phase);            /* -1 before fork, 0 parent, 1 child */

/* For each slot, what the lock-free paths read of a key at once: its word
 * (the live key's generation in the low half, 0 while the slot is free,
 * and TL__W_* in the high half), so that one load tells that a key is live
 * and how to bind it; and its destructor, beside it for the destructor
 * rounds. The array is replaced, never resized in place, when it grows;
 * old arrays are kept for readers that still hold them. */
struct tl__key_gens {
  uint32_t cap;
  struct tl__key_gens *older;
  struct tl__key_gen {
    _Atomic uint64_t word;
    void (*_Atomic destroy)(void *value);
  } e[];
};
extern struct tl__key_gens *_Atomic tl__key_gens;

/* The word of a live key (never 0), or 0 when the key is invalid. A
 * generation of 0 needs no test of its own: it matches only a free slot,
 * whose word is 0. */
static inline uint64_t tl__key_word(tl_key_t key)
{
  struct tl__key_gens *g = atomic_load_explicit(&tl__key_gens, memory_order_acquire);
  uint32_t slot = tl__key_slot(key), gen = (uint32_t)(key >> 32);
  if ((key & 1) != 0 || slot >= g->cap)
    return 0;
  uint64_t w = atomic_load_explicit(&g->e[slot].word, memory_order_acquire);
  return (uint32_t)w == gen ? w : 0;
}

/* The destructor of a key found in a value table when the key is live
 * (1), in one check: the value of a deleted key is dropped (0). A key in a
 * table was live when it was bound, so its slot is in range of the newest
 * array (arrays only grow); the word read after the destructor tells
 * whether the destructor belongs to this key, since a slot never gets a
 * generation back. Acquire: the word is read after the destructor, not
 * before (an ordered load rather than a fence, which ThreadSanitizer does
 * not model). */
static inline int tl__key_destroy_fn(tl_key_t key, void (**destroy)(void *))
{
  struct tl__key_gens *g = atomic_load_explicit(&tl__key_gens, memory_order_acquire);
  const struct tl__key_gen *e = &g->e[tl__key_slot(key)];
  *destroy = atomic_load_explicit(&e->destroy, memory_order_acquire);
  return (uint32_t)atomic_load_explicit(&e->word, memory_order_relaxed) == (uint32_t)(key >> 32);
}

#endif /* TL_KEYS_H */
