/* The real allocation functions behind the ones heapwatch.c interposes,
 * found without recursing into ourselves.
 *
 * They are found with dlsym(RTLD_NEXT, ...), as real.c finds the ucontext
 * functions, so that an allocator the program brings (jemalloc linked in,
 * or preloaded after us) or a sanitizer's interceptors still get every
 * call. But dlsym may itself allocate (glibc's dlerror buffer, see
 * dlfcn/dlerror.c), and the allocation functions are called long before
 * our constructor runs: by the dynamic linker's set-up of other
 * libraries, by their constructors, by libc's own start. So the lookup is
 * made on the first call of any of them, on whatever thread makes it; an
 * allocation that the lookup itself asks for is served from a small static
 * arena, and freeing such a block does nothing. Other threads that call
 * meanwhile wait for the lookup to end.
 *
 * Whether the heap's blocks are followed for the leak report's scan
 * (heapblocks.c) is decided on the same first call, from the environment,
 * so that the blocks allocated before our constructor are followed too:
 * a block the scan did not know of could hide a pointer to a task.
 */
#include "internal.h"
#include "heapreal.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

struct tl__heap_real tl__heap_real;
int tl__heap_tracking;
void (*tl__heap_free_fast)(void *);

/* The arena for the lookup's own allocations: a few small blocks in
 * practice (one dlerror buffer); each has its size in the word before it,
 * for realloc. */
#define BOOT_SIZE (64u * 1024)
static struct {
  _Atomic int state;                       /* 0 not looked up, 1 looking up, 2 done */
  _Atomic long looker;                     /* the thread looking up */
  _Atomic size_t used;
  _Alignas(64) char arena[BOOT_SIZE];
} B;

TL__HEAP_FN void *tl__heap_boot_alloc(size_t size, size_t align)
{
  if (align < 16)
    align = 16;
  if (size > BOOT_SIZE || (align & (align - 1)) != 0)
    return NULL;
  size_t used = atomic_load_explicit(&B.used, memory_order_relaxed), at;
  do {
    at = (used + 16 + align - 1) & ~(align - 1);
    if (at + size > BOOT_SIZE)
      return NULL;
  } while (!atomic_compare_exchange_weak_explicit(&B.used, &used, at + size, memory_order_relaxed,
                                                  memory_order_relaxed));
  memcpy(B.arena + at - sizeof(size_t), &size, sizeof size);
  return B.arena + at;
}

TL__HEAP_FN int tl__heap_boot_owns(const void *p)
{
  return (const char *)p >= B.arena && (const char *)p < B.arena + BOOT_SIZE;
}

TL__HEAP_FN size_t tl__heap_boot_size(const void *p)
{
  size_t size;
  memcpy(&size, (const char *)p - sizeof(size_t), sizeof size);
  return size;
}

/* The definition of name that serves the process: the first one in the
 * global lookup order, unless it is ours, and then the next one after
 * ours. The first one is not ours when an interposer comes before us (the
 * sanitizers' runtimes, which a program built with them loads first): the
 * program's calls go to it, never to us, and so must the library's own
 * frees of the blocks its mallocs got there. */
TL__HEAP_FN static void *next(const void *base, const char *name)
{
  void *p = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (p == NULL || (dladdr(p, &info) && info.dli_fbase == base))
    p = dlsym(RTLD_NEXT, name);
  return p;
}

/* TASKLOCAL_LEAKS, read as options.c reads it, without allocating: the
 * environment is set up before any library's code runs. Anything but
 * unset, empty, 0, no, off or false asks for leak reports, and with them
 * for the heap's blocks (options.c warns of a bad value later). */
TL__HEAP_FN static int leaks_asked(void)
{
  const char *v = getenv("TASKLOCAL_LEAKS");
  if (v == NULL || *v == '\0')
    return 0;
  static const char *const off[] = {"0", "no", "off", "false"};
  for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
    if (strcasecmp(v, off[i]) == 0)
      return 0;
  return 1;
}

TL__HEAP_FN int tl__heap_lookup_slow(void)
{
  long self = (long)syscall(SYS_gettid);
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&B.state, &expected, 1, memory_order_acquire, memory_order_acquire)) {
    atomic_store_explicit(&B.looker, self, memory_order_relaxed);
    struct tl__heap_real r;
    Dl_info self;
    const void *base = dladdr((void *)tl__heap_lookup_slow, &self) ? self.dli_fbase : NULL;
    *(void **)&r.malloc = next(base, "malloc");
    *(void **)&r.calloc = next(base, "calloc");
    *(void **)&r.realloc = next(base, "realloc");
    *(void **)&r.free = next(base, "free");
    *(void **)&r.posix_memalign = next(base, "posix_memalign");
    *(void **)&r.aligned_alloc = next(base, "aligned_alloc");
    *(void **)&r.memalign = next(base, "memalign");
    *(void **)&r.valloc = next(base, "valloc");
    *(void **)&r.pvalloc = next(base, "pvalloc");
    *(void **)&r.usable_size = next(base, "malloc_usable_size");
    *(void **)&r.munmap = next(base, "munmap");
    *(void **)&r.mremap = next(base, "mremap");
    tl__heap_tracking = leaks_asked();
    /* free last: it is what tl__heap_lookup looks at. */
    void (*free_fn)(void *) = r.free;
    r.free = NULL;
    tl__heap_real = r;
    __atomic_store_n(&tl__heap_real.free, free_fn, __ATOMIC_RELEASE);
    if (!tl__heap_tracking)
      __atomic_store_n(&tl__heap_free_fast, free_fn, __ATOMIC_RELEASE);
    atomic_store_explicit(&B.state, 2, memory_order_release);
    return 0;
  }
  if (expected == 2)
    return 0;
  /* The lookup is under way: on this thread (dlsym allocating), the
   * caller serves itself from the arena; on another, it waits. */
  if (atomic_load_explicit(&B.looker, memory_order_relaxed) == self)
    return -1;
  while (atomic_load_explicit(&B.state, memory_order_acquire) != 2)
    tl__cpu_relax();
  return 0;
}
