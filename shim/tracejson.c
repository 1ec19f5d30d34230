/* The timeline in Chrome's trace-event JSON, which Perfetto's UI and
 * chrome://tracing open: one track per thread, a complete event ("X") for
 * each time a task ran on a thread, replayed from the thread's ring, flow
 * events from the making task to the made one, instants for made,
 * finished, abandoned and untracked switches, and metadata naming the
 * process and the threads.
 */
#include "internal.h"
#include "tracejson.h"
#include "message.h"
#include "options.h"
#include "trace.h"
#include "traceclock.h"
#include "traceread.h"
#include "traceout.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Nanoseconds as microseconds with three decimals: exact, so that a slice
 * that ends where the next begins shows the same number for both. */
#define US_FMT "%llu.%03u"
#define US(ns) (unsigned long long)((ns) / 1000), (unsigned)((ns) % 1000)

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
    case TL__TEV_RELEASE:
      emit_instant(w, r, "released", at, e.a, NULL, 0);
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
