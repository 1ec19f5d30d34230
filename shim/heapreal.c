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
#include "heapblocks.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

struct tl__heap_real tl__heap_real;
int tl__heap_tracking;
struct tl__heap_own tl__heap_own;

/* The arena for the lookup's own allocations: a few small blocks in
 * practice (one dlerror buffer); each has its size in the word before it,
 * for realloc. */
#define BOOT_SIZE (64u * 1024)
static struct {
  _Atomic int state;                       /* 0 not looked up, 1 looking up, 2 done */
  _Atomic long looker;                     /* the thread looking up */
  _Atomic size_t used;
  _Alignas(64) char arena[BOOT_SIZE];
} lookup;

TL__HEAP_FN void *tl__heap_boot_alloc(size_t size, size_t align)
{
  if (align < 16)
    align = 16;
  if (size > BOOT_SIZE || (align & (align - 1)) != 0)
    return NULL;
  size_t used = atomic_load_explicit(&lookup.used, memory_order_relaxed), at;
  do {
    at = (used + 16 + align - 1) & ~(align - 1);
    if (at + size > BOOT_SIZE)
      return NULL;
  } while (!atomic_compare_exchange_weak_explicit(&lookup.used, &used, at + size, memory_order_relaxed,
                                                  memory_order_relaxed));
  memcpy(lookup.arena + at - sizeof(size_t), &size, sizeof size);
  return lookup.arena + at;
}

TL__HEAP_FN int tl__heap_boot_owns(const void *p)
{
  return (const char *)p >= lookup.arena && (const char *)p < lookup.arena + BOOT_SIZE;
}

TL__HEAP_FN size_t tl__heap_boot_size(const void *p)
{
  size_t size;
  memcpy(&size, (const char *)p - sizeof(size_t), sizeof size);
  return size;
}

TL__HEAP_FN static void *next(const char *name)
{
  return dlsym(RTLD_NEXT, name);
}

/* The functions that the library's own blocks come from and go back to
 * (alloc.c): the first definitions in the process, as a call by name
 * would reach, so that an interposer that comes before us sees them (a
 * sanitizer's runtime, which a program built with it loads first and which
 * never calls ours; the fault-injection suite's counter of our
 * allocations; an allocator preloaded before us, which forwards to ours).
 * When the first is ours, the block goes back to the real free, without
 * our wrapper's look for stacks: the library's blocks never hold one, and
 * its free may be called with a lock held that a release would wait for. */
TL__HEAP_FN static void *first(const void *base, const char *name, void *real)
{
  void *p = dlsym(RTLD_DEFAULT, name);
  Dl_info info;
  if (p == NULL || (real != NULL && dladdr(p, &info) && info.dli_fbase == base))
    return real;
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

/* Back to the first free of the process, or, when that is ours, to the
 * real one without our wrapper's look for stacks (the block still leaves
 * the followed ones). */
void tl__heap_put(void *p)
{
  if (p == NULL || tl__heap_lookup() != 0 || tl__heap_boot_owns(p))
    return;
  if (tl__heap_own.put != tl__heap_real.free_fn) {
    tl__heap_own.put(p);                   /* another's, which calls ours if it forwards */
    return;
  }
  if (tl__heap_tracking && tl__heap_own.followed)
    tl__heapblocks_del(p);                 /* it came from our malloc, which followed it */
  tl__heap_real.free_fn(p);
}

/* Pages of the library's own go back with the system call itself: through
 * munmap by its name they would reach our wrapper (heapwatch.c), which
 * looks for the tasks whose stacks they held, under the registry's lock. */
int tl__unmap(void *p, size_t size)
{
  return (int)syscall(SYS_munmap, p, size);
}

TL__HEAP_FN int tl__heap_lookup_slow(void)
{
  long self = (long)syscall(SYS_gettid);
  int expected = 0;
  if (atomic_compare_exchange_strong_explicit(&lookup.state, &expected, 1, memory_order_acquire, memory_order_acquire)) {
    atomic_store_explicit(&lookup.looker, self, memory_order_relaxed);
    struct tl__heap_real r;
    Dl_info self;
    const void *base = dladdr((void *)tl__heap_lookup_slow, &self) ? self.dli_fbase : NULL;
    *(void **)&r.malloc_fn = next("malloc");
    *(void **)&r.calloc_fn = next("calloc");
    *(void **)&r.realloc_fn = next("realloc");
    *(void **)&r.free_fn = next("free");
    *(void **)&r.posix_memalign_fn = next("posix_memalign");
    *(void **)&r.aligned_alloc_fn = next("aligned_alloc");
    *(void **)&r.memalign_fn = next("memalign");
    *(void **)&r.valloc_fn = next("valloc");
    *(void **)&r.pvalloc_fn = next("pvalloc");
    *(void **)&r.usable_size_fn = next("malloc_usable_size");
    *(void **)&r.munmap_fn = next("munmap");
    *(void **)&r.mremap_fn = next("mremap");
    *(void **)&tl__heap_own.get = first(base, "malloc", NULL);
    *(void **)&tl__heap_own.get_zeroed = first(base, "calloc", NULL);
    *(void **)&tl__heap_own.resize = first(base, "realloc", NULL);
    *(void **)&tl__heap_own.put = first(base, "free", (void *)r.free_fn);
    Dl_info own;
    tl__heap_own.followed = tl__heap_own.get != NULL && dladdr((void *)tl__heap_own.get, &own) && own.dli_fbase == base;
    tl__heap_tracking = leaks_asked();
    /* free last: it is what tl__heap_lookup looks at. */
    void (*free_fn)(void *) = r.free_fn;
    r.free_fn = NULL;
    tl__heap_real = r;
    __atomic_store_n(&tl__heap_real.free_fn, free_fn, __ATOMIC_RELEASE);
    atomic_store_explicit(&lookup.state, 2, memory_order_release);
    return 0;
  }
  if (expected == 2)
    return 0;
  /* The lookup is under way: on this thread (dlsym allocating), the
   * caller serves itself from the arena; on another, it waits. */
  if (atomic_load_explicit(&lookup.looker, memory_order_relaxed) == self)
    return -1;
  while (atomic_load_explicit(&lookup.state, memory_order_acquire) != 2)
    tl__cpu_relax();
  return 0;
}
