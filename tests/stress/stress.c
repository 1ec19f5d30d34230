/* Stress (doc/reliability.md): migrating tasks, key churn, signals and fork.
 *
 *   stress SECONDS
 *
 * 10,000 tasks are made with makecontext and put on one shared run queue.
 * 8 worker threads take tasks from it and resume them, so every resume may
 * land on another thread. On each resume a task checks that it is still
 * itself (tl_current's id) and that every value it reads is its own: its
 * task key, an inherited shared value, its scoped binding, and the values
 * it bound under keys that other threads keep creating and deleting.
 * Meanwhile:
 * - two churn threads create keys, bind values in their own root tasks and
 *   delete the keys again, so that tasks see keys vanish under them and
 *   key slots come back with new generations;
 * - a profiling timer (setitimer, SIGPROF to whichever thread runs) reads
 *   locals from its handler with tl_get and tl_current, which are
 *   async-signal-safe: while a task has announced that it runs on
 *   the interrupted thread, the handler must see exactly its values;
 * - a fork thread forks while the others switch; the child creates a key,
 *   makes and runs a task, reads and writes values in it, writes a dump
 *   with tl_dump, and must exit within a few seconds (no lock left held).
 * When the time is up every task finishes (its function returns through
 * uc_link into a copy of its worker's context), and every task's values
 * must have gone to their destructors exactly once.
 *
 * Exit status 0 when every check held; the first failures are printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "tasklocal.h"

#define NTASKS 10000
/* TSan counts each fiber (one per started task) as a thread, and stops at
 * 8128 of them. */
#define NTASKS_TSAN 4000
#define NWORKERS 8
#define NCHURN 2
#define NCHURN_KEYS 16
#define STACK_SIZE (64 * 1024)

/* ---- ThreadSanitizer ----
 *
 * TSan keeps a shadow call stack per thread and must be told when a thread
 * switches stacks, or it crashes on its own corrupted bookkeeping. This
 * program does not tell it: the library does, for every switch it sees
 * (doc/sanitizers.md), and make check-tsan runs it so. */
#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif

/* ---- failures ---- */

static atomic_long failures;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      report_failure(__LINE__, __VA_ARGS__);                                                       \
  } while (0)

static void report_failure(int line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_failure(int line, const char *fmt, ...)
{
  if (atomic_fetch_add(&failures, 1) < 10) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "stress.c:%d: %s\n", line, msg);
  }
}

/* ---- tasks ---- */

struct task {
  ucontext_t ctx;
  ucontext_t link;                         /* uc_link: a copy of the worker's context, made at the end */
  ucontext_t *back;                        /* the worker that resumed it last */
  char *stack;
  uint64_t id;                             /* tl_task_id, learned at the first resume */
  int cell[4];                             /* the values it binds point here */
  int churn_cell[NCHURN_KEYS];
  _Atomic int destroyed;                   /* destructor calls for its task key */
  int done;
  long resumes, migrations;
  long last_thread;
};

static struct task *tasks;
static int ntasks = NTASKS;
static tl_key_t k_own, k_shared, k_scoped;
static int shared_value;
static atomic_int stopping;
static atomic_long total_resumes, total_finished, handler_checks;

/* Keys the churn threads keep replacing; 0 while a slot has none. */
static _Atomic tl_key_t churn_keys[NCHURN_KEYS];
static atomic_long churn_created;

/* The task the current thread runs, as the task itself announced it (for
 * the signal handler). Read and written through noinline functions: a
 * task migrates between threads, and the compiler must not keep the
 * address of this thread-local across a switch. */
static __thread struct task *volatile announced;

__attribute__((noinline)) static void announce(struct task *t)
{
  __asm__ volatile("" ::: "memory");
  announced = t;
}

__attribute__((noinline)) static struct task *announced_now(void)
{
  __asm__ volatile("" ::: "memory");
  return announced;
}

__attribute__((noinline)) static long thread_number(void)
{
  return (long)pthread_self();
}

static int in_task_cells(const struct task *t, const void *p)
{
  const char *c = (const char *)p;
  return (c >= (const char *)t->cell && c < (const char *)(t->cell + 4)) ||
         (c >= (const char *)t->churn_cell && c < (const char *)(t->churn_cell + NCHURN_KEYS));
}

/* Every value this task can read must be its own, or NULL for a key it
 * never bound (or that was deleted and possibly made again). */
