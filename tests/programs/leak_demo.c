/* The leaky program of `make demo`: the request server of demo.c with
 * three bugs that tasklocal's leak report finds. It knows nothing of
 * tasklocal; each request names its coroutine and keeps a per-request
 * record through weak hooks that the test plugin (tests/plugin/leakplug.c)
 * defines, as a logging plugin would.
 * - request-2 waits for a lock that is never released: suspended at exit,
 *   in wait_for_lock(), holding its record.
 * - request-3 is accepted but the server shuts down before it runs: never
 *   started.
 * - request-1 finishes, but its "trace" value has no destructor: dropped.
 */
#include "prog.h"
#include <stdint.h>

extern void leakplug_set(const char *key, void *value, int destructor) __attribute__((weak));
extern void leakplug_name(const char *name) __attribute__((weak));

#define REQUESTS 3
#define STACK (64 * 1024)

static ucontext_t sched_ctx;
static int lock_held = 1;
static struct request {
  ucontext_t ctx;
  char name[32];
  int done;
  char *stack;
} req[REQUESTS];

static void remember(struct request *r, const char *key, void *value, int destructor)
{
  if (leakplug_name)
    leakplug_name(r->name);
  if (leakplug_set)
    leakplug_set(key, value, destructor);
}

__attribute__((noinline)) void wait_for_lock(struct request *r)
{
  while (lock_held) {
    printf("%s: waiting for the lock\n", r->name);
    swapcontext(&r->ctx, &sched_ctx);
  }
}

__attribute__((noinline)) void handle_request(int i)
{
  struct request *r = &req[i];
  printf("%s: started\n", r->name);
  remember(r, "request.record", r, 1);
  if (i == 0)
    remember(r, "request.trace", (void *)(uintptr_t)0x7ace, 0);
  else
    wait_for_lock(r);
  printf("%s: done\n", r->name);
  r->done = 1;
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  /* volatile: getcontext returns twice. */
  for (volatile int i = 0; i < REQUESTS; i++) {
    struct request *r = &req[i];
    snprintf(r->name, sizeof r->name, "request-%d", i + 1);
    r->stack = malloc(STACK);
    getcontext(&r->ctx);
    r->ctx.uc_stack.ss_sp = r->stack;
    r->ctx.uc_stack.ss_size = STACK;
    r->ctx.uc_link = &sched_ctx;
    makecontext(&r->ctx, (void (*)(void))handle_request, 1, i);
  }
  /* Two rounds over the first two requests, then a shutdown that forgets
   * the others. */
  for (volatile int round = 0; round < 2; round++)
    for (volatile int i = 0; i < 2; i++)
      if (!req[i].done)
        swapcontext(&sched_ctx, &req[i].ctx);
  printf("shutting down with %d requests in flight\n", 2);
  return 0;
}
