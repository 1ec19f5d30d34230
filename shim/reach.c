/* Leaked or parked (doc/reports.md): of the tasks that never finished and
 * were never released, which ones nothing can resume.
 *
 * A task is resumed through its ucontext_t, and only a program that still
 * holds a pointer to that context (or to the heap block that holds it), or
 * into the task's stack, can do it. So, as LeakSanitizer does for heap
 * blocks and Go's goroutine leak profile for blocked goroutines, the scan
 * flood-fills the memory reachable from the roots, taking every aligned
 * word as a pointer:
 * - roots: every writable mapping of the process (globals of every loaded
 *   object, thread stacks with their TLS blocks, the program's own mmap'd
 *   arenas), less what is not the program's: the library's own data and
 *   pages, malloc's arenas (whose blocks are read only when reached), the
 *   stacks of the candidate tasks, and the part of the calling stack below
 *   the scan; the stacks of tasks running on any thread, from the calling
 *   one's stack pointer up for its own; the values the library keeps for
 *   the program (thread-scope and custom-scope values, the roots' locals,
 *   keys' attributes);
 * - a heap block is read when a reached word points into it;
 * - a candidate task (made, never started or suspended or abandoned) is
 *   reached when a reached word points into its ucontext_t, into the heap
 *   block holding that context or its stack, or into its stack; its stack
 *   (from its saved stack pointer up) and its locals are then read too.
 * What is never reached is the fixed point the kinds need: a task referred
 * to only by its own stack, or by the stacks of other unreached tasks,
 * stays unreached, and is leaked; every other unfinished task is parked.
 *
 * A task called leaked must never be resumable, so whenever the scan
 * cannot be sure of what it saw, no task is called leaked: when the heap's
 * blocks are not all known (leak checking was off at start, a block was
 * missed), when a root cannot be read, and when another thread switched
 * tasks or allocated while the scan ran.
 *
 * Other threads are not stopped (the library has no way to stop them that
 * is safe for the host); every read goes through tl__safe_read, so that
 * memory unmapped meanwhile is an error, not a fault. All the scan's
 * memory is mmap'd and given back at the end of the report.
 */
#include "internal.h"
#include "reach.h"
#include "options.h"
#include "alloc.h"
#include "thread.h"
#include "task/registry.h"
#include "heapblocks.h"
#include "ownstack.h"
#include "backtrace.h"
#include "suppress.h"
#include "tools.h"
#include "message.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

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
  uint32_t first, n;                       /* its tasks, in R.key_tasks */
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

/* Guarded by the writer's lock: one report at a time. */
static struct {
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
} R;

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

/* munmap through the system call: the library's munmap would take the
 * range for a program's, and release a task whose stack was once there
 * (freed unseen, then mapped again for us). */
static void unmap(void *p, size_t bytes)
{
  syscall(SYS_munmap, p, bytes);
}

static void *scratch(size_t bytes)
{
  if (R.nregions == REGIONS || bytes == 0)
    return NULL;
  bytes = (bytes + 4095) & ~(size_t)4095;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  R.regions[R.nregions++] = (struct region){p, bytes};
  return p;
}

static void undecided(const char *why)
{
  if (R.undecided == NULL)
    R.undecided = why;
}

/* ------------------------------------------------------------------------
 * The tasks
 * ------------------------------------------------------------------------ */

static int count_task(struct tl__task *t, void *arg)
{
  (void)t;
  (*(size_t *)arg)++;
  return 0;
}

/* Copies a task, with the registry locked: only its record's fields. */
static int copy_task(struct tl__task *t, void *arg)
{
  (void)arg;
  uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (t->id == 0 || state == TL__FINISHED || R.ntasks == R.cap_tasks)
    return 0;
  struct rtask *r = &R.tasks[R.ntasks++];
  memset(r, 0, offsetof(struct rtask, bt));
  r->rec = t;
  r->id = t->id;
  r->lo = t->lo;
  r->hi = t->hi;
  r->state = (uint8_t)state;
  r->flags = t->flags;
  r->entry = t->entry;
  r->x = t->x;
  r->vt = state == TL__ABANDONED ? NULL : atomic_load_explicit(&t->vt, memory_order_acquire);
  int own_ctx = (state == TL__NEW || state == TL__SUSPENDED) && __atomic_load_n(&t->mapped, __ATOMIC_RELAXED);
  r->ctx = own_ctx ? (uintptr_t)t->ctx : 0;
  r->cand = !(t->flags & TL__F_ROOT) && (state == TL__NEW || state == TL__SUSPENDED || state == TL__ABANDONED) &&
            r->hi > r->lo;
  if (state == TL__ABANDONED && t->x != NULL)
    r->vt = t->x->held;
  if (tl__suppress_active() && t->x != NULL && t->x->bt != NULL) {
    uint32_t n = t->x->bt_n <= TL__BT_MAX ? t->x->bt_n : TL__BT_MAX;
    if (tl__safe_read(r->bt, t->x->bt, n * sizeof r->bt[0]) == 0)
      r->bt_n = n;
  }
  return 0;
}

/* Where a task's stack is read from: the stack pointer its context holds
 * (saved by a switch, or set by makecontext for a task never started), if
 * the context is still its own and the pointer inside the stack, else the
 * whole stack. */
