/* alloc.c: every allocation, and the fault injection of tests. */
#ifndef TL_ALLOC_H
#define TL_ALLOC_H

#include "internal.h"

/* every allocation of the library goes through these, so that a
 * test can make the Nth one fail. */
void *tl__alloc(size_t size);
void *tl__calloc(size_t n, size_t size);
void *tl__realloc(void *p, size_t size);   /* p intact on failure */
void tl__free(void *p);
void *tl__pages(size_t size);              /* mmap'd, for pools; async-signal-safe */
void *tl__scratch(size_t size);            /* a report's memory: reserved, committed as written */
void tl__scratch_free(void *p, size_t size);
void *tl__small_alloc(size_t size);        /* 64 or 128 bytes, aligned to the size; not zeroed */
void tl__small_free(void *p, size_t size); /* from any thread */
void tl__small_cache_flush(struct tl__thread *th); /* its kept blocks to the pools; closes its cache */
void tl__own_pages(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg); /* every mapping of tl__pages */
size_t tl__own_pages_count(void);
void tl__alloc_setup(void);                /* once, in tl__init */
void tl__alloc_atfork(int phase);          /* -1 before fork, 0 parent, 1 child */

#endif /* TL_ALLOC_H */
