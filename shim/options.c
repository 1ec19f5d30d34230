/* Options, read once from the environment by tl__init(), before anything
 * else the library does (tasklocal(7) describes them).
 *
 * Every option is one row of the table below: its name, its kind, its
 * default and what it does. One loop reads the rows, validating each value
 * by its kind, and one prints them for TASKLOCAL_VERBOSE, as mimalloc's
 * options.c does. Adding an option is a field in struct tl__options, an
 * entry in the enum below and a row (a PATH or STRING row also names a
 * buffer of optstate for its copy); tasklocal-run gets a flag of the same
 * name, which check_report's run_options_agree test asks for. A value that cannot be read gives exactly one warning
 * line and the option keeps its default, so a typo never stops the
 * program; an empty value counts as unset. Booleans take 1/0, yes/no,
 * on/off and true/false in any case.
 *
 * Paths come from secure_getenv: in a set-user-ID or otherwise
 * secure-execution process an unprivileged user must not be able to make
 * the library create or append to a file of their choice, so the variables
 * are then ignored, with a warning. The other options only choose what is
 * done or printed, so plain getenv is enough for them.
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

/* What a row's value is and how it is read. */
enum kind {
  BOOL,                                    /* 1/0, yes/no, on/off, true/false */
  WORDS,                                   /* one of .words; the value is its index */
  NUMBER,                                  /* a decimal number from .min to .max */
  SIGNAL,                                  /* a signal name or number we may handle; 0 is off */
  PATH,                                    /* a file name, from secure_getenv, kept in .buf */
  STRING,                                  /* any text, from getenv, kept in .buf */
};

/* Row flags. */
#define BOOL_WORDS 1u                      /* WORDS: the boolean spellings are words 0 and 1 */
#define SUFFIX 2u                          /* NUMBER: an optional K or M multiplies by 2^10 or 2^20 */
#define POW2 4u                            /* NUMBER: rounded up to a power of two */

/* The rows, in the order they are read and printed. An option whose
 * default follows another's comes after it. */
enum {
  OPT_LEAKS,
  OPT_BACKTRACE,
  OPT_DUMP_SIGNAL,
  OPT_STATS,
  OPT_LOG,
  OPT_REPORT_FORMAT,
  OPT_REPORT_MAX,
  OPT_FIBERS,
  OPT_TRACE,
  OPT_TRACE_SIZE,
  OPT_LEAK_KINDS,
  OPT_SUPPRESSIONS,
  OPT_TASK_LOCAL,
  OPT_VERBOSE,
  OPT_COUNT
};

struct option {
  const char *name;
  enum kind kind;
  unsigned flags;
  long dflt;                               /* the default of a number-like kind */
  const struct option *follows;            /* or else: on when this earlier row is on */
  long min, max;                           /* NUMBER */
  const char *const *words;                /* WORDS, ending with NULL */
  size_t field;                            /* offsetof the int, or the const char *, in tl__opt */
  char *buf;                               /* PATH, STRING: the kept copy (the environment may change) */
  size_t size;
  const char *unset;                       /* PATH, STRING: what "unset" means, as VERBOSE prints it */
  const char *ignored;                     /* PATH, STRING: what happens when the value cannot be used */
  const char *description;
};

static const char *const leak_words[] = {"0", "1", "error", NULL};
static const char *const format_words[] = {"text", "json", NULL};
static const char *const kind_words[] = {"all", "leaked", NULL};

/* What the log descriptor was when opened, to notice later that the
 * program closed it and reused the number for a file of its own; and the
 * kept copies of the text options. */
static struct {
  dev_t dev;
  ino_t ino;
  int checked;
  char log[4096];
  char trace[4096];
  char suppressions[4096];
  char task_local[4096];
} optstate;

#define FIELD(f) offsetof(struct tl__options, f)

