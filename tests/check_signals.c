/* Signals (SPEC 2.5 and 7): tl_get, tl_current and tl_lookup are
 * async-signal-safe, also on a thread that never used the library, and a
 * signal that arrives in the middle of a switch neither sees a wrong task
 * nor leaves a wrong one behind.
 *
 * The handler runs on the stack of whatever it interrupted (no
 * sigaltstack), so its own stack pointer says which task was running: the
 * one whose stack holds it. The library must answer with that task and
 * its values, whether the signal came before, during or after the switch
 * bookkeeping. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/time.h>
#include <tasklocal.h>
#include <ucontext.h>
#include <unistd.h>

#define STACK (64 * 1024)
#define NCO 3

static tl_key_t key;
static ucontext_t main_ctx, co_ctx[NCO];
static char stacks[NCO][STACK] __attribute__((aligned(16)));
static int values[NCO + 1];                /* values[NCO] is main's */
static _Atomic uint64_t ids[NCO + 1];
static atomic_long checked, wrong_task, wrong_value, outside;
static volatile int stop_switching;

/* Which task's stack holds sp: a coroutine's index, or NCO for main's own
 * stack (anything else). */
static int stack_owner(uintptr_t sp)
{
  for (int i = 0; i < NCO; i++) {
    uintptr_t lo = (uintptr_t)stacks[i], hi = lo + STACK;
    if (sp >= lo && sp < hi)
      return i;
  }
  return NCO;
}

static pthread_t switching_thread;

static void on_prof(int sig)
{
  (void)sig;
  int saved = errno;
  /* The timer's signals go to whichever thread uses the processor, the
   * signal sender's included: only the switching thread is checked. */
  if (!pthread_equal(pthread_self(), switching_thread)) {
    errno = saved;
    return;
  }
  char here;
  int owner = stack_owner((uintptr_t)&here);
  uint64_t want = atomic_load_explicit(&ids[owner], memory_order_relaxed);
  if (want != 0) {
    tl_task_t *t = tl_current();
    void *v = tl_get(key);
    void *lv = NULL;
    int rc = tl_lookup(key, &lv);
    if (tl_task_id(t) != want)
      atomic_fetch_add(&wrong_task, 1);
    else if (v != &values[owner] || rc != 0 || lv != v)
      atomic_fetch_add(&wrong_value, 1);
    atomic_fetch_add(&checked, 1);
  } else {
    atomic_fetch_add(&outside, 1);
  }
  errno = saved;
}

/* Coroutine i hands over to i + 1; the last one goes back to main. Both
 * patterns (symmetric and asymmetric) are interrupted. */
static void co(int i)
{
  ck_assert_int_eq(tl_set(key, &values[i]), 0);
  atomic_store(&ids[i], tl_task_id(tl_current()));
  for (;;) {
    ucontext_t *next = i + 1 < NCO ? &co_ctx[i + 1] : &main_ctx;
    swapcontext(&co_ctx[i], next);
    /* After every switch this task is itself again. */
    ck_assert_uint_eq(tl_task_id(tl_current()), atomic_load(&ids[i]));
    ck_assert_ptr_eq(tl_get(key), &values[i]);
    if (stop_switching)
      return;
  }
}

static void make_coroutines(void)
{
  for (int i = 0; i < NCO; i++) {
    ck_assert_int_eq(getcontext(&co_ctx[i]), 0);
    co_ctx[i].uc_stack.ss_sp = stacks[i];
    co_ctx[i].uc_stack.ss_size = STACK;
    co_ctx[i].uc_link = &main_ctx;
    makecontext(&co_ctx[i], (void (*)(void))co, 1, i);
  }
}

/* Signals from another thread, as fast as it can send them: the timer
 * alone gives a few hundred per second. */
static atomic_int signaling;

static void *signaler(void *arg)
{
  (void)arg;
  while (atomic_load(&signaling)) {
    pthread_kill(switching_thread, SIGPROF);
    for (volatile int spin = 0; spin < 2000; spin++)
      ;
  }
  return NULL;
}

