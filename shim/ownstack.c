/* A stack of the library's own, for work that may need more stack than
 * the caller has left: exit() may run on a coroutine stack of a few
 * kilobytes, and so may the free() that releases a task (the Portable
 * Coroutine Library frees an ended coroutine from a helper coroutine whose
 * whole stack is 3 KiB), while a report, or the destructors of a released
 * task, need far more.
 *
 * One stack serves the whole process, one user at a time (its lock); it is
 * mapped on first use and kept, so that a program that releases a task at
 * every coroutine's end pays two switches, not a mapping, each time. A
 * thread that finds it taken by another waits; a thread that is already
 * running on it (a destructor that frees another task's stack) just calls.
 * The switch uses libc's functions directly: the tracker never sees it,
 * and nothing on that stack asks which task runs by the stack pointer
 * alone (a task's values are reached through tl__as_begin there).
 */
#include "internal.h"
#include "ownstack.h"
#include "real.h"
#include "lock.h"

#include <sys/mman.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TL__HAVE_VALGRIND 1
#endif
#endif

#define OWN_STACK_SIZE (1u << 20)

static struct {
  struct tl__lock lock;                    /* one user at a time */
  char *stack;                             /* mapped on first use, kept */
  void (*fn)(void *arg);                   /* what runs there */
  void *arg;
  ucontext_t back, ctx;
} ownstack;

static void run_entry(void)
{
  ownstack.fn(ownstack.arg);
}

int tl__stack_small(const struct tl__task *t, size_t need)
{
  uintptr_t sp = tl__sp();
  return t != NULL && tl__in_stack(t, sp) && sp - t->lo < need;
}

void tl__run_on_own_stack(const struct tl__task *here, size_t need, void (*fn)(void *arg), void *arg)
{
  if (!tl__stack_small(here, need) || tl__real_makecontext == NULL || tl__real_swapcontext == NULL ||
      tl__lock(&ownstack.lock) != 0) {
    fn(arg);
    return;
  }
  if (ownstack.stack == NULL) {
    void *s = mmap(NULL, OWN_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (s != MAP_FAILED) {
      ownstack.stack = s;
#ifdef TL__HAVE_VALGRIND
      /* Kept for good: registered once, so memcheck takes the switch to it
       * for what it is. */
      VALGRIND_STACK_REGISTER(s, (char *)s + OWN_STACK_SIZE);
#endif
    }
  }
  if (ownstack.stack == NULL || getcontext(&ownstack.ctx) != 0) {
    tl__unlock(&ownstack.lock);
    fn(arg);
    return;
  }
  ownstack.fn = fn;
  ownstack.arg = arg;
  ownstack.ctx.uc_stack.ss_sp = ownstack.stack;
  ownstack.ctx.uc_stack.ss_size = OWN_STACK_SIZE;
  ownstack.ctx.uc_link = &ownstack.back;
  tl__real_makecontext(&ownstack.ctx, run_entry, 0);
  tl__real_swapcontext(&ownstack.back, &ownstack.ctx);
  tl__unlock(&ownstack.lock);
}

/* The stack's bounds, or 0 and 0 before its first use: what it holds is
 * the library's, which the leak scan (reach.c) must not read as roots. */
void tl__own_stack_range(uintptr_t *lo, uintptr_t *hi)
{
  char *s = __atomic_load_n(&ownstack.stack, __ATOMIC_RELAXED);
  *lo = (uintptr_t)s;
  *hi = s != NULL ? (uintptr_t)s + OWN_STACK_SIZE : 0;
}

/* fork: the thread that held the lock is not in the child. */
void tl__own_stack_atfork(int phase)
{
  if (phase > 0)
    tl__lock_reset(&ownstack.lock);
}
