/* The program's heap blocks, known while leak checking is on, for the
 * reachability scan of the leak report (reach.c): which memory is a heap
 * block, and how long it is, so that the scan reads a block only when
 * something it reached points into it, as LeakSanitizer does.
 *
 * The interposed allocation functions (heapwatch.c) add every block they
 * hand out and delete every block before it goes back. They run for every
 * malloc of the program, from any thread, in signal handlers that
 * allocate anyway, and in forked children; so this file never allocates
 * (its tables are mmap'd), and its table is cut into STRIPES independent
 * open-addressing tables, each behind its own lock and on cache lines of
 * its own, chosen by the block's address: two threads rarely wait for each
 * other. A signal handler that interrupts its own thread inside the lock
 * it needs cannot wait for itself: the block is not recorded, and the
 * registry says so (TL__HEAP_UNSURE), so that the scan calls no task
 * leaked on its account.
 *
 * A free of a block the registry never saw means that blocks were made
 * before it started, and those are unknown too: the registry is then
 * unsure as well.
 *
 * What the allocation functions call here runs before a sanitizer's
 * runtime has made its shadow memory (the first malloc of the process),
 * so it is not instrumented (TL__HEAP_FN), and takes its stripe's lock
 * with its own compare-and-swap rather than lock.c's instrumented one.
 */
#include "internal.h"
#include "heapblocks.h"
#include "lock.h"
#include "heapreal.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STRIPES 64u
#define FIRST_CAP 1024u                    /* slots of a stripe's first table */
#define EMPTY ((uintptr_t)0)
#define TOMB ((uintptr_t)1)                /* a deleted slot; no block starts at address 1 */

struct slot {
  uintptr_t addr;
  size_t size;
};

struct stripe {
  struct tl__lock lock;
  struct slot *s;                          /* cap slots, mmap'd; NULL before the first add */
  size_t cap;
  size_t used;                             /* live and deleted slots */
  size_t live;
  uint64_t changes;                        /* adds and deletes */
} __attribute__((aligned(64)));

static struct {
  struct stripe st[STRIPES];
  struct slot *_Atomic first;              /* the first tables, STRIPES x FIRST_CAP slots */
  _Atomic int active;                      /* something was added */
  _Atomic int unsure;                      /* a block may be missing */
} H;

/* A stripe's lock: lock.c's, taken without instrumentation. EDEADLK when
 * this thread holds it already (a signal handler that allocates). */
TL__HEAP_FN static int stripe_lock(struct stripe *st)
{
  uintptr_t me = (uintptr_t)&tl__tls;
  if (atomic_load_explicit(&st->lock.owner, memory_order_relaxed) == me)
    return EDEADLK;
  for (unsigned spins = 0;; spins++) {
    uintptr_t expected = 0;
    if (atomic_compare_exchange_weak_explicit(&st->lock.owner, &expected, me, memory_order_acquire,
                                              memory_order_relaxed))
      return 0;
    if (spins < 64)
      tl__cpu_relax();
    else
      sched_yield();
  }
}

TL__HEAP_FN static void stripe_unlock(struct stripe *st)
{
  atomic_store_explicit(&st->lock.owner, 0, memory_order_release);
}

TL__HEAP_FN void tl__heapblocks_missed(void)
{
  atomic_store_explicit(&H.unsure, 1, memory_order_relaxed);
}

int tl__heapblocks_state(void)
{
  if (!atomic_load_explicit(&H.active, memory_order_relaxed))
    return TL__HEAP_OFF;
  return atomic_load_explicit(&H.unsure, memory_order_relaxed) ? TL__HEAP_UNSURE : TL__HEAP_COMPLETE;
}

/* Heap blocks are aligned to 16 bytes: the bits above those are mixed, the
 * top ones choose the stripe, the others the slot. */
TL__HEAP_FN static inline uint64_t hash(uintptr_t p)
{
  return (uint64_t)(p >> 4) * 0x9e3779b97f4a7c15ull;
}

TL__HEAP_FN static inline struct stripe *stripe_of(uint64_t h)
{
  return &H.st[h >> 58];
}

_Static_assert(STRIPES == 64u, "stripe_of takes the top 6 bits");

/* munmap through the system call: the library's munmap would take the
 * range for a program's, and release a task whose stack was once there
 * (freed unseen, then mapped again for us). */
