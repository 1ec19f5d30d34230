/* Every allocation of the library goes through here.
 *
 * If the shim cannot allocate, the affected task goes untracked or the API
 * call returns ENOMEM; nothing aborts (doc/reliability.md). To test those paths, the
 * environment variable TASKLOCAL_TEST_FAIL_ALLOC=N makes the Nth allocation
 * (counting from 1, after the variable is first read) fail, and
 * TASKLOCAL_TEST_FAIL_ALLOC=N+ makes it and every later one fail. */
#include "internal.h"
#include "alloc.h"
#include "lock.h"
#include "heapreal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Small blocks: TL__SMALL_CLASSES power-of-two sizes from SMALL_MIN bytes,
 * carved from mmap'd runs of SMALL_RUN bytes with nothing added to them, so
 * that a 64-byte value table costs 64 bytes (malloc would add 16). A block
 * is aligned to its size. Freed blocks go to their size's free list,
 * linked through their first word, and are reused by any thread; runs
 * never go back to the system, like the task records, so a report that
 * reads a table freed meanwhile still reads mapped memory. A run is used
 * from its start as needed, so the pages not yet handed out are never
 * touched and cost nothing.
 *
 * In front of the shared lists, each thread keeps up to CACHE_MAX freed
 * blocks of each size (struct tl__small_cache): a task life allocates one
 * table and frees it, and without the cache that is two atomic exchanges
 * on a line that every thread writes. */
#define SMALL_MIN 64u
#define SMALL_RUN (64u * 1024)
#define CACHE_MAX 16

struct small {
  struct tl__lock lock;
  void *freed;                             /* freed blocks */
  char *next, *end;                        /* the part of the newest run not handed out yet */
};

static struct {
  void (*lsan_root)(const void *p, size_t size); /* __lsan_register_root_region, when present */
  void (*count_hook)(void);                /* tlcount_alloc of tests/faults/alloccount.c, when present */
  _Atomic long count;                      /* allocations so far */
  long fail_at;                            /* 0: never */
  int fail_after;                          /* fail every allocation from fail_at on */
  _Atomic int quiet;                       /* the environment was read and asks for no failure */
  _Atomic int read;
  struct small small[TL__SMALL_CLASSES];
} allocator;

static void read_env(void)
{
  /* getenv is fine here: this runs at our first allocation, never in a
   * signal handler before the constructor has run once. */
  const char *v = getenv("TASKLOCAL_TEST_FAIL_ALLOC");
  if (v != NULL) {
    char *end;
    long n = strtol(v, &end, 10);
    if (n > 0) {
      allocator.fail_at = n;
      allocator.fail_after = *end == '+';
    }
  }
  atomic_store_explicit(&allocator.read, 1, memory_order_release);
  atomic_store_explicit(&allocator.quiet, allocator.fail_at == 0, memory_order_release);
}

static __attribute__((noinline)) int should_fail_slow(void)
{
  if (!atomic_load_explicit(&allocator.read, memory_order_acquire))
    read_env();
  if (allocator.fail_at == 0)
    return 0;
  long n = atomic_fetch_add_explicit(&allocator.count, 1, memory_order_relaxed) + 1;
  return n == allocator.fail_at || (allocator.fail_after && n > allocator.fail_at);
}

/* One load in the common case, where no failure was asked for. */
static inline int should_fail(void)
{
  if (TL__LIKELY(atomic_load_explicit(&allocator.quiet, memory_order_relaxed)))
    return 0;
  return should_fail_slow();
}

/* The library's blocks come from the process's first malloc, calloc and
 * realloc, as calls by name would (heapreal.c, tl__heap_own): ours, which
 * follows them for the leak scan, or an interposer's before us. */
void *tl__alloc(size_t size)
{
  return should_fail() || tl__heap_lookup() != 0 ? NULL : tl__heap_own.get(size);
}

void *tl__calloc(size_t n, size_t size)
{
  return should_fail() || tl__heap_lookup() != 0 ? NULL : tl__heap_own.get_zeroed(n, size);
}

/* realloc, failing like the others under TASKLOCAL_TEST_FAIL_ALLOC; on
 * failure p is untouched. */
