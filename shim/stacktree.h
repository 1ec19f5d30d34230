/* stacktree.c: which task's stack holds a stack pointer. */
#ifndef TL_STACKTREE_H
#define TL_STACKTREE_H

#include "internal.h"

void tl__tree_add(struct tl__task *t);
void tl__tree_del(struct tl__task *t);
struct tl__task *tl__tree_ceil(uintptr_t hi, uint64_t id);
struct tl__task *tl__tree_find(uintptr_t sp);
int tl__tree_changing(void);

#endif /* TL_STACKTREE_H */
