/* Task tracking seen through the API (doc/tracking.md): identity across switches,
 * values per task, destructors when a task finishes or is abandoned, the
 * memory of never-started tasks, migration between threads, unseen
 * siglongjmp switches and reads from signal handlers.
 *
 * This binary links -ltasklocal, so its own makecontext/swapcontext calls
 * go through the library exactly as a preloaded program's do. The
 * unmodified programs of the switch patterns are run under LD_PRELOAD by
 * check_patterns. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <tasklocal.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK (64 * 1024)

static ucontext_t main_ctx, co_ctx;
static char co_stack[STACK] __attribute__((aligned(16)));
static tl_key_t key;
static int destroyed;
static void *destroyed_value;

static void count_destroy(void *v)
{
  __atomic_fetch_add(&destroyed, 1, __ATOMIC_RELAXED);
  destroyed_value = v;
}

static void setup(void)
{
  destroyed = 0;
  destroyed_value = NULL;
  ck_assert_int_eq(tl_key_create(&key, count_destroy), 0);
}

/* ---- identity and values across switches ---- */

static uint64_t co_ids[3];
static int co_value;

static void co_identity(void)
{
  co_ids[0] = tl_task_id(tl_current());
  ck_assert_ptr_null(tl_get(key)); /* the root's value is not the task's */
  tl_set(key, &co_value);
  swapcontext(&co_ctx, &main_ctx);
  co_ids[1] = tl_task_id(tl_current());
  ck_assert_ptr_eq(tl_get(key), &co_value);
  swapcontext(&co_ctx, &main_ctx);
  co_ids[2] = tl_task_id(tl_current());
}

