/* What a report says (doc/reports.md): the leak report at exit (exitreport.c)
 * and the live-task dump (dump.c) list the tasks, their locals and the
 * values dropped at tasks' ends (drops.c); writer.c writes the lines.
 *
 * What leaked:
 * - a made task that never finished: never started, suspended at exit,
 *   running at exit (exit() was called in it, or it runs on another
 *   thread), or abandoned (its ucontext_t was made again; task.c keeps
 *   those for the report while TASKLOCAL_LEAKS is on);
 * - its bound locals (each binding of a live key, NULL included: the
 *   task still holds it);
 * - each value still bound when a task ended whose key has no destructor:
 *   the pointer is dropped, usually a memory leak. A thread's root task
 *   ends at thread exit, and its dropped values count too. The roots still
 *   alive at process exit (the main thread's, the thread calling exit,
 *   the other threads still running) are not: what they hold is still
 *   reachable when the process ends, like a global, and LeakSanitizer
 *   does not report such memory either. An abandoned task's values are
 *   counted once, as the locals it held.
 *
 * The registry is walked under its lock only long enough to copy what the
 * report shows into static buffers (guarded by the writer's lock, one
 * report at a time); unwinding and symbol lookups run afterwards, without
 * the registry's lock. Memory the program
 * may have freed (value tables of running tasks, names, saved contexts) is
 * read with tl__safe_read.
 */
#include "internal.h"
#include "report.h"
#include "message.h"
#include "options.h"
#include "thread.h"
#include "registry.h"
#include "backtrace.h"
#include "keys.h"
#include "drops.h"
#include "writer.h"

#include <string.h>

#define DETAIL_TASKS 64                    /* tasks described in full */
#define DETAIL_LOCALS 16                   /* locals listed per task */

struct local {
  uint64_t key;
  void *value;
};

static const struct tl__thread *thread_running(const struct tl__task *t);

/* What a report shows of one task, copied under the registry's lock. */
struct snap {
  const struct tl__task *rec;
  uint64_t id, parent;
  uint32_t state, flags, mapped;
  uintptr_t lo, hi;
  const void *ctx;
  void (*entry)(void);
  uint64_t shared_with;                    /* a task on the same stack, or 0 */
  uint64_t running_on;                     /* the root of the thread it ran on when copied, or 0 */
  char name[TL__NAME_LEN];
  uint32_t bt_n;
  uintptr_t bt[TL__BT_MAX];
  uint32_t nloc;                           /* listed in loc */
  uint64_t nloc_all;                       /* all its locals */
  struct local loc[DETAIL_LOCALS];
};

/* Guarded by the writer's lock (writer.c): one report at a time. */
static struct {
  struct snap snaps[DETAIL_TASKS];
  int nsnaps;
} detail;

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

static void key_label(tl_key_t key, const char *known, char *buf, size_t size)
{
  char name[TL__NAME_LEN];
  if (known != NULL)
    tl__safe_str(name, sizeof name, known);
  else
    tl__safe_str(name, sizeof name, tl__key_name(key));
  if (name[0] != '\0')
    tl__formatf(buf, size, "key \"%s\"", name);
  else
    tl__formatf(buf, size, "key %llu", (unsigned long long)key);
}

/* ------------------------------------------------------------------------
 * Dropped values
 * ------------------------------------------------------------------------ */