TL__HEAP_FN static void unmap(void *p, size_t bytes)
{
  syscall(SYS_munmap, p, bytes);
}

TL__HEAP_FN static void *map(size_t bytes)
{
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Inserts into a table known to have room, replacing the block of the same
 * address if there is one (a block whose free was not seen). */
TL__HEAP_FN static void put(struct stripe *st, uintptr_t addr, size_t size, uint64_t h)
{
  size_t mask = st->cap - 1, i = (size_t)h & mask, tomb = SIZE_MAX;
  for (;; i = (i + 1) & mask) {
    uintptr_t a = st->s[i].addr;
    if (a == addr) {
      st->s[i].size = size;
      return;
    }
    if (a == TOMB && tomb == SIZE_MAX)
      tomb = i;
    if (a == EMPTY)
      break;
  }
  if (tomb != SIZE_MAX)
    i = tomb;
  else
    st->used++;
  st->s[i].addr = addr;
  st->s[i].size = size;
  st->live++;
}

/* The stripes' first tables are carved from one mapping, made at the
 * first allocation of the process, before the program maps anything: a
 * table mapped later would take the place of memory the program has just
 * unmapped (a freed stack), which a report then finds mapped again. */
TL__HEAP_FN static struct slot *first_table(struct stripe *st)
{
  struct slot *all = atomic_load_explicit(&H.first, memory_order_acquire);
  if (all == NULL) {
    struct slot *mine = map((size_t)STRIPES * FIRST_CAP * sizeof *mine);
    if (mine == NULL)
      return map(FIRST_CAP * sizeof *mine);
    if (atomic_compare_exchange_strong_explicit(&H.first, &all, mine, memory_order_acq_rel, memory_order_acquire))
      all = mine;
    else
      unmap(mine, (size_t)STRIPES * FIRST_CAP * sizeof *mine);
  }
  return all + (size_t)(st - H.st) * FIRST_CAP;
}

/* A new table, twice as large when more than half of the slots are live,
 * else of the same size without the deleted slots. */
TL__HEAP_FN static int grow(struct stripe *st)
{
  size_t cap = st->cap == 0 ? FIRST_CAP : st->live * 2 > st->cap ? st->cap * 2 : st->cap;
  struct slot *s = st->cap == 0 ? first_table(st) : map(cap * sizeof *s);
  if (s == NULL)
    return ENOMEM;
  struct slot *old = st->s;
  size_t old_cap = st->cap;
  st->s = s;
  st->cap = cap;
  st->used = st->live = 0;
  for (size_t i = 0; i < old_cap; i++)
    if (old[i].addr > TOMB)
      put(st, old[i].addr, old[i].size, hash(old[i].addr));
  if (old != NULL)
    unmap(old, old_cap * sizeof *old);
  return 0;
}

TL__HEAP_FN void tl__heapblocks_add(void *p, size_t size)
{
  uintptr_t addr = (uintptr_t)p;
  if (addr <= TOMB)
    return;
  if (TL__UNLIKELY(!atomic_load_explicit(&H.active, memory_order_relaxed)))
    atomic_store_explicit(&H.active, 1, memory_order_relaxed);
  uint64_t h = hash(addr);
  struct stripe *st = stripe_of(h);
  if (stripe_lock(st) != 0) {
    tl__heapblocks_missed();
    return;
  }
  if ((st->used + 1) * 4 > st->cap * 3 && grow(st) != 0)
    tl__heapblocks_missed();
  else
    put(st, addr, size, h);
  st->changes++;
  stripe_unlock(st);
}

TL__HEAP_FN void tl__heapblocks_del(void *p)
{
  uintptr_t addr = (uintptr_t)p;
  if (addr <= TOMB)
    return;
  uint64_t h = hash(addr);
  struct stripe *st = stripe_of(h);
  if (stripe_lock(st) != 0) {
    tl__heapblocks_missed();
    return;
  }
  int found = 0;
  st->changes++;
  if (st->s != NULL) {
    size_t mask = st->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
      uintptr_t a = st->s[i].addr;
      if (a == addr) {
        st->s[i].addr = TOMB;
        st->live--;
        found = 1;
        break;
      }
      if (a == EMPTY)
        break;
    }
  }
  stripe_unlock(st);
  if (!found)
    tl__heapblocks_missed();
}

/* The number of adds and deletes so far, read without the locks: a scan
 * compares it before and after to tell whether the heap changed. */
