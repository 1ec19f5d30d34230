/* Signals (doc/tracking.md, Threads and signals): tl_get, tl_current and tl_lookup are
 * async-signal-safe, also on a thread that never used the library, and a
 * signal that arrives in the middle of a switch neither sees a wrong task
 * nor leaves a wrong one behind. A handler that binds values (which
 * allocates) amid the same on its thread leaves the allocator whole.
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
  /* volatile: i is live across getcontext, which returns twice like
   * setjmp (gcc for aarch64 warns, -Wclobbered). */
  for (volatile int i = 0; i < NCO; i++) {
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

/* ---- small blocks made and freed by a handler, amid the same on its thread ---- */

/* Every task life below binds LIFE_KEYS values, which makes a value table
 * of the smallest size and frees it at the task's end; the handler closes
 * the loop and binds LOOP_KEYS thread-scope values, more than fit in that
 * size, so it frees and makes tables of both sizes in the middle of
 * whatever the life was doing, allocations and frees included. The
 * thread's cache of freed blocks must come out of it whole: a block given
 * out twice would show one table's values in the other's place. */
#define LIFE_KEYS 4
#define LOOP_KEYS 6

static tl_key_t life_keys[LIFE_KEYS], loop_keys[LOOP_KEYS];
static int life_vals[LIFE_KEYS], loop_vals[LOOP_KEYS];
static atomic_long life_destroyed, loop_destroyed, loop_bound, handled, handler_nomem, handler_bad;
static ucontext_t life_main, life_ctx;
static char life_stack[STACK] __attribute__((aligned(16)));
static long life_bad;

static void count_life(void *v)
{
  (void)v;
  atomic_fetch_add_explicit(&life_destroyed, 1, memory_order_relaxed);
}

static void count_loop(void *v)
{
  (void)v;
  atomic_fetch_add_explicit(&loop_destroyed, 1, memory_order_relaxed);
}

/* Each handler finds the thread-scope values that the one before it bound
 * (their table stayed in use in between, while lives went on), closes the
 * loop, and binds them again. */
static int loop_pending[LOOP_KEYS];

static void check_loop_values(void)
{
  for (int i = 0; i < LOOP_KEYS; i++)
    if (loop_pending[i] && tl_get(loop_keys[i]) != &loop_vals[i])
      atomic_fetch_add_explicit(&handler_bad, 1, memory_order_relaxed);
  tl_loop_close();
  for (int i = 0; i < LOOP_KEYS; i++) {
    loop_pending[i] = 0;
    if (tl_get(loop_keys[i]) != NULL)
      atomic_fetch_add_explicit(&handler_bad, 1, memory_order_relaxed);
  }
}

static void on_prof_blocks(int sig)
{
  (void)sig;
  int saved = errno;
  if (!pthread_equal(pthread_self(), switching_thread)) {
    errno = saved;
    return;
  }
  check_loop_values();
  for (int i = 0; i < LOOP_KEYS; i++) {
    int rc = tl_set(loop_keys[i], &loop_vals[i]);
    loop_pending[i] = rc == 0;
    if (rc == 0)
      atomic_fetch_add_explicit(&loop_bound, 1, memory_order_relaxed);
    else if (rc == ENOMEM)                 /* the interrupted code held a pool's lock */
      atomic_fetch_add_explicit(&handler_nomem, 1, memory_order_relaxed);
    else
      atomic_fetch_add_explicit(&handler_bad, 1, memory_order_relaxed);
  }
  atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
  errno = saved;
}

static void short_life(void)
{
  for (int i = 0; i < LIFE_KEYS; i++)
    if (tl_set(life_keys[i], &life_vals[i]) != 0)
      life_bad++;
  for (volatile int spin = 0; spin < 200; spin++)
    ;
  for (int i = 0; i < LIFE_KEYS; i++)
    if (tl_get(life_keys[i]) != &life_vals[i])
      life_bad++;
}

START_TEST(test_handler_blocks_amid_lives)
{
  for (int i = 0; i < LIFE_KEYS; i++)
    ck_assert_int_eq(tl_key_create(&life_keys[i], count_life), 0);
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_THREAD;
  a.destroy = count_loop;
  for (int i = 0; i < LOOP_KEYS; i++)
    ck_assert_int_eq(tl_key_create_attr(&loop_keys[i], &a), 0);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_prof_blocks;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGPROF, &sa, NULL), 0);
  switching_thread = pthread_self();
  atomic_store(&signaling, 1);
  pthread_t sender;
  ck_assert_int_eq(pthread_create(&sender, NULL, signaler, NULL), 0);
  double start = tl_test_now_s();
  long lives = 0;
  /* A second at least, and until enough handlers ran: on a loaded
   * machine the sender gets little time (20 seconds at most). */
  while (tl_test_now_s() - start < 1.0 || (atomic_load(&handled) <= 200 && tl_test_now_s() - start < 20.0)) {
    for (int j = 0; j < 1000; j++, lives++) {
      tl_test_context(&life_ctx, life_stack, STACK, short_life, &life_main);
      ck_assert_int_eq(swapcontext(&life_main, &life_ctx), 0);
    }
  }
  atomic_store(&signaling, 0);
  ck_assert_int_eq(pthread_join(sender, NULL), 0);
  signal(SIGPROF, SIG_IGN);
  check_loop_values();
  fprintf(stderr, "handler blocks: %ld lives, %ld handlers, %ld binds refused for a held lock\n", lives,
          atomic_load(&handled), atomic_load(&handler_nomem));
  ck_assert_int_gt(atomic_load(&handled), 100);
  ck_assert_int_eq(life_bad, 0);
  ck_assert_int_eq(atomic_load(&handler_bad), 0);
  ck_assert_int_eq(atomic_load(&life_destroyed), lives * LIFE_KEYS);
  ck_assert_int_eq(atomic_load(&loop_destroyed), atomic_load(&loop_bound));
}
END_TEST

static Suite *signals_suite(void)
{
  Suite *s = suite_create("signals");
  TCase *tc = tcase_create("signals");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_signal_mid_switch);
  tcase_add_test(tc, test_first_use_in_handler);
  tcase_add_test(tc, test_handler_blocks_amid_lives);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(signals_suite());
}
