/* The ways a coroutine program ends without returning from main, for the
 * leak report tests: the report must be written in each. argv[1] picks:
 *   uclink  a coroutine made with uc_link == NULL returns, and glibc calls
 *           exit(0) on its stack (the coroutine finished: not a leak);
 *   call    a coroutine calls exit(3) itself: it is still running, a leak;
 *   small   the same on a 16 KiB stack;
 *   thread  another thread calls exit(4) while main waits in pthread_join;
 *   _exit   a coroutine calls _exit(5), which skips every exit handler.
 * In every mode a coroutine, parked_here, is left suspended first: the
 * report counts 1 task, or 2 in modes call and small.
 */
#include "prog.h"
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define STACK (256 * 1024)
#define SMALL (16 * 1024)

static ucontext_t main_ctx, parked_ctx, last_ctx;

__attribute__((noinline)) void parked_here(void)
{
  swapcontext(&parked_ctx, &main_ctx);
  __asm__ volatile("");
  puts("parked_here: resumed, which never happens");
}

__attribute__((noinline)) void ends_through_uclink(void)
{
  puts("ends_through_uclink: returning into glibc's exit(0)");
}

__attribute__((noinline)) void calls_exit(void)
{
  puts("calls_exit: exit(3)");
  exit(3);
}

__attribute__((noinline)) void calls__exit(void)
{
  puts("calls__exit: _exit(5)");
  _exit(5);
}

static void *thread_exit(void *arg)
{
  (void)arg;
  puts("thread: exit(4)");
  exit(4);
}

static void make(ucontext_t *ctx, size_t size, void (*fn)(void), ucontext_t *link)
{
  getcontext(ctx);
  ctx->uc_stack.ss_sp = malloc(size);
  ctx->uc_stack.ss_size = size;
  ctx->uc_link = link;
  makecontext(ctx, fn, 0);
}

int main(int argc, char **argv)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *mode = argc > 1 ? argv[1] : "uclink";
  make(&parked_ctx, STACK, parked_here, &main_ctx);
  swapcontext(&main_ctx, &parked_ctx);

  if (strcmp(mode, "uclink") == 0) {
    make(&last_ctx, STACK, ends_through_uclink, NULL);
  } else if (strcmp(mode, "call") == 0) {
    make(&last_ctx, STACK, calls_exit, &main_ctx);
  } else if (strcmp(mode, "small") == 0) {
    make(&last_ctx, SMALL, calls_exit, &main_ctx);
  } else if (strcmp(mode, "_exit") == 0) {
    make(&last_ctx, STACK, calls__exit, &main_ctx);
  } else if (strcmp(mode, "thread") == 0) {
    pthread_t th;
    if (pthread_create(&th, NULL, thread_exit, NULL) != 0)
      return 1;
    pthread_join(th, NULL);
    return 1;
  } else {
    fprintf(stderr, "usage: leak_exit uclink|call|small|thread|_exit\n");
    return 2;
  }
  swapcontext(&main_ctx, &last_ctx);
  puts("main: back, which never happens");
  return 1;
}