uint64_t tl__heapblocks_changes(void)
{
  uint64_t n = 0;
  for (unsigned i = 0; i < STRIPES; i++)
    n += __atomic_load_n(&H.st[i].changes, __ATOMIC_RELAXED);
  return n;
}

/* The registry's own tables, which the leak scan must not read as the
 * program's memory: each slot names a block. */
void tl__heapblocks_tables(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
  for (unsigned i = 0; i < STRIPES; i++) {
    struct stripe *st = &H.st[i];
    if (tl__lock(&st->lock) != 0)
      continue;
    if (st->s != NULL)
      fn((uintptr_t)st->s, (uintptr_t)(st->s + st->cap), arg);
    tl__unlock(&st->lock);
  }
}

/* ------------------------------------------------------------------------
 * The snapshot
 * ------------------------------------------------------------------------ */

/* Least significant digit first, 16 bits at a time, through tmp; as many
 * passes as the highest address needs. No qsort: glibc's may allocate. */
static struct tl__heapblock *radix_sort(struct tl__heapblock *a, struct tl__heapblock *tmp, size_t n)
{
  uintptr_t max = 0;
  for (size_t i = 0; i < n; i++)
    if (a[i].addr > max)
      max = a[i].addr;
  static size_t count[1u << 16];           /* guarded by the writer's lock: one report at a time */
  for (unsigned shift = 0; shift < 64 && (max >> shift) != 0; shift += 16) {
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++)
      count[(a[i].addr >> shift) & 0xffff]++;
    size_t sum = 0;
    for (size_t d = 0; d < (1u << 16); d++) {
      size_t c = count[d];
      count[d] = sum;
      sum += c;
    }
    for (size_t i = 0; i < n; i++)
      tmp[count[(a[i].addr >> shift) & 0xffff]++] = a[i];
    struct tl__heapblock *t = a;
    a = tmp;
    tmp = t;
  }
  return a;
}

/* Every stripe is locked while the blocks are counted and copied, so that
 * the copy is of one moment: a block that a thread frees meanwhile waits
 * for the copy. Nothing here allocates, and the caller must not either
 * while it runs. */
int tl__heapblocks_snapshot(struct tl__heapsnap *s)
{
  memset(s, 0, sizeof *s);
  unsigned locked = 0;
  for (; locked < STRIPES; locked++)
    if (tl__lock(&H.st[locked].lock) != 0)
      break;
  int err = 0;
  if (locked < STRIPES) {
    err = EDEADLK;
  } else {
    size_t n = 0;
    for (unsigned i = 0; i < STRIPES; i++)
      n += H.st[i].live;
    /* Twice: the sort's second array follows the first. */
    size_t bytes = ((2 * (n + 1) * sizeof(struct tl__heapblock)) + 4095) & ~(size_t)4095;
    struct tl__heapblock *b = map(bytes);
    if (b == NULL) {
      err = ENOMEM;
    } else {
      size_t k = 0;
      for (unsigned i = 0; i < STRIPES; i++) {
        const struct stripe *st = &H.st[i];
        for (size_t j = 0; j < st->cap; j++)
          if (st->s[j].addr > TOMB)
            b[k++] = (struct tl__heapblock){st->s[j].addr, st->s[j].size};
      }
      s->blocks = b;
      s->n = k;
      s->mapped = bytes;
    }
  }
  for (unsigned i = 0; i < locked; i++)
    tl__unlock(&H.st[i].lock);
  if (err != 0)
    return err;
  struct tl__heapblock *sorted = radix_sort(s->blocks, s->blocks + s->n + 1, s->n);
  if (sorted != s->blocks)
    memcpy(s->blocks, sorted, s->n * sizeof *sorted);
  s->unsure = tl__heapblocks_state() != TL__HEAP_COMPLETE;
  return 0;
}

void tl__heapblocks_snapshot_free(struct tl__heapsnap *s)
{
  if (s->blocks != NULL)
    unmap(s->blocks, s->mapped);
  memset(s, 0, sizeof *s);
}

/* fork: every stripe is taken before, so that the child's tables are
 * whole; in the child, the threads that could hold them are gone. */
void tl__heapblocks_atfork(int phase)
{
  for (unsigned i = 0; i < STRIPES; i++)
    tl__lock_atfork(&H.st[i].lock, phase);
}
