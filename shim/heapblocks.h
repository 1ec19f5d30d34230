/* heapblocks.c: the heap's live blocks, while leak reports are asked for. */
#ifndef TL_HEAPBLOCKS_H
#define TL_HEAPBLOCKS_H

#include "internal.h"

void tl__heapblocks_add(void *p, size_t size); /* a block was allocated (heapwatch.c) */
void tl__heapblocks_del(void *p);          /* a block is about to be freed */

#endif /* TL_HEAPBLOCKS_H */
