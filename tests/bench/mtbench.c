/* Benchmark: how the shim scales with threads. An unmodified ucontext
 * program (no tasklocal.h, no library linked): make bench runs it alone
 * and with libtasklocal.so preloaded, side by side, and compares.
 *
 *   mtbench life N     task lives per second with N threads, each running
 *                      its own scheduler loop: makecontext on its own reused
 *                      context and stack, swapcontext into it, return
 *                      through uc_link
 *   mtbench switch N   swapcontext round trips per second with N threads,
 *                      each between its own main context and coroutine
 *   mtbench handoff    task lives per second when one thread makes the
 *                      tasks and another runs them (an M:N scheduler's
 *                      hand-off): a ring of contexts and stacks in between
 *
 * Each run lasts about RUN_NS; every thread counts what it did, and the
 * figure is the run's time divided by the total count: ns per operation
 * of the whole process, so that N threads doing twice the work of one
 * show half the figure. A thread starts counting once all have started,
 * so thread creation is not measured. Prints "name value" lines.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#define STACK_SIZE (64 * 1024)
#define RUN_NS 150e6
#define MAX_THREADS 64
#define RING 64                            /* contexts in flight in the hand-off */

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static _Atomic int started, go, stop;

struct worker {
  ucontext_t main_uc, co_uc;
  char *stack;
  long count;
  char pad[64];
} __attribute__((aligned(64)));

static struct worker workers[MAX_THREADS];
static _Thread_local struct worker *self;

/* getcontext returns twice: kept in a function of its own, with nothing
 * live across it, so that the callers' variables are safe. */
static __attribute__((noinline)) void init_context(ucontext_t *uc)
{
  getcontext(uc);
}

static void short_life(void)
{
}

static void ping(void)
{
  for (;;)
    swapcontext(&self->co_uc, &self->main_uc);
}

static void wait_start(void)
{
  atomic_fetch_add(&started, 1);
  while (!atomic_load(&go))
    ;
}

static void *life_thread(void *arg)
{
  struct worker *w = arg;
  self = w;
  init_context(&w->co_uc);
  wait_start();
  long n = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int i = 0; i < 64; i++) {
      w->co_uc.uc_stack.ss_sp = w->stack;
      w->co_uc.uc_stack.ss_size = STACK_SIZE;
      w->co_uc.uc_link = &w->main_uc;
      makecontext(&w->co_uc, short_life, 0);
      swapcontext(&w->main_uc, &w->co_uc);
    }
    n += 64;
  }
  w->count = n;
  return NULL;
}

static void *switch_thread(void *arg)
{
  struct worker *w = arg;
  self = w;
  init_context(&w->co_uc);
  w->co_uc.uc_stack.ss_sp = w->stack;
  w->co_uc.uc_stack.ss_size = STACK_SIZE;
  w->co_uc.uc_link = &w->main_uc;
  makecontext(&w->co_uc, ping, 0);
  wait_start();
  long n = 0;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    for (int i = 0; i < 64; i++)
      swapcontext(&w->main_uc, &w->co_uc);
    n += 64;
  }
  w->count = n;
  return NULL;
}

/* Runs fn on n threads for RUN_NS; returns the total count per second. */
static double run_threads(void *(*fn)(void *), int n)
{
  pthread_t t[MAX_THREADS];
  atomic_store(&started, 0);
  atomic_store(&go, 0);
  atomic_store(&stop, 0);
  for (int i = 0; i < n; i++) {
    workers[i].stack = malloc(STACK_SIZE);
    workers[i].count = 0;
    if (workers[i].stack == NULL || pthread_create(&t[i], NULL, fn, &workers[i]) != 0) {
      fprintf(stderr, "mtbench: cannot start thread %d\n", i);
      exit(1);
    }
  }
  while (atomic_load(&started) < n)
    ;
  double t0 = now_ns();
  atomic_store(&go, 1);
  struct timespec d = {0, (long)RUN_NS};
  nanosleep(&d, NULL);
  atomic_store(&stop, 1);
  long total = 0;
  for (int i = 0; i < n; i++) {
    pthread_join(t[i], NULL);
    total += workers[i].count;
    free(workers[i].stack);
  }
  return (double)total / ((now_ns() - t0) / 1e9);
}

