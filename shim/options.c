/* Options (SPEC 4.1), read once from the environment by tl__init(), before
 * anything else the library does.
 *
 * Each option has one parser; a value it cannot read gives exactly one
 * warning line and the option keeps its default, so a typo never stops the
 * program. Booleans take 1/0, yes/no, on/off and true/false in any case, as
 * mimalloc's options do; an empty value counts as unset.
 *
 * The log and trace paths come from secure_getenv: in a set-user-ID or
 * otherwise secure-execution process an unprivileged user must not be able
 * to make the library create or append to a file of their choice, so the
 * variables are then ignored, with a warning: reports stay on stderr and
 * no trace is written. The other
 * options only choose what is printed, so plain getenv is enough for them.
 */
#include "internal.h"
#include "options.h"
#include "message.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

/* TASKLOCAL_TRACE_SIZE: events kept per thread (32 bytes each). The default,
 * 2^20, reserves 32 MiB of address space a thread, of which only the pages
 * written become memory; the limits keep a typo from asking for nothing or
 * for more than the address space can give every thread. */
#define TRACE_SIZE_DEFAULT (1u << 20)
#define TRACE_SIZE_MIN 16u
#define TRACE_SIZE_MAX (1u << 26)

struct tl__options tl__opt = {.log_fd = 2, .trace_size = TRACE_SIZE_DEFAULT};

/* What the log descriptor was when opened, to notice later that the
 * program closed it and reused the number for a file of its own. */
static struct {
  dev_t dev;
  ino_t ino;
  int checked;
  char path[256];                          /* for TASKLOCAL_VERBOSE */
  char trace[4096];                        /* TASKLOCAL_TRACE, kept: the environment may change */
  char suppressions[4096];                 /* TASKLOCAL_SUPPRESSIONS, kept */
} L;

/* 1 or 0 for a boolean word, -1 otherwise. */
static int parse_bool(const char *v)
{
  static const char *const on[] = {"1", "yes", "on", "true"};
  static const char *const off[] = {"0", "no", "off", "false"};
  for (size_t i = 0; i < sizeof on / sizeof on[0]; i++) {
    if (strcasecmp(v, on[i]) == 0)
      return 1;
    if (strcasecmp(v, off[i]) == 0)
      return 0;
  }
  return -1;
}

static const char *value_of(const char *name)
{
  const char *v = getenv(name);
  return v != NULL && *v != '\0' ? v : NULL;
}

static void bad_value(const char *name, const char *value, const char *expected, const char *dflt)
{
  tl__message("%s=%s is not valid (expected %s); using the default, %s", name, value, expected, dflt);
}

static int read_bool(const char *name, int dflt)
{
  const char *v = value_of(name);
  if (v == NULL)
    return dflt;
  int b = parse_bool(v);
  if (b < 0) {
    bad_value(name, v, "1 or 0, yes or no, on or off, true or false", dflt ? "on" : "off");
    return dflt;
  }
  return b;
}

