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

static struct {
  void (*lsan_root)(const void *p, size_t size); /* __lsan_register_root_region, when present */
  _Atomic long count;                      /* allocations so far */
  long fail_at;                            /* 0: never */
  int fail_after;                          /* fail every allocation from fail_at on */
  _Atomic int read;
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
 * root region. Looked up once, at load. */
void tl__alloc_setup(void)
{
  A.lsan_root = (void (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "__lsan_register_root_region");
}

void *tl__pages(size_t size)
{
  if (should_fail())
    return NULL;
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return NULL;
  if (A.lsan_root != NULL)
    A.lsan_root(p, size);
  return p;
}