/* The hand-off: slot i of the ring goes from the maker to the runner and
 * back. A slot's state: 0 free (the maker's), 1 made (the runner's). */
static struct slot {
  ucontext_t uc;
  char *stack;
  _Atomic int state;
  char pad[64];
} ring[RING];
static ucontext_t runner_main;
static long made_count, run_count;

static void *maker_thread(void *arg)
{
  (void)arg;
  wait_start();
  long n = 0;
  for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i = (i + 1) % RING) {
    struct slot *s = &ring[i];
    for (int spins = 0; atomic_load_explicit(&s->state, memory_order_acquire) != 0; spins++) {
      if (atomic_load_explicit(&stop, memory_order_relaxed))
        goto out;
      if (spins > 100)
        sched_yield();
    }
    s->uc.uc_stack.ss_sp = s->stack;
    s->uc.uc_stack.ss_size = STACK_SIZE;
    s->uc.uc_link = &runner_main;
    makecontext(&s->uc, short_life, 0);
    atomic_store_explicit(&s->state, 1, memory_order_release);
    n++;
  }
out:
  made_count = n;
  return NULL;
}

static void *runner_thread(void *arg)
{
  (void)arg;
  wait_start();
  long n = 0;
  for (unsigned i = 0; !atomic_load_explicit(&stop, memory_order_relaxed); i = (i + 1) % RING) {
    struct slot *s = &ring[i];
    for (int spins = 0; atomic_load_explicit(&s->state, memory_order_acquire) != 1; spins++) {
      if (atomic_load_explicit(&stop, memory_order_relaxed))
        goto out;
      if (spins > 100)
        sched_yield();
    }
    swapcontext(&runner_main, &s->uc);
    atomic_store_explicit(&s->state, 0, memory_order_release);
    n++;
  }
out:
  run_count = n;
  return NULL;
}

static double run_handoff(void)
{
  pthread_t m, r;
  atomic_store(&started, 0);
  atomic_store(&go, 0);
  atomic_store(&stop, 0);
  for (int i = 0; i < RING; i++) {
    ring[i].stack = malloc(STACK_SIZE);
    atomic_store(&ring[i].state, 0);
    init_context(&ring[i].uc);
    if (ring[i].stack == NULL)
      exit(1);
  }
  if (pthread_create(&m, NULL, maker_thread, NULL) != 0 || pthread_create(&r, NULL, runner_thread, NULL) != 0) {
    fprintf(stderr, "mtbench: cannot start the hand-off threads\n");
    exit(1);
  }
  while (atomic_load(&started) < 2)
    ;
  double t0 = now_ns();
  atomic_store(&go, 1);
  struct timespec d = {0, (long)RUN_NS};
  nanosleep(&d, NULL);
  atomic_store(&stop, 1);
  pthread_join(m, NULL);
  pthread_join(r, NULL);
  double secs = (now_ns() - t0) / 1e9;
  /* Contexts made but never run are left to the next run's makecontext. */
  for (int i = 0; i < RING; i++)
    free(ring[i].stack);
  return (double)run_count / secs;
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";
  int n = argc > 2 ? atoi(argv[2]) : 1;
  if (n < 1 || n > MAX_THREADS)
    n = 1;
  if (strcmp(mode, "life") == 0) {
    printf("life%d %.2f\n", n, 1e9 / run_threads(life_thread, n));
  } else if (strcmp(mode, "switch") == 0) {
    printf("switch%d %.2f\n", n, 1e9 / run_threads(switch_thread, n));
  } else if (strcmp(mode, "handoff") == 0) {
    printf("handoff %.2f\n", 1e9 / run_handoff());
  } else {
    fprintf(stderr, "usage: mtbench life N|switch N|handoff\n");
    return 2;
  }
  return 0;
}