static void stack_start(struct rtask *r)
{
  r->from = r->lo;
  if (r->ctx == 0)
    return;
  ucontext_t uc;
  if (tl__safe_read(&uc, (const void *)r->ctx, sizeof uc) != 0)
    return;
  uintptr_t sp = TL__UC_SP(&uc);
  if (sp >= r->lo + RED_ZONE && sp < r->hi)
    r->from = (sp - RED_ZONE) & ~(uintptr_t)(WORD - 1);
}

static int by_rec(const struct rtask *a, const struct rtask *b)
{
  return (uintptr_t)a->rec < (uintptr_t)b->rec;
}

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

static int range_less(const struct range *a, const struct range *b)
{
  return a->lo < b->lo || (a->lo == b->lo && a->hi < b->hi);
}

static int key_less(const struct key *a, const struct key *b)
{
  return a->lo < b->lo || (a->lo == b->lo && a->hi < b->hi);
}

DEFINE_SORT(sort_tasks, struct rtask, by_rec)
DEFINE_SORT(sort_ranges, struct range, range_less)
DEFINE_SORT(sort_keys, struct key, key_less)

/* ------------------------------------------------------------------------
 * Lookups
 * ------------------------------------------------------------------------ */

/* The heap block holding p, or SIZE_MAX. */
static size_t block_of(uintptr_t p)
{
  const struct tl__heapblock *b = R.heap.blocks;
  size_t lo = 0, hi = R.heap.n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (b[mid].addr <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return SIZE_MAX;
  const struct tl__heapblock *c = &b[lo - 1];
  /* A block of size 0 still has an address that a pointer may hold. */
  return p - c->addr < (c->size ? c->size : 1) ? lo - 1 : SIZE_MAX;
}

static void push(uint32_t kind, uint32_t idx, uintptr_t lo, uintptr_t hi)
{
  if (R.nwork == R.cap_work) {
    undecided("the scan's work list is full");
    return;
  }
  R.work[R.nwork++] = (struct work){kind, idx, lo, hi};
}

static void reach_task(uint32_t i)
{
  struct rtask *r = &R.tasks[i];
  if (r->reached)
    return;
  r->reached = 1;
  r->seen_at = R.at;
  r->via = (uint8_t)R.via;
  push(W_TASK, i, 0, 0);
  if (r->hi > r->from)
    push(W_STACK, i, r->from, r->hi);
}

static void check_word(uintptr_t w)
{
  if (w - R.bmin < R.bmax - R.bmin) {
    size_t b = block_of(w);
    if (b != SIZE_MAX) {
      uint8_t m = R.block_mark[b];
      if (!(m & 1)) {
        R.block_mark[b] = m | 1;
        const struct tl__heapblock *hb = &R.heap.blocks[b];
        push(W_BLOCK, (uint32_t)b, hb->addr, hb->addr + hb->size);
      }
      if (!(m & 2) && R.block_tasks[b] != UINT32_MAX) {
        R.block_mark[b] |= 2;
        for (uint32_t k = 0; k < R.block_task_n[b]; k++)
          reach_task(R.block_task_list[R.block_tasks[b] + k]);
      }
      return;
    }
  }
  if (w - R.kmin < R.kmax - R.kmin) {
    /* The last key starting at or below w, then back while a key before
     * may still reach over w. */
    size_t lo = 0, hi = R.nkeys;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (R.keys[mid].lo <= w)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (size_t k = lo; k-- > 0 && R.keys[k].maxhi > w;) {
      struct key *ky = &R.keys[k];
      if (ky->done || w >= ky->hi)
        continue;
      ky->done = 1;
      for (uint32_t t = 0; t < ky->n; t++)
        reach_task(R.key_tasks[ky->first + t]);
    }
  }
}

/* ------------------------------------------------------------------------
 * Reading memory
 * ------------------------------------------------------------------------ */

/* Reads [lo, hi) word by word; returns 0, or EFAULT when a part of it
 * could not be read (it is skipped). */
static int scan_words(uintptr_t lo, uintptr_t hi)
{
  int err = 0;
  lo = (lo + WORD - 1) & ~(uintptr_t)(WORD - 1);
  while (lo + WORD <= hi) {
    size_t n = hi - lo < READ_CHUNK ? (size_t)(hi - lo) : READ_CHUNK;
    n &= ~(size_t)(WORD - 1);
    if (tl__safe_read(R.buf, (const void *)lo, n) != 0) {
      /* The rest of this page may be gone; the next page may not. */
      err = EFAULT;
      uintptr_t next = (lo | 4095) + 1;
      if (next <= lo || next >= hi)
        break;
      lo = next;
      continue;
    }
    R.bytes += n;
    for (size_t i = 0; i < n / WORD; i++) {
      R.at = lo + i * WORD;
      check_word(R.buf[i]);
    }
    R.at = 0;
    lo += n;
  }
  return err;
}

/* The first index of a sorted, disjoint array of ranges whose hi is above p. */
static size_t first_above(const struct range *a, size_t n, uintptr_t p)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid].hi <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* [lo, hi) without the heap's blocks. */
static int scan_without_blocks(uintptr_t lo, uintptr_t hi)
{
  int err = 0;
  const struct tl__heapblock *b = R.heap.blocks;
  size_t i = block_of(lo);
  if (i == SIZE_MAX) {
    /* The first block at or above lo. */
    size_t l = 0, h = R.heap.n;
    while (l < h) {
      size_t mid = l + (h - l) / 2;
      if (b[mid].addr < lo)
        l = mid + 1;
      else
        h = mid;
    }
    i = l;
  }
  uintptr_t at = lo;
  for (; i < R.heap.n && b[i].addr < hi && at < hi; i++) {
    if (b[i].addr > at)
      err |= scan_words(at, b[i].addr);
    uintptr_t end = b[i].addr + (b[i].size ? b[i].size : 1);
    if (end > at)
      at = end;
  }
  if (at < hi)
    err |= scan_words(at, hi);
  return err;
}

