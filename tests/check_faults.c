/* Fault injection (doc/reliability.md): every allocation the library makes is
 * failed in turn, through its test hook TASKLOCAL_TEST_FAIL_ALLOC=N (the
 * Nth allocation fails) or N+ (the Nth and every later one fail).
 *
 * - Unmodified programs (tests/programs, except the leak_* ones, which
 *   belong to the report suite) run under LD_PRELOAD of the shim and the
 *   probe plugin: stdout and exit status must be those of a run without the
 *   shim, with no crash and no hang. The affected task goes untracked; the
 *   plugin may log errors to its own log, which is not looked at here.
 * - API scenarios, in this same binary run again as a child process with
 *   "--scenario NAME": every call either succeeds or returns ENOMEM with
 *   the previous state intact, which the scenario checks after each call.
 * - A few scenarios run under valgrind: no definite leak on any failure.
 *
 * The hook is read once per process, at the library's first allocation, so
 * every run is a fresh exec. How many allocations a run makes is counted by
 * a run under tests/faults/alloccount.c (preloaded before the shim), and N
 * loops from 1 to that count plus one (the last run must change nothing).
 * With AddressSanitizer that counter cannot be preloaded (it would bypass
 * ASan's allocator), so the ASan build loops the scenarios up to a fixed
 * bound instead and leaves the programs to the plain build.
 *
 * Under emulation (the aarch64 suites under qemu-user) each run costs
 * 5 to 10 times as much, and a program that makes hundreds of allocations
 * (tests/programs/remade with leak reports on: 311) would take minutes.
 * There the points are sampled (fault_point_tested): the first ones, where
 * each allocation is a different path, then every Nth, then the last. The
 * native build still fails every one; what the emulated run adds is the
 * aarch64 code around those paths, which the sampled points reach. See
 * doc/testing.md. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/wait.h>
#include <tasklocal.h>
#include <ucontext.h>
#include <unistd.h>

#define SHIM_PATH TL_BUILD_DIR "/libtasklocal.so"
#define PLUGIN_PATH TL_BUILD_DIR "/tests/libtlprobe.so"
#define COUNTER_PATH TL_BUILD_DIR "/tests/libtlalloccount.so"
#define PROGRAM_DIR TL_BUILD_DIR "/tests/programs"

/* A run that takes longer has hung: the programs take milliseconds. */
#define RUN_DEADLINE_S 15.0
#define VALGRIND_DEADLINE_S 60.0

/* The ASan build's bound on N, above every count the plain build sees. */
#define ASAN_MAX_N 48

/* Under emulation: every point up to EMULATED_FIRST, and about as many
 * again spread over the rest. With 16 and 16, the suite took 7 minutes
 * under qemu-user on the busy 2-core machine, most of it in the API
 * scenarios; with 8 and 8, about half that. */
#define EMULATED_FIRST 8
#define EMULATED_SPREAD 8

/* Whether the run that fails allocation n of count (n runs to count + 1,
 * the run that fails nothing) is made. Everywhere but under emulation,
 * all of them are. */
static int fault_point_tested(long n, long count)
{
  if (!TL_TEST_EMULATED || count + 1 <= EMULATED_FIRST + EMULATED_SPREAD)
    return 1;
  long stride = (count + 1 - EMULATED_FIRST + EMULATED_SPREAD - 1) / EMULATED_SPREAD;
  return n <= EMULATED_FIRST || n >= count || n % stride == 0;
}

/* How many runs of count + 1 fault_point_tested makes, said on stderr when
 * it samples, so that the log shows what the emulated run left out. */
static void say_sampled(const char *what, const char *option, long count)
{
  long tested = 0;
  for (long n = 1; n <= count + 1; n++)
    tested += fault_point_tested(n, count);
  if (tested < count + 1)
    fprintf(stderr, "check_faults: %s%s%s: %ld of %ld allocation points tested under emulation\n", what,
            option != NULL ? " with " : "", option != NULL ? option : "", tested, count + 1);
}

/* ========================================================================
 * Running a child process
 * ======================================================================== */

/* Variables this suite sets itself; inherited ones would change a run. */
static const char *const ours[] = {"LD_PRELOAD=", "TLPROBE_LOG=", "TLCOUNT_FILE=", "TASKLOCAL_", NULL};

/* Runs argv with this process's environment less our variables, plus the
 * n_extra "NAME=value" strings of extra (NULL ones skipped). */
static void run_with(struct tl_test_proc *r, char *const argv[], const char *const *extra, size_t n_extra,
                     double deadline_s)
{
  const char *vars[16];
  ck_assert(n_extra < sizeof vars / sizeof vars[0]);
  for (size_t i = 0; i < n_extra; i++)
    vars[i] = extra[i];
  vars[n_extra] = TL_TEST_UNDER_ASAN ? TL_TEST_ASAN_ENV : NULL;
  char **env = tl_test_env(ours, vars, n_extra + 1);
  tl_test_exec(r, argv, env, deadline_s);
  free(env);
}

/* Runs argv with the counter preloaded before `preload` and returns how
 * many allocations the library made. */
static long count_allocations(char *const argv[], const char *preload, const char *const *extra, size_t n_extra,
                              struct tl_test_proc *r)
{
  char path[] = "/tmp/tlfaults-count-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
  close(fd);
  char pre[2048], file[256];
  snprintf(pre, sizeof pre, "LD_PRELOAD=%s%s%s", COUNTER_PATH, preload ? " " : "", preload ? preload : "");
  snprintf(file, sizeof file, "TLCOUNT_FILE=%s", path);
  const char *vars[16];
  size_t n = 0;
  vars[n++] = pre;
  vars[n++] = file;
  for (size_t i = 0; i < n_extra && n < 16; i++)
    vars[n++] = extra[i];
  run_with(r, argv, vars, n, RUN_DEADLINE_S);
  long count = 0;
  FILE *f = fopen(path, "r");
  if (f != NULL) {
    if (fscanf(f, "%ld", &count) != 1)
      count = 0;
    fclose(f);
  }
  unlink(path);
  return count;
}