START_TEST(test_identity_across_switches)
{
  int root_value;
  uint64_t root = tl_task_id(tl_current());
  tl_set(key, &root_value);
  tl_test_context(&co_ctx, co_stack, STACK, co_identity, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_uint_eq(tl_task_id(tl_current()), root);
  ck_assert_ptr_eq(tl_get(key), &root_value);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_ptr_eq(tl_get(key), &root_value);
  ck_assert_int_eq(destroyed, 0);
  swapcontext(&main_ctx, &co_ctx); /* the task returns through uc_link */
  ck_assert_uint_eq(tl_task_id(tl_current()), root);
  ck_assert_uint_ne(co_ids[0], root);
  ck_assert_uint_eq(co_ids[0], co_ids[1]);
  ck_assert_uint_eq(co_ids[1], co_ids[2]);
  ck_assert_int_eq(destroyed, 1);
  ck_assert_ptr_eq(destroyed_value, &co_value);
  ck_assert_ptr_eq(tl_get(key), &root_value);
}
END_TEST

/* ---- destructor rounds at task end ---- */

static int rounds;
static void rebind_destroy(void *v)
{
  rounds++;
  ck_assert_int_eq(tl_set(key, v), 0); /* binds in the ending task: one more round */
}

static void co_rebinds(void)
{
  tl_set(key, &rounds);
}

START_TEST(test_destructor_rounds)
{
  tl_key_delete(key);
  ck_assert_int_eq(tl_key_create(&key, rebind_destroy), 0);
  rounds = 0;
  tl_test_context(&co_ctx, co_stack, STACK, co_rebinds, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_int_eq(rounds, 4);
  ck_assert_ptr_null(tl_get(key)); /* nothing leaked into the root */
}
END_TEST

/* ---- abandonment ---- */

static int abandoned_value;
static void co_binds_and_yields(void)
{
  tl_set(key, &abandoned_value);
  swapcontext(&co_ctx, &main_ctx);
  ck_abort_msg("an abandoned task must never resume");
}

START_TEST(test_abandon_destroys_values)
{
  tl_test_context(&co_ctx, co_stack, STACK, co_binds_and_yields, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_int_eq(destroyed, 0);
  /* The same ucontext_t made again while its task is suspended. */
  tl_test_context(&co_ctx, co_stack, STACK, co_rebinds, &main_ctx);
  ck_assert_int_eq(destroyed, 1);
  ck_assert_ptr_eq(destroyed_value, &abandoned_value);
}
END_TEST

/* ---- a context made again after its task finished ---- */

static uint64_t life_ids[64];
static int life_n;
static int life_values[64];

static void co_one_life(void)
{
  ck_assert_ptr_null(tl_get(key)); /* nothing left from the task before */
  life_ids[life_n] = tl_task_id(tl_current());
  tl_set(key, &life_values[life_n]);
  life_n++;
}

/* The loop most programs run: each task is made in the ucontext_t and on
 * the stack of the one before, after that one finished. Every life is a
 * task of its own, its values are destroyed once, at its end, and the
 * root is current again after each. */
START_TEST(test_remade_after_finish)
{
  uint64_t root = tl_task_id(tl_current());
  life_n = 0;
  for (int i = 0; i < 64; i++) {
    tl_test_context(&co_ctx, co_stack, STACK, co_one_life, &main_ctx);
    swapcontext(&main_ctx, &co_ctx);
    ck_assert_uint_eq(tl_task_id(tl_current()), root);
    ck_assert_int_eq(destroyed, i + 1);
    ck_assert_ptr_eq(destroyed_value, &life_values[i]);
  }
  ck_assert_int_eq(life_n, 64);
  for (int i = 0; i < 64; i++) {
    ck_assert_uint_ne(life_ids[i], root);
    if (i > 0)
      ck_assert_uint_gt(life_ids[i], life_ids[i - 1]);
  }
}
END_TEST

/* ---- the common loop on several threads at once ---- */

#define LOOP_THREADS 4
#define LOOP_LIVES 20000

struct looper {
  ucontext_t main, co;
  char *stack;
  uint64_t *ids;
  int n, bad;
  uint64_t root;
};

static __thread struct looper *this_looper;

static void looper_life(void)
{
  struct looper *l = this_looper;
  uint64_t id = tl_task_id(tl_current());
  if (id == l->root || tl_get(key) != NULL)
    l->bad++;
  tl_set(key, &l->ids[l->n]);
  l->ids[l->n++] = id;
  if (tl_get(key) != &l->ids[l->n - 1])
    l->bad++;
}

static void *looper_thread(void *arg)
{
  struct looper *l = arg;
  this_looper = l;
  l->root = tl_task_id(tl_current());
  for (int i = 0; i < LOOP_LIVES; i++) {
    tl_test_context(&l->co, l->stack, STACK, looper_life, &l->main);
    swapcontext(&l->main, &l->co);
    if (tl_task_id(tl_current()) != l->root)
      l->bad++;
  }
  return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Threads each making tasks in their own context and on their own stack,
 * the loop whose records are reused in place without a lock (task/make.c,
 * remake): every task is a task of its own, with an id no other task of
 * any thread has, its own value, and its destructor run once. */
START_TEST(test_common_loop_on_threads)
{
  static struct looper l[LOOP_THREADS];
  static uint64_t all[LOOP_THREADS * LOOP_LIVES];
  pthread_t t[LOOP_THREADS];
  for (int i = 0; i < LOOP_THREADS; i++) {
    l[i].stack = malloc(STACK);
    l[i].ids = &all[i * LOOP_LIVES];
    l[i].n = l[i].bad = 0;
    ck_assert_ptr_nonnull(l[i].stack);
    ck_assert_int_eq(pthread_create(&t[i], NULL, looper_thread, &l[i]), 0);
  }
  for (int i = 0; i < LOOP_THREADS; i++) {
    ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    ck_assert_int_eq(l[i].n, LOOP_LIVES);
    ck_assert_int_eq(l[i].bad, 0);
    free(l[i].stack);
  }
  ck_assert_int_eq(__atomic_load_n(&destroyed, __ATOMIC_RELAXED), LOOP_THREADS * LOOP_LIVES);
  qsort(all, LOOP_THREADS * LOOP_LIVES, sizeof all[0], cmp_u64);
  for (int i = 1; i < LOOP_THREADS * LOOP_LIVES; i++)
    ck_assert_uint_ne(all[i], all[i - 1]);
}
END_TEST

static void never_runs(void)
{
  ck_abort_msg("never started");
}

/* Millions of contexts made and never run, on reused addresses,
 * keep the shim's memory flat. */
START_TEST(test_never_started_memory_flat)
{
  static ucontext_t ctx[2];
  for (int i = 0; i < 100000; i++)
    tl_test_context(&ctx[i & 1], co_stack, STACK, never_runs, NULL);
  /* Under qemu-user, a tenth: ten million take longer than the timeout. */
  const int n = TL_TEST_EMULATED ? 1000000 : 10000000;
  long before = tl_test_rss_kib();
  for (int i = 0; i < n; i++) {
    ctx[i & 1].uc_stack.ss_sp = co_stack;
    ctx[i & 1].uc_stack.ss_size = STACK;
    makecontext(&ctx[i & 1], never_runs, 0);
  }
  long after = tl_test_rss_kib();
  /* Under qemu-user the resident set is the emulator's too, whose buffer
   * of translated code grew by 2 MiB in some runs of a loaded machine:
   * the bound is 4 MiB there, still far below what a record kept per
   * context would take (112 bytes each, 100 MiB). */
  const long bound_kib = TL_TEST_EMULATED ? 4096 : 1024;
  ck_assert_msg(after - before < bound_kib, "RSS grew by %ld KiB over %d contexts", after - before, n);
}
END_TEST

/* The never-started loop of makecontext renews the record in place: the
 * live-task dump must show, after each makecontext of the same context on
 * the same stack, one never-started task with a new id, the running task
 * as its maker, and the function of the last call. The makers alternate
 * between a coroutine and the thread's own task. */
static ucontext_t remade_ctx;
static char remade_stack[STACK] __attribute__((aligned(16)));
static uint64_t remade_ids[6], remade_makers[6];
static int remade_entry_ok[6];

static void never_runs_either(void)
{
  ck_abort_msg("never started");
}

static void remake_and_dump(int i)
{
  remade_ctx.uc_stack.ss_sp = remade_stack;
  remade_ctx.uc_stack.ss_size = STACK;
  remade_ctx.uc_link = NULL;
  makecontext(&remade_ctx, i % 2 ? never_runs_either : never_runs, 0);
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(tl_dump(fileno(f)), 0);
  rewind(f);
  char line[512];
  int tasks = 0;
  const char *want = i % 2 ? "entry: never_runs_either " : "entry: never_runs ";
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned long long id, maker;
    if (sscanf(line, "tasklocal: task %llu: never started; made by task %llu", &id, &maker) == 2) {
      remade_ids[i] = id;
      remade_makers[i] = maker;
      tasks++;
    }
    if (strstr(line, "tasklocal:   entry: ") == line)
      remade_entry_ok[i] |= strstr(line, want) != NULL;
  }
  fclose(f);
  ck_assert_int_eq(tasks, 1);
}

static void remaker(void)
{
  for (int i = 0; i < 6; i += 2) {
    remake_and_dump(i);
    swapcontext(&co_ctx, &main_ctx);
  }
}

START_TEST(test_never_started_renewed_in_place)
{
  uint64_t root = tl_task_id(tl_current());
  ck_assert_int_eq(getcontext(&remade_ctx), 0);
  tl_test_context(&co_ctx, co_stack, STACK, remaker, &main_ctx);
  uint64_t co = 0;
  for (int i = 1; i < 6; i += 2) {
    swapcontext(&main_ctx, &co_ctx);
    if (co == 0)
      co = remade_makers[0];
    remake_and_dump(i);
  }
  ck_assert_uint_ne(co, root);
  for (int i = 0; i < 6; i++) {
    ck_assert_msg(remade_entry_ok[i], "make %d: the dump does not show the last function", i);
    ck_assert_uint_eq(remade_makers[i], i % 2 ? root : co);
    if (i > 0)
      ck_assert_uint_gt(remade_ids[i], remade_ids[i - 1]);
  }
  swapcontext(&main_ctx, &co_ctx);         /* the coroutine returns */
}
END_TEST

/* ---- many arguments ---- */

static uint64_t got[12];
static void co_args(int a0, int a1, int a2, int a3, int a4, int a5, int a6, int a7, void *p8, int a9,
                    int a10, int a11)
{
  int v[] = {a0, a1, a2, a3, a4, a5, a6, a7, 0, a9, a10, a11};
  for (int i = 0; i < 12; i++)
    got[i] = (uint64_t)v[i];
  got[8] = (uint64_t)(uintptr_t)p8;
}

START_TEST(test_twelve_arguments)
{
  static int marker;
  ck_assert_int_eq(getcontext(&co_ctx), 0);
  co_ctx.uc_stack.ss_sp = co_stack;
  co_ctx.uc_stack.ss_size = STACK;
  co_ctx.uc_link = &main_ctx;
  makecontext(&co_ctx, (void (*)(void))co_args, 12, 10, 11, 12, 13, 14, 15, 16, 17, &marker, 19, 20, 21);
  swapcontext(&main_ctx, &co_ctx);
  for (int i = 0; i < 12; i++)
    if (i != 8)
      ck_assert_uint_eq(got[i], (uint64_t)(10 + i));
  ck_assert_uint_eq(got[8], (uint64_t)(uintptr_t)&marker);
}
END_TEST

/* ---- migration: made on one thread, resumed on another ---- */

static uint64_t mig_ids[2];
static long mig_threads[2];
static ucontext_t thread_ctx;

static void co_migrates(void)
{
  mig_ids[0] = tl_task_id(tl_current());
  mig_threads[0] = syscall(SYS_gettid); /* pthread_self is "const": the compiler may cache it across the switch */
  tl_set(key, &co_value);
  swapcontext(&co_ctx, &thread_ctx);
  mig_ids[1] = tl_task_id(tl_current());
  mig_threads[1] = syscall(SYS_gettid);
  ck_assert_ptr_eq(tl_get(key), &co_value);
}

/* Each worker resumes the task once; the first one waits for the second to
 * finish before it exits, so that both threads are alive (and distinct) at
 * once. */
static sem_t resumed, release;
static void *resume_once(void *arg)
{
  int mine = 0;
  tl_set(key, &mine);
  swapcontext(&thread_ctx, &co_ctx);
  sem_post(&resumed);
  if (arg != NULL)
    sem_wait(&release);
  return tl_get(key) == &mine ? NULL : (void *)1;
}

START_TEST(test_migration)
{
  tl_test_context(&co_ctx, co_stack, STACK, co_migrates, &thread_ctx);
  pthread_t a, b;
  void *ra, *rb;
  sem_init(&resumed, 0, 0);
  sem_init(&release, 0, 0);
  ck_assert_int_eq(pthread_create(&a, NULL, resume_once, &resumed), 0);
  sem_wait(&resumed);
  ck_assert_int_eq(pthread_create(&b, NULL, resume_once, NULL), 0);
  ck_assert_int_eq(pthread_join(b, &rb), 0);
  sem_post(&release);
  ck_assert_int_eq(pthread_join(a, &ra), 0);
  ck_assert_ptr_null(ra);
  ck_assert_ptr_null(rb);
  ck_assert_int_ne(mig_threads[0], mig_threads[1]);
  ck_assert_uint_eq(mig_ids[0], mig_ids[1]);
  ck_assert_int_eq(destroyed, 3); /* the task and the two threads' roots */
}
END_TEST

/* ---- switches the shim never sees ---- */

static sigjmp_buf main_jb, co_jb;
static uint64_t jmp_ids[2];

static void co_jumps(void)
{
  tl_set(key, &co_value);
  if (sigsetjmp(co_jb, 0) == 0)
    swapcontext(&co_ctx, &main_ctx);
  /* Reached by siglongjmp from main: the shim saw no switch. */
  jmp_ids[0] = tl_task_id(tl_current());
  ck_assert_ptr_eq(tl_get(key), &co_value);
  siglongjmp(main_jb, 1);
}

START_TEST(test_unseen_switches)
{
  int root_value;
  uint64_t root = tl_task_id(tl_current());
  tl_set(key, &root_value);
  tl_test_context(&co_ctx, co_stack, STACK, co_jumps, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  if (sigsetjmp(main_jb, 0) == 0)
    siglongjmp(co_jb, 1);
  jmp_ids[1] = tl_task_id(tl_current());
  ck_assert_uint_eq(jmp_ids[1], root);
  ck_assert_uint_ne(jmp_ids[0], root);
  ck_assert_ptr_eq(tl_get(key), &root_value);
}
END_TEST

/* ---- reads from a signal handler ---- */

static void *in_handler;
static void on_signal(int sig)
{
  (void)sig;
  in_handler = tl_get(key);
}

static void co_signals(void)
{
  tl_set(key, &co_value);
  raise(SIGUSR1);
}

START_TEST(test_signal_handler_reads)
{
  int root_value;
  signal(SIGUSR1, on_signal);
  tl_set(key, &root_value);
  raise(SIGUSR1);
  ck_assert_ptr_eq(in_handler, &root_value);
  tl_test_context(&co_ctx, co_stack, STACK, co_signals, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_ptr_eq(in_handler, &co_value);
}
END_TEST

static void *thread_handler_read(void *arg)
{
  (void)arg;
  in_handler = &in_handler;
  raise(SIGUSR1); /* the first use of the library on this thread */
  return NULL;
}

START_TEST(test_signal_on_fresh_thread)
{
  signal(SIGUSR1, on_signal);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_handler_read, NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_ptr_null(in_handler);
}
END_TEST

/* ---- a deleted key's values get no destructor ---- */

static void co_binds(void)
{
  tl_set(key, &co_value);
}

START_TEST(test_deleted_key_no_destructor)
{
  tl_test_context(&co_ctx, co_stack, STACK, co_binds_and_yields, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_int_eq(tl_key_delete(key), 0);
  tl_test_context(&co_ctx, co_stack, STACK, co_binds, &main_ctx); /* abandons the first task */
  ck_assert_int_eq(destroyed, 0);
}
END_TEST

/* ---- fork: the child keeps the tasks and can use the library ---- */

static void co_yields_twice(void)
{
  tl_set(key, &co_value);
  swapcontext(&co_ctx, &main_ctx);
  co_ids[1] = tl_task_id(tl_current());
  co_ids[2] = tl_get(key) == &co_value;
}

static void *spin_switching(void *arg)
{
  /* Another thread switching while the main thread forks. */
  static ucontext_t m, c;
  static char stack[STACK];
  volatile int *stop = arg;
  while (!*stop) {
    getcontext(&c);
    c.uc_stack.ss_sp = stack;
    c.uc_stack.ss_size = STACK;
    c.uc_link = &m;
    makecontext(&c, co_binds, 0);
    swapcontext(&m, &c);
  }
  return NULL;
}

START_TEST(test_fork)
{
  volatile int stop = 0;
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, spin_switching, (void *)&stop), 0);
  tl_test_context(&co_ctx, co_stack, STACK, co_yields_twice, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  co_ids[0] = tl_task_id(tl_current());
  for (int i = 0; i < 20; i++) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
      tl_key_t k2;
      int ok = tl_key_create(&k2, NULL) == 0 && tl_set(k2, &co_value) == 0 && tl_get(k2) == &co_value;
      swapcontext(&main_ctx, &co_ctx); /* the suspended task resumes in the child */
      ok = ok && co_ids[1] != co_ids[0] && co_ids[2] == 1 && tl_task_id(tl_current()) == co_ids[0];
      /* Tasks that bind values, whose tables may be the ones the other
       * thread kept for itself when the fork came (alloc.c gives them to
       * everyone in the child). */
      for (int j = 0; j < 100 && ok; j++) {
        tl_test_context(&co_ctx, co_stack, STACK, co_binds, &main_ctx);
        ok = swapcontext(&main_ctx, &co_ctx) == 0;
      }
      _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
  }
  stop = 1;
  ck_assert_int_eq(pthread_join(t, NULL), 0);
}
END_TEST

/* ---- QEMU's way: every coroutine made in one local ucontext_t ---- */

struct qco {
  sigjmp_buf env;
  const char *name;
  const char *seen;
  uint64_t ids[2];
};

static sigjmp_buf q_main, *q_creator;
static struct qco *q_cur;

static void q_yield(struct qco *self)
{
  if (!sigsetjmp(self->env, 0))
    siglongjmp(q_main, 1);
}

static void q_enter(struct qco *c)
{
  q_cur = c;
  if (!sigsetjmp(q_main, 0))
    siglongjmp(c->env, 1);
}

static void q_trampoline(int lo, int hi)
{
  struct qco *self = (struct qco *)(((uintptr_t)(unsigned)hi << 32) | (unsigned)lo);
  if (!sigsetjmp(self->env, 0))
    siglongjmp(*q_creator, 1);
  self->ids[0] = tl_task_id(tl_current());
  tl_set(key, (void *)self->name);
  q_yield(self);
  self->ids[1] = tl_task_id(tl_current());
  self->seen = tl_get(key);
  for (;;)
    q_yield(self);
}

static void q_new(struct qco *co, char *stack)
{
  ucontext_t uc, old_uc; /* locals, as in QEMU: every coroutine is made here */
  sigjmp_buf old_env;
  getcontext(&uc);
  uc.uc_link = &old_uc;
  uc.uc_stack.ss_sp = stack;
  uc.uc_stack.ss_size = STACK;
  uintptr_t p = (uintptr_t)co;
  makecontext(&uc, (void (*)(void))q_trampoline, 2, (int)(unsigned)p, (int)(unsigned)(p >> 32));
  q_creator = &old_env;
  if (!sigsetjmp(old_env, 0))
    swapcontext(&old_uc, &uc);
}

START_TEST(test_qemu_style_creation)
{
  static char stack_a[STACK], stack_b[STACK];
  static struct qco a = {.name = "A"}, b = {.name = "B"};
  q_new(&a, stack_a);
  q_enter(&a);
  q_new(&b, stack_b); /* the same ucontext_t address: A must not be abandoned */
  q_enter(&b);
  q_enter(&a);
  q_enter(&b);
  ck_assert_int_eq(destroyed, 0);
  ck_assert_str_eq(a.seen, "A");
  ck_assert_str_eq(b.seen, "B");
  ck_assert_uint_eq(a.ids[0], a.ids[1]);
  ck_assert_uint_eq(b.ids[0], b.ids[1]);
  ck_assert_uint_ne(a.ids[0], b.ids[0]);
}
END_TEST

/* ---- the inline read path's view of the running task ----
 *
 * tl_get here is the header's inline path, which trusts a per-thread view
 * of the running task that the library empties whenever the task, the
 * switch state or the task's table may change. Each step below changes one
 * of them and then reads twice (the first read refills the view, the
 * second uses it): a view left stale returns the other task's value. */

static ucontext_t view_a_ctx, view_b_ctx;
static char view_b_stack[STACK] __attribute__((aligned(16)));
static int va, vb, vb2, seen_in_destructor_ok;
static tl_key_t view_key2;

static void expect_twice(void *want)
{
  ck_assert_ptr_eq(tl_get(key), want);
  ck_assert_ptr_eq(tl_get(key), want);
  ck_assert_ptr_eq((tl_get)(key), want);
}

static void view_b(void)
{
  expect_twice(NULL);
  tl_set(key, &vb);
  expect_twice(&vb);
  swapcontext(&view_b_ctx, &view_a_ctx);
  expect_twice(&vb);
  /* Enough keys to replace the table while the view shows it. */
  for (int i = 0; i < 64; i++) {
    tl_key_t k;
    ck_assert_int_eq(tl_key_create(&k, NULL), 0);
    ck_assert_int_eq(tl_set(k, &vb2), 0);
  }
  expect_twice(&vb);
  tl_unset(key);
  expect_twice(NULL);
  tl_set(key, &vb);
  swapcontext(&view_b_ctx, &view_a_ctx);
}

static void read_in_destructor(void *v)
{
  /* Runs for the abandoned task, on the maker's stack: reads see the
   * abandoned task's values (its own already cleared, as pthreads do, the
   * other key's cleared or not yet), never the maker's (&va). */
  void *other = tl_get(key);
  seen_in_destructor_ok = v == &vb2 && tl_get(view_key2) == NULL && (other == NULL || other == &vb) &&
                          (tl_get)(key) == other;
}

START_TEST(test_inline_view_follows_the_task)
{
  ck_assert_int_eq(tl_key_create(&view_key2, read_in_destructor), 0);
  tl_set(key, &va);
  expect_twice(&va);
  tl_test_context(&view_b_ctx, view_b_stack, STACK, view_b, &main_ctx);
  swapcontext(&view_a_ctx, &view_b_ctx);
  expect_twice(&va);
  swapcontext(&view_a_ctx, &view_b_ctx);
  expect_twice(&va);
  /* b is suspended with two values; making its context again abandons
   * it, and its destructors run here, on this stack. */
  ck_assert_int_eq(destroyed, 0);
  tl_test_context(&view_b_ctx, view_b_stack, STACK, view_b, &main_ctx);
  ck_assert(!seen_in_destructor_ok); /* view_key2 was never set in b */
  expect_twice(&va);
  tl_unset(key);
  expect_twice(NULL);
}
END_TEST

static void view_b_with_key2(void)
{
  tl_set(key, &vb);
  tl_set(view_key2, &vb2);
  swapcontext(&view_b_ctx, &view_a_ctx);
}

START_TEST(test_inline_view_in_destructors)
{
  ck_assert_int_eq(tl_key_create(&view_key2, read_in_destructor), 0);
  tl_set(key, &va);
  tl_test_context(&view_b_ctx, view_b_stack, STACK, view_b_with_key2, &main_ctx);
  swapcontext(&view_a_ctx, &view_b_ctx);
  expect_twice(&va);
  seen_in_destructor_ok = 0;
  tl_test_context(&view_b_ctx, view_b_stack, STACK, view_b_with_key2, &main_ctx); /* abandons the first */
  ck_assert(seen_in_destructor_ok);
  expect_twice(&va);
  tl_unset(key);
}
END_TEST

/* The view also keeps a copy of the last key the library read and its
 * value, so that a loop reading one key makes no load from the table.
 * Every change of that key's value in place (rebound, unbound, cleared
 * before its destructor runs) must forget the copy first: each step below
 * reads after the change, and a copy left behind returns the old value. */
static int copy_a, copy_b, copy_in_destructor_ok;
static tl_key_t copy_key;

static void copy_read_in_destructor(void *v)
{
  /* The task's own value is cleared before its destructor runs. */
  copy_in_destructor_ok = v == &copy_a && tl_get(copy_key) == NULL && (tl_get)(copy_key) == NULL;
}

static void copy_task(void)
{
  ck_assert_int_eq(tl_set(copy_key, &copy_a), 0);
  ck_assert_ptr_eq((tl_get)(copy_key), &copy_a); /* the library reads it: the view keeps the copy */
  ck_assert_ptr_eq(tl_get(copy_key), &copy_a);
  ck_assert_int_eq(tl_set(copy_key, &copy_b), 0); /* in place: the table is not replaced */
  ck_assert_ptr_eq(tl_get(copy_key), &copy_b);
  ck_assert_int_eq(tl_unset(copy_key), 0);
  ck_assert_ptr_null(tl_get(copy_key));
  ck_assert_int_eq(tl_set(copy_key, &copy_b), 0);
  ck_assert_ptr_eq(tl_get(copy_key), &copy_b);
  /* Another key read between two reads of this one, through the table. */
  ck_assert_int_eq(tl_set(key, &copy_a), 0);
  ck_assert_ptr_eq(tl_get(key), &copy_a);
  ck_assert_ptr_eq(tl_get(copy_key), &copy_b);
  /* The zero key is never a copy's key, filled or not. */
  ck_assert_ptr_null(tl_get(0));
  swapcontext(&co_ctx, &main_ctx);
  ck_assert_ptr_eq((tl_get)(copy_key), &copy_b); /* refilled after the switch */
  ck_assert_ptr_eq(tl_get(copy_key), &copy_b);
  ck_assert_ptr_null(tl_get(0));
  ck_assert_int_eq(tl_set(copy_key, &copy_a), 0);
  ck_assert_ptr_eq(tl_get(copy_key), &copy_a);
  /* Returns with copy_key bound and copied: its destructor reads it. */
}

START_TEST(test_inline_copy_of_last_key)
{
  ck_assert_int_eq(tl_key_create(&copy_key, copy_read_in_destructor), 0);
  ck_assert_int_eq(tl_set(copy_key, &copy_b), 0);
  ck_assert_ptr_eq((tl_get)(copy_key), &copy_b);
  tl_test_context(&co_ctx, co_stack, STACK, copy_task, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  ck_assert_ptr_eq(tl_get(copy_key), &copy_b); /* the root's own, not the task's copy */
  ck_assert_int_eq(tl_set(copy_key, &copy_a), 0);
  ck_assert_ptr_eq(tl_get(copy_key), &copy_a);
  ck_assert_int_eq(tl_set(copy_key, &copy_b), 0);
  copy_in_destructor_ok = 0;
  swapcontext(&main_ctx, &co_ctx); /* the task returns */
  ck_assert(copy_in_destructor_ok);
  ck_assert_ptr_eq(tl_get(copy_key), &copy_b);
  ck_assert_int_eq(tl_unset(copy_key), 0);
  ck_assert_ptr_null(tl_get(copy_key));
  ck_assert_int_eq(tl_key_delete(copy_key), 0);
}
END_TEST

/* ---- LeakSanitizer sees what suspended tasks hold ---- */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>

static void co_holds_malloc(void)
{
  void *p = malloc(24);
  ck_assert_ptr_nonnull(p);
  tl_set(key, p);
  swapcontext(&co_ctx, &main_ctx);
}

START_TEST(test_lsan_sees_task_values)
{
  void *p = malloc(16);
  ck_assert_ptr_nonnull(p);
  tl_set(key, p);
  tl_test_context(&co_ctx, co_stack, STACK, co_holds_malloc, &main_ctx);
  swapcontext(&main_ctx, &co_ctx);
  /* The values are reachable only through the library's records, kept in
   * mmap'd pages that the library registers with LSan. */
  ck_assert_int_eq(__lsan_do_recoverable_leak_check(), 0);
}
END_TEST
#endif

static Suite *tracking_suite(void)
{
  Suite *s = suite_create("tracking");
  TCase *tc = tcase_create("tracking");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_identity_across_switches);
  tcase_add_test(tc, test_inline_view_follows_the_task);
  tcase_add_test(tc, test_inline_view_in_destructors);
  tcase_add_test(tc, test_inline_copy_of_last_key);
  tcase_add_test(tc, test_destructor_rounds);
  tcase_add_test(tc, test_abandon_destroys_values);
  tcase_add_test(tc, test_remade_after_finish);
  tcase_add_test(tc, test_common_loop_on_threads);
  tcase_add_test(tc, test_never_started_memory_flat);
  tcase_add_test(tc, test_never_started_renewed_in_place);
  tcase_add_test(tc, test_twelve_arguments);
  tcase_add_test(tc, test_migration);
  tcase_add_test(tc, test_unseen_switches);
  tcase_add_test(tc, test_signal_handler_reads);
  tcase_add_test(tc, test_signal_on_fresh_thread);
  tcase_add_test(tc, test_deleted_key_no_destructor);
  tcase_add_test(tc, test_fork);
  tcase_add_test(tc, test_qemu_style_creation);
#if defined(__SANITIZE_ADDRESS__)
  tcase_add_test(tc, test_lsan_sees_task_values);
#endif
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(tracking_suite());
}
