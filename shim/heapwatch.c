/* The interposed allocation functions: where the program gives memory
 * back, so that the tasks whose stacks it held end (task/release.c), and, while
 * leak reports are asked for, where every heap block begins and ends
 * (heapblocks.c), for the report's reachability scan.
 *
 * Each wrapper calls the next definition after ours (heapreal.c), so an
 * allocator that the program brings, or a sanitizer's, is the one that
 * serves it. The common case costs a load and a branch or two before the
 * tail call:
 * - free looks up the page its block starts in, in the stack-page filter
 *   (stacktree.h), and asks for the block's size and the stack-range tree
 *   only when a stack may start there;
 * - malloc and the others test whether blocks are followed; while they
 *   are not, the program's calls do not even come here (heapbind.c binds
 *   them straight to the real functions).
 * munmap and mremap are system calls, which cost far more than the tree's
 * look-up: they always look.
 *
 * Memory is given back after its tasks have ended, so that a destructor
 * may still read a value that lives on the stack: except for realloc and
 * mremap, which tell only once done whether the block moved.
 *
 * Not seen: memory that glibc itself unmaps (a large block's free, inside
 * libc), and, unless leak reports are on, a stack that starts more than a
 * page into the block holding it when that block is freed (the filter does
 * not look so far; the task then stays suspended, as before).
 */
#include "internal.h"
#include "heapreal.h"
#include "heapblocks.h"
#include "task/stacktree.h"
#include "task/release.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default"))) TL__HEAP_FN

/* Blocks followed for the scan: after an allocation, before a free. */
TL__HEAP_FN static inline void *added(void *p, size_t size)
{
  if (TL__UNLIKELY(tl__heap_tracking) && p != NULL)
    tl__heapblocks_add(p, size);
  return p;
}

/* A block asked for while this thread looks the real functions up. */
TL__HEAP_FN static __attribute__((noinline)) void *boot(size_t size, size_t align)
{
  void *p = tl__heap_boot_alloc(size, align);
  if (p == NULL)
    errno = ENOMEM;
  return p;
}

EXPORT void *malloc(size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return boot(size, 16);
  if (TL__LIKELY(!tl__heap_tracking))
    return tl__heap_real.malloc_fn(size);
  return added(tl__heap_real.malloc_fn(size), size);
}

EXPORT void *calloc(size_t n, size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0)) {
    if (size != 0 && n > SIZE_MAX / size) {
      errno = ENOMEM;
      return NULL;
    }
    return boot(n * size, 16);             /* the arena is zeroed (.bss), and never reused */
  }
  if (TL__LIKELY(!tl__heap_tracking))
    return tl__heap_real.calloc_fn(n, size);
  return added(tl__heap_real.calloc_fn(n, size), n * size);
}

/* The usable size of a block of the real allocator's, 0 when it cannot
 * tell. */
TL__HEAP_FN static size_t block_size(void *p)
{
  return p != NULL && tl__heap_real.usable_size_fn != NULL ? tl__heap_real.usable_size_fn(p) : 0;
}

/* The part of free that is not the common case: the first calls, before
 * the real free is known; a block the lookup's arena gave (kept); one that
 * may hold a task's stack; one followed. */
TL__HEAP_FN static __attribute__((noinline)) void free_slow(void *p);

/* Where free's common case goes: here, until the real free is known and
 * when blocks are followed; else the real free itself, so that the common
 * case is a byte's test and one jump. */
static void (*free_next)(void *) = free_slow;

TL__HEAP_FN static void free_slow(void *p)
{
  if (p == NULL || tl__heap_lookup() != 0 || tl__heap_boot_owns(p))
    return;
  if (!tl__heap_tracking && __atomic_load_n(&free_next, __ATOMIC_RELAXED) == free_slow)
    __atomic_store_n(&free_next, tl__heap_real.free_fn, __ATOMIC_RELAXED);
  uintptr_t a = (uintptr_t)p;
  int hit = tl__stack_page_hit(a);
  /* While blocks are followed every free comes here anyway: the whole
   * block is looked through, so that stacks further into it than the
   * filter's page (a pool that carves many stacks from one block) are seen
   * too. */
  if (hit || tl__heap_tracking) {
    size_t size = block_size(p);
    if (hit || tl__stack_pages_hit(a, a + size))
      tl__release_range(a, a + size, TL__RELEASE_FREE);
  }
  if (tl__heap_tracking)
    tl__heapblocks_del(p);
  tl__heap_real.free_fn(p);
}

