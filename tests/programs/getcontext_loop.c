/* Pattern: getcontext snapshots resumed with setcontext (doc/tracking.md).
 *
 * First, main loops by jumping back to its own getcontext snapshot with
 * setcontext, a volatile counter deciding when to stop.
 *
 * Then co1 takes a snapshot of itself with getcontext(&saved) and leaves
 * with setcontext(&main_ctx), never saving itself anywhere else. It is
 * re-entered only through that snapshot, by other tasks: once by main
 * (which first takes its own snapshot to be returned to) and once by co2,
 * whose setcontext abandons co2 for good, mid-function. On its third visit
 * co1 returns and finishes through uc_link into main. co2 never finishes.
 */
#include "prog.h"

#define LOOPS 4
/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

static ucontext_t main_ctx, co1_ctx, co2_ctx, saved;

/* These change between a getcontext and the setcontext that returns to it,
 * so they must live in memory rather than in registers. */
static volatile int co1_visits;
static volatile int co1_finished;

static void co1_main(void)
{
  probe("co1");
  printf("co1: started, takes a snapshot\n");
  getcontext(&saved);
  co1_visits++;
  probe("co1");
  printf("co1: visit %d\n", co1_visits);
  if (co1_visits < 3) {
    probe("co1");
    setcontext(&main_ctx);
  }
  co1_finished = 1;
  printf("co1: returns into main\n");
  probe("co1");
}

static void co2_main(void)
{
  probe("co2");
  printf("co2: jumps into co1's snapshot and never comes back\n");
  probe("co2");
  setcontext(&saved);
}

static void *make(ucontext_t *ctx, void (*fn)(void))
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
  ctx->uc_link = &main_ctx;
  makecontext(ctx, fn, 0);
  return stack;
}

int main(void)
{
  ucontext_t loop;
  volatile int iterations = 0;
  volatile int jumped = 0;
  void *stack1, *stack2;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  getcontext(&loop);
  iterations++;
  probe("main");
  printf("main: loop iteration %d\n", iterations);
  if (iterations < LOOPS)
    setcontext(&loop);

  stack1 = make(&co1_ctx, co1_main);
  stack2 = make(&co2_ctx, co2_main);
  if (stack1 == NULL || stack2 == NULL)
    return 2;

  printf("main: starts co1\n");
  swapcontext(&main_ctx, &co1_ctx);
  probe("main");

  printf("main: jumps into co1's snapshot\n");
  getcontext(&main_ctx);
  if (!jumped) {
    jumped = 1;
    probe("main");
    setcontext(&saved);
  }
  probe("main");
  printf("main: back from co1's second visit\n");

  printf("main: starts co2\n");
  swapcontext(&main_ctx, &co2_ctx);
  probe("main");
  printf("main: back, co1 visited %d times, %s\n", co1_visits,
         co1_finished ? "finished" : "NOT FINISHED");

  free(stack1);
  free(stack2);
  probe("main");
  return !(iterations == LOOPS && co1_visits == 3 && co1_finished);
}
