/* Backtraces for the reports: raw capture at makecontext, unwinding of a
 * suspended task from its saved context, and symbolization.
 *
 * Capture must be cheap, since it runs for every makecontext while
 * backtraces are on: it records return addresses only, with libunwind's
 * unw_backtrace (its frame cache makes a walk of a dozen frames cost a
 * fraction of a microsecond; a cursor walk with unw_step costs about 5 µs).
 * Names are looked up only when a report is written (symbolize.c; the
 * names-only fallback, tl__bt_name, is here).
 *
 * The capture goes through a hook. A program or a preloaded library that
 * defines
 *     int tasklocal_backtrace_hook(void **pc, int max);
 * with default visibility replaces unw_backtrace: the tests use it to get
 * known frames, and a program with its own unwinder can plug it in.
 *
 * Unwinding a suspended task reads memory the program may have freed: the
 * ucontext_t the task saved itself into, and its stack. The context is
 * first copied with a fault-safe read (process_vm_readv on our own pid,
 * which returns EFAULT instead of faulting; the report reads many in one
 * call, tl__safe_read_many); its stack pointer must lie in
 * the task's stack; and libunwind 1.6 on x86_64 validates every address
 * before it reads it during unw_step (its CONSERVATIVE_CHECKS, on by
 * default and in Debian's build: mincore, then a one-byte write of the
 * address to a pipe), so a freed or garbage stack ends the walk with an
 * error instead of a crash. Walks stop at our trampoline, the bottom of
 * every made task, and at a stack pointer that leaves the task's stack.
 */
#include "internal.h"
#include "backtrace.h"
#include "message.h"
#include "lock.h"
#include "alloc.h"
#include "task/registry.h"
#include "valgrind.h"

#define UNW_LOCAL_ONLY
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* Extra frames captured so that the library's own frames at the top
 * (tl__bt_capture_task, tl__task_make, makecontext) can be dropped. */
#define OWN_FRAMES 8

static struct {
  _Atomic int ready;                       /* the fields below are set */
  uintptr_t own_lo, own_hi;                /* the library's executable segments */
  uintptr_t tramp_lo, tramp_hi;            /* the trampoline, where every task's stack begins */
  int (*hook)(void **pc, int max);
  int pipe_fd[2];                          /* for tl__safe_read without process_vm_readv */
  _Atomic int no_vm_readv;
  struct tl__lock pipe_lock;
} capture = {.pipe_fd = {-1, -1}};

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  uintptr_t self = (uintptr_t)arg, lo = UINTPTR_MAX, hi = 0;
  int mine = 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
      continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
    if (self >= a && self < b)
      mine = 1;
    if (a < lo)
      lo = a;
    if (b > hi)
      hi = b;
  }
  if (!mine)
    return 0;
  capture.own_lo = lo;
  capture.own_hi = hi;
  return 1;
}

static int default_capture(void **pc, int max)
{
  return unw_backtrace(pc, max);
}

/* Runs at the first capture or report, outside any lock of ours. Two
 * threads may both run it; they compute the same values. */
static void setup(void)
{
  if (TL__LIKELY(atomic_load_explicit(&capture.ready, memory_order_acquire)))
    return;
  dl_iterate_phdr(find_own, (void *)(uintptr_t)tl__bt_capture_task);
  void *hook = dlsym(RTLD_DEFAULT, "tasklocal_backtrace_hook");
  capture.hook = hook != NULL ? (int (*)(void **, int))hook : default_capture;
  atomic_store_explicit(&capture.ready, 1, memory_order_release);
}

static int own_frame(uintptr_t pc)
{
  return pc >= capture.own_lo && pc < capture.own_hi;
}

static int in_trampoline(uintptr_t pc)
{
  return pc >= capture.tramp_lo && pc < capture.tramp_hi;
}

/* At load (init.c): where the trampoline of arch/<arch>.S lies, the frame at
 * the bottom of every made task's stack, where backtraces stop. */
void tl__bt_setup(const void *tramp_lo, const void *tramp_hi)
{
  capture.tramp_lo = (uintptr_t)tramp_lo;
  capture.tramp_hi = (uintptr_t)tramp_hi;
}

