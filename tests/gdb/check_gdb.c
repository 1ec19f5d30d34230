/* The gdb extension (scripts/gdb/tasklocal-gdb.py, issue 13): its commands
 * on core files and on live processes of unmodified coroutine programs.
 *
 * tests/gdb/tasks.c (built without debug information) and tests/gdb/mn.c
 * (two threads, a coroutine moved from one to the other; built with it)
 * run under the shim with tests/gdb/gdbplug.c preloaded, which names their
 * tasks and binds values of every scope, and abort. Their cores, and one
 * of tasks.c run without the shim, are made once for the whole suite in
 * its own directory: by the kernel when core_pattern names a file in the
 * crashing process's directory and the core limit can be raised, else by
 * gdb itself (run to the abort, generate-core-file). Every test then runs
 * gdb -batch over a core or a live process and checks what the commands
 * print: ids, states, threads, names, entry functions, key names and
 * values, and the functions each task's backtrace goes through (the same
 * as the leak report's, address, function, file and line). The live
 * cases attach with gdb -p (skipped, saying why, where ptrace is not
 * permitted) and run programs under gdb.
 *
 * TL_BUILD_DIR is the build directory, TL_GDB_DIR where the programs and
 * the plugin are, TL_GDB_SCRIPT the extension. CHECK_GDB_CORES=gdb in the
 * environment makes gdb write the cores even where the kernel could.
 */
#include "testutil.h"

#include <dirent.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <sys/stat.h>

#ifndef TL_GDB_DIR
#error "TL_GDB_DIR must name the directory of the test programs"
#endif
#ifndef TL_GDB_SCRIPT
#error "TL_GDB_SCRIPT must name the extension"
#endif

#define LIB TL_BUILD_DIR "/libtasklocal.so"
#define PLUGIN TL_GDB_DIR "/libtlgdbplug.so"
#define TASKS TL_GDB_DIR "/tasks"
#define MN TL_GDB_DIR "/mn"
#define SHARED TL_BUILD_DIR "/tests/programs/leak_shared"
#define DEMO TL_BUILD_DIR "/tests/programs/leak_demo"
#define LEAKPLUG TL_BUILD_DIR "/tests/libtlleakplug.so"
#define LEAK_KINDS TL_BUILD_DIR "/tests/programs/leak_kinds"
#define RUN_DIR TL_GDB_DIR "/run"

#define DEADLINE_S 60
#define TCASE_TIMEOUT_S 120

static char gdb_path[PATH_MAX];
static char tasks_core[PATH_MAX], mn_core[PATH_MAX], plain_core[PATH_MAX];

/* ------------------------------------------------------------------------
 * Output checks
 * ------------------------------------------------------------------------ */

/* Whether text has a line matching the extended regular expression re
 * (^ and $ match at line ends). */
static int has(const char *text, const char *re)
{
  regex_t r;
  int rc = regcomp(&r, re, REG_EXTENDED | REG_NEWLINE | REG_NOSUB);
  ck_assert_msg(rc == 0, "bad regular expression in the test: %s", re);
  rc = regexec(&r, text, 0, NULL, 0);
  regfree(&r);
  return rc == 0;
}

#define EXPECT(text, re) ck_assert_msg(has((text), (re)), "expected a line matching\n  %s\nin:\n%s", (re), (text))
#define REFUSE(text, re) ck_assert_msg(!has((text), (re)), "expected no line matching\n  %s\nin:\n%s", (re), (text))

/* The frames of a backtrace: #0 in names[0], #1 in names[1], ... */
static void expect_frames(const char *text, const char *const *names, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char re[256];
    snprintf(re, sizeof re, "^  #%zu +0x[0-9a-f]+ in %s[[ (]", i, names[i]);
    EXPECT(text, re);
  }
}

/* ------------------------------------------------------------------------
 * Running gdb
 * ------------------------------------------------------------------------ */

struct gdb_run {
  char *out, *err;
};

