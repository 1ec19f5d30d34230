/* Interposition traps (issue 6): programs and libraries of tests/traps/
 * that set the traps other preload shims fell into, each run without the
 * shim and under it. The shim must change nothing they can see: stdout and
 * exit status are compared.
 *
 * - trap_ctor: a library's constructor runs a coroutine (makecontext and
 *   swapcontext) before the shim's own constructor may have run.
 * - trap_exit: exit() called on a coroutine's stack.
 * - trap_cxx (built by g++) and trap_cxx_clang (by clang++): C++
 *   exceptions thrown and caught inside coroutines, after switches, right
 *   after a swapcontext returns, inside handlers, through
 *   std::exception_ptr, and one that leaves its coroutine (std::terminate,
 *   with the same message on stderr).
 * - trap_freed: a coroutine frees the context (and stack) of the one that
 *   switched to it at once; under valgrind, the shim must not read it.
 * - trap_switches: 20 million switches, resident set flat.
 * - libtltrapmalloc.so: a preloaded allocator that finds malloc with
 *   dlsym (which may call malloc) and runs a coroutine from its first
 *   allocation, under the unmodified programs of tests/programs. */
#include "testutil.h"

#define SHIM_PATH TL_BUILD_DIR "/libtasklocal.so"
#define PLUGIN_PATH TL_BUILD_DIR "/tests/libtlprobe.so"
#define TRAPS_DIR TL_BUILD_DIR "/tests/traps"
#define PROGRAM_DIR TL_BUILD_DIR "/tests/programs"

/* Runs argv with LD_PRELOAD set to `preload` (none when NULL) and the
 * probe's log discarded, keeping its stdout and stderr. */
static void run_quiet(char *const argv[], const char *preload, double deadline_s, struct tl_test_proc *r)
{
  static const char *const not_inherited[] = {"LD_PRELOAD=", NULL};
  char preload_var[1024];
  snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", preload != NULL ? preload : "");
  const char *vars[] = {preload != NULL ? preload_var : NULL, "TLPROBE_LOG=/dev/null",
                        TL_TEST_UNDER_ASAN ? TL_TEST_ASAN_ENV : NULL};
  char **env = tl_test_env(not_inherited, vars, sizeof vars / sizeof vars[0]);
  tl_test_exec(r, argv, env, deadline_s);
  free(env);
}

/* The same, and stderr is passed on to this process's, where the valgrind
 * run's memcheck errors are to be read. */
static void run(char *const argv[], const char *preload, double deadline_s, struct tl_test_proc *r)
{
  run_quiet(argv, preload, deadline_s, r);
  fputs(r->err.data, stderr);
}

/* Runs argv alone and under `preload`; both must end alike, with the
 * expected exit status, and print the same. */
static void same_with_and_without(char *const argv[], const char *base, const char *preload, int status,
                                  double deadline_s)
{
  struct tl_test_proc plain, shim;
  run(argv, base, deadline_s, &plain);
  ck_assert_msg(!plain.timed_out && WIFEXITED(plain.wstatus) && WEXITSTATUS(plain.wstatus) == status,
                "%s alone: status %#x, expected exit %d", argv[0], plain.wstatus, status);
  run(argv, preload, deadline_s, &shim);
  ck_assert_msg(!shim.timed_out, "%s under %s: hung", argv[0], preload);
  ck_assert_msg(shim.wstatus == plain.wstatus, "%s under %s: status %#x, alone %#x", argv[0], preload,
                shim.wstatus, plain.wstatus);
  ck_assert_msg(strcmp(plain.out.data, shim.out.data) == 0, "%s under %s: stdout differs:\n%s\n--- alone:\n%s",
                argv[0], preload, shim.out.data, plain.out.data);
  tl_test_proc_free(&plain);
  tl_test_proc_free(&shim);
}

START_TEST(test_constructor_before_ours)
{
  char *const argv[] = {(char *)TRAPS_DIR "/trap_ctor", NULL};
  /* The trap library is a dependency of the program, and also preloaded
   * ahead of the shim: both orders of the two constructors are tried. */
  same_with_and_without(argv, NULL, SHIM_PATH " " PLUGIN_PATH, 0, 20);
  same_with_and_without(argv, NULL, TRAPS_DIR "/libtltrapctor.so " SHIM_PATH " " PLUGIN_PATH, 0, 20);
}
END_TEST

START_TEST(test_exit_on_coroutine_stack)
{
  char *const argv[] = {(char *)TRAPS_DIR "/trap_exit", NULL};
  same_with_and_without(argv, NULL, SHIM_PATH " " PLUGIN_PATH, 3, 20);
}
END_TEST

/* trap_cxx by each compiler, in each of its modes. */
static const char *const cxx_traps[] = {TRAPS_DIR "/trap_cxx", TRAPS_DIR "/trap_cxx_clang"};
static const char *const cxx_modes[] = {"", "symmetric"};