START_TEST(test_signal_mid_switch)
{
  ck_assert_int_eq(tl_key_create(&key, NULL), 0);
  ck_assert_int_eq(tl_set(key, &values[NCO]), 0);
  atomic_store(&ids[NCO], tl_task_id(tl_current()));
  make_coroutines();
  /* The first round starts the coroutines; signals come after, so that
   * every stack they land on belongs to a started task. */
  ck_assert_int_eq(swapcontext(&main_ctx, &co_ctx[0]), 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prof;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGPROF, &sa, NULL), 0);
  switching_thread = pthread_self();
  struct itimerval it = {{0, 50}, {0, 50}};
  ck_assert_int_eq(setitimer(ITIMER_PROF, &it, NULL), 0);
  atomic_store(&signaling, 1);
  pthread_t sender;
  ck_assert_int_eq(pthread_create(&sender, NULL, signaler, NULL), 0);
  double start = tl_test_now_s();
  long rounds = 0;
  while (tl_test_now_s() - start < 1.5) {
    for (int j = 0; j < 1000; j++) {
      swapcontext(&main_ctx, &co_ctx[0]);
      ck_assert_uint_eq(tl_task_id(tl_current()), atomic_load(&ids[NCO]));
      ck_assert_ptr_eq(tl_get(key), &values[NCO]);
    }
    rounds += 1000;
  }
  atomic_store(&signaling, 0);
  ck_assert_int_eq(pthread_join(sender, NULL), 0);
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &off, NULL);
  stop_switching = 1;
  for (int i = 0; i < NCO; i++)
    swapcontext(&main_ctx, &co_ctx[i]);
  fprintf(stderr, "signal mid-switch: %ld rounds, %ld signals checked, %ld wrong task, %ld wrong value\n",
          rounds, atomic_load(&checked), atomic_load(&wrong_task), atomic_load(&wrong_value));
  ck_assert_int_gt(atomic_load(&checked), 100);
  ck_assert_int_eq(atomic_load(&wrong_task), 0);
  ck_assert_int_eq(atomic_load(&wrong_value), 0);
}
END_TEST

/* ---- a thread whose first use of the library is in a signal handler ---- */

static tl_key_t fresh_key;
static _Atomic int handler_ran;
static atomic_long fresh_bad;

static void on_usr1(int sig)
{
  (void)sig;
  int saved = errno;
  void *v = (void *)1;
  tl_task_t *t = tl_current();
  if (t == NULL || tl_task_id(t) == 0)
    atomic_fetch_add(&fresh_bad, 1);
  if (tl_get(fresh_key) != NULL || tl_lookup(fresh_key, &v) != ENOENT)
    atomic_fetch_add(&fresh_bad, 1);
  atomic_store(&handler_ran, 1);
  errno = saved;
}

static void *fresh_thread(void *arg)
{
  (void)arg;
  while (!atomic_load(&handler_ran))
    ;
  /* The state the handler made is this thread's: it goes on working. */
  uint64_t id = tl_task_id(tl_current());
  static __thread int mine;
  ck_assert_int_eq(tl_set(fresh_key, &mine), 0);
  ck_assert_ptr_eq(tl_get(fresh_key), &mine);
  ck_assert_uint_eq(tl_task_id(tl_current()), id);
  return NULL;
}

START_TEST(test_first_use_in_handler)
{
  ck_assert_int_eq(tl_key_create(&fresh_key, NULL), 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_usr1;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  for (int i = 0; i < 50; i++) {
    pthread_t t;
    atomic_store(&handler_ran, 0);
    ck_assert_int_eq(pthread_create(&t, NULL, fresh_thread, NULL), 0);
    ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
  }
  ck_assert_int_eq(atomic_load(&fresh_bad), 0);
}
END_TEST

static Suite *signals_suite(void)
{
  Suite *s = suite_create("signals");
  TCase *tc = tcase_create("signals");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_signal_mid_switch);
  tcase_add_test(tc, test_first_use_in_handler);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(signals_suite());
}