static void find_gdb(void)
{
  const char *path = getenv("PATH");
  char dirs[4096];
  snprintf(dirs, sizeof dirs, "%s", path != NULL ? path : "/usr/bin:/bin");
  for (char *save, *d = strtok_r(dirs, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
    snprintf(gdb_path, sizeof gdb_path, "%s/gdb", d);
    if (access(gdb_path, X_OK) == 0)
      return;
  }
  gdb_path[0] = '\0';
}

/* Runs gdb -batch: first the arguments of pre (options and -iex, before
 * anything is loaded), then the extension sourced by hand unless
 * autoload is set, then each command of cmds as an -ex, then the
 * arguments of post (the program, a core or -p PID). NULL ends each list. */
static struct gdb_run gdb_run(const char *const *pre, int autoload, const char *const *cmds, const char *const *post)
{
  const char *argv[96];
  size_t n = 0;
  argv[n++] = gdb_path;
  argv[n++] = "-nx";
  argv[n++] = "-batch";
  for (; pre != NULL && *pre != NULL; pre++)
    argv[n++] = *pre;
  if (!autoload) {
    /* Not twice: the build tree's copy next to the library is declined
     * by the default safe path anyway, but a user's setting may allow it. */
    argv[n++] = "-iex";
    argv[n++] = "set auto-load python-scripts off";
    argv[n++] = "-ex";
    argv[n++] = "source " TL_GDB_SCRIPT;
  }
  for (; cmds != NULL && *cmds != NULL; cmds++) {
    ck_assert(n + 4 < sizeof argv / sizeof argv[0]);
    argv[n++] = "-ex";
    argv[n++] = *cmds;
  }
  for (; post != NULL && *post != NULL; post++) {
    ck_assert(n + 2 < sizeof argv / sizeof argv[0]);
    argv[n++] = *post;
  }
  argv[n] = NULL;
  static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", NULL};
  char **env = tl_test_env(drop, NULL, 0);
  struct tl_test_proc p;
  tl_test_exec(&p, (char *const *)argv, env, DEADLINE_S);
  free(env);
  char how[64];
  ck_assert_msg(!p.timed_out, "gdb %s; it printed:\n%s\n%s", tl_test_describe(&p, how, sizeof how), p.out.data,
                p.err.data);
  return (struct gdb_run){p.out.data, p.err.data};
}

static void gdb_free(struct gdb_run *r)
{
  free(r->out);
  free(r->err);
}

/* The commands on a core of exe. */
static struct gdb_run on_core(const char *exe, const char *core, const char *const *cmds)
{
  const char *post[] = {exe, core, NULL};
  return gdb_run(NULL, 0, cmds, post);
}

/* ------------------------------------------------------------------------
 * Making cores
 * ------------------------------------------------------------------------ */

static void rm_rf(const char *dir)
{
  char cmd[PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "check_gdb: could not remove %s\n", dir);
}

/* Whether the kernel writes cores into the crashing process's directory:
 * a core_pattern that is neither a pipe to a handler nor an absolute path.
 * The system's pattern is never changed. */
static int kernel_cores_here(char *pattern, size_t size)
{
  FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
  pattern[0] = '\0';
  if (f != NULL) {
    if (fgets(pattern, (int)size, f) == NULL)
      pattern[0] = '\0';
    fclose(f);
  }
  pattern[strcspn(pattern, "\n")] = '\0';
  return pattern[0] != '\0' && pattern[0] != '|' && pattern[0] != '/' && strchr(pattern, '/') == NULL;
}

/* The first file of dir whose name starts with "core", into path. */
static int find_core(const char *dir, char *path, size_t size)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  while (d != NULL && !found && (e = readdir(d)) != NULL)
    if (strncmp(e->d_name, "core", 4) == 0) {
      snprintf(path, size, "%s/%s", dir, e->d_name);
      found = 1;
    }
  if (d != NULL)
    closedir(d);
  return found;
}

/* Runs argv (which aborts) in a fresh directory dir with the environment
 * variables vars (NULL-terminated "NAME=value" strings), and leaves the
 * path of its core in core. */