static void describe_drops(struct tl__job *j, uint64_t n)
{
  char key[TL__NAME_LEN + 16], sym[512];
  for (uint64_t i = 0; i < n && i < TL__DROPS_KEPT; i++) {
    const struct tl__drop *d = tl__drop_get(i);
    if (d == NULL)
      continue;
    key_label(d->key, d->key_name, key, sizeof key);
    const char *how = d->how == TL__DROP_THREAD_EXIT ? "its thread exited"
                      : d->how == TL__DROP_ABANDONED ? "it was abandoned"
                      : d->how == TL__DROP_RELEASED ? "its stack was released"
                                                 : "it finished";
    const char *whose = d->how == TL__DROP_THREAD_EXIT ? "the root task" : "task";
    if (d->task_name[0] != '\0')
      tl__job_line(j, "dropped value %p of %s (no destructor): still bound in %s %llu \"%s\" when %s", d->value, key,
          whose, (unsigned long long)d->task, d->task_name, how);
    else
      tl__job_line(j, "dropped value %p of %s (no destructor): still bound in %s %llu when %s", d->value, key, whose,
          (unsigned long long)d->task, how);
    if (d->entry != NULL) {
      tl__bt_symbol((uintptr_t)d->entry, 0, sym, sizeof sym);
      tl__job_line(j, "  entry: %s", sym);
    }
    if (d->set_n > 0) {
      tl__job_line(j, "  set at:");
      tl__job_frames(j, d->set, (int)d->set_n);
    }
    if (d->how != TL__DROP_THREAD_EXIT) {
      if (d->bt_n > 0) {
        tl__job_line(j, "  task created at:");
        tl__job_frames(j, d->bt, (int)d->bt_n);
      } else {
        tl__job_line(j, "  task created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
      }
    }
  }
  if (n > TL__DROPS_KEPT)
    tl__job_line(j, "... and %llu more dropped values", (unsigned long long)(n - TL__DROPS_KEPT));
}

/* ------------------------------------------------------------------------
 * Collecting the tasks
 * ------------------------------------------------------------------------ */

/* Counts the locals of a value table, listing the first ones in s. The
 * table of a task running on another thread may be replaced and freed
 * while it is read, so it is copied with fault-safe reads, in pieces. */
static uint64_t count_locals(const struct tl__vtab *vt, struct snap *s)
{
  if (vt == NULL || vt == tl__vt_empty)
    return 0;
  /* The capacity is in the handle, read once: it belongs to these entries. */
  const struct tl__ent *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  if (mask >= (1u << 28))
    return 0;
  uint64_t n = 0;
  struct tl__ent buf[64];
  for (uint32_t i = 0; i <= mask;) {
    uint32_t k = mask + 1 - i;
    if (k > 64)
      k = 64;
    if (tl__safe_read(buf, &ent[i], k * sizeof buf[0]) != 0)
      break;
    for (uint32_t m = 0; m < k; m++) {
      uint64_t key = atomic_load_explicit(&buf[m].key, memory_order_relaxed);
      void *value = atomic_load_explicit(&buf[m].value, memory_order_relaxed);
      if (key <= TL__TOMB || !tl__key_valid(key))
        continue;
      n++;
      if (s != NULL && s->nloc < DETAIL_LOCALS)
        s->loc[s->nloc++] = (struct local){key, value};
    }
    i += k;
  }
  return n;
}

struct collect {
  struct tl__job *j;
  uint64_t kept;                           /* abandoned tasks seen */
};

static int collect_task(struct tl__task *t, void *arg)
{
  struct collect *c = arg;
  uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
  if ((t->flags & TL__F_ROOT) || t->id == 0 || state == TL__FINISHED)
    return 0;
  c->j->tasks++;
  if (state == TL__ABANDONED)
    c->kept++;
  struct snap *s = detail.nsnaps < DETAIL_TASKS ? &detail.snaps[detail.nsnaps++] : NULL;
  struct tl__task_ext *x = t->x;
  const struct tl__vtab *vt =
    state == TL__ABANDONED ? (x != NULL ? x->held : NULL) : atomic_load_explicit(&t->vt, memory_order_acquire);
  if (s != NULL) {
    memset(s, 0, offsetof(struct snap, loc));
    s->rec = t;
    s->id = t->id;
    s->parent = t->parent;
    s->state = state;
    s->flags = t->flags;
    s->mapped = __atomic_load_n(&t->mapped, __ATOMIC_RELAXED);
    s->lo = t->lo;
    s->hi = t->hi;
    s->ctx = t->ctx;
    s->entry = t->entry;
    /* Which thread runs it, read with its state: by the time the report
     * is written, that thread may have switched away. */
    if (state == TL__RUNNING) {
      const struct tl__thread *on = thread_running(t);
      s->running_on = on != NULL ? on->root.id : 0;
    }
    if (x != NULL) {
      tl__safe_str(s->name, sizeof s->name, x->name);
      uint32_t n = x->bt_n <= TL__BT_MAX ? x->bt_n : TL__BT_MAX;
      if (x->bt != NULL && tl__safe_read(s->bt, x->bt, n * sizeof s->bt[0]) == 0)
        s->bt_n = n;
    }
  }
  uint64_t n = count_locals(vt, s);
  c->j->locals += n;
  if (s != NULL)
    s->nloc_all = n;
  return 0;
}

/* Shared-stack coroutines copy their stack out and back: the stack of a
 * suspended one holds another's frames, so its backtrace is unreliable. */
static int shared_task(struct tl__task *t, void *arg)
{
  (void)arg;
  uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
  if ((t->flags & TL__F_ROOT) || t->id == 0 || state == TL__ABANDONED || state == TL__FINISHED)
    return 0;
  for (int i = 0; i < detail.nsnaps; i++) {
    struct snap *s = &detail.snaps[i];
    if (s->rec != t && s->shared_with == 0 && s->state == TL__SUSPENDED && t->lo < s->hi && s->lo < t->hi)
      s->shared_with = t->id;
  }
  return 0;
}

/* ------------------------------------------------------------------------
 * Writing the report
 * ------------------------------------------------------------------------ */

static const struct tl__thread *thread_running(const struct tl__task *t)
{
  for (const struct tl__thread *th = tl__thread_list(); th != NULL; th = th->next)
    if (th->current == t)
      return th;
  return NULL;
}

static void describe_task(struct tl__job *j, const struct snap *s)
{
  char sym[512], state[128], key[TL__NAME_LEN + 32];
  switch (s->state) {
  case TL__NEW:
    tl__formatf(state, sizeof state, "never started");
    break;
  case TL__SUSPENDED:
    tl__formatf(state, sizeof state, "suspended");
    break;
  case TL__ABANDONED:
    tl__formatf(state, sizeof state, "abandoned (its ucontext_t was made again before it finished)");
    break;
  default:
    if (s->rec == j->here) {
      tl__formatf(state, sizeof state, j->kind == TL__JOB_LEAK ? "running (exit was called in it)" : "running (it called tl_dump)");
    } else {
      if (s->running_on != 0)
        tl__formatf(state, sizeof state, "running on another thread (whose root task is %llu)",
            (unsigned long long)s->running_on);
      else
        tl__formatf(state, sizeof state, "running");
    }
    break;
  }
  if (s->name[0] != '\0')
    tl__job_line(j, "task %llu \"%s\": %s; made by task %llu", (unsigned long long)s->id, s->name, state,
        (unsigned long long)s->parent);
  else
    tl__job_line(j, "task %llu: %s; made by task %llu", (unsigned long long)s->id, state, (unsigned long long)s->parent);

  if (s->entry != NULL) {
    tl__bt_symbol((uintptr_t)s->entry, 0, sym, sizeof sym);
    tl__job_line(j, "  entry: %s", sym);
  }
  if (s->bt_n > 0) {
    tl__job_line(j, "  created at:");
    tl__job_frames(j, s->bt, (int)s->bt_n);
  } else {
    tl__job_line(j, "  created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
  }

  if (s->state == TL__SUSPENDED) {
    uintptr_t pc[TL__BT_MAX];
    const char *why = NULL;
    int n = -1;
    if (!(s->flags & TL__F_STARTED))
      why = "it never ran";
    else if (!s->mapped || s->ctx == NULL)
      why = "the ucontext_t it saved itself into was reused";
    else
      n = tl__bt_unwind(s->ctx, s->lo, s->hi, pc, TL__BT_MAX, &why);
    if (s->shared_with != 0)
      tl__job_line(j, "  suspended at (unreliable: its stack is shared with task %llu, and copied out and back):",
          (unsigned long long)s->shared_with);
    else
      tl__job_line(j, "  suspended at:");
    if (n > 0)
      tl__job_frames(j, pc, n);
    else if (n == 0 && s->entry != NULL) {
      tl__bt_symbol((uintptr_t)s->entry, 0, sym, sizeof sym);
      tl__job_line(j, "    #0 in %s, which switched away in a tail call", sym);
    } else if (n == 0)
      tl__job_line(j, "    in its entry function, which switched away in a tail call");
    else
      tl__job_line(j, "    unknown: %s", why);
  } else if (s->state == TL__RUNNING && s->rec == j->here && j->here_n > 0) {
    tl__job_line(j, "  running at:");
    tl__job_frames(j, j->here_bt, j->here_n);
  }

  if (s->nloc_all == 0) {
    tl__job_line(j, "  locals: none");
    return;
  }
  tl__job_line(j, "  locals: %llu%s", (unsigned long long)s->nloc_all, s->state == TL__ABANDONED ? " (held when abandoned)" : "");
  for (uint32_t i = 0; i < s->nloc; i++) {
    key_label(s->loc[i].key, NULL, key, sizeof key);
    tl__job_line(j, "    %s = %p", key, s->loc[i].value);
  }
  if (s->nloc_all > s->nloc)
    tl__job_line(j, "    ... and %llu more", (unsigned long long)(s->nloc_all - s->nloc));
}

/* The body of a leak report or a dump, run by tl__job_run with the
 * writer's lock held. */
void tl__report_body(struct tl__job *j)
{
  const char *what = j->kind == TL__JOB_LEAK ? "leak" : "dump";
  struct collect c = {.j = j};
  detail.nsnaps = 0;
  j->tasks = j->locals = 0;
  if (tl__task_foreach(collect_task, &c) != 0) {
    tl__job_line(j, "%s report: the task registry is busy on this thread; no report", what);
    return;
  }
  tl__task_foreach(shared_task, NULL);
  /* Oldest first: the live list holds the newest first. */
  for (int i = 1; i < detail.nsnaps; i++)
    for (int k = i; k > 0 && detail.snaps[k - 1].id > detail.snaps[k].id; k--) {
      struct snap tmp = detail.snaps[k];
      detail.snaps[k] = detail.snaps[k - 1];
      detail.snaps[k - 1] = tmp;
    }

  /* Abandoned tasks beyond those task.c keeps are counted, not shown. */
  uint64_t unkept = 0;
  if (tl__opt.leaks) {
    struct tl__stats st = {0};
    tl__task_stats(&st);
    if (st.abandoned > c.kept)
      unkept = st.abandoned - c.kept;
  }
  uint64_t ndrops = tl__drops_count();
  uint64_t tasks = j->tasks + unkept;
  uint64_t locals = j->locals + ndrops;

  if (j->kind == TL__JOB_DUMP || tasks > 0 || locals > 0) {
    tl__job_line(j, "%s report of process %d: %llu %s tasks, %llu locals", what, (int)j->pid, (unsigned long long)tasks,
        j->kind == TL__JOB_LEAK ? "leaked" : "live", (unsigned long long)locals);
    for (int i = 0; i < detail.nsnaps; i++)
      describe_task(j, &detail.snaps[i]);
    if (j->tasks > (uint64_t)detail.nsnaps)
      tl__job_line(j, "... and %llu more tasks, not described", (unsigned long long)(j->tasks - (uint64_t)detail.nsnaps));
    if (unkept > 0)
      tl__job_line(j, "... and %llu more abandoned tasks, not kept for the report (at most %d are)",
          (unsigned long long)unkept, TL__KEEP_MAX);
    describe_drops(j, ndrops);
  }
  j->tasks = tasks;
  j->locals = locals;
  tl__job_line(j, "%s summary: %llu tasks, %llu locals", what, (unsigned long long)tasks, (unsigned long long)locals);
}
