/* Telling the tools that need to know about tasks and switches (doc/sanitizers.md):
 * valgrind through valgrind.c, and the sanitizers here.
 *
 * Sanitizers: when AddressSanitizer or ThreadSanitizer is in the process
 * (its fiber functions are found with dlsym at load), every switch the
 * shim announces is announced to it too, so that unmodified programs get
 * the annotations their authors would otherwise have to write. The rule
 * of doc/tracking.md (no frame of ours across the real switch) shapes both:
 *
 * - ThreadSanitizer keeps one "fiber" (its per-thread state: shadow call
 *   stack, clocks) per task: made on the first switch into the task,
 *   switched to (with synchronisation, as a program's own annotation
 *   would) just before each real switch, destroyed when the task's record
 *   goes. A finishing task hands over to its uc_link task's fiber before
 *   returning into glibc, so that its own fiber is no longer current when
 *   it is destroyed. A thread's root task uses the thread's own fiber.
 *
 * - AddressSanitizer wants __sanitizer_start_switch_fiber before the switch
 *   (with the bounds of the stack to come) and
 *   __sanitizer_finish_switch_fiber after it, in the resumed task. There
 *   the shim has no code: a resumed task returns from the real swapcontext
 *   straight into the program. Both calls are made before the real
 *   switch: the finish only installs the new bounds and fake stack, without
 *   looking at the stack pointer (asan_thread.cpp,
 *   AsanThread::FinishSwitchFiber), and what still runs on the old stack
 *   until the switch is the end of the wrapper and glibc's assembly, which
 *   ASan does not watch. (Finishing later, at the next entry into the shim,
 *   left ASan half-switched for as long as the resumed task ran, and
 *   LeakSanitizer then scanned the wrong stack for that thread.) Each task
 *   keeps its fake stack (detect_stack_use_after_return) while suspended;
 *   a finishing task's is freed when it hands over.
 *
 * A program that annotates its own switches must not get ours on top (two
 * starts in a row make ASan abort: "starting fiber switch while in fiber
 * switch"). The shim stays out when a loaded object imports the fiber
 * functions (QEMU built with ASan does, like any program built against a
 * shared sanitizer runtime that annotates itself); TASKLOCAL_FIBERS=0 turns
 * the annotations off where that cannot be seen (a runtime linked into the
 * executable, as clang does by default, defines the functions there); and
 * under TSan a fiber switch made behind the shim's back (the current fiber
 * is not the one the shim chose) turns them off for the rest of the process.
 */
#include "internal.h"
#include "tools.h"
#include "valgrind.h"
#include "message.h"
#include "options.h"
#include "lock.h"
#include "alloc.h"
#include "task/registry.h"
#include "task/identity.h"
#include "task/events.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define FIB_ASAN 1
#define FIB_TSAN 2

/* 0, FIB_ASAN or FIB_TSAN: read on every switch, written at load (and once
 * more if a TSan program turns out to annotate its own switches). */
int tl__fibers_on;

static struct {
  void (*asan_start)(void **fake_save, const void *bottom, size_t size);
  void (*asan_finish)(void *fake, const void **bottom_old, size_t *size_old);
  void *(*tsan_current)(void);
  void *(*tsan_create)(unsigned flags);
  void (*tsan_destroy)(void *fiber);
  void (*tsan_switch)(void *fiber, unsigned flags);
  const uintptr_t *ptr_guard;              /* glibc's pointer guard, where it is a variable (arch.h) */
  void (*lsan_register)(const void *p, size_t size);   /* __lsan_register_root_region, with ASan */
  void (*lsan_unregister)(const void *p, size_t size);
} sanitizers;

/* The dynamic section's addresses: glibc relocates most of them in place
 * (elf/get-dynamic-info.h), but not in a read-only dynamic section such as
 * the vDSO's, where they stay relative to the load address. */
static const void *dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
  return (const void *)(p < info->dlpi_addr ? p + info->dlpi_addr : p);
}