static void make_core(const char *dir, const char *const *vars, const char *const *argv, char *core, size_t size)
{
  char pattern[256];
  rm_rf(dir);
  ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
  const char *force = getenv("CHECK_GDB_CORES");
  if (kernel_cores_here(pattern, sizeof pattern) && !(force != NULL && strcmp(force, "gdb") == 0)) {
    const char *sh[48];
    size_t n = 0;
    sh[n++] = "/bin/sh";
    sh[n++] = "-c";
    sh[n++] = "ulimit -c unlimited && cd \"$0\" && exec env \"$@\"";
    sh[n++] = dir;
    for (; vars != NULL && *vars != NULL; vars++)
      sh[n++] = *vars;
    for (const char *const *a = argv; *a != NULL; a++)
      sh[n++] = *a;
    sh[n] = NULL;
    static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", NULL};
    char **env = tl_test_env(drop, NULL, 0);
    struct tl_test_proc p;
    tl_test_exec(&p, (char *const *)sh, env, DEADLINE_S);
    free(env);
    int dumped = WIFSIGNALED(p.wstatus) && WTERMSIG(p.wstatus) == SIGABRT;
    tl_test_proc_free(&p);
    if (dumped && find_core(dir, core, size)) {
      fprintf(stderr, "check_gdb: %s: core written by the kernel (core_pattern '%s')\n", argv[0], pattern);
      return;
    }
  }
  /* gdb runs it to the abort and writes the core itself. */
  char cwd[PATH_MAX + 16], file[PATH_MAX + 32];
  const char *pre[48];
  size_t n = 0;
  snprintf(cwd, sizeof cwd, "set cwd %s", dir);
  snprintf(core, size, "%s/core.gdb", dir);
  snprintf(file, sizeof file, "generate-core-file %s", core);
  static char setenv_cmds[8][PATH_MAX];
  const char *cmds[24];
  size_t c = 0;
  cmds[c++] = "set startup-with-shell off";
  cmds[c++] = cwd;
  for (size_t i = 0; vars != NULL && vars[i] != NULL; i++) {
    ck_assert(i < 8);
    snprintf(setenv_cmds[i], sizeof setenv_cmds[i], "set environment %s", vars[i]);
    cmds[c++] = setenv_cmds[i];
  }
  cmds[c++] = "run";
  cmds[c++] = file;
  cmds[c++] = "kill";
  cmds[c] = NULL;
  pre[n++] = "-iex";
  pre[n++] = "set auto-load python-scripts off";
  pre[n] = NULL;
  const char *post[16];
  size_t k = 0;
  post[k++] = "--args";
  for (const char *const *a = argv; *a != NULL; a++)
    post[k++] = *a;
  post[k] = NULL;
  /* The extension is not needed here: no source, no auto-load. */
  struct gdb_run r = gdb_run(pre, 1, cmds, post);
  struct stat st;
  ck_assert_msg(stat(core, &st) == 0, "gdb did not write %s (core_pattern is '%s'):\n%s\n%s", core, pattern, r.out,
                r.err);
  fprintf(stderr, "check_gdb: %s: core written by gdb (core_pattern '%s')\n", argv[0], pattern);
  gdb_free(&r);
}

/* Once for the suite, in the runner process: the cores every test reads. */
static void setup(void)
{
  find_gdb();
  if (gdb_path[0] == '\0')
    return;
  mkdir(RUN_DIR, 0755);
  static const char *const shim_leaks[] = {"LD_PRELOAD=" LIB " " PLUGIN, "TASKLOCAL_LEAKS=1", NULL};
  static const char *const shim[] = {"LD_PRELOAD=" LIB " " PLUGIN, NULL};
  static const char *const tasks[] = {TASKS, NULL};
  static const char *const mn[] = {MN, "abort", NULL};
  make_core(RUN_DIR "/tasks", shim_leaks, tasks, tasks_core, sizeof tasks_core);
  make_core(RUN_DIR "/mn", shim, mn, mn_core, sizeof mn_core);
  make_core(RUN_DIR "/plain", NULL, tasks, plain_core, sizeof plain_core);
}

static void teardown(void)
{
  rm_rf(RUN_DIR);
}

static void need_gdb(void)
{
  ck_assert_msg(gdb_path[0] != '\0', "gdb is not installed (scripts/install-deps installs it)");
  ck_assert_msg(tasks_core[0] != '\0' && mn_core[0] != '\0' && plain_core[0] != '\0', "the cores were not made");
}

/* ------------------------------------------------------------------------
 * A core of tasks.c: one thread, a task in every state
 * ------------------------------------------------------------------------ */

