/* Small helpers shared by the Check suites: running the suite, making a
 * coroutine, and running a program as a child process with an environment
 * of the suite's choosing, its output captured and a deadline on it.
 *
 * Every suite includes this header first, so that _GNU_SOURCE comes before
 * any system header. The functions are static inline: each suite is one
 * program built from one file, and uses only some of them. */
#ifndef TL_TESTUTIL_H
#define TL_TESTUTIL_H

#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef TL_BUILD_DIR
#error "TL_BUILD_DIR must name the build directory"
#endif

/* Whether this build has AddressSanitizer (make check-asan): the suites
 * then give their child processes options it needs, and leave out what
 * cannot run under it. */
#if defined(__SANITIZE_ADDRESS__)
#define TL_TEST_UNDER_ASAN 1
#else
#define TL_TEST_UNDER_ASAN 0
#endif

/* Whether the suite runs under qemu-user: the aarch64 build's suites,
 * cross-built and run by tests/cross/emulated.sh (make check-cross, which
 * defines TL_TEST_EMULATED). There valgrind (an x86_64 program) cannot run
 * the programs, every resident set measured holds the emulator's own
 * memory too, and programs run several times slower. */
#ifndef TL_TEST_EMULATED
#define TL_TEST_EMULATED 0
#endif

/* ASAN_OPTIONS for a program of the sanitizer build run under LD_PRELOAD:
 * the preloaded shim comes before ASan's runtime, which ASan refuses unless
 * told it is fine, and the leaks that matter are the shim's reports, not
 * LeakSanitizer's (which would also change the exit status). */
#define TL_TEST_ASAN_ENV "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0"

extern char **environ;

/* The resident set size of this process, in KiB. */
static inline long tl_test_rss_kib(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return rss * 4;
}

/* Seconds on the monotonic clock, for deadlines and timed loops. */
static inline double tl_test_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------------------
 * Timeouts, and how close each suite came to them
 * ------------------------------------------------------------------------ */

/* Check multiplies every test case's timeout by CK_TIMEOUT_MULTIPLIER. The
 * Makefile sets it where the suites run slowly (under qemu-user, with
 * sanitizers: see doc/testing.md), and the deadlines the suites put on
 * their child processes scale by the same factor, since those programs
 * slow down alike. */
static inline double tl_test_timeout_scale(void)
{
  const char *v = getenv("CK_TIMEOUT_MULTIPLIER");
  char *end;
  double m = v != NULL ? strtod(v, &end) : 1.0;
  return v != NULL && end != v && *end == '\0' && m > 0 ? m : 1.0;
}

/* Each test case's name and timeout (before scaling), recorded as the
 * suite makes them, for the line tl_test_run prints at the end: Check
 * itself tells neither. */
struct tl_test_case_limit {
  const char *name;
  double timeout_s;
};
static struct tl_test_case_limit tl_test_limits[64];
static TCase *tl_test_limit_cases[64];
static int tl_test_nlimits;

static inline TCase *tl_test_tcase_create(const char *name)
{
  TCase *tc = tcase_create(name);
  const char *v = getenv("CK_DEFAULT_TIMEOUT");
  double timeout_s = v != NULL ? atof(v) : 4.0;
  if (tl_test_nlimits < 64) {
    tl_test_limits[tl_test_nlimits] = (struct tl_test_case_limit){name, timeout_s > 0 ? timeout_s : 4.0};
    tl_test_limit_cases[tl_test_nlimits++] = tc;
  }
  return tc;
}

static inline void tl_test_tcase_set_timeout(TCase *tc, double timeout_s)
{
  tcase_set_timeout(tc, timeout_s);
  for (int i = 0; i < tl_test_nlimits; i++)
    if (tl_test_limit_cases[i] == tc)
      tl_test_limits[i].timeout_s = timeout_s;
}

/* The suites call Check's two functions by their names; these macros
 * route the calls through the recorders above. */
#define tcase_create(name) tl_test_tcase_create(name)
#define tcase_set_timeout(tc, timeout_s) tl_test_tcase_set_timeout((tc), (timeout_s))

