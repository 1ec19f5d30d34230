/* Pattern: uc_link == NULL (doc/tracking.md).
 *
 * co1 has an ordinary uc_link (main) and finishes first. co2 has no
 * uc_link: when its function returns, glibc calls exit(0) on co2's stack,
 * so main never gets control back and the program's exit status is 0 even
 * though main would return 3. An atexit handler prints the last line, which
 * shows that the exit went through the normal exit path.
 */
#include "prog.h"

/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

static ucontext_t main_ctx, ctx1, ctx2;
static int steps1, steps2;

static void at_exit(void)
{
  printf("atexit: co1 steps %d, co2 steps %d\n", steps1, steps2);
}

static void co1_main(void)
{
  for (int i = 0; i < 2; i++) {
    probe("co1");
    steps1++;
    printf("co1: step %d, yields\n", steps1);
    swapcontext(&ctx1, &main_ctx);
    probe("co1");
  }
  steps1++;
  printf("co1: step %d, returns to main\n", steps1);
  probe("co1");
}

static void co2_main(void)
{
  probe("co2");
  steps2++;
  printf("co2: step %d, yields\n", steps2);
  swapcontext(&ctx2, &main_ctx);
  probe("co2");
  steps2++;
  printf("co2: step %d, returns with no uc_link\n", steps2);
  probe("co2");
}

/* Makes a context on a new stack; returns 0, or -1 on failure. The stacks
 * are never freed: the program ends by exit(0) on co2's stack. */
static int make(ucontext_t *ctx, void (*fn)(void), ucontext_t *link)
{
  void *stack;

  /* getcontext comes first, so that no local variable is live across it
   * (the compiler treats it like setjmp). */
  if (getcontext(ctx) != 0)
    return -1;
  stack = malloc(STACK_SIZE);
  if (stack == NULL)
    return -1;
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = STACK_SIZE;
  ctx->uc_link = link;
  makecontext(ctx, fn, 0);
  return 0;
}

int main(void)
{
  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way; exit() flushes stdout in any case. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (atexit(at_exit) != 0)
    return 2;
  probe("main");
  printf("main: start\n");
  if (make(&ctx1, co1_main, &main_ctx) || make(&ctx2, co2_main, NULL))
    return 2;

  for (int i = 0; i < 3; i++) {
    swapcontext(&main_ctx, &ctx1);
    probe("main");
    printf("main: back from co1 (%d)\n", i + 1);
  }

  swapcontext(&main_ctx, &ctx2);
  probe("main");
  printf("main: co2 yielded, resumes it for the last time\n");
  swapcontext(&main_ctx, &ctx2);

  /* Reached only if co2's return did not end the process. */
  printf("main: NOT REACHED\n");
  return 3;
}
