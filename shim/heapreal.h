/* heapreal.c: the real allocation functions behind ours. */
#ifndef TL_HEAPREAL_H
#define TL_HEAPREAL_H

#include "internal.h"

/* The allocation functions run before a sanitizer's runtime has set
 * itself up (the first malloc of the process comes from libc's start, and
 * ours comes first when the library is preloaded): a sanitizer build of
 * the library must not instrument them, since their instrumentation would
 * touch shadow memory that does not exist yet. */
#define TL__HEAP_FN __attribute__((no_sanitize("address", "thread", "undefined")))

struct tl__heap_real {
  void *(*malloc_fn)(size_t);
  void *(*calloc_fn)(size_t, size_t);
  void *(*realloc_fn)(void *, size_t);
  void (*free_fn)(void *);
  int (*posix_memalign_fn)(void **, size_t, size_t);
  void *(*aligned_alloc_fn)(size_t, size_t);
  void *(*memalign_fn)(size_t, size_t);
  void *(*valloc_fn)(size_t);
  void *(*pvalloc_fn)(size_t);
  size_t (*usable_size_fn)(void *);
  int (*munmap_fn)(void *, size_t);
  void *(*mremap_fn)(void *, size_t, size_t, int, ...);
};
extern struct tl__heap_real tl__heap_real; /* complete once tl__heap_lookup has returned 0 */
extern int tl__heap_tracking;              /* follow the heap's blocks (leak reports asked for) */
/* Where the library's own blocks come from and go back to (heapreal.c
 * says which); complete once tl__heap_lookup has returned 0. */
struct tl__heap_own {
  void *(*get)(size_t);                    /* malloc */
  void *(*get_zeroed)(size_t, size_t);     /* calloc */
  void *(*resize)(void *, size_t);         /* realloc */
  void (*put)(void *);                     /* free */
  int followed;                            /* get is ours: its blocks are followed (heapblocks.c) */
};
extern struct tl__heap_own tl__heap_own;

int tl__heap_lookup_slow(void);            /* 0 done; -1: this thread is looking up, use the arena */

/* 0 once the real functions are known; -1 while this very thread looks
 * them up (dlsym allocating), when the caller must use the arena. */
TL__HEAP_FN static inline int tl__heap_lookup(void)
{
  if (TL__LIKELY(__atomic_load_n(&tl__heap_real.free_fn, __ATOMIC_ACQUIRE) != NULL))
    return 0;
  return tl__heap_lookup_slow();
}

void tl__heap_put(void *p);                /* a block of the library's own goes back */
int tl__unmap(void *p, size_t size);       /* pages of the library's own go back */
void *tl__heap_boot_alloc(size_t size, size_t align); /* from the static arena; NULL when full */
int tl__heap_boot_owns(const void *p);
size_t tl__heap_boot_size(const void *p);

#endif /* TL_HEAPREAL_H */
