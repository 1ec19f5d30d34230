/* Pattern: symmetric coroutines (doc/tracking.md).
 *
 * Three coroutines pass control directly to one another with swapcontext,
 * co1 -> co2 -> co3 -> co1, for several rounds; main only starts co1. When
 * the rounds are over co1 returns, and its uc_link resumes co2 where it was
 * suspended; co2 returns into co3 the same way, and co3's uc_link is main.
 * A token is updated by every coroutine in turn, so the output shows the
 * order of events.
 */
#include "prog.h"

#define NCO 3
#define ROUNDS 4
/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

struct coro {
  ucontext_t ctx;
  void *stack;
  const char *name;
  int rounds_seen; /* counted in a local, stored when the coroutine ends */
};

static ucontext_t main_ctx;
static struct coro coros[NCO];
static long token;

static void coro_main(int index)
{
  struct coro *self = &coros[index];
  struct coro *next = &coros[(index + 1) % NCO];
  int rounds = 0;

  probe(self->name);
  for (int round = 1; round <= ROUNDS; round++) {
    token = token * 3 + index + 1;
    rounds++;
    printf("%s: round %d token %ld -> %s\n", self->name, round, token,
           next->name);
    probe(self->name);
    swapcontext(&self->ctx, &next->ctx);
    probe(self->name);
  }
  self->rounds_seen = rounds;
  printf("%s: returns after %d rounds\n", self->name, rounds);
  probe(self->name);
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
  int failed = 0;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  probe("main");
  for (int i = 0; i < NCO; i++) {
    struct coro *co = &coros[i];
    co->name = names[i];
    /* Each coroutine finishes into the next one's suspended context, and
     * the last one into main. */
    co->stack = prepare(&co->ctx, i + 1 < NCO ? &coros[i + 1].ctx : &main_ctx);
    if (co->stack == NULL)
      return 2;
    makecontext(&co->ctx, (void (*)(void))coro_main, 1, i);
  }

  printf("main: starting co1\n");
  swapcontext(&main_ctx, &coros[0].ctx);
  probe("main");
  printf("main: back, token %ld\n", token);

  for (int i = 0; i < NCO; i++) {
    failed |= coros[i].rounds_seen != ROUNDS;
    free(coros[i].stack);
  }
  probe("main");
  return failed;
}
