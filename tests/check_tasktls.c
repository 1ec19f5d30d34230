/* TASKLOCAL_TASK_LOCAL: the thread-local state of unmodified programs made
 * per task (doc/task-local-tls.md). The programs of tests/tasktls/ run
 * under the shim as child processes; each says on one line what it saw.
 * Every feature is shown twice: wrong without the option (the failure it
 * fixes, asserted, so that the test cannot pass for another reason), and
 * right with it. */
#include "testutil.h"

#define SHIM_PATH TL_BUILD_DIR "/libtasklocal.so"
#define DIR TL_BUILD_DIR "/tests/tasktls"
#define COUNTER_PATH TL_BUILD_DIR "/tests/libtlalloccount.so"
#define RUN_DEADLINE_S (TL_TEST_EMULATED ? 120.0 : 30.0)

#define SYMS "sym:request_id,sym:last_message@libreqid"
#define ALL SYMS ",pthread-keys:libreqid"

static const char *const not_inherited[] = {"LD_PRELOAD=", "TASKLOCAL_", NULL};

/* Runs DIR/name (with arg, if not NULL) with LD_PRELOAD=preload, with
 * TASKLOCAL_TASK_LOCAL=items (unset when NULL) and var (when not NULL). */
static void run_with(struct tl_test_proc *p, const char *name, const char *arg, const char *preload,
                     const char *items, const char *var)
{
  char path[512], local[1024], pre[1024];
  snprintf(path, sizeof path, "%s/%s", DIR, name);
  ck_assert_msg(access(path, X_OK) == 0, "%s missing: %s", path, strerror(errno));
  snprintf(local, sizeof local, "TASKLOCAL_TASK_LOCAL=%s", items != NULL ? items : "");
  snprintf(pre, sizeof pre, "LD_PRELOAD=%s", preload);
  const char *extra[] = {pre, items != NULL ? local : NULL, var, TL_TEST_UNDER_ASAN ? TL_TEST_ASAN_ENV : NULL};
  char **env = tl_test_env(not_inherited, extra, 4);
  char *const argv[] = {path, (char *)arg, NULL};
  tl_test_exec(p, argv, env, RUN_DEADLINE_S);
  free(env);
  ck_assert_msg(!p->timed_out && WIFEXITED(p->wstatus), "%s under the shim did not exit; stderr: %.800s", name,
                p->err.data);
}

static void run(struct tl_test_proc *p, const char *name, const char *arg, const char *items)
{
  run_with(p, name, arg, SHIM_PATH, items, NULL);
}

static int status(const struct tl_test_proc *p)
{
  return WEXITSTATUS(p->wstatus);
}

static void expect_out(const struct tl_test_proc *p, const char *want)
{
  ck_assert_msg(strstr(p->out.data, want) != NULL, "stdout lacks \"%s\": %s (stderr: %.800s)", want, p->out.data,
                p->err.data);
}

static int count(const char *text, const char *what)
{
  int n = 0;
  for (const char *s = text; (s = strstr(s, what)) != NULL; s += strlen(what))
    n++;
  return n;
}

