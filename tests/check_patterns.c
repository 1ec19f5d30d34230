/* Integration suite for the switch patterns of SPEC 2.3.
 *
 * Every program in tests/programs/ is an unmodified ucontext program that
 * calls a weak tlprobe(label) at interesting points, each coroutine under
 * its own label. Each one runs twice: alone, and with LD_PRELOAD of the
 * shim followed by the probe plugin (tests/plugin/probe.c), which logs for
 * every probe the task the shim reports and the task-local record it found.
 * The suite then checks that the shim changed nothing the program can see
 * (stdout, exit status) and that every coroutine kept one task and one
 * value through all its switches, and that the values of finished tasks
 * were destroyed (SPEC 2.4).
 *
 * TL_BUILD_DIR is the absolute path of build/, holding libtasklocal.so,
 * tests/libtlprobe.so and tests/programs/<name>.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TL_BUILD_DIR
#error "TL_BUILD_DIR must be the absolute path of the build directory"
#endif

#define SHIM_PATH TL_BUILD_DIR "/libtasklocal.so"
#define PLUGIN_PATH TL_BUILD_DIR "/tests/libtlprobe.so"
#define PROGRAM_DIR TL_BUILD_DIR "/tests/programs"

/* A run that takes longer has hung (a lost switch often deadlocks or
 * loops); it is killed so that no orphan outlives the test. Two runs must
 * fit in the test case's own timeout. */
#define RUN_DEADLINE_S 12
#define TCASE_TIMEOUT_S 30

#define MAX_LABELS 8
#define LABEL_LEN 64

extern char **environ;

/* ------------------------------------------------------------------------
 * What each program is expected to do
 * ------------------------------------------------------------------------ */

enum kind {
  ROOT,      /* a thread's own stack: destroyed at thread or process exit */
  FINISHES,  /* a coroutine whose function returns: destroyed then */
  UNFINISHED /* a coroutine that never returns: never destroyed */
};

struct label_spec {
  const char *label;
  int probes; /* how many times the program probes under this label */
  enum kind kind;
};

struct output {
  char *data;
  size_t len;
};

struct program {
  const char *name;
  int status;   /* exit status of a correct run */
  int threaded; /* several threads probe: lines are ordered only per thread */
  struct label_spec labels[MAX_LABELS];
  /* Optional checks of the plain run's stdout. */
  void (*check_stdout)(const struct output *out);
};

static void uclink_null_stdout(const struct output *out);

/* Probe counts are those of the programs as written; a program that is
 * changed must be changed here too. */
static const struct program programs[] = {
    {"asymmetric", 0, 0,
     {{"main", 26, ROOT}, {"co1", 6, FINISHES}, {"co2", 8, FINISHES},
      {"co3", 10, FINISHES}},
     NULL},
    {"symmetric", 0, 0,
     {{"main", 3, ROOT}, {"co1", 10, FINISHES}, {"co2", 10, FINISHES},
      {"co3", 10, FINISHES}},
     NULL},
    {"uclink", 0, 0,
     {{"main", 8, ROOT}, {"co1", 3, FINISHES}, {"co2", 3, FINISHES},
      {"co3", 3, FINISHES}, {"co4", 3, FINISHES}},
     NULL},
    {"uclink_null", 0, 0,
     {{"main", 5, ROOT}, {"co1", 5, FINISHES}, {"co2", 3, FINISHES}},
     uclink_null_stdout},
    {"getcontext_loop", 0, 0,
     {{"main", 9, ROOT}, {"co1", 7, FINISHES}, {"co2", 2, UNFINISHED}},
     NULL},
    {"shared_stack", 0, 0,
     {{"main", 32, ROOT}, {"co1", 8, FINISHES}, {"co2", 10, FINISHES},
      {"co3", 12, FINISHES}},
     NULL},
    {"sigjmp", 0, 0,
     {{"main", 29, ROOT}, {"co1", 6, UNFINISHED}, {"co2", 8, UNFINISHED},
      {"co3", 10, UNFINISHED}},
     NULL},
    {"migrate", 0, 1,
     {{"main", 4, ROOT}, {"worker0", 18, ROOT}, {"worker1", 16, ROOT},
      {"co1", 8, FINISHES}, {"co2", 10, FINISHES}, {"co3", 12, FINISHES}},
     NULL},
    {"nested", 0, 0,
     {{"main", 4, ROOT}, {"co1", 5, FINISHES}, {"co2", 7, FINISHES},
      {"co3", 4, FINISHES}, {"co4", 4, FINISHES}},
     NULL},
    /* co3 ends the process with exit() on its own stack: it never
     * finishes, and only the main thread's values go at exit. */
    {"unwind", 0, 0,
     {{"main", 16, ROOT}, {"co1", 6, FINISHES}, {"co2", 6, FINISHES},
      {"co3", 6, UNFINISHED}},
     NULL},
    {"annotated", 0, 0,
     {{"main", 9, ROOT}, {"co1", 5, FINISHES}, {"co2", 5, FINISHES}},
     NULL},
};

