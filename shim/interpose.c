/* The interposed ucontext functions: the C half.
 *
 * swapcontext, setcontext and makecontext are defined in arch/<arch>.S,
 * which calls tl__before_swap, tl__before_set or tl__before_make for the
 * bookkeeping and then jumps to the real function (for makecontext, so
 * that its variadic arguments reach glibc untouched). Made contexts start
 * in tl__trampoline (arch/<arch>.S), which calls tl__task_begin and, when the
 * program's function returns, tl__task_end (task/life.c).
 */
/* With _FORTIFY_SOURCE, <setjmp.h> renames longjmp to __longjmp_chk: the
 * wrappers below must define the names they say. */
#undef _FORTIFY_SOURCE
#include "internal.h"
#include "interpose.h"
#include "real.h"
#include "lock.h"
#include "thread.h"
#include "task/ctxmap.h"
#include "task/identity.h"
#include "tools.h"
#include "task.h"
#include "exitreport.h"
#include "init.h"
#include "trace.h"
#include "tracefile.h"
#include "options.h"
#include "keys.h"
#include "tasktls.h"

#include <setjmp.h>
#include <stdlib.h>

/* The task c leaves for the one predicted for ucp, which becomes current
 * before the real switch. The announcement stays open (in_switch) until
 * the thread is seen running in the new task; see tl__resolve. The inline
 * switch of arch/<arch>.S makes the same stores in the same order. */
static void announce(struct tl__thread *th, struct tl__task *c, const ucontext_t *ucp)
{
  struct tl__task *t = tl__predict(th, ucp);
  if (t == NULL)
    t = &th->root;
  if (t != c) {
    /* The program's thread-local state follows the task (tasktls.c). */
    if (TL__UNLIKELY(tl__tasktls_on))
      tl__tasktls_switch(th, c, t);
    if (TL__UNLIKELY(tl__fibers_on))
      tl__fibers_switch(th, c, t);
    atomic_store_explicit(&c->state, TL__SUSPENDED, memory_order_relaxed);
    c->ran_on = (uint32_t)(uintptr_t)th;
    atomic_store_explicit(&t->state, TL__RUNNING, memory_order_relaxed);
  }
  th->prev = c;
  th->in_switch = 1;
  th->current = t;
  /* After the announcement, which keeps tl_get from filling the view again
   * until the switch is seen done: a signal handler's read before it may
   * have filled it with c's. */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  tl__view_drop();
  th->switches++;
  TL__TRACE(tl__trace_event(th, TL__TEV_SWITCH, c->id, t->id));
}

/* Bookkeeping of swapcontext(oucp, ucp), before the real switch: the
 * running task saves itself at oucp, and the task predicted for ucp
 * becomes the current one. The contexts are read here only, while they
 * are valid; after the switch, any of them may be freed at once. The
 * common case never comes here: arch/<arch>.S does it inline. */
void tl__before_swap(ucontext_t *oucp, const ucontext_t *ucp)
{
  /* The real functions the wrapper jumps to are found by tl__init, which
   * costs one load once done. */
  tl__init();
  struct tl__thread *th = tl__self();
  if (th == NULL || oucp == NULL || ucp == NULL)
    return;
  struct tl__task *c = tl__task_now();
  if (!(__atomic_load_n(&c->mapped, __ATOMIC_RELAXED) && c->ctx == oucp)) {
    tl__map_save(c, oucp);
    tl__hint_put(th, oucp, c);
  } else if (TL__UNLIKELY(c->flags & TL__F_MADE)) {
    tl__flag_clear(c, TL__F_MADE); /* saved again where it was made */
  }
  announce(th, c, ucp);
}

/* setcontext(ucp): the running task leaves without saving itself. It stays
 * suspended: a context that getcontext saved in it may resume it later. */
void tl__before_set(const ucontext_t *ucp)
{
  tl__init();
  struct tl__thread *th = tl__self();
  if (th != NULL && ucp != NULL)
    announce(th, tl__task_now(), ucp);
}

/* Bookkeeping of makecontext(ucp, func, ...), before the real one
 * (arch/<arch>.S), which is then called with the program's arguments as
 * they are and the function returned here in place of func: the
 * trampoline for a tracked task, func itself for an untracked one. The
 * task is entered in the indexes before the real makecontext runs;
 * nothing can switch to it before that returns, as the program is still
 * inside the call that makes it. */
static __attribute__((noinline)) void (*make_general(ucontext_t *ucp, void (*func)(void)))(void)
{
  tl__init();
  if (tl__real_makecontext == NULL || ucp == NULL || func == NULL || tl__task_make(ucp, func) == NULL)
    return func;
  return tl__trampoline;
}

void (*tl__before_make(ucontext_t *ucp, void (*func)(void)))(void)
{
  /* The two loops first (tl__task_remake), in a function that needs no
   * frame: a thread with state has seen tl__init through. Everything else
   * is a tail call. */
  struct tl__thread *th = tl__tls;
  if (TL__LIKELY(th != NULL && th != TL__BUSY && ucp != NULL && func != NULL && tl__real_makecontext != NULL) &&
      tl__task_remake(th, ucp, func) != NULL)
    return tl__trampoline;
  return make_general(ucp, func);
}

/* ------------------------------------------------------------------------
 * Jumps
 *
 * longjmp and its kin are interposed for one reason: a program that
 * switches coroutines with siglongjmp after starting them with swapcontext
 * (QEMU does; doc/tracking.md) moves the thread to another stack without a
 * ucontext call, and AddressSanitizer, once told of the ucontext switches
 * (tools.c), must be told of these too, or it goes on believing the stack
 * it was last told of (and LeakSanitizer scans that one instead of the
 * thread's). Without a sanitizer the wrappers only pass the call on. They
 * never return, so the frame they leave behind does not matter.
 * ------------------------------------------------------------------------ */

void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));

__attribute__((noreturn)) static void jump(int which, struct __jmp_buf_tag *env, int val)
{
  if (TL__UNLIKELY(tl__real_jump[which] == NULL))
    tl__init();
  if (TL__UNLIKELY(tl__fibers_on)) {
    struct tl__thread *th = tl__tls;
    if (th != NULL && th != TL__BUSY)
      tl__fibers_jump(th, env);
  }
  tl__real_jump[which](env, val);
  __builtin_unreachable();
}

__attribute__((visibility("default"))) void longjmp(struct __jmp_buf_tag env[1], int val)
{
  jump(0, env, val);
}

__attribute__((visibility("default"))) void _longjmp(struct __jmp_buf_tag env[1], int val)
{
  jump(1, env, val);
}

__attribute__((visibility("default"))) void siglongjmp(struct __jmp_buf_tag env[1], int val)
{
  jump(2, env, val);
}

__attribute__((visibility("default"))) void __longjmp_chk(struct __jmp_buf_tag env[1], int val)
{
  jump(3, env, val);
}

/* ------------------------------------------------------------------------
 * Process exit by _exit, which skips the exit handlers: only the stats
 * line is written (exitreport.c). _Exit is the same function in glibc.
 * ------------------------------------------------------------------------ */

__attribute__((visibility("default"))) void _exit(int status)
{
  tl__init();
  tl__trace_exit();
  tl__report_quick_exit();
  tl__real_exit(status);
}

__attribute__((visibility("default"))) void _Exit(int status)
{
  tl__init();
  tl__trace_exit();
  tl__report_quick_exit();
  tl__real_exit(status);
}
