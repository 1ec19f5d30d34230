/* Integration suite for the switch patterns of doc/tracking.md.
 *
 * Every program in tests/programs/ is an unmodified ucontext program that
 * calls a weak tlprobe(label) at interesting points, each coroutine under
 * its own label. Each one runs twice: alone, and with LD_PRELOAD of the
 * shim followed by the probe plugin (tests/plugin/probe.c), which logs for
 * every probe the task the shim reports and the task-local record it found.
 * The suite then checks that the shim changed nothing the program can see
 * (stdout, exit status) and that every coroutine kept one task and one
 * value through all its switches, and that the values of finished tasks
 * were destroyed (doc/lifetime.md).
 *
 * TL_BUILD_DIR is the absolute path of build/, holding libtasklocal.so,
 * tests/libtlprobe.so and tests/programs/<name>.
 */
#include "testutil.h"

#include <inttypes.h>

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

/* ------------------------------------------------------------------------
 * What each program is expected to do
 * ------------------------------------------------------------------------ */

enum kind {
  ROOT,      /* a thread's own stack: destroyed at thread or process exit */
  FINISHES,  /* a coroutine whose function returns: destroyed then */
  RELEASED,  /* one that never returns, whose stack the program frees:
                destroyed then */
  UNFINISHED /* a coroutine that never returns and keeps its stack: never
                destroyed */
};

struct label_spec {
  const char *label;
  int probes; /* how many times the program probes under this label */
  enum kind kind;
};

struct program {
  const char *name;
  int status;   /* exit status of a correct run */
  int threaded; /* several threads probe: lines are ordered only per thread */
  struct label_spec labels[MAX_LABELS];
  /* Optional checks of the plain run's stdout. */
  void (*check_stdout)(const struct tl_test_buf *out);
};

static void uclink_null_stdout(const struct tl_test_buf *out);

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
     {{"main", 9, ROOT}, {"co1", 7, FINISHES}, {"co2", 2, RELEASED}},
     NULL},
    {"shared_stack", 0, 0,
     {{"main", 32, ROOT}, {"co1", 8, FINISHES}, {"co2", 10, FINISHES},
      {"co3", 12, FINISHES}},
     NULL},
    {"sigjmp", 0, 0,
     {{"main", 29, ROOT}, {"co1", 6, RELEASED}, {"co2", 8, RELEASED},
      {"co3", 10, RELEASED}},
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
    {"remade", 0, 0,
     {{"main", 4, ROOT}, {"co1", 3, FINISHES}, {"co2", 3, FINISHES},
      {"co3", 3, FINISHES}},
     NULL},
    {"annotated", 0, 0,
     {{"main", 9, ROOT}, {"co1", 5, FINISHES}, {"co2", 5, FINISHES}},
     NULL},
};

#define NPROGRAMS ((int)(sizeof programs / sizeof programs[0]))

/* ------------------------------------------------------------------------
 * Running a program
 * ------------------------------------------------------------------------ */

/* Neither run inherits LD_PRELOAD or TLPROBE_LOG: the plain run is
 * without any preload, the other gets exactly the shim and the plugin. */
static const char *const not_inherited[] = {"LD_PRELOAD=", "TLPROBE_LOG=", NULL};

/* In a build with AddressSanitizer the programs carry its runtime, which
 * refuses to start when a preloaded library comes before it; that check
 * is turned off, for both runs alike, keeping any options already given.
 * Returns NULL when nothing is to be set. */
static char *asan_options(void)
{
#if TL_TEST_UNDER_ASAN
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

/* Describes the first line where two outputs differ. */
static void first_difference(const struct tl_test_buf *a, const struct tl_test_buf *b,
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
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct tl_test_buf b = {0};

  ck_assert_msg(fd >= 0, "cannot open the probe log %s: %s", path,
                strerror(errno));
  tl_test_buf_read_fd(&b, fd);
  close(fd);
  return b.data;
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

  /* The lifetime rule in one line: as many coroutines' values destroyed as
   * coroutines finished or released. The loop below says which one is
   * wrong. */
  for (int k = 0; k < nlabels; k++) {
    if (p->labels[k].kind == FINISHES || p->labels[k].kind == RELEASED)
      finished++;
    if (p->labels[k].kind != ROOT)
      destroyed += seen[k].destroys;
  }
  ck_assert_msg(destroyed == finished,
                "%s: log %s: %d coroutines finished or were released, but %d destroy lines "
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
                      ? "a thread's root task: they are destroyed at "
                        "thread exit, or at process exit for the main thread"
                      : spec->kind == RELEASED
                      ? "the program freed its stack after its last probe"
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

static void uclink_null_stdout(const struct tl_test_buf *out)
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
static void check_no_shim_output(const char *name, const struct tl_test_proc *r)
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
  /* A NULL asan is left out, which is what it means. */
  const char *plain_extra[] = {asan};
  const char *shim_extra[] = {preload, log_env, asan};
  char **plain_env, **shim_env;
  char *const argv[] = {path, NULL};
  struct tl_test_proc plain, shim;
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
  plain_env = tl_test_env(not_inherited, plain_extra, 1);
  shim_env = tl_test_env(not_inherited, shim_extra, 3);

  tl_test_exec(&plain, argv, plain_env, RUN_DEADLINE_S);
  tl_test_describe(&plain, how_plain, sizeof how_plain);
  ck_assert_msg(!plain.timed_out && WIFEXITED(plain.wstatus) &&
                    WEXITSTATUS(plain.wstatus) == p->status,
                "%s: alone, the program ended with %s instead of exit %d; "
                "stderr: %.500s",
                p->name, how_plain, p->status, plain.err.data);
  ck_assert_msg(plain.out.len > 0, "%s: alone, the program printed nothing",
                p->name);
  if (p->check_stdout != NULL)
    p->check_stdout(&plain.out);

  tl_test_exec(&shim, argv, shim_env, RUN_DEADLINE_S);
  tl_test_describe(&shim, how_shim, sizeof how_shim);
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
  tl_test_proc_free(&plain);
  tl_test_proc_free(&shim);
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
  return tl_test_run(patterns_suite());
}
