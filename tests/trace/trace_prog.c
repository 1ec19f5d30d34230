/* An unmodified ucontext program for the trace tests (tests/check_trace.c):
 * it does not include tasklocal.h and does not link the library. Each mode
 * runs coroutines in one switch pattern of doc/tracking.md and counts, in the
 * coroutines themselves, how many times each one was switched in (its
 * start, and every return of a swapcontext that resumed it). The counts
 * are printed in the order the coroutines were made, one line
 *     switchins N1 N2 ...
 * which the trace's slices per task must match.
 *
 *   trace_prog asym          a scheduler resumes 3 coroutines round-robin
 *   trace_prog sym           3 coroutines pass control in a ring, finish through uc_link
 *   trace_prog mn            2 threads resume 4 coroutines from one queue (M:N)
 *   trace_prog shared        3 coroutines on one shared stack, copied out and back
 *   trace_prog many N        one coroutine resumed N times
 *   trace_prog fork          2 coroutines, then fork: each process goes on with them
 *   trace_prog quick         asym, then _exit(0) (no exit handlers)
 *   trace_prog vfork         asym, with a vfork child calling _exit half-way
 *   trace_prog threads N     N threads one after the other, each resuming a coroutine once
 *
 * Built with -DTRACE_LINKED (and linked with the library, since a
 * set-user-ID program ignores LD_PRELOAD) it first prints "secure N", N
 * being the kernel's AT_SECURE for the process.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#define STACK_SIZE (256 * 1024)
#define MAXCO 8

struct coro {
  ucontext_t ctx;
  char *stack;
  int yields;                              /* yields before it returns */
  int switchins;                           /* counted by the coroutine */
  int done;
  int worker;                              /* mn: the worker that resumed it last */
  int resumes;                             /* mn: resumes so far */
  char *saved;                             /* shared: its part of the shared stack */
  size_t size;
};

static ucontext_t sched;
static struct coro co[MAXCO];
static int nco;

static void print_counts(const char *prefix)
{
  printf("%sswitchins", prefix);
  for (int i = 0; i < nco; i++)
    printf(" %d", co[i].switchins);
  printf("\n");
  fflush(stdout);
}

static void make(int i, void (*fn)(void), ucontext_t *link)
{
  if (getcontext(&co[i].ctx) != 0)
    exit(2);
  if (co[i].stack == NULL && (co[i].stack = malloc(STACK_SIZE)) == NULL)
    exit(2);
  co[i].ctx.uc_stack.ss_sp = co[i].stack;
  co[i].ctx.uc_stack.ss_size = STACK_SIZE;
  co[i].ctx.uc_link = link;
  makecontext(&co[i].ctx, fn, 1, i);
}

/* ---- asym, quick, fork, many ------------------------------------------ */

static void asym_main(int i)
{
  volatile long sum = 0;
  co[i].switchins++;
  for (int k = 0; k < co[i].yields; k++) {
    sum += k;
    swapcontext(&co[i].ctx, &sched);
    co[i].switchins++;
  }
  co[i].done = 1;
}

/* Resumes every unfinished coroutine once, rounds times (0: to the end). */
static void round_robin(int rounds)
{
  for (int r = 0; rounds == 0 || r < rounds; r++) {
    int live = 0;
    for (int i = 0; i < nco; i++) {
      if (co[i].done)
        continue;
      live++;
      swapcontext(&sched, &co[i].ctx);
    }
    if (live == 0)
      break;
  }
}

static void asym(int n, int base)
{
  nco = n;
  for (int i = 0; i < nco; i++) {
    co[i].yields = base + i;
    make(i, (void (*)(void))asym_main, &sched);
  }
  round_robin(0);
}

/* ---- sym ---------------------------------------------------------------- */

static void sym_main(int i)
{
  co[i].switchins++;
  for (int k = 0; k < 4; k++) {
    swapcontext(&co[i].ctx, &co[(i + 1) % nco].ctx);
    co[i].switchins++;
  }
}

static void sym(void)
{
  nco = 3;
  for (int i = 0; i < nco; i++)
    make(i, (void (*)(void))sym_main, i + 1 < nco ? &co[i + 1].ctx : &sched);
  swapcontext(&sched, &co[0].ctx);
}

/* ---- mn ----------------------------------------------------------------- */