START_TEST(test_tasks)
{
  need_gdb();
  static const char *const cmds[] = {"tl tasks", NULL};
  struct gdb_run r = on_core(TASKS, tasks_core, cmds);
  EXPECT(r.out, "^tasklocal 0\\.3\\.0: 8 tasks, 1 thread$");
  EXPECT(r.out, "^ +ID +STATE +THREAD +LOCALS +NAME +ENTRY$");
  EXPECT(r.out, "^ +1 suspended +1 +1 +main +\\(thread 1's own stack\\)$");
  EXPECT(r.out, "^ +2 suspended +1 +2 +disk-reader +disk_reader$");
  EXPECT(r.out, "^ +3 suspended +1 +1 +net-writer +net_writer$");
  EXPECT(r.out, "^ +4 never started +- +0 +- +idle_worker$");
  EXPECT(r.out, "^ +5 abandoned +1 +1 +given-up +given_up$");
  EXPECT(r.out, "^ +6 finished, record waiting for reuse +- +0 +short-lived +short_task$");
  EXPECT(r.out, "^\\* +7 running on thread 1 +1 +1 +crasher +crash_task$");
  EXPECT(r.out, "^ +8 never started +- +0 +- +idle_worker$");
  ck_assert_msg(r.err[0] == '\0' || !has(r.err, "tasklocal|Python|Traceback"), "tl tasks complained:\n%s", r.err);
  gdb_free(&r);
}
END_TEST

START_TEST(test_locals)
{
  need_gdb();
  static const char *const cmds[] = {"tl locals", "tl locals 2", "tl locals 5", "tl locals 1", "tl locals 4", NULL};
  struct gdb_run r = on_core(TASKS, tasks_core, cmds);
  /* The default: the task running on the selected thread. */
  EXPECT(r.out, "^task 7 \"crasher\": running on thread 1; made by task 1: 1 task-scope value$");
  EXPECT(r.out, "^  key [0-9]+ \"request\\.id\" = 0x103$");
  EXPECT(r.out, "^task 2 \"disk-reader\": suspended; made by task 1: 2 task-scope values$");
  EXPECT(r.out, "^  key [0-9]+ \"request\\.id\" = 0x101$");
  EXPECT(r.out, "^  key [0-9]+ \"request\\.user\" = 0xabc$");
  EXPECT(r.out, "^task 5 \"given-up\": abandoned; made by task 1: 1 task-scope value \\(held when abandoned\\)$");
  EXPECT(r.out, "^  key [0-9]+ \"request\\.id\" = 0x104$");
  EXPECT(r.out, "^task 1 \"main\": suspended: 1 task-scope value$");
  EXPECT(r.out, "^  key [0-9]+ \"main\\.config\" = 0x900$");
  EXPECT(r.out, "^task 4: never started; made by task 1: 0 task-scope values$");
  /* The thread's and the session's values, whatever the task. */
  EXPECT(r.out, "^thread scope of thread 1 \\(where this task runs\\), root task 1: 1 value$");
  EXPECT(r.out, "^  key [0-9]+ \"loop\\.pool\" = 0x1001 \\(thread scope\\)$");
  EXPECT(r.out, "^custom scope: 1 owner with values$");
  EXPECT(r.out, "^  owner 0x[0-9a-f]+ of discriminator 0x[0-9a-f]+ <sessions>: 1 value$");
  EXPECT(r.out, "^    key [0-9]+ \"session\\.user\" = 0x5e55 \\(custom scope\\)$");
  gdb_free(&r);
}
END_TEST