static const struct {
  const char *name;
  int sig;
} signals[] = {
  {"HUP", SIGHUP},     {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ABRT", SIGABRT},
  {"USR1", SIGUSR1},   {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},
  {"TERM", SIGTERM},   {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"TSTP", SIGTSTP},
  {"TTIN", SIGTTIN},   {"TTOU", SIGTTOU}, {"URG", SIGURG},       {"XCPU", SIGXCPU},
  {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
  {"IO", SIGIO},       {"POLL", SIGPOLL}, {"PWR", SIGPWR},       {"SYS", SIGSYS},
  {"STKFLT", SIGSTKFLT},
};

/* Signals whose handler would change how the program fails (a fault
 * signal returning from our handler faults again at once) or that cannot
 * be caught at all. */
static int reserved_signal(int sig)
{
  return sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS || sig == SIGILL ||
         sig == SIGFPE || sig == SIGTRAP;
}

static int parse_number(const char *s, long *out)
{
  if (*s < '0' || *s > '9')
    return -1;
  char *end;
  errno = 0;
  long n = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return -1;
  *out = n;
  return 0;
}

/* A signal name (with or without SIG, any case; RTMIN+n and RTMAX-n too) or
 * number; 0 for "off"; -1 when it names no signal we may use. */
static int parse_signal(const char *v)
{
  long n;
  if (parse_number(v, &n) == 0) {
    if (n == 0)
      return 0;
    if (n < 1 || n >= NSIG || reserved_signal((int)n) || (n > SIGSYS && n < SIGRTMIN))
      return -1;                           /* glibc keeps the first real-time signals */
    return (int)n;
  }
  if (parse_bool(v) == 0)
    return 0;
  const char *s = strncasecmp(v, "SIG", 3) == 0 ? v + 3 : v;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcasecmp(s, signals[i].name) == 0)
      return signals[i].sig;
  int base = -1, dir = 0;
  if (strncasecmp(s, "RTMIN", 5) == 0) {
    base = SIGRTMIN;
    dir = 1;
  } else if (strncasecmp(s, "RTMAX", 5) == 0) {
    base = SIGRTMAX;
    dir = -1;
  }
  if (base < 0)
    return -1;
  s += 5;
  if (*s == '\0')
    return base;
  if (*s != (dir > 0 ? '+' : '-') || parse_number(s + 1, &n) != 0)
    return -1;
  long sig = base + dir * n;
  return sig >= SIGRTMIN && sig <= SIGRTMAX ? (int)sig : -1;
}

static void read_log(void)
{
  const char *path = secure_getenv("TASKLOCAL_LOG");
  if (path == NULL) {
    if (getauxval(AT_SECURE) && value_of("TASKLOCAL_LOG") != NULL)
      tl__message("TASKLOCAL_LOG is ignored in a secure-execution (set-user-ID) process; "
                  "reports go to stderr");
    return;
  }
  if (*path == '\0')
    return;
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    tl__message("cannot open TASKLOCAL_LOG=%s: %s; reports go to stderr", path, strerrordesc_np(errno));
    return;
  }
  struct stat st;
  if (fstat(fd, &st) == 0) {
    L.dev = st.st_dev;
    L.ino = st.st_ino;
    L.checked = 1;
  }
  size_t n = strlen(path);
  if (n >= sizeof L.path)
    n = sizeof L.path - 1;
  memcpy(L.path, path, n);
  L.path[n] = '\0';
  tl__opt.log_fd = fd;
  tl__message_fd(fd);
}

/* The trace file's path, like the log's, from secure_getenv: a set-user-ID
 * program never writes one. The file is opened only when it is written. */
static void read_trace(void)
{
  const char *path = secure_getenv("TASKLOCAL_TRACE");
  if (path == NULL) {
    if (getauxval(AT_SECURE) && value_of("TASKLOCAL_TRACE") != NULL)
      tl__message("TASKLOCAL_TRACE is ignored in a secure-execution (set-user-ID) process; no trace is written");
    return;
  }
  if (*path == '\0')
    return;
  size_t n = strlen(path);
  if (n >= sizeof L.trace) {
    tl__message("TASKLOCAL_TRACE is longer than %zu bytes; no trace is written", sizeof L.trace - 1);
    return;
  }
  memcpy(L.trace, path, n + 1);
  tl__opt.trace = L.trace;

  const char *v = value_of("TASKLOCAL_TRACE_SIZE");
  if (v == NULL)
    return;
  long size = -1, unit = 1;
  char *end = NULL;
  if (*v >= '0' && *v <= '9') {
    errno = 0;
    size = strtol(v, &end, 10);
    if (errno != 0)
      size = -1;
  }
  if (size >= 0 && (*end == 'k' || *end == 'K' || *end == 'm' || *end == 'M')) {
    unit = *end == 'k' || *end == 'K' ? 1024 : 1024 * 1024;
    end++;
  }
  if (size < 0 || *end != '\0' || size > TRACE_SIZE_MAX / unit || size * unit < TRACE_SIZE_MIN) {
    bad_value("TASKLOCAL_TRACE_SIZE", v, "a number of events from 16 to 64M, with an optional K or M", "1M");
    return;
  }
  size *= unit;
  uint32_t pow2 = TRACE_SIZE_MIN;
  while (pow2 < (uint32_t)size)
    pow2 <<= 1;
  tl__opt.trace_size = pow2;
}

/* TASKLOCAL_LEAK_KINDS=all|leaked: which kinds of unfinished tasks the
 * leak report counts and describes (doc/reports.md). */
static void read_leak_kinds(void)
{
  const char *v = value_of("TASKLOCAL_LEAK_KINDS");
  if (v == NULL)
    return;
  if (strcasecmp(v, "all") == 0)
    tl__opt.leak_kinds = TL__KINDS_ALL;
  else if (strcasecmp(v, "leaked") == 0)
    tl__opt.leak_kinds = TL__KINDS_LEAKED;
  else
    bad_value("TASKLOCAL_LEAK_KINDS", v, "all or leaked", "all");
}

/* TASKLOCAL_SUPPRESSIONS=FILE, a path like the log's: from secure_getenv,
 * since a set-user-ID program must not read a file of the caller's
 * choosing on its behalf. The file is read by suppress.c. */