static void check_own_values(struct task *t, int phase)
{
  CHECK(tl_task_id(tl_current()) == t->id, "task %ld runs as task %llu", (long)(t - tasks),
        (unsigned long long)tl_task_id(tl_current()));
  int *own = tl_get(k_own);
  CHECK(own == &t->cell[phase & 1], "task %ld: own value %p, expected %p", (long)(t - tasks), (void *)own,
        (void *)&t->cell[phase & 1]);
  CHECK(tl_get(k_shared) == &shared_value, "task %ld: inherited value %p", (long)(t - tasks), tl_get(k_shared));
  CHECK(tl_get(k_scoped) == &t->cell[2], "task %ld: scoped value %p", (long)(t - tasks), tl_get(k_scoped));
  for (int i = 0; i < NCHURN_KEYS; i++) {
    tl_key_t k = atomic_load(&churn_keys[i]);
    if (k == 0)
      continue;
    void *v = tl_get(k);
    CHECK(v == NULL || v == &t->churn_cell[i], "task %ld: churn key %d gave %p, not its own",
          (long)(t - tasks), i, v);
  }
}

static void yield(struct task *t)
{
  announce(NULL);
  if (swapcontext(&t->ctx, t->back) != 0)
    report_failure(__LINE__, "swapcontext failed");
  announce(t);
}

static void task_main(int lo, int hi)
{
  struct task *t = &tasks[(int)((unsigned)lo | (unsigned)hi << 16)];
  t->id = tl_task_id(tl_current());
  CHECK(t->id != 0, "a task has no id");
  CHECK(tl_set(k_own, &t->cell[0]) == 0, "tl_set failed");
  tl_token_t tok;
  CHECK(tl_bind(k_scoped, &t->cell[2], &tok) == 0, "tl_bind failed");
  /* From here on the signal handler may check this task's values. */
  announce(t);
  for (int step = 0;; step++) {
    check_own_values(t, step);
    /* Bind under some of the churn keys: they may be deleted at any time,
     * and their slots reused by keys that this task never bound. */
    tl_key_t k = atomic_load(&churn_keys[step % NCHURN_KEYS]);
    if (k != 0) {
      int rc = tl_set(k, &t->churn_cell[step % NCHURN_KEYS]);
      CHECK(rc == 0 || rc == EINVAL, "tl_set(churn key) gave %d", rc);
    }
    CHECK(tl_set(k_own, &t->cell[(step + 1) & 1]) == 0, "tl_set failed");
    long me = thread_number();
    if (t->resumes > 0 && me != t->last_thread)
      t->migrations++;
    t->last_thread = me;
    t->resumes++;
    if (atomic_load(&stopping))
      break;
    yield(t);
    check_own_values(t, step + 1);
  }
  announce(NULL);
  CHECK(tl_unbind(&tok) == 0, "tl_unbind failed");
  CHECK(tl_get(k_scoped) == NULL, "the scoped binding outlived tl_unbind");
  /* Finish: the function returns into uc_link, a copy of the context the
   * worker saved when it resumed this task. The shim must find the worker
   * from the copy's stack pointer. */
  t->done = 1;
  t->link = *t->back;
}

static void destroy_own(void *v)
{
  uintptr_t off = (uintptr_t)v - (uintptr_t)tasks;
  long i = (long)(off / sizeof *tasks);
  if (off < (uintptr_t)ntasks * sizeof *tasks && (v == &tasks[i].cell[0] || v == &tasks[i].cell[1]))
    atomic_fetch_add(&tasks[i].destroyed, 1);
  else
    report_failure(__LINE__, "destructor called with %p, no task's value", v);
}

/* ---- the run queue ---- */

static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int *ring;
  int head, n;
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0};

static void q_push(int i)
{
  pthread_mutex_lock(&Q.lock);
  Q.ring[(Q.head + Q.n) % ntasks] = i;
  Q.n++;
  pthread_cond_signal(&Q.cond);
  pthread_mutex_unlock(&Q.lock);
}

/* -1 when every task has finished. */
static int q_pop(void)
{
  pthread_mutex_lock(&Q.lock);
  while (Q.n == 0 && atomic_load(&total_finished) < ntasks) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 10 * 1000 * 1000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&Q.cond, &Q.lock, &ts);
  }
  int i = -1;
  if (Q.n > 0) {
    i = Q.ring[Q.head];
    Q.head = (Q.head + 1) % ntasks;
    Q.n--;
  }
  pthread_mutex_unlock(&Q.lock);
  return i;
}

