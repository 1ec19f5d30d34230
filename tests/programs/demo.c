/* The program of `make demo`: a tiny request server whose requests are
 * ucontext coroutines, scheduled round-robin. It knows nothing of
 * tasklocal. At each step it calls a logging hook, tlprobe(), through a
 * weak symbol (prog.h): alone, the hook is absent and nothing happens;
 * with a plugin preloaded after the shim, the plugin keeps one record per
 * coroutine in a task-local key, without the server's help. */
#include "prog.h"

#define REQUESTS 3
#define STEPS 3
#define STACK (64 * 1024)

static ucontext_t sched_ctx;
static struct request {
  ucontext_t ctx;
  char name[32];
  int done;
  char *stack;
} req[REQUESTS];

static void handle(int i)
{
  struct request *r = &req[i];
  for (int step = 1; step <= STEPS + i; step++) {
    printf("%s: step %d\n", r->name, step);
    probe(r->name);
    swapcontext(&r->ctx, &sched_ctx);
  }
  r->done = 1;
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (volatile int i = 0; i < REQUESTS; i++) {
    struct request *r = &req[i];
    snprintf(r->name, sizeof r->name, "request-%d", i + 1);
    r->stack = malloc(STACK);
    getcontext(&r->ctx);
    r->ctx.uc_stack.ss_sp = r->stack;
    r->ctx.uc_stack.ss_size = STACK;
    r->ctx.uc_link = &sched_ctx;
    makecontext(&r->ctx, (void (*)(void))handle, 1, i);
  }
  for (int live = REQUESTS; live > 0;) {
    live = 0;
    for (int i = 0; i < REQUESTS; i++) {
      if (req[i].done)
        continue;
      swapcontext(&sched_ctx, &req[i].ctx);
      live += !req[i].done;
    }
  }
  printf("all %d requests served\n", REQUESTS);
  for (int i = 0; i < REQUESTS; i++)
    free(req[i].stack);
  return 0;
}