static int imports_fiber_functions(const struct dl_phdr_info *info)
{
  const ElfW(Dyn) *dyn = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (dyn == NULL)
    return 0;
  const ElfW(Sym) *syms = NULL;
  const char *strs = NULL;
  const uint32_t *gnu_hash = NULL, *hash = NULL;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_SYMTAB)
      syms = dyn_ptr(info, dyn->d_un.d_ptr);
    else if (dyn->d_tag == DT_STRTAB)
      strs = dyn_ptr(info, dyn->d_un.d_ptr);
    else if (dyn->d_tag == DT_GNU_HASH)
      gnu_hash = dyn_ptr(info, dyn->d_un.d_ptr);
    else if (dyn->d_tag == DT_HASH)
      hash = dyn_ptr(info, dyn->d_un.d_ptr);
  }
  if (syms == NULL || strs == NULL)
    return 0;
  /* Imports are undefined symbols. A GNU hash table covers the defined
   * ones only, which the linker sorts after all the others (its second
   * word is the index of the first): the imports are below it. */
  uint32_t n = gnu_hash != NULL ? gnu_hash[1] : hash != NULL ? hash[1] : 0;
  for (uint32_t i = 1; i < n; i++) {
    if (syms[i].st_shndx != SHN_UNDEF || syms[i].st_name == 0)
      continue;
    const char *name = strs + syms[i].st_name;
    if (strcmp(name, "__sanitizer_start_switch_fiber") == 0 || strcmp(name, "__tsan_switch_to_fiber") == 0)
      return 1;
  }
  return 0;
}

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  if (!imports_fiber_functions(info))
    return 0;
  *(const char **)arg = info->dlpi_name[0] ? info->dlpi_name : "the program";
  return 1;
}

void tl__tools_setup(void)
{
  if (!tl__opt.fibers)
    return;
  const char *annotator = NULL;
  if (dl_iterate_phdr(visit, &annotator) != 0) {
    if (tl__opt.verbose)
      tl__message("%s annotates its own switches for a sanitizer: the shim does not", annotator);
    return;
  }
  *(void **)&sanitizers.asan_start = dlsym(RTLD_DEFAULT, "__sanitizer_start_switch_fiber");
  *(void **)&sanitizers.asan_finish = dlsym(RTLD_DEFAULT, "__sanitizer_finish_switch_fiber");
  if (sanitizers.asan_start != NULL && sanitizers.asan_finish != NULL) {
#ifdef TL__JMP_GUARD_SYMBOL
    sanitizers.ptr_guard = dlsym(RTLD_DEFAULT, TL__JMP_GUARD_SYMBOL);
#endif
    *(void **)&sanitizers.lsan_register = dlsym(RTLD_DEFAULT, "__lsan_register_root_region");
    *(void **)&sanitizers.lsan_unregister = dlsym(RTLD_DEFAULT, "__lsan_unregister_root_region");
    if (sanitizers.lsan_register == NULL || sanitizers.lsan_unregister == NULL)
      sanitizers.lsan_register = sanitizers.lsan_unregister = NULL;
    tl__fibers_on = FIB_ASAN;
    return;
  }
  *(void **)&sanitizers.tsan_current = dlsym(RTLD_DEFAULT, "__tsan_get_current_fiber");
  *(void **)&sanitizers.tsan_create = dlsym(RTLD_DEFAULT, "__tsan_create_fiber");
  *(void **)&sanitizers.tsan_destroy = dlsym(RTLD_DEFAULT, "__tsan_destroy_fiber");
  *(void **)&sanitizers.tsan_switch = dlsym(RTLD_DEFAULT, "__tsan_switch_to_fiber");
  if (sanitizers.tsan_current != NULL && sanitizers.tsan_create != NULL && sanitizers.tsan_destroy != NULL && sanitizers.tsan_switch != NULL)
    tl__fibers_on = FIB_TSAN;
}

/* The thread whose root task t is. */
static struct tl__thread *owner(struct tl__task *t)
{
  return (struct tl__thread *)(void *)((char *)t - offsetof(struct tl__thread, root));
}

/* ------------------------------------------------------------------------
 * AddressSanitizer
 * ------------------------------------------------------------------------ */

/* Where t's fake stack waits while t is suspended; NULL when there is no
 * room (ASan then releases it, as for a task that ends). make: the room
 * may be allocated now (not on a path that may leave a signal handler). */
static void **fake_slot(struct tl__task *t, int make)
{
  if (t->flags & TL__F_ROOT)
    return &owner(t)->fib.root_fake;
  struct tl__task_ext *x = make ? tl__task_ext(t) : t->x;
  return x != NULL ? &x->fiber : NULL;
}

static void *fake_of(struct tl__task *t)
{
  if (t->flags & TL__F_ROOT)
    return owner(t)->fib.root_fake;
  return t->x != NULL ? t->x->fiber : NULL;
}

/* The stack ASan must believe t runs on. A thread's own stack is given
 * back as ASan first knew it (the bounds the first switch away from it
 * returned); the shim's idea of it (from /proc/self/maps) only until then. */
static void asan_bounds(struct tl__task *t, const void **bottom, size_t *size)
{
  if (t->flags & TL__F_ROOT) {
    struct tl__thread *o = owner(t);
    if (o->fib.root_size != 0) {
      *bottom = o->fib.root_bottom;
      *size = o->fib.root_size;
      return;
    }
  }
  *bottom = (const void *)t->lo;
  *size = t->hi - t->lo;
}