static void *worker(void *arg)
{
  (void)arg;
  ucontext_t here;
  static __thread int root_marker;
  CHECK(tl_set(k_own, &root_marker) == 0, "tl_set in a worker's root failed");
  for (;;) {
    int i = q_pop();
    if (i < 0)
      break;
    struct task *t = &tasks[i];
    t->back = &here;
    int rc = swapcontext(&here, &t->ctx);
    CHECK(rc == 0, "swapcontext failed");
    /* Back in the worker's own root task, whatever the task did. */
    CHECK(tl_get(k_own) == &root_marker, "a worker's root sees %p", tl_get(k_own));
    atomic_fetch_add(&total_resumes, 1);
    if (t->done) {
      atomic_fetch_add(&total_finished, 1);
      free(t->stack);
      t->stack = NULL;
    } else {
      q_push(i);
    }
  }
  CHECK(tl_unset(k_own) == 0, "tl_unset failed");
  return NULL;
}

/* ---- key churn ---- */

static void churn_destroy(void *v)
{
  (void)v;
}

static void *churner(void *arg)
{
  unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
  int mine;
  while (!atomic_load(&stopping)) {
    int slot = (int)(rand_r(&seed) % NCHURN_KEYS);
    tl_key_t old = atomic_exchange(&churn_keys[slot], 0);
    if (old != 0) {
      CHECK(tl_get(old) == NULL || tl_get(old) == &mine, "a churn thread sees another's value");
      CHECK(tl_key_delete(old) == 0, "tl_key_delete of a live churn key failed");
      CHECK(tl_key_delete(old) == EINVAL, "a deleted key could be deleted again");
    }
    tl_key_t k;
    /* Some keys have destructors: tasks' values under them are simply
     * dropped when the key is deleted, and destroyed when a task ends. */
    CHECK(tl_key_create(&k, (seed & 1) ? churn_destroy : NULL) == 0, "tl_key_create failed");
    atomic_fetch_add(&churn_created, 1);
    CHECK(tl_get(k) == NULL, "a new key is already bound");
    CHECK(tl_set(k, &mine) == 0, "tl_set failed");
    CHECK(tl_get(k) == &mine, "a churn thread lost its value");
    tl_key_t expected = 0;
    if (!atomic_compare_exchange_strong(&churn_keys[slot], &expected, k))
      CHECK(tl_key_delete(k) == 0, "tl_key_delete failed");
    if ((seed & 15) == 0)
      usleep(100);
  }
  return NULL;
}

/* ---- the signal handler ---- */

static void on_prof(int sig)
{
  (void)sig;
  int saved = errno;
  struct task *t = announced_now();
  tl_task_t *cur = tl_current();
  void *own = tl_get(k_own);
  void *scoped = tl_get(k_scoped);
  if (t != NULL && t->id != 0) {
    /* The task said it runs here and has not said it leaves: the handler
     * must see it and its values, not the worker's or another task's. */
    if (tl_task_id(cur) != t->id || !in_task_cells(t, own) || scoped != &t->cell[2])
      atomic_fetch_add(&failures, 1);
    atomic_fetch_add(&handler_checks, 1);
  }
  errno = saved;
}

/* ---- fork ---- */

static ucontext_t child_main_ctx, child_co_ctx;
static int child_ok;

static void child_task(void)
{
  static int v;
  tl_key_t k;
  if (tl_key_create(&k, NULL) != 0 || tl_set(k, &v) != 0 || tl_get(k) != &v || tl_get(k_own) != NULL)
    return;
  uint64_t id = tl_task_id(tl_current());
  swapcontext(&child_co_ctx, &child_main_ctx);
  child_ok = tl_get(k) == &v && tl_task_id(tl_current()) == id;
}

/* In the child of a fork: only this thread exists. Everything must work,
 * and nothing may wait for a lock that a vanished thread held. */
static void child_after_fork(void)
{
  alarm(10);
  static char stack[STACK_SIZE];
  int code = 0;
  tl_key_t k;
  /* The churn threads may have held the key registry's lock at the fork. */
  if (tl_key_create(&k, NULL) != 0)
    code = 2;
  getcontext(&child_co_ctx);
  child_co_ctx.uc_stack.ss_sp = stack;
  child_co_ctx.uc_stack.ss_size = sizeof stack;
  child_co_ctx.uc_link = &child_main_ctx;
  makecontext(&child_co_ctx, child_task, 0);
  swapcontext(&child_main_ctx, &child_co_ctx);
  swapcontext(&child_main_ctx, &child_co_ctx);
  if (!child_ok)
    code = 3;
  int fd = open("/dev/null", O_WRONLY);
  if (tl_dump(fd) != 0)
    code = 4;
  _exit(code);
}