/* The text of the first <tag>...</tag> in [p, end), into out. */
static inline int tl_test_xml_field(const char *p, const char *end, const char *tag, char *out, size_t size)
{
  char open[32], close[32];
  snprintf(open, sizeof open, "<%s>", tag);
  snprintf(close, sizeof close, "</%s>", tag);
  const char *a = strstr(p, open);
  if (a == NULL || a >= end)
    return 0;
  a += strlen(open);
  const char *b = strstr(a, close);
  if (b == NULL || b > end || (size_t)(b - a) >= size)
    return 0;
  memcpy(out, a, (size_t)(b - a));
  out[b - a] = '\0';
  return 1;
}

/* Prints, from the XML log Check wrote, how long the suite took and which
 * test came closest to its timeout, with its share of that timeout; and a
 * line for each test past half of its own, which a busier machine could
 * push over. */
static inline void tl_test_report_times(const char *path, double wall_s)
{
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return;
  static char xml[1 << 20];
  size_t len = fread(xml, 1, sizeof xml - 1, f);
  fclose(f);
  xml[len] = '\0';
  double scale = tl_test_timeout_scale(), worst = -1, worst_s = 0, worst_limit = 0;
  char worst_name[256] = "", id[128], iter[16], dur[32], tcase[96];
  int ntests = 0;
  for (const char *p = strstr(xml, "<test "); p != NULL; p = strstr(p + 1, "<test ")) {
    const char *end = strstr(p, "</test>");
    if (end == NULL)
      break;
    ntests++;
    if (!tl_test_xml_field(p, end, "id", id, sizeof id) || !tl_test_xml_field(p, end, "duration", dur, sizeof dur) ||
        !tl_test_xml_field(p, end, "description", tcase, sizeof tcase))
      continue;
    if (!tl_test_xml_field(p, end, "iteration", iter, sizeof iter))
      iter[0] = '\0';
    double limit = 0;
    for (int i = 0; i < tl_test_nlimits; i++)
      if (strcmp(tl_test_limits[i].name, tcase) == 0)
        limit = tl_test_limits[i].timeout_s * scale;
    double took = atof(dur);
    if (limit <= 0)
      continue;
    char name[256];
    snprintf(name, sizeof name, "%s/%s%s%s%s", tcase, id, iter[0] ? "(" : "", iter, iter[0] ? ")" : "");
    /* Check writes -1 for a test that did not end by itself: one it
     * killed at its timeout (the message says so), and one that failed,
     * whose time is not known. */
    if (took < 0) {
      char message[256];
      if (!tl_test_xml_field(p, end, "message", message, sizeof message) || strstr(message, "Test timeout expired") == NULL)
        continue;
      took = limit;
      printf("%s: %s ran past its %g s timeout\n", program_invocation_short_name, name, limit);
    } else if (took / limit > 0.5) {
      printf("%s: %s took %.1f s, %.0f%% of its %g s timeout: near its limit\n", program_invocation_short_name,
             name, took, 100 * took / limit, limit);
    }
    if (took / limit > worst) {
      worst = took / limit;
      worst_s = took;
      worst_limit = limit;
      snprintf(worst_name, sizeof worst_name, "%s", name);
    }
  }
  if (worst >= 0)
    printf("%s: %d tests in %.1f s; slowest for its timeout: %s, %.1f s of %g s (%.0f%%)\n",
           program_invocation_short_name, ntests, wall_s, worst_name, worst_s, worst_limit, 100 * worst);
}

/* Runs every suite given, with Check's fork mode so that each test has its
 * own process, and returns the exit status for main(). Check's XML log
 * (to CK_XML_LOG_FILE_NAME, or a file of our own) gives each test's time
 * for tl_test_report_times. */
