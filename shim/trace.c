/* The timeline of task switches (TASKLOCAL_TRACE).
 *
 * Recording. Each thread that the library sees gets a ring of its own at
 * thread start, mapped with mmap (MAP_NORESERVE: only the pages written
 * become memory); a thread whose ring cannot be mapped goes untraced, and
 * the first such failure says so in one line. The hooks in the switch,
 * start, end, make and abandon paths store one 32-byte event each: a
 * timestamp, two task ids and a type. No lock, no allocation, no system
 * call: the ring belongs to its thread, which alone writes it. When the
 * ring is full the oldest events are overwritten; the file tells how many
 * were dropped. A ring outlives its thread (its events are part of the
 * timeline) until TRACE_KEEP_EXITED rings of exited threads are kept; a
 * new thread then reuses the oldest, whose events count as dropped.
 *
 * An event's slot holds its index (seq) once it is complete, and ~0 while
 * it is written, so that a writer on another thread (exit, tl_trace_flush)
 * reads only whole events: it checks seq before and after copying one. A
 * signal handler that records an event on the same thread in the two
 * instructions between the load and the store of head takes the same slot,
 * and one of the two events is lost; nothing is ever torn.
 *
 * Clock. When the CPU has an invariant TSC and the kernel itself keeps
 * time with it (clocksource "tsc"), so that all cores agree, timestamps are
 * raw rdtsc, converted to nanoseconds when the file is written from two
 * calibration points (load time and write time, each a clock_gettime
 * between two rdtsc). Otherwise they come from clock_gettime
 * (CLOCK_MONOTONIC), which the vDSO answers without a system call for the
 * tsc, kvm-clock and Hyper-V clock sources.
 *
 * Writing. The file is Chrome's trace-event JSON, which Perfetto's UI and
 * chrome://tracing open: one track per thread, a complete event ("X") for
 * each time a task ran on a thread, flow events from the making task to
 * the made one, instants for made, finished, abandoned and untracked
 * switches, and metadata naming the process and the threads. It is
 * written at process exit (only when a task was made or a switch seen, so
 * that a launcher sharing the variable does not overwrite its child's
 * file), at _exit, on the dump signal (by the dump thread, not in the
 * handler), and by tl_trace_flush. The writer uses neither stdio nor
 * malloc: lines are formatted by tl__format into a buffer on the stack and
 * written with write(2); the table of tasks it needs is mapped with mmap
 * for the write and unmapped after. Entry functions are named then, and
 * only then, by backtrace.c's tl__bt_symbol.
 */
#include "internal.h"
#include "trace.h"
#include "traceclock.h"
#include "traceread.h"
#include "traceout.h"
#include "tracejson.h"
#include "tracefile.h"
#include "message.h"
#include "options.h"
#include "real.h"
#include "lock.h"
#include "backtrace.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TRACE_KEEP_EXITED 256              /* rings of exited threads kept for the file */
#define SYM_CACHE 1024                     /* entry functions named per write, at most */
#define WRITER_STACK_NEED (128u << 10)     /* the writer's stack, or one of its own */
#define WRITER_STACK_SIZE (1u << 20)

int tl__trace_on;

static struct {
  struct tl__lock lock;                    /* one writer at a time; recycling rings */
  struct tl__ring *_Atomic rings;
  int per_pid;                             /* the path has %p: each process its own file */
  int pid;                                 /* the process the rings belong to */
  _Atomic uint64_t exits;                  /* threads exited, numbering their rings */
  _Atomic uint32_t exited;                 /* rings of exited threads kept */
  _Atomic uint64_t recycled;               /* events lost with the rings reused */
  _Atomic uint32_t untraced;               /* threads whose ring could not be made */
  _Atomic int warned_ring;
} S;

/* ------------------------------------------------------------------------
 * The clock
 * ------------------------------------------------------------------------ */

static struct {
  int tsc;                                 /* timestamps are TSC ticks, else ns */
  uint64_t raw0, ns0;                      /* the calibration point taken at load */
} C;

uint64_t tl__tclock_now(void)
{
  if (TL__LIKELY(C.tsc))
    return __builtin_ia32_rdtsc();
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One calibration point: the TSC at the middle of a clock_gettime, the
 * tightest of three tries (a preemption between the reads spoils one). */
static void clock_point(uint64_t *raw, uint64_t *ns)
{
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 3; i++) {
    uint64_t t1 = __builtin_ia32_rdtsc(), n = mono_ns(), t2 = __builtin_ia32_rdtsc();
    if (t2 - t1 < best) {
      best = t2 - t1;
      *raw = t1 + (t2 - t1) / 2;
      *ns = n;
    }
  }
}

/* Whether the kernel keeps time with the TSC: then every core's TSC runs
 * at one rate and agrees with the others (the kernel checks both). */
static int kernel_uses_tsc(void)
{
  unsigned a, b, c, d;
  if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
    return 0;                              /* no invariant TSC */
  int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[16] = {0};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n >= 3 && memcmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == '\0');
}

