/* The program of `make trace-demo` and of the picture in doc/trace.md: a
 * small request server whose requests are ucontext coroutines, run by two
 * worker threads from one queue (M:N: a request may resume on either
 * worker). It knows nothing of tasklocal. Three kinds of request, each its
 * own entry function: parse_request does a little work once, query_db
 * waits on a "database" several times, render_page keeps the thread for
 * long stretches (the hog a timeline shows at once). Work is a busy loop
 * of a given number of microseconds, so the picture looks the same on any
 * machine.
 *
 * Prints, in the order the requests were made, how many times each was
 * switched in (counted by the request itself), for tests/trace/check_tool.py.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>

#define NREQ 6
#define NWORKERS 2
#define STACK_SIZE (256 * 1024)

struct req {
  ucontext_t ctx;
  char *stack;
  int worker;                              /* the worker running it now */
  int switchins;
  int done;
};

static struct req req[NREQ];
static ucontext_t sched[NWORKERS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int queue[NREQ], queued, unfinished = NREQ;

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void work(double us)
{
  double end = now_us() + us;
  while (now_us() < end)
    ;
}

static void yield(int i)
{
  swapcontext(&req[i].ctx, &sched[req[i].worker]);
  req[i].switchins++;
}

static void finish(int i)
{
  req[i].done = 1;
  swapcontext(&req[i].ctx, &sched[req[i].worker]);
}

static void parse_request(int i)
{
  req[i].switchins++;
  work(150);
  yield(i);
  work(100);
  finish(i);
}

static void query_db(int i)
{
  req[i].switchins++;
  for (int k = 0; k < 4; k++) {
    work(120 + 40 * k);
    yield(i);
  }
  work(200);
  finish(i);
}

static void render_page(int i)
{
  req[i].switchins++;
  work(300);
  yield(i);
  work(2500);                              /* the hog */
  yield(i);
  work(400);
  finish(i);
}

static void *worker(void *arg)
{
  int w = (int)(intptr_t)arg;
  char name[16];
  snprintf(name, sizeof name, "worker-%d", w);
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    pthread_mutex_lock(&lock);
    while (queued == 0 && unfinished > 0)
      pthread_cond_wait(&changed, &lock);
    if (queued == 0) {
      pthread_mutex_unlock(&lock);
      return NULL;
    }
    int i = queue[0];
    memmove(queue, queue + 1, (size_t)--queued * sizeof queue[0]);
    pthread_mutex_unlock(&lock);
    req[i].worker = w;
    swapcontext(&sched[w], &req[i].ctx);
    work(30);                              /* the scheduler's own work */
    pthread_mutex_lock(&lock);
    if (req[i].done)
      unfinished--;
    else
      queue[queued++] = i;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
  }
}

int main(void)
{
  static void (*const kinds[NREQ])(int) = {render_page, parse_request, query_db,
                                           parse_request, query_db, parse_request};
  for (int i = 0; i < NREQ; i++) {
    if (getcontext(&req[i].ctx) != 0 || (req[i].stack = malloc(STACK_SIZE)) == NULL)
      return 2;
    req[i].ctx.uc_stack.ss_sp = req[i].stack;
    req[i].ctx.uc_stack.ss_size = STACK_SIZE;
    req[i].ctx.uc_link = NULL;
    makecontext(&req[i].ctx, (void (*)(void))kinds[i], 1, i);
    queue[queued++] = i;
  }
  pthread_t t[NWORKERS];
  for (int w = 0; w < NWORKERS; w++)
    if (pthread_create(&t[w], NULL, worker, (void *)(intptr_t)w) != 0)
      return 2;
  for (int w = 0; w < NWORKERS; w++)
    pthread_join(t[w], NULL);
  printf("switchins");
  for (int i = 0; i < NREQ; i++)
    printf(" %d", req[i].switchins);
  printf("\n");
  for (int i = 0; i < NREQ; i++)
    free(req[i].stack);
  return 0;
}
