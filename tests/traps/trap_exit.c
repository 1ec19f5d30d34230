/* exit() called on a coroutine's stack: atexit handlers and the shim's
 * exit-time work run on that stack, with the coroutine still suspended in
 * nothing (it is running) and the main task suspended. */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

static ucontext_t main_ctx, co_ctx;
static char stack[64 * 1024] __attribute__((aligned(16)));

static void at_exit(void)
{
  printf("atexit handler ran\n");
}

static void co(void)
{
  printf("coroutine calls exit(3)\n");
  exit(3);
}

int main(void)
{
  atexit(at_exit);
  getcontext(&co_ctx);
  co_ctx.uc_stack.ss_sp = stack;
  co_ctx.uc_stack.ss_size = sizeof stack;
  co_ctx.uc_link = &main_ctx;
  makecontext(&co_ctx, co, 0);
  swapcontext(&main_ctx, &co_ctx);
  printf("NOT REACHED\n");
  return 0;
}