void tl__tclock_setup(void)
{
  C.tsc = kernel_uses_tsc();
  if (C.tsc)
    clock_point(&C.raw0, &C.ns0);
  else
    C.raw0 = C.ns0 = mono_ns();
}

int tl__tclock_tsc(void)
{
  return C.tsc;
}

struct tl__tconv tl__tclock_conv(void)
{
  struct tl__tconv cv = {C.raw0, 0, 0};
  uint64_t raw1, ns1;
  if (C.tsc) {
    clock_point(&raw1, &ns1);
  } else {
    raw1 = ns1 = mono_ns();
  }
  cv.raw1 = raw1 > C.raw0 ? raw1 : C.raw0 + 1;
  cv.ns1 = ns1 > C.ns0 ? ns1 - C.ns0 : 1;
  return cv;
}

uint64_t tl__tclock_ns(const struct tl__tconv *cv, uint64_t raw)
{
  if (raw <= cv->raw0)
    return 0;
  if (!C.tsc)
    return raw - cv->raw0;
  return (uint64_t)((unsigned __int128)(raw - cv->raw0) * cv->ns1 / (cv->raw1 - cv->raw0));
}

/* ------------------------------------------------------------------------
 * Recording
 * ------------------------------------------------------------------------ */

void tl__trace_setup(void)
{
  if (tl__opt.trace == NULL)
    return;
  for (const char *p = tl__opt.trace; *p; p++) {
    if (p[0] == '%' && p[1] == 'p')
      S.per_pid = 1;
    if (p[0] == '%' && p[1] != '\0')
      p++;
  }
  S.pid = (int)getpid();
  tl__tclock_setup();
  tl__trace_on = 1;
}

static inline void put(struct tl__ring *r, unsigned type, uint64_t a, uint64_t b, unsigned aux)
{
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  atomic_store_explicit(&r->head, h + 1, memory_order_relaxed);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  struct tl__tev *e = &r->ev[h & r->mask];
  atomic_store_explicit(&e->seq, UINT32_MAX, memory_order_relaxed);
  /* The fields below must not be seen before the slot is marked: x86
   * keeps stores in program order, so only the compiler must be stopped
   * (a thread fence would be the portable spelling, which ThreadSanitizer
   * rejects). The fields are relaxed atomics for the concurrent reader. */
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  __atomic_store_n(&e->ts, tl__tclock_now(), __ATOMIC_RELAXED);
  __atomic_store_n(&e->a, a, __ATOMIC_RELAXED);
  __atomic_store_n(&e->b, b, __ATOMIC_RELAXED);
  __atomic_store_n(&e->type, (uint16_t)type, __ATOMIC_RELAXED);
  __atomic_store_n(&e->aux, (uint16_t)aux, __ATOMIC_RELAXED);
  atomic_store_explicit(&e->seq, (uint32_t)h, memory_order_release);
}

static void ring_start(struct tl__ring *r, struct tl__thread *th)
{
  r->tid = (int)syscall(SYS_gettid);
  r->name[0] = '\0';
  put(r, TL__TEV_THREAD, th->root.id, th->current != NULL ? th->current->id : th->root.id, 0);
}

/* The oldest ring of an exited thread, taken back for a new thread once
 * TRACE_KEEP_EXITED are kept; NULL if there is none or a writer holds
 * the lock (the new thread then maps a ring of its own). */
static struct tl__ring *ring_recycle(void)
{
  if (atomic_load_explicit(&S.exited, memory_order_relaxed) < TRACE_KEEP_EXITED)
    return NULL;
  uintptr_t expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&S.lock.owner, &expected, tl__thread_token(),
                                               memory_order_acquire, memory_order_relaxed))
    return NULL;
  struct tl__ring *old = NULL;
  for (struct tl__ring *r = atomic_load_explicit(&S.rings, memory_order_acquire); r != NULL; r = r->next)
    if (r->exit_seq != 0 && (old == NULL || r->exit_seq < old->exit_seq))
      old = r;
  if (old != NULL) {
    uint64_t h = atomic_load_explicit(&old->head, memory_order_relaxed);
    atomic_fetch_add_explicit(&S.recycled, h < old->mask + 1 ? h : old->mask + 1, memory_order_relaxed);
    atomic_store_explicit(&old->head, 0, memory_order_relaxed);
    old->exit_seq = 0;
    atomic_fetch_sub_explicit(&S.exited, 1, memory_order_relaxed);
  }
  tl__unlock(&S.lock);
  return old;
}

