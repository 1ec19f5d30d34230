/* The timeline of task switches (TASKLOCAL_TRACE, shim/trace.c).
 *
 * Unmodified programs (tests/trace/trace_prog.c, which counts in each
 * coroutine how many times it was switched in, and the switch-pattern programs
 * of tests/programs) run under LD_PRELOAD with a trace asked for. Each
 * file is read by tests/trace/verify.py (python3's json), which checks the
 * trace-event format and that no two slices of one thread overlap, and
 * prints per task its slices and per thread its events; the suite compares
 * them with the program's own counts. The program's output and exit status
 * must be the same as without the shim in every case: a trace is written
 * beside the program, never into its output.
 *
 * The suite itself, linked with the library, also runs itself as a child
 * (argv[1] names the scenario) for what only the API can do: task names,
 * tl_trace_flush, and the dump signal.
 */
#include "testutil.h"

#include <limits.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "tasklocal.h"

#define SHIM_PATH TL_BUILD_DIR "/libtasklocal.so"
#define PROG TL_BUILD_DIR "/tests/trace/trace_prog"
#define PROGRAMS TL_BUILD_DIR "/tests/programs/"
#define VERIFY TL_BUILD_DIR "/tests/trace/verify.py"
#define SETUID_PROG TL_BUILD_DIR "/tests/trace/trace_linked"
#define DEADLINE_S 30
#define TCASE_TIMEOUT_S 120

#if TL_TEST_UNDER_ASAN
#define ASAN_ENV TL_TEST_ASAN_ENV
#else
#define ASAN_ENV NULL
#endif

static const char *const dropped_vars[] = {"LD_PRELOAD=", "TASKLOCAL_", "ASAN_OPTIONS=", NULL};
static char *self_path;

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* A directory of its own for each test (Check runs each in a process of
 * its own), removed at the end of the test by clean_dir. */
static char dir[PATH_MAX];

static void make_dir(void)
{
  const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
  ck_assert(snprintf(dir, sizeof dir, "%s/tltrace.XXXXXX", tmp) < (int)sizeof dir);
  ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
  chmod(dir, 0755);
}

/* The runs of the test, whose outputs are freed at its end (or when the
 * same struct runs again). */
static struct tl_test_proc *runs[32];
static int nruns;

static void forget_run(struct tl_test_proc *p)
{
  for (int i = 0; i < nruns; i++)
    if (runs[i] == p) {
      tl_test_proc_free(p);
      runs[i] = runs[--nruns];
      return;
    }
}

/* The end of a test: its directory goes, and its runs' outputs. */
static void clean_dir(void)
{
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (dir[0] != '\0' && system(cmd) != 0)
    fprintf(stderr, "check_trace: could not remove %s\n", dir);
  while (nruns > 0)
    forget_run(runs[0]);
}