START_TEST(test_backtraces)
{
  need_gdb();
  static const char *const cmds2[] = {"tl bt 2", NULL};
  struct gdb_run r = on_core(TASKS, tasks_core, cmds2);
  EXPECT(r.out, "^task 2 \"disk-reader\": suspended; made by task 1$");
  static const char *const disk[] = {"wait_for_disk", "read_block", "disk_reader"};
  expect_frames(r.out, disk, 3);
  REFUSE(r.out, "#3 |trampoline|unreliable");
  gdb_free(&r);

  static const char *const cmds3[] = {"tl bt 3", NULL};
  r = on_core(TASKS, tasks_core, cmds3);
  static const char *const net[] = {"wait_for_net", "net_writer"};
  expect_frames(r.out, net, 2);
  gdb_free(&r);

  /* The main thread's root, suspended while the crasher runs on it. */
  static const char *const cmds1[] = {"tl bt 1", NULL};
  r = on_core(TASKS, tasks_core, cmds1);
  static const char *const root[] = {"main"};
  expect_frames(r.out, root, 1);
  gdb_free(&r);

  /* The running task: its thread's backtrace, through explode. */
  static const char *const cmds7[] = {"tl bt 7", NULL};
  r = on_core(TASKS, tasks_core, cmds7);
  EXPECT(r.out, "^  the backtrace of thread 1, where it runs:$");
  EXPECT(r.out, "^  #[0-9]+ +0x[0-9a-f]+ in (__GI_)?abort ");
  EXPECT(r.out, "^  #[0-9]+ +0x[0-9a-f]+ in explode");
  EXPECT(r.out, "^  #[0-9]+ +0x[0-9a-f]+ in crash_task ");
  gdb_free(&r);

  /* Every suspended task at once; the others say why they have none. */
  static const char *const more[] = {"tl bt all", "tl bt 4", "tl bt 5", "tl bt 6", NULL};
  r = on_core(TASKS, tasks_core, more);
  EXPECT(r.out, "^task 1 \"main\": suspended$");
  EXPECT(r.out, "^task 2 \"disk-reader\": suspended; made by task 1$");
  EXPECT(r.out, "^task 3 \"net-writer\": suspended; made by task 1$");
  REFUSE(r.out, "^task 7 .*running");
  EXPECT(r.out, "^  no frames: it never started \\(it will start in idle_worker\\)$");
  EXPECT(r.out, "^  no frames: it was abandoned$");
  EXPECT(r.out, "^  no frames: it finished$");
  gdb_free(&r);
}
END_TEST

START_TEST(test_stats)
{
  need_gdb();
  static const char *const cmds[] = {"tl stats", NULL};
  struct gdb_run r = on_core(TASKS, tasks_core, cmds);
  /* 7 makecontext calls; short-lived finished; given-up abandoned; 9
   * switches (8 swapcontext calls and short-lived's return through
   * uc_link); 5 keys. */
  EXPECT(r.out, "^tasklocal: stats: created=7 finished=1 abandoned=1 released=0 switches=9 untracked=0 peak=6 keys=5$");
  gdb_free(&r);
}
END_TEST

/* Errors say what is wrong, in one line, and nothing is printed as if it
 * were right. */
START_TEST(test_bad_input)
{
  need_gdb();
  static const char *const cmds[] = {"tl bt", "tl bt 99", "tl locals junk", "help tl", NULL};
  struct gdb_run r = on_core(TASKS, tasks_core, cmds);
  EXPECT(r.err, "^tasklocal: which task\\? Give its id \\(see tl tasks\\)$");
  EXPECT(r.err, "^tasklocal: no task 99 \\(tl tasks lists them\\)$");
  EXPECT(r.err, "^tasklocal: 'junk' is not a task id$");
  REFUSE(r.err, "Traceback|Python Exception");
  EXPECT(r.out, "^tl tasks -- Every task tasklocal knows");
  gdb_free(&r);

  /* A library whose anchor has another layout: the extension is told
   * to expect a layout the library does not have. */
  static const char *const other[] = {"python LAYOUT_VERSION = 99", "tl tasks", NULL};
  r = on_core(TASKS, tasks_core, other);
  EXPECT(r.err, "^tasklocal: .*libtasklocal\\.so has debug layout [0-9]+ and this extension reads layout 99");
  REFUSE(r.out, "suspended");
  gdb_free(&r);
}
END_TEST

START_TEST(test_not_loaded)
{
  need_gdb();
  static const char *const cmds[] = {"tl tasks", "tl stats", NULL};
  struct gdb_run r = on_core(TASKS, plain_core, cmds);
  EXPECT(r.err, "^tasklocal not loaded: no libtasklocal\\.so among this process's shared libraries$");
  REFUSE(r.out, "stats:");
  gdb_free(&r);

  /* No process at all. */
  const char *post[] = {TASKS, NULL};
  r = gdb_run(NULL, 0, cmds, post);
  EXPECT(r.err, "^tasklocal: no process: run or attach to the program, or load a core file$");
  gdb_free(&r);
}
END_TEST

/* The copy next to the build tree's library, loaded by gdb itself once
 * the safe path allows it, and declined before. */