static const struct option table[OPT_COUNT] = {
  [OPT_LEAKS] = {.name = "TASKLOCAL_LEAKS", .kind = WORDS, .flags = BOOL_WORDS, .words = leak_words,
                 .field = FIELD(leaks),
                 .description = "report leaked task state at exit; error also exits with status 23 on leaks"},
  [OPT_BACKTRACE] = {.name = "TASKLOCAL_BACKTRACE", .kind = BOOL, .follows = &table[OPT_LEAKS],
                     .field = FIELD(backtrace),
                     .description = "capture where each task is created (default: on when TASKLOCAL_LEAKS is)"},
  [OPT_DUMP_SIGNAL] = {.name = "TASKLOCAL_DUMP_SIGNAL", .kind = SIGNAL, .field = FIELD(dump_signal),
                       .description = "write the live-task report whenever this signal arrives"},
  [OPT_STATS] = {.name = "TASKLOCAL_STATS", .kind = BOOL, .field = FIELD(stats),
                 .description = "one line of counters at exit"},
  [OPT_LOG] = {.name = "TASKLOCAL_LOG", .kind = PATH, .field = FIELD(log), .buf = optstate.log,
               .size = sizeof optstate.log, .unset = "(stderr)", .ignored = "reports go to stderr",
               .description = "append reports to this file instead of stderr"},
  [OPT_REPORT_FORMAT] = {.name = "TASKLOCAL_REPORT_FORMAT", .kind = WORDS, .words = format_words,
                         .field = FIELD(report_json),
                         .description = "write the reports as text, or as one JSON document (doc/reports.md)"},
  [OPT_REPORT_MAX] = {.name = "TASKLOCAL_REPORT_MAX", .kind = NUMBER, .dflt = 50, .min = 0, .max = 1000000,
                      .field = FIELD(report_max),
                      .description = "groups of alike tasks a report describes, the biggest first (the summary "
                                     "counts every task)"},
  [OPT_FIBERS] = {.name = "TASKLOCAL_FIBERS", .kind = BOOL, .dflt = 1, .field = FIELD(fibers),
                  .description = "tell AddressSanitizer and ThreadSanitizer about every switch"},
  [OPT_TRACE] = {.name = "TASKLOCAL_TRACE", .kind = PATH, .field = FIELD(trace), .buf = optstate.trace,
                 .size = sizeof optstate.trace, .unset = "(off)", .ignored = "no trace is written",
                 .description = "record every switch and write the timeline to this file at exit"},
  [OPT_TRACE_SIZE] = {.name = "TASKLOCAL_TRACE_SIZE", .kind = NUMBER, .flags = SUFFIX | POW2, .dflt = 1L << 20,
                      .min = 16, .max = 1L << 26, .field = FIELD(trace_size),
                      .description = "events kept per thread, the newest (32 bytes each; the default reserves "
                                     "32 MiB of address space a thread, of which only the pages written become "
                                     "memory)"},
  [OPT_LEAK_KINDS] = {.name = "TASKLOCAL_LEAK_KINDS", .kind = WORDS, .words = kind_words, .field = FIELD(leak_kinds),
                      .description = "which unfinished tasks count and are described: all, or leaked (those that "
                                     "nothing can resume), not parked ones (still referenced)"},
  [OPT_SUPPRESSIONS] = {.name = "TASKLOCAL_SUPPRESSIONS", .kind = PATH, .field = FIELD(suppressions),
                        .buf = optstate.suppressions, .size = sizeof optstate.suppressions, .unset = "(none)",
                        .ignored = "no suppressions are read",
                        .description = "a file of task:PATTERN rules: tasks that match are left out of reports"},
  [OPT_TASK_LOCAL] = {.name = "TASKLOCAL_TASK_LOCAL", .kind = STRING, .field = FIELD(task_local),
                      .buf = optstate.task_local, .size = sizeof optstate.task_local, .unset = "(none)",
                      .ignored = "nothing is made per task",
                      .description = "the program's thread-local state made per task: sym:NAME[@OBJECT], "
                                     "pthread-keys:OBJECT|all, cxx-eh (doc/task-local-tls.md)"},
  [OPT_VERBOSE] = {.name = "TASKLOCAL_VERBOSE", .kind = BOOL, .field = FIELD(verbose),
                   .description = "print the effective options at start"},
};

struct tl__options tl__opt = {.log_fd = 2, .fibers = 1, .trace_size = 1 << 20, .report_max = 50};