/* [lo, hi) without the holes, and for roots without the heap's blocks. */
static int scan_range(uintptr_t lo, uintptr_t hi, int root)
{
  int err = 0;
  uintptr_t at = lo;
  for (size_t i = first_above(R.holes, R.nholes, lo); i < R.nholes && R.holes[i].lo < hi && at < hi; i++) {
    if (R.holes[i].lo > at)
      err |= root ? scan_without_blocks(at, R.holes[i].lo) : scan_words(at, R.holes[i].lo);
    if (R.holes[i].hi > at)
      at = R.holes[i].hi;
  }
  if (at < hi)
    err |= root ? scan_without_blocks(at, hi) : scan_words(at, hi);
  return err;
}

/* The values of a value table (its handle, read once), as words. */
static void scan_vtab(const struct tl__vtab *vt)
{
  if (vt == NULL || vt == tl__vt_empty)
    return;
  const struct tl__ent *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  if (mask >= (1u << 28))
    return;
  scan_words((uintptr_t)ent, (uintptr_t)(ent + mask + 1));
}

static void scan_defers(const struct tl__defer *d)
{
  for (int i = 0; d != NULL && i < 100000; i++) {
    struct tl__defer c;
    if (tl__safe_read(&c, d, sizeof c) != 0)
      break;
    check_word((uintptr_t)c.arg);
    d = c.next;
  }
}

/* What the library keeps for a task that the program gave it: its values,
 * the values its open bindings will restore, its deferred calls' arguments
 * and its inherited values. */
static void scan_task_values(const struct rtask *r)
{
  scan_vtab(r->vt);
  struct tl__task_ext x;
  if (r->x == NULL || tl__safe_read(&x, r->x, sizeof x) != 0)
    return;
  if (x.binds != NULL && x.nbinds < (1u << 20))
    scan_words((uintptr_t)x.binds, (uintptr_t)(x.binds + x.nbinds));
  if (x.shared != NULL && x.nshared < (1u << 20))
    scan_words((uintptr_t)x.shared, (uintptr_t)(x.shared + x.nshared));
  scan_defers(x.defers);
}

static void drain(void)
{
  while (R.nwork > 0) {
    struct work w = R.work[--R.nwork];
    R.via = w.kind;
    switch (w.kind) {
    case W_ROOT:
      if (scan_range(w.lo, w.hi, 1) != 0)
        undecided("a root could not be read");
      break;
    case W_BLOCK:
      scan_range(w.lo, w.hi, 0);
      break;
    case W_STACK:
      scan_words(w.lo, w.hi);
      break;
    case W_TASK:
      scan_task_values(&R.tasks[w.idx]);
      break;
    }
  }
}

/* ------------------------------------------------------------------------
 * The roots
 * ------------------------------------------------------------------------ */

static void hole(uintptr_t lo, uintptr_t hi)
{
  if (lo >= hi)
    return;
  if (R.nholes == R.cap_holes) {
    undecided("too many holes");
    return;
  }
  R.holes[R.nholes++] = (struct range){lo, hi};
}

static void own_pages(uintptr_t lo, uintptr_t hi, void *arg)
{
  (void)arg;
  hole(lo, hi);
}

/* The library's own data: its writable segments, and those of libunwind,
 * whose caches keep what the last report's unwinding of suspended tasks
 * saw (addresses in their stacks) and nothing of the program's. */
static int own_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  uintptr_t self = (uintptr_t)arg;
  const char *base = info->dlpi_name != NULL ? strrchr(info->dlpi_name, '/') : NULL;
  base = base != NULL ? base + 1 : info->dlpi_name;
  int mine = base != NULL && strncmp(base, "libunwind.so", 12) == 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && self >= a && self < a + ph->p_memsz)
      mine = 1;
  }
  if (!mine)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
      continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    hole(a & ~(uintptr_t)4095, (a + ph->p_memsz + 4095) & ~(uintptr_t)4095);
  }
  return 0;
}

static void merge_holes(struct range *tmp)
{
  if (tmp == NULL) {
    undecided("out of memory");
    R.nholes = 0;
    return;
  }
  struct range *s = sort_ranges(R.holes, tmp, R.nholes);
  size_t n = 0;
  for (size_t i = 0; i < R.nholes; i++) {
    if (n > 0 && s[i].lo <= R.holes[n - 1].hi) {
      if (s[i].hi > R.holes[n - 1].hi)
        R.holes[n - 1].hi = s[i].hi;
    } else {
      R.holes[n++] = s[i];
    }
  }
  R.nholes = n;
}