void tl__trace_thread(struct tl__thread *th)
{
  struct tl__ring *r = ring_recycle();
  if (r == NULL) {
    size_t page = 4096, cap = tl__opt.trace_size;
    size_t bytes = (sizeof(struct tl__ring) + cap * sizeof(struct tl__tev) + page - 1) & ~(page - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      atomic_fetch_add_explicit(&S.untraced, 1, memory_order_relaxed);
      if (!atomic_exchange_explicit(&S.warned_ring, 1, memory_order_relaxed))
        tl__message("TASKLOCAL_TRACE: cannot map a ring of %zu bytes for thread %d: %s; it is not traced "
                    "(a smaller TASKLOCAL_TRACE_SIZE needs less)",
                    bytes, (int)syscall(SYS_gettid), strerrordesc_np(errno));
      return;
    }
    r = p;
    r->mask = cap - 1;
    r->bytes = bytes;
    r->next = atomic_load_explicit(&S.rings, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&S.rings, &r->next, r, memory_order_release,
                                                  memory_order_relaxed))
      ;
  }
  ring_start(r, th);
  th->ring = r;
}

void tl__trace_thread_exit(struct tl__thread *th)
{
  struct tl__ring *r = th->ring;
  if (r == NULL)
    return;
  put(r, TL__TEV_EXIT, th->current != NULL ? th->current->id : 0, 0, 0);
  prctl(PR_GET_NAME, r->name, 0, 0, 0);
  th->ring = NULL;
  r->exit_seq = atomic_fetch_add_explicit(&S.exits, 1, memory_order_relaxed) + 1;
  atomic_fetch_add_explicit(&S.exited, 1, memory_order_relaxed);
}

void tl__trace_event(struct tl__thread *th, unsigned type, uint64_t a, uint64_t b)
{
  struct tl__ring *r = th->ring;
  if (r != NULL)
    put(r, type, a, b, 0);
}

void tl__trace_make(struct tl__thread *th, const struct tl__task *t)
{
  struct tl__ring *r = th->ring;
  if (r == NULL)
    return;
  put(r, TL__TEV_MAKE, t->id, t->parent, 0);
  put(r, TL__TEV_ENTRY, t->id, (uint64_t)(uintptr_t)t->entry, 0);
}

/* The name goes into the ring of the thread that sets it, 8 bytes an
 * event: the task record (and its copy of the name) may be gone when the
 * file is written. */
void tl__trace_name(const struct tl__task *t, const char *name)
{
  struct tl__thread *th = tl__tls;
  if ((uintptr_t)th <= 1 || th->ring == NULL)
    return;
  size_t len = name != NULL ? strnlen(name, TL__TRACE_NAME_MAX) : 0;
  for (size_t part = 0; part == 0 || part * 8 < len; part++) {
    uint64_t chunk = 0;
    size_t n = len - part * 8 < 8 ? len - part * 8 : 8;
    memcpy(&chunk, name + part * 8, n);
    put(th->ring, TL__TEV_NAME, t->id, chunk, (unsigned)(part | len << 4));
  }
}

struct tl__ring *tl__trace_rings(void)
{
  return atomic_load_explicit(&S.rings, memory_order_acquire);
}

int tl__trace_lock(void)
{
  return tl__lock(&S.lock);
}

void tl__trace_unlock(void)
{
  tl__unlock(&S.lock);
}

int tl__trace_pid(void)
{
  return S.pid;
}

uint64_t tl__trace_recycled(void)
{
  return atomic_load_explicit(&S.recycled, memory_order_relaxed);
}

