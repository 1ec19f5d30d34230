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
  assert_has(r.err, "entry: never_run+0x0 (leak_mixed)");
  assert_has(r.err, "entry: wait_forever+0x0 (leak_mixed)");
  assert_has(r.err, "entry: abandoned_worker+0x0 (leak_mixed)");
  assert_has(r.err, " make+0x");
  assert_has(r.err, " main+0x");
  /* The suspended stack, innermost first. */
  const char *at = strstr(r.err, "suspended at:");
  ck_assert_ptr_nonnull(at);
  const char *park = strstr(at, " park+0x"), *wait = strstr(at, " wait_forever+0x");
  ck_assert_ptr_nonnull(park);
  ck_assert_ptr_nonnull(wait);
  ck_assert_msg(park < wait, "park is not above wait_forever:\n%.1500s", at);
  /* Locals by key name, and the dropped values. */
  assert_has(r.err, "key \"session\" = 0x5e5510");
  assert_has(r.err, "key \"buffer\" = 0xb0ff");
  assert_has(r.err, "key \"conn\" = 0xc022");
  assert_has(r.err, "dropped value 0x4e01 of key \"request\" (no destructor)");
  assert_has(r.err, "entry: drops_value+0x0");
  /* Where the dropped value was set (backtraces are on with LEAKS). */
  const char *drop = strstr(r.err, "dropped value 0x4e01");
  ck_assert_ptr_nonnull(drop);
  const char *set_at = strstr(drop, "  set at:\n");
  ck_assert_ptr_nonnull(set_at);
  const char *next = strstr(drop + 1, "dropped value");
  const char *setter = strstr(set_at, " drops_value+0x");
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
  ck_assert_int_eq(count(r.err, " main+0x"), 0);
  assert_has(r.err, " park+0x");          /* suspended stacks are unwound at report time */
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
  assert_has(r.err, " fakebt_marker_one+0x2 (libtlfakebt.so)");
  assert_has(r.err, " fakebt_marker_two+0x2 (libtlfakebt.so)");
  ck_assert_int_eq(count(r.err, " make+0x"), 0);
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
  assert_has(r.err, "entry: parked_here+0x0");
  assert_has(r.err, " parked_here+0x");
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
  assert_has(r.err, "entry: calls_exit+0x0");
  assert_has(r.err, " calls_exit+0x");
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
  /* The system call, unseen: the task stays, and its frames are not read. */
  run(&r, hidden, env);
  ck_assert_int_eq(r.status, 0);
  assert_summary(r.err, "leak", 1, 0);
  assert_has(r.err, "unknown: its stack is no longer mapped");
  assert_has(r.err, " released=0 ");
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
  ck_assert_int_eq(count(r.err, "suspended at (unreliable: its stack is shared with task"), 2);
  assert_has(r.err, " shared_yield+0x");
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
  assert_has(r.err, " suspended_in_child+0x");
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
  assert_has(text, "entry: parked_for_dump+0x0");
  assert_has(text, " deep_wait+0x");
  assert_has(text, " parked_for_dump+0x");
  assert_has(text, "entry: spinning_worker+0x0");
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
  assert_has(text, "entry: parked+0x0");
  assert_has(text, " parked+0x");
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
  assert_has(inner_text, " dumps_itself+0x");
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
  assert_has(text, " main+0x");
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