static int *int_field(const struct option *o)
{
  return (int *)((char *)&tl__opt + o->field);
}

static const char **text_field(const struct option *o)
{
  return (const char **)((char *)&tl__opt + o->field);
}

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

static const char *signal_name(int sig, char *buf, size_t size)
{
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (signals[i].sig == sig) {
      tl__formatf(buf, size, "SIG%s", signals[i].name);
      return buf;
    }
  return sigabbrev_np(sig) ? sigabbrev_np(sig) : "?";
}

/* A number, with K or M where it divides evenly and the row takes them. */
static void number_text(const struct option *o, long n, char *buf, size_t size)
{
  if ((o->flags & SUFFIX) && n != 0 && n % (1L << 20) == 0)
    tl__formatf(buf, size, "%ldM", n >> 20);
  else if ((o->flags & SUFFIX) && n != 0 && n % (1L << 10) == 0)
    tl__formatf(buf, size, "%ldK", n >> 10);
  else
    tl__formatf(buf, size, "%ld", n);
}

/* A number for a NUMBER row, or -1. */
static long parse_row_number(const struct option *o, const char *v)
{
  long n = -1, unit = 1;
  char *end = NULL;
  if (*v >= '0' && *v <= '9') {
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0)
      return -1;
  } else {
    return -1;
  }
  if ((o->flags & SUFFIX) && (*end == 'k' || *end == 'K' || *end == 'm' || *end == 'M')) {
    unit = *end == 'k' || *end == 'K' ? 1L << 10 : 1L << 20;
    end++;
  }
  if (*end != '\0' || n > o->max / unit || n * unit < o->min)
    return -1;
  n *= unit;
  if (o->flags & POW2) {
    long p = 1;
    while (p < n)
      p <<= 1;
    n = p;
  }
  return n;
}

/* What a row accepts, for the warning about a value it does not. */
static void expected_text(const struct option *o, char *buf, size_t size)
{
  char lo[24], hi[24];
  size_t n = 0;
  switch (o->kind) {
  case BOOL:
    tl__formatf(buf, size, "1 or 0, yes or no, on or off, true or false");
    break;
  case WORDS:
    buf[0] = '\0';
    for (size_t i = 0; o->words[i] != NULL && n < size; i++)
      n += (size_t)tl__formatf(buf + n, size - n, "%s%s", i == 0 ? "" : o->words[i + 1] == NULL ? " or " : ", ",
                               o->words[i]);
    break;
  case NUMBER:
    number_text(o, o->min, lo, sizeof lo);
    number_text(o, o->max, hi, sizeof hi);
    tl__formatf(buf, size, "a number from %s to %s%s", lo, hi, o->flags & SUFFIX ? ", with an optional K or M" : "");
    break;
  case SIGNAL:
    tl__formatf(buf, size, "a signal name such as USR2 or SIGUSR2, or its number; not KILL, STOP or a fault signal");
    break;
  case PATH:
  case STRING:
    tl__formatf(buf, size, "at most %zu bytes", o->size - 1);
    break;
  }
}

/* A row's value as VERBOSE prints it, and as the warnings name the default. */
static void value_text(const struct option *o, long v, const char *text, char *buf, size_t size)
{
  char sig[16];
  switch (o->kind) {
  case BOOL:
    tl__formatf(buf, size, "%s", v ? "on" : "off");
    break;
  case WORDS:
    tl__formatf(buf, size, "%s", o->words[v]);
    break;
  case NUMBER:
    number_text(o, v, buf, size);
    break;
  case SIGNAL:
    if (v == 0)
      tl__formatf(buf, size, "none");
    else
      tl__formatf(buf, size, "%s (%ld)", signal_name((int)v, sig, sizeof sig), v);
    break;
  case PATH:
  case STRING:
    tl__formatf(buf, size, "%s", text != NULL ? text : o->unset);
    break;
  }
}

static long default_of(const struct option *o)
{
  return o->follows != NULL ? *int_field(o->follows) != 0 : o->dflt;
}