START_TEST(test_thread_vars_shared_without)
{
  struct tl_test_proc p;
  run(&p, "interleave", NULL, NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "tls: fresh_bad=4 id_bad=19 msg_bad=19 root=0  keys: fresh_bad=4 bad=19 root=0 made=1 destroyed=0");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_thread_vars_per_task)
{
  /* The exported variable from the dynamic symbol table, the static one
   * (with an initial value) from .symtab; the keys stay shared. */
  struct tl_test_proc p;
  run(&p, "interleave", NULL, SYMS);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "tls: fresh_bad=0 id_bad=0 msg_bad=0 root=1  keys: fresh_bad=4 bad=19 root=0 made=1 destroyed=0");
  ck_assert_msg(strstr(p.err.data, "tasklocal: ") == NULL, "stderr: %s", p.err.data);
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_program_variable)
{
  /* The program's own __thread variable (in its .symtab), named with and
   * without the program's name. */
  struct tl_test_proc p;
  run(&p, "interleave", NULL, NULL);
  expect_out(&p, "program: bad=19");
  tl_test_proc_free(&p);
  run(&p, "interleave", NULL, "sym:program_request@interleave");
  expect_out(&p, "program: bad=0");
  ck_assert_msg(strstr(p.err.data, "tasklocal: ") == NULL, "stderr: %s", p.err.data);
  tl_test_proc_free(&p);
  run(&p, "interleave", NULL, "sym:program_request");
  expect_out(&p, "program: bad=0");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_keys_per_task)
{
  /* Each coroutine makes its own context, which its task's end destroys. */
  struct tl_test_proc p;
  run(&p, "interleave", NULL, ALL);
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "tls: fresh_bad=0 id_bad=0 msg_bad=0 root=1  keys: fresh_bad=0 bad=0 root=1 made=5 destroyed=4");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_keys_all)
{
  struct tl_test_proc p;
  run(&p, "interleave", NULL, "pthread-keys:all");
  expect_out(&p, "keys: fresh_bad=0 bad=0 root=1 made=5 destroyed=4");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_keys_other_object)
{
  /* Keys made by another object than the one named stay per thread. */
  struct tl_test_proc p;
  run(&p, "interleave", NULL, "pthread-keys:libother");
  expect_out(&p, "keys: fresh_bad=4 bad=19 root=0 made=1 destroyed=0");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_ended_task_keys)
{
  /* A task that ends without returning while it holds a key's value
   * (released: a new context on its stack, or its stack freed; abandoned:
   * its ucontext_t made again): the destructor runs at once, and the
   * root's value is intact. */
  static const char *const hows[] = {"stack", "context", "free"};
  for (size_t i = 0; i < sizeof hows / sizeof hows[0]; i++) {
    struct tl_test_proc p;
    run(&p, "abandon", hows[i], NULL);
    ck_assert_msg(status(&p) == 1, "%s: exit status %d", hows[i], status(&p));
    expect_out(&p, "abandon: destroyed_at_end=0 fresh=0 root=0");
    tl_test_proc_free(&p);
    run(&p, "abandon", hows[i], ALL);
    ck_assert_msg(status(&p) == 0, "%s: exit status %d", hows[i], status(&p));
    expect_out(&p, "abandon: destroyed_at_end=1 fresh=1 root=1");
    tl_test_proc_free(&p);
  }
}
END_TEST

START_TEST(test_key_made_later)
{
  /* A task that saved its values before a key existed has no value in it. */
  struct tl_test_proc p;
  run(&p, "latekey", NULL, NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "latekey: a_fresh=0 b_own=1");
  tl_test_proc_free(&p);
  run(&p, "latekey", NULL, ALL);
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "latekey: a_fresh=1 b_own=1");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_dlopened_library)
{
  /* A library loaded with dlopen (dynamic TLS), used by the coroutines of
   * a thread that never touched it before: its block in that thread is
   * allocated at the first switch. */
  struct tl_test_proc p;
  run(&p, "plugin", NULL, NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "plugin: fresh_bad=2 id_bad=11 msg_bad=11 root_fresh=0");
  tl_test_proc_free(&p);
  run(&p, "plugin", NULL, SYMS);
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "plugin: fresh_bad=0 id_bad=0 msg_bad=0 root_fresh=1");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_key_deleted)
{
  struct tl_test_proc p;
  run(&p, "keydelete", NULL, NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "stale=0 dtor1=0 dtor2=0");
  tl_test_proc_free(&p);
  run(&p, "keydelete", NULL, "pthread-keys:keydelete");
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "keydelete: same_number=1 stale=0 dtor1=0 dtor2=1");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_migrate_without)
{
  struct tl_test_proc p;
  run(&p, "migrate", NULL, NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "mn: fresh_bad=3 id_bad=15 msg_bad=15 key_bad=15 roots=0 migrated=15");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_migrate_per_task)
{
  /* Every resume is on the other thread: the values follow the task, and
   * the destructors run where each task ends, and at each worker's exit. */
  struct tl_test_proc p;
  run(&p, "migrate", NULL, ALL);
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "mn: fresh_bad=0 id_bad=0 msg_bad=0 key_bad=0 roots=2 migrated=15 made=5 destroyed=5");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_bad_items_warn_once)
{
  /* Each item that cannot be had gets one line; the others apply. */
  struct tl_test_proc p;
  run(&p, "interleave", NULL,
      "bogus," ALL ",sym:request_count,sym:no_such_variable,sym:request_body@libreqid,sym:request_id@libnothere,"
      "sym:tl__view");
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "keys: fresh_bad=0 bad=0 root=1 made=5 destroyed=4");
  const char *lines[] = {
    "tasklocal: TASKLOCAL_TASK_LOCAL: bogus: not an item",
    "tasklocal: TASKLOCAL_TASK_LOCAL: sym:request_count: not a __thread variable",
    "tasklocal: TASKLOCAL_TASK_LOCAL: sym:no_such_variable: no such symbol",
    "tasklocal: TASKLOCAL_TASK_LOCAL: sym:request_body: its size, 8192 bytes, is not between 1 and 4096",
    "tasklocal: TASKLOCAL_TASK_LOCAL: sym:request_id: no such symbol in libnothere",
    /* The library's own state is never the program's. */
    "tasklocal: TASKLOCAL_TASK_LOCAL: sym:tl__view: no such symbol",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
    ck_assert_msg(count(p.err.data, lines[i]) == 1, "stderr should say once \"%s\": %s", lines[i], p.err.data);
  ck_assert_int_eq(count(p.err.data, "tasklocal: "), 6);
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_cxx_eh_without_a_runtime)
{
  /* A C program has no C++ runtime, unless a sanitizer's brings one. */
  struct tl_test_proc p;
  run(&p, "interleave", NULL, "cxx-eh");
  ck_assert_int_eq(status(&p), 1);
  if (!TL_TEST_UNDER_ASAN)
    ck_assert_int_eq(count(p.err.data, "tasklocal: TASKLOCAL_TASK_LOCAL: cxx-eh: no C++ runtime"), 1);
  expect_out(&p, "tls: fresh_bad=4 id_bad=19");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_unseen_switches)
{
  /* siglongjmp between coroutines: the values cannot follow, and nothing
   * breaks. */
  struct tl_test_proc p;
  run(&p, "sigjmp", NULL, ALL);
  ck_assert_int_eq(status(&p), 0);
  expect_out(&p, "sigjmp: done mismatches=");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_cxx_rethrow_without)
{
  /* The failure cxx-eh is for: one chain of caught exceptions per thread,
   * and the first coroutine's `throw;` rethrows the second's exception. */
  struct tl_test_proc p;
  run(&p, "eh", NULL, NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "eh: wrong: the rethrow in coroutine A gave another coroutine's exception");
  tl_test_proc_free(&p);
}
END_TEST

