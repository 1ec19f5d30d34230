/* heapbind.c: the program's allocation calls go straight to the real
 * functions while leak reports are off. */
#ifndef TL_HEAPBIND_H
#define TL_HEAPBIND_H

#include <stddef.h>

/* Rewrites the loaded objects' slots for malloc, calloc and the aligned
 * allocators that hold ours to hold the real functions, unless the heap's
 * blocks are followed; returns how many slots it rewrote. */
size_t tl__heap_bind_direct(void);

#endif /* TL_HEAPBIND_H */
