/* Pattern: finishing through uc_link (doc/tracking.md), the switch that glibc
 * makes itself when a context's function returns, which the shim never sees
 * as a call.
 *
 * Part 1, a chain: co1's uc_link is co2's context, made but never started,
 * so co2 starts only because co1 returned; co2's uc_link is main.
 * Part 2, into a suspended context: co4 starts and suspends itself with
 * swapcontext; then co3 runs, and co3's uc_link is co4's context, so co3's
 * return resumes co4 where it stopped; co4's uc_link is main.
 */
#include "prog.h"

/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

static ucontext_t main_ctx, ctx1, ctx2, ctx3, ctx4;
static int trace[16];
static int ntrace;

/* Records the order in which the coroutines ran, checked at the end. */
static void mark(int event)
{
  if (ntrace < 16)
    trace[ntrace++] = event;
}

static void co1_main(void)
{
  probe("co1");
  printf("co1: started, yields to main\n");
  mark(1);
  swapcontext(&ctx1, &main_ctx);
  probe("co1");
  printf("co1: resumed, returns into co2\n");
  mark(1);
  probe("co1");
}

static void co2_main(void)
{
  probe("co2");
  printf("co2: started by co1's return, yields to main\n");
  mark(2);
  swapcontext(&ctx2, &main_ctx);
  probe("co2");
  printf("co2: resumed, returns into main\n");
  mark(2);
  probe("co2");
}

static void co3_main(void)
{
  probe("co3");
  printf("co3: started, yields to main\n");
  mark(3);
  swapcontext(&ctx3, &main_ctx);
  probe("co3");
  printf("co3: resumed, returns into suspended co4\n");
  mark(3);
  probe("co3");
}

static void co4_main(void)
{
  probe("co4");
  printf("co4: started, suspends itself\n");
  mark(4);
  swapcontext(&ctx4, &main_ctx);
  probe("co4");
  printf("co4: resumed by co3's return, returns into main\n");
  mark(4);
  probe("co4");
}

/* Makes a context on a new stack and returns the stack, to be freed at the
 * end, or NULL on failure. */
static void *make(ucontext_t *ctx, void (*fn)(void), ucontext_t *link)
{
  void *stack;

  /* getcontext comes first, so that no local variable is live across it
   * (the compiler treats it like setjmp). */
  if (getcontext(ctx) != 0)
    return NULL;
  stack = malloc(STACK_SIZE);
  if (stack == NULL)
    return NULL;
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = STACK_SIZE;
  ctx->uc_link = link;
  makecontext(ctx, fn, 0);
  return stack;
}

int main(void)
{
  static const int expected[] = {1, 1, 2, 2, 4, 3, 3, 4};
  void *stacks[4];
  int failed = 0;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  probe("main");
  stacks[0] = make(&ctx1, co1_main, &ctx2);
  stacks[1] = make(&ctx2, co2_main, &main_ctx);
  stacks[2] = make(&ctx3, co3_main, &ctx4);
  stacks[3] = make(&ctx4, co4_main, &main_ctx);
  if (!stacks[0] || !stacks[1] || !stacks[2] || !stacks[3])
    return 2;

  printf("main: part 1, chain co1 -> co2 -> main\n");
  swapcontext(&main_ctx, &ctx1);
  probe("main");
  printf("main: resumes co1\n");
  swapcontext(&main_ctx, &ctx1);
  probe("main");
  printf("main: co2 is running, resumes it\n");
  swapcontext(&main_ctx, &ctx2);
  probe("main");
  printf("main: chain done\n");

  printf("main: part 2, co3 returns into suspended co4\n");
  swapcontext(&main_ctx, &ctx4);
  probe("main");
  printf("main: co4 suspended, starts co3\n");
  swapcontext(&main_ctx, &ctx3);
  probe("main");
  printf("main: resumes co3\n");
  swapcontext(&main_ctx, &ctx3);
  probe("main");
  printf("main: part 2 done\n");

  printf("main: order");
  for (int i = 0; i < ntrace; i++)
    printf(" co%d", trace[i]);
  printf("\n");
  failed = ntrace != (int)(sizeof expected / sizeof expected[0]);
  for (int i = 0; !failed && i < ntrace; i++)
    failed = trace[i] != expected[i];
  for (int i = 0; i < 4; i++)
    free(stacks[i]);
  probe("main");
  return failed;
}
