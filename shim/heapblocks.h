/* heapblocks.c: the program's heap blocks, while leak checking is on. */
#ifndef TL_HEAPBLOCKS_H
#define TL_HEAPBLOCKS_H

#include "internal.h"

/* Called by the interposed allocation functions (heapwatch.c) when
 * tl__opt.leaks is on: after every successful allocation, and before
 * every free (a realloc is a del of the old block and an add of the new
 * one). Both take no lock another thread could hold for long, never
 * allocate, and may run in a signal handler or a forked child. */
void tl__heapblocks_add(void *p, size_t size);
void tl__heapblocks_del(void *p);
/* The allocator knows that some blocks were never added (leak checking
 * began after they were made): the registry cannot tell every block. */
void tl__heapblocks_missed(void);

enum tl__heap_state {
  TL__HEAP_OFF = 0,                        /* nothing was ever added */
  TL__HEAP_COMPLETE = 1,                   /* every block the program holds is known */
  TL__HEAP_UNSURE = 2                      /* some block may be missing */
};
int tl__heapblocks_state(void);
uint64_t tl__heapblocks_changes(void);    /* adds and deletes so far */
void tl__heapblocks_tables(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg); /* its own memory */

struct tl__heapblock {
  uintptr_t addr;
  size_t size;                             /* the size asked for */
};
/* A copy of the registry, sorted by address, in memory of its own
 * (mmap'd): blocks[0..n). 0, or an errno value. */
struct tl__heapsnap {
  struct tl__heapblock *blocks;
  size_t n;
  size_t mapped;                           /* bytes mapped for it */
  int unsure;                              /* the copy may lack blocks */
};
int tl__heapblocks_snapshot(struct tl__heapsnap *s);
void tl__heapblocks_snapshot_free(struct tl__heapsnap *s);
void tl__heapblocks_atfork(int phase);     /* -1 before fork, 0 parent, 1 child */

#endif /* TL_HEAPBLOCKS_H */