START_TEST(test_cxx_exceptions)
{
  const char *mode = cxx_modes[_i % 2];
  char *const argv[] = {(char *)cxx_traps[_i / 2], mode[0] != '\0' ? (char *)mode : NULL, NULL};
  same_with_and_without(argv, NULL, SHIM_PATH " " PLUGIN_PATH, 0, 20);
}
END_TEST

/* An exception that leaves its coroutine ends the program alike with and
 * without the shim: std::terminate finds no handler below the coroutine's
 * function (the shim's trampoline unwinds to glibc's start frame), the
 * message and the SIGABRT are the same. Stderr, which holds that message,
 * is compared rather than shown. */
START_TEST(test_cxx_uncaught_exception)
{
  char *const argv[] = {(char *)cxx_traps[_i], (char *)"uncaught", NULL};
  struct tl_test_proc plain, shim;
  char how[64];
  run_quiet(argv, NULL, 20, &plain);
  ck_assert_msg(!plain.timed_out && WIFSIGNALED(plain.wstatus) && WTERMSIG(plain.wstatus) == SIGABRT,
                "%s uncaught alone: %s, expected SIGABRT", argv[0], tl_test_describe(&plain, how, sizeof how));
  ck_assert_msg(strstr(plain.err.data, "terminate called after throwing an instance of 'std::runtime_error'") != NULL,
                "%s uncaught alone: no terminate message on stderr:\n%s", argv[0], plain.err.data);
  run_quiet(argv, SHIM_PATH " " PLUGIN_PATH, 20, &shim);
  ck_assert_msg(shim.wstatus == plain.wstatus, "%s uncaught under the shim: %s, alone %#x", argv[0],
                tl_test_describe(&shim, how, sizeof how), plain.wstatus);
  ck_assert_msg(strcmp(plain.out.data, shim.out.data) == 0, "%s uncaught: stdout differs under the shim:\n%s\n--- alone:\n%s",
                argv[0], shim.out.data, plain.out.data);
  ck_assert_msg(strcmp(plain.err.data, shim.err.data) == 0, "%s uncaught: stderr differs under the shim:\n%s\n--- alone:\n%s",
                argv[0], shim.err.data, plain.err.data);
  tl_test_proc_free(&plain);
  tl_test_proc_free(&shim);
}
END_TEST

START_TEST(test_context_freed_after_switch)
{
  char *const argv[] = {(char *)TRAPS_DIR "/trap_freed", NULL};
  same_with_and_without(argv, NULL, SHIM_PATH " " PLUGIN_PATH, 0, 20);
  if (TL_TEST_UNDER_ASAN || TL_TEST_EMULATED || access("/usr/bin/valgrind", X_OK) != 0)
    return;
  char *const vg[] = {(char *)"/usr/bin/valgrind", (char *)"-q", (char *)"--error-exitcode=99",
                      (char *)TRAPS_DIR "/trap_freed", NULL};
  struct tl_test_proc r;
  run(vg, SHIM_PATH, 120, &r);
  ck_assert_msg(!r.timed_out && WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0,
                "trap_freed under valgrind and the shim: status %#x (99: memcheck errors, on stderr)",
                r.wstatus);
  tl_test_proc_free(&r);
}
END_TEST

START_TEST(test_twenty_million_switches)
{
  /* The program itself fails when its resident set grows by more than
   * 1 MiB; alone it shows the check is sound. Under qemu-user, where a
   * switch costs about 20 times as much, 2 million. */
  char *const argv[] = {(char *)TRAPS_DIR "/trap_switches", (char *)(TL_TEST_EMULATED ? "2000000" : NULL), NULL};
  same_with_and_without(argv, NULL, SHIM_PATH, 0, 100);
}
END_TEST

START_TEST(test_preloaded_allocator)
{
  static const char *const programs[] = {"asymmetric", "symmetric", "uclink", "uclink_null", "nested",
                                         "migrate",    "demo"};
  if (TL_TEST_UNDER_ASAN)
    return;                                /* the trap allocator would bypass ASan's */
  char path[512];
  snprintf(path, sizeof path, "%s/%s", PROGRAM_DIR, programs[_i]);
  char *const argv[] = {path, NULL};
  same_with_and_without(argv, TRAPS_DIR "/libtltrapmalloc.so",
                        TRAPS_DIR "/libtltrapmalloc.so " SHIM_PATH " " PLUGIN_PATH, 0, 20);
}
END_TEST

static Suite *traps_suite(void)
{
  Suite *s = suite_create("traps");
  TCase *tc = tcase_create("traps");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_constructor_before_ours);
  tcase_add_test(tc, test_exit_on_coroutine_stack);
  tcase_add_loop_test(tc, test_cxx_exceptions, 0, 4);
  tcase_add_loop_test(tc, test_cxx_uncaught_exception, 0, 2);
  tcase_add_test(tc, test_context_freed_after_switch);
  tcase_add_test(tc, test_twenty_million_switches);
  tcase_add_loop_test(tc, test_preloaded_allocator, 0, 7);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(traps_suite());
}