/* A text option: the kept copy, or NULL with one warning. */
static const char *read_text(const struct option *o)
{
  const char *v = o->kind == PATH ? secure_getenv(o->name) : getenv(o->name);
  if (v == NULL) {
    const char *plain = getenv(o->name);
    if (plain != NULL && *plain != '\0' && getauxval(AT_SECURE))
      tl__message("%s is ignored in a secure-execution (set-user-ID) process; %s", o->name, o->ignored);
    return NULL;
  }
  if (*v == '\0')
    return NULL;
  size_t n = strlen(v);
  if (n >= o->size) {
    tl__message("%s is longer than %zu bytes; %s", o->name, o->size - 1, o->ignored);
    return NULL;
  }
  memcpy(o->buf, v, n + 1);
  return o->buf;
}

static void read_option(const struct option *o)
{
  if (o->kind == PATH || o->kind == STRING) {
    *text_field(o) = read_text(o);
    return;
  }
  long dflt = default_of(o), value = -1;
  *int_field(o) = (int)dflt;
  const char *v = getenv(o->name);
  if (v == NULL || *v == '\0')
    return;
  switch (o->kind) {
  case BOOL:
    value = parse_bool(v);
    break;
  case WORDS:
    for (long i = 0; o->words[i] != NULL; i++)
      if (strcasecmp(v, o->words[i]) == 0)
        value = i;
    if (value < 0 && (o->flags & BOOL_WORDS))
      value = parse_bool(v);
    break;
  case NUMBER:
    value = parse_row_number(o, v);
    break;
  case SIGNAL:
    value = parse_signal(v);
    break;
  case PATH:
  case STRING:
    break;
  }
  if (value >= 0) {
    *int_field(o) = (int)value;
    return;
  }
  char expected[128], dtext[64];
  expected_text(o, expected, sizeof expected);
  value_text(o, dflt, NULL, dtext, sizeof dtext);
  tl__message("%s=%s is not valid (expected %s); using the default, %s", o->name, v, expected, dtext);
}

static void print_option(const struct option *o)
{
  char text[4200];
  switch (o->kind) {
  case BOOL:
    tl__formatf(text, sizeof text, "%d", *int_field(o));
    break;
  case SIGNAL:
    if (*int_field(o) == 0) {
      tl__formatf(text, sizeof text, "0");
      break;
    }
    value_text(o, *int_field(o), NULL, text, sizeof text);
    break;
  case NUMBER:
    tl__formatf(text, sizeof text, "%d", *int_field(o));
    break;
  case WORDS:
    value_text(o, *int_field(o), NULL, text, sizeof text);
    break;
  case PATH:
  case STRING:
    value_text(o, 0, *text_field(o), text, sizeof text);
    break;
  }
  tl__message("option %s=%s", o->name, text);
}

/* Opens TASKLOCAL_LOG, and from then on tl__message writes there. */
static void open_log(void)
{
  if (tl__opt.log == NULL)
    return;
  int fd = open(tl__opt.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    tl__message("cannot open TASKLOCAL_LOG=%s: %s; reports go to stderr", tl__opt.log, strerrordesc_np(errno));
    tl__opt.log = NULL;
    return;
  }
  struct stat st;
  if (fstat(fd, &st) == 0) {
    optstate.dev = st.st_dev;
    optstate.ino = st.st_ino;
    optstate.checked = 1;
  }
  tl__opt.log_fd = fd;
  tl__message_fd(fd);
}

void tl__options_read(void)
{
  /* The log first, so that warnings about the other options go where the
   * reports will go. */
  read_option(&table[OPT_LOG]);
  open_log();
  for (size_t i = 0; i < OPT_COUNT; i++)
    if (i != OPT_LOG)
      read_option(&table[i]);
  if (tl__opt.verbose)
    for (size_t i = 0; i < OPT_COUNT; i++)
      print_option(&table[i]);
}

int tl__options_log_fd(void)
{
  /* A program that closes every descriptor (daemons do) may have reused
   * the log's number for a file of its own: reports must not go there. */
  int fd = tl__opt.log_fd;
  if (fd == 2 || !optstate.checked)
    return fd;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_dev != optstate.dev || st.st_ino != optstate.ino)
    return 2;
  return fd;
}