void *tl__realloc(void *p, size_t size)
{
  return should_fail() || tl__heap_lookup() != 0 ? NULL : tl__heap_own.resize(p, size);
}

void tl__free(void *p)
{
  tl__heap_put(p);
}

/* Task records and thread states live in mmap'd pages, which
 * LeakSanitizer does not scan: the value tables they point to would look
 * leaked. When LSan is in the process, each page range is registered as a
 * root region. Looked up once, at load, with the fault-injection suite's
 * counter (see tl__small_alloc). */
void tl__alloc_setup(void)
{
  allocator.lsan_root = (void (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "__lsan_register_root_region");
  allocator.count_hook = (void (*)(void))dlsym(RTLD_DEFAULT, "tlcount_alloc");
}

/* The pages mapped here, which are never given back, are listed for the
 * leak scan (reach.c): they hold the library's records, not the program's
 * data, and a task's record names its stack and context, which must not
 * count as references. The list is kept in pages of its own, linked; a
 * signal handler that interrupts its own thread while it adds to the list
 * leaves its pages out, and the scan then reads them as the program's:
 * tasks are called parked rather than leaked, never the other way. */
struct own {
  struct own *next;
  uint32_t n;
  struct {
    uintptr_t lo, hi;
  } r[255];
};

static struct {
  struct tl__lock lock;
  struct own *head;
  size_t n;
} ownpages;

static void own_add(void *p, size_t size)
{
  if (tl__lock(&ownpages.lock) != 0)
    return;
  if (ownpages.head == NULL || ownpages.head->n == sizeof ownpages.head->r / sizeof ownpages.head->r[0]) {
    struct own *o = mmap(NULL, sizeof *o, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (o == MAP_FAILED) {
      tl__unlock(&ownpages.lock);
      return;
    }
    o->next = ownpages.head;
    o->n = 0;
    ownpages.head = o;
    ownpages.n++;
    o->r[o->n].lo = (uintptr_t)o;
    o->r[o->n++].hi = (uintptr_t)o + sizeof *o;
  }
  ownpages.head->r[ownpages.head->n].lo = (uintptr_t)p;
  ownpages.head->r[ownpages.head->n++].hi = (uintptr_t)p + size;
  ownpages.n++;
  tl__unlock(&ownpages.lock);
}

size_t tl__own_pages_count(void)
{
  return __atomic_load_n(&ownpages.n, __ATOMIC_RELAXED);
}

void tl__own_pages(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
  if (tl__lock(&ownpages.lock) != 0)
    return;
  for (const struct own *o = ownpages.head; o != NULL; o = o->next)
    for (uint32_t i = 0; i < o->n; i++)
      fn(o->r[i].lo, o->r[i].hi, arg);
  tl__unlock(&ownpages.lock);
}

static void *map_pages(size_t size)
{
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (allocator.lsan_root != NULL)
    allocator.lsan_root(p, size);
  own_add(p, size);
  return p;
}

void *tl__pages(size_t size)
{
  return should_fail() ? NULL : map_pages(size);
}

/* The memory of one report (report.c): address space reserved for the
 * worst case, of which only the pages written become memory, given back
 * when the report is written. Not a root region for LeakSanitizer: it
 * holds copies of the values' pointers only while a report is made. */
void *tl__scratch(size_t size)
{
  if (should_fail())
    return NULL;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void tl__scratch_free(void *p, size_t size)
{
  munmap(p, size);
}

/* The size class of a block of size bytes, or -1 when no class has that
 * size exactly. */
static inline int small_class(size_t size)
{
  _Static_assert(TL__SMALL_CLASSES == 2, "small_class knows two sizes");
  return size == SMALL_MIN ? 0 : size == 2 * SMALL_MIN ? 1 : -1;
}

/* The calling thread's cache, if it may be used now: not when the thread
 * has no state (it may be making it), when its cache is closed (thread
 * exit), or when a signal handler interrupted this very code on the
 * thread, in which case the handler uses the shared lists. The caller sets
 * busy around its change, with signal fences only: just the thread and
 * its own handlers ever touch the cache. */
static inline struct tl__small_cache *cache_of_thread(void)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY || th->cache.busy))
    return NULL;
  return &th->cache;
}

