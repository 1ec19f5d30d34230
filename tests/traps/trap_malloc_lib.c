/* A preloaded allocator in the style of libfaketime's trap (#130): it finds
 * the real malloc with dlsym(RTLD_NEXT, ...), and dlsym may itself call
 * malloc, so calls made while the lookup runs are served from a static
 * arena. Its first allocation also runs a coroutine (makecontext and
 * swapcontext), possibly before any constructor ran, the shim's included:
 * the shim's own lookups (dlsym) then run inside this malloc. It knows
 * nothing of tasklocal. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

static char arena[1 << 16] __attribute__((aligned(16)));
static size_t arena_used;
static int looking_up, in_coroutine_setup;

static void *arena_alloc(size_t n)
{
  n = (n + 15) & ~(size_t)15;
  if (arena_used + n > sizeof arena)
    return NULL;
  void *p = arena + arena_used;
  arena_used += n;
  return p;
}

static int from_arena(const void *p)
{
  return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

static ucontext_t setup_main, setup_co;
static char setup_stack[32 * 1024] __attribute__((aligned(16)));
static volatile int setup_done;

static void setup_body(void)
{
  setup_done = 1;
}

static void lookup(void)
{
  looking_up = 1;
  real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
  real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
  real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
  real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
  looking_up = 0;
  /* The allocator's own set-up runs as a coroutine. */
  in_coroutine_setup = 1;
  getcontext(&setup_co);
  setup_co.uc_stack.ss_sp = setup_stack;
  setup_co.uc_stack.ss_size = sizeof setup_stack;
  setup_co.uc_link = &setup_main;
  makecontext(&setup_co, setup_body, 0);
  swapcontext(&setup_main, &setup_co);
  in_coroutine_setup = 0;
}

__attribute__((visibility("default"))) void *malloc(size_t n)
{
  if (looking_up)
    return arena_alloc(n);
  if (real_malloc == NULL)
    lookup();
  if (real_malloc == NULL)
    return arena_alloc(n);
  return real_malloc(n);
}

/* Arena memory is never reused, so it is still zero: no memset, which the
 * compiler could turn back into a call to calloc. */
__attribute__((visibility("default"))) void *calloc(size_t a, size_t b)
{
  if (b != 0 && a > SIZE_MAX / b)
    return NULL;
  if (looking_up)
    return arena_alloc(a * b);
  if (real_calloc == NULL)
    lookup();
  if (real_calloc == NULL)
    return arena_alloc(a * b);
  return real_calloc(a, b);
}

__attribute__((visibility("default"))) void *realloc(void *p, size_t n)
{
  if (p != NULL && from_arena(p)) {
    void *q = malloc(n);
    size_t left = (size_t)(arena + sizeof arena - (char *)p);
    if (q != NULL)
      memcpy(q, p, n < left ? n : left);
    return q;
  }
  if (real_realloc == NULL)
    return p == NULL ? malloc(n) : NULL;
  return real_realloc(p, n);
}

__attribute__((visibility("default"))) void free(void *p)
{
  if (p == NULL || from_arena(p))
    return;
  if (real_free != NULL)
    real_free(p);
}

__attribute__((visibility("default"))) int trap_malloc_setup_done(void)
{
  return setup_done;
}