/* dir/name, in a static buffer of four that rotate. */
static const char *in_dir(const char *name)
{
  static char bufs[4][PATH_MAX];
  static int next;
  char *b = bufs[next++ % 4];
  ck_assert(snprintf(b, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
  return b;
}

/* "name=value", in a static buffer of eight that rotate. */
static const char *var(const char *name, const char *value)
{
  static char bufs[8][PATH_MAX + 64];
  static int next;
  char *b = bufs[next++ % 8];
  ck_assert(snprintf(b, sizeof bufs[0], "%s=%s", name, value) < (int)sizeof bufs[0]);
  return b;
}

/* AddressSanitizer warns that it does not fully support swapcontext, and
 * when exit() is called on a coroutine stack; the sanitizer build drops
 * those lines, which are not the shim's. */
static void strip_sanitizer_notes(char *text)
{
  char *w = text;
  for (char *p = text; *p;) {
    char *nl = strchr(p, '\n');
    size_t len = nl != NULL ? (size_t)(nl - p) + 1 : strlen(p);
    int drop = (strncmp(p, "==", 2) == 0 && memmem(p, len, "WARNING: ASan", 13) != NULL) ||
               strncmp(p, "False positive error reports may follow", 39) == 0 ||
               strncmp(p, "For details see https://github.com/google/sanitizers", 52) == 0;
    if (!drop) {
      memmove(w, p, len);
      w += len;
    }
    p += len;
  }
  *w = '\0';
}

/* Runs argv with a clean environment plus the given variables (NULL
 * entries skipped), the shim preloaded when shim is set. The caller frees
 * p with tl_test_proc_free. */
static void run_env(struct tl_test_proc *p, char *const argv[], int shim, const char *const *vars, size_t nvars)
{
  const char *extra[16];
  size_t n = 0;
  forget_run(p);
  ck_assert(nruns < (int)(sizeof runs / sizeof runs[0]));
  runs[nruns++] = p;
  extra[n++] = shim ? "LD_PRELOAD=" SHIM_PATH : NULL;
  extra[n++] = ASAN_ENV;
  for (size_t i = 0; i < nvars && n < 16; i++)
    extra[n++] = vars[i];
  char **env = tl_test_env(dropped_vars, extra, n);
  tl_test_exec(p, argv, env, DEADLINE_S);
  free(env);
  if (TL_TEST_UNDER_ASAN)
    strip_sanitizer_notes(p->err.data);
}

static void expect_exit(const struct tl_test_proc *p, int status, const char *what)
{
  char how[64];
  ck_assert_msg(!p->timed_out && WIFEXITED(p->wstatus) && WEXITSTATUS(p->wstatus) == status,
                "%s: %s, expected exit %d; stderr:\n%s", what, tl_test_describe(p, how, sizeof how), status,
                p->err.data);
}

/* What verify.py says of a trace file. */
#define MAX_THREADS 300
#define MAX_TASKS 600

struct trace {
  long pid, dropped, ring, recycled;
  int nthreads, ntasks;
  struct {
    long tid, events, dropped, slices;
  } th[MAX_THREADS];
  char order[4][4096];                     /* the first threads': the tasks of their slices, in time order */
  struct {
    long id, slices;
    int root, nthreads;
    char name[128];
  } task[MAX_TASKS];
  long finished, made, abandoned, untracked, flows_s, flows_f;
};

static void verify(const char *path, struct trace *t)
{
  struct tl_test_proc p;
  char *const argv[] = {(char *)"/usr/bin/env", (char *)"python3", (char *)VERIFY, (char *)path, NULL};
  run_env(&p, argv, 0, NULL, 0);
  ck_assert_msg(!p.timed_out && WIFEXITED(p.wstatus) && WEXITSTATUS(p.wstatus) == 0,
                "verify.py %s failed:\n%s%s", path, p.out.data, p.err.data);
  memset(t, 0, sizeof *t);
  char *save = NULL;
  for (char *line = strtok_r(p.out.data, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
    long a, b, c, d;
    int root, used = 0;
    char name[128], threads[256];
    if (sscanf(line, "pid %ld", &a) == 1) {
      t->pid = a;
    } else if (sscanf(line, "dropped %ld", &a) == 1) {
      t->dropped = a;
    } else if (sscanf(line, "ring %ld", &a) == 1) {
      t->ring = a;
    } else if (sscanf(line, "recycled %ld", &a) == 1) {
      t->recycled = a;
    } else if (sscanf(line, "thread %ld events %ld dropped %ld slices %ld", &a, &b, &c, &d) == 4) {
      ck_assert(t->nthreads < MAX_THREADS);
      t->th[t->nthreads].tid = a;
      t->th[t->nthreads].events = b;
      t->th[t->nthreads].dropped = c;
      t->th[t->nthreads++].slices = d;
    } else if (strncmp(line, "order", 5) == 0 && t->nthreads > 0 && t->nthreads <= 4) {
      snprintf(t->order[t->nthreads - 1], sizeof t->order[0], "%s", line + 5);
    } else if (sscanf(line, "task %ld root=%d slices %ld threads %255s name %n", &a, &root, &b, threads, &used) == 4 &&
               used > 0) {
      ck_assert(t->ntasks < MAX_TASKS);
      t->task[t->ntasks].id = a;
      t->task[t->ntasks].root = root;
      t->task[t->ntasks].slices = b;
      t->task[t->ntasks].nthreads = 1;
      for (char *s = threads; *s; s++)
        t->task[t->ntasks].nthreads += *s == ',';
      snprintf(t->task[t->ntasks++].name, sizeof name, "%s", line + used);
    } else if (sscanf(line, "instant finished %ld", &a) == 1) {
      t->finished = a;
    } else if (sscanf(line, "instant made %ld", &a) == 1) {
      t->made = a;
    } else if (sscanf(line, "instant abandoned %ld", &a) == 1) {
      t->abandoned = a;
    } else if (sscanf(line, "instant untracked_switch %ld", &a) == 1) {
      t->untracked = a;
    } else if (sscanf(line, "flows %ld %ld", &a, &b) == 2) {
      t->flows_s = a;
      t->flows_f = b;
    }
  }
  forget_run(&p);
}

/* The slices of the made tasks (not roots), in the order they were made
 * (their ids), as "N N N". */
static void made_slices(const struct trace *t, char *buf, size_t size)
{
  size_t n = 0;
  buf[0] = '\0';
  for (int i = 0; i < t->ntasks; i++)
    if (!t->task[i].root)
      n += (size_t)snprintf(buf + n, size - n, "%s%ld", n ? " " : "", t->task[i].slices);
}

/* The counts a trace_prog run printed after prefix ("switchins "). */
static void printed_counts(const char *out, const char *prefix, char *buf, size_t size)
{
  const char *s = strstr(out, prefix);
  ck_assert_msg(s != NULL, "no \"%s\" line in:\n%s", prefix, out);
  s += strlen(prefix);
  snprintf(buf, size, "%.*s", (int)strcspn(s, "\n"), s);
}

static int file_exists(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

/* ------------------------------------------------------------------------
 * Unmodified programs
 * ------------------------------------------------------------------------ */

static const char *const modes[] = {"asym", "sym", "mn", "shared"};

/* Each pattern: the same output and status as alone; the trace parses,
 * no slices overlap, nothing is dropped, and every coroutine has as many
 * slices as it counted switches in. */
START_TEST(test_patterns)
{
  const char *mode = modes[_i];
#if TL_TEST_UNDER_ASAN
  /* AddressSanitizer's swapcontext keeps a frame of its own below the
   * yielding one, which a stack image taken before the switch misses
   * (tests/programs/shared_stack.c explains it); test_programs runs that
   * program, which knows, traced under ASan too. */
  if (strcmp(mode, "shared") == 0)
    return;
#endif
  make_dir();
  const char *path = in_dir("trace.json");
  char *argv[] = {(char *)PROG, (char *)mode, NULL};
  struct tl_test_proc alone, traced;
  run_env(&alone, argv, 0, NULL, 0);
  const char *vars[] = {var("TASKLOCAL_TRACE", path)};
  run_env(&traced, argv, 1, vars, 1);
  expect_exit(&alone, 0, mode);
  expect_exit(&traced, 0, mode);
  ck_assert_str_eq(traced.out.data, alone.out.data);
  ck_assert_msg(traced.err.data[0] == '\0', "%s: stderr under the shim:\n%s", mode, traced.err.data);

  struct trace t;
  verify(path, &t);
  char want[256], got[256];
  printed_counts(alone.out.data, "switchins ", want, sizeof want);
  made_slices(&t, got, sizeof got);
  ck_assert_msg(strcmp(got, want) == 0, "%s: slices per task %s, the program counted %s", mode, got, want);
  ck_assert_int_eq(t.dropped, 0);
  ck_assert_int_eq(t.ring, 1 << 20);
  ck_assert_int_eq(t.made, strcmp(mode, "mn") == 0 ? 4 : 3);
  ck_assert_int_eq(t.flows_s, t.made);
  ck_assert_int_eq(t.flows_f, t.made);
  for (int i = 0; i < t.ntasks; i++)
    if (!t.task[i].root) {
      ck_assert_msg(strstr(t.task[i].name, "_main") != NULL, "%s: task %ld is named \"%s\", not by its entry",
                    mode, t.task[i].id, t.task[i].name);
      /* M:N: every coroutine is resumed by both workers in turn. */
      ck_assert_int_eq(t.task[i].nthreads, strcmp(mode, "mn") == 0 ? 2 : 1);
    }
  if (strcmp(mode, "mn") == 0)
    ck_assert_int_eq(t.nthreads, 3);
  clean_dir();
}
END_TEST

/* The switch-pattern programs, traced: their output and status do not change,
 * and every trace is valid. */
static const char *const programs[] = {"asymmetric", "symmetric", "uclink", "uclink_null", "getcontext_loop",
                                       "shared_stack", "sigjmp", "migrate", "nested", "unwind"};

START_TEST(test_programs)
{
  const char *name = programs[_i];
  make_dir();
  char prog[PATH_MAX];
  snprintf(prog, sizeof prog, PROGRAMS "%s", name);
  const char *path = in_dir("trace.json");
  char *argv[] = {prog, NULL};
  struct tl_test_proc alone, traced;
  run_env(&alone, argv, 0, NULL, 0);
  const char *vars[] = {var("TASKLOCAL_TRACE", path)};
  run_env(&traced, argv, 1, vars, 1);
  ck_assert_int_eq(traced.wstatus, alone.wstatus);
  ck_assert_str_eq(traced.out.data, alone.out.data);
  struct trace t;
  verify(path, &t);
  ck_assert_int_eq(t.dropped, 0);
  ck_assert_msg(t.made >= 2, "%s: %ld tasks made in the trace", name, t.made);
  if (strcmp(name, "sigjmp") == 0)
    ck_assert_msg(t.untracked > 0, "sigjmp: no untracked switch in the trace");
  clean_dir();
}
END_TEST

/* A ring smaller than what the program records keeps the newest events:
 * the slices left are the last ones of the full trace, the file counts
 * the dropped events, and one line at exit says so. */
START_TEST(test_ring_wraps)
{
  make_dir();
  char *argv[] = {(char *)PROG, (char *)"many", (char *)"500", NULL};
  struct tl_test_proc full, small;
  const char *vars_full[] = {var("TASKLOCAL_TRACE", in_dir("full.json"))};
  run_env(&full, argv, 1, vars_full, 1);
  const char *vars_small[] = {var("TASKLOCAL_TRACE", in_dir("small.json")), "TASKLOCAL_TRACE_SIZE=64"};
  run_env(&small, argv, 1, vars_small, 2);
  expect_exit(&full, 0, "the full ring");
  expect_exit(&small, 0, "the small ring");
  ck_assert_str_eq(small.out.data, full.out.data);
  ck_assert_msg(full.err.data[0] == '\0', "stderr with the full ring:\n%s", full.err.data);

  struct trace a, b;
  verify(in_dir("full.json"), &a);
  verify(in_dir("small.json"), &b);
  ck_assert_int_eq(a.dropped, 0);
  ck_assert_int_eq(b.ring, 64);
  ck_assert_int_eq(b.th[0].events, 64);
  ck_assert_int_eq(b.th[0].dropped, a.th[0].events - 64);
  ck_assert_int_eq(b.dropped, a.th[0].events - 64);
  /* The newest kept: the small trace's slices end the full one's. The
   * first slice of the small ring may have lost its start. */
  const char *tail = strchr(b.order[0] + 1, ' ');
  ck_assert(tail != NULL);
  size_t la = strlen(a.order[0]), lt = strlen(tail);
  ck_assert_msg(la > lt && strcmp(a.order[0] + la - lt, tail) == 0,
                "the slices kept are not the newest:\nfull: %s\nkept: %s", a.order[0], tail);
  char want[128];
  snprintf(want, sizeof want, "tasklocal: trace: %ld events dropped in %s", b.dropped, in_dir("small.json"));
  ck_assert_msg(strncmp(small.err.data, want, strlen(want)) == 0 && strchr(small.err.data, '\n') ==
                                                                         small.err.data + strlen(small.err.data) - 1,
                "stderr with the small ring is not one line \"%s ...\":\n%s", want, small.err.data);
  clean_dir();
}
END_TEST

/* A forked child writes its own file when the path has %p, from the
 * fork on; the parent's file has the parent's switches only. */
START_TEST(test_fork)
{
  make_dir();
  char *argv[] = {(char *)PROG, (char *)"fork", NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.%p.json"))};
  run_env(&p, argv, 1, vars, 1);
  expect_exit(&p, 0, "fork");
  ck_assert_msg(p.err.data[0] == '\0', "stderr:\n%s", p.err.data);

  struct tl_test_proc ls;
  char cmd[PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "cd '%s' && ls trace.*.json", dir);
  char *lsargv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
  run_env(&ls, lsargv, 0, NULL, 0);
  char f1[64] = "", f2[64] = "";
  ck_assert_msg(sscanf(ls.out.data, "%63s %63s", f1, f2) == 2, "not two trace files: %s", ls.out.data);

  struct trace t[2];
  verify(in_dir(f1), &t[0]);
  verify(in_dir(f2), &t[1]);
  ck_assert(t[0].pid != t[1].pid);
  /* The parent is the one that made the tasks (its file has the makes). */
  struct trace *parent = t[0].made > 0 ? &t[0] : &t[1], *child = parent == &t[0] ? &t[1] : &t[0];
  ck_assert_int_eq(parent->made, 2);
  ck_assert_int_eq(child->made, 0);
  char want[128], got[128], before[128], after[128];
  printed_counts(p.out.data, "child: switchins ", want, sizeof want);
  made_slices(child, got, sizeof got);
  ck_assert_msg(strcmp(got, want) == 0, "the child's slices per task %s, it counted %s", got, want);
  printed_counts(p.out.data, "before fork: switchins ", before, sizeof before);
  printed_counts(p.out.data, "parent: switchins ", after, sizeof after);
  int b1, b2, a1, a2;
  ck_assert(sscanf(before, "%d %d", &b1, &b2) == 2 && sscanf(after, "%d %d", &a1, &a2) == 2);
  snprintf(want, sizeof want, "%d %d", b1 + a1, b2 + a2);
  made_slices(parent, got, sizeof got);
  ck_assert_msg(strcmp(got, want) == 0, "the parent's slices per task %s, it counted %s", got, want);
  ck_assert_int_eq(child->nthreads, 1);
  ck_assert_int_eq(child->th[0].tid, child->pid);

  /* Without %p the child writes nothing: the parent's file stays its own. */
  const char *vars2[] = {var("TASKLOCAL_TRACE", in_dir("one.json"))};
  run_env(&p, argv, 1, vars2, 1);
  expect_exit(&p, 0, "fork without %p");
  struct trace one;
  verify(in_dir("one.json"), &one);
  ck_assert_int_eq(one.made, 2);
  made_slices(&one, got, sizeof got);
  ck_assert_str_eq(got, want);
  clean_dir();
}
END_TEST

/* The rings of exited threads stay for the file, up to 256: past them a
 * new thread takes the oldest, whose events count as dropped. */
START_TEST(test_many_threads)
{
  make_dir();
  char *argv[] = {(char *)PROG, (char *)"threads", (char *)"300", NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json")), "TASKLOCAL_TRACE_SIZE=64"};
  run_env(&p, argv, 1, vars, 2);
  expect_exit(&p, 0, "300 threads");
  ck_assert_str_eq(p.out.data, "300 threads\n");
  struct trace t;
  verify(in_dir("trace.json"), &t);
  /* The main thread, 256 exited threads' rings, and the 44 threads that
   * reused a ring left theirs in a reused one: 257 rings in all. */
  ck_assert_int_eq(t.nthreads, 257);
  ck_assert_msg(t.recycled > 0 && t.dropped >= t.recycled, "recycled %ld, dropped %ld", t.recycled, t.dropped);
  ck_assert_int_eq(t.made, 256);
  clean_dir();
}
END_TEST

/* A file that cannot be written: one warning line, and the program's
 * output and status are its own. */
START_TEST(test_unwritable)
{
  char *argv[] = {(char *)PROG, (char *)"asym", NULL};
  struct tl_test_proc alone, traced;
  run_env(&alone, argv, 0, NULL, 0);
  const char *vars[] = {"TASKLOCAL_TRACE=/nonexistent/directory/trace.json"};
  run_env(&traced, argv, 1, vars, 1);
  ck_assert_int_eq(traced.wstatus, alone.wstatus);
  ck_assert_str_eq(traced.out.data, alone.out.data);
  const char *want = "tasklocal: TASKLOCAL_TRACE: cannot write /nonexistent/directory/trace.json: "
                     "No such file or directory; no trace\n";
  ck_assert_str_eq(traced.err.data, want);
  ck_assert(!file_exists("/nonexistent/directory/trace.json"));
  clean_dir();
}
END_TEST

/* A bad TASKLOCAL_TRACE_SIZE: one warning, and the default. */
START_TEST(test_bad_size)
{
  make_dir();
  char *argv[] = {(char *)PROG, (char *)"asym", NULL};
  static const char *const bad[] = {"lots", "8", "100M", "-4", "12q"};
  struct tl_test_proc p;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json")), var("TASKLOCAL_TRACE_SIZE", bad[i])};
    run_env(&p, argv, 1, vars, 2);
    expect_exit(&p, 0, bad[i]);
    char want[256];
    snprintf(want, sizeof want, "tasklocal: TASKLOCAL_TRACE_SIZE=%s is not valid", bad[i]);
    ck_assert_msg(strncmp(p.err.data, want, strlen(want)) == 0 && strchr(p.err.data, '\n')[1] == '\0',
                  "TASKLOCAL_TRACE_SIZE=%s gave:\n%s", bad[i], p.err.data);
    struct trace t;
    verify(in_dir("trace.json"), &t);
    ck_assert_int_eq(t.ring, 1 << 20);
  }
  /* A good one is rounded up to a power of two, with a K suffix. */
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json")), "TASKLOCAL_TRACE_SIZE=3k"};
  run_env(&p, argv, 1, vars, 2);
  ck_assert_str_eq(p.err.data, "");
  struct trace t;
  verify(in_dir("trace.json"), &t);
  ck_assert_int_eq(t.ring, 4096);
  clean_dir();
}
END_TEST

/* _exit skips the exit handlers; the trace is written anyway. A vfork
 * child's _exit writes nothing (it shares its parent's rings), and leaves
 * the parent's exit to write the file. A program that never made a task
 * (a launcher, a shell) writes none. */
START_TEST(test_exit_paths)
{
  make_dir();
  char *argv[] = {(char *)PROG, (char *)"quick", NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("quick.json"))};
  run_env(&p, argv, 1, vars, 1);
  expect_exit(&p, 0, "quick");
  struct trace t;
  verify(in_dir("quick.json"), &t);
  char want[64], got[64];
  printed_counts(p.out.data, "switchins ", want, sizeof want);
  made_slices(&t, got, sizeof got);
  ck_assert_str_eq(got, want);

  char *argv1[] = {(char *)PROG, (char *)"vfork", NULL};
  const char *vars1[] = {var("TASKLOCAL_TRACE", in_dir("vfork.json"))};
  run_env(&p, argv1, 1, vars1, 1);
  expect_exit(&p, 0, "vfork");
  verify(in_dir("vfork.json"), &t);
  printed_counts(p.out.data, "switchins ", want, sizeof want);
  made_slices(&t, got, sizeof got);
  ck_assert_msg(strcmp(got, want) == 0, "after a vfork child's _exit: slices per task %s, the program counted %s",
                got, want);

  char *argv2[] = {(char *)"/bin/true", NULL};
  const char *vars2[] = {var("TASKLOCAL_TRACE", in_dir("true.json"))};
  run_env(&p, argv2, 1, vars2, 1);
  expect_exit(&p, 0, "/bin/true");
  ck_assert_msg(!file_exists(in_dir("true.json")), "a program without tasks wrote a trace");
  clean_dir();
}
END_TEST

/* A thread whose ring cannot be mapped goes untraced, with one warning;
 * the program is not affected. */
START_TEST(test_ring_fails)
{
#if TL_TEST_UNDER_ASAN
  return;                                  /* ASan reserves terabytes of address space */
#endif
  make_dir();
  char cmd[2 * PATH_MAX + 64];
  snprintf(cmd, sizeof cmd, "ulimit -v 1000000 && exec '%s' mn", PROG);
  char *argv[] = {(char *)"/bin/sh", (char *)"-c", cmd, NULL};
  struct tl_test_proc alone, traced;
  run_env(&alone, argv, 0, NULL, 0);
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json")), "TASKLOCAL_TRACE_SIZE=64M"};
  /* Under qemu-user the shell is a host program, which must not be given
   * the aarch64 library to preload: env gives it to the program only. */
  if (TL_TEST_EMULATED)
    snprintf(cmd, sizeof cmd, "ulimit -v 1000000 && exec env LD_PRELOAD='%s' '%s' mn", SHIM_PATH, PROG);
  run_env(&traced, argv, !TL_TEST_EMULATED, vars, 2);
  ck_assert_int_eq(traced.wstatus, alone.wstatus);
  ck_assert_str_eq(traced.out.data, alone.out.data);
  const char *want = "tasklocal: TASKLOCAL_TRACE: cannot map a ring of ";
  ck_assert_msg(strncmp(traced.err.data, want, strlen(want)) == 0 && strchr(traced.err.data, '\n')[1] == '\0',
                "not one warning:\n%s", traced.err.data);
  ck_assert(!file_exists(in_dir("trace.json")));
  clean_dir();
}
END_TEST

/* ------------------------------------------------------------------------
 * The API: names, tl_trace_flush, the dump signal (scenarios run by this
 * program as a child of itself)
 * ------------------------------------------------------------------------ */

static ucontext_t main_uc, co_uc;
static char co_stack[256 * 1024];

/* The coroutine of spin_thread: yields back at once, forever. Its
 * thread's contexts are found through the thread's own variables. */
static __thread ucontext_t *spin_back, *spin_self;

static void spin_co(void)
{
  for (;;)
    swapcontext(spin_self, spin_back);
}

static void named(void)
{
  tl_task_set_name(NULL, "a \"named\" task");
  swapcontext(&co_uc, &main_uc);
}

/* Child: a named task, a flush while it is suspended (copied aside by the
 * parent's check), then the rest. Prints the flush's result. */
static int child_flush(const char *copy)
{
  getcontext(&co_uc);
  co_uc.uc_stack.ss_sp = co_stack;
  co_uc.uc_stack.ss_size = sizeof co_stack;
  co_uc.uc_link = &main_uc;
  makecontext(&co_uc, named, 0);
  swapcontext(&main_uc, &co_uc);
  /* Not UTF-8, and a control character: the file must stay valid JSON. */
  tl_task_set_name(NULL, "root\xff\x01 \xc3\xa9");
  int rc = tl_trace_flush();
  printf("flush %d\n", rc);
  fflush(stdout);
  if (rename(getenv("TASKLOCAL_TRACE"), copy) != 0)
    return 3;
  swapcontext(&main_uc, &co_uc);
  return 0;
}

/* Child: asks for a trace with the dump signal, waits until the dump
 * thread has written all of it (its last line ends with "}}"), and moves
 * it aside before the exit writes the file again. */
static int child_dump(const char *copy)
{
  getcontext(&co_uc);
  co_uc.uc_stack.ss_sp = co_stack;
  co_uc.uc_stack.ss_size = sizeof co_stack;
  co_uc.uc_link = &main_uc;
  makecontext(&co_uc, named, 0);
  swapcontext(&main_uc, &co_uc);
  raise(SIGUSR2);
  const char *path = getenv("TASKLOCAL_TRACE");
  for (int i = 0; i < 1000; i++) {
    char end[3] = "";
    int fd = open(path, O_RDONLY);
    if (fd >= 0 && lseek(fd, -3, SEEK_END) >= 0 && read(fd, end, 3) == 3 && memcmp(end, "}}\n", 3) == 0) {
      close(fd);
      if (rename(path, copy) != 0)
        return 3;
      printf("dumped\n");
      return 0;
    }
    if (fd >= 0)
      close(fd);
    usleep(10000);
  }
  return 4;
}

/* Child: two threads switch as fast as they can, on small rings that
 * wrap all the time, while the main thread writes the trace again and
 * again; the last file written while they ran is moved to copy. */
static _Atomic int spinning = 1;

static void *spin_thread(void *arg)
{
  (void)arg;
  static __thread ucontext_t back, co;
  static __thread char stack[64 * 1024];
  spin_back = &back;
  spin_self = &co;
  getcontext(&co);
  co.uc_stack.ss_sp = stack;
  co.uc_stack.ss_size = sizeof stack;
  co.uc_link = NULL;
  makecontext(&co, spin_co, 0);
  while (spinning)
    swapcontext(&back, &co);
  return NULL;
}

static int child_flush_threads(const char *copy)
{
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[i], NULL, spin_thread, NULL) != 0)
      return 2;
  int bad = 0;
  for (int i = 0; i < 20; i++) {
    usleep(5000);
    bad |= tl_trace_flush() != 0;
  }
  bad |= rename(getenv("TASKLOCAL_TRACE"), copy) != 0;
  spinning = 0;
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  printf("%s\n", bad ? "failed" : "flushed");
  return 0;
}

START_TEST(test_flush_while_switching)
{
  make_dir();
  char *argv[] = {self_path, (char *)"--child-flush-threads", (char *)in_dir("during.json"), NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json")), "TASKLOCAL_TRACE_SIZE=1K"};
  run_env(&p, argv, 0, vars, 2);
  expect_exit(&p, 0, "the concurrent flush scenario");
  ck_assert_str_eq(p.out.data, "flushed\n");
  struct trace t;
  verify(in_dir("during.json"), &t);       /* valid, and no slices overlap */
  ck_assert_int_eq(t.nthreads, 3);
  ck_assert_msg(t.dropped > 0, "the rings did not wrap");
  verify(in_dir("trace.json"), &t);
  clean_dir();
}
END_TEST

START_TEST(test_flush)
{
  make_dir();
  char *argv[] = {self_path, (char *)"--child-flush", (char *)in_dir("flushed.json"), NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json"))};
  run_env(&p, argv, 0, vars, 1);
  expect_exit(&p, 0, "the flush scenario");
  ck_assert_str_eq(p.out.data, "flush 0\n");
  ck_assert_str_eq(p.err.data, "");
  struct trace at_flush, at_exit;
  verify(in_dir("flushed.json"), &at_flush);
  verify(in_dir("trace.json"), &at_exit);
  /* At the flush the task had run once; by exit, twice, and finished. */
  int found = 0;
  for (int i = 0; i < at_flush.ntasks; i++)
    if (at_flush.task[i].root)
      ck_assert_str_eq(at_flush.task[i].name, "root?\x01 \xc3\xa9");
    else {
      ck_assert_str_eq(at_flush.task[i].name, "a \"named\" task");
      ck_assert_int_eq(at_flush.task[i].slices, 1);
      found++;
    }
  ck_assert_int_eq(found, 1);
  ck_assert_int_eq(at_flush.finished, 0);
  for (int i = 0; i < at_exit.ntasks; i++)
    if (!at_exit.task[i].root)
      ck_assert_int_eq(at_exit.task[i].slices, 2);
  ck_assert_int_eq(at_exit.finished, 1);

  /* Without TASKLOCAL_TRACE, tl_trace_flush says tracing is off. */
  run_env(&p, argv, 0, NULL, 0);
  ck_assert_str_eq(p.out.data, "flush 95\n");
  ck_assert_int_eq(ENOTSUP, 95);
  clean_dir();
}
END_TEST

START_TEST(test_dump_signal)
{
  make_dir();
  char *argv[] = {self_path, (char *)"--child-dump", (char *)in_dir("dumped.json"), NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json")), "TASKLOCAL_DUMP_SIGNAL=USR2",
                        "TASKLOCAL_LOG=/dev/null"};
  run_env(&p, argv, 0, vars, 3);
  expect_exit(&p, 0, "the dump scenario");
  ck_assert_str_eq(p.out.data, "dumped\n");
  struct trace t;
  verify(in_dir("dumped.json"), &t);
  ck_assert_int_eq(t.made, 1);
  ck_assert_int_eq(t.finished, 0);         /* written while the task was suspended */
  clean_dir();
}
END_TEST

/* A set-user-ID program never writes a trace (secure_getenv ignores the
 * variable there), and says so. Testable when this suite runs as root on
 * a file system that honours set-user-ID bits: the program, linked with
 * the library (LD_PRELOAD is ignored for set-user-ID programs), is made
 * set-user-ID to nobody and run as root, so that the kernel marks it
 * AT_SECURE. */
START_TEST(test_setuid)
{
#if TL_TEST_UNDER_ASAN
  return;                                  /* LeakSanitizer cannot stop the threads of a set-user-ID process */
#endif
  if (geteuid() != 0) {
    fprintf(stderr, "check_trace: not root: the set-user-ID case is not tested\n");
    return;
  }
  make_dir();
  const char *prog = in_dir("trace_linked");
  char cmd[3 * PATH_MAX];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s' && chown nobody '%s' && chmod 4755 '%s'", SETUID_PROG, prog, prog, prog);
  ck_assert_msg(system(cmd) == 0, "cannot make %s set-user-ID", prog);
  char *argv[] = {(char *)prog, (char *)"asym", NULL};
  struct tl_test_proc p;
  const char *vars[] = {var("TASKLOCAL_TRACE", in_dir("trace.json"))};
  run_env(&p, argv, 0, vars, 1);
  expect_exit(&p, 0, "the set-user-ID program");
  if (strstr(p.out.data, "secure 1") == NULL) {
    fprintf(stderr, "check_trace: the file system ignores set-user-ID bits: the case is not tested\n");
    clean_dir();
    return;
  }
  ck_assert_str_eq(p.err.data, "tasklocal: TASKLOCAL_TRACE is ignored in a secure-execution (set-user-ID) "
                               "process; no trace is written\n");
  ck_assert(!file_exists(in_dir("trace.json")));
  clean_dir();
}
END_TEST

static Suite *trace_suite(void)
{
  Suite *s = suite_create("trace");
  TCase *tc = tcase_create("trace");
  tcase_set_timeout(tc, TCASE_TIMEOUT_S);
  tcase_add_loop_test(tc, test_patterns, 0, (int)(sizeof modes / sizeof modes[0]));
  tcase_add_loop_test(tc, test_programs, 0, (int)(sizeof programs / sizeof programs[0]));
  tcase_add_test(tc, test_ring_wraps);
  tcase_add_test(tc, test_fork);
  tcase_add_test(tc, test_many_threads);
  tcase_add_test(tc, test_unwritable);
  tcase_add_test(tc, test_bad_size);
  tcase_add_test(tc, test_exit_paths);
  tcase_add_test(tc, test_ring_fails);
  tcase_add_test(tc, test_flush);
  tcase_add_test(tc, test_flush_while_switching);
  tcase_add_test(tc, test_dump_signal);
  tcase_add_test(tc, test_setuid);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv)
{
  self_path = argv[0];
  if (argc == 3 && strcmp(argv[1], "--child-flush") == 0)
    return child_flush(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--child-flush-threads") == 0)
    return child_flush_threads(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--child-dump") == 0)
    return child_dump(argv[2]);
  return tl_test_run(trace_suite());
}