static atomic_long forks_done;

static void *forker(void *arg)
{
  (void)arg;
  while (!atomic_load(&stopping)) {
    usleep(150 * 1000);
    pid_t pid = fork();
    if (pid == 0)
      child_after_fork();
    CHECK(pid > 0, "fork failed: %s", strerror(errno));
    if (pid < 0)
      continue;
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "a forked child ended with status %#x%s", status,
          WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? " (hung: killed by its alarm)" : "");
    atomic_fetch_add(&forks_done, 1);
  }
  return NULL;
}

/* ---- main ---- */

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  double seconds = argc > 1 ? atof(argv[1]) : 5;
  setvbuf(stdout, NULL, _IOLBF, 0);
#ifdef STRESS_TSAN
  ntasks = NTASKS_TSAN;
#endif
  if (!tl_available()) {
    fprintf(stderr, "stress: the library is not tracking ucontext (link it with -ltasklocal)\n");
    return 2;
  }
  CHECK(tl_key_create(&k_own, destroy_own) == 0, "tl_key_create failed");
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.inherit = TL_INHERIT_SHARE;
  CHECK(tl_key_create_attr(&k_shared, &a) == 0, "tl_key_create_attr failed");
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.flags = TL_KEY_SCOPED_ONLY;
  CHECK(tl_key_create_attr(&k_scoped, &a) == 0, "tl_key_create_attr failed");
  CHECK(tl_set(k_shared, &shared_value) == 0, "tl_set failed");

  tasks = calloc(ntasks, sizeof *tasks);
  Q.ring = calloc(ntasks, sizeof *Q.ring);
  if (tasks == NULL || Q.ring == NULL)
    return 2;
  for (int i = 0; i < ntasks; i++) {
    struct task *t = &tasks[i];
    t->stack = malloc(STACK_SIZE);
    if (t->stack == NULL)
      return 2;
    getcontext(&t->ctx);
    t->ctx.uc_stack.ss_sp = t->stack;
    t->ctx.uc_stack.ss_size = STACK_SIZE;
    t->ctx.uc_link = &t->link;
    makecontext(&t->ctx, (void (*)(void))task_main, 2, i & 0xffff, i >> 16);
    q_push(i);
  }
  /* The shared value is the main task's: the tasks made here got it. */
  CHECK(tl_unset(k_shared) == 0, "tl_unset failed");

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prof;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPROF, &sa, NULL);
  struct itimerval it = {{0, 997}, {0, 997}};
  setitimer(ITIMER_PROF, &it, NULL);

  pthread_t workers[NWORKERS], churners[NCHURN], fork_thread;
  for (int i = 0; i < NCHURN; i++)
    pthread_create(&churners[i], NULL, churner, (void *)(uintptr_t)i);
  pthread_create(&fork_thread, NULL, forker, NULL);
  for (int i = 0; i < NWORKERS; i++)
    pthread_create(&workers[i], NULL, worker, NULL);

  double start = now_s();
  while (now_s() - start < seconds && atomic_load(&failures) == 0)
    usleep(50 * 1000);
  atomic_store(&stopping, 1);
  for (int i = 0; i < NWORKERS; i++)
    pthread_join(workers[i], NULL);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &off, NULL);
  for (int i = 0; i < NCHURN; i++)
    pthread_join(churners[i], NULL);
  pthread_join(fork_thread, NULL);

  long migrations = 0;
  for (int i = 0; i < ntasks; i++) {
    CHECK(tasks[i].done, "task %d never finished", i);
    CHECK(atomic_load(&tasks[i].destroyed) == 1, "task %d: its value was destroyed %d times", i,
          atomic_load(&tasks[i].destroyed));
    migrations += tasks[i].migrations;
  }
  CHECK(atomic_load(&total_finished) == ntasks, "%ld tasks finished of %d", atomic_load(&total_finished),
        ntasks);
  double took = now_s() - start;
  printf("stress: %.1f s, %d tasks on %d threads: %ld resumes, %ld migrations, %ld keys churned, "
         "%ld signal-handler checks, %ld forks\n",
         took, ntasks, NWORKERS, atomic_load(&total_resumes), migrations, atomic_load(&churn_created),
         atomic_load(&handler_checks), atomic_load(&forks_done));
  long f = atomic_load(&failures);
  printf("stress: %d passed, %d failed\n", f == 0, f != 0);
  free(Q.ring);
  free(tasks);
  return f == 0 ? 0 : 1;
}
