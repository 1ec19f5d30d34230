/* Interposition traps (issue 6): programs and libraries of tests/traps/
 * that set the traps other preload shims fell into, each run without the
 * shim and under it. The shim must change nothing they can see: stdout and
 * exit status are compared.
 *
 * - trap_ctor: a library's constructor runs a coroutine (makecontext and
 *   swapcontext) before the shim's own constructor may have run.
 * - trap_exit: exit() called on a coroutine's stack.
 * - trap_cxx: C++ exceptions thrown and caught inside coroutines, after
 *   switches.
 * - trap_freed: a coroutine frees the context (and stack) of the one that
 *   switched to it at once; under valgrind, the shim must not read it.
 * - trap_switches: 20 million switches, resident set flat.
 * - libtltrapmalloc.so: a preloaded allocator that finds malloc with
 *   dlsym (which may call malloc) and runs a coroutine from its first
 *   allocation, under the unmodified programs of tests/programs. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SHIM_PATH TL_BUILD_DIR "/libtasklocal.so"
#define PLUGIN_PATH TL_BUILD_DIR "/tests/libtlprobe.so"
#define TRAPS_DIR TL_BUILD_DIR "/tests/traps"
#define PROGRAM_DIR TL_BUILD_DIR "/tests/programs"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

extern char **environ;

struct run {
  char out[8192];
  size_t len;
  int wstatus;
  int timed_out;
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs argv with LD_PRELOAD set to `preload` (none when NULL) and the
 * probe's log discarded; stdout is kept, stderr goes to this process's. */
static void run(char *const argv[], const char *preload, double deadline_s, struct run *r)
{
  int p[2];
  memset(r, 0, sizeof *r);
  ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(p[1], STDOUT_FILENO);
    if (preload != NULL)
      setenv("LD_PRELOAD", preload, 1);
    else
      unsetenv("LD_PRELOAD");
    setenv("TLPROBE_LOG", "/dev/null", 1);
    if (UNDER_ASAN)
      setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
    execve(argv[0], argv, environ);
    _exit(127);
  }
  close(p[1]);
  double deadline = now_s() + deadline_s;
  struct pollfd fd = {p[0], POLLIN, 0};
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) {
      r->timed_out = 1;
      kill(pid, SIGKILL);
      break;
    }
    int ready = poll(&fd, 1, (int)(left * 1000) + 1);
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      continue;
    ssize_t n = read(p[0], r->out + r->len, sizeof r->out - 1 - r->len);
    if (n > 0)
      r->len += (size_t)n;
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(p[0]);
  r->out[r->len] = '\0';
  while (waitpid(pid, &r->wstatus, 0) < 0)
    ck_assert_int_eq(errno, EINTR);
}

/* Runs argv alone and under `preload`; both must end alike, with the
 * expected exit status, and print the same. */
static void same_with_and_without(char *const argv[], const char *base, const char *preload, int status,
                                  double deadline_s)
{
  struct run plain, shim;
  run(argv, base, deadline_s, &plain);
  ck_assert_msg(!plain.timed_out && WIFEXITED(plain.wstatus) && WEXITSTATUS(plain.wstatus) == status,
                "%s alone: status %#x, expected exit %d", argv[0], plain.wstatus, status);
  run(argv, preload, deadline_s, &shim);
  ck_assert_msg(!shim.timed_out, "%s under %s: hung", argv[0], preload);
  ck_assert_msg(shim.wstatus == plain.wstatus, "%s under %s: status %#x, alone %#x", argv[0], preload,
                shim.wstatus, plain.wstatus);
  ck_assert_msg(strcmp(plain.out, shim.out) == 0, "%s under %s: stdout differs:\n%s\n--- alone:\n%s", argv[0],
                preload, shim.out, plain.out);
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

START_TEST(test_cxx_exceptions)
{
  char *const argv[] = {(char *)TRAPS_DIR "/trap_cxx", NULL};
  same_with_and_without(argv, NULL, SHIM_PATH " " PLUGIN_PATH, 0, 20);
}
END_TEST

START_TEST(test_context_freed_after_switch)
{
  char *const argv[] = {(char *)TRAPS_DIR "/trap_freed", NULL};
  same_with_and_without(argv, NULL, SHIM_PATH " " PLUGIN_PATH, 0, 20);
  if (UNDER_ASAN || access("/usr/bin/valgrind", X_OK) != 0)
    return;
  char *const vg[] = {(char *)"/usr/bin/valgrind", (char *)"-q", (char *)"--error-exitcode=99",
                      (char *)TRAPS_DIR "/trap_freed", NULL};
  struct run r;
  run(vg, SHIM_PATH, 120, &r);
  ck_assert_msg(!r.timed_out && WIFEXITED(r.wstatus) && WEXITSTATUS(r.wstatus) == 0,
                "trap_freed under valgrind and the shim: status %#x (99: memcheck errors, on stderr)",
                r.wstatus);
}
END_TEST

START_TEST(test_twenty_million_switches)
{
  /* The program itself fails when its resident set grows by more than
   * 1 MiB; alone it shows the check is sound. */
  char *const argv[] = {(char *)TRAPS_DIR "/trap_switches", NULL};
  same_with_and_without(argv, NULL, SHIM_PATH, 0, 100);
}
END_TEST

START_TEST(test_preloaded_allocator)
{
  static const char *const programs[] = {"asymmetric", "symmetric", "uclink", "uclink_null", "nested",
                                         "migrate",    "demo"};
  if (UNDER_ASAN)
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
  tcase_add_test(tc, test_cxx_exceptions);
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
