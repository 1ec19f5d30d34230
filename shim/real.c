/* The real functions behind the ones the library interposes: the next
 * definition after ours of swapcontext, setcontext, makecontext, the
 * longjmp family and _exit, found once, at load (tl__real_lookup).
 *
 * They are found with dlsym(RTLD_NEXT, ...), so that another interposer
 * loaded after us (a sanitizer runtime, a second shim) still sees every
 * call. A definition that lies in our own object is ours, whatever its
 * name: that is how the lookup tells our wrappers from the real ones
 * without naming them.
 */
#include "internal.h"
#include "real.h"
#include "message.h"

#include <dlfcn.h>
#include <link.h>
#include <sys/syscall.h>
#include <unistd.h>

int (*tl__real_swapcontext)(ucontext_t *, const ucontext_t *);
int (*tl__real_setcontext)(const ucontext_t *);
void (*tl__real_makecontext)(ucontext_t *, void (*)(void), int, ...);
void (*tl__real_jump[4])(struct __jmp_buf_tag *, int);
int tl__interposing;

static struct {
  void (*exit)(int);                       /* libc's _exit */
  const void *base;                        /* where our own object is loaded */
} found;

void tl__real_exit(int status)
{
  if (found.exit != NULL)
    found.exit(status);
  for (;;)
    syscall(SYS_exit_group, status);
}

/* Whether p lies in our own object. */
static int ours(const void *p)
{
  Dl_info info;
  return dladdr(p, &info) && info.dli_fbase == found.base;
}

/* The next definition of name after ours. RTLD_NEXT finds it when libc
 * comes after us in the lookup order (preloaded, or linked before libc);
 * when a program was linked with libc first, the default definition is
 * libc's own, and as a last resort we ask libc.so.6 directly. */
static void *find_real(const char *name)
{
  void *p = dlsym(RTLD_NEXT, name);
  if (p == NULL || ours(p))
    p = dlsym(RTLD_DEFAULT, name);
  if (p == NULL || ours(p)) {
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    p = libc ? dlsym(libc, name) : NULL;
  }
  return p == NULL || ours(p) ? NULL : p;
}

struct order {
  const void *ours, *libc;
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
  Dl_info libc;
  if (tl__real_swapcontext == NULL || !dladdr((void *)tl__real_swapcontext, &libc))
    return 0;
  struct order o = {found.base, (void *)libc.dli_fbase, -1};
  dl_iterate_phdr(visit, &o);
  if (o.result != 1)
    return 0;
  /* Loaded first, yet not in the global scope (dlopened with RTLD_LOCAL)
   * when the default definition is neither ours nor an interceptor's. */
  return dlsym(RTLD_DEFAULT, "tl_api_v1") != NULL;
}

/* dlsym may allocate (it reports errors through a malloc'd string), and a
 * preloaded allocator may itself use ucontext; this runs once, in
 * tl__init, on the first wrapper call or in our constructor, whichever
 * comes first. */
void tl__real_lookup(void)
{
  Dl_info self;
  if (dladdr((void *)tl__real_lookup, &self))
    found.base = self.dli_fbase;
  tl__real_swapcontext = (int (*)(ucontext_t *, const ucontext_t *))find_real("swapcontext");
  tl__real_setcontext = (int (*)(const ucontext_t *))find_real("setcontext");
  tl__real_makecontext = (void (*)(ucontext_t *, void (*)(void), int, ...))find_real("makecontext");
  if (tl__real_swapcontext == NULL || tl__real_setcontext == NULL || tl__real_makecontext == NULL)
    tl__message("cannot find libc's ucontext functions: %s", dlerror() ? "dlsym failed" : "not loaded");
  static const char *const jumps[4] = {"longjmp", "_longjmp", "siglongjmp", "__longjmp_chk"};
  for (int i = 0; i < 4; i++)
    *(void **)&tl__real_jump[i] = find_real(jumps[i]);
  *(void **)&found.exit = find_real("_exit");
  tl__interposing = comes_before_libc();
}