/* Tells ASan that the thread leaves for to's stack; save receives the
 * leaving task's fake stack (NULL: it ends, and ASan frees its fake stack).
 * The finish is made at once, before the real switch (see the top of this
 * file). */
static void asan_switch(struct tl__thread *th, void **save, struct tl__task *to, int from_root)
{
  const void *bottom, *old_bottom = NULL;
  size_t size, old_size = 0;
  asan_bounds(to, &bottom, &size);
  sanitizers.asan_start(save, bottom, size);
  sanitizers.asan_finish(fake_of(to), &old_bottom, &old_size);
  if (from_root && th->fib.root_size == 0) {
    th->fib.root_bottom = old_bottom;
    th->fib.root_size = old_size;
  }
}

/* ------------------------------------------------------------------------
 * ThreadSanitizer
 * ------------------------------------------------------------------------ */

/* t's fiber, made on first need; NULL when there is none to switch to. */
static void *tsan_fiber(struct tl__task *t)
{
  if (t->flags & TL__F_ROOT)
    return owner(t)->fib.root;
  struct tl__task_ext *x = tl__task_ext(t);
  if (x == NULL)
    return NULL;
  if (x->fiber == NULL)
    x->fiber = sanitizers.tsan_create(0);
  return x->fiber;
}

static void tsan_switch(struct tl__thread *th, struct tl__task *to)
{
  void *cur = sanitizers.tsan_current();
  if (th->fib.expect == NULL) {
    /* The first switch the shim annotates on this thread starts from the
     * thread's own fiber, whichever task it leaves. */
    if (th->fib.root == NULL)
      th->fib.root = cur;
  } else if (cur != th->fib.expect) {
    /* Someone else switched fibers since our last switch: the program
     * annotates its switches itself. Two annotators would undo each
     * other, so ours stop here. */
    tl__fibers_on = 0;
    if (tl__opt.verbose)
      tl__message("the program switches ThreadSanitizer fibers itself: the shim no longer does");
    return;
  }
  void *f = tsan_fiber(to);
  if (f == NULL)
    return;
  th->fib.expect = f;
  th->fib.pending = f != cur ? f : NULL;
}

/* TSan keeps a shadow call stack per fiber: every instrumented function
 * pushes on entry and pops on exit, on whichever fiber is current. Were
 * the switch made here, the C frames of the bookkeeping (entered on the
 * leaving fiber) would return on the new one, which then drifts by as
 * many frames as the two paths differ (a swapcontext and a task's end do)
 * until its shadow stack overflows. So tsan_switch only notes the fiber,
 * and the assembly wrappers call this once the bookkeeping has returned,
 * right before the real switch. It must not be instrumented itself. */
__attribute__((no_sanitize_thread)) void tl__fibers_commit(void)
{
  struct tl__thread *th = tl__tls;
  if (th == NULL || th == TL__BUSY || th->fib.pending == NULL)
    return;
  void *f = th->fib.pending;
  th->fib.pending = NULL;
  sanitizers.tsan_switch(f, 0);
}

/* ------------------------------------------------------------------------
 * Switches
 * ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * LeakSanitizer's root regions (doc/reports.md)
 *
 * LeakSanitizer reads the stacks of threads, not those of coroutines
 * switched away from: what only a suspended task's stack points to would be
 * reported leaked. While a made task is suspended, its stack is a root
 * region; it stops being one when the task runs again or ends, and, at
 * exit, before LeakSanitizer's own check, when the leak scan finds that
 * nothing can resume it (reach.c): what only a leaked task holds is then
 * reported. TL__F_LSAN says that its stack is registered, so that every
 * region is unregistered exactly once (LeakSanitizer dies on an unknown
 * one). Only with AddressSanitizer's fiber annotations, whose calls come
 * at every switch the shim sees.
 * ------------------------------------------------------------------------ */

static void lsan_suspended(struct tl__task *t)
{
  if (sanitizers.lsan_register == NULL || t == NULL || (t->flags & (TL__F_ROOT | TL__F_LSAN)) || t->hi <= t->lo)
    return;
  sanitizers.lsan_register((const void *)t->lo, t->hi - t->lo);
  tl__flag_set(t, TL__F_LSAN);
}

static void lsan_running(struct tl__task *t)
{
  if (t == NULL || !(t->flags & TL__F_LSAN) || sanitizers.lsan_unregister == NULL)
    return;
  tl__flag_clear(t, TL__F_LSAN);
  sanitizers.lsan_unregister((const void *)t->lo, t->hi - t->lo);
}

int tl__lsan_present(void)
{
  return sanitizers.lsan_register != NULL;
}

void tl__lsan_forget(struct tl__task *t)
{
  lsan_running(t);
}