/* The calling stack from the first frame outside the library, stopping at
 * the trampoline; at most max frames. */
int tl__bt_here(uintptr_t *pc, int max)
{
  setup();
  void *raw[TL__BT_MAX + OWN_FRAMES];
  int cap = max + OWN_FRAMES;
  if (cap > (int)(sizeof raw / sizeof raw[0]))
    cap = (int)(sizeof raw / sizeof raw[0]);
  tl__valgrind_quiet(1);
  int n = capture.hook(raw, cap);
  tl__valgrind_quiet(0);
  /* A replacement hook may put its own frames first; ours follow. */
  int i = 0, k = 0;
  while (i < n && i < 4 && !own_frame((uintptr_t)raw[i]))
    i++;
  if (i == n || !own_frame((uintptr_t)raw[i]))
    i = 0;
  while (i < n && own_frame((uintptr_t)raw[i]) && !in_trampoline((uintptr_t)raw[i]))
    i++;
  for (; i < n && k < max; i++) {
    uintptr_t a = (uintptr_t)raw[i];
    if (a == 0 || in_trampoline(a))
      break;
    pc[k++] = a;
  }
  return k;
}

/* With backtraces on, a tl_set of a key that has no destructor records
 * where it happened: if the value is still bound when the task ends, it is
 * dropped, and the leak report says where it was set. One record a key,
 * replaced by the next set. */
void tl__bt_note_set(struct tl__task *t, tl_key_t key)
{
  struct tl__task_ext *x = tl__task_ext(t);
  if (x == NULL)
    return;
  struct tl__setbt *s = NULL;
  for (uint32_t i = 0; i < x->nsets && s == NULL; i++)
    if (x->sets[i].key == key)
      s = &x->sets[i];
  if (s == NULL) {
    struct tl__setbt *grown = tl__realloc(x->sets, (x->nsets + 1) * sizeof *grown);
    if (grown == NULL)
      return;
    x->sets = grown;
    s = &x->sets[x->nsets++];
    s->key = key;
  }
  s->n = (uint32_t)tl__bt_here(s->pc, TL__BT_MAX);
}

const struct tl__setbt *tl__bt_set_of(const struct tl__task *t, tl_key_t key)
{
  const struct tl__task_ext *x = t->x;
  for (uint32_t i = 0; x != NULL && i < x->nsets; i++)
    if (x->sets[i].key == key)
      return &x->sets[i];
  return NULL;
}

void tl__bt_capture_task(struct tl__task *t)
{
  uintptr_t pc[TL__BT_MAX];
  int n = tl__bt_here(pc, TL__BT_MAX);
  if (n <= 0)
    return;
  struct tl__task_ext *x = tl__task_ext(t);
  if (x == NULL)
    return;
  uintptr_t *bt = tl__alloc((size_t)n * sizeof *bt);
  if (bt == NULL)
    return;                                /* the report says "no backtrace" */
  memcpy(bt, pc, (size_t)n * sizeof *bt);
  tl__free(x->bt);
  x->bt = bt;
  x->bt_n = (uint32_t)n;
}

/* ------------------------------------------------------------------------
 * Fault-safe reads
 * ------------------------------------------------------------------------ */

/* Where process_vm_readv is not allowed (a seccomp filter), a write(2) of
 * the bytes into a pipe tells whether they are readable the same way. */
static int pipe_read(void *dst, const void *src, size_t n)
{
  if (tl__lock(&capture.pipe_lock) != 0)
    return EDEADLK;
  int err = 0;
  if (capture.pipe_fd[0] < 0 && pipe2(capture.pipe_fd, O_CLOEXEC | O_NONBLOCK) != 0)
    err = errno;
  for (size_t off = 0; err == 0 && off < n;) {
    size_t chunk = n - off < 4096 ? n - off : 4096;
    ssize_t w = write(capture.pipe_fd[1], (const char *)src + off, chunk);
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    ssize_t r = read(capture.pipe_fd[0], (char *)dst + off, (size_t)w);
    if (r != w) {
      err = EIO;
      break;
    }
    off += (size_t)w;
  }
  tl__unlock(&capture.pipe_lock);
  return err;
}

void tl__bt_atfork_child(void)
{
  tl__lock_reset(&capture.pipe_lock);
}

