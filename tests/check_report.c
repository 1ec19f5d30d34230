/* Leak reports, dumps, stats and options (doc/reports.md, doc/options.md).
 *
 * Most cases run one of the leaky programs of tests/programs/leak_*.c
 * (unmodified ucontext programs: they bind values through weak hooks that
 * the test plugin tests/plugin/leakplug.c defines) in a process of its
 * own, under LD_PRELOAD of the shim with the options of the case, and
 * check what it wrote: the exact summary line, names of entry functions
 * and of functions on suspended stacks, exit statuses, the stats line.
 * Each program's comment says what it leaks. A few cases call tl_dump in
 * this process, which is linked with -ltasklocal and so tracks its own
 * coroutines; one re-runs this binary set-user-ID to check that
 * TASKLOCAL_LOG is ignored in a secure-execution process.
 *
 * TL_BUILD_DIR is the absolute path of the build directory.
 */
#include "testutil.h"

#include <elf.h>
#include <execinfo.h>
#include <link.h>
#include <stdarg.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <ucontext.h>

#include "tasklocal.h"

int tl_dump(int fd);                       /* not in every version of the header yet */

#define LIB TL_BUILD_DIR "/libtasklocal.so"
#define LEAKPLUG TL_BUILD_DIR "/tests/libtlleakplug.so"
#define FAKEBT TL_BUILD_DIR "/tests/libtlfakebt.so"
#define PROG(name) TL_BUILD_DIR "/tests/programs/" name
#define PRELOAD "LD_PRELOAD=" LIB
#define PRELOAD_PLUG "LD_PRELOAD=" LIB " " LEAKPLUG

/* A run that takes longer has hung; it is killed. The sanitizer build is
 * several times slower, so the limits are generous. */
#define DEADLINE_S 40
#define TCASE_TIMEOUT_S 120

/* ------------------------------------------------------------------------
 * Running programs
 * ------------------------------------------------------------------------ */

struct run {
  int status;                              /* exit status, or 128 + signal */
  char *out, *err;
};

static int starts_with(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Starts argv with this process's environment without the variables a
 * case sets, with extra (NULL-terminated) added. Sanitizer builds need
 * their runtime's link-order check off under LD_PRELOAD, and their own
 * leak checker off: the programs leak on purpose, and it would also exit
 * with status 23. */
static void start(struct tl_test_proc *c, const char *const argv[], const char *const extra[])
{
  static const char *const case_vars[] = {"LD_PRELOAD=", "TASKLOCAL_", "ASAN_OPTIONS=", NULL};
  const char *vars[16] = {TL_TEST_ASAN_ENV};
  size_t n = 1;
  while (extra != NULL && extra[n - 1] != NULL) {
    ck_assert(n < sizeof vars / sizeof vars[0]);
    vars[n] = extra[n - 1];
    n++;
  }
  char **env = tl_test_env(case_vars, vars, n);
  tl_test_spawn(c, (char *const *)argv, env);
  free(env);
}

/* AddressSanitizer warns that it does not fully support swapcontext, and
 * when exit() is called on a coroutine stack; the sanitizer build's runs
 * drop those lines, which are not the shim's output. */
static void strip_sanitizer_notes(char *text)
{
  static const char *const notes[] = {
    "==*WARNING: ASan doesn't fully support makecontext/swapcontext",
    "==*WARNING: ASan is ignoring requested __asan_handle_no_return",
    "False positive error reports may follow",
    "For details see https://github.com/google/sanitizers/issues/189",
  };
  char *w = text;
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
    int drop = 0;
    for (size_t i = 0; i < sizeof notes / sizeof notes[0] && !drop; i++) {
      const char *n = notes[i];
      if (n[0] == '=')
        drop = starts_with(p, "==") && memmem(p, len, n + 3, strlen(n + 3)) != NULL;
      else
        drop = starts_with(p, n);
    }
    if (!drop) {
      memmove(w, p, len);
      w += len;
    }
    p += len;
  }
  *w = '\0';
}

/* Closes its stdin, reads its output to the end and reaps it. */
static void finish(struct tl_test_proc *c, struct run *r)
{
  tl_test_reap(c, DEADLINE_S);
  r->status = WIFEXITED(c->wstatus) ? WEXITSTATUS(c->wstatus) : 128 + WTERMSIG(c->wstatus);
  r->out = c->out.data;
  r->err = c->err.data;
  strip_sanitizer_notes(r->err);
}

static void run(struct run *r, const char *const argv[], const char *const extra[])
{
  struct tl_test_proc c;
  start(&c, argv, extra);
  finish(&c, r);
}

static void run_free(struct run *r)
{
  free(r->out);
  free(r->err);
}

/* ------------------------------------------------------------------------
 * Reading reports
 * ------------------------------------------------------------------------ */

static int count(const char *text, const char *needle)
{
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

/* The lines of text that hold both a and b. */
static int lines_with(const char *text, const char *a, const char *b)
{
  int n = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
    n += memmem(p, len, a, strlen(a)) != NULL && memmem(p, len, b, strlen(b)) != NULL;
    p += len + (nl != NULL);
  }
  return n;
}

static int lines(const char *text)
{
  int n = 0;
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

/* Every line of a report begins with "tasklocal: ". */
static void assert_prefixed(const char *text)
{
  for (const char *p = text; *p;) {
    ck_assert_msg(starts_with(p, "tasklocal: "), "a line without the prefix: %.80s", p);
    const char *nl = strchr(p, '\n');
    if (nl == NULL)
      break;
    p = nl + 1;
  }
}

static void assert_has(const char *text, const char *needle)
{
  ck_assert_msg(strstr(text, needle) != NULL, "missing \"%s\" in:\n%.1500s", needle, text);
}

/* Messages quote at most the first 1500 characters of a report: Check
 * aborts the test with "Message string too long" (exit status 2, hiding
 * which assertion failed) for a message near its 4 KiB limit. */

/* The report holds exactly one summary line, and it is this one. Lines
 * end with " (pid N)" in a process that forked (Check runs each case of
 * this suite in a forked process). */
static void assert_summary(const char *text, const char *kind, int tasks, int locals)
{
  char want[128], head[64];
  snprintf(head, sizeof head, "tasklocal: %s summary: ", kind);
  snprintf(want, sizeof want, "%d tasks, %d locals", tasks, locals);
  ck_assert_msg(count(text, head) == 1, "%d summary lines, not 1, in:\n%.1500s", count(text, head), text);
  const char *at = strstr(text, head) + strlen(head);
  ck_assert_msg(starts_with(at, want) && (at[strlen(want)] == '\n' || starts_with(at + strlen(want), " (pid ")),
                "the summary is not \"%s\" in:\n%.1500s", want, text);
}

/* The line of the summary within a report, for reports tagged with a pid. */
static void assert_summary_pid(const char *text, int tasks, int locals, long pid)
{
  char want[128];
  snprintf(want, sizeof want, "tasklocal: leak summary: %d tasks, %d locals (pid %ld)\n", tasks, locals, pid);
  assert_has(text, want);
}

/* ------------------------------------------------------------------------
 * Leak reports at exit
 * ------------------------------------------------------------------------ */

START_TEST(mixed_leaks_reported)
{
  const char *argv[] = {PROG("leak_mixed"), NULL};
  struct run plain, r;
  run(&plain, argv, NULL);
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", NULL};
  run(&r, argv, env);
  ck_assert_int_eq(plain.status, 0);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, plain.out);
  assert_prefixed(r.err);
  assert_summary(r.err, "leak", 3, 5);
  /* Entry functions, states and where each task was made. */
  assert_has(r.err, ": never started;");
  assert_has(r.err, "\"waiter\": suspended;");
  assert_has(r.err, ": abandoned (");
  assert_has(r.err, "entry: never_run tests/programs/leak_mixed.c:");
  assert_has(r.err, "entry: wait_forever tests/programs/leak_mixed.c:");
  assert_has(r.err, "entry: abandoned_worker tests/programs/leak_mixed.c:");
  assert_has(r.err, " in make ");
  assert_has(r.err, " in main ");
  /* The suspended stack, innermost first. */
  const char *at = strstr(r.err, "suspended at:");
  ck_assert_ptr_nonnull(at);
  const char *park = strstr(at, " in park "), *wait = strstr(at, " in wait_forever ");
  ck_assert_ptr_nonnull(park);
  ck_assert_ptr_nonnull(wait);
  ck_assert_msg(park < wait, "park is not above wait_forever:\n%.1500s", at);
  /* Locals by key name, and the dropped values. */
  assert_has(r.err, "key \"session\" = 0x5e5510");
  assert_has(r.err, "key \"buffer\" = 0xb0ff");
  assert_has(r.err, "key \"conn\" = 0xc022");
  assert_has(r.err, "dropped value 0x4e01 of key \"request\" (no destructor)");
  assert_has(r.err, "entry: drops_value ");
  /* Where the dropped value was set (backtraces are on with LEAKS). */
  const char *drop = strstr(r.err, "dropped value 0x4e01");
  ck_assert_ptr_nonnull(drop);
  const char *set_at = strstr(drop, "  set at:\n");
  ck_assert_ptr_nonnull(set_at);
  const char *next = strstr(drop + 1, "dropped value");
  const char *setter = strstr(set_at, " in drops_value ");
  ck_assert_msg(setter != NULL && (next == NULL || setter < next), "no drops_value frame where it was set:\n%.1500s", drop);
  assert_has(r.err, "dropped value 0x7a7e of key \"thread.state\"");
  ck_assert_int_eq(count(r.err, "0xc0f1"), 0); /* the main thread's root: not a leak */
  ck_assert_int_eq(count(r.err, "0xc023"), 0); /* had a destructor */
  run_free(&plain);
  run_free(&r);
}
END_TEST