static void read_suppressions(void)
{
  const char *path = secure_getenv("TASKLOCAL_SUPPRESSIONS");
  if (path == NULL) {
    if (getauxval(AT_SECURE) && value_of("TASKLOCAL_SUPPRESSIONS") != NULL)
      tl__message("TASKLOCAL_SUPPRESSIONS is ignored in a secure-execution (set-user-ID) process");
    return;
  }
  if (*path == '\0')
    return;
  size_t n = strlen(path);
  if (n >= sizeof L.suppressions) {
    tl__message("TASKLOCAL_SUPPRESSIONS is longer than %zu bytes; no suppressions", sizeof L.suppressions - 1);
    return;
  }
  memcpy(L.suppressions, path, n + 1);
  tl__opt.suppressions = L.suppressions;
}

static const char *signal_name(int sig, char *buf, size_t size)
{
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (signals[i].sig == sig) {
      size_t n = strlen(signals[i].name);
      if (n + 4 > size)
        break;
      memcpy(buf, "SIG", 3);
      memcpy(buf + 3, signals[i].name, n + 1);
      return buf;
    }
  return sigabbrev_np(sig) ? sigabbrev_np(sig) : "?";
}

static void print_options(void)
{
  static const char *const leaks[] = {"0", "1", "error"};
  char sig[16];
  tl__message("option TASKLOCAL_LEAKS=%s", leaks[tl__opt.leaks]);
  tl__message("option TASKLOCAL_BACKTRACE=%d", tl__opt.backtrace);
  if (tl__opt.dump_signal)
    tl__message("option TASKLOCAL_DUMP_SIGNAL=%s (%d)", signal_name(tl__opt.dump_signal, sig, sizeof sig),
                tl__opt.dump_signal);
  else
    tl__message("option TASKLOCAL_DUMP_SIGNAL=0");
  tl__message("option TASKLOCAL_STATS=%d", tl__opt.stats);
  tl__message("option TASKLOCAL_LOG=%s", tl__opt.log_fd != 2 ? L.path : "(stderr)");
  tl__message("option TASKLOCAL_FIBERS=%d", tl__opt.fibers);
  tl__message("option TASKLOCAL_TRACE=%s", tl__opt.trace != NULL ? tl__opt.trace : "(off)");
  tl__message("option TASKLOCAL_TRACE_SIZE=%u", (unsigned)tl__opt.trace_size);
  tl__message("option TASKLOCAL_LEAK_KINDS=%s", tl__opt.leak_kinds == TL__KINDS_LEAKED ? "leaked" : "all");
  tl__message("option TASKLOCAL_SUPPRESSIONS=%s", tl__opt.suppressions != NULL ? tl__opt.suppressions : "(none)");
}

void tl__options_read(void)
{
  /* The log first, so that warnings about the other options go where the
   * reports will go. */
  read_log();

  const char *v = value_of("TASKLOCAL_LEAKS");
  if (v != NULL) {
    int b = parse_bool(v);
    if (b >= 0)
      tl__opt.leaks = b;
    else if (strcasecmp(v, "error") == 0)
      tl__opt.leaks = 2;
    else
      bad_value("TASKLOCAL_LEAKS", v, "0, 1 or error", "0");
  }

  tl__opt.backtrace = read_bool("TASKLOCAL_BACKTRACE", tl__opt.leaks != 0);

  v = value_of("TASKLOCAL_DUMP_SIGNAL");
  if (v != NULL) {
    int sig = parse_signal(v);
    if (sig >= 0)
      tl__opt.dump_signal = sig;
    else
      bad_value("TASKLOCAL_DUMP_SIGNAL", v, "a signal name such as USR2 or SIGUSR2, or its number; "
                "not KILL, STOP or a fault signal", "none");
  }

  read_trace();
  read_leak_kinds();
  read_suppressions();
  tl__opt.stats = read_bool("TASKLOCAL_STATS", 0);
  tl__opt.fibers = read_bool("TASKLOCAL_FIBERS", 1);
  tl__opt.verbose = read_bool("TASKLOCAL_VERBOSE", 0);
  if (tl__opt.verbose)
    print_options();
}

int tl__options_log_fd(void)
{
  /* A program that closes every descriptor (daemons do) may have reused
   * the log's number for a file of its own: reports must not go there. */
  int fd = tl__opt.log_fd;
  if (fd == 2 || !L.checked)
    return fd;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_dev != L.dev || st.st_ino != L.ino)
    return 2;
  return fd;
}