static inline int tl_test_run(Suite *s)
{
  SRunner *sr = srunner_create(s);
  char path[] = "/tmp/tltest-log-XXXXXX";
  int fd = getenv("CK_XML_LOG_FILE_NAME") == NULL ? mkstemp(path) : -1;
  if (fd >= 0) {
    close(fd);
    srunner_set_xml(sr, path);
  }
  double start = tl_test_now_s();
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  const char *log = srunner_xml_fname(sr);
  if (log != NULL)
    tl_test_report_times(log, tl_test_now_s() - start);
  srunner_free(sr);
  if (fd >= 0)
    unlink(path);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Makes ctx a coroutine that runs fn on the given stack and, when fn
 * returns, goes on at link (with link NULL, glibc calls exit(0)). For Check
 * tests only: a process that Check does not run has no runner for the
 * assertion to report to, and even a passing one makes it exit. */
static inline void tl_test_context(ucontext_t *ctx, void *stack, size_t size, void (*fn)(void), ucontext_t *link)
{
  ck_assert_int_eq(getcontext(ctx), 0);
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = size;
  ctx->uc_link = link;
  makecontext(ctx, fn, 0);
}

/* ------------------------------------------------------------------------
 * Child processes
 * ------------------------------------------------------------------------ */

/* A growing string: data is NULL until something is added, and always
 * NUL-terminated after. */
struct tl_test_buf {
  char *data;
  size_t len;
};

/* A program run as a child process. After tl_test_reap, out and err hold
 * all it wrote (both strings, maybe empty) and wstatus how it ended. */
struct tl_test_proc {
  struct tl_test_buf out, err;
  int wstatus;                             /* as waitpid gives it */
  int timed_out;                           /* it ran past its deadline and was killed */
  double deadline_s;                       /* that deadline, for messages */
  pid_t pid;
  int in;                                  /* our end of its stdin, -1 once closed */
  int fd[2];                               /* our ends of its stdout and stderr, -1 at end of file */
};

static inline void tl_test_buf_add(struct tl_test_buf *b, const char *p, size_t n)
{
  char *d = realloc(b->data, b->len + n + 1);
  ck_assert_msg(d != NULL, "out of memory reading a program's output");
  memcpy(d + b->len, p, n);
  b->len += n;
  d[b->len] = '\0';
  b->data = d;
}

/* Adds everything left to read from fd to b, which then holds a string
 * even if there was nothing. */
static inline void tl_test_buf_read_fd(struct tl_test_buf *b, int fd)
{
  char chunk[4096];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      tl_test_buf_add(b, chunk, (size_t)n);
  tl_test_buf_add(b, "", 0);
}

/* Whether the "NAME=value" strings a and b set the same variable. */
static inline int tl_test_same_name(const char *a, const char *b)
{
  size_t n = strcspn(a, "=");
  return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* An environment for a child: this process's, without the variables whose
 * "NAME=value" begins with one of the NULL-terminated prefixes in drop
 * ("LD_PRELOAD=", "TASKLOCAL_"; drop may be NULL) and without those that
 * extra sets, followed by the n_extra strings of extra. NULL entries of
 * extra are skipped, so that an optional variable can stand anywhere in a
 * fixed list. Only the array is allocated: free it, not the strings. */
static inline char **tl_test_env(const char *const *drop, const char *const *extra, size_t n_extra)
{
  size_t n = 0, k = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + n_extra + 1, sizeof *env);
  ck_assert_msg(env != NULL, "out of memory building an environment");
  for (size_t i = 0; i < n; i++) {
    int dropped = 0;
    for (size_t j = 0; drop != NULL && drop[j] != NULL && !dropped; j++)
      dropped = strncmp(environ[i], drop[j], strlen(drop[j])) == 0;
    for (size_t j = 0; j < n_extra && !dropped; j++)
      dropped = extra[j] != NULL && tl_test_same_name(extra[j], environ[i]);
    if (!dropped)
      env[k++] = environ[i];
  }
  for (size_t j = 0; j < n_extra; j++)
    if (extra[j] != NULL)
      env[k++] = (char *)extra[j];
  env[k] = NULL;
  return env;
}

/* Starts argv[0] (a path, not searched for) with the environment env, its
 * stdin, stdout and stderr on pipes of ours. The pipes are close-on-exec so
 * that no other child inherits them and holds them open. A program that
 * cannot be run says so on its stderr and exits with 127, as a shell's
 * would. */
static inline void tl_test_spawn(struct tl_test_proc *p, char *const argv[], char *const env[])
{
  int in[2], out[2], err[2];
  memset(p, 0, sizeof *p);
  ck_assert_msg(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0,
                "pipe2: %s", strerror(errno));
  pid_t pid = fork();
  ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execve(argv[0], argv, env);
    dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  p->pid = pid;
  p->in = in[1];
  p->fd[0] = out[0];
  p->fd[1] = err[0];
}

/* Reads what the child writes until its stdout holds want or reaches end
 * of file (with want NULL, until both stdout and stderr do), or deadline_s
 * seconds have passed. Returns 1 if it got there, 0 if not. Both pipes are
 * read all along, so that a child filling one cannot block while we wait
 * on the other. */
static inline int tl_test_read_until(struct tl_test_proc *p, const char *want, double deadline_s)
{
  double deadline = tl_test_now_s() + deadline_s * tl_test_timeout_scale();
  for (;;) {
    if (want != NULL && p->out.data != NULL && strstr(p->out.data, want) != NULL)
      return 1;
    if (want != NULL && p->fd[0] < 0)
      return 0;
    if (p->fd[0] < 0 && p->fd[1] < 0)
      return 1;
    double left = deadline - tl_test_now_s();
    if (left <= 0)
      return 0;
    struct pollfd fds[2] = {{p->fd[0], POLLIN, 0}, {p->fd[1], POLLIN, 0}};
    int ready = poll(fds, 2, (int)(left * 1000) + 1);
    if (ready < 0 && errno == EINTR)
      continue;
    ck_assert_msg(ready >= 0, "poll: %s", strerror(errno));
    for (int i = 0; i < 2; i++) {
      char chunk[4096];
      if (fds[i].fd < 0 || fds[i].revents == 0)
        continue;
      ssize_t n = read(fds[i].fd, chunk, sizeof chunk);
      if (n > 0) {
        tl_test_buf_add(i == 0 ? &p->out : &p->err, chunk, (size_t)n);
      } else if (n == 0 || errno != EINTR) {
        close(p->fd[i]);
        p->fd[i] = -1;
      }
    }
  }
}

/* Closes the child's stdin, reads its output to the end and reaps it. A
 * child still writing after deadline_s seconds has hung (a lost switch
 * often deadlocks or loops): it is killed, so that no orphan outlives the
 * test. */
static inline void tl_test_reap(struct tl_test_proc *p, double deadline_s)
{
  if (p->in >= 0)
    close(p->in);
  p->in = -1;
  p->deadline_s = deadline_s * tl_test_timeout_scale();
  if (!tl_test_read_until(p, NULL, deadline_s)) {
    p->timed_out = 1;
    kill(p->pid, SIGKILL);
  }
  for (int i = 0; i < 2; i++) {
    if (p->fd[i] >= 0)
      close(p->fd[i]);
    p->fd[i] = -1;
  }
  while (waitpid(p->pid, &p->wstatus, 0) < 0)
    ck_assert_msg(errno == EINTR, "waitpid: %s", strerror(errno));
  /* Outputs are compared as strings, so make sure both exist. */
  tl_test_buf_add(&p->out, "", 0);
  tl_test_buf_add(&p->err, "", 0);
}

/* Runs argv to its end, with stdin at end of file from the start. */
static inline void tl_test_exec(struct tl_test_proc *p, char *const argv[], char *const env[], double deadline_s)
{
  tl_test_spawn(p, argv, env);
  tl_test_reap(p, deadline_s);
}

static inline void tl_test_proc_free(struct tl_test_proc *p)
{
  free(p->out.data);
  free(p->err.data);
  p->out.data = p->err.data = NULL;
  p->out.len = p->err.len = 0;
}

/* "exit 0", "signal 11 (Segmentation fault)"...: how a child ended, for
 * messages. */
static inline const char *tl_test_describe(const struct tl_test_proc *p, char *text, size_t size)
{
  if (p->timed_out)
    snprintf(text, size, "killed after %g s (hung)", p->deadline_s);
  else if (WIFEXITED(p->wstatus))
    snprintf(text, size, "exit %d", WEXITSTATUS(p->wstatus));
  else if (WIFSIGNALED(p->wstatus))
    snprintf(text, size, "signal %d (%s)", WTERMSIG(p->wstatus), strsignal(WTERMSIG(p->wstatus)));
  else
    snprintf(text, size, "wait status %#x", (unsigned)p->wstatus);
  return text;
}

#endif
