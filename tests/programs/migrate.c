/* Pattern: M:N scheduling, a task resumed on another thread (doc/tracking.md).
 *
 * main makes every coroutine on the main thread; two worker threads, each
 * with its own scheduler context, resume them from one shared queue
 * (mutex + condition variable). The handoff is explicit, so that migration
 * is certain and the run deterministic: a coroutine's k-th resume is done
 * by worker k % 2, so every coroutine starts on worker 0, yields, goes on
 * on worker 1, and so on. A coroutine yields to the scheduler of whichever
 * worker resumed it. Its uc_link must be fixed at makecontext time, so it
 * names the worker that does its last resume.
 *
 * Workers never print; main prints every coroutine's results (including
 * the workers it ran on) after joining them.
 */
#include "prog.h"
#include <pthread.h>

#define NWORKERS 2
#define NCO 3
#define MAX_RESUMES 16
/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

struct worker {
  pthread_t thread;
  int index;
  const char *label;
  ucontext_t sched; /* this worker's scheduler context */
};

struct coro {
  ucontext_t ctx;
  void *stack;
  const char *name;
  int yields;                /* how many times it yields before returning */
  int resumes;               /* resumes so far; the next one is by worker resumes % NWORKERS */
  int worker;                /* the worker running it now */
  int ran_on[MAX_RESUMES];   /* the worker seen by the coroutine after each resume */
  long result;
  int done;
};

static struct worker workers[NWORKERS];
static struct coro coros[NCO];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static struct coro *queue[NCO]; /* ready coroutines, oldest first */
static int queued;
static int unfinished = NCO;

/* Takes the oldest queued coroutine whose next resume belongs to this
 * worker; waits until there is one, and returns NULL once every coroutine
 * has finished. */
static struct coro *take(int worker)
{
  struct coro *co = NULL;

  pthread_mutex_lock(&lock);
  while (co == NULL && unfinished > 0) {
    for (int i = 0; i < queued; i++) {
      if (queue[i]->resumes % NWORKERS == worker) {
        co = queue[i];
        for (int j = i + 1; j < queued; j++)
          queue[j - 1] = queue[j];
        queued--;
        break;
      }
    }
    if (co == NULL && unfinished > 0)
      pthread_cond_wait(&changed, &lock);
  }
  pthread_mutex_unlock(&lock);
  return co;
}

/* Puts a coroutine that yielded back in the queue, or counts it out if it
 * finished, and wakes the other worker. */
static void give_back(struct coro *co)
{
  pthread_mutex_lock(&lock);
  if (co->done)
    unfinished--;
  else
    queue[queued++] = co;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
}

static void *worker_main(void *arg)
{
  struct worker *w = arg;
  struct coro *co;

  probe(w->label);
  while ((co = take(w->index)) != NULL) {
    co->worker = w->index;
    co->resumes++;
    probe(w->label);
    swapcontext(&w->sched, &co->ctx);
    probe(w->label);
    give_back(co);
  }
  probe(w->label);
  return NULL;
}

static void coro_main(int index)
{
  struct coro *co = &coros[index];
  long value = index + 1;
  int step;

  probe(co->name);
  for (step = 0; step < co->yields; step++) {
    co->ran_on[step] = co->worker;
    value = value * 2 + step;
    probe(co->name);
    /* The worker is read again at every yield: it is the one that
     * resumed this coroutine last, not the one it started on. */
    swapcontext(&co->ctx, &workers[co->worker].sched);
    probe(co->name);
  }
  co->ran_on[step] = co->worker;
  co->result = value;
  co->done = 1;
  probe(co->name);
}

/* Prepares a context to be made on a new stack and returns the stack, or
 * NULL on failure. getcontext comes first, so that no local variable is
 * live across it (the compiler treats it like setjmp). */
static void *prepare(ucontext_t *ctx, ucontext_t *link)
{
  void *stack;

  if (getcontext(ctx) != 0)
    return NULL;
  stack = malloc(STACK_SIZE);
  if (stack == NULL)
    return NULL;
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = STACK_SIZE;
  ctx->uc_link = link;
  return stack;
}

int main(void)
{
  static const char *const names[NCO] = {"co1", "co2", "co3"};
  static const char *const labels[NWORKERS] = {"worker0", "worker1"};
  int failed = 0;

  probe("main");
  for (int i = 0; i < NCO; i++) {
    struct coro *co = &coros[i];
    co->name = names[i];
    co->yields = 3 + i;
    /* Resume number `yields` (counting from 0) is the last one, and it is
     * done by worker yields % NWORKERS. */
    co->stack = prepare(&co->ctx, &workers[co->yields % NWORKERS].sched);
    if (co->stack == NULL)
      return 2;
    makecontext(&co->ctx, (void (*)(void))coro_main, 1, i);
    queue[queued++] = co;
  }
  probe("main");

  for (int i = 0; i < NWORKERS; i++) {
    workers[i].index = i;
    workers[i].label = labels[i];
    if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
      return 2;
  }
  for (int i = 0; i < NWORKERS; i++)
    pthread_join(workers[i].thread, NULL);
  probe("main");

  for (int i = 0; i < NCO; i++) {
    struct coro *co = &coros[i];
    long expected = i + 1;
    int migrated_every_time = 1;

    printf("%s: result %ld, ran on workers", co->name, co->result);
    for (int k = 0; k <= co->yields; k++) {
      printf(" %d", co->ran_on[k]);
      migrated_every_time &= co->ran_on[k] == k % NWORKERS;
    }
    for (int k = 0; k < co->yields; k++)
      expected = expected * 2 + k;
    printf(" (%s)\n", co->result == expected && migrated_every_time &&
                              co->resumes == co->yields + 1
                          ? "ok"
                          : "WRONG");
    failed |= !(co->result == expected && migrated_every_time);
    free(co->stack);
  }
  probe("main");
  return failed;
}