START_TEST(test_autoload)
{
  need_gdb();
  static const char *const cmds[] = {"tl stats", NULL};
  static const char *const allow[] = {"-iex", "add-auto-load-safe-path " TL_BUILD_DIR, NULL};
  const char *post[] = {TASKS, tasks_core, NULL};
  struct gdb_run r = gdb_run(allow, 1, cmds, post);
  EXPECT(r.out, "^tasklocal: stats: created=7 ");
  gdb_free(&r);
  r = gdb_run(NULL, 1, cmds, post);
  EXPECT(r.err, "libtasklocal\\.so-gdb\\.py.*declined");
  EXPECT(r.err, "Undefined command: \"tl\"");
  gdb_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * M:N: mn.c's coroutine made on the main thread and resumed by the worker
 * ------------------------------------------------------------------------ */

static void expect_mn(const char *out)
{
  EXPECT(out, "^tasklocal 0\\.3\\.0: 6 tasks, 2 threads$");
  EXPECT(out, "^\\* +1 running on thread 1 +1 +0 +- +\\(thread 1's own stack\\)$");
  EXPECT(out, "^ +2 suspended +2 +1 +migrant +migrant$");
  EXPECT(out, "^ +3 never started +- +0 +- +never$");
  EXPECT(out, "^ +4 suspended +2 +0 +- +\\(thread 2's own stack\\)$");
  EXPECT(out, "^ +5 suspended +2 +1 +w-task +wtask$");
  EXPECT(out, "^\\* +6 running on thread 2 +2 +1 +blocker +blocker$");
  /* With the program's debug information, file and line. */
  EXPECT(out, "^  #0 +0x[0-9a-f]+ in second_leg \\(\\) at .*tests/gdb/mn\\.c:[0-9]+$");
  EXPECT(out, "^  #1 +0x[0-9a-f]+ in migrant \\(\\) at .*tests/gdb/mn\\.c:[0-9]+$");
}

START_TEST(test_mn_core)
{
  need_gdb();
  static const char *const cmds[] = {"tl tasks", "tl bt 2", NULL};
  struct gdb_run r = on_core(MN, mn_core, cmds);
  expect_mn(r.out);
  gdb_free(&r);

  static const char *const more[] = {"tl bt 5", "tl bt 4", "tl bt 6", "thread 2", "tl locals", "tl locals 2", NULL};
  r = on_core(MN, mn_core, more);
  static const char *const wtask[] = {"wait_on_worker", "wtask"};
  expect_frames(r.out, wtask, 2);
  /* The worker's root is suspended in worker, on the thread's own stack. */
  EXPECT(r.out, "^  #0 +0x[0-9a-f]+ in worker \\(.*mn\\.c:[0-9]+$");
  EXPECT(r.out, "^  the backtrace of thread 2, where it runs:$");
  EXPECT(r.out, "^  #[0-9]+ +0x[0-9a-f]+ in block_in_task \\(\\) at .*mn\\.c:[0-9]+$");
  /* tl locals on thread 2: the blocker's, and each thread's own. */
  EXPECT(r.out, "^task 6 \"blocker\": running on thread 2; made by task 4: 1 task-scope value$");
  EXPECT(r.out, "^  key [0-9]+ \"request\\.id\" = 0x203$");
  EXPECT(r.out, "^thread scope of thread 2 \\(where this task runs\\), root task 4: 1 value$");
  EXPECT(r.out, "^  key [0-9]+ \"loop\\.pool\" = 0x2002 \\(thread scope\\)$");
  EXPECT(r.out, "^thread scope of thread 1, root task 1: 1 value$");
  EXPECT(r.out, "^  key [0-9]+ \"loop\\.pool\" = 0x1001 \\(thread scope\\)$");
  /* The migrant was made by the main thread's root and last ran on 2. */
  EXPECT(r.out, "^task 2 \"migrant\": suspended; made by task 1: 1 task-scope value$");
  EXPECT(r.out, "^thread scope of thread 2 \\(where this task last ran\\), root task 4: 1 value$");
  gdb_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * Live processes
 * ------------------------------------------------------------------------ */

/* mn.c waiting, attached with gdb -p, then its gcore read back. */
START_TEST(test_attach)
{
  need_gdb();
  static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", NULL};
  static const char *const vars[] = {"LD_PRELOAD=" LIB " " PLUGIN};
  char **env = tl_test_env(drop, vars, 1);
  static const char *const argv[] = {MN, "wait", NULL};
  struct tl_test_proc p;
  tl_test_spawn(&p, (char *const *)argv, env);
  free(env);
  ck_assert_msg(tl_test_read_until(&p, "ready\n", DEADLINE_S), "mn wait did not get ready: %s %s", p.out.data,
                p.err.data);

  char pid[32], gcore[PATH_MAX], gen[PATH_MAX + 32];
  snprintf(pid, sizeof pid, "%d", (int)p.pid);
  snprintf(gcore, sizeof gcore, "%s/attach.core", RUN_DIR);
  snprintf(gen, sizeof gen, "generate-core-file %s", gcore);
  unlink(gcore);
  const char *cmds[] = {"tl tasks", "tl bt 2", gen, NULL};
  const char *post[] = {MN, "-p", pid, NULL};
  struct gdb_run r = gdb_run(NULL, 0, cmds, post);
  kill(p.pid, SIGKILL);
  tl_test_reap(&p, DEADLINE_S);
  tl_test_proc_free(&p);
  if (has(r.err, "ptrace: Operation not permitted|Could not attach to process")) {
    int scope = -1;
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
    if (f != NULL) {
      if (fscanf(f, "%d", &scope) != 1)
        scope = -1;
      fclose(f);
    }
    fprintf(stderr, "check_gdb: attach skipped: this process may not ptrace its child (yama ptrace_scope %d): %s\n",
            scope, r.err);
    gdb_free(&r);
    return;
  }
  expect_mn(r.out);
  gdb_free(&r);

  static const char *const again[] = {"tl tasks", "tl bt 2", NULL};
  r = on_core(MN, gcore, again);
  expect_mn(r.out);
  gdb_free(&r);
  unlink(gcore);
}
END_TEST

/* tasks.c run under gdb: the commands on a live process stopped in
 * explode, a saved context made invalid, and the stats at exit, which
 * must be those of the library's own stats line. */
START_TEST(test_live_run)
{
  need_gdb();
  static const char *const cmds[] = {
    "set startup-with-shell off",
    "set environment LD_PRELOAD " LIB " " PLUGIN,
    "set environment TASKLOCAL_STATS 1",
    "break explode",
    "run",
    "tl tasks",
    "tl bt 3",
    /* The stack pointer saved in net-writer's context, made 0. */
    "python t = Library().by_id[3]; gdb.selected_inferior().write_memory(t.ctx + 40 + 15 * 8, bytes(8))",
    "tl bt 3",
    "delete",
    "catch syscall exit_group",
    "continue",
    "tl stats",
    "kill",
    NULL,
  };
  const char *post[] = {"--args", TASKS, "exit", NULL};
  struct gdb_run r = gdb_run(NULL, 0, cmds, post);
  EXPECT(r.out, "^\\* +7 running on thread 1 +1 +1 +crasher +crash_task$");
  EXPECT(r.out, "^ +3 suspended +1 +1 +net-writer +net_writer$");
  static const char *const net[] = {"wait_for_net", "net_writer"};
  expect_frames(r.out, net, 2);
  EXPECT(r.out, "^  context not available: the stack pointer saved in its ucontext_t at 0x[0-9a-f]+ \\(0x0\\) is "
                "outside its stack");
  /* The program's own line went to its stderr, which is gdb's. */
  char *line = strstr(r.err, "tasklocal: stats: ");
  ck_assert_msg(line != NULL, "no stats line from the program:\n%s", r.err);
  line[strcspn(line, "\n")] = '\0';
  char re[512];
  snprintf(re, sizeof re, "^%s$", line);
  EXPECT(r.out, re);
  gdb_free(&r);
}
END_TEST

/* Coroutines copied out of and back into one shared stack: their saved
 * frames are another's, which tl bt says, as the leak report does. */
START_TEST(test_shared_stack)
{
  need_gdb();
  static const char *const cmds[] = {
    "set startup-with-shell off", "set environment LD_PRELOAD " LIB, "catch syscall exit_group", "run", "tl bt all",
    "kill", NULL,
  };
  const char *post[] = {"--args", SHARED, NULL};
  struct gdb_run r = gdb_run(NULL, 0, cmds, post);
  EXPECT(r.out, "^task 2: suspended; made by task 1$");
  EXPECT(r.out, "^task 3: suspended; made by task 1$");
  EXPECT(r.out, "^  unreliable: its stack is shared with task 3, and copied out and back$");
  EXPECT(r.out, "^  unreliable: its stack is shared with task 2, and copied out and back$");
  gdb_free(&r);
}
END_TEST

/* The leak report's frames and tl bt's agree: the same addresses,
 * functions, source files and lines (the report names them with libdw,
 * the extension with gdb's own symbolizer). */
START_TEST(test_report_agrees)
{
  need_gdb();
  static const char *const cmds[] = {
    "set startup-with-shell off", "set environment LD_PRELOAD " LIB " " LEAKPLUG,
    "set environment TASKLOCAL_LEAKS 1", "catch syscall exit_group", "run", "tl bt 3", "kill", NULL,
  };
  const char *post[] = {"--args", DEMO, NULL};
  struct gdb_run r = gdb_run(NULL, 0, cmds, post);
  /* The program's report went to its stderr, which is gdb's. */
  const char *at = strstr(r.err, "tasklocal: task 3 \"request-2\": suspended");
  ck_assert_msg(at != NULL, "no report of task 3:\n%s", r.err);
  at = strstr(at, "  suspended at:\n");
  ck_assert_ptr_nonnull(at);
  at = strchr(at, '\n') + 1;
  int frames = 0;
  for (;;) {
    int i, n = 0;
    unsigned long pc;
    char func[128], where[256];
    if (sscanf(at, "tasklocal:     #%d 0x%lx in %127s %255s (%n", &i, &pc, func, where, &n) != 4 || n == 0)
      break;
    char re[600];
    snprintf(re, sizeof re, "^  #%d +0x0*%lx in %s \\(.*\\) at %s$", i, pc, func, where);
    EXPECT(r.out, re);
    frames++;
    at = strchr(at, '\n') + 1;
  }
  ck_assert_msg(frames >= 2, "%d frames of the report compared:\n%s", frames, r.err);
  gdb_free(&r);
}
END_TEST

/* Leaked or parked, as the process's last leak scan (here the exit
 * report's) found each task: tl tasks shows it beside the state, and tl
 * stats counts them. */
START_TEST(test_kinds)
{
  need_gdb();
  static const char *const cmds[] = {
    "set startup-with-shell off", "set environment LD_PRELOAD " LIB,
    "set environment TASKLOCAL_LEAKS 1", "catch syscall exit_group", "run", "tl tasks", "tl stats", "kill", NULL,
  };
  const char *post[] = {"--args", LEAK_KINDS, "mixed", NULL};
  struct gdb_run r = gdb_run(NULL, 0, cmds, post);
  EXPECT(r.out, "^leaked or parked: as the last leak scan in the process found them \\(scan 1\\)");
  EXPECT(r.out, "^ +2 suspended, leaked +1 +0 +- +leaked_dropped$");
  EXPECT(r.out, "^ +5 suspended, leaked +1 +0 +- +leaked_cycle_a$");
  EXPECT(r.out, "^ +7 suspended, parked +1 +0 +- +parked_in_queue$");
  EXPECT(r.out, "^\\* +1 running on thread 1 +1 +0 +- +\\(thread 1's own stack\\)$");
  EXPECT(r.out, "^tasklocal: last leak scan \\(scan 1\\): 8 leaked, 2 parked, 0 suppressed$");
  gdb_free(&r);
}
END_TEST

static Suite *gdb_suite(void)
{
  Suite *s = suite_create("gdb");
  TCase *tc = tcase_create("gdb");
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, TCASE_TIMEOUT_S);
  tcase_add_test(tc, test_tasks);
  tcase_add_test(tc, test_locals);
  tcase_add_test(tc, test_backtraces);
  tcase_add_test(tc, test_stats);
  tcase_add_test(tc, test_bad_input);
  tcase_add_test(tc, test_not_loaded);
  tcase_add_test(tc, test_autoload);
  tcase_add_test(tc, test_mn_core);
  tcase_add_test(tc, test_attach);
  tcase_add_test(tc, test_live_run);
  tcase_add_test(tc, test_shared_stack);
  tcase_add_test(tc, test_report_agrees);
  tcase_add_test(tc, test_kinds);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(gdb_suite());
}