int tl__safe_read(void *dst, const void *src, size_t n)
{
  if (n == 0)
    return 0;
  if (src == NULL)
    return EFAULT;
  if (!atomic_load_explicit(&capture.no_vm_readv, memory_order_relaxed)) {
    struct iovec local = {dst, n}, remote = {(void *)(uintptr_t)src, n};
    ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (r == (ssize_t)n)
      return 0;
    if (r >= 0 || errno == EFAULT)
      return EFAULT;
    if (errno != ENOSYS && errno != EPERM)
      return errno;
    atomic_store_explicit(&capture.no_vm_readv, 1, memory_order_relaxed);
  }
  return pipe_read(dst, src, n);
}

/* Copies the string at src (at most size - 1 bytes) page by page, so that
 * a string ending just before an unmapped page is still read. */
void tl__safe_str(char *dst, size_t size, const char *src)
{
  size_t have = 0;
  if (size == 0)
    return;
  while (src != NULL && have + 1 < size) {
    uintptr_t at = (uintptr_t)src + have;
    size_t page_left = 4096 - (at & 4095), want = size - 1 - have;
    if (want > page_left)
      want = page_left;
    if (tl__safe_read(dst + have, (const void *)at, want) != 0)
      break;
    void *nul = memchr(dst + have, '\0', want);
    if (nul != NULL) {
      have = (size_t)((char *)nul - dst);
      break;
    }
    have += want;
  }
  dst[have] = '\0';
}

/* ------------------------------------------------------------------------
 * Unwinding a saved context
 * ------------------------------------------------------------------------ */

/* Many reads of tl__safe_read's kind at once: a report reads the saved
 * context of each of perhaps millions of tasks, and a system call per
 * read was most of its time. process_vm_readv takes up to IOV_MAX pieces
 * and stops at the first it cannot read; the reads go on from the next. */
void tl__safe_read_many(struct tl__readv *v, size_t n)
{
  enum { PIECES = 512 };
  for (size_t i = 0; i < n; i++)
    v[i].ok = 0;
  size_t i = 0;
  while (i < n && !atomic_load_explicit(&capture.no_vm_readv, memory_order_relaxed)) {
    struct iovec local[PIECES], remote[PIECES];
    size_t k = 0;
    for (; k < PIECES && i + k < n; k++) {
      local[k] = (struct iovec){v[i + k].dst, v[i + k].n};
      remote[k] = (struct iovec){(void *)(uintptr_t)v[i + k].src, v[i + k].n};
    }
    ssize_t r = process_vm_readv(getpid(), local, k, remote, k, 0);
    if (r < 0 && errno != EFAULT)
      break;                               /* not allowed here: one by one, below */
    size_t got = r > 0 ? (size_t)r : 0, done = 0;
    while (done < k && got >= v[i + done].n) {
      got -= v[i + done].n;
      v[i + done].ok = 1;
      done++;
    }
    /* The first piece not read in full is not readable; the next call
     * starts after it. */
    i += done < k ? done + 1 : done;
  }
  for (; i < n; i++)
    v[i].ok = tl__safe_read(v[i].dst, v[i].src, v[i].n) == 0;
}

/* The return addresses of a suspended task, from a copy of the context
 * it saved (the caller reads it with tl__safe_read_many), stopping at the
 * trampoline and where the stack pointer leaves [lo, hi); -1 and *why
 * when it cannot start. */
int tl__bt_unwind(ucontext_t *uc, uintptr_t lo, uintptr_t hi, uintptr_t *pc, int max, const char **why)
{
  setup();
  *why = NULL;
  tl__uc_copied(uc);
  uintptr_t sp = TL__UC_SP(uc);
  if (sp < lo || sp >= hi) {
    *why = "its saved stack pointer is outside its stack (the context was reused)";
    return -1;
  }
  unw_cursor_t cur;
  tl__valgrind_quiet(1);
  if (unw_init_local(&cur, (unw_context_t *)uc) < 0) {
    tl__valgrind_quiet(0);
    *why = "libunwind cannot start from its saved context";
    return -1;
  }
  int n = 0;
  while (n < max) {
    unw_word_t ip = 0, rsp = 0;
    if (unw_get_reg(&cur, UNW_REG_IP, &ip) < 0 || ip == 0 || in_trampoline((uintptr_t)ip))
      break;
    /* A return address outside every loaded object means the stack was
     * overwritten (reused memory): what follows would be garbage. */
    Dl_info info;
    if (dladdr((void *)(uintptr_t)ip, &info) == 0)
      break;
    unw_get_reg(&cur, UNW_REG_SP, &rsp);
    if (rsp < lo || rsp > hi)
      break;
    pc[n++] = (uintptr_t)ip;
    if (unw_step(&cur) <= 0)
      break;
  }
  tl__valgrind_quiet(0);
  return n;
}

