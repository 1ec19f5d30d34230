/* Suppressions (doc/reports.md), as LeakSanitizer's: TASKLOCAL_SUPPRESSIONS
 * names a file of rules, one a line, `task:PATTERN`, with `#` comments and
 * blank lines. A task matches a rule when the pattern matches the name of
 * its entry function, or of any frame of the backtrace where it was made
 * or where it is suspended, or the module of one of those. Patterns are
 * LeakSanitizer's: a substring, where `*` stands for any characters, `^`
 * anchors the start and `$` the end. A suppressed task is left out of the
 * report and of its summary, and each rule's line says how many tasks it
 * suppressed.
 *
 * The file is read once at load, into a static buffer: a report may be
 * written from the dump signal's thread or at exit, where nothing may
 * allocate. A missing file or a line that is not a rule gives one warning
 * each, and the other rules apply.
 */
#include "internal.h"
#include "suppress.h"
#include "symbolize.h"
#include "message.h"
#include "options.h"
#include "backtrace.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define TEXT_MAX (32u * 1024)
#define RULES_MAX 128
#define PATTERN_MAX 512                   /* characters of a pattern */
#define CACHE 1024                         /* symbols' verdicts, by address */

struct rule {
  const char *pattern;                     /* in S.text, after "task:" */
  uint64_t count;                          /* tasks suppressed in this report */
};

static struct {
  char text[TEXT_MAX];
  struct rule rules[RULES_MAX];
  int n;
  /* Guarded by the writer's lock, as the counts: for each address already
   * symbolized in this report, the rule it matched + 1, or 0. */
  struct {
    uintptr_t pc;
    int rule;
  } cache[CACHE];
} S;

int tl__suppress_active(void)
{
  return S.n > 0;
}

/* '*' matches any run of characters; everything else itself. */
static int glob(const char *p, const char *pend, const char *s, const char *send)
{
  while (p < pend) {
    if (*p == '*') {
      while (p < pend && *p == '*')
        p++;
      if (p == pend)
        return 1;
      for (; s <= send; s++)
        if (glob(p, pend, s, send))
          return 1;
      return 0;
    }
    if (s == send || *p != *s)
      return 0;
    p++;
    s++;
  }
  return s == send;
}

/* LeakSanitizer's patterns: unanchored, a pattern matches anywhere, as
 * if it began and ended with '*'. */
static int pattern_match(const char *pattern, const char *s, size_t len)
{
  if (len == 0)
    return 0;
  char buf[PATTERN_MAX + 3];
  size_t n = 0, plen = strlen(pattern);
  const char *p = pattern, *pend = pattern + plen;
  if (*p == '^')
    p++;
  else
    buf[n++] = '*';
  int end = pend > p && pend[-1] == '$';
  if (end)
    pend--;
  memcpy(buf + n, p, (size_t)(pend - p));
  n += (size_t)(pend - p);
  if (!end)
    buf[n++] = '*';
  return glob(buf, buf + n, s, s + len);
}

/* "function+0x1c (module)", "module+0x1c" or "??", as tl__bt_symbol writes
 * them: the first rule that matches the function or the module. */
static int match_symbol(const char *sym)
{
  const char *plus = strstr(sym, "+0x");
  const char *open = strrchr(sym, '(');
  size_t fn_len = plus != NULL ? (size_t)(plus - sym) : 0;
  const char *mod = NULL;
  size_t mod_len = 0;
  if (open != NULL && open > sym) {
    mod = open + 1;
    const char *close = strchr(mod, ')');
    mod_len = close != NULL ? (size_t)(close - mod) : 0;
  } else if (plus != NULL) {
    /* No function name: what comes before the offset is the module. */
    mod = sym;
    mod_len = fn_len;
    fn_len = 0;
  }
  for (int i = 0; i < S.n; i++)
    if ((fn_len > 0 && pattern_match(S.rules[i].pattern, sym, fn_len)) ||
        (mod_len > 0 && pattern_match(S.rules[i].pattern, mod, mod_len)))
      return i;
  return -1;
}

/* The names of pc as the report gives them (symbolize.c: DWARF and the
 * symbol tables, inlined frames each), every one tried against the rules:
 * a rule names what the report shows. */