void tl__fibers_switch(struct tl__thread *th, struct tl__task *from, struct tl__task *to)
{
  if (tl__fibers_on == FIB_ASAN) {
    lsan_suspended(from);
    lsan_running(to);
    asan_switch(th, fake_slot(from, 1), to, from == &th->root);
  } else if (tl__fibers_on == FIB_TSAN) {
    tsan_switch(th, to);
  }
}

/* A longjmp is about to run. Most stay on the stack they start from (error
 * handling), and cost a compare; one that lands on another task's stack
 * is a switch the sanitizer must hear of. Only ASan can follow it (TSan
 * keeps setjmp buffers per fiber and aborts on such a jump before it
 * reaches us). No allocation: the jump may leave a signal handler. */
void tl__fibers_jump(struct tl__thread *th, const struct __jmp_buf_tag *env)
{
  if (tl__fibers_on != FIB_ASAN)
    return;
  uintptr_t sp = tl__jmp_sp(env, sanitizers.ptr_guard); /* glibc keeps it mangled (arch.h) */
  struct tl__task *c = tl__task_now();
  if (c == NULL || tl__in_stack(c, sp))
    return;
  struct tl__task *t = tl__task_at(th, sp);
  if (t == NULL || t == c)
    return;
  lsan_suspended(c);
  lsan_running(t);
  asan_switch(th, fake_slot(c, 0), t, c == &th->root);
}

/* A made task started although the switch had predicted wrong: the tools
 * were told of wrong (its own stack is the one it runs on). */
static void fibers_fix(struct tl__thread *th, struct tl__task *wrong, struct tl__task *t)
{
  if (tl__fibers_on == FIB_ASAN) {
    lsan_suspended(wrong);
    lsan_running(t);
    asan_switch(th, wrong != NULL ? fake_slot(wrong, 1) : NULL, t, 0);
  } else if (tl__fibers_on == FIB_TSAN) {
    tsan_switch(th, t);
  }
}

/* The running task's function returned: glibc switches to uc_link's task
 * (next) after our last instruction, or, without uc_link, calls exit on
 * the dying task's stack (exit=1), which ASan must then go on believing.
 * The dying task's fake stack goes; its TSan fiber is left for
 * tools_gone to destroy once another fiber is current. */
static void fibers_end(struct tl__thread *th, struct tl__task *next, int exit)
{
  if (tl__fibers_on == FIB_ASAN) {
    if (!exit) {
      lsan_running(next);
      asan_switch(th, NULL, next, 0);
    }
  } else if (tl__fibers_on == FIB_TSAN) {
    tsan_switch(th, next);
  }
}

/* ------------------------------------------------------------------------
 * Task lifetimes: the task module's news (task/events.h). A made task's
 * stack is registered with valgrind, and a gone one's forgotten by every
 * tool; a start where the switch predicted another task, and a task's
 * end, move the sanitizers' fibers.
 * ------------------------------------------------------------------------ */

static void tools_gone(struct tl__thread *th, const struct tl__event *ev)
{
  (void)th;
  struct tl__task *t = ev->t;
  tl__valgrind_gone(t);
  lsan_running(t);
  struct tl__task_ext *x = t->x;
  if (x == NULL || x->fiber == NULL)
    return;
  /* A fiber still current (a task that ended while running untracked)
   * cannot be destroyed: it is left to TSan. A saved ASan fake stack has
   * no release call; ASan keeps it. */
  if (sanitizers.tsan_destroy != NULL && tl__fibers_on == FIB_TSAN && x->fiber != sanitizers.tsan_current())
    sanitizers.tsan_destroy(x->fiber);
  x->fiber = NULL;
}

static void tools_made(struct tl__thread *th, const struct tl__event *ev)
{
  (void)th;
  tl__valgrind_made(ev->t);
}

static void tools_started(struct tl__thread *th, const struct tl__event *ev)
{
  if (ev->other != ev->t && tl__fibers_on)
    fibers_fix(th, ev->other, ev->t);
}

static void tools_finishing(struct tl__thread *th, const struct tl__event *ev)
{
  if (tl__fibers_on)
    fibers_end(th, ev->other, ev->exit);
}

/* In tl__init, after tl__tools_setup: only a tool in the process gives the
 * news anything to do. */
void tl__tools_observe_tasks(void)
{
  if (tl__valgrind_on() || tl__fibers_on) {
    tl__task_observe(TL__NEWS_MADE, tools_made);
    tl__task_observe(TL__NEWS_GONE, tools_gone);
  }
  if (tl__fibers_on) {
    tl__task_observe(TL__NEWS_STARTED, tools_started);
    tl__task_observe(TL__NEWS_FINISHING, tools_finishing);
  }
}