START_TEST(clean_program_reports_zero)
{
  const char *argv[] = {PROG("leak_clean"), NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "tasklocal: leak summary: 0 tasks, 0 locals\n");
  run_free(&r);
}
END_TEST

START_TEST(leaks_error_sets_status)
{
  const char *mixed[] = {PROG("leak_mixed"), NULL};
  const char *clean[] = {PROG("leak_clean"), NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=error", NULL};
  struct run r;
  run(&r, mixed, env);
  ck_assert_int_eq(r.status, 23);
  assert_summary(r.err, "leak", 3, 5);
  /* The program's buffered stdout is not lost by the early exit. */
  assert_has(r.out, "main: done\n");
  run_free(&r);
  run(&r, clean, env);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 0, 0);
  run_free(&r);
}
END_TEST

START_TEST(no_options_no_output)
{
  const char *argv[] = {PROG("leak_mixed"), NULL};
  const char *env[] = {PRELOAD_PLUG, NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  run_free(&r);
}
END_TEST

START_TEST(backtrace_off)
{
  const char *argv[] = {PROG("leak_mixed"), NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", "TASKLOCAL_BACKTRACE=0", NULL};
  struct run r;
  run(&r, argv, env);
  assert_summary(r.err, "leak", 3, 5);
  assert_has(r.err, "created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
  ck_assert_int_eq(count(r.err, " in main "), 0);
  assert_has(r.err, " in park ");          /* suspended stacks are unwound at report time */
  run_free(&r);
}
END_TEST

START_TEST(backtrace_hook_replaces_capture)
{
  const char *argv[] = {PROG("leak_mixed"), NULL};
  const char *env[] = {"LD_PRELOAD=" LIB " " LEAKPLUG " " FAKEBT, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, env);
  assert_summary(r.err, "leak", 3, 5);
  assert_has(r.err, "#0 ");
  assert_has(r.err, " in fakebt_marker_one tests/plugin/fakebt.c:");
  assert_has(r.err, " in fakebt_marker_two tests/plugin/fakebt.c:");
  ck_assert_int_eq(count(r.err, " in make "), 0);
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * However the process ends
 * ------------------------------------------------------------------------ */

static void exit_case(const char *mode, const char *leaks, int status, int tasks)
{
  const char *argv[] = {PROG("leak_exit"), mode, NULL};
  char opt[64];
  snprintf(opt, sizeof opt, "TASKLOCAL_LEAKS=%s", leaks);
  const char *env[] = {PRELOAD, opt, NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_msg(r.status == status, "mode %s: status %d, not %d; stderr:\n%.1500s", mode, r.status, status, r.err);
  assert_prefixed(r.err);
  assert_summary(r.err, "leak", tasks, 0);
  assert_has(r.err, "entry: parked_here ");
  assert_has(r.err, " in parked_here ");
  run_free(&r);
}

START_TEST(exit_through_uclink_null)
{
  /* glibc calls exit(0) on the coroutine's stack when it returns. */
  exit_case("uclink", "1", 0, 1);
  exit_case("uclink", "error", 23, 1);
}
END_TEST

START_TEST(exit_called_in_coroutine)
{
  exit_case("call", "1", 3, 2);
  const char *argv[] = {PROG("leak_exit"), "call", NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, env);
  assert_has(r.err, ": running (exit was called in it);");
  assert_has(r.err, "entry: calls_exit ");
  assert_has(r.err, " in calls_exit ");
  run_free(&r);
}
END_TEST

/* _exit skips the exit handlers: the stats line is written anyway (the
 * only record of a forked worker's tasks), the leak report is not (as
 * with LeakSanitizer). */
START_TEST(underscore_exit_writes_stats_only)
{
  const char *argv[] = {PROG("leak_exit"), "_exit", NULL};
  const char *stats[] = {PRELOAD, "TASKLOCAL_STATS=1", NULL};
  struct run r;
  run(&r, argv, stats);
  ck_assert_int_eq(r.status, 5);
  ck_assert_str_eq(r.err,
                   "tasklocal: stats: created=2 finished=0 abandoned=0 released=0 switches=3 untracked=0 peak=2 keys=0\n");
  run_free(&r);
  const char *leaks[] = {PRELOAD, "TASKLOCAL_LEAKS=1", NULL};
  run(&r, argv, leaks);
  ck_assert_int_eq(r.status, 5);
  ck_assert_str_eq(r.err, "");
  run_free(&r);
}
END_TEST

START_TEST(exit_on_small_stack)
{
  /* The report runs on a stack of its own when the caller's is small. */
  exit_case("small", "1", 3, 2);
  exit_case("small", "error", 23, 2);
}
END_TEST

START_TEST(exit_from_other_thread)
{
  exit_case("thread", "1", 4, 1);
}
END_TEST

START_TEST(freed_stack_is_not_unwound)
{
  const char *unmap[] = {PROG("leak_freed"), "unmap", NULL};
  const char *hidden[] = {PROG("leak_freed"), "syscall", NULL};
  const char *garbage[] = {PROG("leak_freed"), "garbage", NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", "TASKLOCAL_STATS=1", NULL};
  struct run r;
  /* munmap, seen: the task is released, and no leak. */
  run(&r, unmap, env);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 0, 0);
  assert_has(r.err, " abandoned=0 released=1 ");
  run_free(&r);
  /* The system call, unseen: the task stays, and its frames are not read.
   * (Memory mapped later at the same place and unmapped through munmap,
   * by the report itself or a sanitizer's runtime at exit, may still
   * release it before the stats line.) */
  run(&r, hidden, env);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 1, 0);
  assert_has(r.err, "unknown: its stack is no longer mapped");
  run_free(&r);
  run(&r, garbage, env);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 1, 0);
  ck_assert_int_eq(count(r.err, "0x4141414141414141"), 0);
  run_free(&r);
}
END_TEST

START_TEST(shared_stack_unreliable)
{
  const char *argv[] = {PROG("leak_shared"), NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 2, 0);
  /* Every entry says so. The two are alike, one group described once,
   * except where AddressSanitizer's swapcontext leaves them apart. */
  int entries = count(r.err, " tasks like this (") + count(r.err, "tasklocal: task ");
  ck_assert_int_eq(count(r.err, "suspended at (unreliable: its stack is shared with task "), entries);
  if (!TL_TEST_UNDER_ASAN) {
    assert_has(r.err, "tasklocal: 2 tasks like this (ids 2, 3): suspended; made by task 1; parked\n");
    ck_assert_int_eq(count(r.err, "suspended at (unreliable: its stack is shared with task 3,"), 1);
  }
  assert_has(r.err, " in shared_yield ");
  run_free(&r);
}
END_TEST

START_TEST(forked_child_reports_itself)
{
  const char *argv[] = {PROG("leak_fork"), NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  long parent = 0, child = 0;
  const char *p = strstr(r.out, "parent ");
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq(sscanf(p, "parent %ld: child %ld", &parent, &child), 2);
  assert_prefixed(r.err);
  ck_assert_int_eq(count(r.err, "leak summary: "), 2);
  assert_summary_pid(r.err, 2, 0, child);
  assert_summary_pid(r.err, 1, 0, parent);
  assert_has(r.err, " in suspended_in_child ");
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * Stats
 * ------------------------------------------------------------------------ */

START_TEST(stats_line_counts)
{
  const char *clean[] = {PROG("leak_clean"), NULL};
  const char *mixed[] = {PROG("leak_mixed"), NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_STATS=1", NULL};
  struct run r;
  run(&r, clean, env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err,
                   "tasklocal: stats: created=3 finished=3 abandoned=0 released=0 switches=18 untracked=0 peak=3 keys=2\n");
  run_free(&r);
  run(&r, mixed, env);
  ck_assert_str_eq(r.err,
                   "tasklocal: stats: created=5 finished=2 abandoned=1 released=0 switches=8 untracked=0 peak=3 keys=7\n");
  run_free(&r);
  /* Three contexts made 50 times each and run once: 147 never-started
   * tasks released in place, their stacks taken by the next makecontext
   * (the never-started loop of makecontext), and
   * never more than main and one coroutine alive. */
  const char *remade[] = {PROG("remade"), NULL};
  const char *shim_only[] = {PRELOAD, "TASKLOCAL_STATS=1", NULL};
  run(&r, remade, shim_only);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err,
                   "tasklocal: stats: created=150 finished=3 abandoned=0 released=147 switches=12 untracked=0 peak=2 keys=0\n");
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * Dumps
 * ------------------------------------------------------------------------ */

static char *read_file(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct tl_test_buf b = {0};
  if (fd >= 0) {
    tl_test_buf_read_fd(&b, fd);
    close(fd);
  } else {
    tl_test_buf_add(&b, "", 0);            /* not written yet: empty */
  }
  return b.data;
}

static void temp_path(char *buf, size_t size, const char *name)
{
  char dir[] = "/tmp/tlreport.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(buf, size, "%s/%s", dir, name);
}

static void dump_case(const char *signame, int signo)
{
  char log[256], opt_log[300], opt_sig[64];
  temp_path(log, sizeof log, "dump.log");
  snprintf(opt_log, sizeof opt_log, "TASKLOCAL_LOG=%s", log);
  snprintf(opt_sig, sizeof opt_sig, "TASKLOCAL_DUMP_SIGNAL=%s", signame);
  const char *argv[] = {PROG("leak_dump"), NULL};
  const char *env[] = {PRELOAD, opt_sig, opt_log, NULL};
  struct tl_test_proc c;
  start(&c, argv, env);
  ck_assert_msg(tl_test_read_until(&c, "ready\n", DEADLINE_S), "leak_dump did not start");
  /* Several dumps while the threads switch; wait for each to be written. */
  char *text = NULL;
  for (int i = 1; i <= 3; i++) {
    ck_assert_int_eq(kill(c.pid, signo), 0);
    time_t end = time(NULL) + DEADLINE_S;
    for (;;) {
      free(text);
      text = read_file(log);
      if (count(text, "tasklocal: dump summary: ") >= i || time(NULL) > end)
        break;
      usleep(20 * 1000);
    }
    ck_assert_msg(count(text, "tasklocal: dump summary: ") >= i, "dump %d not written:\n%.1500s", i, text);
  }
  struct run r;
  finish(&c, &r);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "ready\nstopped\n");
  ck_assert_str_eq(r.err, "");
  free(text);
  text = read_file(log);
  assert_prefixed(text);
  ck_assert_int_eq(count(text, "tasklocal: dump summary: 7 tasks, 0 locals\n"), 3);
  ck_assert_int_eq(count(text, "leak summary"), 0);
  assert_has(text, "entry: parked_for_dump ");
  assert_has(text, " in deep_wait ");
  assert_has(text, " in parked_for_dump ");
  assert_has(text, "entry: spinning_worker ");
  ck_assert_msg(count(text, ": running on another thread (whose root task is ") > 0,
                "no task seen running on its thread:\n%.1500s", text);
  run_free(&r);
  free(text);
}

START_TEST(dump_on_signal_while_switching)
{
  dump_case("USR2", SIGUSR2);
}
END_TEST

START_TEST(dump_signal_spellings)
{
  dump_case("SIGUSR1", SIGUSR1);
  dump_case("12", SIGUSR2);
}
END_TEST

static ucontext_t here_ctx, co_ctx;
static tl_key_t dump_key;

static void parked(void)
{
  tl_set(dump_key, (void *)0xabc);
  tl_task_set_name(NULL, "parked-in-test");
  swapcontext(&co_ctx, &here_ctx);
  __asm__ volatile(""); /* no tail call: the frame stays for the backtrace */
}

static int dump_to_memory(char **text)
{
  int fd = memfd_create("dump", MFD_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  int err = tl_dump(fd);
  struct tl_test_buf b = {0};
  lseek(fd, 0, SEEK_SET);
  tl_test_buf_read_fd(&b, fd);
  close(fd);
  *text = b.data;
  return err;
}

START_TEST(tl_dump_in_process)
{
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.name = "dump.key";
  ck_assert_int_eq(tl_key_create_attr(&dump_key, &attr), 0);
  static char stack[128 * 1024];
  tl_test_context(&co_ctx, stack, sizeof stack, parked, &here_ctx);
  swapcontext(&here_ctx, &co_ctx);

  char *text;
  ck_assert_int_eq(dump_to_memory(&text), 0);
  assert_prefixed(text);
  assert_summary(text, "dump", 1, 1);
  assert_has(text, "\"parked-in-test\": suspended;");
  assert_has(text, "entry: parked ");
  assert_has(text, " in parked ");
  assert_has(text, "key \"dump.key\" = 0xabc");
  free(text);

  ck_assert_int_eq(tl_dump(-1), EBADF);
  int fd = open("/dev/null", O_WRONLY);
  close(fd);
  ck_assert_int_eq(tl_dump(fd), EBADF);
  fd = open("/dev/null", O_RDONLY);
  ck_assert_int_eq(tl_dump(fd), EBADF);  /* every write fails */
  close(fd);
}
END_TEST

static char *inner_text;
static int inner_err;

static void dumps_itself(void)
{
  inner_err = dump_to_memory(&inner_text);
}

START_TEST(tl_dump_from_coroutine)
{
  static char stack[64 * 1024];
  tl_test_context(&co_ctx, stack, sizeof stack, dumps_itself, &here_ctx);
  swapcontext(&here_ctx, &co_ctx);
  ck_assert_int_eq(inner_err, 0);
  assert_summary(inner_text, "dump", 1, 0);
  assert_has(inner_text, ": running (it called tl_dump);");
  assert_has(inner_text, "running at:");
  assert_has(inner_text, " in dumps_itself ");
  free(inner_text);
}
END_TEST

/* ------------------------------------------------------------------------
 * Options
 * ------------------------------------------------------------------------ */

/* A bad value: one warning line naming the variable, the default kept, the
 * program unaffected. */
static void bad_option(const char *setting, const char *name, const char *also)
{
  const char *argv[] = {PROG("leak_clean"), NULL};
  struct run plain, r;
  run(&plain, argv, NULL);
  const char *env[] = {PRELOAD, setting, also, NULL};
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, plain.out);
  const char *warn = also == NULL ? r.err : strstr(r.err, name);
  ck_assert_msg(warn != NULL && starts_with(r.err, "tasklocal: "), "no warning for %s:\n%.1500s", setting, r.err);
  ck_assert_msg(count(r.err, name) == 1, "not one warning for %s:\n%.1500s", setting, r.err);
  assert_has(r.err, "using the default");
  assert_prefixed(r.err);
  if (also == NULL)
    ck_assert_msg(lines(r.err) == 1, "more than the warning for %s:\n%.1500s", setting, r.err);
  run_free(&plain);
  run_free(&r);
}

START_TEST(bad_option_values)
{
  bad_option("TASKLOCAL_LEAKS=maybe", "TASKLOCAL_LEAKS", NULL);
  bad_option("TASKLOCAL_BACKTRACE=2", "TASKLOCAL_BACKTRACE", NULL);
  bad_option("TASKLOCAL_DUMP_SIGNAL=SIGFOO", "TASKLOCAL_DUMP_SIGNAL", NULL);
  bad_option("TASKLOCAL_DUMP_SIGNAL=KILL", "TASKLOCAL_DUMP_SIGNAL", NULL);
  bad_option("TASKLOCAL_DUMP_SIGNAL=SEGV", "TASKLOCAL_DUMP_SIGNAL", NULL);
  bad_option("TASKLOCAL_DUMP_SIGNAL=999", "TASKLOCAL_DUMP_SIGNAL", NULL);
  bad_option("TASKLOCAL_STATS=please", "TASKLOCAL_STATS", NULL);
  bad_option("TASKLOCAL_VERBOSE=loud", "TASKLOCAL_VERBOSE", NULL);
  bad_option("TASKLOCAL_REPORT_FORMAT=xml", "TASKLOCAL_REPORT_FORMAT", NULL);
  bad_option("TASKLOCAL_REPORT_MAX=lots", "TASKLOCAL_REPORT_MAX", NULL);
  bad_option("TASKLOCAL_REPORT_MAX=-1", "TASKLOCAL_REPORT_MAX", NULL);
  /* The default is kept, and the other options still work. */
  bad_option("TASKLOCAL_BACKTRACE=sometimes", "TASKLOCAL_BACKTRACE", "TASKLOCAL_LEAKS=1");
}
END_TEST

START_TEST(boolean_spellings)
{
  const char *argv[] = {PROG("leak_clean"), NULL};
  const char *on[] = {"1", "yes", "YES", "on", "true", "True"};
  const char *off[] = {"0", "no", "off", "false", "FALSE", ""};
  for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
    char opt[64];
    snprintf(opt, sizeof opt, "TASKLOCAL_LEAKS=%s", on[i]);
    const char *env[] = {PRELOAD, opt, NULL};
    struct run r;
    run(&r, argv, env);
    ck_assert_msg(strcmp(r.err, "tasklocal: leak summary: 0 tasks, 0 locals\n") == 0, "%s:\n%.1500s", opt, r.err);
    run_free(&r);
    snprintf(opt, sizeof opt, "TASKLOCAL_LEAKS=%s", off[i]);
    run(&r, argv, env);
    ck_assert_msg(strcmp(r.err, "") == 0, "%s:\n%.1500s", opt, r.err);
    run_free(&r);
  }
}
END_TEST

START_TEST(verbose_prints_options)
{
  const char *argv[] = {PROG("leak_clean"), NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_VERBOSE=1", "TASKLOCAL_LEAKS=error", "TASKLOCAL_DUMP_SIGNAL=sigusr2",
                       NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  assert_prefixed(r.err);
  assert_has(r.err, "tasklocal: option TASKLOCAL_LEAKS=error\n");
  assert_has(r.err, "tasklocal: option TASKLOCAL_BACKTRACE=1\n");
  assert_has(r.err, "tasklocal: option TASKLOCAL_DUMP_SIGNAL=SIGUSR2 (12)\n");
  assert_has(r.err, "tasklocal: option TASKLOCAL_STATS=0\n");
  assert_has(r.err, "tasklocal: option TASKLOCAL_LOG=(stderr)\n");
  assert_has(r.err, "tasklocal: option TASKLOCAL_REPORT_FORMAT=text\n");
  assert_has(r.err, "tasklocal: option TASKLOCAL_REPORT_MAX=50\n");
  run_free(&r);
}
END_TEST

START_TEST(log_to_file)
{
  char log[256], opt[300];
  temp_path(log, sizeof log, "leaks.log");
  snprintf(opt, sizeof opt, "TASKLOCAL_LOG=%s", log);
  const char *argv[] = {PROG("leak_mixed"), NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", "TASKLOCAL_STATS=1", opt, NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  struct stat st;
  ck_assert_int_eq(stat(log, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  run_free(&r);
  /* Appended to, not truncated. */
  run(&r, argv, env);
  char *text = read_file(log);
  assert_prefixed(text);
  ck_assert_int_eq(count(text, "tasklocal: leak summary: 3 tasks, 5 locals\n"), 2);
  ck_assert_int_eq(count(text, "tasklocal: stats: "), 2);
  free(text);
  run_free(&r);
}
END_TEST

START_TEST(log_that_cannot_be_opened)
{
  const char *argv[] = {PROG("leak_clean"), NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", "TASKLOCAL_LOG=/nonexistent/dir/x.log", NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  assert_prefixed(r.err);
  assert_has(r.err, "cannot open TASKLOCAL_LOG=/nonexistent/dir/x.log");
  assert_has(r.err, "tasklocal: leak summary: 0 tasks, 0 locals\n");
  ck_assert_int_eq(lines(r.err), 2);
  run_free(&r);
}
END_TEST

/* In the sanitizer build, LeakSanitizer cannot run in a set-user-ID
 * process (it fails with status 1), and ASAN_OPTIONS is not read there:
 * this hook, which AddressSanitizer calls at start, turns it off for that
 * child only. Other builds never call it. */
const char *__asan_default_options(void);
__attribute__((visibility("default"))) const char *__asan_default_options(void)
{
  return getauxval(AT_SECURE) ? "detect_leaks=0" : "";
}

/* The child side of secure_exec_ignores_log: this binary, set-user-ID. */
static int secure_child(void)
{
  printf("secure=%lu\n", getauxval(AT_SECURE));
  fflush(stdout);
  /* Not tl_test_context: its assertion would have no Check runner to
   * report to in this process. */
  static char stack[64 * 1024];
  getcontext(&co_ctx);
  co_ctx.uc_stack.ss_sp = stack;
  co_ctx.uc_stack.ss_size = sizeof stack;
  co_ctx.uc_link = &here_ctx;
  makecontext(&co_ctx, parked, 0);
  return 0;
}

static int copy_file(const char *from, const char *to, mode_t mode)
{
  int in = open(from, O_RDONLY | O_CLOEXEC);
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
  char buf[65536];
  ssize_t n;
  int ok = in >= 0 && out >= 0;
  while (ok && (n = read(in, buf, sizeof buf)) > 0)
    ok = write(out, buf, (size_t)n) == n;
  if (in >= 0)
    close(in);
  if (out >= 0 && close(out) != 0)
    ok = 0;
  return ok && chmod(to, mode) == 0 ? 0 : -1;
}

START_TEST(secure_exec_ignores_log)
{
  if (geteuid() != 0) {
    fprintf(stderr, "secure_exec_ignores_log: skipped (needs root to make a set-user-ID copy)\n");
    return;
  }
  char exe[256], log[256], opt[300];
  temp_path(exe, sizeof exe, "check_report_setuid");
  temp_path(log, sizeof log, "secure.log");
  snprintf(opt, sizeof opt, "TASKLOCAL_LOG=%s", log);
  ck_assert_int_eq(copy_file("/proc/self/exe", exe, 0755), 0);
  ck_assert_int_eq(chown(exe, 65534, 65534), 0);
  ck_assert_int_eq(chmod(exe, 04755), 0);
  const char *argv[] = {exe, "--secure-child", NULL};
  const char *env[] = {"TASKLOCAL_LEAKS=1", opt, NULL};
  struct run r;
  run(&r, argv, env);
  if (strstr(r.out, "secure=1") == NULL) {
    fprintf(stderr, "secure_exec_ignores_log: skipped (set-user-ID bits are ignored here: %s)\n", r.out);
    run_free(&r);
    return;
  }
  ck_assert_msg(r.status == 0, "status %d; stderr:\n%.1500s", r.status, r.err);
  assert_has(r.err, "tasklocal: TASKLOCAL_LOG is ignored in a secure-execution");
  ck_assert_int_eq(count(r.err, "TASKLOCAL_LOG"), 1);
  assert_has(r.err, "tasklocal: leak summary: 1 tasks, 0 locals\n");
  ck_assert_int_ne(access(log, F_OK), 0);
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * tasklocal-run
 * ------------------------------------------------------------------------ */

/* scripts/tasklocal-run of the source tree holding the build directory,
 * or else of the current directory (make runs the suites from the top of
 * the source tree, wherever BUILD is). */
static void script_source(char *buf, size_t size)
{
  char dir[256];
  snprintf(dir, sizeof dir, "%s", TL_BUILD_DIR);
  for (;;) {
    snprintf(buf, size, "%s/scripts/tasklocal-run", dir);
    if (access(buf, X_OK) == 0)
      return;
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
      break;
    *slash = '\0';
  }
  ck_assert_ptr_nonnull(getcwd(dir, sizeof dir));
  snprintf(buf, size, "%s/scripts/tasklocal-run", dir);
  ck_assert_msg(access(buf, X_OK) == 0, "scripts/tasklocal-run is neither above %s nor in %s", TL_BUILD_DIR, dir);
}

/* A copy of the script in <tmp>/bin, with the library linked as
 * <tmp>/<libdir>/libtasklocal.so unless libdir is NULL. */
static void script_copy(char *script, size_t size, const char *libdir)
{
  char src[600], root[] = "/tmp/tlrun.XXXXXX", path[600];
  script_source(src, sizeof src);
  ck_assert_ptr_nonnull(mkdtemp(root));
  snprintf(path, sizeof path, "%s/bin", root);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  snprintf(script, size, "%s/bin/tasklocal-run", root);
  ck_assert_int_eq(copy_file(src, script, 0755), 0);
  if (libdir != NULL) {
    snprintf(path, sizeof path, "%s/%s", root, libdir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/%s/libtasklocal.so", root, libdir);
    ck_assert_int_eq(symlink(LIB, path), 0);
  }
}

START_TEST(run_script_help_and_errors)
{
  char script[600];
  script_copy(script, sizeof script, "build");
  struct run r;
  const char *help[] = {script, "--help", NULL};
  run(&r, help, NULL);
  ck_assert_int_eq(r.status, 0);
  const char *words[] = {"--leaks", "--leaks=error", "--stats", "--backtrace", "--dump-signal SIG", "--log FILE",
                         "--help", "--version", "LD_PRELOAD", "TASKLOCAL_LIB", "23"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    assert_has(r.out, words[i]);
  run_free(&r);

  const char *version[] = {script, "--version", NULL};
  run(&r, version, NULL);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "tasklocal-run 0.3.0\n");
  run_free(&r);

  const char *unknown[] = {script, "--leak", PROG("leak_clean"), NULL};
  run(&r, unknown, NULL);
  ck_assert_int_eq(r.status, 2);
  assert_has(r.err, "unknown option: --leak");
  run_free(&r);

  const char *missing[] = {script, "--leaks", NULL};
  run(&r, missing, NULL);
  ck_assert_int_eq(r.status, 2);
  assert_has(r.err, "no program given");
  run_free(&r);

  const char *novalue[] = {script, "--log", NULL};
  run(&r, novalue, NULL);
  ck_assert_int_eq(r.status, 2);
  assert_has(r.err, "needs a value");
  run_free(&r);

  const char *noprog[] = {script, "--", "/nonexistent/program", NULL};
  run(&r, noprog, NULL);
  ck_assert_int_eq(r.status, 127);
  assert_has(r.err, "cannot find the program");
  run_free(&r);
}
END_TEST

START_TEST(run_script_runs_with_options)
{
  char script[600], log[256], logopt[300];
  script_copy(script, sizeof script, "build");
  temp_path(log, sizeof log, "run.log");
  snprintf(logopt, sizeof logopt, "--log=%s", log);
  /* An existing LD_PRELOAD (the plugin) is kept: the locals need it. */
  const char *argv[] = {script, "--leaks=error", "--stats", "--backtrace", "--dump-signal", "USR2", logopt, "--",
                        PROG("leak_mixed"), NULL};
  const char *env[] = {"LD_PRELOAD=" LEAKPLUG, NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 23);
  assert_has(r.out, "main: done\n");
  char *text = read_file(log);
  assert_summary(text, "leak", 3, 5);
  assert_has(text, "tasklocal: stats: created=5 finished=2 abandoned=1 released=0 switches=8 untracked=0 peak=3 keys=7\n");
  assert_has(text, " in main ");
  free(text);
  run_free(&r);

  const char *leaks[] = {script, "--leaks", PROG("leak_exit"), "uclink", NULL};
  run(&r, leaks, NULL);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 1, 0);
  run_free(&r);
}
END_TEST

START_TEST(run_script_finds_library)
{
  char script[600];
  const char *argv_tmpl[] = {NULL, "--stats", PROG("leak_clean"), NULL};
  struct run r;

  script_copy(script, sizeof script, "lib"); /* an installation: <prefix>/bin and <prefix>/lib */
  argv_tmpl[0] = script;
  run(&r, argv_tmpl, NULL);
  ck_assert_int_eq(r.status, 0);
  assert_has(r.err, "tasklocal: stats: created=3 ");
  run_free(&r);

  script_copy(script, sizeof script, NULL);  /* neither: TASKLOCAL_LIB, or an error */
  argv_tmpl[0] = script;
  run(&r, argv_tmpl, NULL);
  ck_assert_int_eq(r.status, 127);
  assert_has(r.err, "cannot find libtasklocal.so");
  run_free(&r);
  const char *env[] = {"TASKLOCAL_LIB=" LIB, NULL};
  run(&r, argv_tmpl, env);
  ck_assert_int_eq(r.status, 0);
  assert_has(r.err, "tasklocal: stats: created=3 ");
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * Frames: names, source lines, debug files
 * ------------------------------------------------------------------------ */

/* The top of the source tree: the directory above the build directory
 * that holds tests/, or else the current directory (make runs the suites
 * from there). */
static void source_dir(char *buf, size_t size)
{
  char path[600];
  snprintf(buf, size, "%s", TL_BUILD_DIR);
  for (;;) {
    snprintf(path, sizeof path, "%s/tests/check_report.c", buf);
    if (access(path, R_OK) == 0)
      return;
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
      break;
    *slash = '\0';
  }
  ck_assert_ptr_nonnull(getcwd(buf, size));
}

/* The number of the first line of the source file rel (from the top of
 * the tree) that holds needle. */
static int source_line(const char *rel, const char *needle)
{
  char dir[512], path[700], line[512];
  source_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  int n = 0, found = 0;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    n++;
    found = strstr(line, needle) != NULL;
  }
  fclose(f);
  ck_assert_msg(found, "no \"%s\" in %s", needle, path);
  return n;
}

/* A shell command, in this test's process; 0 when it succeeded. */
static int shell(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int shell(const char *fmt, ...)
{
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void run_demo(struct run *r, const char *exe)
{
  const char *argv[] = {exe, NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", NULL};
  run(r, argv, env);
  ck_assert_msg(r->status == 0, "%s: status %d; stderr:\n%.1500s", exe, r->status, r->err);
  assert_prefixed(r->err);
  assert_summary(r->err, "leak", 2, 2);
}

START_TEST(frames_have_source_lines)
{
  struct run r;
  run_demo(&r, PROG("leak_demo"));
  char want[256];
  /* As sanitizers print a frame: "#0 0x... in FUNCTION FILE:LINE (MODULE)". */
  snprintf(want, sizeof want, " in wait_for_lock tests/programs/leak_demo.c:%d (leak_demo)\n",
           source_line("tests/programs/leak_demo.c", "swapcontext(&r->ctx, &sched_ctx);"));
  assert_has(r.err, want);
  /* The innermost frame of the program in the suspended stack (with
   * AddressSanitizer, its swapcontext comes first). */
  const char *at = strstr(r.err, "  suspended at:\ntasklocal:     #0 0x");
  ck_assert_ptr_nonnull(at);
  at = strstr(at, "(leak_demo)\n");
  ck_assert_ptr_nonnull(at);
  while (at > r.err && at[-1] != '\n')
    at--;
  const char *end = strchr(at, '\n');
  ck_assert_msg(end != NULL && (size_t)(end - at) >= strlen(want) - 1 &&
                  strncmp(end + 1 - strlen(want), want, strlen(want)) == 0,
                "wait_for_lock is not frame #0 of the suspended stack:\n%.1500s", r.err);
  snprintf(want, sizeof want, " in handle_request tests/programs/leak_demo.c:%d (leak_demo)\n",
           source_line("tests/programs/leak_demo.c", "wait_for_lock(r);"));
  assert_has(r.err, want);
  /* The entry function where its code begins: the line of its opening
   * brace, after the line that names it. */
  snprintf(want, sizeof want, "  entry: handle_request tests/programs/leak_demo.c:%d (leak_demo)\n",
           source_line("tests/programs/leak_demo.c", "void handle_request(int i)") + 1);
  assert_has(r.err, want);
  snprintf(want, sizeof want, " in main tests/programs/leak_demo.c:%d (leak_demo)\n",
           source_line("tests/programs/leak_demo.c", "makecontext(&r->ctx,"));
  assert_has(r.err, want);
  /* A frame of the plugin, a library of its own. */
  assert_has(r.err, " in leakplug_set tests/plugin/leakplug.c:");
  run_free(&r);
}
END_TEST

/* The path of the debug file of the loaded libc under
 * /usr/lib/debug/.build-id, from its build ID note. */
static int libc_note(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  char *path = arg;
  if (strstr(info->dlpi_name, "/libc.so.6") == NULL)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_NOTE)
      continue;
    const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
      const unsigned char *desc = (const unsigned char *)p + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_descsz > 1) {
        int o = snprintf(path, 512, "/usr/lib/debug/.build-id/%02x/", desc[0]);
        for (unsigned k = 1; k < nh->n_descsz; k++)
          o += snprintf(path + o, 512 - (size_t)o, "%02x", desc[k]);
        snprintf(path + o, 512 - (size_t)o, ".debug");
        return 1;
      }
      p += sizeof *nh + ((nh->n_namesz + 3) & ~3u) + ((nh->n_descsz + 3) & ~3u);
    }
  }
  return 0;
}

START_TEST(glibc_frames_named_from_build_id_file)
{
  char debug[512] = "";
  dl_iterate_phdr(libc_note, debug);
  if (debug[0] == '\0' || access(debug, R_OK) != 0) {
    fprintf(stderr, "glibc_frames: skipped (glibc's debug file %s is not installed: scripts/install-deps installs "
            "libc6-dbg)\n", debug[0] ? debug : "(no build ID)");
    return;
  }
  struct run r;
  run_demo(&r, PROG("leak_demo"));
  /* A static function of glibc: only its debug file names it, and gives
   * its line. */
  assert_has(r.err, " in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:");
  ck_assert_int_eq(count(r.err, "__libc_init_first"), 0);
  run_free(&r);
}
END_TEST

/* The binutils of the build's target: aarch64-linux-gnu-objcopy for a
 * cross build (its compiler's name less "gcc"), objcopy for a native one. */
static const char *binutils_prefix(void)
{
#ifdef TL_TEST_CC
  static char prefix[128];
  const char *cc = TL_TEST_CC;
  size_t n = strcspn(cc, " ");
  if (n >= 3 && n < sizeof prefix && strncmp(cc + n - 3, "gcc", 3) == 0) {
    memcpy(prefix, cc, n - 3);
    prefix[n - 3] = '\0';
    return prefix;
  }
#endif
  return "";
}

/* A copy of leak_demo in a directory of its own, made by the shell
 * command cmd (%1$s the build's binary, %2$s the directory, %3$s the
 * binutils' prefix); returns the copy's path in exe. */
static void demo_copy(char *exe, size_t size, const char *cmd)
{
  char dir[] = "/tmp/tlsym.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(exe, size, "%s/leak_demo", dir);
  ck_assert_int_eq(shell(cmd, PROG("leak_demo"), dir, binutils_prefix()), 0);
}

/* Reports look debug files up on this machine only: libdw's debuginfod
 * client (which loads curl and its TLS libraries into the program at
 * exit, whether or not a server is configured) is never started. */
START_TEST(no_debuginfod_client)
{
  /* Stripped, so that a debug file is looked for and not found. */
  char exe[256];
  demo_copy(exe, sizeof exe, "%3$sstrip --strip-all -o %2$s/leak_demo %1$s");
  const char *argv[] = {exe, NULL};
  const char *env[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", "LD_DEBUG=files", "DEBUGINFOD_URLS=http://127.0.0.1:9/", NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  assert_has(r.err, "tasklocal: leak summary: 2 tasks, 2 locals");
  ck_assert_msg(strstr(r.err, "libdebuginfod") == NULL && strstr(r.err, "libcurl") == NULL,
                "a debuginfod client was loaded:\n%.1500s", strstr(r.err, "libdebuginfod") ? strstr(r.err, "libdebuginfod") : r.err);
  run_free(&r);
}
END_TEST

START_TEST(stripped_binary_degrades)
{
  char exe[256];
  demo_copy(exe, sizeof exe, "%3$sstrip --strip-all -o %2$s/leak_demo %1$s");
  struct run r;
  run_demo(&r, exe);
  /* No name of the program's own functions; the names-only path, marked;
   * glibc's frames still named. */
  ck_assert_int_eq(count(r.err, " in wait_for_lock "), 0);
  assert_has(r.err, "(leak_demo+0x");
  assert_has(r.err, "[names only]");
  assert_has(r.err, " in __libc_start_main");
  run_free(&r);
}
END_TEST

START_TEST(separate_debug_file)
{
  char exe[256];
  demo_copy(exe, sizeof exe,
            "%3$sobjcopy --only-keep-debug %1$s %2$s/leak_demo.debug && "
            "%3$sobjcopy --strip-all --add-gnu-debuglink=%2$s/leak_demo.debug %1$s %2$s/leak_demo");
  struct run r;
  run_demo(&r, exe);
  assert_has(r.err, " in wait_for_lock tests/programs/leak_demo.c:");
  ck_assert_int_eq(lines_with(r.err, "(leak_demo+0x", "[names only]"), 0);
  run_free(&r);
  /* The same debug file, corrupt: the names-only path again. Not on
   * aarch64, where libunwind (built there to read .debug_frame) follows
   * .gnu_debuglink for a frame .eh_frame does not cover, _start's, and
   * crashes on a file that is not ELF, in any capture (doc/limits.md). */
  char debug[300];
  snprintf(debug, sizeof debug, "%s.debug", exe);
#ifndef __aarch64__
  ck_assert_int_eq(shell("head -c 100000 /dev/urandom > %s", debug), 0);
  run_demo(&r, exe);
  ck_assert_int_eq(count(r.err, " in wait_for_lock "), 0);
  assert_has(r.err, "[names only]");
  run_free(&r);
#endif
  /* Its ELF header intact, the rest garbage. */
  ck_assert_int_eq(shell("%sobjcopy --only-keep-debug %s %s && dd if=/dev/urandom of=%s bs=1 seek=64 count=20000 "
                         "conv=notrunc 2>/dev/null", binutils_prefix(), PROG("leak_demo"), debug, debug), 0);
  run_demo(&r, exe);
  run_free(&r);
}
END_TEST

START_TEST(binary_deleted_while_running)
{
  char exe[256];
  char dir[] = "/tmp/tlsym.XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(exe, sizeof exe, "%s/leak_dump", dir);
  ck_assert_int_eq(copy_file(PROG("leak_dump"), exe, 0755), 0);
  const char *argv[] = {exe, NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", NULL};
  struct tl_test_proc c;
  start(&c, argv, env);
  ck_assert_msg(tl_test_read_until(&c, "ready\n", DEADLINE_S), "leak_dump did not start");
  ck_assert_int_eq(unlink(exe), 0);
  struct run r;
  finish(&c, &r);
  ck_assert_msg(r.status == 0, "status %d; stderr:\n%.1500s", r.status, r.err);
  assert_prefixed(r.err);
  ck_assert_int_eq(count(r.err, "tasklocal: leak summary: "), 1);
  /* Named through /proc/self/exe, which qemu-user opens by the program's
   * path, gone by then. */
  if (!TL_TEST_EMULATED)
    assert_has(r.err, "entry: parked_for_dump");
  run_free(&r);
}
END_TEST

/* The trampoline, where every made task begins, is the outermost frame:
 * the frame a task's function returns to has an FDE whose return address
 * is undefined, and glibc's backtrace ends there. */
struct dwarf_eh_bases {
  void *tbase, *dbase, *func;
};
const void *_Unwind_Find_FDE(void *pc, struct dwarf_eh_bases *bases);

static void *entry_return;
static int entry_depth;
static void *entry_last;

static __attribute__((noinline)) void outermost_entry(void)
{
  entry_return = __builtin_return_address(0);
  void *pc[64];
  entry_depth = backtrace(pc, 64);
  entry_last = entry_depth > 0 ? pc[entry_depth - 1] : NULL;
  swapcontext(&co_ctx, &here_ctx);
  __asm__ volatile(""); /* no tail call */
}

START_TEST(trampoline_is_outermost)
{
  static char stack[64 * 1024];
  tl_test_context(&co_ctx, stack, sizeof stack, outermost_entry, &here_ctx);
  swapcontext(&here_ctx, &co_ctx);
  ck_assert_ptr_nonnull(entry_return);
  struct dwarf_eh_bases bases;
  ck_assert_msg(_Unwind_Find_FDE((char *)entry_return - 1, &bases) != NULL,
                "no FDE holds the return address of a task's function, minus one (%p)", entry_return);
  ck_assert_msg(entry_last == entry_return, "glibc's backtrace goes on past the trampoline (%d frames, last %p, not %p)",
                entry_depth, entry_last, entry_return);
}
END_TEST

/* ------------------------------------------------------------------------
 * Groups of alike tasks
 * ------------------------------------------------------------------------ */

START_TEST(alike_tasks_grouped)
{
  const char *argv[] = {PROG("leak_many"), "5", "20", "10", NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, env);
  ck_assert_int_eq(r.status, 0);
  assert_prefixed(r.err);
  assert_summary(r.err, "leak", 35, 0);
  const char *g20 = strstr(r.err, "tasklocal: 20 tasks like this (ids 7, 8, 9, 10, 11, 12, 13, 14 ...): suspended; "
                                  "made by task 1; parked\n");
  const char *g10 = strstr(r.err, "tasklocal: 10 tasks like this (ids 27, 28, 29, 30, 31, 32, 33, 34 ...): ");
  const char *g5 = strstr(r.err, "tasklocal: 5 tasks like this (ids 2, 3, 4, 5, 6): suspended; made by task 1; parked\n");
  ck_assert_msg(g20 != NULL && g10 != NULL && g5 != NULL, "not three groups:\n%.1500s", r.err);
  ck_assert_msg(g20 < g10 && g10 < g5, "not biggest first:\n%.1500s", r.err);
  ck_assert_int_eq(count(r.err, "  suspended at:\n"), 3);
  ck_assert_int_eq(count(r.err, "  created at:\n"), 3);
  /* The place they wait is a function inlined into their entry. */
  assert_has(r.err, " in wait_here tests/programs/leak_many.c:");
  const char *inl = strstr(r.err, "(leak_many, inlined)\ntasklocal:     #");
  const char *next = inl != NULL ? strchr(inl, '\n') + 1 : NULL;
  const char *worker = next != NULL ? strstr(next, " in worker tests/programs/leak_many.c:") : NULL;
  ck_assert_msg(worker != NULL && worker < strchr(next, '\n'), "no inlined frame followed by worker:\n%.1500s", r.err);
  run_free(&r);
}
END_TEST

/* When the report's own memory cannot be had (its mapping, one of the
 * run's last allocations, made to fail), every task is still counted,
 * none described, and the program ends as it would. */
START_TEST(report_memory_short)
{
  if (TL_TEST_UNDER_ASAN || TL_TEST_EMULATED) {
    /* The counter would bypass AddressSanitizer's allocator, and counts
     * otherwise under qemu-user (check_faults leaves both out too). */
    fprintf(stderr, "memory_short: skipped under AddressSanitizer and qemu-user\n");
    return;
  }
  const char *argv[] = {PROG("leak_many"), "2", "3", NULL};
  char count_path[] = "/tmp/tlreport-count-XXXXXX", file[128];
  int fd = mkstemp(count_path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  snprintf(file, sizeof file, "TLCOUNT_FILE=%s", count_path);
  const char *counted[] = {"LD_PRELOAD=" TL_BUILD_DIR "/tests/libtlalloccount.so " LIB, file, "TASKLOCAL_LEAKS=1", NULL};
  struct run r;
  run(&r, argv, counted);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 5, 0);
  run_free(&r);
  char *text = read_file(count_path);
  long n = atol(text);
  free(text);
  ck_assert_int_gt(n, 0);
  /* The report's mapping is the last allocation, whose number varies by
   * one or two with the address-space layout: every allocation from the
   * k-th on fails, for k down from past the count, until a run fails the
   * report's mapping and nothing else. Every run ends as it should. */
  int found = 0;
  for (long k = n + 4; k >= 1 && k > n - 8 && !found; k--) {
    char fail[64];
    snprintf(fail, sizeof fail, "TASKLOCAL_TEST_FAIL_ALLOC=%ld+", k);
    const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", fail, NULL};
    run(&r, argv, env);
    ck_assert_int_eq(r.status, 0);
    assert_prefixed(r.err);
    ck_assert_int_eq(count(r.err, "tasklocal: leak summary: "), 1);
    if (strstr(r.err, "tasklocal: ... and 5 more tasks, not described (no room to group them)\n") != NULL) {
      assert_summary(r.err, "leak", 5, 0);
      ck_assert_int_eq(count(r.err, " tasks like this "), 0);
      found = 1;
    }
    run_free(&r);
  }
  ck_assert_msg(found, "no run of the last of %ld allocations failed the report's own", n);
}
END_TEST

START_TEST(report_max_limits_groups)
{
  const char *argv[] = {PROG("leak_many"), "5", "20", "10", NULL};
  const char *two[] = {PRELOAD, "TASKLOCAL_LEAKS=1", "TASKLOCAL_REPORT_MAX=2", NULL};
  struct run r;
  run(&r, argv, two);
  assert_summary(r.err, "leak", 35, 0);
  ck_assert_int_eq(count(r.err, " tasks like this "), 2);
  ck_assert_int_eq(count(r.err, "tasklocal: 5 tasks like this"), 0);
  assert_has(r.err, "tasklocal: ... and 5 more tasks in 1 more groups, not described (TASKLOCAL_REPORT_MAX=2)\n");
  run_free(&r);
  const char *none[] = {PRELOAD, "TASKLOCAL_LEAKS=error", "TASKLOCAL_REPORT_MAX=0", NULL};
  run(&r, argv, none);
  ck_assert_int_eq(r.status, 23);
  assert_summary(r.err, "leak", 35, 0);
  ck_assert_int_eq(count(r.err, " tasks like this "), 0);
  assert_has(r.err, "tasklocal: ... and 35 more tasks in 3 more groups, not described (TASKLOCAL_REPORT_MAX=0)\n");
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------ */

/* The JSON document of a report (its lines from "tasklocal: {" to
 * "tasklocal: }", without the prefix) checked by python3's json module
 * and the Python statements of check, which see it as d. */
static void check_json(const char *text, const char *check)
{
  char path[256];
  temp_path(path, sizeof path, "report.json");
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  int in = 0, docs = 0;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
    if (len == 12 && strncmp(p, "tasklocal: {", 12) == 0)
      in = 1, docs++;
    if (in)
      fprintf(f, "%.*s\n", (int)(len - 11), p + 11);
    if (len == 12 && strncmp(p, "tasklocal: }", 12) == 0)
      in = 0;
    p += len + (nl != NULL);
  }
  fclose(f);
  ck_assert_msg(docs == 1, "%d JSON documents, not 1, in:\n%.1500s", docs, text);
  char script[4096];
  snprintf(script, sizeof script, "import json, sys\nd = json.load(open(sys.argv[1]))\n%s\n", check);
  const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "/usr/local/bin/python3";
  const char *argv[] = {python, "-c", script, path, NULL};
  struct run r;
  run(&r, argv, NULL);
  ck_assert_msg(r.status == 0, "the JSON report fails its check (%d):\n%.1000s\n%.1500s", r.status, r.err, text);
  run_free(&r);
}

START_TEST(json_report_parses)
{
  const char *many[] = {PROG("leak_many"), "5", "20", "10", NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_LEAKS=1", "TASKLOCAL_REPORT_FORMAT=json", "TASKLOCAL_REPORT_MAX=2", NULL};
  struct run r;
  run(&r, many, env);
  ck_assert_int_eq(r.status, 0);
  assert_prefixed(r.err);
  check_json(r.err,
             "assert d['report'] == 'leak' and d['summary'] == {'tasks': 35, 'locals': 0}\n"
             "assert [g['count'] for g in d['groups']] == [20, 10]\n"
             "assert d['groups_total'] == 3 and d['tasks_not_described'] == 5\n"
             "g = d['groups'][0]\n"
             "assert g['ids'] == list(range(7, 15)) and g['state'] == 'suspended' and g['parent'] == 1\n"
             "assert g['entry']['function'] == 'worker'\n"
             "f = [x for x in g['suspended']['frames'] if x['module'] == 'leak_many']\n"
             "assert f[0]['function'] == 'wait_here' and f[0]['inlined'] and f[0]['source'] == 'dwarf'\n"
             "assert f[1]['function'] == 'worker' and f[1]['file'] == 'tests/programs/leak_many.c' and f[1]['line'] > 0\n"
             "assert g['created'][0]['function'] == 'make_at' and g['created'][0]['module'] == 'leak_many'\n");
  run_free(&r);

  /* Locals, dropped values and names. */
  const char *mixed[] = {PROG("leak_mixed"), NULL};
  const char *env2[] = {PRELOAD_PLUG, "TASKLOCAL_LEAKS=1", "TASKLOCAL_REPORT_FORMAT=json", NULL};
  run(&r, mixed, env2);
  ck_assert_int_eq(r.status, 0);
  check_json(r.err,
             "assert d['summary'] == {'tasks': 3, 'locals': 5}\n"
             "states = sorted(g['state'] for g in d['groups'])\n"
             "assert states == ['abandoned', 'never started', 'suspended'], states\n"
             "w = [g for g in d['groups'] if g['state'] == 'suspended'][0]\n"
             "assert w['name'] == 'waiter'\n"
             "names = [v['name'] for g in d['groups'] for v in g['locals']['values']]\n"
             "assert 'session' in names and 'conn' in names, names\n"
             "drops = [x['key_name'] for x in d['dropped']]\n"
             "assert 'request' in drops and 'thread.state' in drops, drops\n"
             "x = [x for x in d['dropped'] if x['key_name'] == 'request'][0]\n"
             "assert x['entry']['function'] == 'drops_value' and x['when'] == 'it finished'\n"
             "assert any(f['function'] == 'drops_value' for f in x['set_at'])\n");
  run_free(&r);
}
END_TEST

/* The live dump, on a signal, in JSON: the same fields. */
START_TEST(json_dump_parses)
{
  char log[256], opt_log[300];
  temp_path(log, sizeof log, "dump.json.log");
  snprintf(opt_log, sizeof opt_log, "TASKLOCAL_LOG=%s", log);
  const char *argv[] = {PROG("leak_dump"), NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_DUMP_SIGNAL=USR2", "TASKLOCAL_REPORT_FORMAT=json", opt_log, NULL};
  struct tl_test_proc c;
  start(&c, argv, env);
  ck_assert_msg(tl_test_read_until(&c, "ready\n", DEADLINE_S), "leak_dump did not start");
  ck_assert_int_eq(kill(c.pid, SIGUSR2), 0);
  char *text = NULL;
  for (time_t end = time(NULL) + DEADLINE_S;;) {
    free(text);
    text = read_file(log);
    if (strstr(text, "tasklocal: }\n") != NULL || time(NULL) > end)
      break;
    usleep(20 * 1000);
  }
  struct run r;
  finish(&c, &r);
  ck_assert_int_eq(r.status, 0);
  check_json(text,
             "assert d['report'] == 'dump' and d['summary']['tasks'] == 7\n"
             "assert sum(g['count'] for g in d['groups']) == 7\n"
             "p = [g for g in d['groups'] if g['entry'] and g['entry']['function'] == 'parked_for_dump'][0]\n"
             "f = [f['function'] for f in p['suspended']['frames'] if f['module'] == 'leak_dump']\n"
             "assert f[:2] == ['deep_wait', 'parked_for_dump'], f\n");
  free(text);
  run_free(&r);
}
END_TEST

START_TEST(run_script_json)
{
  char script[600];
  script_copy(script, sizeof script, "build");
  const char *argv[] = {script, "--leaks", "--json", "--report-max", "1", PROG("leak_many"), "2", "3", NULL};
  struct run r;
  run(&r, argv, NULL);
  ck_assert_int_eq(r.status, 0);
  check_json(r.err, "assert d['summary']['tasks'] == 5 and [g['count'] for g in d['groups']] == [3]\n");
  run_free(&r);
}
END_TEST

/* Every option the library reads (the rows its TASKLOCAL_VERBOSE prints)
 * has a flag in tasklocal-run, named after the variable, in its --help and
 * its man page, and is described in tasklocal(7): the table in
 * shim/options.c, the script and the pages say the same. */
START_TEST(run_script_options_agree)
{
  char script[600], src[600], page7[700], page1[700];
  script_copy(script, sizeof script, "build");
  script_source(src, sizeof src);
  char *dir = strstr(src, "/scripts/tasklocal-run");
  ck_assert_ptr_nonnull(dir);
  *dir = '\0';
  snprintf(page7, sizeof page7, "%s/man/tasklocal.7", src);
  snprintf(page1, sizeof page1, "%s/man/tasklocal-run.1", src);
  char *man7 = read_file(page7), *man1 = read_file(page1);

  const char *argv[] = {PROG("leak_clean"), NULL};
  const char *env[] = {PRELOAD, "TASKLOCAL_VERBOSE=1", NULL};
  struct run verbose;
  run(&verbose, argv, env);
  const char *help[] = {script, "--help", NULL};
  struct run r;
  run(&r, help, NULL);
  ck_assert_int_eq(r.status, 0);

  int seen = 0;
  for (const char *p = verbose.err; (p = strstr(p, "tasklocal: option TASKLOCAL_")) != NULL; seen++) {
    p += strlen("tasklocal: option ");
    char var[64], flag[64], roff[128];
    size_t n = strcspn(p, "=");
    ck_assert_uint_lt(n, sizeof var);
    memcpy(var, p, n);
    var[n] = '\0';
    /* TASKLOCAL_TRACE_SIZE: --trace-size, and \-\-trace\-size in roff. */
    size_t f = 0, q = 0;
    flag[f++] = '-';
    flag[f++] = '-';
    q = (size_t)snprintf(roff, sizeof roff, "\\-\\-");
    for (const char *c = var + strlen("TASKLOCAL_"); *c != '\0'; c++) {
      if (*c == '_') {
        flag[f++] = '-';
        q += (size_t)snprintf(roff + q, sizeof roff - q, "\\-");
      } else {
        flag[f++] = roff[q++] = (char)(*c - 'A' + 'a');
      }
    }
    flag[f] = roff[q] = '\0';
    ck_assert_msg(strstr(r.out, flag) != NULL, "tasklocal-run --help has no %s for %s", flag, var);
    ck_assert_msg(strstr(r.out, var) != NULL, "tasklocal-run --help does not name %s", var);
    ck_assert_msg(strstr(man1, roff) != NULL, "tasklocal-run(1) has no %s for %s", roff, var);
    ck_assert_msg(strstr(man7, var) != NULL, "tasklocal(7) does not describe %s", var);
    /* The flag sets the variable: the library names the value, in the
     * warning about it or (a path) in the verbose line. The path is in no
     * directory, so that nothing is created. */
    char set[160], seen_as[160];
    snprintf(set, sizeof set, "%s=/nonexistent/x", flag);
    snprintf(seen_as, sizeof seen_as, "%s=/nonexistent/x", var);
    const char *bad[] = {script, "--verbose", set, PROG("leak_clean"), NULL};
    struct run b;
    run(&b, bad, NULL);
    ck_assert_msg(strstr(b.err, seen_as) != NULL, "%s did not reach the library:\n%.1500s", set, b.err);
    run_free(&b);
  }
  ck_assert_int_ge(seen, 9);
  run_free(&verbose);
  run_free(&r);
  free(man7);
  free(man1);
}
END_TEST

static Suite *report_suite(void)
{
  Suite *s = suite_create("report");
  struct {
    const char *name;
    const TTest *test;
  } cases[] = {
    {"leaks", mixed_leaks_reported},
    {"clean", clean_program_reports_zero},
    {"error", leaks_error_sets_status},
    {"off", no_options_no_output},
    {"backtrace_off", backtrace_off},
    {"backtrace_hook", backtrace_hook_replaces_capture},
    {"exit_uclink", exit_through_uclink_null},
    {"exit_call", exit_called_in_coroutine},
    {"exit_small", exit_on_small_stack},
    {"underscore_exit", underscore_exit_writes_stats_only},
    {"exit_thread", exit_from_other_thread},
    {"freed", freed_stack_is_not_unwound},
    {"shared", shared_stack_unreliable},
    {"fork", forked_child_reports_itself},
    {"stats", stats_line_counts},
    {"dump_signal", dump_on_signal_while_switching},
    {"dump_spellings", dump_signal_spellings},
    {"tl_dump", tl_dump_in_process},
    {"tl_dump_coroutine", tl_dump_from_coroutine},
    {"bad_options", bad_option_values},
    {"booleans", boolean_spellings},
    {"verbose", verbose_prints_options},
    {"log", log_to_file},
    {"log_error", log_that_cannot_be_opened},
    {"secure", secure_exec_ignores_log},
    {"run_help", run_script_help_and_errors},
    {"run_options", run_script_runs_with_options},
    {"run_library", run_script_finds_library},
    {"run_options_agree", run_script_options_agree},
    {"run_json", run_script_json},
    {"source_lines", frames_have_source_lines},
    {"glibc_frames", glibc_frames_named_from_build_id_file},
    {"stripped", stripped_binary_degrades},
    {"no_debuginfod", no_debuginfod_client},
    {"debug_file", separate_debug_file},
    {"deleted", binary_deleted_while_running},
    {"outermost", trampoline_is_outermost},
    {"grouped", alike_tasks_grouped},
    {"report_max", report_max_limits_groups},
    {"memory_short", report_memory_short},
    {"json", json_report_parses},
    {"json_dump", json_dump_parses},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_set_timeout(tc, TCASE_TIMEOUT_S);
    tcase_add_test(tc, cases[i].test);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--secure-child") == 0)
    return secure_child();
  return tl_test_run(report_suite());
}