#define NWORKERS 2
static ucontext_t wsched[NWORKERS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int queue[MAXCO], queued, unfinished;

static void mn_main(int i)
{
  co[i].switchins++;
  for (int k = 0; k < co[i].yields; k++) {
    swapcontext(&co[i].ctx, &wsched[co[i].worker]);
    co[i].switchins++;
  }
  co[i].done = 1;
  /* uc_link cannot name the worker that resumes it last: it goes back by
   * a switch of its own, and the worker sees done. */
  swapcontext(&co[i].ctx, &wsched[co[i].worker]);
}

/* A coroutine's k-th resume is made by worker k % 2, so that every
 * coroutine migrates at every resume (as tests/programs/migrate.c). */
static int take(int w)
{
  for (int q = 0; q < queued; q++) {
    int i = queue[q];
    if (co[i].resumes % NWORKERS == w) {
      memmove(queue + q, queue + q + 1, (size_t)(queued - q - 1) * sizeof queue[0]);
      queued--;
      return i;
    }
  }
  return -1;
}

static void *worker(void *arg)
{
  int w = (int)(intptr_t)arg;
  for (;;) {
    int i;
    pthread_mutex_lock(&lock);
    while ((i = take(w)) < 0 && unfinished > 0)
      pthread_cond_wait(&changed, &lock);
    pthread_mutex_unlock(&lock);
    if (i < 0)
      return NULL;
    co[i].worker = w;
    co[i].resumes++;
    swapcontext(&wsched[w], &co[i].ctx);
    pthread_mutex_lock(&lock);
    if (co[i].done)
      unfinished--;
    else
      queue[queued++] = i;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
  }
}

static void mn(void)
{
  nco = 4;
  for (int i = 0; i < nco; i++) {
    co[i].yields = 3 + i;
    make(i, (void (*)(void))mn_main, NULL);
    queue[queued++] = i;
  }
  unfinished = nco;
  pthread_t t[NWORKERS];
  for (int w = 0; w < NWORKERS; w++)
    if (pthread_create(&t[w], NULL, worker, (void *)(intptr_t)w) != 0)
      exit(2);
  for (int w = 0; w < NWORKERS; w++)
    pthread_join(t[w], NULL);
}

/* ---- threads ------------------------------------------------------------ */

static void *one_switch(void *arg)
{
  (void)arg;
  ucontext_t back, self;
  char *stack = malloc(64 * 1024);
  if (stack == NULL || getcontext(&self) != 0)
    exit(2);
  self.uc_stack.ss_sp = stack;
  self.uc_stack.ss_size = 64 * 1024;
  self.uc_link = &back;
  makecontext(&self, (void (*)(void))free, 1, (void *)NULL);
  swapcontext(&back, &self);
  free(stack);
  return NULL;
}

/* ---- shared ------------------------------------------------------------- */

static char *shared_stack;

static __attribute__((noinline)) void save_stack(int i)
{
  char marker = 0;
  uintptr_t low = (uintptr_t)&marker;
  size_t size = (size_t)((uintptr_t)(shared_stack + STACK_SIZE) - low);
  free(co[i].saved);
  if ((co[i].saved = malloc(size)) == NULL)
    abort();
  co[i].size = size;
  for (size_t k = 0; k < size; k++)
    ((volatile char *)co[i].saved)[k] = ((volatile char *)low)[k];
}

static void shared_main(uint32_t i)
{
  co[i].switchins++;
  for (int k = 0; k < co[i].yields; k++) {
    save_stack((int)i);
    swapcontext(&co[i].ctx, &sched);
    co[i].switchins++;
  }
  co[i].done = 1;
}

static void shared(void)
{
  nco = 3;
  if ((shared_stack = malloc(STACK_SIZE)) == NULL)
    exit(2);
  int started[MAXCO] = {0};
  for (int live = nco; live > 0;) {
    for (int i = 0; i < nco; i++) {
      if (co[i].done)
        continue;
      if (!started[i]) {
        co[i].yields = 2 + i;
        co[i].stack = shared_stack;
        make(i, (void (*)(void))shared_main, &sched);
        started[i] = 1;
      } else {
        for (size_t k = 0; k < co[i].size; k++)
          ((volatile char *)shared_stack + STACK_SIZE - co[i].size)[k] = co[i].saved[k];
      }
      swapcontext(&sched, &co[i].ctx);
      if (co[i].done) {
        live--;
        free(co[i].saved);
        co[i].saved = NULL;
      }
    }
  }
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";
#ifdef TRACE_LINKED
  printf("secure %lu\n", getauxval(AT_SECURE));
#endif
  if (strcmp(mode, "asym") == 0) {
    asym(3, 2);
  } else if (strcmp(mode, "sym") == 0) {
    sym();
  } else if (strcmp(mode, "mn") == 0) {
    mn();
  } else if (strcmp(mode, "shared") == 0) {
    shared();
  } else if (strcmp(mode, "many") == 0 && argc == 3) {
    nco = 1;
    co[0].yields = atoi(argv[2]);
    make(0, (void (*)(void))asym_main, &sched);
    round_robin(0);
  } else if (strcmp(mode, "fork") == 0) {
    nco = 2;
    for (int i = 0; i < nco; i++) {
      co[i].yields = 5;
      make(i, (void (*)(void))asym_main, &sched);
    }
    round_robin(2);
    print_counts("before fork: ");
    pid_t pid = fork();
    if (pid < 0)
      return 2;
    /* From here on, each process counts the switches it makes itself. */
    for (int i = 0; i < nco; i++)
      co[i].switchins = 0;
    if (pid == 0) {
      round_robin(1);
      print_counts("child: ");
      return 0;
    }
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return 3;
    round_robin(0);
    print_counts("parent: ");
    return 0;
  } else if (strcmp(mode, "threads") == 0 && argc == 3) {
    int n = atoi(argv[2]);
    for (int i = 0; i < n; i++) {
      pthread_t t;
      if (pthread_create(&t, NULL, one_switch, NULL) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    }
    printf("%d threads\n", n);
    return 0;
  } else if (strcmp(mode, "vfork") == 0) {
    nco = 3;
    for (int i = 0; i < nco; i++) {
      co[i].yields = 3;
      make(i, (void (*)(void))asym_main, &sched);
    }
    round_robin(2);
    /* The child shares this process's memory until it calls _exit. */
    pid_t pid = vfork();
    if (pid == 0)
      _exit(0);
    if (pid < 0 || waitpid(pid, NULL, 0) != pid)
      return 3;
    round_robin(0);
  } else if (strcmp(mode, "quick") == 0) {
    asym(3, 2);
    print_counts("");
    _exit(0);
  } else {
    fprintf(stderr, "usage: trace_prog asym|sym|mn|shared|many N|fork|quick\n");
    return 2;
  }
  print_counts("");
  return 0;
}