static uintptr_t hex(const char **p)
{
  uintptr_t v = 0;
  for (;; (*p)++) {
    char c = **p;
    if (c >= '0' && c <= '9')
      v = v * 16 + (uintptr_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v = v * 16 + (uintptr_t)(c - 'a' + 10);
    else
      return v;
  }
}

/* /proc/self/maps, whole, into memory of the scan. */
static int read_maps(void)
{
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t cap = 1u << 20, len = 0;
  char *buf = scratch(cap);
  for (; buf != NULL;) {
    if (len + 4096 > cap) {
      /* Larger: the old copy stays until the end of the report. */
      char *bigger = scratch(cap * 4);
      if (bigger == NULL) {
        buf = NULL;
        break;
      }
      memcpy(bigger, buf, len);
      buf = bigger;
      cap *= 4;
    }
    ssize_t n = syscall(SYS_read, fd, buf + len, cap - len - 1);
    if (n < 0) {
      buf = NULL;
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  syscall(SYS_close, fd);
  if (buf == NULL)
    return -1;
  buf[len] = '\0';
  R.maps = buf;
  R.maps_len = len;
  return 0;
}

/* The address of the first heap block at or above p, or UINTPTR_MAX. */
static uintptr_t first_block_at(uintptr_t p)
{
  size_t l = 0, h = R.heap.n;
  while (l < h) {
    size_t mid = l + (h - l) / 2;
    if (R.heap.blocks[mid].addr < p)
      l = mid + 1;
    else
      h = mid;
  }
  return l < R.heap.n ? R.heap.blocks[l].addr : UINTPTR_MAX;
}

/* Whether /proc/self/maps names the heap. */
static int named_heap(void)
{
  return strstr(R.maps, " [heap]\n") != NULL;
}

/* Whether [lo, hi) holds a heap block. */
static int holds_block(uintptr_t lo, uintptr_t hi)
{
  size_t l = 0, h = R.heap.n;
  while (l < h) {
    size_t mid = l + (h - l) / 2;
    if (R.heap.blocks[mid].addr < lo)
      l = mid + 1;
    else
      h = mid;
  }
  return l < R.heap.n && R.heap.blocks[l].addr < hi;
}

/* Whether [lo, hi) is one of glibc's other arenas (malloc/arena.c): a
 * heap of HEAP_MAX_SIZE bytes, aligned to that size, whose readable part
 * begins with its heap_info: the arena it belongs to (right after the
 * heap_info in an arena's first heap), the previous heap (aligned too), the
 * readable size, the size made readable so far. A mapping of the program's
 * that happens to share its bounds is still a root: these must all agree,
 * and failing to see an arena only makes the scan read its free chunks. */
static int glibc_arena(uintptr_t lo, uintptr_t hi)
{
  struct {
    uintptr_t ar_ptr, prev;
    size_t size, mprotect_size;
  } h;
  if ((lo & (ARENA_SIZE - 1)) != 0 || hi - lo > ARENA_SIZE || tl__safe_read(&h, (const void *)lo, sizeof h) != 0)
    return 0;
  if (h.size != hi - lo || h.mprotect_size < h.size || h.mprotect_size > ARENA_SIZE)
    return 0;
  if (h.prev == 0)
    return h.ar_ptr > lo && h.ar_ptr < lo + 128;
  return (h.prev & (ARENA_SIZE - 1)) == 0 && h.ar_ptr - lo >= ARENA_SIZE;
}

struct shadow {
  uintptr_t lo, hi;                        /* AddressSanitizer's shadow memory, or 0, 0 */
};

/* Each writable mapping, less what is not the program's. malloc's arenas
 * are not roots: a free chunk there holds what its block held, and a
 * context freed with its block must not keep its task reachable. They are
 * glibc's main heap ([heap], when it holds a block) and its other arenas
 * (glibc_arena); a block the program holds there is read when something
 * reached points into it. */
static void push_mappings(struct shadow sh)
{
  uintptr_t brk = named_heap() ? 0 : (uintptr_t)sbrk(0);
  for (const char *p = R.maps; *p;) {
    const char *line = p;
    const char *nl = strchr(p, '\n');
    p = nl != NULL ? nl + 1 : p + strlen(p);
    uintptr_t lo = hex(&line);
    if (*line != '-')
      continue;
    line++;
    uintptr_t hi = hex(&line);
    if (*line != ' ' || line[1] != 'r' || line[2] != 'w')
      continue;
    const char *path = line;
    for (int fields = 0; fields < 4 && path < p; fields++) {
      while (path < p && *path == ' ')
        path++;
      while (path < p && *path != ' ' && *path != '\n')
        path++;
    }
    while (path < p && *path == ' ')
      path++;
    int anon = path >= p || *path == '\n';
    if (!anon && strncmp(path, "[heap]", 6) == 0 && holds_block(lo, hi))
      continue;
    /* Where the kernel does not name the heap (qemu-user), it is the part
     * of the mapping that ends at the program break from the page of its
     * lowest block on; what lies below (the program's zero-initialised
     * data, with which it may share the mapping) stays a root. */
    if (anon && brk > lo && brk <= hi && holds_block(lo, brk)) {
      uintptr_t first = first_block_at(lo) & ~(uintptr_t)4095;
      if (first > lo)
        push(W_ROOT, 0, lo, first);
      lo = brk;
      if (lo >= hi)
        continue;
    }
    /* Device memory (a GPU's, a frame buffer) is not the program's data,
     * and reading it may have effects. */
    if (!anon && strncmp(path, "/dev/", 5) == 0 && strncmp(path, "/dev/zero", 9) != 0 &&
        strncmp(path, "/dev/shm/", 9) != 0)
      continue;
    if (sh.hi > sh.lo && lo >= sh.lo && hi <= sh.hi)
      continue;
    if (anon && glibc_arena(lo, hi))
      continue;
    if (hi - lo > HUGE_MAPPING) {
      undecided("a mapping is too large to read");
      continue;
    }
    push(W_ROOT, 0, lo, hi);
  }
}

/* The mapping that holds p. */
static struct range mapping_of(uintptr_t p)
{
  for (const char *s = R.maps; *s;) {
    const char *line = s;
    const char *nl = strchr(s, '\n');
    s = nl != NULL ? nl + 1 : s + strlen(s);
    uintptr_t lo = hex(&line);
    if (*line != '-')
      continue;
    line++;
    uintptr_t hi = hex(&line);
    if (p >= lo && p < hi)
      return (struct range){lo, hi};
  }
  return (struct range){p, p};
}

/* Roots the library keeps: thread-scope values and deferred calls, custom
 * owners and their values, keys' attributes. */
static void scan_library_roots(void)
{
  for (const struct tl__thread *th = tl__thread_list(); th != NULL; th = th->next) {
    scan_vtab(atomic_load_explicit(&th->tvt, memory_order_acquire));
    scan_defers(th->defers);
  }
  /* Custom owners: a chained hash table (scope.c publishes its layout). */
  const struct tl__debug_owners *o = &tl__debug_owners;
  void *const *buckets = NULL;
  uint32_t nb = 0;
  if (tl__safe_read(&buckets, o->buckets, sizeof buckets) == 0 && tl__safe_read(&nb, o->nbuckets, sizeof nb) == 0 &&
      buckets != NULL && nb < (1u << 26)) {
    for (uint32_t i = 0; i < nb; i++) {
      const char *rec = NULL;
      if (tl__safe_read(&rec, &buckets[i], sizeof rec) != 0)
        break;
      for (int guard = 0; rec != NULL && guard < (1 << 20); guard++) {
        uintptr_t f[2];
        const struct tl__vtab *vt = NULL;
        const char *next = NULL;
        if (tl__safe_read(&f[0], rec + o->disc, sizeof f[0]) != 0 || tl__safe_read(&f[1], rec + o->owner, sizeof f[1]) != 0 ||
            tl__safe_read(&vt, rec + o->vt, sizeof vt) != 0 || tl__safe_read(&next, rec + o->next, sizeof next) != 0)
          break;
        check_word(f[0]);
        check_word(f[1]);
        scan_vtab(vt);
        rec = next;
      }
    }
  }
  /* Keys' attributes: init_arg and disc are the program's. */
  const struct tl__debug_keys *k = &tl__debug_keys;
  uint32_t nslots = 0;
  if (tl__safe_read(&nslots, k->nslots, sizeof nslots) == 0) {
    uint32_t per = 1u << k->chunk_bits;
    for (uint32_t c = 0; c * per < nslots; c++) {
      const char *chunk = NULL;
      if (tl__safe_read(&chunk, (const char *const *)k->chunks + c, sizeof chunk) != 0 || chunk == NULL)
        break;
      for (uint32_t s = 0; s < per && c * per + s < nslots; s++) {
        const char *a = chunk + (size_t)s * k->rec_size + k->rec_attr;
        scan_words((uintptr_t)a, (uintptr_t)(a + sizeof(tl_key_attr_t)));
      }
    }
  }
}

/* ------------------------------------------------------------------------
 * The scan
 * ------------------------------------------------------------------------ */

/* What other threads did to the heap and to their tasks while the scan ran
 * is seen through the sum of every thread's switches and the registry's
 * changes. */
static uint64_t activity(void)
{
  uint64_t n = tl__heapblocks_changes();
  for (const struct tl__thread *th = tl__thread_list(); th != NULL; th = th->next)
    n += __atomic_load_n(&th->switches, __ATOMIC_RELAXED);
  return n;
}

/* Builds the keys: each candidate's context and stack, or the heap blocks
 * holding them. */
static int build_keys(void)
{
  size_t n = R.heap.n;
  R.block_mark = scratch(n + 1);
  R.block_tasks = scratch((n + 1) * sizeof *R.block_tasks);
  R.block_task_n = scratch((n + 1) * sizeof *R.block_task_n);
  R.block_task_list = scratch((2 * R.ntasks + 1) * sizeof *R.block_task_list);
  R.keys = scratch((2 * R.ntasks + 1) * sizeof *R.keys);
  struct key *ktmp = scratch((2 * R.ntasks + 1) * sizeof *ktmp);
  R.key_tasks = scratch((2 * R.ntasks + 1) * sizeof *R.key_tasks);
  if (R.block_mark == NULL || R.block_tasks == NULL || R.block_task_n == NULL || R.block_task_list == NULL ||
      R.keys == NULL || ktmp == NULL || R.key_tasks == NULL)
    return ENOMEM;
  memset(R.block_tasks, 0xff, n * sizeof *R.block_tasks);
  /* Pairs (block, task): counted, then placed. */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      uint32_t at = 0;
      for (size_t b = 0; b < n; b++)
        if (R.block_task_n[b] > 0) {
          R.block_tasks[b] = at;
          at += R.block_task_n[b];
          R.block_task_n[b] = 0;
        }
    }
    for (size_t i = 0; i < R.ntasks; i++) {
      const struct rtask *r = &R.tasks[i];
      if (!r->cand)
        continue;
      size_t bs = block_of(r->lo), bc = r->ctx != 0 ? block_of(r->ctx) : SIZE_MAX;
      size_t both[2] = {bs, bc == bs ? SIZE_MAX : bc};
      for (int k = 0; k < 2; k++)
        if (both[k] != SIZE_MAX) {
          if (pass == 1)
            R.block_task_list[R.block_tasks[both[k]] + R.block_task_n[both[k]]] = (uint32_t)i;
          R.block_task_n[both[k]]++;
        }
    }
  }
  /* Ranges outside the heap: (lo, hi, task) as keys of one task, sorted,
   * then those of equal bounds merged. */
  size_t nk = 0;
  for (size_t i = 0; i < R.ntasks; i++) {
    const struct rtask *r = &R.tasks[i];
    if (!r->cand)
      continue;
    if (block_of(r->lo) == SIZE_MAX)
      R.keys[nk++] = (struct key){.lo = r->lo, .hi = r->hi, .first = (uint32_t)i};
    if (r->ctx != 0 && block_of(r->ctx) == SIZE_MAX)
      R.keys[nk++] = (struct key){.lo = r->ctx, .hi = r->ctx + sizeof(ucontext_t), .first = (uint32_t)i};
  }
  struct key *s = sort_keys(R.keys, ktmp, nk);
  size_t m = 0;
  for (size_t i = 0; i < nk; i++) {
    R.key_tasks[i] = s[i].first;
    if (m > 0 && R.keys[m - 1].lo == s[i].lo && R.keys[m - 1].hi == s[i].hi) {
      R.keys[m - 1].n++;
      continue;
    }
    R.keys[m++] = (struct key){.lo = s[i].lo, .hi = s[i].hi, .first = (uint32_t)i, .n = 1};
  }
  R.nkeys = m;
  uintptr_t maxhi = 0;
  R.kmin = m > 0 ? R.keys[0].lo : 0;
  for (size_t i = 0; i < m; i++) {
    if (R.keys[i].hi > maxhi)
      maxhi = R.keys[i].hi;
    R.keys[i].maxhi = maxhi;
  }
  R.kmax = maxhi;
  R.bmin = n > 0 ? R.heap.blocks[0].addr : 0;
  R.bmax = 0;
  for (size_t b = 0; b < n; b++)
    if (R.heap.blocks[b].addr + R.heap.blocks[b].size + 1 > R.bmax)
      R.bmax = R.heap.blocks[b].addr + R.heap.blocks[b].size + 1;
  return 0;
}

/* Looked up at load: dlsym allocates when a symbol is missing, and a
 * report must not. */
static void (*asan_shadow)(size_t *scale, size_t *offset);

void tl__reach_setup(void)
{
  *(void **)&asan_shadow = dlsym(RTLD_DEFAULT, "__asan_get_shadow_mapping");
}

/* AddressSanitizer's shadow memory: terabytes of the address space, none of
 * it the program's data. */
static void shadow_of_asan(struct shadow *sh)
{
  sh->lo = sh->hi = 0;
  if (asan_shadow == NULL)
    return;
  size_t scale = 0, offset = 0;
  asan_shadow(&scale, &offset);
  sh->lo = offset;
  sh->hi = offset + ((uintptr_t)1 << 48 >> scale);
}

__attribute__((noinline)) static void classify(struct tl__job *j, uintptr_t sp)
{
  R.undecided = NULL;
  /* The tasks, twice: counted, then copied into memory of their size. */
  size_t n = 0;
  if (tl__task_foreach(count_task, &n) != 0) {
    undecided("the task registry is busy on this thread");
    return;
  }
  R.cap_tasks = n + 64;
  R.tasks = scratch(R.cap_tasks * sizeof *R.tasks);
  struct rtask *ttmp = scratch(R.cap_tasks * sizeof *ttmp);
  R.buf = scratch(READ_CHUNK);
  if (R.tasks == NULL || ttmp == NULL || R.buf == NULL) {
    undecided("out of memory");
    return;
  }
  uint64_t before = activity();
  R.ntasks = 0;
  if (tl__task_foreach(copy_task, NULL) != 0) {
    undecided("the task registry is busy on this thread");
    return;
  }
  struct rtask *sorted = sort_tasks(R.tasks, ttmp, R.ntasks);
  if (sorted != R.tasks)
    memcpy(R.tasks, sorted, R.ntasks * sizeof *sorted);
  /* The tasks are copied even when nothing can be decided: suppressions
   * apply to them all the same. The program's thread-local state that
   * TASKLOCAL_TASK_LOCAL keeps per task lives in the library's own blocks,
   * which the scan does not read. */
  if (tl__opt.task_local != NULL) {
    undecided("TASKLOCAL_TASK_LOCAL keeps program state that the scan does not read");
    return;
  }
  if (tl__heapblocks_state() == TL__HEAP_OFF) {
    undecided(tl__opt.leaks ? "the heap's blocks are not known (the allocation functions in use are not the library's)"
                            : "TASKLOCAL_LEAKS was off at start: the heap's blocks are not known");
    return;
  }
  for (size_t i = 0; i < R.ntasks; i++)
    if (R.tasks[i].cand)
      stack_start(&R.tasks[i]);

  if (tl__heapblocks_snapshot(&R.heap) != 0) {
    undecided("the heap's blocks could not be copied");
    return;
  }
  if (R.heap.unsure)
    undecided("some heap blocks are not known");
  if (read_maps() != 0) {
    undecided("/proc/self/maps could not be read");
    return;
  }
  if (build_keys() != 0) {
    undecided("out of memory");
    return;
  }
  R.cap_holes = R.ntasks + 4096 + tl__own_pages_count() + REGIONS + 64;
  R.holes = scratch(R.cap_holes * sizeof *R.holes);
  struct range *htmp = scratch(R.cap_holes * sizeof *htmp);
  R.cap_work = R.heap.n + 2 * R.ntasks + 65536;
  R.work = scratch(R.cap_work * sizeof *R.work);
  if (R.holes == NULL || htmp == NULL || R.work == NULL) {
    undecided("out of memory");
    return;
  }
  /* Holes: the library's data and pages, the candidates' stacks, and the
   * calling stack below the scan (on a stack of the report's own, all of
   * that stack), and the scan's own memory, all mapped by now. */
  tl__own_pages(own_pages, NULL);
  tl__heapblocks_tables(own_pages, NULL);
  hole((uintptr_t)R.heap.blocks, (uintptr_t)R.heap.blocks + R.heap.mapped);
  uintptr_t own_lo, own_hi;
  tl__own_stack_range(&own_lo, &own_hi);
  hole(own_lo, own_hi);
  dl_iterate_phdr(own_segments, (void *)&R);
  for (int i = 0; i < R.nregions; i++)
    hole((uintptr_t)R.regions[i].p, (uintptr_t)R.regions[i].p + R.regions[i].bytes);
  for (size_t i = 0; i < R.ntasks; i++)
    if (R.tasks[i].cand)
      hole(R.tasks[i].lo, R.tasks[i].hi);
  struct range m = mapping_of(sp);
  const struct tl__task *here = j->here;
  int on_here = here != NULL && sp >= here->lo && sp < here->hi;
  hole(m.lo, here == NULL || on_here ? sp : m.hi);
  merge_holes(htmp);

  struct shadow sh;
  shadow_of_asan(&sh);
  push_mappings(sh);
  /* Running tasks' stacks, which may lie in heap blocks; the calling
   * task's from the scan's stack pointer up. Roots' values. */
  for (size_t i = 0; i < R.ntasks; i++) {
    struct rtask *r = &R.tasks[i];
    if (r->cand)
      continue;
    r->reached = 1;
    push(W_TASK, (uint32_t)i, 0, 0);
    if (r->state == TL__RUNNING && !(r->flags & TL__F_ROOT) && r->hi > r->lo) {
      uintptr_t from = r->rec == here && on_here ? sp : r->lo;
      push(W_STACK, (uint32_t)i, from, r->hi);
    }
  }
  drain();
  scan_library_roots();
  drain();
  if (activity() != before)
    undecided("other threads switched tasks or used the heap while the scan ran");
}

/* The entry of the scan: callee-saved registers are spilled here, and the
 * scan reads the calling stack from this frame up; the frames of the scan
 * itself lie below and are not read. */
__attribute__((noinline)) static void scan_entry(struct tl__job *j)
{
  __builtin_unwind_init();
  uintptr_t sp = tl__sp();
  classify(j, sp);
  __asm__ volatile("" ::: "memory");
}

/* TASKLOCAL_VERBOSE: where the word that keeps each parked task reachable
 * lies, and in which mapping. */
static void explain(void)
{
  static const char *const via[] = {"a root", "a heap block", "a task's stack", "a task's locals"};
  int told = 0;
  for (size_t i = 0; i < R.ntasks && told < EXPLAINED; i++) {
    const struct rtask *r = &R.tasks[i];
    if (!r->cand || !r->reached)
      continue;
    told++;
    const char *path = "";
    size_t len = 0;
    for (const char *p = R.maps; p != NULL && *p;) {
      const char *line = p, *line0 = p, *nl = strchr(p, '\n');
      p = nl != NULL ? nl + 1 : p + strlen(p);
      uintptr_t lo = hex(&line);
      if (*line != '-')
        continue;
      line++;
      uintptr_t hi = hex(&line);
      if (r->seen_at >= lo && r->seen_at < hi) {
        path = line0;
        len = (size_t)(p - line) - (nl != NULL);
        break;
      }
    }
    char name[160];
    if (len >= sizeof name)
      len = sizeof name - 1;
    memcpy(name, path, len);
    name[len] = '\0';
    tl__message("leak scan: task %llu is reached from %p, in %s (mapping %s)", (unsigned long long)r->id,
        (void *)r->seen_at, via[r->via < 4 ? r->via : 0], name);
  }
}

void tl__reach_begin(struct tl__job *j)
{
  if (R.early) {
    R.early = 0;                           /* the exit report: scanned already */
    return;
  }
  memset(&R, 0, sizeof R);
  R.active = 1;
  tl__suppress_reset();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  scan_entry(j);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  for (size_t i = 0; i < R.ntasks; i++) {
    struct rtask *r = &R.tasks[i];
    r->kind = r->cand && !r->reached && R.undecided == NULL ? TL__KIND_LEAKED : TL__KIND_PARKED;
  }
  if (tl__opt.verbose) {
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    size_t reached = 0;
    for (size_t i = 0; i < R.heap.n; i++)
      reached += R.block_mark != NULL && (R.block_mark[i] & 1);
    tl__message("leak scan: %zu tasks, %zu heap blocks (%zu reached), %llu MiB read in %ld ms", R.ntasks, R.heap.n,
        reached, (unsigned long long)(R.bytes >> 20), ms);
    explain();
  }
  /* Suppressions, after the scan: symbols and unwinding take locks, and
   * their frames must not be read as roots. */
  if (tl__suppress_active())
    for (size_t i = 0; i < R.ntasks; i++) {
      struct rtask *r = &R.tasks[i];
      if ((r->flags & TL__F_ROOT) || r->state == TL__FINISHED)
        continue;
      const void *ctx = r->state == TL__SUSPENDED && (r->flags & TL__F_STARTED) ? (const void *)r->ctx : NULL;
      if (tl__suppress_task(r->entry, r->bt, (int)r->bt_n, ctx, r->lo, r->hi) >= 0)
        r->kind = TL__KIND_SUPPRESSED;
    }
}

enum tl__kind tl__reach_kind(const struct tl__task *t, uint64_t id)
{
  size_t lo = 0, hi = R.ntasks;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)R.tasks[mid].rec < (uintptr_t)t)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < R.ntasks && R.tasks[lo].rec == t && R.tasks[lo].id == id)
    return (enum tl__kind)R.tasks[lo].kind;
  return TL__KIND_PARKED;
}