uint32_t tl__trace_untraced(void)
{
  return atomic_load_explicit(&S.untraced, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * The writer's output
 * ------------------------------------------------------------------------ */

void tl__out_flush(struct tl__out *o)
{
  for (size_t off = 0; off < o->len && o->err == 0;) {
    ssize_t w = write(o->fd, o->buf + off, o->len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      o->err = w < 0 ? errno : EIO;
    else
      off += (size_t)w;
  }
  o->len = 0;
}

/* Appends one formatted piece (at most 1 KiB). */
void tl__outf(struct tl__out *o, const char *f, ...)
{
  if (sizeof o->buf - o->len < 1024)
    tl__out_flush(o);
  va_list ap;
  va_start(ap, f);
  int n = tl__format(o->buf + o->len, sizeof o->buf - o->len, f, ap);
  va_end(ap);
  size_t room = sizeof o->buf - o->len - 1;
  o->len += (size_t)n < room ? (size_t)n : room;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
  unsigned c = s[0], lo = 0x80, hi = 0xbf;
  size_t n;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

/* A JSON string, quoted and escaped: at most 256 bytes of s, each of which
 * may take 6 in the file, so the room is checked as it goes. Bytes that are
 * not UTF-8 (a task name is whatever the program gave) become '?', which
 * keeps the file valid JSON. */
void tl__out_str(struct tl__out *o, const char *s)
{
  if (sizeof o->buf - o->len < 8)
    tl__out_flush(o);
  o->buf[o->len++] = '"';
  for (size_t i = 0; s[i] != '\0' && i < 256; i++) {
    unsigned char c = (unsigned char)s[i];
    if (sizeof o->buf - o->len < 8)
      tl__out_flush(o);
    if (c == '"' || c == '\\') {
      o->buf[o->len++] = '\\';
      o->buf[o->len++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      memcpy(o->buf + o->len, "\\u00", 4);
      o->buf[o->len + 4] = hex[c >> 4];
      o->buf[o->len + 5] = hex[c & 0xf];
      o->len += 6;
    } else if (c < 0x80) {
      o->buf[o->len++] = (char)c;
    } else {
      size_t n = utf8_len((const unsigned char *)s + i);
      if (n == 0 || i + n > 256) {
        o->buf[o->len++] = '?';
      } else {
        memcpy(o->buf + o->len, s + i, n);
        o->len += n;
        i += n - 1;
      }
    }
  }
  o->buf[o->len++] = '"';
}

/* Nanoseconds as microseconds with three decimals: exact, so that a slice
 * that ends where the next begins shows the same number for both. */
#define US_FMT "%llu.%03u"
#define US(ns) (unsigned long long)((ns) / 1000), (unsigned)((ns) % 1000)

/* ------------------------------------------------------------------------
 * The writer's tables, in memory mapped for one write
 * ------------------------------------------------------------------------ */

static struct {
  struct tl__ring *top;                    /* the newest ring when the writer took the heads */
} R;

/* The rings and their heads, once: rings that threads starting now add
 * (at the front of the list) are not part of this file. */
int tl__rings_take(void)
{
  int n = 0;
  R.top = tl__trace_rings();
  for (struct tl__ring *r = R.top; r != NULL; r = r->next, n++) {
    r->snap = atomic_load_explicit(&r->head, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
  }
  return n;
}

struct tl__ring *tl__rings_taken(void)
{
  return R.top;
}

/* Reads event i of r into *e when it is whole and still there. */
int tl__ring_read(const struct tl__ring *r, uint64_t i, struct tl__tev *e)
{
  const struct tl__tev *s = &r->ev[i & r->mask];
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
  if (seq != (uint32_t)i)
    return 0;
  e->ts = __atomic_load_n(&s->ts, __ATOMIC_RELAXED);
  e->a = __atomic_load_n(&s->a, __ATOMIC_RELAXED);
  e->b = __atomic_load_n(&s->b, __ATOMIC_RELAXED);
  e->type = __atomic_load_n(&s->type, __ATOMIC_RELAXED);
  e->aux = __atomic_load_n(&s->aux, __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_acquire);
  return atomic_load_explicit(&s->seq, memory_order_relaxed) == seq;
}

uint64_t tl__ring_first(const struct tl__ring *r)
{
  return r->snap > r->mask + 1 ? r->snap - (r->mask + 1) : 0;
}

struct tl__tinfo *tl__ttab_task(struct tl__ttab *tb, uint64_t id, int add)
{
  if (id == 0 || tb->t == NULL)
    return NULL;
  uint64_t i = (id * 0x9e3779b97f4a7c15ull) >> 20;
  for (uint64_t n = 0; n <= tb->tmask; n++, i++) {
    struct tl__tinfo *ti = &tb->t[i & tb->tmask];
    if (ti->id == id)
      return ti;
    if (ti->id == 0) {
      if (!add)
        return NULL;
      ti->id = id;
      return ti;
    }
  }
  return NULL;
}

/* Counts what the tables must hold, maps them, and fills them from every
 * ring's make, entry, name and thread events. */
void tl__ttab_make(struct tl__ttab *tb)
{
  memset(tb, 0, sizeof *tb);
  uint64_t ntasks = 16, nnames = 0;
  for (struct tl__ring *r = R.top; r != NULL; r = r->next) {
    struct tl__tev e;
    for (uint64_t i = tl__ring_first(r); i < r->snap; i++) {
      if (!tl__ring_read(r, i, &e))
        continue;
      ntasks += e.type == TL__TEV_MAKE || e.type == TL__TEV_THREAD;
      nnames += e.type == TL__TEV_NAME && (e.aux & 0xf) == 0;
    }
  }
  uint64_t cap = 64;
  while (cap < 2 * ntasks)
    cap <<= 1;
  /* Each part starts on a 64-byte boundary: names are 65 bytes each. */
  size_t tbytes = cap * sizeof(struct tl__tinfo), nbytes = (nnames * sizeof *tb->names + 63) & ~(size_t)63;
  size_t sbytes = SYM_CACHE * sizeof(struct tl__tsym);
  size_t bytes = (tbytes + nbytes + sbytes + 4095) & ~(size_t)4095;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return;                                /* tasks are then named by their ids */
  tb->map = p;
  tb->bytes = bytes;
  tb->t = p;
  tb->tmask = cap - 1;
  tb->names = (void *)((char *)p + tbytes);
  tb->capnames = (uint32_t)nnames;
  tb->syms = (void *)((char *)p + tbytes + nbytes);

  for (struct tl__ring *r = R.top; r != NULL; r = r->next) {
    struct tl__tev e;
    for (uint64_t i = tl__ring_first(r); i < r->snap; i++) {
      if (!tl__ring_read(r, i, &e))
        continue;
      struct tl__tinfo *ti;
      switch (e.type) {
      case TL__TEV_THREAD:
        if ((ti = tl__ttab_task(tb, e.a, 1)) != NULL)
          ti->flags |= TL__TI_ROOT;
        break;
      case TL__TEV_MAKE:
        if ((ti = tl__ttab_task(tb, e.a, 1)) != NULL) {
          ti->parent = e.b;
          ti->flags |= TL__TI_MADE;
        }
        break;
      case TL__TEV_ENTRY:
        if ((ti = tl__ttab_task(tb, e.a, 1)) != NULL)
          ti->entry = (uintptr_t)e.b;
        break;
      case TL__TEV_NAME: {
        unsigned part = e.aux & 0xf, len = e.aux >> 4;
        if ((ti = tl__ttab_task(tb, e.a, 1)) == NULL || part * 8 >= TL__TRACE_NAME_MAX)
          break;
        if (ti->name == 0) {
          if (tb->nnames == tb->capnames)
            break;
          ti->name = ++tb->nnames;
        }
        char *name = tb->names[ti->name - 1];
        if (part == 0) {
          memset(name, 0, TL__TRACE_NAME_MAX + 1);
          name[TL__TRACE_NAME_MAX] = (char)len;  /* the length, until the name is complete */
        }
        memcpy(name + part * 8, &e.b, 8);
        break;
      }
      default:
        break;
      }
    }
  }
  /* The length byte goes: the name is what its parts hold, NUL-ended. */
  for (uint32_t i = 0; i < tb->nnames; i++) {
    unsigned len = (unsigned char)tb->names[i][TL__TRACE_NAME_MAX];
    tb->names[i][len < TL__TRACE_NAME_MAX ? len : TL__TRACE_NAME_MAX] = '\0';
  }
}

void tl__ttab_free(struct tl__ttab *tb)
{
  if (tb->map != NULL)
    munmap(tb->map, tb->bytes);
}

const struct tl__tsym *tl__ttab_sym(struct tl__ttab *tb, uintptr_t entry)
{
  if (tb->syms == NULL || entry == 0)
    return NULL;
  uint64_t i = ((uint64_t)entry * 0x9e3779b97f4a7c15ull) >> 40;
  for (int n = 0; n < SYM_CACHE; n++, i++) {
    struct tl__tsym *s = &tb->syms[i % SYM_CACHE];
    if (s->entry == entry)
      return s;
    if (s->entry != 0)
      continue;
    s->entry = entry;
    tl__bt_symbol(entry, 0, s->text, sizeof s->text);
    /* "fn+0x0 (module)" names the function itself: the slice says "fn". */
    char *plus = strstr(s->text, "+0x0 (");
    if (plus == NULL && strlen(s->text) > 4 && strcmp(s->text + strlen(s->text) - 4, "+0x0") == 0)
      plus = s->text + strlen(s->text) - 4;
    size_t n0 = plus != NULL ? (size_t)(plus - s->text) : strlen(s->text);
    memcpy(s->shorter, s->text, n0);
    s->shorter[n0] = '\0';
    return s;
  }
  return NULL;
}

/* ------------------------------------------------------------------------
 * Writing the file
 * ------------------------------------------------------------------------ */

struct writer {
  struct tl__out o;
  struct tl__ttab tb;
  struct tl__tconv cv;
  int pid;
  int first;                               /* no event written yet: no comma before the next */
  uint64_t now_ns;                         /* where open slices end */
  uint64_t kept, dropped;
};

static void ev_begin(struct writer *w, const char *ph, const char *name)
{
  tl__outf(&w->o, "%s\n{\"ph\":\"%s\",\"pid\":%d,\"name\":", w->first ? "" : ",", ph, w->pid);
  tl__out_str(&w->o, name);
  w->first = 0;
}

static void task_label(struct writer *w, uint64_t id, char *buf, size_t size)
{
  const struct tl__tinfo *ti = tl__ttab_task(&w->tb, id, 0);
  const struct tl__tsym *s;
  if (ti != NULL && ti->name != 0 && w->tb.names[ti->name - 1][0] != '\0')
    tl__formatf(buf, size, "%s", w->tb.names[ti->name - 1]);
  else if (ti != NULL && (ti->flags & TL__TI_ROOT))
    tl__formatf(buf, size, "(root)");
  else if (ti != NULL && (s = tl__ttab_sym(&w->tb, ti->entry)) != NULL)
    tl__formatf(buf, size, "%s", s->shorter);
  else
    tl__formatf(buf, size, "task %llu", (unsigned long long)id);
}

/* One time task id ran on r's thread, from..to (ns); running: it still
 * runs as the file is written. */
static void emit_slice(struct writer *w, const struct tl__ring *r, uint64_t id, uint64_t from, uint64_t to, int running)
{
  char label[TL__TSYM_LEN];
  task_label(w, id, label, sizeof label);
  ev_begin(w, "X", label);
  tl__outf(&w->o, ",\"cat\":\"task\",\"tid\":%d,\"ts\":" US_FMT ",\"dur\":" US_FMT ",\"args\":{\"task\":%llu", r->tid,
           US(from), US(to > from ? to - from : 0), (unsigned long long)id);
  const struct tl__tinfo *ti = tl__ttab_task(&w->tb, id, 0);
  if (ti != NULL && (ti->flags & TL__TI_MADE))
    tl__outf(&w->o, ",\"parent\":%llu", (unsigned long long)ti->parent);
  const struct tl__tsym *s = ti != NULL ? tl__ttab_sym(&w->tb, ti->entry) : NULL;
  if (s != NULL) {
    tl__outf(&w->o, ",\"entry\":");
    tl__out_str(&w->o, s->text);
  }
  if (ti != NULL && (ti->flags & TL__TI_ROOT))
    tl__outf(&w->o, ",\"root\":true");
  if (running)
    tl__outf(&w->o, ",\"running\":true");
  tl__outf(&w->o, "}}");
}

static void emit_instant(struct writer *w, const struct tl__ring *r, const char *what, uint64_t at, uint64_t id,
                         const char *other, uint64_t other_id)
{
  ev_begin(w, "i", what);
  tl__outf(&w->o, ",\"cat\":\"event\",\"s\":\"t\",\"tid\":%d,\"ts\":" US_FMT ",\"args\":{\"task\":%llu", r->tid, US(at),
           (unsigned long long)id);
  if (other != NULL)
    tl__outf(&w->o, ",\"%s\":%llu", other, (unsigned long long)other_id);
  tl__outf(&w->o, "}}");
}

/* The ends of a flow arrow from the task that made id to id's first run. */
static void emit_flow(struct writer *w, const struct tl__ring *r, const char *ph, uint64_t at, uint64_t id)
{
  ev_begin(w, ph, "make");
  tl__outf(&w->o, ",\"cat\":\"make\",%s\"id\":%llu,\"tid\":%d,\"ts\":" US_FMT "}", ph[0] == 'f' ? "\"bp\":\"e\"," : "",
           (unsigned long long)id, r->tid, US(at));
}

/* The name of thread tid: its comm now, or the one taken at its exit. */
static void thread_name(const struct tl__ring *r, char *buf, size_t size)
{
  buf[0] = '\0';
  if (r->exit_seq != 0) {
    tl__formatf(buf, size, "%s", r->name);
    return;
  }
  char path[64];
  tl__formatf(path, sizeof path, "/proc/self/task/%d/comm", r->tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    buf[n > 0 ? (size_t)n : 0] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
      *nl = '\0';
  }
}

/* Which task runs on a thread, replayed from its ring. */
struct replay {
  struct writer *w;
  const struct tl__ring *r;
  uint64_t cur, since;                     /* the running task and since when; cur 0: unknown */
};

static void replay_to(struct replay *p, uint64_t task, uint64_t at)
{
  if (p->cur != 0)
    emit_slice(p->w, p->r, p->cur, p->since, at, 0);
  p->cur = task;
  p->since = at;
}

static void write_ring(struct writer *w, const struct tl__ring *r, int index)
{
  char name[64];
  thread_name(r, name, sizeof name);
  ev_begin(w, "M", "thread_name");
  tl__outf(&w->o, ",\"tid\":%d,\"args\":{\"name\":", r->tid);
  tl__out_str(&w->o, name[0] != '\0' ? name : "thread");
  tl__outf(&w->o, "}}");
  ev_begin(w, "M", "thread_sort_index");
  tl__outf(&w->o, ",\"tid\":%d,\"args\":{\"sort_index\":%d}}", r->tid, index);

  struct replay p = {w, r, 0, 0};
  uint64_t first = tl__ring_first(r), kept = 0, last = 0;
  struct tl__tev e;
  for (uint64_t i = first; i < r->snap; i++) {
    if (!tl__ring_read(r, i, &e))
      continue;                            /* overwritten while the file is written */
    kept++;
    uint64_t at = tl__tclock_ns(&w->cv, e.ts);
    if (at < last)
      at = last;                           /* one thread's events are in order */
    last = at;
    struct tl__tinfo *ti;
    switch (e.type) {
    case TL__TEV_THREAD:
      replay_to(&p, e.b, at);
      break;
    case TL__TEV_SWITCH:
      if (p.cur != e.b)
        replay_to(&p, e.b, at);
      break;
    case TL__TEV_START:
      if ((ti = tl__ttab_task(&w->tb, e.a, 0)) != NULL && (ti->flags & (TL__TI_MADE | TL__TI_STARTED)) == TL__TI_MADE) {
        ti->flags |= TL__TI_STARTED;
        emit_flow(w, r, "f", at, e.a);
      }
      /* The switch that started it predicted another task: the time
       * since that switch was this one's. */
      if (p.cur == 0)
        replay_to(&p, e.a, at);
      else
        p.cur = e.a;
      break;
    case TL__TEV_FINISH:
      replay_to(&p, e.b, at);
      emit_instant(w, r, "finished", at, e.a, "next", e.b);
      break;
    case TL__TEV_MAKE:
      emit_instant(w, r, "made", at, e.a, "parent", e.b);
      emit_flow(w, r, "s", at, e.a);
      break;
    case TL__TEV_ABANDON:
      emit_instant(w, r, "abandoned", at, e.a, NULL, 0);
      break;
    case TL__TEV_UNTRACKED:
      replay_to(&p, e.b, at);
      emit_instant(w, r, "untracked switch", at, e.b, "from", e.a);
      break;
    case TL__TEV_EXIT:
      replay_to(&p, 0, at);
      break;
    default:
      break;
    }
  }
  if (p.cur != 0)
    emit_slice(w, r, p.cur, p.since, w->now_ns > last ? w->now_ns : last, 1);
  uint64_t dropped = r->snap - kept;
  w->kept += kept;
  w->dropped += dropped;
  ev_begin(w, "M", "tasklocal_thread");
  tl__outf(&w->o, ",\"tid\":%d,\"args\":{\"events\":%llu,\"dropped\":%llu,\"ring\":%llu,\"exited\":%s}}", r->tid,
           (unsigned long long)kept, (unsigned long long)dropped, (unsigned long long)(r->mask + 1),
           r->exit_seq != 0 ? "true" : "false");
}

/* Whether anything but thread starts and exits was recorded. */
int tl__rings_any(void)
{
  for (struct tl__ring *r = R.top; r != NULL; r = r->next) {
    struct tl__tev e;
    for (uint64_t i = tl__ring_first(r); i < r->snap; i++)
      if (tl__ring_read(r, i, &e) && e.type != TL__TEV_THREAD && e.type != TL__TEV_EXIT)
        return 1;
  }
  return 0;
}

/* The path with %p replaced by the pid and %% by %. */
static int trace_path(char *buf, size_t size)
{
  size_t n = 0;
  for (const char *p = tl__opt.trace; *p; p++) {
    char num[24];
    const char *piece = p;
    size_t len = 1;
    if (p[0] == '%' && p[1] == 'p') {
      len = (size_t)tl__formatf(num, sizeof num, "%d", (int)getpid());
      piece = num;
      p++;
    } else if (p[0] == '%' && p[1] == '%') {
      p++;
    }
    if (n + len >= size)
      return ENAMETOOLONG;
    memcpy(buf + n, piece, len);
    n += len;
  }
  buf[n] = '\0';
  return 0;
}

struct job {
  int at_exit;                             /* skip the file when nothing was recorded */
  int err;
  uint64_t dropped;
  char path[4200];
};

/* Writes the document, from the rings taken. */
int tl__tjson_write(int fd, int n, uint64_t *dropped)
{
  struct writer *w = &(struct writer){.first = 1};
  w->o.fd = fd;
  w->cv = tl__tclock_conv();
  w->now_ns = w->cv.ns1;
  w->pid = (int)getpid();
  tl__ttab_make(&w->tb);

  tl__outf(&w->o, "{\"traceEvents\":[");
  ev_begin(w, "M", "process_name");
  tl__outf(&w->o, ",\"args\":{\"name\":");
  tl__out_str(&w->o, program_invocation_short_name);
  tl__outf(&w->o, "}}");
  /* Threads in the order they started: the list holds the newest first. */
  for (int k = n - 1; k >= 0; k--) {
    struct tl__ring *r = tl__rings_taken();
    for (int i = 0; i < k && r != NULL; i++)
      r = r->next;
    if (r != NULL)
      write_ring(w, r, n - 1 - k);
  }
  uint64_t recycled = tl__trace_recycled();
  *dropped = w->dropped + recycled;
  tl__outf(&w->o, "\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"tasklocal\":\"%d.%d.%d\",\"clock\":\"%s\","
           "\"ring_events\":\"%u\",\"events\":\"%llu\",\"dropped\":\"%llu\",\"recycled\":\"%llu\","
           "\"untraced_threads\":\"%u\"}}\n",
           TL_VERSION_MAJOR, TL_VERSION_MINOR, TL_VERSION_PATCH, tl__tclock_tsc() ? "tsc" : "monotonic",
           (unsigned)tl__opt.trace_size, (unsigned long long)w->kept, (unsigned long long)*dropped,
           (unsigned long long)recycled, (unsigned)tl__trace_untraced());
  tl__out_flush(&w->o);
  tl__ttab_free(&w->tb);
  return w->o.err;
}

/* Writes the file; called with tl__trace_lock held, on a stack large enough. */
static void write_file(struct job *j)
{
  int n = tl__rings_take();
  if (j->at_exit && !tl__rings_any()) {
    j->err = -1;
    return;
  }
  if ((j->err = trace_path(j->path, sizeof j->path)) != 0)
    return;
  int fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    j->err = errno;
    return;
  }
  j->err = tl__tjson_write(fd, n, &j->dropped);
  close(fd);
}

static struct {
  struct job *job;                         /* the job run on a stack of its own */
  ucontext_t back, ctx;
  _Atomic int warned_file, exit_done;
} F;

static void write_entry(void)
{
  write_file(F.job);
}

/* Runs write_file, on a stack of its own when the caller's is small: exit()
 * may be called on a coroutine's stack of a few kilobytes. The switch uses
 * libc's functions: the tracker never sees it. */
static void write_job(struct job *j)
{
  struct tl__thread *th = tl__tls;
  uintptr_t sp = tl__sp();
  int small = (uintptr_t)th > 1 && tl__in_stack(th->current, sp) && sp - th->current->lo < WRITER_STACK_NEED;
  void *stack = MAP_FAILED;
  if (small && tl__real_makecontext != NULL && tl__real_swapcontext != NULL)
    stack = mmap(NULL, WRITER_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED || getcontext(&F.ctx) != 0) {
    write_file(j);
  } else {
    F.job = j;
    F.ctx.uc_stack.ss_sp = stack;
    F.ctx.uc_stack.ss_size = WRITER_STACK_SIZE;
    F.ctx.uc_link = &F.back;
    tl__real_makecontext(&F.ctx, write_entry, 0);
    tl__real_swapcontext(&F.back, &F.ctx);
    F.job = NULL;
  }
  if (stack != MAP_FAILED)
    munmap(stack, WRITER_STACK_SIZE);
}

static int trace_write(int at_exit)
{
  if (!tl__trace_on)
    return ENOTSUP;
  int saved = errno;
  int err = tl__trace_lock();
  if (err != 0)
    return err;
  struct job j = {.at_exit = at_exit};
  write_job(&j);
  tl__trace_unlock();
  if (j.err > 0 && !atomic_exchange_explicit(&F.warned_file, 1, memory_order_relaxed))
    tl__message("TASKLOCAL_TRACE: cannot write %s: %s; no trace", j.path[0] != '\0' ? j.path : tl__opt.trace,
                strerrordesc_np(j.err));
  else if (j.err == 0 && at_exit && j.dropped > 0)
    tl__message("trace: %llu events dropped in %s (each thread keeps its newest %u; see TASKLOCAL_TRACE_SIZE)",
                (unsigned long long)j.dropped, j.path, (unsigned)tl__opt.trace_size);
  errno = saved;
  return j.err < 0 ? 0 : j.err;
}

/* A child made by vfork (or clone without the atfork handlers) that calls
 * _exit shares its parent's memory and its rings: it must neither write
 * the parent's timeline nor mark it written. Its pid tells. */
void tl__trace_exit(void)
{
  if (tl__trace_on && (int)getpid() == tl__trace_pid() &&
      !atomic_exchange_explicit(&F.exit_done, 1, memory_order_relaxed))
    trace_write(1);
}

void tl__trace_dump(void)
{
  trace_write(0);
}

int tl__trace_flush(void)
{
  return trace_write(0);
}

/* The child starts its file afresh (tl__trace_atfork_child). */
void tl__trace_file_atfork_child(void)
{
  atomic_store_explicit(&F.exit_done, 0, memory_order_relaxed);
  atomic_store_explicit(&F.warned_file, 0, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * fork
 * ------------------------------------------------------------------------ */

/* The child keeps the thread that forked. Its events so far are the
 * parent's: the child's file starts afresh, with that thread's ring
 * emptied and the other rings (threads the child does not have) unmapped.
 * Without %p in the path the child would overwrite its parent's file: it
 * traces nothing. */
void tl__trace_atfork_child(void)
{
  if (!tl__trace_on)
    return;
  tl__lock_reset(&S.lock);
  struct tl__thread *me = tl__tls;
  struct tl__ring *mine = (uintptr_t)me > 1 && S.per_pid ? me->ring : NULL;
  struct tl__ring *r = atomic_load_explicit(&S.rings, memory_order_relaxed), *next;
  for (; r != NULL; r = next) {
    next = r->next;
    if (r != mine)
      munmap(r, r->bytes);
  }
  if ((uintptr_t)me > 1 && mine == NULL)
    me->ring = NULL;
  atomic_store_explicit(&S.rings, mine, memory_order_relaxed);
  atomic_store_explicit(&S.exited, 0, memory_order_relaxed);
  atomic_store_explicit(&S.recycled, 0, memory_order_relaxed);
  atomic_store_explicit(&S.untraced, 0, memory_order_relaxed);
  S.pid = (int)getpid();
  if (!S.per_pid) {
    tl__trace_on = 0;
    return;
  }
  if (mine != NULL) {
    mine->next = NULL;
    atomic_store_explicit(&mine->head, 0, memory_order_relaxed);
    ring_start(mine, me);
  }
}