/* ------------------------------------------------------------------------
 * Symbolization
 * ------------------------------------------------------------------------ */

static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));

static void fmt(char *buf, size_t size, const char *f, ...)
{
  va_list ap;
  va_start(ap, f);
  tl__format(buf, size, f, ap);
  va_end(ap);
}

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

/* The nearest symbol of an address, as libunwind and dladdr see it: its
 * name and the offset from it, and the module's base name and the offset
 * in it. ret says that pc is a return address: its call is the
 * instruction before it, which is what is looked up (a call may be the
 * last instruction of a function). Returns 1 with a name, 0 with a module
 * only, -1 with neither. This is the fallback of symbolize.c, which needs
 * no allocation: a name from an exported symbol may be that of the
 * nearest exported function, not of the (static) one holding pc.
 *
 * symtab: ask libunwind first, which reads the module's .symtab, and the
 * one of the debug file its .gnu_debuglink names. libunwind 1.6 trusts
 * that file: a corrupt one crashes it. So symbolize.c asks it only when
 * libdw, which checks debug files, is not used; when libdw could not read
 * a module, dladdr's exported names are all there is. */
int tl__bt_name(uintptr_t pc, int ret, int symtab, char *name, size_t nsize, unsigned long *off, char *module,
                size_t msize, unsigned long *moff)
{
  setup();
  uintptr_t at = ret && pc > 0 ? pc - 1 : pc;
  unw_word_t uoff = 0;
  int have_name = 0;
  name[0] = module[0] = '\0';
  *off = *moff = 0;
  /* libunwind reads the ELF symbol tables, static functions included;
   * dladdr sees only exported symbols. */
  unw_accessors_t *acc = symtab ? unw_get_accessors(unw_local_addr_space) : NULL;
  if (acc != NULL && acc->get_proc_name != NULL &&
      acc->get_proc_name(unw_local_addr_space, (unw_word_t)at, name, nsize, &uoff, NULL) == 0 && name[0] != '\0')
    have_name = 1;
  Dl_info info;
  int have_module = dladdr((void *)at, &info) != 0 && info.dli_fname != NULL;
  if (!have_name && have_module && info.dli_sname != NULL && info.dli_saddr != NULL) {
    tl__safe_str(name, nsize, info.dli_sname);
    uoff = (unw_word_t)(at - (uintptr_t)info.dli_saddr);
    have_name = name[0] != '\0';
  }
  if (!have_name)
    name[0] = '\0';
  if (have_module) {
    /* The main program has an empty name. */
    tl__safe_str(module, msize, info.dli_fname[0] != '\0' ? base_name(info.dli_fname) : program_invocation_short_name);
    *moff = (unsigned long)(pc - (uintptr_t)info.dli_fbase);
  }
  *off = (unsigned long)(uoff + (at != pc));
  return have_name ? 1 : have_module ? 0 : -1;
}

/* "name+0x1c (module)", or "module+0x1234" without a name (the trace's
 * task names). */
void tl__bt_symbol(uintptr_t pc, int ret, char *buf, size_t size)
{
  char name[256], module[256];
  unsigned long off, moff;
  int have = tl__bt_name(pc, ret, 1, name, sizeof name, &off, module, sizeof module, &moff);
  if (have > 0 && module[0] != '\0')
    fmt(buf, size, "%s+0x%lx (%s)", name, off, module);
  else if (have > 0)
    fmt(buf, size, "%s+0x%lx", name, off);
  else if (have == 0)
    fmt(buf, size, "%s+0x%lx", module, moff);
  else
    fmt(buf, size, "??");
}