static int match_frames(uintptr_t pc, int ret)
{
  struct tl__sym f[TL__SYM_INLINE_MAX];
  int n = tl__sym_lookup(pc, ret, f, TL__SYM_INLINE_MAX);
  for (int i = 0; i < n; i++) {
    char sym[sizeof f[i].func + sizeof f[i].module + 16];
    if (f[i].func[0] != '\0')
      tl__formatf(sym, sizeof sym, "%s+0x0 (%s)", f[i].func, f[i].module);
    else
      tl__formatf(sym, sizeof sym, "%s+0x%lx", f[i].module, f[i].module_offset);
    int r = match_symbol(sym);
    if (r >= 0)
      return r;
  }
  return -1;
}

static int match_pc(uintptr_t pc, int ret)
{
  uintptr_t key = pc ^ (uintptr_t)ret;
  size_t slot = (size_t)((key >> 2) * 0x9e3779b97f4a7c15ull >> 54) & (CACHE - 1);
  if (S.cache[slot].pc == key && key != 0)
    return S.cache[slot].rule - 1;
  int r = match_frames(pc, ret);
  S.cache[slot].pc = key;
  S.cache[slot].rule = r + 1;
  return r;
}

void tl__suppress_reset(void)
{
  for (int i = 0; i < S.n; i++)
    S.rules[i].count = 0;
  memset(S.cache, 0, sizeof S.cache);
}

int tl__suppress_task(void (*entry)(void), const uintptr_t *bt, int n, const void *ctx, uintptr_t lo, uintptr_t hi)
{
  if (S.n == 0)
    return -1;
  int r = entry != NULL ? match_pc((uintptr_t)entry, 0) : -1;
  for (int i = 0; r < 0 && i < n; i++)
    r = match_pc(bt[i], 1);
  if (r < 0 && ctx != NULL) {
    /* Unwound from a copy of the saved context, read without a fault,
     * and only where the stack it points into is still mapped (as the
     * report unwinds: report.c). */
    ucontext_t uc;
    unsigned char probe;
    if (tl__safe_read(&uc, ctx, sizeof uc) == 0) {
      uintptr_t sp = TL__UC_SP(&uc);
      if (sp < lo || sp >= hi || tl__safe_read(&probe, (const void *)sp, 1) == 0) {
        uintptr_t pc[TL__BT_MAX];
        const char *why = NULL;
        int k = tl__bt_unwind(&uc, lo, hi, pc, TL__BT_MAX, &why);
        for (int i = 0; r < 0 && i < k; i++)
          r = match_pc(pc[i], 1);
      }
    }
  }
  if (r >= 0)
    S.rules[r].count++;
  return r;
}

void tl__suppress_lines(struct tl__job *j)
{
  for (int i = 0; i < S.n; i++)
    tl__job_line(j, "suppressed %llu tasks by rule task:%s", (unsigned long long)S.rules[i].count, S.rules[i].pattern);
}

/* ------------------------------------------------------------------------
 * Reading the file
 * ------------------------------------------------------------------------ */

static int is_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r';
}

void tl__suppress_read(void)
{
  const char *path = tl__opt.suppressions;
  if (path == NULL)
    return;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    tl__message("TASKLOCAL_SUPPRESSIONS=%s: cannot open it: %s; no suppressions", path, strerrordesc_np(errno));
    return;
  }
  size_t len = 0;
  for (;;) {
    ssize_t k = read(fd, S.text + len, sizeof S.text - 1 - len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    len += (size_t)k;
    if (len == sizeof S.text - 1) {
      tl__message("TASKLOCAL_SUPPRESSIONS=%s: only its first %zu bytes are read", path, len);
      break;
    }
  }
  close(fd);
  S.text[len] = '\0';
  int lineno = 0;
  for (char *p = S.text; p < S.text + len;) {
    char *nl = memchr(p, '\n', (size_t)(S.text + len - p));
    char *end = nl != NULL ? nl : S.text + len;
    *end = '\0';
    lineno++;
    char *b = p, *e = end;
    p = end + 1;
    while (b < e && is_space(*b))
      b++;
    while (e > b && is_space(e[-1]))
      *--e = '\0';
    if (b == e || *b == '#')
      continue;
    if (strncmp(b, "task:", 5) != 0 || b[5] == '\0' || strlen(b + 5) > PATTERN_MAX) {
      tl__message("TASKLOCAL_SUPPRESSIONS=%s: line %d is not a rule (task:PATTERN): \"%s\"; it is ignored", path, lineno, b);
      continue;
    }
    if (S.n == RULES_MAX) {
      tl__message("TASKLOCAL_SUPPRESSIONS=%s: more than %d rules; line %d and the next ones are ignored", path,
                  RULES_MAX, lineno);
      break;
    }
    S.rules[S.n++].pattern = b + 5;
  }
}
