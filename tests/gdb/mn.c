/* A two-thread coroutine program for the gdb extension's tests
 * (tests/gdb/check_gdb.c), built with debug information. It knows nothing
 * of tasklocal; tests/gdb/gdbplug.c, preloaded, names its coroutines and
 * binds their values. Like an M:N scheduler, it moves a coroutine from
 * one thread to the other:
 * - "migrant" is made and first run on the main thread, then resumed by
 *   the worker thread, where it suspends in second_leg;
 * - "w-task" is made on the worker and suspended in wait_on_worker;
 * - "blocker" runs on the worker, blocked in block_in_task;
 * - "never" is made on the main thread and never started.
 * Then, with "abort", the main thread aborts in main_crash; with "wait",
 * it prints "ready" and waits to be attached to and killed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

extern void gdbplug_name(const char *name) __attribute__((weak));
extern void gdbplug_set(const char *key, int scope, void *value) __attribute__((weak));

#define STACK (128 * 1024)
enum { SCOPE_TASK, SCOPE_THREAD };

static ucontext_t main_sched, worker_sched, migrant_ctx, wtask_ctx, blocker_ctx, never_ctx;
static ucontext_t *migrant_home = &main_sched; /* whoever resumes the migrant */
static sem_t ready, forever;
static volatile int steps;

static void name(const char *n)
{
  if (gdbplug_name)
    gdbplug_name(n);
}

static void set(const char *key, int scope, uintptr_t value)
{
  if (gdbplug_set)
    gdbplug_set(key, scope, (void *)value);
}

__attribute__((noinline)) void first_leg(void)
{
  swapcontext(&migrant_ctx, migrant_home);
  steps++;
}

__attribute__((noinline)) void second_leg(void)
{
  swapcontext(&migrant_ctx, migrant_home);
  steps++;
}

__attribute__((noinline)) void migrant(void)
{
  name("migrant");
  set("request.id", SCOPE_TASK, 0x201);
  first_leg();
  second_leg();
  steps++;
}

__attribute__((noinline)) void wait_on_worker(void)
{
  swapcontext(&wtask_ctx, &worker_sched);
  steps++;
}

__attribute__((noinline)) void wtask(void)
{
  name("w-task");
  set("request.id", SCOPE_TASK, 0x202);
  wait_on_worker();
  steps++;
}

__attribute__((noinline)) void block_in_task(void)
{
  sem_post(&ready);
  while (sem_wait(&forever) != 0)
    ;
  steps++;
}

__attribute__((noinline)) void blocker(void)
{
  name("blocker");
  set("request.id", SCOPE_TASK, 0x203);
  block_in_task();
  steps++;
}

__attribute__((noinline)) void never(void)
{
  steps++;
}

static void make(ucontext_t *uc, void (*fn)(void), ucontext_t *link)
{
  getcontext(uc);
  uc->uc_stack.ss_sp = malloc(STACK);
  uc->uc_stack.ss_size = STACK;
  uc->uc_link = link;
  makecontext(uc, fn, 0);
}

static void *worker(void *arg)
{
  (void)arg;
  set("loop.pool", SCOPE_THREAD, 0x2002);
  migrant_home = &worker_sched;
  swapcontext(&worker_sched, &migrant_ctx); /* the migrant goes on here */
  make(&wtask_ctx, wtask, &worker_sched);
  swapcontext(&worker_sched, &wtask_ctx);
  make(&blocker_ctx, blocker, &worker_sched);
  swapcontext(&worker_sched, &blocker_ctx);
  return NULL;
}

/* Aborts only when told to, which the compiler cannot know, so that the
 * call stays in main rather than in a part of it moved out of line. */
__attribute__((noinline)) void main_crash(int really)
{
  if (really)
    abort();
  steps++;
}

int main(int argc, char **argv)
{
  int wait_mode = argc > 1 && strcmp(argv[1], "wait") == 0;
  setvbuf(stdout, NULL, _IOLBF, 0);
  sem_init(&ready, 0, 0);
  sem_init(&forever, 0, 0);
  set("loop.pool", SCOPE_THREAD, 0x1001);
  make(&migrant_ctx, migrant, &main_sched);
  make(&never_ctx, never, &main_sched);
  swapcontext(&main_sched, &migrant_ctx);
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0)
    return 1;
  while (sem_wait(&ready) != 0)
    ;
  if (wait_mode) {
    printf("ready\n");
    for (;;)
      pause();
  }
  main_crash(1);
  return 0;
}
