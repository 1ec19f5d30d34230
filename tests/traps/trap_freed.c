/* A context freed by another coroutine right after it switched away: each
 * coroutine lives in one malloc'd block (its ucontext_t and its stack);
 * the next coroutine frees the previous one's block as soon as it runs,
 * and makes the one after it, which malloc may place at the same address.
 * Run under valgrind: the shim must never read a ucontext_t after control
 * has left it (doc/tracking.md). */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#define STACK (64 * 1024)
#define ROUNDS 200

struct co {
  ucontext_t ctx;
  char stack[STACK];
};

static ucontext_t main_ctx;
static struct co *prev, *running;
static long sum;

static void body(int n);

static struct co *make(int n)
{
  struct co *c = malloc(sizeof *c);
  if (c == NULL)
    exit(2);
  getcontext(&c->ctx);
  c->ctx.uc_stack.ss_sp = c->stack;
  c->ctx.uc_stack.ss_size = STACK;
  c->ctx.uc_link = &main_ctx;
  makecontext(&c->ctx, (void (*)(void))body, 1, n);
  return c;
}

static void body(int n)
{
  struct co *me = running;
  /* The previous coroutine switched here and never runs again. */
  free(prev);
  prev = NULL;
  sum += n;
  if (n == ROUNDS)
    return;
  struct co *next = make(n + 1);
  prev = me;
  running = next;
  swapcontext(&me->ctx, &next->ctx);
}

int main(void)
{
  running = make(1);
  swapcontext(&main_ctx, &running->ctx);
  free(prev);
  free(running);
  printf("sum %ld\n", sum);
  return sum == (long)ROUNDS * (ROUNDS + 1) / 2 ? 0 : 1;
}
