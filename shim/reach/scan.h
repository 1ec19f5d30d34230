/* reach/scan.c: the reachability scan's shared state, its memory and its
 * flood fill (private to reach.c and the files of shim/reach/). */
#ifndef TL_REACH_SCAN_H
#define TL_REACH_SCAN_H

#include "../internal.h"
#include "../heapblocks.h"
#include "../backtrace.h"


#define WORD sizeof(uintptr_t)
#define RED_ZONE 128                       /* below a saved stack pointer, kept by the x86_64 ABI */
#define HUGE_MAPPING (64ull << 30)         /* larger unknown mappings are not read: undecided */
#define ARENA_SIZE (64ull << 20)           /* glibc's HEAP_MAX_SIZE on 64-bit targets */
#define READ_CHUNK (64u * 1024)
#define EARLY_STACK_NEED (128u << 10)     /* less left on the caller's stack: the library's own */
#define EXPLAINED 32                       /* parked tasks explained (TASKLOCAL_VERBOSE) */

/* One task of the report. */
struct rtask {
  const struct tl__task *rec;
  uint64_t id;
  uintptr_t lo, hi;                        /* its stack */
  uintptr_t ctx;                           /* its context, or 0 when it is no longer its own */
  uintptr_t from;                          /* where the read of its stack begins */
  const struct tl__vtab *vt;               /* its locals */
  const struct tl__task_ext *x;
  void (*entry)(void);
  uint8_t state, flags;
  uint8_t cand;                            /* a candidate: leaked unless reached */
  uint8_t reached;
  uint8_t via;                             /* what held the word that reached it: a W_* */
  uintptr_t seen_at;                       /* where that word was, or 0 (TASKLOCAL_VERBOSE) */
  uint8_t kind;                            /* enum tl__kind */
  uint32_t bt_n;
  uintptr_t bt[TL__BT_MAX];
};

/* A range that makes the tasks it lists reachable: a candidate's stack or
 * context outside the heap. Ranges with the same bounds share one key. */
struct key {
  uintptr_t lo, hi;
  uintptr_t maxhi;                         /* the highest hi of this key and those before it */
  uint32_t first, n;                       /* its tasks, in tl__scan.key_tasks */
  uint32_t done;
};

struct range {
  uintptr_t lo, hi;
};

/* The work list: ranges to read. */
enum { W_ROOT, W_BLOCK, W_STACK, W_TASK };
struct work {
  uint32_t kind;
  uint32_t idx;                            /* W_BLOCK: block; W_TASK: task */
  uintptr_t lo, hi;
};

/* Memory of the scan, mmap'd. */
struct region {
  void *p;
  size_t bytes;
};
#define REGIONS 16

/* The scan's state. Guarded by the writer's lock: one report at a time. */
struct tl__scan_state {
  struct region regions[REGIONS];
  int nregions;
  struct rtask *tasks;                     /* sorted by record address */
  size_t ntasks, cap_tasks;
  struct tl__heapsnap heap;
  uint8_t *block_mark;                     /* 1: pushed; 2: its tasks reached */
  uint32_t *block_tasks;                   /* for each block with tasks: first in block_task_list, or UINT32_MAX */
  uint32_t *block_task_list;               /* (block, task) pairs' tasks, grouped by block */
  uint32_t *block_task_n;
  struct key *keys;
  size_t nkeys;
  uint32_t *key_tasks;
  struct range *holes;                     /* not roots: sorted, merged */
  size_t nholes, cap_holes;
  struct work *work;
  size_t nwork, cap_work;
  uintptr_t bmin, bmax, kmin, kmax;
  uintptr_t *buf;                          /* READ_CHUNK bytes */
  char *maps;                              /* /proc/self/maps */
  size_t maps_len;
  const char *undecided;
  int active;
  uint64_t bytes;                           /* read, for TASKLOCAL_VERBOSE */
  uintptr_t at;                            /* the address of the word being checked, or 0 */
  uint32_t via;                            /* the kind of work being read */
  int early;                               /* the exit report's scan is done (tl__reach_exit_early) */
};
extern struct tl__scan_state tl__scan;

/* Insertion into runs, then merges: no qsort, which may allocate. A
 * bottom-up merge sort through a second array. */
#define DEFINE_SORT(name, type, less)                                                                       \
  static type *name(type *a, type *tmp, size_t n)                                                          \
  {                                                                                                        \
    for (size_t w = 1; w < n; w *= 2) {                                                                    \
      for (size_t i = 0; i < n; i += 2 * w) {                                                              \
        size_t m = i + w < n ? i + w : n, e = i + 2 * w < n ? i + 2 * w : n, p = i, q = m, k = i;            \
        while (p < m && q < e)                                                                             \
          tmp[k++] = less(&a[q], &a[p]) ? a[q++] : a[p++];                                                 \
        while (p < m)                                                                                      \
          tmp[k++] = a[p++];                                                                               \
        while (q < e)                                                                                      \
          tmp[k++] = a[q++];                                                                               \
      }                                                                                                    \
      type *t = a;                                                                                         \
      a = tmp;                                                                                             \
      tmp = t;                                                                                             \
    }                                                                                                      \
    return a;                                                                                              \
  }

void *tl__scan_scratch(size_t bytes);      /* mmap'd, given back by tl__reach_end; NULL when full */
void tl__scan_undecided(const char *why);  /* the first reason kept */
size_t tl__scan_block_of(uintptr_t p);     /* the heap block holding p, or SIZE_MAX */
void tl__scan_push(uint32_t kind, uint32_t idx, uintptr_t lo, uintptr_t hi);
void tl__scan_check_word(uintptr_t w);     /* what a word read reaches */
int tl__scan_words(uintptr_t lo, uintptr_t hi); /* 0, or EFAULT when a part could not be read */
void tl__scan_vtab(const struct tl__vtab *vt);
void tl__scan_defers(const struct tl__defer *d);
void tl__scan_drain(void);                 /* reads the work list until it is empty */

#endif /* TL_REACH_SCAN_H */
