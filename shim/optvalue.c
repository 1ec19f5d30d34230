/* An option's value, by the kind of its row (options.c holds the table):
 * read from the text of the environment, checked against the row's
 * bounds, and written back as TASKLOCAL_VERBOSE and the warnings show it. */
#include "internal.h"
#include "optvalue.h"
#include "message.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 1 or 0 for a boolean word, -1 otherwise. */
int tl__optvalue_bool(const char *v)
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
int tl__optvalue_signal(const char *v)
{
  long n;
  if (parse_number(v, &n) == 0) {
    if (n == 0)
      return 0;
    if (n < 1 || n >= NSIG || reserved_signal((int)n) || (n > SIGSYS && n < SIGRTMIN))
      return -1;                           /* glibc keeps the first real-time signals */
    return (int)n;
  }
  if (tl__optvalue_bool(v) == 0)
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
static void number_text(const struct tl__option *o, long n, char *buf, size_t size)
{
  if ((o->flags & SUFFIX) && n != 0 && n % (1L << 20) == 0)
    tl__formatf(buf, size, "%ldM", n >> 20);
  else if ((o->flags & SUFFIX) && n != 0 && n % (1L << 10) == 0)
    tl__formatf(buf, size, "%ldK", n >> 10);
  else
    tl__formatf(buf, size, "%ld", n);
}

/* A number for a NUMBER row, or -1. */
long tl__optvalue_number(const struct tl__option *o, const char *v)
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
void tl__optvalue_expected(const struct tl__option *o, char *buf, size_t size)
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
void tl__optvalue_text(const struct tl__option *o, long v, const char *text, char *buf, size_t size)
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
