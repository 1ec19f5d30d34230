/* A coroutine program for the dump tests: while it runs, TASKLOCAL_DUMP_SIGNAL
 * makes the shim write the live-task report.
 *
 * Two threads each run a scheduler that switches among 3 coroutines
 * without pause; the main thread leaves one coroutine parked in
 * deep_wait(), called by parked_for_dump(). It prints "ready" once all are
 * running, then reads stdin until end of file, stops the threads and
 * returns 0. At any moment of a dump there are 7 live tasks: the parked
 * one, and 6 that are suspended or running on the threads.
 */
#include "prog.h"
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define THREADS 2
#define CORO 3
#define STACK (128 * 1024)

static atomic_int stop, started;
static ucontext_t main_ctx, parked_ctx;

struct sched {
  ucontext_t home, co[CORO];
  int done[CORO];
};

static struct sched scheds[THREADS];

__attribute__((noinline)) void deep_wait(void)
{
  swapcontext(&parked_ctx, &main_ctx);
  __asm__ volatile("");
  puts("deep_wait: resumed, which never happens");
}

__attribute__((noinline)) void parked_for_dump(void)
{
  deep_wait();
  __asm__ volatile(""); /* no tail call: the frame stays for the backtrace */
}

__attribute__((noinline)) void spinning_worker(int t, int i)
{
  struct sched *s = &scheds[t];
  volatile unsigned long work = 0;
  /* Most of the time in this loop, little in the scheduler: a dump must
   * find these tasks running on their threads, not between two switches
   * (with a short loop, under load, three dumps could miss them all). */
  while (!atomic_load(&stop)) {
    for (int k = 0; k < 200000; k++)
      work += (unsigned long)k;
    swapcontext(&s->co[i], &s->home);
  }
  s->done[i] = 1;
}

static void *thread_main(void *arg)
{
  int t = (int)(intptr_t)arg;
  struct sched *s = &scheds[t];
  /* volatile: the loops contain calls that return twice. */
  for (volatile int i = 0; i < CORO; i++) {
    getcontext(&s->co[i]);
    s->co[i].uc_stack.ss_sp = malloc(STACK);
    s->co[i].uc_stack.ss_size = STACK;
    s->co[i].uc_link = &s->home;
    makecontext(&s->co[i], (void (*)(void))spinning_worker, 2, t, i);
  }
  atomic_fetch_add(&started, 1);
  for (volatile int live = CORO; live > 0;) {
    live = 0;
    for (volatile int i = 0; i < CORO; i++) {
      if (s->done[i])
        continue;
      swapcontext(&s->home, &s->co[i]);
      live += !s->done[i];
    }
  }
  for (volatile int i = 0; i < CORO; i++)
    free(s->co[i].uc_stack.ss_sp);
  return NULL;
}

int main(void)
{
  getcontext(&parked_ctx);
  parked_ctx.uc_stack.ss_sp = malloc(STACK);
  parked_ctx.uc_stack.ss_size = STACK;
  parked_ctx.uc_link = &main_ctx;
  makecontext(&parked_ctx, parked_for_dump, 0);
  swapcontext(&main_ctx, &parked_ctx);

  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++)
    if (pthread_create(&th[t], NULL, thread_main, (void *)(intptr_t)t) != 0)
      return 1;
  while (atomic_load(&started) < THREADS)
    usleep(1000);
  printf("ready\n");
  fflush(stdout);

  char buf[256];
  while (read(0, buf, sizeof buf) > 0)
    continue;
  atomic_store(&stop, 1);
  for (int t = 0; t < THREADS; t++)
    pthread_join(th[t], NULL);
  printf("stopped\n");
  return 0;
}
