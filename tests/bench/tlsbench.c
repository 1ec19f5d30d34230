/* Benchmark: what TASKLOCAL_TASK_LOCAL costs an unmodified program
 * (doc/task-local-tls.md). Not tasklocal's: make bench runs it preloaded
 * with and without the option, and alone, and compares. It is linked with
 * the C++ runtime, so that cxx-eh has exception state to swap. Modes:
 *
 *   tlsbench switch        ns per swapcontext round trip, main <-> a
 *                          coroutine, each side updating two 8-byte
 *                          __thread variables (bench_a, bench_b)
 *   tlsbench getspecific   ns per pthread_getspecific of a key this
 *                          program made, read inside a coroutine
 *
 * A mode repeats its loop in ROUNDS chunks of about CHUNK_NS and reports
 * the fastest, as ucbench.c does.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#define STACK_SIZE (64 * 1024)
#define ROUNDS 10
#define CHUNK_NS 4e6

__thread long bench_a, bench_b;

static ucontext_t main_uc, co_uc;
static pthread_key_t key;
static void *volatile sink;
static double result;
static void (*timed)(long n);

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static __attribute__((noinline)) void touch(void)
{
  bench_a++;
  bench_b += 2;
}

static void ping(void)
{
  for (;;) {
    touch();
    swapcontext(&co_uc, &main_uc);
  }
}

static void loop_switch(long n)
{
  for (long i = 0; i < n; i++) {
    touch();
    swapcontext(&main_uc, &co_uc);
  }
}

/* Eight reads an iteration, folded into one store: the loop and the store
 * weigh little against the calls, whose cost is what is compared. */
static void loop_get(long n)
{
  for (long i = 0; i < n; i += 8) {
    uintptr_t x = 0;
    for (int k = 0; k < 8; k++)
      x ^= (uintptr_t)pthread_getspecific(key);
    sink = (void *)x;
  }
}

/* Calibrates a chunk to CHUNK_NS, then returns the fastest of ROUNDS
 * chunks in ns per iteration. */
static double time_loop(void (*loop)(long n))
{
  long n = 100;
  for (;;) {
    double t0 = now_ns();
    loop(n);
    if (now_ns() - t0 >= CHUNK_NS || n > (1L << 40))
      break;
    n *= 2;
  }
  double best = 1e300;
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_ns();
    loop(n);
    double ns = (now_ns() - t0) / (double)n;
    if (ns < best)
      best = ns;
  }
  return best;
}

/* The reads are timed in a task of their own, where a per-task key has
 * the task's value. */
static void reader(void)
{
  pthread_setspecific(key, &key);
  result = time_loop(timed);
}

int main(int argc, char **argv)
{
  static char stack[STACK_SIZE];
  getcontext(&co_uc);
  co_uc.uc_stack.ss_sp = stack;
  co_uc.uc_stack.ss_size = sizeof stack;
  co_uc.uc_link = &main_uc;
  if (argc == 2 && strcmp(argv[1], "switch") == 0) {
    makecontext(&co_uc, ping, 0);
    printf("switch %.2f\n", time_loop(loop_switch));
  } else if (argc == 2 && strcmp(argv[1], "getspecific") == 0) {
    if (pthread_key_create(&key, NULL) != 0)
      return 1;
    timed = loop_get;
    makecontext(&co_uc, reader, 0);
    swapcontext(&main_uc, &co_uc);
    printf("getspecific %.2f\n", result);
  } else {
    fprintf(stderr, "usage: tlsbench switch|getspecific\n");
    return 2;
  }
  return 0;
}
