/* values.c: get, lookup, set, unset; initializers, singletons. */
#ifndef TL_VALUES_H
#define TL_VALUES_H

#include "internal.h"

void *tl__get(tl_key_t key);
int tl__lookup(tl_key_t key, void **value);
int tl__set(tl_key_t key, const void *value);
int tl__store(tl_key_t key, const void *value, int remove, int scoped);
int tl__run_init(tl_key_t key, const tl_key_attr_t *a, struct tl__task *t, void *(*make)(void *),
                 void *arg, int bind_null, void **value);
void *tl__singleton(tl_key_t key, void *(*make)(void *arg), void *arg);

#endif /* TL_VALUES_H */