/* From the shared list or run of class c. A thread that already holds the
 * class's lock (a signal handler that interrupted it) gets NULL, as on
 * ENOMEM. */
static __attribute__((noinline)) void *pool_alloc(int c)
{
  struct small *s = &allocator.small[c];
  size_t size = (size_t)SMALL_MIN << c;
  if (tl__lock(&s->lock) != 0)
    return NULL;
  void *p = s->freed;
  int mapped = 0;
  if (p != NULL) {
    s->freed = *(void **)p;
  } else {
    if (s->next == s->end) {
      char *run = map_pages(SMALL_RUN);
      if (run == NULL) {
        tl__unlock(&s->lock);
        return NULL;
      }
      s->next = run;
      s->end = run + SMALL_RUN;
      mapped = 1;
    }
    p = s->next;
    s->next += size;
  }
  tl__unlock(&s->lock);
  if (!mapped && allocator.count_hook != NULL)
    allocator.count_hook();
  return p;
}

/* A thread that already holds the lock (a signal handler that interrupted
 * it) cannot give the block back: it stays out of use. */
static __attribute__((noinline)) void pool_free(int c, void *p)
{
  struct small *s = &allocator.small[c];
  if (tl__lock(&s->lock) != 0)
    return;
  *(void **)p = s->freed;
  s->freed = p;
  tl__unlock(&s->lock);
}

/* One allocation for the fault-injection counter as for the failures,
 * wherever the block comes from: a block that needs a new run makes one
 * mmap call, which the counter of tests/faults/alloccount.c sees; one from
 * the thread's cache, a free list or the current run calls nothing it
 * could see, so it is announced through the counter's hook instead. */
void *tl__small_alloc(size_t size)
{
  int c = small_class(size);
  if (c < 0 || should_fail())
    return NULL;
  struct tl__small_cache *sc = cache_of_thread();
  if (TL__LIKELY(sc != NULL)) {
    sc->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    void *p = sc->head[c];
    if (TL__LIKELY(p != NULL)) {
      sc->head[c] = *(void **)p;
      sc->n[c]--;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    sc->busy = 0;
    if (TL__LIKELY(p != NULL)) {
      if (TL__UNLIKELY(allocator.count_hook != NULL))
        allocator.count_hook();
      return p;
    }
  }
  return pool_alloc(c);
}

void tl__small_free(void *p, size_t size)
{
  int c = small_class(size);
  if (p == NULL || c < 0)
    return;
  struct tl__small_cache *sc = cache_of_thread();
  if (TL__LIKELY(sc != NULL)) {
    sc->busy = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    int kept = sc->n[c] < CACHE_MAX;
    if (TL__LIKELY(kept)) {
      *(void **)p = sc->head[c];
      sc->head[c] = p;
      sc->n[c]++;
    }
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    sc->busy = 0;
    if (TL__LIKELY(kept))
      return;
  }
  pool_free(c, p);
}

/* Called at th's exit on the thread itself, or in a forked child for the
 * threads that did not survive the fork: the kept blocks go back to the
 * shared lists, and the cache stays closed (busy) until the state is made
 * again for a new thread, which clears it. A cache caught busy in a child
 * (its thread was changing it when another forked) may be half changed: its
 * blocks stay out of use, at most CACHE_MAX of each size. */
void tl__small_cache_flush(struct tl__thread *th)
{
  struct tl__small_cache *sc = &th->cache;
  if (sc->busy)
    return;
  sc->busy = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  for (int c = 0; c < TL__SMALL_CLASSES; c++) {
    void *p;
    while ((p = sc->head[c]) != NULL) {
      sc->head[c] = *(void **)p;
      pool_free(c, p);
    }
    sc->n[c] = 0;
  }
}

/* fork: taken last and released first, since nothing is locked while a
 * small block is being allocated or freed. The list of pages is taken
 * after the pools, as a pool that maps a run does. */
void tl__alloc_atfork(int phase)
{
  for (int c = 0; c < TL__SMALL_CLASSES; c++)
    tl__lock_atfork(&allocator.small[c].lock, phase);
  tl__lock_atfork(&ownpages.lock, phase);
}