/* The exit report's scan runs before the roots' values are destroyed at
 * exit (root.c): until then they are the program's references, as globals
 * are, and a task that only a local of the main thread's root task points
 * to is parked. The report (tl__reach_begin) then takes this scan's kinds. */
static void early_scan(void *arg)
{
  tl__reach_begin(arg);
}

void tl__reach_exit_early(void)
{
  if (!tl__opt.leaks)
    return;
  struct tl__job j;
  if (tl__job_begin(&j, TL__JOB_LEAK, tl__options_log_fd(), 0) != 0)
    return;
  tl__run_on_own_stack(j.here, EARLY_STACK_NEED, early_scan, &j);
  R.early = R.active;
  tl__job_end(&j);
}

/* ------------------------------------------------------------------------
 * LeakSanitizer at exit
 * ------------------------------------------------------------------------ */

static int forget_leaked(struct tl__task *t, void *arg)
{
  (void)arg;
  if (tl__reach_kind(t, t->id) == TL__KIND_LEAKED)
    tl__lsan_forget(t);
  return 0;
}

/* At exit, before LeakSanitizer's own check: the stacks of the tasks nothing
 * can resume stop being root regions (tools.c), so that what only they
 * hold is reported. The scan runs once more for the exit report. */
static void lsan_scan(void *arg)
{
  struct tl__job *j = arg;
  memset(&R, 0, sizeof R);
  R.active = 1;
  scan_entry(j);
  for (size_t i = 0; i < R.ntasks; i++) {
    struct rtask *r = &R.tasks[i];
    r->kind = r->cand && !r->reached && R.undecided == NULL ? TL__KIND_LEAKED : TL__KIND_PARKED;
  }
  tl__task_foreach(forget_leaked, NULL);
  tl__reach_end();
}

/* The scan runs on the library's own stack (its frames there are not
 * read), so that it leaves nothing in the calling stack's dead frames for
 * the exit report's scan to find. */
static void lsan_exit(void)
{
  struct tl__job j;
  if (tl__job_begin(&j, TL__JOB_LEAK, 2, 0) != 0)
    return;
  tl__run_on_own_stack(j.here, SIZE_MAX, lsan_scan, &j);
  tl__job_end(&j);
}

/* At load, under LeakSanitizer: its runtime is set up before the libraries
 * that need it, so its exit handler is registered before this one, which
 * then runs first. */
void tl__reach_lsan_setup(void)
{
  if (tl__lsan_present())
    atexit(lsan_exit);
}

/* Kept after tl__reach_end, until the next scan. */
static const char *last_undecided;

const char *tl__reach_undecided(void)
{
  return last_undecided;
}

void tl__reach_end(void)
{
  last_undecided = R.undecided;
  tl__heapblocks_snapshot_free(&R.heap);
  for (int i = 0; i < R.nregions; i++)
    unmap(R.regions[i].p, R.regions[i].bytes);
  memset(&R, 0, sizeof R);
}
