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
uint64_t tl__key_word(tl_key_t key);       /* 0 when the key is invalid */
int tl__key_valid(tl_key_t key);
int tl__key_info(tl_key_t key, tl_key_attr_t *attr); /* lock-free copy of the attributes */
const char *tl__key_name(tl_key_t key);   /* NULL when unnamed or invalid */
int tl__key_destroy_fn(tl_key_t key, void (**destroy)(void *)); /* its destructor; 0 when deleted */
uint64_t tl__keys_created(void);
void tl__key_atfork(int phase);            /* -1 before fork, 0 parent, 1 child */

#endif /* TL_KEYS_H */