START_TEST(test_cxx_uncaught_without)
{
  struct tl_test_proc p;
  run(&p, "eh", "uncaught", NULL);
  ck_assert_int_eq(status(&p), 1);
  expect_out(&p, "eh: wrong: std::uncaught_exceptions() wrong in a destructor");
  tl_test_proc_free(&p);
}
END_TEST

/* eh.cpp as g++ built it, and as clang++ did when it is installed. */
START_TEST(test_cxx_eh_per_task)
{
  static const char *const builds[] = {"eh", "eh-clang"};
  for (size_t i = 0; i < sizeof builds / sizeof builds[0]; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", DIR, builds[i]);
    if (i > 0 && access(path, X_OK) != 0)
      continue;
    struct tl_test_proc p;
    run(&p, builds[i], NULL, "cxx-eh");
    ck_assert_msg(status(&p) == 0, "%s: exit status %d", builds[i], status(&p));
    expect_out(&p, "eh: ok");
    ck_assert_msg(strstr(p.err.data, "tasklocal: ") == NULL, "stderr: %s", p.err.data);
    tl_test_proc_free(&p);
    run(&p, builds[i], "uncaught", "cxx-eh");
    ck_assert_msg(status(&p) == 0, "%s uncaught: exit status %d", builds[i], status(&p));
    expect_out(&p, "eh: ok");
    tl_test_proc_free(&p);
  }
}
END_TEST

/* The programs under valgrind's memcheck with their state per task: no
 * error, no definite leak (the values of ended tasks are destroyed, the
 * saved ones freed with their tasks), no "client switching stacks?".
 * Not under qemu-user or AddressSanitizer, where valgrind cannot run. */