#define NPROGRAMS ((int)(sizeof programs / sizeof programs[0]))

/* ------------------------------------------------------------------------
 * Running a program
 * ------------------------------------------------------------------------ */

struct run {
  struct output out; /* stdout */
  struct output err; /* stderr, shown when something fails */
  int wstatus;
  int timed_out;
};

static void append(struct output *o, const char *buf, size_t n)
{
  char *p = realloc(o->data, o->len + n + 1);
  ck_assert_msg(p != NULL, "out of memory reading a program's output");
  memcpy(p + o->len, buf, n);
  o->len += n;
  p[o->len] = '\0';
  o->data = p;
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Whether the "NAME=value" strings a and b set the same variable. */
static int same_name(const char *a, const char *b)
{
  size_t n = strcspn(a, "=");
  return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* The environment of this process, with `extra` (a NULL-terminated list
 * of "NAME=value") added or replacing variables of the same name. Neither
 * run inherits LD_PRELOAD or TLPROBE_LOG: the plain run is without any
 * preload, the other gets exactly the shim and the plugin. */
static char **make_env(const char *const *extra)
{
  size_t n = 0, k = 0, nextra = 0;
  char **env;

  while (environ[n] != NULL)
    n++;
  while (extra[nextra] != NULL)
    nextra++;
  env = calloc(n + nextra + 1, sizeof *env);
  ck_assert_msg(env != NULL, "out of memory building an environment");
  for (size_t i = 0; i < n; i++) {
    int replaced = same_name("LD_PRELOAD=", environ[i]) ||
                   same_name("TLPROBE_LOG=", environ[i]);
    for (size_t j = 0; j < nextra && !replaced; j++)
      replaced = same_name(extra[j], environ[i]);
    if (!replaced)
      env[k++] = environ[i];
  }
  for (size_t i = 0; i < nextra; i++)
    env[k++] = (char *)extra[i];
  env[k] = NULL;
  return env;
}

/* In a build with AddressSanitizer the programs carry its runtime, which
 * refuses to start when a preloaded library comes before it; that check
 * is turned off, for both runs alike, keeping any options already given.
 * Returns NULL when nothing is to be set. */
static char *asan_options(void)
{
#if defined(__SANITIZE_ADDRESS__)
  const char *old = getenv("ASAN_OPTIONS");
  char *opt = NULL;
  int n;

  if (old != NULL && *old != '\0')
    n = asprintf(&opt, "ASAN_OPTIONS=%s:verify_asan_link_order=0", old);
  else
    n = asprintf(&opt, "ASAN_OPTIONS=verify_asan_link_order=0");
  ck_assert_msg(n > 0, "out of memory building ASAN_OPTIONS");
  return opt;
#else
  return NULL;
#endif
}

/* Runs `path` with no arguments and the environment `env`, capturing its
 * stdout and stderr; kills it if it runs past the deadline. */
static void run_program(const char *path, char *const env[], struct run *r)
{
  int out_pipe[2], err_pipe[2];
  struct pollfd fds[2];
  double deadline = now_s() + RUN_DEADLINE_S;
  pid_t pid;
  int open_fds = 2;

  memset(r, 0, sizeof *r);
  ck_assert_msg(pipe2(out_pipe, O_CLOEXEC) == 0 &&
                    pipe2(err_pipe, O_CLOEXEC) == 0,
                "pipe2: %s", strerror(errno));
  pid = fork();
  ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    char *const argv[] = {(char *)path, NULL};
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0)
      dup2(null_fd, STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    execve(path, argv, env);
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  fds[0].fd = out_pipe[0];
  fds[1].fd = err_pipe[0];
  fds[0].events = fds[1].events = POLLIN;

  while (open_fds > 0) {
    double left = deadline - now_s();
    int ready;

    if (left <= 0) {
      r->timed_out = 1;
      kill(pid, SIGKILL);
      break;
    }
    ready = poll(fds, 2, (int)(left * 1000) + 1);
    if (ready < 0 && errno == EINTR)
      continue;
    ck_assert_msg(ready >= 0, "poll: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
      char buf[4096];
      ssize_t n;

      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        append(i == 0 ? &r->out : &r->err, buf, (size_t)n);
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  for (int i = 0; i < 2; i++)
    if (fds[i].fd >= 0)
      close(fds[i].fd);
  while (waitpid(pid, &r->wstatus, 0) < 0)
    ck_assert_msg(errno == EINTR, "waitpid: %s", strerror(errno));
  /* Outputs are compared as strings, so make sure both exist. */
  append(&r->out, "", 0);
  append(&r->err, "", 0);
}

/* "exit 0", "signal 11"...: how a run ended, for messages. */
static const char *describe(const struct run *r, char *buf, size_t size)
{
  if (r->timed_out)
    snprintf(buf, size, "killed after %d s (hung)", RUN_DEADLINE_S);
  else if (WIFEXITED(r->wstatus))
    snprintf(buf, size, "exit %d", WEXITSTATUS(r->wstatus));
  else if (WIFSIGNALED(r->wstatus))
    snprintf(buf, size, "signal %d (%s)", WTERMSIG(r->wstatus),
             strsignal(WTERMSIG(r->wstatus)));
  else
    snprintf(buf, size, "wait status %#x", (unsigned)r->wstatus);
  return buf;
}

/* Describes the first line where two outputs differ. */
static void first_difference(const struct output *a, const struct output *b,
                             char *buf, size_t size)
{
  const char *pa = a->data, *pb = b->data;
  int line = 1;

  while (*pa != '\0' && *pa == *pb) {
    if (*pa == '\n')
      line++;
    pa++;
    pb++;
  }
  while (pa > a->data && pa[-1] != '\n') {
    pa--;
    pb--;
  }
  snprintf(buf, size, "line %d: alone \"%.*s\", under the shim \"%.*s\"",
           line, (int)strcspn(pa, "\n"), pa, (int)strcspn(pb, "\n"), pb);
}

/* ------------------------------------------------------------------------
 * The probe log
 * ------------------------------------------------------------------------ */

struct entry {
  int destroy; /* a destructor line, else a probe line */
  char label[LABEL_LEN];
  uint64_t task, rec, count;
  int avail;
  int line; /* 1-based line number in the log */
};

struct log {
  struct entry *e;
  size_t n;
};

static char *read_file(const char *path)
{
  FILE *f = fopen(path, "r");
  char *data = NULL;
  size_t len = 0, cap = 0;
  size_t n;

  ck_assert_msg(f != NULL, "cannot open the probe log %s: %s", path,
                strerror(errno));
  do {
    if (cap - len < 4096) {
      cap = cap * 2 + 4096;
      data = realloc(data, cap + 1);
      ck_assert_msg(data != NULL, "out of memory reading %s", path);
    }
    n = fread(data + len, 1, cap - len, f);
    len += n;
  } while (n > 0);
  fclose(f);
  data[len] = '\0';
  return data;
}

/* Parses every line of the log; any line that is neither a probe nor a
 * destroy line (the plugin's "error ..." lines among them) fails the test. */
static void parse_log(const char *name, const char *path, struct log *log)
{
  char *data = read_file(path);
  char *save = NULL;
  size_t cap = 0;
  int line = 0;

  log->e = NULL;
  log->n = 0;
  for (char *s = strtok_r(data, "\n", &save); s != NULL;
       s = strtok_r(NULL, "\n", &save)) {
    struct entry e;
    int used = -1;

    memset(&e, 0, sizeof e);
    e.line = ++line;
    if (strncmp(s, "probe ", 6) == 0) {
      sscanf(s,
             "probe label=%63s task=%" SCNu64 " rec=%" SCNu64
             " count=%" SCNu64 " avail=%d%n",
             e.label, &e.task, &e.rec, &e.count, &e.avail, &used);
    } else if (strncmp(s, "destroy ", 8) == 0) {
      e.destroy = 1;
      sscanf(s, "destroy rec=%" SCNu64 " label=%63s count=%" SCNu64 "%n",
             &e.rec, e.label, &e.count, &used);
    }
    ck_assert_msg(used >= 0 && (size_t)used == strlen(s),
                  "%s: log %s line %d is not a probe or destroy line: %s",
                  name, path, line, s);
    if (log->n == cap) {
      cap = cap * 2 + 64;
      log->e = realloc(log->e, cap * sizeof *log->e);
      ck_assert_msg(log->e != NULL, "out of memory parsing %s", path);
    }
    log->e[log->n++] = e;
  }
  free(data);
}

/* ------------------------------------------------------------------------
 * The checks
 * ------------------------------------------------------------------------ */

/* What the log shows for one label. */
struct seen {
  uint64_t task, rec, last_count;
  int probes;
  int first_line, last_line; /* of its probe lines */
  int destroys;
  const struct entry *destroy;
};

static int label_index(const struct program *p, const char *label)
{
  for (int i = 0; i < MAX_LABELS && p->labels[i].label != NULL; i++)
    if (strcmp(p->labels[i].label, label) == 0)
      return i;
  return -1;
}

static void check_log(const struct program *p, const char *path,
                      const struct log *log)
{
  struct seen seen[MAX_LABELS];
  int nlabels = 0;
  int finished = 0, destroyed = 0;

  memset(seen, 0, sizeof seen);
  while (nlabels < MAX_LABELS && p->labels[nlabels].label != NULL)
    nlabels++;
  ck_assert_msg(log->n > 0,
                "%s: the probe log %s is empty: the plugin was not loaded, "
                "or the program does not resolve its weak tlprobe (it must "
                "be built as a PIE)",
                p->name, path);

  for (size_t i = 0; i < log->n; i++) {
    const struct entry *e = &log->e[i];
    int k = label_index(p, e->label);
    struct seen *s;

    ck_assert_msg(k >= 0, "%s: log %s line %d: unexpected label %s", p->name,
                  path, e->line, e->label);
    s = &seen[k];
    if (e->destroy) {
      s->destroys++;
      s->destroy = e;
      continue;
    }
    ck_assert_msg(e->avail == 1,
                  "%s: log %s line %d: tl_available() is %d under the shim",
                  p->name, path, e->line, e->avail);
    ck_assert_msg(e->task != 0,
                  "%s: log %s line %d: %s runs in no task (tl_current() is "
                  "NULL)",
                  p->name, path, e->line, e->label);
    ck_assert_msg(s->destroys == 0,
                  "%s: log %s line %d: %s probes after its values were "
                  "destroyed (line %d)",
                  p->name, path, e->line, e->label, s->destroy->line);
    if (s->probes == 0) {
      /* A label's first probe must find a task and a record of its own:
       * anything else means the shim took this coroutine for another. */
      for (int j = 0; j < MAX_LABELS; j++) {
        if (j == k || seen[j].probes == 0)
          continue;
        ck_assert_msg(e->task != seen[j].task,
                      "%s: log %s line %d: %s runs in task %" PRIu64
                      ", the task of %s (line %d): the shim did not tell "
                      "them apart",
                      p->name, path, e->line, e->label, e->task,
                      p->labels[j].label, seen[j].first_line);
        ck_assert_msg(e->rec != seen[j].rec,
                      "%s: log %s line %d: %s sees record %" PRIu64
                      ", the value of %s (line %d)",
                      p->name, path, e->line, e->label, e->rec,
                      p->labels[j].label, seen[j].first_line);
      }
      s->task = e->task;
      s->rec = e->rec;
      s->first_line = e->line;
    }
    ck_assert_msg(e->task == s->task,
                  "%s: log %s line %d: %s is in task %" PRIu64
                  ", but was in task %" PRIu64 " at line %d",
                  p->name, path, e->line, e->label, e->task, s->task,
                  s->first_line);
    ck_assert_msg(e->rec == s->rec,
                  "%s: log %s line %d: %s sees record %" PRIu64
                  ", but had record %" PRIu64 " since line %d (its value "
                  "did not survive a switch)",
                  p->name, path, e->line, e->label, e->rec, s->rec,
                  s->first_line);
    ck_assert_msg(e->count == s->last_count + 1,
                  "%s: log %s line %d: %s count is %" PRIu64
                  ", expected %" PRIu64 " (the record was shared or lost)",
                  p->name, path, e->line, e->label, e->count,
                  s->last_count + 1);
    s->last_count = e->count;
    s->probes++;
    s->last_line = e->line;
  }

  /* SPEC 2.4 in one line: as many coroutines' values destroyed as
   * coroutines finished. The loop below says which one is wrong. */
  for (int k = 0; k < nlabels; k++) {
    if (p->labels[k].kind == FINISHES)
      finished++;
    if (p->labels[k].kind != ROOT)
      destroyed += seen[k].destroys;
  }
  ck_assert_msg(destroyed == finished,
                "%s: log %s: %d coroutines finished, but %d destroy lines "
                "name coroutines",
                p->name, path, finished, destroyed);

  for (int k = 0; k < nlabels; k++) {
    const struct label_spec *spec = &p->labels[k];
    const struct seen *s = &seen[k];

    ck_assert_msg(s->probes == spec->probes,
                  "%s: log %s has %d probes for %s, the program makes %d",
                  p->name, path, s->probes, spec->label, spec->probes);
    for (int j = 0; j < k; j++) {
      ck_assert_msg(s->task != seen[j].task,
                    "%s: log %s: %s and %s share task %" PRIu64
                    " (lines %d and %d)",
                    p->name, path, spec->label, p->labels[j].label, s->task,
                    s->first_line, seen[j].first_line);
      ck_assert_msg(s->rec != seen[j].rec,
                    "%s: log %s: %s and %s share record %" PRIu64, p->name,
                    path, spec->label, p->labels[j].label, s->rec);
    }

    ck_assert_msg(s->destroys <= 1,
                  "%s: log %s: the values of %s were destroyed %d times",
                  p->name, path, spec->label, s->destroys);
    if (spec->kind == UNFINISHED) {
      ck_assert_msg(s->destroys == 0,
                    "%s: log %s line %d: %s never finishes, yet its values "
                    "were destroyed",
                    p->name, path, s->destroy ? s->destroy->line : 0,
                    spec->label);
      continue;
    }
    ck_assert_msg(s->destroys == 1,
                  "%s: log %s: the values of %s were never destroyed (%s)",
                  p->name, path, spec->label,
                  spec->kind == ROOT
                      ? "a thread's root task: SPEC 2.4 destroys them at "
                        "thread exit, or at process exit for the main thread"
                      : "its function returned after its last probe");
    ck_assert_msg(s->destroy->rec == s->rec &&
                      s->destroy->count == s->last_count,
                  "%s: log %s line %d: %s destroyed record %" PRIu64
                  " count %" PRIu64 ", but its record is %" PRIu64
                  " count %" PRIu64,
                  p->name, path, s->destroy->line, spec->label,
                  s->destroy->rec, s->destroy->count, s->rec, s->last_count);
    /* In one thread, a coroutine's values go when its function returns,
     * before anything else runs: nothing may be probed in between. */
    if (spec->kind == FINISHES && !p->threaded) {
      for (size_t i = (size_t)s->last_line; i + 1 < (size_t)s->destroy->line;
           i++)
        ck_assert_msg(log->e[i].destroy,
                      "%s: log %s: %s returned after line %d, but its values "
                      "were destroyed only at line %d, after %s ran (line %d)",
                      p->name, path, spec->label, s->last_line,
                      s->destroy->line, log->e[i].label, log->e[i].line);
    }
  }

  /* The main thread's values go at process exit, after everything else. */
  if (label_index(p, "main") >= 0) {
    const struct seen *m = &seen[label_index(p, "main")];
    ck_assert_msg(m->destroy->line == (int)log->n,
                  "%s: log %s: main's values must be destroyed last, at "
                  "process exit, not at line %d of %zu",
                  p->name, path, m->destroy->line, log->n);
  }
}

static void uclink_null_stdout(const struct output *out)
{
  const char *last = "atexit: co1 steps 3, co2 steps 2\n";
  size_t n = strlen(last);

  ck_assert_msg(out->len >= n && strcmp(out->data + out->len - n, last) == 0,
                "uclink_null: stdout must end with the atexit line \"%.*s\"",
                (int)n - 1, last);
  ck_assert_msg(strstr(out->data, "NOT REACHED") == NULL,
                "uclink_null: main went on after co2 returned with no uc_link");
}

/* Stderr under the shim must not carry any report of its own: none was
 * asked for. */
static void check_no_shim_output(const char *name, const struct run *r)
{
  const char *s = r->err.data;

  while (s != NULL && *s != '\0') {
    ck_assert_msg(strncmp(s, "tasklocal:", 10) != 0,
                  "%s: the shim wrote to stderr unasked: %.*s", name,
                  (int)strcspn(s, "\n"), s);
    s = strchr(s, '\n');
    if (s != NULL)
      s++;
  }
}

START_TEST(test_pattern)
{
  const struct program *p = &programs[_i];
  char path[512], log_path[512], preload[1024], log_env[600];
  char how_plain[64], how_shim[64], diff[512];
  char *asan = asan_options();
  /* A NULL asan ends the lists early, which is what it means. */
  const char *plain_extra[] = {asan, NULL};
  const char *shim_extra[] = {preload, log_env, asan, NULL};
  char **plain_env, **shim_env;
  struct run plain, shim;
  struct log log;
  const char *tmp = getenv("TMPDIR");
  int fd;

  snprintf(path, sizeof path, "%s/%s", PROGRAM_DIR, p->name);
  ck_assert_msg(access(path, X_OK) == 0, "%s: program %s missing: %s",
                p->name, path, strerror(errno));
  ck_assert_msg(access(SHIM_PATH, R_OK) == 0 &&
                    access(PLUGIN_PATH, R_OK) == 0,
                "%s: %s or %s missing", p->name, SHIM_PATH, PLUGIN_PATH);

  snprintf(log_path, sizeof log_path, "%s/tlprobe-%s-XXXXXX",
           tmp != NULL && *tmp != '\0' ? tmp : "/tmp", p->name);
  fd = mkstemp(log_path);
  ck_assert_msg(fd >= 0, "mkstemp %s: %s", log_path, strerror(errno));
  close(fd);
  snprintf(preload, sizeof preload, "LD_PRELOAD=%s %s", SHIM_PATH,
           PLUGIN_PATH);
  snprintf(log_env, sizeof log_env, "TLPROBE_LOG=%s", log_path);
  plain_env = make_env(plain_extra);
  shim_env = make_env(shim_extra);

  run_program(path, plain_env, &plain);
  describe(&plain, how_plain, sizeof how_plain);
  ck_assert_msg(!plain.timed_out && WIFEXITED(plain.wstatus) &&
                    WEXITSTATUS(plain.wstatus) == p->status,
                "%s: alone, the program ended with %s instead of exit %d; "
                "stderr: %.500s",
                p->name, how_plain, p->status, plain.err.data);
  ck_assert_msg(plain.out.len > 0, "%s: alone, the program printed nothing",
                p->name);
  if (p->check_stdout != NULL)
    p->check_stdout(&plain.out);

  run_program(path, shim_env, &shim);
  describe(&shim, how_shim, sizeof how_shim);
  ck_assert_msg(!shim.timed_out && shim.wstatus == plain.wstatus,
                "%s: under the shim the program ended with %s, alone with "
                "%s; probe log %s; stderr: %.500s",
                p->name, how_shim, how_plain, log_path, shim.err.data);
  first_difference(&plain.out, &shim.out, diff, sizeof diff);
  ck_assert_msg(plain.out.len == shim.out.len &&
                    memcmp(plain.out.data, shim.out.data, plain.out.len) == 0,
                "%s: stdout differs under the shim, %s; stderr: %.500s",
                p->name, diff, shim.err.data);
  check_no_shim_output(p->name, &shim);

  parse_log(p->name, log_path, &log);
  check_log(p, log_path, &log);

  /* Kept on failure, for the messages above point into it. */
  unlink(log_path);
  free(log.e);
  free(plain.out.data);
  free(plain.err.data);
  free(shim.out.data);
  free(shim.err.data);
  free(plain_env);
  free(shim_env);
  free(asan);
}
END_TEST

static Suite *patterns_suite(void)
{
  Suite *s = suite_create("patterns");

  for (int i = 0; i < NPROGRAMS; i++) {
    TCase *tc = tcase_create(programs[i].name);
    tcase_set_timeout(tc, TCASE_TIMEOUT_S);
    tcase_add_loop_test(tc, test_pattern, i, i + 1);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(patterns_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
