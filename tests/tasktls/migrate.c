/* libreqid's per-request state in coroutines that migrate between threads
 * (an M:N scheduler): two worker threads take turns resuming every
 * coroutine, so that each resume of a coroutine happens on the other
 * thread than the last. A coroutine checks after every resume that its
 * request is still its own, wherever it runs now. Each worker's own
 * request (its root task's) must survive the coroutines it ran.
 *
 * The handoff is explicit (a step counter under a mutex), so the run is
 * deterministic. One line on stdout, as interleave.c's:
 *   mn: fresh_bad=N id_bad=N msg_bad=N key_bad=N roots=N migrated=N made=N destroyed=N
 * and the exit status is 0 when everything is as per task. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "reqid.h"

#define NWORKERS 2
#define NCO 3
#define ROUNDS 6                           /* resumes of each coroutine; the last one returns */
#define STACK_SIZE (256 * 1024)

static struct worker {
  pthread_t thread;
  int index;
  ucontext_t sched;
  int root_ok;
} workers[NWORKERS];

static struct coro {
  ucontext_t ctx;
  int worker;                              /* who resumed it last */
  int migrated;
} co[NCO];

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn = PTHREAD_COND_INITIALIZER;
static int step;                           /* the next resume: coroutine step % NCO, round step / NCO */
static int fresh_bad, id_bad, msg_bad, key_bad;

/* Resume number r of coroutine c is done by this worker. */
static int who(int c, int r)
{
  return (c + r) % NWORKERS;
}

static void body(int me)
{
  if (reqid_get() != 0 || strcmp(reqid_message(), "none") != 0 || reqid_has_ctx())
    __atomic_add_fetch(&fresh_bad, 1, __ATOMIC_RELAXED);
  for (int r = 0; r + 1 < ROUNDS; r++) {
    long id = 100 * (me + 1) + r;
    char want[32];
    snprintf(want, sizeof want, "request %ld", id);
    reqid_set(id);
    int was = co[me].worker;
    swapcontext(&co[me].ctx, &workers[was].sched);
    if (co[me].worker != was)
      co[me].migrated++;
    if (reqid_get() != id)
      __atomic_add_fetch(&id_bad, 1, __ATOMIC_RELAXED);
    if (strcmp(reqid_message(), want) != 0)
      __atomic_add_fetch(&msg_bad, 1, __ATOMIC_RELAXED);
    if (reqid_ctx() != id)
      __atomic_add_fetch(&key_bad, 1, __ATOMIC_RELAXED);
  }
}

static void *work(void *arg)
{
  struct worker *w = arg;
  reqid_set(-1 - w->index);
  for (;;) {
    pthread_mutex_lock(&lock);
    while (step < NCO * ROUNDS && who(step % NCO, step / NCO) != w->index)
      pthread_cond_wait(&turn, &lock);
    if (step == NCO * ROUNDS) {
      pthread_mutex_unlock(&lock);
      break;
    }
    int c = step % NCO;
    pthread_mutex_unlock(&lock);
    co[c].worker = w->index;
    swapcontext(&w->sched, &co[c].ctx);
    pthread_mutex_lock(&lock);
    step++;
    pthread_cond_broadcast(&turn);
    pthread_mutex_unlock(&lock);
  }
  w->root_ok = reqid_get() == -1 - w->index && reqid_ctx() == -1 - w->index;
  return NULL;
}

/* Apart from main's loop: getcontext returns twice, and no local of the
 * loop must be live across it. */
static void make(int i)
{
  getcontext(&co[i].ctx);
  co[i].ctx.uc_stack.ss_sp = malloc(STACK_SIZE);
  co[i].ctx.uc_stack.ss_size = STACK_SIZE;
  /* The last resume returns, into the scheduler of the worker that does it. */
  co[i].ctx.uc_link = &workers[who(i, ROUNDS - 1)].sched;
  makecontext(&co[i].ctx, (void (*)(void))body, 1, i);
}

int main(void)
{
  for (int i = 0; i < NCO; i++)
    make(i);
  for (int i = 0; i < NWORKERS; i++) {
    workers[i].index = i;
    pthread_create(&workers[i].thread, NULL, work, &workers[i]);
  }
  int roots = 0, migrated = 0;
  for (int i = 0; i < NWORKERS; i++) {
    pthread_join(workers[i].thread, NULL);
    roots += workers[i].root_ok;
  }
  for (int i = 0; i < NCO; i++) {
    migrated += co[i].migrated;
    free(co[i].ctx.uc_stack.ss_sp);
  }
  printf("mn: fresh_bad=%d id_bad=%d msg_bad=%d key_bad=%d roots=%d migrated=%d made=%d destroyed=%d\n", fresh_bad,
         id_bad, msg_bad, key_bad, roots, migrated, reqid_ctx_made(), reqid_ctx_destroyed());
  int ok = fresh_bad == 0 && id_bad == 0 && msg_bad == 0 && key_bad == 0 && roots == NWORKERS &&
           migrated == NCO * (ROUNDS - 1) && reqid_ctx_made() == NCO + NWORKERS && reqid_ctx_destroyed() >= NCO;
  return ok ? 0 : 1;
}
