/* Pattern: asymmetric coroutines (doc/tracking.md).
 *
 * The scheduler (main) resumes three coroutines round-robin with
 * swapcontext; each coroutine yields back to the scheduler with swapcontext
 * a different number of times and then returns, which finishes it through
 * uc_link back to the scheduler. Each coroutine sums the squares of its
 * steps in a local variable, so the output shows the order of events and
 * results that had to survive every switch.
 */
#include "prog.h"

#define NCO 3
/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

struct coro {
  ucontext_t ctx;
  void *stack;
  const char *name;
  int yields; /* how many times it yields before returning */
  long result;
  int done;
};

static ucontext_t sched_ctx;
static struct coro coros[NCO];

static void coro_main(int index)
{
  struct coro *co = &coros[index];
  long sum = 0;

  probe(co->name);
  for (int step = 1; step <= co->yields; step++) {
    sum += (long)step * step;
    printf("%s: step %d sum %ld\n", co->name, step, sum);
    probe(co->name);
    swapcontext(&co->ctx, &sched_ctx);
    probe(co->name);
  }
  co->result = sum;
  co->done = 1;
  printf("%s: returns %ld\n", co->name, sum);
  probe(co->name);
}

/* Prepares a context to be made on a new stack and returns the stack, or
 * NULL on failure. getcontext comes first, so that no local variable is
 * live across it (the compiler treats it like setjmp). */
static void *prepare(ucontext_t *ctx, ucontext_t *link)
{
  void *stack;

  if (getcontext(ctx) != 0)
    return NULL;
  stack = malloc(STACK_SIZE);
  if (stack == NULL)
    return NULL;
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = STACK_SIZE;
  ctx->uc_link = link;
  return stack;
}

int main(void)
{
  static const char *const names[NCO] = {"co1", "co2", "co3"};
  int live = NCO;
  int failed = 0;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  probe("main");
  for (int i = 0; i < NCO; i++) {
    struct coro *co = &coros[i];
    co->name = names[i];
    co->yields = i + 2;
    co->stack = prepare(&co->ctx, &sched_ctx);
    if (co->stack == NULL)
      return 2;
    makecontext(&co->ctx, (void (*)(void))coro_main, 1, i);
  }

  for (int round = 1; live > 0; round++) {
    printf("main: round %d\n", round);
    for (int i = 0; i < NCO; i++) {
      struct coro *co = &coros[i];
      if (co->done)
        continue;
      probe("main");
      swapcontext(&sched_ctx, &co->ctx);
      probe("main");
      if (co->done) {
        /* The coroutine has returned, so its stack is no longer in use
         * and can go at once, as real schedulers do. */
        free(co->stack);
        co->stack = NULL;
        live--;
        printf("main: %s finished\n", co->name);
      }
    }
  }

  for (int i = 0; i < NCO; i++) {
    long n = coros[i].yields;
    long expected = n * (n + 1) * (2 * n + 1) / 6;
    printf("main: %s result %ld (%s)\n", coros[i].name, coros[i].result,
           coros[i].result == expected ? "ok" : "WRONG");
    failed |= coros[i].result != expected;
  }
  probe("main");
  return failed;
}
