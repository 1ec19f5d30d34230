/* A library that runs a coroutine from its constructor: preloaded before
 * libtasklocal.so, its constructor may run before the shim's, so the shim's
 * makecontext and swapcontext must work before their own set-up ran. It
 * knows nothing of tasklocal. */
#define _GNU_SOURCE
#include <stdio.h>
#include <ucontext.h>

static ucontext_t main_ctx, co_ctx;
static char stack[64 * 1024] __attribute__((aligned(16)));
static int steps;

static void co(int a, int b)
{
  steps += a;
  swapcontext(&co_ctx, &main_ctx);
  steps += b;
}

__attribute__((constructor)) static void trap_ctor_init(void)
{
  getcontext(&co_ctx);
  co_ctx.uc_stack.ss_sp = stack;
  co_ctx.uc_stack.ss_size = sizeof stack;
  co_ctx.uc_link = &main_ctx;
  makecontext(&co_ctx, (void (*)(void))co, 2, 1, 10);
  swapcontext(&main_ctx, &co_ctx);
  swapcontext(&main_ctx, &co_ctx);
}

__attribute__((visibility("default"))) int trap_ctor_steps(void)
{
  return steps;
}
