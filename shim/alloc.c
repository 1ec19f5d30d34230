/* Every allocation of the library goes through here.
 *
 * If the shim cannot allocate, the affected task goes untracked or the API
 * call returns ENOMEM; nothing aborts (SPEC 2.5). To test those paths, the
 * environment variable TASKLOCAL_TEST_FAIL_ALLOC=N makes the Nth allocation
 * (counting from 1, after the variable is first read) fail, and
 * TASKLOCAL_TEST_FAIL_ALLOC=N+ makes it and every later one fail. */
#include "internal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Small blocks: SMALL_CLASSES power-of-two sizes from SMALL_MIN bytes,
 * carved from mmap'd runs of SMALL_RUN bytes with nothing added to them, so
 * that a 64-byte value table costs 64 bytes (malloc would add 16). A block
 * is aligned to its size. Freed blocks go to their size's free list,
 * linked through their first word, and are reused by any thread; runs
 * never go back to the system, like the task records, so a report that
 * reads a table freed meanwhile still reads mapped memory. A run is used
 * from its start as needed, so the pages not yet handed out are never
 * touched and cost nothing. */
#define SMALL_MIN 64u
#define SMALL_CLASSES 2
#define SMALL_RUN (64u * 1024)

struct small {
  struct tl__lock lock;
  void *free;                              /* freed blocks */
  char *next, *end;                        /* the part of the newest run not handed out yet */
};

static struct {
  void (*lsan_root)(const void *p, size_t size); /* __lsan_register_root_region, when present */
  void (*count_hook)(void);                /* tlcount_alloc of tests/faults/alloccount.c, when present */
  _Atomic long count;                      /* allocations so far */
  long fail_at;                            /* 0: never */
  int fail_after;                          /* fail every allocation from fail_at on */
  _Atomic int read;
  struct small small[SMALL_CLASSES];
} A;

static void read_env(void)
{
  /* getenv is fine here: this runs at our first allocation, never in a
   * signal handler before the constructor has run once. */
  const char *v = getenv("TASKLOCAL_TEST_FAIL_ALLOC");
  if (v != NULL) {
    char *end;
    long n = strtol(v, &end, 10);
    if (n > 0) {
      A.fail_at = n;
      A.fail_after = *end == '+';
    }
  }
  atomic_store_explicit(&A.read, 1, memory_order_release);
}

static int should_fail(void)
{
  if (TL__UNLIKELY(!atomic_load_explicit(&A.read, memory_order_acquire)))
    read_env();
  if (TL__LIKELY(A.fail_at == 0))
    return 0;
  long n = atomic_fetch_add_explicit(&A.count, 1, memory_order_relaxed) + 1;
  return n == A.fail_at || (A.fail_after && n > A.fail_at);
}

void *tl__alloc(size_t size)
{
  return should_fail() ? NULL : malloc(size);
}

void *tl__calloc(size_t n, size_t size)
{
  return should_fail() ? NULL : calloc(n, size);
}

/* realloc, failing like the others under TASKLOCAL_TEST_FAIL_ALLOC; on
 * failure p is untouched. */
void *tl__realloc(void *p, size_t size)
{
  return should_fail() ? NULL : realloc(p, size);
}

void tl__free(void *p)
{
  free(p);
}

/* Task records and thread states live in mmap'd pages, which
 * LeakSanitizer does not scan: the value tables they point to would look
 * leaked. When LSan is in the process, each page range is registered as a
 * root region. Looked up once, at load, with the fault-injection suite's
 * counter (see tl__small_alloc). */
void tl__alloc_setup(void)
{
  A.lsan_root = (void (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "__lsan_register_root_region");
  A.count_hook = (void (*)(void))dlsym(RTLD_DEFAULT, "tlcount_alloc");
}

static void *map_pages(size_t size)
{
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (A.lsan_root != NULL)
    A.lsan_root(p, size);
  return p;
}

void *tl__pages(size_t size)
{
  return should_fail() ? NULL : map_pages(size);
}

static struct small *small_class(size_t size)
{
  unsigned c = 0;
  while ((SMALL_MIN << c) < size)
    c++;
  return c < SMALL_CLASSES && (SMALL_MIN << c) == size ? &A.small[c] : NULL;
}

/* One allocation for the fault-injection counter as for the failures: a
 * block that needs a new run makes one mmap call, which the counter of
 * tests/faults/alloccount.c sees; one from a free list or the current run
 * calls nothing it could see, so it is announced through the counter's
 * hook instead. A thread that already holds the class's lock (a signal
 * handler that interrupted it) gets NULL, as on ENOMEM. */
void *tl__small_alloc(size_t size)
{
  struct small *s = small_class(size);
  if (s == NULL || should_fail() || tl__lock(&s->lock) != 0)
    return NULL;
  void *p = s->free;
  int mapped = 0;
  if (p != NULL) {
    s->free = *(void **)p;
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
  if (!mapped && A.count_hook != NULL)
    A.count_hook();
  return p;
}

/* A thread that already holds the lock (a signal handler that interrupted
 * it) cannot give the block back: it stays out of use. */
void tl__small_free(void *p, size_t size)
{
  struct small *s = small_class(size);
  if (p == NULL || s == NULL || tl__lock(&s->lock) != 0)
    return;
  *(void **)p = s->free;
  s->free = p;
  tl__unlock(&s->lock);
}

/* fork: taken last and released first, since nothing is locked while a
 * small block is being allocated or freed. */
void tl__alloc_atfork(int phase)
{
  for (int c = 0; c < SMALL_CLASSES; c++) {
    if (phase < 0)
      tl__lock(&A.small[c].lock);
    else if (phase == 0)
      tl__unlock(&A.small[c].lock);
    else
      tl__lock_reset(&A.small[c].lock);
  }
}