/* ========================================================================
 * (a) Unmodified programs under the shim
 * ======================================================================== */

static char *program_names[64];
static int nprograms;

static int by_name(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_programs(void)
{
  DIR *d = opendir(PROGRAM_DIR);
  if (d == NULL)
    return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL && nprograms < 64) {
    /* heapbound prints where its allocation calls lead, which the shim
     * changes on purpose: its output is not the same alone. */
    if (e->d_name[0] == '.' || strncmp(e->d_name, "leak_", 5) == 0 || strncmp(e->d_name, "trap_", 5) == 0 ||
        strcmp(e->d_name, "heapbound") == 0)
      continue;
    program_names[nprograms++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(program_names, (size_t)nprograms, sizeof program_names[0], by_name);
}

/* Every allocation of one program failed in turn, alone (N) and with all
 * later ones (N+), with extra options in `opts` (NULL-terminated). */
static void program_under_faults(const char *name, const char *const *opts)
{
  char path[512], how[64], how_plain[64];
  snprintf(path, sizeof path, "%s/%s", PROGRAM_DIR, name);
  char *const argv[] = {path, NULL};
  size_t nopts = 0;
  while (opts[nopts] != NULL)
    nopts++;

  struct tl_test_proc plain, r;
  run_with(&plain, argv, NULL, 0, RUN_DEADLINE_S);
  tl_test_describe(&plain, how_plain, sizeof how_plain);
  ck_assert_msg(!plain.timed_out && WIFEXITED(plain.wstatus), "%s: alone it ended with %s", name, how_plain);

  char preload[1024];
  snprintf(preload, sizeof preload, "%s %s", SHIM_PATH, PLUGIN_PATH);
  const char *count_extra[8] = {"TLPROBE_LOG=/dev/null"};
  for (size_t i = 0; i < nopts && i < 6; i++)
    count_extra[i + 1] = opts[i];
  long count = count_allocations(argv, preload, count_extra, nopts + 1, &r);
  ck_assert_msg(!r.timed_out && r.wstatus == plain.wstatus && strcmp(r.out.data, plain.out.data) == 0,
                "%s: under the shim (counting allocations) it ended with %s, alone with %s", name,
                tl_test_describe(&r, how, sizeof how), how_plain);
  tl_test_proc_free(&r);
  ck_assert_msg(count > 0, "%s: no allocation of the library was counted: is %s built?", name, COUNTER_PATH);

  char pre_var[1100], fail_var[64];
  snprintf(pre_var, sizeof pre_var, "LD_PRELOAD=%s", preload);
  const char *vars[12] = {pre_var, "TLPROBE_LOG=/dev/null", fail_var};
  for (size_t i = 0; i < nopts && i < 8; i++)
    vars[i + 3] = opts[i];
  say_sampled(name, opts[0], count);
  for (long n = 1; n <= count + 1; n++) {
    if (!fault_point_tested(n, count))
      continue;
    for (int every = 0; every < 2; every++) {
      snprintf(fail_var, sizeof fail_var, "TASKLOCAL_TEST_FAIL_ALLOC=%ld%s", n, every ? "+" : "");
      run_with(&r, argv, vars, nopts + 3, RUN_DEADLINE_S);
      tl_test_describe(&r, how, sizeof how);
      ck_assert_msg(!r.timed_out && r.wstatus == plain.wstatus,
                    "%s with %s (of %ld allocations): ended with %s, alone with %s; stderr: %.400s", name,
                    fail_var, count, how, how_plain, r.err.data);
      ck_assert_msg(strcmp(r.out.data, plain.out.data) == 0,
                    "%s with %s (of %ld allocations): stdout differs from the run without the shim:\n"
                    "%.300s\n--- alone:\n%.300s",
                    name, fail_var, count, r.out.data, plain.out.data);
      tl_test_proc_free(&r);
    }
  }
  tl_test_proc_free(&plain);
}

START_TEST(test_program_faults)
{
  static const char *const opts[] = {NULL};
  ck_assert_msg(_i < nprograms, "no program %d", _i);
  program_under_faults(program_names[_i], opts);
}
END_TEST

/* The same with leak reports and the stats line on: the report paths
 * allocate too (backtraces, task names, kept tasks). The reports go to
 * stderr; stdout and the exit status must not change. */
START_TEST(test_program_faults_reporting)
{
  static const char *const opts[] = {"TASKLOCAL_LEAKS=1", "TASKLOCAL_STATS=1", NULL};
  ck_assert_msg(_i < nprograms, "no program %d", _i);
  program_under_faults(program_names[_i], opts);
}
END_TEST

/* ========================================================================
 * (b) API scenarios, run in a child process: "--scenario NAME"
 * ======================================================================== */

/* In the child a failed check prints where and exits with status 3; Check
 * is not running there. */
#define CHECK(cond)                                                                                \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      scenario_fail(__LINE__, #cond);                                                              \
  } while (0)
#define OK_OR_NOMEM(rc)                                                                            \
  do {                                                                                             \
    int rc_ = (rc);                                                                                \
    if (rc_ != 0 && rc_ != ENOMEM)                                                                 \
      scenario_fail_rc(__LINE__, #rc, rc_);                                                        \
  } while (0)

static void scenario_fail(int line, const char *what)
{
  fprintf(stderr, "check_faults.c:%d: check failed: %s\n", line, what);
  fflush(stderr);
  _exit(3);
}

static void scenario_fail_rc(int line, const char *what, int rc)
{
  fprintf(stderr, "check_faults.c:%d: %s returned %d (%s), expected 0 or ENOMEM\n", line, what, rc, strerror(rc));
  fflush(stderr);
  _exit(3);
}

/* ---- coroutines for the scenarios ---- */

#define CO_STACK (64 * 1024)

struct co {
  ucontext_t ctx, back;
  char *stack;
  int done;
};

static struct co *co_running;

static void co_body_wrapper(void);
static void (*co_body_fn)(void);

static void co_make(struct co *c, void (*fn)(void))
{
  if (c->stack == NULL)
    c->stack = malloc(CO_STACK);
  CHECK(c->stack != NULL);
  c->done = 0;
  CHECK(getcontext(&c->ctx) == 0);
  c->ctx.uc_stack.ss_sp = c->stack;
  c->ctx.uc_stack.ss_size = CO_STACK;
  c->ctx.uc_link = &c->back;
  co_body_fn = fn;
  makecontext(&c->ctx, co_body_wrapper, 0);
}

/* The body runs fn and marks the coroutine done; the function pointer is
 * read at the first resume, which follows co_make directly. */
static void co_body_wrapper(void)
{
  void (*fn)(void) = co_body_fn;
  fn();
  co_running->done = 1;
}

static void co_resume(struct co *c)
{
  struct co *prev = co_running;
  co_running = c;
  CHECK(swapcontext(&c->back, &c->ctx) == 0);
  co_running = prev;
}

static void co_yield(void)
{
  struct co *c = co_running;
  CHECK(swapcontext(&c->ctx, &c->back) == 0);
}

static void co_free(struct co *c)
{
  free(c->stack);
  c->stack = NULL;
}

static uint64_t root_id;

/* Whether the running coroutine is tracked as a task of its own. A task
 * whose record could not be made runs untracked and shares the root's
 * values: that is the documented degradation, and checks of isolation are
 * then skipped. */
static int tracked(void)
{
  uint64_t id = tl_task_id(tl_current());
  return id != 0 && id != root_id;
}

/* ---- values, with their expected state ---- */

#define NKEYS 24

struct model {
  tl_key_t key[NKEYS];
  int have_key[NKEYS];
  int bound[NKEYS];
  void *value[NKEYS];
};

static void model_verify(const struct model *m)
{
  for (int i = 0; i < NKEYS; i++) {
    if (!m->have_key[i])
      continue;
    void *v = (void *)1;
    int rc = tl_lookup(m->key[i], &v);
    if (m->bound[i]) {
      CHECK(rc == 0);
      CHECK(v == m->value[i]);
      CHECK(tl_get(m->key[i]) == m->value[i]);
    } else {
      CHECK(rc == ENOENT);
      CHECK(tl_get(m->key[i]) == NULL);
    }
  }
}

static void model_set(struct model *m, int i, void *value)
{
  if (!m->have_key[i])
    return;
  int rc = tl_set(m->key[i], value);
  OK_OR_NOMEM(rc);
  if (rc == 0) {
    m->bound[i] = 1;
    m->value[i] = value;
  }
  model_verify(m);
}

static void model_unset(struct model *m, int i)
{
  if (!m->have_key[i])
    return;
  CHECK(tl_unset(m->key[i]) == 0);          /* unbinding never allocates */
  m->bound[i] = 0;
  m->value[i] = NULL;
  model_verify(m);
}

static char cells[4][NKEYS];

/* Binds, rebinds and unbinds NKEYS keys in the running task, checking all
 * of them after every call. */
static void model_exercise(struct model *m)
{
  for (int i = 0; i < NKEYS; i++)
    model_set(m, i, &cells[0][i]);
  for (int i = 0; i < NKEYS; i++)
    model_set(m, i, &cells[1][i]);
  for (int i = 0; i < NKEYS; i += 2)
    model_unset(m, i);
  for (int i = 0; i < NKEYS; i++)
    model_set(m, i, i % 3 ? &cells[2][i] : NULL);
}

static void model_keys(struct model *m)
{
  memset(m, 0, sizeof *m);
  for (int i = 0; i < NKEYS; i++) {
    int rc = tl_key_create(&m->key[i], NULL);
    OK_OR_NOMEM(rc);
    m->have_key[i] = rc == 0;
  }
}

/* ---- scenario: keys ---- */

static int create_named(tl_key_t *k, const char *name, void (*destroy)(void *))
{
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.name = name;
  a.destroy = destroy;
  return tl_key_create_attr(k, &a);
}

#define MANY_KEYS 1500

static void scenario_keys(void)
{
  tl_key_t named = 0, found = 0, again = 0;
  int rc = create_named(&named, "faults.named", NULL);
  OK_OR_NOMEM(rc);
  int frc = tl_key_find(&found, "faults.named");
  /* A creation that failed left no half-made key behind. */
  CHECK(rc == 0 ? frc == 0 && found == named : frc == ENOENT);
  int arc = create_named(&again, "faults.named", NULL);
  if (rc == 0)
    CHECK(arc == EEXIST || arc == ENOMEM);
  else
    OK_OR_NOMEM(arc);

  static tl_key_t keys[MANY_KEYS];
  static int ok[MANY_KEYS];
  for (int i = 0; i < MANY_KEYS; i++) {
    int r = tl_key_create(&keys[i], NULL);
    OK_OR_NOMEM(r);
    ok[i] = r == 0;
  }
  void *v;
  for (int i = 0; i < MANY_KEYS; i++) {
    if (!ok[i])
      continue;
    CHECK(keys[i] != 0);
    CHECK(tl_lookup(keys[i], &v) == ENOENT);
    if (i > 0 && ok[i - 1])
      CHECK(keys[i] != keys[i - 1]);
  }
  for (int i = 0; i < MANY_KEYS; i += 2)
    if (ok[i])
      CHECK(tl_key_delete(keys[i]) == 0);
  for (int i = 0; i < MANY_KEYS; i += 2) {
    if (!ok[i])
      continue;
    CHECK(tl_lookup(keys[i], &v) == EINVAL);
    tl_key_t k;
    int r = tl_key_create(&k, NULL);
    OK_OR_NOMEM(r);
    if (r == 0) {
      CHECK(k != keys[i]);
      CHECK(tl_lookup(keys[i], &v) == EINVAL);
      CHECK(tl_lookup(k, &v) == ENOENT);
    }
  }
}

/* ---- scenario: values in the root and in coroutines ---- */

static struct model root_model, co_model;

static void co_values(void)
{
  if (!tracked())
    return;
  /* A new task starts with nothing bound. */
  co_model = root_model;
  for (int i = 0; i < NKEYS; i++) {
    co_model.bound[i] = 0;
    co_model.value[i] = NULL;
  }
  model_verify(&co_model);
  model_exercise(&co_model);
  co_yield();
  model_verify(&co_model);
}

static void scenario_values(void)
{
  model_keys(&root_model);
  model_exercise(&root_model);
  static struct co c;
  co_make(&c, co_values);
  co_resume(&c);
  model_verify(&root_model);
  if (!c.done)
    co_resume(&c);
  CHECK(c.done);
  model_verify(&root_model);
  co_free(&c);
}

/* ---- scenario: scoped bindings ---- */

#define NBINDS 20

static void bind_exercise(void)
{
  struct model m;
  model_keys(&m);
  model_set(&m, 0, &cells[0][0]);
  if (!m.have_key[0])
    return;
  tl_token_t tok[NBINDS];
  struct model before[NBINDS];
  int bound[NBINDS];
  for (int i = 0; i < NBINDS; i++) {
    int k = i % 3;
    before[i] = m;
    bound[i] = 0;
    if (!m.have_key[k])
      continue;
    int rc = tl_bind(m.key[k], &cells[3][i], &tok[i]);
    OK_OR_NOMEM(rc);
    if (rc == 0) {
      bound[i] = 1;
      m.bound[k] = 1;
      m.value[k] = &cells[3][i];
    }
    model_verify(&m);
  }
  for (int i = NBINDS - 1; i >= 0; i--) {
    if (!bound[i])
      continue;
    CHECK(tl_unbind(&tok[i]) == 0);
    m = before[i];
    model_verify(&m);
  }

  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.flags = TL_KEY_SCOPED_ONLY;
  tl_key_t scoped;
  int rc = tl_key_create_attr(&scoped, &a);
  OK_OR_NOMEM(rc);
  if (rc != 0)
    return;
  int ran = 0;
  errno = 0;
  TL_WITH(scoped, &cells[2][0])
  {
    ran = 1;
    CHECK(tl_get(scoped) == &cells[2][0]);
  }
  CHECK(ran || errno == ENOMEM);
  CHECK(tl_get(scoped) == NULL);
  void *v;
  CHECK(tl_lookup(scoped, &v) == ENOENT);
}

static void co_binds(void)
{
  if (tracked())
    bind_exercise();
}

static void scenario_bind(void)
{
  root_id = tl_task_id(tl_current());
  bind_exercise();
  static struct co c;
  co_make(&c, co_binds);
  co_resume(&c);
  CHECK(c.done);
  co_free(&c);
}

/* ---- scenario: inheritance at spawn ---- */

static int shared_value;
static int shared_destroyed;
static long copies_made, copies_freed;

static void destroy_shared(void *v)
{
  if (v == &shared_value)
    shared_destroyed++;
}

static void *copy_int(const void *v)
{
  int *c = malloc(sizeof *c);
  if (c != NULL) {
    *c = *(const int *)v;
    copies_made++;
  }
  return c;
}

static tl_key_t k_share, k_copy;
static int have_share, have_copy, parent_share, parent_copy;
static int *parent_copy_value;

/* A child's copy is destroyed with the child as the running task, also
 * when the child is dropped because its inheritance failed halfway: its
 * destructors must not see (or bind into) the maker's values. */
static void free_int(void *v)
{
  if (v != NULL && v != parent_copy_value) {
    CHECK(tl_task_id(tl_current()) != root_id);
    CHECK(tl_get(k_copy) == NULL);
  }
  if (v != NULL)
    copies_freed++;
  free(v);
}

static void co_inherits(void)
{
  if (tracked()) {
    /* Tracked means the inheritance succeeded: a failure leaves the task
     * untracked rather than with wrong values. */
    if (have_share)
      CHECK(tl_get(k_share) == (parent_share ? &shared_value : NULL));
    if (have_copy) {
      int *c = tl_get(k_copy);
      if (parent_copy) {
        CHECK(c != NULL && c != parent_copy_value && *c == 42);
      } else {
        CHECK(c == NULL);
      }
    }
    static int other;
    if (have_share)
      OK_OR_NOMEM(tl_set(k_share, &other));
  }
  co_yield();
}

static void scenario_inherit(void)
{
  root_id = tl_task_id(tl_current());
  /* The copied key first: the child inherits it first, so a failure to
   * record the shared one leaves the child holding a copy to destroy. */
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.inherit = TL_INHERIT_COPY;
  a.copy = copy_int;
  a.destroy = free_int;
  int rc = tl_key_create_attr(&k_copy, &a);
  OK_OR_NOMEM(rc);
  have_copy = rc == 0;
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.inherit = TL_INHERIT_SHARE;
  a.destroy = destroy_shared;
  rc = tl_key_create_attr(&k_share, &a);
  OK_OR_NOMEM(rc);
  have_share = rc == 0;
  if (have_share) {
    rc = tl_set(k_share, &shared_value);
    OK_OR_NOMEM(rc);
    parent_share = rc == 0;
  }
  if (have_copy) {
    parent_copy_value = malloc(sizeof *parent_copy_value);
    CHECK(parent_copy_value != NULL);
    *parent_copy_value = 42;
    rc = tl_set(k_copy, parent_copy_value);
    OK_OR_NOMEM(rc);
    parent_copy = rc == 0;
    if (!parent_copy) {
      free(parent_copy_value);
      parent_copy_value = NULL;
    }
  }
  /* Children that finish, and children abandoned (made again while
   * suspended), several times each so that a failure can hit any of them. */
  static struct co c;
  for (int round = 0; round < 3; round++) {
    co_make(&c, co_inherits);
    co_resume(&c);
    co_resume(&c);
    CHECK(c.done);
    co_make(&c, co_inherits);
    co_resume(&c);
    co_make(&c, co_inherits); /* abandons the suspended one */
    co_resume(&c);
    co_resume(&c);
    CHECK(c.done);
  }
  co_free(&c);
  /* The shared value is the parent's: no child may destroy it. */
  CHECK(shared_destroyed == 0);
  if (have_share)
    CHECK(tl_get(k_share) == (parent_share ? &shared_value : NULL));
  if (have_copy)
    CHECK(tl_get(k_copy) == parent_copy_value);
  /* Every copy made for a child was destroyed with it: none leaked. */
  CHECK(copies_made == copies_freed);
}

/* ---- scenario: deferred calls ---- */

static int defer_log[16], defer_n;

static void deferred(void *arg)
{
  if (defer_n < 16)
    defer_log[defer_n++] = (int)(intptr_t)arg;
}

static int co_defer_rc[4];

static void co_defers(void)
{
  for (int i = 0; i < 4; i++) {
    co_defer_rc[i] = tl_defer(TL_SCOPE_TASK, deferred, (void *)(intptr_t)(i + 1));
    OK_OR_NOMEM(co_defer_rc[i]);
  }
  if (!tracked())
    co_defer_rc[0] = -1;                   /* registered on the root: they run at exit */
}

static void scenario_defer(void)
{
  root_id = tl_task_id(tl_current());
  static struct co c;
  co_make(&c, co_defers);
  co_resume(&c);
  CHECK(c.done);
  co_free(&c);
  if (co_defer_rc[0] != -1) {
    /* The registered ones ran at the task's end, last first. */
    int expect = 0;
    for (int i = 3; i >= 0; i--)
      if (co_defer_rc[i] == 0)
        CHECK(expect < defer_n && defer_log[expect++] == i + 1);
    CHECK(defer_n == expect);
  }
  defer_n = 0;
  int rc[4];
  for (int i = 0; i < 4; i++) {
    rc[i] = tl_defer(TL_SCOPE_THREAD, deferred, (void *)(intptr_t)(i + 11));
    OK_OR_NOMEM(rc[i]);
  }
  /* A thread whose state cannot be made has no loop to close. */
  OK_OR_NOMEM(tl_loop_close());
  int expect = 0;
  for (int i = 3; i >= 0; i--)
    if (rc[i] == 0)
      CHECK(expect < defer_n && defer_log[expect++] == i + 11);
  CHECK(defer_n == expect);
}

/* ---- scenario: singletons and initializers ---- */

static long objs_made, objs_destroyed;

static void *make_obj(void *arg)
{
  (void)arg;
  int *p = malloc(sizeof *p);
  if (p != NULL)
    objs_made++;
  return p;
}

static void destroy_obj(void *v)
{
  if (v != NULL)
    objs_destroyed++;
  free(v);
}

static void singleton_in(tl_key_t key)
{
  long made = objs_made, destroyed = objs_destroyed;
  errno = 0;
  void *v = tl_singleton(key, make_obj, NULL);
  if (v == NULL) {
    /* make ran, binding failed: the made value was destroyed. */
    CHECK(errno == ENOMEM);
    CHECK(objs_made - made == objs_destroyed - destroyed);
    void *x;
    CHECK(tl_lookup(key, &x) == ENOENT);
    return;
  }
  CHECK(objs_made == made + 1 && objs_destroyed == destroyed);
  CHECK(tl_singleton(key, make_obj, NULL) == v);
  CHECK(objs_made == made + 1);
  CHECK(tl_get(key) == v);
}

static tl_key_t k_task_single, k_init;

static void co_singleton(void)
{
  if (!tracked())
    return;
  singleton_in(k_task_single);
  long made = objs_made, destroyed = objs_destroyed;
  void *v = tl_get(k_init);
  CHECK(v != NULL || objs_made - made == objs_destroyed - destroyed);
}

static void scenario_singleton(void)
{
  root_id = tl_task_id(tl_current());
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_THREAD;
  a.destroy = destroy_obj;
  tl_key_t k_loop;
  int rc = tl_key_create_attr(&k_loop, &a);
  OK_OR_NOMEM(rc);
  if (rc == 0) {
    singleton_in(k_loop);
    CHECK(tl_loop_close() == 0);
    CHECK(objs_made == objs_destroyed);
    singleton_in(k_loop);
    CHECK(tl_loop_close() == 0);
    CHECK(objs_made == objs_destroyed);
  }
  a.scope = TL_SCOPE_TASK;
  rc = tl_key_create_attr(&k_task_single, &a);
  OK_OR_NOMEM(rc);
  a.init = make_obj;
  int rc2 = tl_key_create_attr(&k_init, &a);
  OK_OR_NOMEM(rc2);
  if (rc != 0 || rc2 != 0)
    return;
  static struct co c;
  for (int i = 0; i < 3; i++) {
    co_make(&c, co_singleton);
    co_resume(&c);
    CHECK(c.done);
  }
  co_free(&c);
  /* Every value made in a task was destroyed when it finished. */
  CHECK(objs_made == objs_destroyed);
}

/* ---- scenario: custom owners ---- */

static void *owner_now;
static void *current_owner(void *arg)
{
  (void)arg;
  return owner_now;
}

static const struct tl_disc disc = {current_owner, NULL};
static int owner1, owner2;

static void scenario_custom(void)
{
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_CUSTOM;
  a.disc = &disc;
  a.destroy = destroy_obj;
  tl_key_t k;
  int rc = tl_key_create_attr(&k, &a);
  OK_OR_NOMEM(rc);
  if (rc != 0)
    return;
  void *owners[2] = {&owner1, &owner2};
  void *held[2] = {NULL, NULL};
  for (int round = 0; round < 3; round++) {
    for (int o = 0; o < 2; o++) {
      owner_now = owners[o];
      CHECK(tl_get(k) == held[o]);
      void *v = make_obj(NULL);
      CHECK(v != NULL);
      rc = tl_set(k, v);
      OK_OR_NOMEM(rc);
      if (rc == 0) {
        free(held[o]);                     /* tl_set never destroys the old value */
        if (held[o] != NULL)
          objs_destroyed++;
        held[o] = v;
      } else {
        destroy_obj(v);
      }
      CHECK(tl_get(k) == held[o]);
      tl_token_t t;
      int brc = tl_bind(k, &owner2, &t);
      OK_OR_NOMEM(brc);
      if (brc == 0) {
        CHECK(tl_get(k) == &owner2);
        CHECK(tl_unbind(&t) == 0);
      }
      CHECK(tl_get(k) == held[o]);
    }
    owner_now = NULL;
    CHECK(tl_get(k) == NULL);
    CHECK(tl_set(k, &owner1) == ESRCH);
    /* Ending an owner destroys its value, and only its. */
    CHECK(tl_disc_end(&disc, owners[round % 2]) == 0);
    held[round % 2] = NULL;
    CHECK(objs_made - objs_destroyed == (held[0] != NULL) + (held[1] != NULL));
  }
  CHECK(tl_disc_end(&disc, &owner1) == 0);
  CHECK(tl_disc_end(&disc, &owner2) == 0);
  CHECK(objs_made == objs_destroyed);
}

/* ---- scenario: task names ---- */

static void scenario_names(void)
{
  const char *names[] = {"first", "second", "third"};
  const char *expect = NULL;
  for (int i = 0; i < 3; i++) {
    int rc = tl_task_set_name(NULL, names[i]);
    OK_OR_NOMEM(rc);
    if (rc == 0)
      expect = names[i];
    const char *now = tl_task_name(NULL);
    CHECK(expect == NULL ? now == NULL : now != NULL && strcmp(now, expect) == 0);
  }
}

/* ---- scenario: threads and many tasks ---- */

static tl_key_t k_thread;
static long thread_destroyed;
static pthread_mutex_t thread_lock = PTHREAD_MUTEX_INITIALIZER;

static void destroy_counted(void *v)
{
  (void)v;
  pthread_mutex_lock(&thread_lock);
  thread_destroyed++;
  pthread_mutex_unlock(&thread_lock);
}

static void *thread_body(void *arg)
{
  int rc = tl_set(k_thread, arg);
  OK_OR_NOMEM(rc);
  CHECK(tl_get(k_thread) == (rc == 0 ? arg : NULL));
  return (void *)(intptr_t)(rc == 0);
}

#define NTASKS 48

static struct co tasks[NTASKS];
static int task_cell[NTASKS];
static tl_key_t k_task;
static long task_destroyed, task_bound;

static void destroy_task_value(void *v)
{
  (void)v;
  task_destroyed++;
}

static void task_body(void)
{
  int me = (int)(co_running - tasks);
  int rc = tl_set(k_task, &task_cell[me]);
  OK_OR_NOMEM(rc);
  int mine = rc == 0 && tracked();
  if (mine)
    task_bound++;
  for (int i = 0; i < 3; i++) {
    co_yield();
    /* A tracked task that bound its value always sees it, never another's. */
    if (mine)
      CHECK(tl_get(k_task) == &task_cell[me]);
  }
}

static void scenario_tasks(void)
{
  root_id = tl_task_id(tl_current());
  int rc = tl_key_create(&k_thread, destroy_counted);
  OK_OR_NOMEM(rc);
  if (rc == 0) {
    static int cell[4];
    pthread_t t[4];
    long bound = 0;
    for (int i = 0; i < 4; i++)
      CHECK(pthread_create(&t[i], NULL, thread_body, &cell[i]) == 0);
    for (int i = 0; i < 4; i++) {
      void *res;
      CHECK(pthread_join(t[i], &res) == 0);
      bound += (intptr_t)res;
    }
    CHECK(thread_destroyed == bound);
  }
  rc = tl_key_create(&k_task, destroy_task_value);
  OK_OR_NOMEM(rc);
  if (rc != 0)
    return;
  for (int i = 0; i < NTASKS; i++)
    co_make(&tasks[i], task_body);
  for (int round = 0; round < 4; round++)
    for (int i = 0; i < NTASKS; i++)
      if (!tasks[i].done)
        co_resume(&tasks[i]);
  for (int i = 0; i < NTASKS; i++) {
    CHECK(tasks[i].done);
    co_free(&tasks[i]);
  }
  /* Untracked tasks bound in the root; the tracked ones' values went to
   * the destructor when they finished. */
  CHECK(task_destroyed == task_bound);
  tl_unset(k_task);
}

/* ---- scenario: a little of everything, small enough for valgrind ---- */

static tl_key_t k_leaks;

static void co_leaks(void)
{
  if (tracked()) {
    void *v = make_obj(NULL);
    int set = tl_set(k_leaks, v);
    OK_OR_NOMEM(set);
    if (set != 0)
      destroy_obj(v);
    tl_token_t t;
    int rc = tl_bind(k_leaks, NULL, &t);
    OK_OR_NOMEM(rc);
    if (rc == 0)
      CHECK(tl_unbind(&t) == 0);
    OK_OR_NOMEM(tl_defer(TL_SCOPE_TASK, deferred, NULL));
    OK_OR_NOMEM(tl_task_set_name(NULL, "leaky"));
  }
  co_yield();
}

static void scenario_leaks(void)
{
  root_id = tl_task_id(tl_current());
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.destroy = destroy_obj;
  a.name = "faults.leaks";
  int rc = tl_key_create_attr(&k_leaks, &a);
  OK_OR_NOMEM(rc);
  if (rc != 0)
    return;
  static struct co c;
  co_make(&c, co_leaks);
  co_resume(&c);
  co_resume(&c);
  CHECK(c.done);
  co_make(&c, co_leaks);
  co_resume(&c);
  co_make(&c, co_leaks); /* abandons the suspended one */
  co_resume(&c);
  co_resume(&c);
  CHECK(c.done);
  co_free(&c);
  /* Tracked tasks destroyed what they bound; untracked ones bound it in
   * the root, where it stays until exit. */
  void *rest = tl_get(k_leaks);
  CHECK(objs_made == objs_destroyed + (rest != NULL));
  a.name = NULL;
  a.scope = TL_SCOPE_THREAD;
  tl_key_t k_loop;
  rc = tl_key_create_attr(&k_loop, &a);
  OK_OR_NOMEM(rc);
  if (rc == 0) {
    singleton_in(k_loop);
    CHECK(tl_loop_close() == 0);
  }
  CHECK(tl_key_delete(k_leaks) == 0);
  free(rest);                               /* a deleted key's values get no destructor */
}

/* ---- scenario: a dump with live, suspended and abandoned tasks ---- */

static tl_key_t k_dump;
static int have_dump_key;

static void co_dump(void)
{
  static int cell;
  if (have_dump_key)
    OK_OR_NOMEM(tl_set(k_dump, &cell));
  co_yield();
}

static void scenario_dump(void)
{
  root_id = tl_task_id(tl_current());
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.name = "faults.dumped";
  int rc = tl_key_create_attr(&k_dump, &a);
  OK_OR_NOMEM(rc);
  have_dump_key = rc == 0;
  static struct co c[3];
  for (int i = 0; i < 3; i++) {
    co_make(&c[i], co_dump);
    co_resume(&c[i]);
  }
  co_make(&c[0], co_dump); /* abandons the first one: kept for the report */
  /* The report path allocates nothing (STYLE 6): a dump never fails for
   * want of memory. */
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  CHECK(fd >= 0);
  CHECK(tl_dump(fd) == 0);
  close(fd);
  for (int i = 0; i < 3; i++) {
    co_resume(&c[i]);
    if (!c[i].done)
      co_resume(&c[i]);
    CHECK(c[i].done);
    co_free(&c[i]);
  }
}

/* ---- scenario: fork ---- */

static tl_key_t k_fork;
static int fork_cells[3];
static int *root_fork_value;               /* what the root task has bound */

static void co_fork(void)
{
  int mine = tracked();
  int rc = tl_set(k_fork, &fork_cells[1]);
  OK_OR_NOMEM(rc);
  if (!mine && rc == 0)
    root_fork_value = &fork_cells[1];      /* untracked: it is the root's value it set */
  co_yield();
  /* Resumed in the child of a fork: still itself, with its value. */
  if (mine && rc == 0)
    CHECK(tl_get(k_fork) == &fork_cells[1]);
}

static void co_child(void)
{
  if (!tracked())
    return;
  int rc = tl_set(k_fork, &fork_cells[2]);
  OK_OR_NOMEM(rc);
  CHECK(tl_get(k_fork) == (rc == 0 ? &fork_cells[2] : NULL));
}

static void scenario_fork(void)
{
  root_id = tl_task_id(tl_current());
  int rc = tl_key_create(&k_fork, NULL);
  OK_OR_NOMEM(rc);
  if (rc != 0)
    return;
  int root_rc = tl_set(k_fork, &fork_cells[0]);
  OK_OR_NOMEM(root_rc);
  if (root_rc == 0)
    root_fork_value = &fork_cells[0];
  static struct co c, d;
  co_make(&c, co_fork);
  co_resume(&c);
  pid_t pid = fork();
  CHECK(pid >= 0);
  if (pid == 0) {
    /* The child has only this thread and the library's state as it was:
     * keys, tasks and values keep working, and allocations may fail. */
    alarm(10);
    CHECK(tl_task_id(tl_current()) == root_id);
    CHECK(tl_get(k_fork) == root_fork_value);
    tl_key_t k;
    OK_OR_NOMEM(tl_key_create(&k, NULL));
    co_resume(&c);
    CHECK(c.done);
    co_make(&d, co_child);
    co_resume(&d);
    CHECK(d.done);
    if (tl_get(k_fork) != root_fork_value) {
      /* An untracked task of the child set the root's value. */
      CHECK(tl_get(k_fork) == &fork_cells[2] || tl_get(k_fork) == &fork_cells[1]);
    }
    fflush(stdout);
    _exit(0);
  }
  int status;
  CHECK(waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "the forked child ended with status %#x\n", status);
    _exit(3);
  }
  co_resume(&c);
  CHECK(c.done);
  co_free(&c);
  co_free(&d);
}

/* ---- the table ---- */

struct scenario {
  const char *name;
  void (*run)(void);
  /* Set while a library bug makes the scenario fail: the test says so and
   * skips it. TL_TEST_KNOWN_BUGS=1 runs it anyway. */
  const char *known_bug;
  int valgrind;                            /* also run every N under valgrind */
};

static const struct scenario scenarios[] = {
    {"keys", scenario_keys, NULL, 0},
    {"values", scenario_values, NULL, 0},
    {"bind", scenario_bind, NULL, 0},
    {"inherit", scenario_inherit, NULL, 0},
    {"defer", scenario_defer, NULL, 0},
    {"singleton", scenario_singleton, NULL, 0},
    {"custom", scenario_custom, NULL, 0},
    {"names", scenario_names, NULL, 0},
    {"tasks", scenario_tasks, NULL, 0},
    {"leaks", scenario_leaks, NULL, 1},
    {"fork", scenario_fork, NULL, 0},
    {"dump", scenario_dump, NULL, 1},
};

#define NSCENARIOS ((int)(sizeof scenarios / sizeof scenarios[0]))

static int run_scenario(const char *name)
{
  root_id = tl_task_id(tl_current());
  for (int i = 0; i < NSCENARIOS; i++) {
    if (strcmp(scenarios[i].name, name) == 0) {
      scenarios[i].run();
      /* The scenario's own checks passed; what is left is the library's
       * exit path (root values, reports), which must not crash either. */
      printf("scenario %s: done\n", name);
      return 0;
    }
  }
  fprintf(stderr, "no scenario %s\n", name);
  return 2;
}

/* ---- the parent side ---- */

static char self_path[4096];

static int skip_known_bug(const struct scenario *s)
{
  const char *all = getenv("TL_TEST_KNOWN_BUGS");
  if (s->known_bug == NULL || (all != NULL && strcmp(all, "1") == 0))
    return 0;
  fprintf(stderr, "check_faults: SKIPPED scenario %s: known library bug: %s\n", s->name, s->known_bug);
  return 1;
}

/* Each scenario also runs with the leak report on: abandoned tasks are then
 * kept for it, with a copy of their values, and backtraces are taken. */
static const char *const scenario_options[] = {NULL, "TASKLOCAL_LEAKS=1"};
#define NOPTIONS ((int)(sizeof scenario_options / sizeof scenario_options[0]))

static long scenario_count(const struct scenario *s, const char *option)
{
  char *const argv[] = {self_path, (char *)"--scenario", (char *)s->name, NULL};
  const char *vars[] = {option};
  struct tl_test_proc r;
  char how[64];
  if (TL_TEST_UNDER_ASAN) {
    run_with(&r, argv, vars, 1, RUN_DEADLINE_S);
    ck_assert_msg(!r.timed_out && WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0,
                  "scenario %s without faults ended with %s: %.500s", s->name, tl_test_describe(&r, how, sizeof how),
                  r.err.data);
    tl_test_proc_free(&r);
    return ASAN_MAX_N;
  }
  long count = count_allocations(argv, NULL, vars, 1, &r);
  ck_assert_msg(!r.timed_out && WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0,
                "scenario %s without faults ended with %s: %.500s", s->name, tl_test_describe(&r, how, sizeof how),
                r.err.data);
  tl_test_proc_free(&r);
  ck_assert_msg(count > 0, "scenario %s: no allocation counted", s->name);
  return count;
}

START_TEST(test_scenario_faults)
{
  const struct scenario *s = &scenarios[_i / NOPTIONS];
  const char *option = scenario_options[_i % NOPTIONS];
  if (skip_known_bug(s))
    return;
  long count = scenario_count(s, option);
  char *const argv[] = {self_path, (char *)"--scenario", (char *)s->name, NULL};
  char fail_var[64], how[64];
  const char *vars[] = {fail_var, option};
  say_sampled(s->name, option, count);
  for (long n = 1; n <= count + 1; n++) {
    if (!fault_point_tested(n, count))
      continue;
    for (int every = 0; every < 2; every++) {
      struct tl_test_proc r;
      snprintf(fail_var, sizeof fail_var, "TASKLOCAL_TEST_FAIL_ALLOC=%ld%s", n, every ? "+" : "");
      run_with(&r, argv, vars, 2, RUN_DEADLINE_S);
      ck_assert_msg(!r.timed_out && WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0,
                    "scenario %s with %s%s%s (of %ld allocations): %s; stderr: %.600s", s->name, fail_var,
                    option ? " " : "", option ? option : "", count, tl_test_describe(&r, how, sizeof how), r.err.data);
      tl_test_proc_free(&r);
    }
  }
}
END_TEST

/* (c) No definite leak whichever allocation fails. valgrind takes about a
 * second per run, so only the scenarios marked for it, single failures. */
START_TEST(test_scenario_valgrind)
{
  const struct scenario *s = &scenarios[_i];
  if (!s->valgrind || skip_known_bug(s))
    return;
  if (access("/usr/bin/valgrind", X_OK) != 0) {
    fprintf(stderr, "check_faults: valgrind is not installed; leak checks skipped\n");
    return;
  }
  long count = scenario_count(s, NULL);
  char *const argv[] = {(char *)"/usr/bin/valgrind",
                        (char *)"-q",
                        (char *)"--leak-check=full",
                        (char *)"--errors-for-leak-kinds=definite",
                        (char *)"--error-exitcode=99",
                        self_path,
                        (char *)"--scenario",
                        (char *)s->name,
                        NULL};
  char fail_var[64], how[64];
  const char *vars[] = {fail_var};
  for (long n = 1; n <= count; n++) {
    struct tl_test_proc r;
    snprintf(fail_var, sizeof fail_var, "TASKLOCAL_TEST_FAIL_ALLOC=%ld", n);
    run_with(&r, argv, vars, 1, VALGRIND_DEADLINE_S);
    ck_assert_msg(!r.timed_out && WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0,
                  "scenario %s under valgrind with %s (of %ld allocations): %s; valgrind says: %.1500s", s->name,
                  fail_var, count, tl_test_describe(&r, how, sizeof how), r.err.data);
    tl_test_proc_free(&r);
  }
}
END_TEST

static Suite *faults_suite(void)
{
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("api");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_scenario_faults, 0, NSCENARIOS * NOPTIONS);
  suite_add_tcase(s, tc);
  if (!TL_TEST_UNDER_ASAN) {
    tc = tcase_create("programs");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_program_faults, 0, nprograms);
    tcase_add_loop_test(tc, test_program_faults_reporting, 0, nprograms);
    suite_add_tcase(s, tc);
  }
  /* valgrind under ASan does not work, and the plain build is enough;
   * nor does it run under qemu-user (the aarch64 suites). */
  if (!TL_TEST_UNDER_ASAN && !TL_TEST_EMULATED) {
    tc = tcase_create("valgrind");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_scenario_valgrind, 0, NSCENARIOS);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(int argc, char **argv)
{
  if (argc == 3 && strcmp(argv[1], "--scenario") == 0)
    return run_scenario(argv[2]);
  ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (n <= 0)
    return EXIT_FAILURE;
  self_path[n] = '\0';
  list_programs();
  return tl_test_run(faults_suite());
}
