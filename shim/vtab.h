/* vtab.c: value tables and destructor rounds. */
#ifndef TL_VTAB_H
#define TL_VTAB_H

#include "internal.h"

struct tl__ent *tl__vtab_find(struct tl__vtab *vt, tl_key_t key);
int tl__vtab_first(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value);
int tl__vtab_put(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value);
int tl__vtab_remove(struct tl__vtab *_Atomic *holder, tl_key_t key);
void tl__vtab_free(struct tl__vtab *vt);
struct tl__vtab *tl__vtab_copy(struct tl__vtab *vt); /* NULL for the empty table, or on ENOMEM */
void tl__destroy_vals(struct tl__vtab *_Atomic *holder, struct tl__task *t,
                      int (*keep)(tl_key_t key, void *value, void *arg), void *arg);

#endif /* TL_VTAB_H */
