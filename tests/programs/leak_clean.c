/* A coroutine program that leaks nothing, for the leak report and stats
 * tests. Three coroutines each yield twice and finish; the values they
 * bind (through the test plugin's weak hook) have a destructor. The main
 * thread binds "clean.global" without a destructor: still reachable at
 * exit, like a global, so not a leak.
 *
 * Under the shim the stats line must read
 *   created=3 finished=3 abandoned=0 switches=18 untracked=0 peak=3 keys=2
 * (9 switches into the coroutines, 6 yields, 3 returns through uc_link).
 */
#include "prog.h"
#include <stdint.h>

extern void leakplug_set(const char *key, void *value, int destructor) __attribute__((weak));

#define N 3
#define STACK (128 * 1024)

static ucontext_t main_ctx, ctx[N];
static int done[N];

static void worker(int i)
{
  if (leakplug_set)
    leakplug_set("clean.value", (void *)(uintptr_t)(0x100 + i), 1);
  for (int step = 0; step < 2; step++) {
    printf("worker %d: step %d\n", i, step);
    swapcontext(&ctx[i], &main_ctx);
  }
  done[i] = 1;
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (leakplug_set)
    leakplug_set("clean.global", (void *)0x9109a1, 0);
  char *stacks[N];
  for (int i = 0; i < N; i++) {
    stacks[i] = malloc(STACK);
    getcontext(&ctx[i]);
    ctx[i].uc_stack.ss_sp = stacks[i];
    ctx[i].uc_stack.ss_size = STACK;
    ctx[i].uc_link = &main_ctx;
    makecontext(&ctx[i], (void (*)(void))worker, 1, i);
  }
  for (int live = N; live > 0;) {
    live = 0;
    for (int i = 0; i < N; i++) {
      if (done[i])
        continue;
      swapcontext(&main_ctx, &ctx[i]);
      live += !done[i];
    }
  }
  for (int i = 0; i < N; i++)
    free(stacks[i]);
  puts("all done");
  return 0;
}
