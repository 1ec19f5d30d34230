/* Load-time set-up and the lookup of the real ucontext functions.
 *
 * The real functions are found with dlsym(RTLD_NEXT, ...), so that another
 * interposer loaded after us (a sanitizer runtime, a second shim) still sees
 * every call. Another library's constructor may call makecontext before our
 * constructor runs, so every wrapper calls tl__init() first, and tl__init()
 * is cheap once done and safe to call early. */
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int (*tl__real_swapcontext)(ucontext_t *, const ucontext_t *);
int (*tl__real_setcontext)(const ucontext_t *);
void (*tl__real_makecontext)(ucontext_t *, void (*)(void), int, ...);
void (*tl__real_jump[4])(struct __jmp_buf_tag *, int);
static void (*real_exit)(int);

void tl__real_exit(int status)
{
  if (real_exit == NULL)
    tl__init();
  if (real_exit != NULL)
    real_exit(status);
  for (;;)
    syscall(SYS_exit_group, status);
}
int tl__interposing;

static struct {
  _Atomic int state;                       /* 0 not begun, 1 in progress, 2 done */
  struct tl__lock lock;
} S;

/* The next definition of name after ours. RTLD_NEXT finds it when libc
 * comes after us in the lookup order (preloaded, or linked before libc);
 * when a program was linked with libc first, the default definition is
 * libc's own, and as a last resort we ask libc.so.6 directly. */
static void *find_real(const char *name, void *ours)
{
  void *p = dlsym(RTLD_NEXT, name);
  if (p == NULL || p == ours)
    p = dlsym(RTLD_DEFAULT, name);
  if (p == NULL || p == ours) {
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    p = libc ? dlsym(libc, name) : NULL;
  }
  return p == ours ? NULL : p;
}

struct order {
  void *ours, *libc;
  int result;                              /* 1 ours first, 0 libc first, -1 not seen yet */
};

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  struct order *o = arg;
  if ((void *)info->dlpi_addr == o->ours)
    o->result = 1;
  else if ((void *)info->dlpi_addr == o->libc)
    o->result = 0;
  return o->result >= 0;
}

/* Our wrappers see the program's switches when our library comes before
 * libc's in the lookup order: preloaded, or linked ahead of libc. Another
 * interposer may come first (ASan's swapcontext interceptor calls the next
 * definition, ours); a library dlopened with RTLD_LOCAL comes after libc. */
static int comes_before_libc(void)
{
  Dl_info ours, libc;
  if (tl__real_swapcontext == NULL || !dladdr((void *)tl__own_swapcontext, &ours) ||
      !dladdr((void *)tl__real_swapcontext, &libc))
    return 0;
  struct order o = {(void *)ours.dli_fbase, (void *)libc.dli_fbase, -1};
  dl_iterate_phdr(visit, &o);
  if (o.result != 1)
    return 0;
  /* Loaded first, yet not in the global scope (dlopened with RTLD_LOCAL)
   * when the default definition is neither ours nor an interceptor's. */
  return dlsym(RTLD_DEFAULT, "tl_api_v1") != NULL;
}

/* dlsym may allocate (it reports errors through a malloc'd string), and a
 * preloaded allocator may itself use ucontext; this runs once, on the first
 * wrapper call or in our constructor, whichever comes first. */
static void lookup_real(void)
{
  tl__real_swapcontext =
      (int (*)(ucontext_t *, const ucontext_t *))find_real("swapcontext", (void *)tl__own_swapcontext);
  tl__real_setcontext = (int (*)(const ucontext_t *))find_real("setcontext", (void *)tl__own_setcontext);
  tl__real_makecontext =
      (void (*)(ucontext_t *, void (*)(void), int, ...))find_real("makecontext", (void *)tl__own_makecontext);
  if (tl__real_swapcontext == NULL || tl__real_setcontext == NULL || tl__real_makecontext == NULL)
    tl__message("cannot find libc's ucontext functions: %s", dlerror() ? "dlsym failed" : "not loaded");
  static const char *const jumps[4] = {"longjmp", "_longjmp", "siglongjmp", "__longjmp_chk"};
  for (int i = 0; i < 4; i++)
    *(void **)&tl__real_jump[i] = find_real(jumps[i], tl__own_jump[i]);
  *(void **)&real_exit = find_real("_exit", (void *)tl__own_exit);
  tl__interposing = comes_before_libc();
}

/* fork: every lock of the library is taken before (so that no structure
 * is half changed in the child), released in the parent and reset in the
 * child, where the threads that could hold them do not exist (the three
 * phases of musl's atfork hook). Keys, then custom owners, then tasks,
 * then the small-block pools, which are taken while any other is held. */
static void atfork_prepare(void)
{
  tl__key_atfork(-1);
  tl__scope_atfork(-1);
  tl__task_atfork(-1);
  tl__alloc_atfork(-1);
}

static void atfork_parent(void)
{
  tl__alloc_atfork(0);
  tl__task_atfork(0);
  tl__scope_atfork(0);
  tl__key_atfork(0);
}

static void atfork_child(void)
{
  tl__alloc_atfork(1);
  tl__task_atfork(1);
  tl__scope_atfork(1);
  tl__key_atfork(1);
  tl__trace_atfork_child();
}

void tl__init(void)
{
  if (TL__LIKELY(atomic_load_explicit(&S.state, memory_order_acquire) == 2))
    return;
  if (tl__lock(&S.lock) != 0)
    return;
  if (atomic_load_explicit(&S.state, memory_order_relaxed) == 0) {
    atomic_store_explicit(&S.state, 1, memory_order_relaxed);
    tl__options_read();
    lookup_real();
    /* After the real functions are known: a failing dlsym allocates (its
     * error message), and a preloaded allocator may use ucontext. */
    tl__alloc_setup();
    tl__tools_setup();
    tl__trace_setup();
    tl__thread_setup();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    atomic_store_explicit(&S.state, 2, memory_order_release);
  }
  tl__unlock(&S.lock);
}

__attribute__((constructor)) static void tl__constructor(void)
{
  tl__init();
  tl__self();
}

__attribute__((destructor)) static void tl__destructor(void)
{
  tl__trace_exit();
  tl__task_exit();
}

int tl_available(void)
{
  tl__init();
  return tl__interposing;
}
