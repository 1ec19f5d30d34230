/* Telling the tools that need to know about stack switches (SPEC 2.6).
 *
 * valgrind: each task's stack is registered (VALGRIND_STACK_REGISTER), so
 * memcheck knows a switch between stacks from a huge stack frame and stops
 * warning "client switching stacks?". Outside valgrind the requests cost a
 * few instructions.
 *
 * Sanitizers: their fiber annotations are not made, on purpose.
 * - ThreadSanitizer: announcing each task as a fiber (__tsan_create_fiber,
 *   __tsan_switch_to_fiber before each switch) was tried. TSan-built copies
 *   of the programs in tests/programs ran the same with and without it, and
 *   without the shim: TSan reported nothing in any of them, and the one it
 *   cannot run (sigjmp.c, switches by siglongjmp, "can't find longjmp buf")
 *   fails the same way in all three cases. The fiber lifetimes added a way
 *   to crash TSan (a finished task's fiber is still current until glibc
 *   switches to uc_link, after the shim's last instruction), for no gain.
 * - AddressSanitizer's __sanitizer_finish_switch_fiber must run in the
 *   resumed task after the switch, where the shim has no code (SPEC 2.2:
 *   no frame across the real switch). ASan's own swapcontext interceptor,
 *   which comes before ours, keeps working.
 */
#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TL__HAVE_VALGRIND 1
#endif
#endif

#ifdef TL__HAVE_VALGRIND
/* Whether valgrind runs the process, asked once: the question costs a
 * dependent chain of rotations, a few nanoseconds on every makecontext. */
static int on_valgrind(void)
{
  static int on = -1;
  int v = __atomic_load_n(&on, __ATOMIC_RELAXED);
  if (TL__UNLIKELY(v < 0)) {
    v = RUNNING_ON_VALGRIND != 0;
    __atomic_store_n(&on, v, __ATOMIC_RELAXED);
  }
  return v;
}
#endif

void tl__tools_made(struct tl__task *t)
{
#ifdef TL__HAVE_VALGRIND
  if (on_valgrind() && t->hi > t->lo)
    t->vg_stack = VALGRIND_STACK_REGISTER(t->lo, t->hi);
#else
  (void)t;
#endif
}

void tl__tools_gone(struct tl__task *t)
{
#ifdef TL__HAVE_VALGRIND
  if (t->vg_stack != 0)
    VALGRIND_STACK_DEREGISTER(t->vg_stack);
#endif
  t->vg_stack = 0;
}

/* libunwind checks each stack address it is about to read by passing it to
 * a system call (its CONSERVATIVE_CHECKS), and the stack words it checks
 * are often uninitialised padding: memcheck reports "points to
 * uninitialised byte(s)" for what is libunwind's deliberate probing.
 * Backtraces are taken with memcheck's error reporting off. */
void tl__tools_quiet(int on)
{
#ifdef TL__HAVE_VALGRIND
  if (on)
    VALGRIND_DISABLE_ERROR_REPORTING;
  else
    VALGRIND_ENABLE_ERROR_REPORTING;
#else
  (void)on;
#endif
}