EXPORT void free(void *p)
{
  if (TL__LIKELY(!tl__stack_page_hit((uintptr_t)p))) {
    __atomic_load_n(&free_next, __ATOMIC_RELAXED)(p);
    return;
  }
  free_slow(p);
}

/* realloc's work, for reallocarray too. */
TL__HEAP_FN static void *resize(void *p, size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0) || (p != NULL && tl__heap_boot_owns(p))) {
    /* From the arena, or a block of it: a new block, with the old contents. */
    void *n = tl__heap_lookup() != 0 ? boot(size, 16) : malloc(size);
    if (n != NULL && p != NULL) {
      size_t old = tl__heap_boot_size(p);
      memcpy(n, p, old < size ? old : size);
    }
    return n;
  }
  uintptr_t a = (uintptr_t)p;
  int hit = p != NULL && tl__stack_page_hit(a);
  if (TL__LIKELY(!hit && !tl__heap_tracking))
    return tl__heap_real.realloc_fn(p, size);
  size_t old = block_size(p);
  if (tl__heap_tracking && p != NULL) {
    hit = hit || tl__stack_pages_hit(a, a + old);       /* the whole block, as in free_slow */
    tl__heapblocks_del(p);
  }
  void *n = tl__heap_real.realloc_fn(p, size);
  if (n == NULL && size != 0) {
    if (tl__heap_tracking && p != NULL)
      tl__heapblocks_add(p, old);          /* p is intact */
    return NULL;
  }
  /* Moved or shrunk: the stacks that the old block held, or the part cut
   * off, are gone (their contents were copied, but a stack's frames hold
   * addresses within it). */
  if (hit) {
    if (n != p)
      tl__release_range(a, a + old, TL__RELEASE_FREE);
    else if (size < old)
      tl__release_range(a + size, a + old, TL__RELEASE_FREE);
  }
  return added(n, size);
}

EXPORT void *realloc(void *p, size_t size)
{
  return resize(p, size);
}

/* glibc's reallocarray calls realloc through libc's PLT, which reaches
 * ours; an allocator that comes after us (jemalloc, a sanitizer's runtime)
 * resizes inside itself, unseen. So it is ours too. */
EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return NULL;
  }
  return resize(p, bytes);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0)) {
    void *p = boot(size, align);
    if (p == NULL)
      return ENOMEM;
    *out = p;
    return 0;
  }
  int rc = tl__heap_real.posix_memalign_fn(out, align, size);
  if (TL__UNLIKELY(tl__heap_tracking) && rc == 0)
    tl__heapblocks_add(*out, size);
  return rc;
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return boot(size, align);
  return added(tl__heap_real.aligned_alloc_fn(align, size), size);
}

EXPORT void *memalign(size_t align, size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return boot(size, align);
  return added(tl__heap_real.memalign_fn(align, size), size);
}

EXPORT void *valloc(size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return boot(size, 4096);
  return added(tl__heap_real.valloc_fn(size), size);
}

EXPORT void *pvalloc(size_t size)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return boot((size + 4095) & ~(size_t)4095, 4096);
  return added(tl__heap_real.pvalloc_fn(size), size);
}

EXPORT int munmap(void *addr, size_t len)
{
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return (int)syscall(SYS_munmap, addr, len);
  uintptr_t a = (uintptr_t)addr;
  if (len != 0 && a + len > a)
    tl__release_range(a, a + len, TL__RELEASE_UNMAP);
  return tl__heap_real.munmap_fn(addr, len);
}

EXPORT void *mremap(void *old, size_t old_size, size_t new_size, int flags, ...)
{
  void *fixed = NULL;
  if (flags & MREMAP_FIXED) {
    va_list ap;
    va_start(ap, flags);
    fixed = va_arg(ap, void *);
    va_end(ap);
  }
  if (TL__UNLIKELY(tl__heap_lookup() != 0))
    return (void *)syscall(SYS_mremap, old, old_size, new_size, flags, fixed);
  void *n = tl__heap_real.mremap_fn(old, old_size, new_size, flags, fixed);
  if (n == MAP_FAILED)
    return n;
  uintptr_t a = (uintptr_t)old;
  if (n != old)
    tl__release_range(a, a + old_size, TL__RELEASE_UNMAP);
  else if (new_size < old_size)
    tl__release_range(a + new_size, a + old_size, TL__RELEASE_UNMAP);
  return n;
}