START_TEST(test_valgrind)
{
  static const char *const valgrind = "/usr/bin/valgrind";
  if (TL_TEST_EMULATED || TL_TEST_UNDER_ASAN || access(valgrind, X_OK) != 0)
    return;
  static const struct {
    const char *name, *items, *want;
  } runs[] = {
    {"interleave", ALL, "keys: fresh_bad=0 bad=0 root=1 made=5 destroyed=4"},
    {"migrate", ALL, "mn: fresh_bad=0 id_bad=0 msg_bad=0 key_bad=0 roots=2 migrated=15 made=5 destroyed=5"},
    {"abandon", ALL, "abandon: destroyed_at_end=1 fresh=1 root=1"},
    {"latekey", ALL, "latekey: a_fresh=1 b_own=1"},
    {"eh", "cxx-eh", "eh: ok"},
  };
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char path[512], local[1024];
    snprintf(path, sizeof path, "%s/%s", DIR, runs[i].name);
    snprintf(local, sizeof local, "TASKLOCAL_TASK_LOCAL=%s", runs[i].items);
    const char *extra[] = {"LD_PRELOAD=" SHIM_PATH, local};
    char **env = tl_test_env(not_inherited, extra, 2);
    char *const argv[] = {(char *)valgrind, "-q", "--error-exitcode=99", "--leak-check=full",
                          "--errors-for-leak-kinds=definite", path, NULL};
    struct tl_test_proc p;
    tl_test_exec(&p, argv, env, RUN_DEADLINE_S * 4);
    free(env);
    ck_assert_msg(!p.timed_out && WIFEXITED(p.wstatus) && status(&p) == 0,
                  "%s under valgrind: exit status %d; stderr: %.1500s", runs[i].name, status(&p), p.err.data);
    ck_assert_msg(strstr(p.err.data, "switching stacks") == NULL, "%s: %.800s", runs[i].name, p.err.data);
    expect_out(&p, runs[i].want);
    tl_test_proc_free(&p);
  }
}
END_TEST

/* Every allocation of the library failed in turn, alone (N) and with all
 * later ones (N+), in a run that makes state per task: the program runs
 * to its end, whatever values a task that could not save its own finds
 * (doc/task-local-tls.md). The allocations are counted by
 * tests/faults/alloccount.c, preloaded before the shim, which cannot be
 * under AddressSanitizer (it would bypass ASan's allocator). */
START_TEST(test_allocation_failures)
{
  if (TL_TEST_UNDER_ASAN)
    return;
  char count_file[] = "/tmp/tltasktls-count-XXXXXX", count_var[64], fail_var[64];
  int fd = mkstemp(count_file);
  ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
  close(fd);
  snprintf(count_var, sizeof count_var, "TLCOUNT_FILE=%s", count_file);
  struct tl_test_proc p;
  run_with(&p, "migrate", NULL, COUNTER_PATH " " SHIM_PATH, ALL, count_var);
  ck_assert_int_eq(status(&p), 0);
  tl_test_proc_free(&p);
  long count = 0;
  FILE *f = fopen(count_file, "r");
  if (f != NULL) {
    if (fscanf(f, "%ld", &count) != 1)
      count = 0;
    fclose(f);
  }
  unlink(count_file);
  ck_assert_msg(count > 0, "no allocation of the library was counted: is %s built?", COUNTER_PATH);
  for (long n = 1; n <= count + 1; n++) {
    for (int every = 0; every < 2; every++) {
      snprintf(fail_var, sizeof fail_var, "TASKLOCAL_TEST_FAIL_ALLOC=%ld%s", n, every ? "+" : "");
      run_with(&p, "migrate", NULL, SHIM_PATH, ALL, fail_var);
      ck_assert_msg(status(&p) <= 1 && strstr(p.out.data, "mn: ") != NULL,
                    "with %s (of %ld allocations): exit status %d, stdout %s, stderr %.400s", fail_var, count,
                    status(&p), p.out.data, p.err.data);
      tl_test_proc_free(&p);
    }
  }
}
END_TEST

static Suite *tasktls_suite(void)
{
  Suite *s = suite_create("tasktls");
  TCase *tc = tcase_create("tasktls");
  tcase_set_timeout(tc, RUN_DEADLINE_S * 4);
  tcase_add_test(tc, test_thread_vars_shared_without);
  tcase_add_test(tc, test_thread_vars_per_task);
  tcase_add_test(tc, test_program_variable);
  tcase_add_test(tc, test_keys_per_task);
  tcase_add_test(tc, test_keys_all);
  tcase_add_test(tc, test_keys_other_object);
  tcase_add_test(tc, test_ended_task_keys);
  tcase_add_test(tc, test_key_made_later);
  tcase_add_test(tc, test_dlopened_library);
  tcase_add_test(tc, test_key_deleted);
  tcase_add_test(tc, test_migrate_without);
  tcase_add_test(tc, test_migrate_per_task);
  tcase_add_test(tc, test_bad_items_warn_once);
  tcase_add_test(tc, test_cxx_eh_without_a_runtime);
  tcase_add_test(tc, test_unseen_switches);
  tcase_add_test(tc, test_cxx_rethrow_without);
  tcase_add_test(tc, test_cxx_uncaught_without);
  tcase_add_test(tc, test_cxx_eh_per_task);
  tcase_add_test(tc, test_allocation_failures);
  tcase_add_test(tc, test_valgrind);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(tasktls_suite());
}
