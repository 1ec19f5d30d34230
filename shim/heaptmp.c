/* TEMPORARY, until heapwatch.c (the allocation functions the library
 * interposes to see stacks released) lands: the smallest interposer that
 * feeds the heap registry (heapblocks.c) while TASKLOCAL_LEAKS is on, so
 * that the leak scan can be built and tested. It is replaced, not merged,
 * by heapwatch.c. glibc's own entry points (__libc_malloc and the others)
 * are called directly, so nothing is looked up with dlsym; under a
 * sanitizer, whose allocator those would bypass, there is no interposer.
 */
#include "internal.h"
#include "heapblocks.h"

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);
extern char **environ;

/* 0: not known yet; 1: on; 2: off. */
static _Atomic int watch;
static _Atomic int early;                  /* blocks made before it was known */

static int watching(void)
{
  int w = atomic_load_explicit(&watch, memory_order_relaxed);
  if (TL__LIKELY(w != 0))
    return w == 1;
  if (environ == NULL) {
    atomic_store_explicit(&early, 1, memory_order_relaxed);
    return 0;
  }
  const char *v = getenv("TASKLOCAL_LEAKS");
  int on = v != NULL && *v != '\0' && strcmp(v, "0") != 0 && strcasecmp(v, "no") != 0 && strcasecmp(v, "off") != 0 &&
           strcasecmp(v, "false") != 0;
  atomic_store_explicit(&watch, on ? 1 : 2, memory_order_relaxed);
  if (on && atomic_load_explicit(&early, memory_order_relaxed))
    tl__heapblocks_missed();
  return on;
}

static void *added(void *p, size_t size)
{
  if (p != NULL && watching())
    tl__heapblocks_add(p, size);
  return p;
}

__attribute__((visibility("default"))) void *malloc(size_t size)
{
  return added(__libc_malloc(size), size);
}

__attribute__((visibility("default"))) void *calloc(size_t n, size_t size)
{
  return added(__libc_calloc(n, size), n * size);
}

__attribute__((visibility("default"))) void free(void *p)
{
  if (p != NULL && watching())
    tl__heapblocks_del(p);
  __libc_free(p);
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t size)
{
  int w = watching();
  if (p != NULL && w)
    tl__heapblocks_del(p);
  void *q = __libc_realloc(p, size);
  if (w) {
    if (q != NULL)
      tl__heapblocks_add(q, size);
    else if (p != NULL && size != 0)
      tl__heapblocks_add(p, malloc_usable_size(p));
  }
  return q;
}

__attribute__((visibility("default"))) void *memalign(size_t align, size_t size)
{
  return added(__libc_memalign(align, size), size);
}

__attribute__((visibility("default"))) void *aligned_alloc(size_t align, size_t size)
{
  return added(__libc_memalign(align, size), size);
}

__attribute__((visibility("default"))) int posix_memalign(void **out, size_t align, size_t size)
{
  if (align < sizeof(void *) || (align & (align - 1)) != 0)
    return EINVAL;
  void *p = added(__libc_memalign(align, size), size);
  if (p == NULL)
    return ENOMEM;
  *out = p;
  return 0;
}

__attribute__((visibility("default"))) void *valloc(size_t size)
{
  return added(__libc_valloc(size), size);
}

__attribute__((visibility("default"))) void *pvalloc(size_t size)
{
  return added(__libc_pvalloc(size), size);
}

#endif
