/* Coroutines that unwind their own stack (doc/sanitizers.md, and the
 * asymmetric pattern of doc/tracking.md).
 *
 * Each coroutine runs steps that may fail, yielding after each; a failure
 * unwinds to the coroutine's own error handler with longjmp, as
 * interpreters do (Lua's error handling inside coroutines works this way):
 * the handler was set several switches earlier. The last coroutine
 * ends the whole process with exit() from its own stack. Nothing here
 * switches stacks with longjmp: every jump stays inside one coroutine.
 *
 * Built with AddressSanitizer, this is the program that needs the fiber
 * annotations: longjmp and exit are calls that never return, before which
 * ASan unpoisons the stack between the stack pointer and the top of the
 * stack it believes the thread runs on. Without being told of the switch
 * it believes the thread's own stack, and prints "ASan is ignoring
 * requested __asan_handle_no_return ... False positive error reports may
 * follow"; the shim tells it. ThreadSanitizer keeps the handlers set
 * with setjmp per thread and drops those deeper than a new one (on one
 * stack, they belong to returned frames): without a fiber per coroutine it
 * can lose a handler set on another coroutine's stack and abort at the
 * longjmp ("can't find longjmp buf").
 */
#include "prog.h"
#include <setjmp.h>
#include <string.h>

#define NCO 3
#define STEPS 4
/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch. */
#define STACK_SIZE (4 * 1024 * 1024)

struct coro {
  ucontext_t ctx;
  void *stack;
  const char *name;
  int fails_at;                            /* the step that fails, or 0 */
  jmp_buf on_error;
  int errors;
  int n;                                   /* the step; in memory, as it lives across setjmp */
  long sum;
};

static ucontext_t sched_ctx;
static struct coro coros[NCO];

/* A step deep enough to leave frames (and their poisoned redzones under
 * ASan) between the failure and the handler. */
__attribute__((noinline)) static int step(struct coro *co, int n, int depth)
{
  char scratch[64];
  memset(scratch, n, sizeof scratch);
  if (depth > 0)
    return step(co, n, depth - 1) + scratch[depth];
  if (n == co->fails_at)
    longjmp(co->on_error, n);
  return scratch[0];
}

static void coro_main(int index)
{
  struct coro *co = &coros[index];

  probe(co->name);
  /* One handler for the whole run, set before the first yield: a failure
   * unwinds to it from a later resume, after the other coroutines have
   * run (and set their own handlers) in between. */
  int failed = setjmp(co->on_error);
  if (failed != 0) {
    co->errors++;
    printf("%s: step %d failed and was unwound\n", co->name, failed);
    probe(co->name);
    swapcontext(&co->ctx, &sched_ctx);
    probe(co->name);
  }
  while (++co->n <= STEPS) {
    co->sum += step(co, co->n, 8);
    printf("%s: step %d sum %ld\n", co->name, co->n, co->sum);
    swapcontext(&co->ctx, &sched_ctx);
    probe(co->name);
  }
  printf("%s: returns after %d error(s)\n", co->name, co->errors);
  if (index == NCO - 1) {
    printf("%s: ends the process\n", co->name);
    fflush(stdout);
    exit(0);
  }
}

int main(void)
{
  static const char *names[NCO] = {"co1", "co2", "co3"};

  probe("main");
  for (int i = 0; i < NCO; i++) {
    struct coro *co = &coros[i];
    co->name = names[i];
    co->fails_at = i + 1;
    if (getcontext(&co->ctx) != 0)
      return 1;
    co->stack = malloc(STACK_SIZE);
    if (co->stack == NULL)
      return 1;
    co->ctx.uc_stack.ss_sp = co->stack;
    co->ctx.uc_stack.ss_size = STACK_SIZE;
    co->ctx.uc_link = &sched_ctx;
    makecontext(&co->ctx, (void (*)(void))coro_main, 1, i);
  }
  /* Round-robin until the last coroutine ends the process; the others
   * finish through uc_link back here. */
  for (int round = 0; round <= STEPS; round++) {
    for (int i = 0; i < NCO; i++) {
      probe("main");
      swapcontext(&sched_ctx, &coros[i].ctx);
    }
  }
  printf("main: not reached\n");
  return 1;
}
