/* The interposed pthread_key_create and pthread_key_delete: with a
 * pthread-keys item in TASKLOCAL_TASK_LOCAL, the keys that code in the
 * objects it names makes are noted for pkeys.c, with their destructors
 * (and until the options are read, every key, to be judged then).
 * Otherwise each adds one flag test to glibc's function.
 */
#include "internal.h"
#include "pkeys.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>

static struct {
  int (*_Atomic create)(pthread_key_t *, void (*)(void *));
  int (*_Atomic remove)(pthread_key_t);
} keycalls;

/* The next definitions, found at the first call, so that another
 * interposer loaded after us (a sanitizer) keeps seeing the calls.
 * glibc's own alias of pthread_key_create is the fallback;
 * pthread_key_delete has none, and without the next definition a
 * deletion fails as that of an invalid key would. */
extern int __pthread_key_create(pthread_key_t *key, void (*destroy)(void *));

static int create(pthread_key_t *key, void (*destroy)(void *), const void *caller)
{
  int (*real)(pthread_key_t *, void (*)(void *)) = atomic_load_explicit(&keycalls.create, memory_order_relaxed);
  if (TL__UNLIKELY(real == NULL)) {
    real = (int (*)(pthread_key_t *, void (*)(void *)))dlsym(RTLD_NEXT, "pthread_key_create");
    if (real == NULL)
      real = __pthread_key_create;
    atomic_store_explicit(&keycalls.create, real, memory_order_relaxed);
  }
  int r = real(key, destroy);
  if (TL__UNLIKELY(tl__pkeys_watch) && r == 0)
    tl__pkeys_note(*key, destroy, caller);
  return r;
}

static int key_delete(pthread_key_t key)
{
  int (*real)(pthread_key_t) = atomic_load_explicit(&keycalls.remove, memory_order_relaxed);
  if (TL__UNLIKELY(real == NULL)) {
    real = (int (*)(pthread_key_t))dlsym(RTLD_NEXT, "pthread_key_delete");
    if (real == NULL)
      return EINVAL;
    atomic_store_explicit(&keycalls.remove, real, memory_order_relaxed);
  }
  if (TL__UNLIKELY(tl__pkeys_watch))
    tl__pkeys_forget(key);
  return real(key);
}

/* Programs linked against glibc 2.34 or later name the functions with
 * version GLIBC_2.34, older ones with the architecture's first version:
 * both are defined (shim/tasklocal.map, shim/arch/aarch64.map). */
#if defined(__x86_64__)
#define TL__GLIBC_BASE "GLIBC_2.2.5"
#else
#define TL__GLIBC_BASE "GLIBC_2.17"
#endif

/* gcc's attribute survives link-time optimization, which a .symver
 * directive in top-level assembly does not; clang knows only the latter
 * (the fuzz build, mk/fuzz.mk). */
#if defined(__clang__)
#define TL__VERSIONED(fn, name)                                                                                   \
  __asm__(".symver " #fn ", " name);                                                                            \
  __attribute__((visibility("default")))
#else
#define TL__VERSIONED(fn, name) __attribute__((visibility("default"), symver(name)))
#endif

TL__VERSIONED(tl__pkey_create, "pthread_key_create@@GLIBC_2.34")
int tl__pkey_create(pthread_key_t *key, void (*destroy)(void *))
{
  return create(key, destroy, __builtin_return_address(0));
}

TL__VERSIONED(tl__pkey_create_base, "pthread_key_create@" TL__GLIBC_BASE)
int tl__pkey_create_base(pthread_key_t *key, void (*destroy)(void *))
{
  return create(key, destroy, __builtin_return_address(0));
}

TL__VERSIONED(tl__pkey_delete, "pthread_key_delete@@GLIBC_2.34")
int tl__pkey_delete(pthread_key_t key)
{
  return key_delete(key);
}

TL__VERSIONED(tl__pkey_delete_base, "pthread_key_delete@" TL__GLIBC_BASE)
int tl__pkey_delete_base(pthread_key_t key)
{
  return key_delete(key);
}
