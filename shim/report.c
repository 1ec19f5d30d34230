/* Reports (SPEC 4.2): the leak report at exit, the live-task dump
 * (tl_dump, and TASKLOCAL_DUMP_SIGNAL), the stats line, and the record of
 * values dropped at a task's end for want of a destructor.
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
 * Writing a report uses neither stdio nor malloc, whose locks and state
 * belong to the host: lines are formatted by tl__format into a stack
 * buffer and written with write(2). The registry is walked under its lock only long
 * enough to copy what the report shows into static buffers (guarded by
 * the report's own lock, one report at a time); unwinding and symbol
 * lookups run afterwards, without the registry's lock. Memory the program
 * may have freed (value tables of running tasks, names, saved contexts) is
 * read with tl__safe_read.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DETAIL_TASKS 64                    /* tasks described in full */
#define DETAIL_LOCALS 16                   /* locals listed per task */
#define DETAIL_DROPS 64                    /* dropped values described in full */
#define NAME_LEN 64
#define LINE_LEN 1024

/* A job runs on a stack of its own when less than this is left on the
 * caller's: exit() may be called on a small coroutine stack. */
#define JOB_STACK_NEED (128u << 10)
#define JOB_STACK_SIZE (1u << 20)

struct local {
  uint64_t key;
  void *value;
};

/* What a report shows of one task, copied under the registry's lock. */
struct snap {
  const struct tl__task *rec;
  uint64_t id, parent;
  uint32_t state, flags, mapped;
  uintptr_t lo, hi;
  const void *ctx;
  void (*entry)(void);
  uint64_t shared_with;                    /* a task on the same stack, or 0 */
  char name[NAME_LEN];
  uint32_t bt_n;
  uintptr_t bt[TL__BT_MAX];
  uint32_t nloc;                           /* listed in loc */
  uint64_t nloc_all;                       /* all its locals */
  struct local loc[DETAIL_LOCALS];
};

/* One value dropped at a task's end. ready is set last, so that a report
 * written while another thread fills the record skips it. */
struct drop {
  _Atomic int ready;
  uint64_t key, task;
  void *value;
  void (*entry)(void);
  int how;                                 /* enum drop_how */
  char key_name[NAME_LEN];
  char task_name[NAME_LEN];
  uint32_t bt_n;
  uintptr_t bt[TL__BT_MAX];
  uint32_t set_n;                          /* where it was set, with backtraces on */
  uintptr_t set[TL__BT_MAX];
};

enum drop_how { DROP_FINISHED, DROP_ABANDONED, DROP_THREAD_EXIT };

enum kind { LEAK, DUMP };

struct job {
  enum kind kind;
  int fd;
  int err;                                 /* the first write error */
  pid_t pid;
  int tag;                                 /* lines end with the pid */
  const struct tl__thread *self;           /* the calling thread's state, or NULL */
  const struct tl__task *here;             /* the task running on the calling thread */
  int here_n;
  uintptr_t here_bt[TL__BT_MAX];
  uint64_t tasks, locals;                  /* the summary */
};

static struct {
  struct tl__lock lock;                    /* one report at a time; guards snaps */
  struct snap snaps[DETAIL_TASKS];
  int nsnaps;
  _Atomic int forked;                      /* this process forked, or is a forked child */
  _Atomic int exited;                      /* the exit report ran */
  _Atomic uint64_t ndrops;
  struct drop drops[DETAIL_DROPS];
  int pipe_wr;                             /* the dump signal's handler -> the dump thread */
  ino_t pipe_ino;                          /* that pipe, to tell it from a reused number */
  struct job *job;                         /* the job run on a stack of its own */
  ucontext_t job_back, job_ctx;
} R = {.pipe_wr = -1};

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

static int fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));

static int fmt(char *buf, size_t size, const char *f, ...)
{
  va_list ap;
  va_start(ap, f);
  int n = tl__format(buf, size, f, ap);
  va_end(ap);
  return n;
}

static void out(struct job *j, const char *f, ...) __attribute__((format(printf, 2, 3)));

/* One line: "tasklocal: " and the text, then " (pid N)" once the process
 * has forked, so that the reports of a parent and its children can be
 * told apart in one stream; written with one write(2). Long lines are cut. */
static void out(struct job *j, const char *f, ...)
{
  static const char prefix[] = "tasklocal: ";
  char buf[LINE_LEN];
  size_t len = sizeof prefix - 1, room = sizeof buf - len - 32;
  memcpy(buf, prefix, len);
  va_list ap;
  va_start(ap, f);
  int n = tl__format(buf + len, room, f, ap);
  va_end(ap);
  len += (size_t)n < room ? (size_t)n : room - 1;
  if (j->tag)
    len += (size_t)fmt(buf + len, 31, " (pid %d)", (int)j->pid);
  buf[len++] = '\n';
  for (size_t off = 0; off < len;) {
    ssize_t w = write(j->fd, buf + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      if (j->err == 0)
        j->err = w < 0 ? errno : EIO;
      return;
    }
    off += (size_t)w;
  }
}

static void frames(struct job *j, const uintptr_t *pc, int n)
{
  char sym[512];
  for (int i = 0; i < n; i++) {
    tl__bt_symbol(pc[i], 1, sym, sizeof sym);
    out(j, "    #%d 0x%lx %s", i, (unsigned long)pc[i], sym);
  }
}

static void key_label(tl_key_t key, const char *known, char *buf, size_t size)
{
  char name[NAME_LEN];
  if (known != NULL)
    tl__safe_str(name, sizeof name, known);
  else
    tl__safe_str(name, sizeof name, tl__key_name(key));
  if (name[0] != '\0')
    fmt(buf, size, "key \"%s\"", name);
  else
    fmt(buf, size, "key %llu", (unsigned long long)key);
}

/* ------------------------------------------------------------------------
 * Dropped values
 * ------------------------------------------------------------------------ */

void tl__report_dropped(struct tl__task *t, tl_key_t key, void *value)
{
  int how = DROP_FINISHED;
  if (t->flags & TL__F_ROOT) {
    const struct tl__thread *th =
      (const struct tl__thread *)((const char *)t - offsetof(struct tl__thread, root));
    if (!th->dying)
      return;                              /* process exit: still reachable, like a global */
    how = DROP_THREAD_EXIT;
  } else if (atomic_load_explicit(&t->state, memory_order_relaxed) == TL__ABANDONED) {
    if (tl__opt.leaks)
      return;                              /* counted with the kept task's locals */
    how = DROP_ABANDONED;
  }
  uint64_t i = atomic_fetch_add_explicit(&R.ndrops, 1, memory_order_relaxed);
  if (i >= DETAIL_DROPS)
    return;
  struct drop *d = &R.drops[i];
  d->key = key;
  d->value = value;
  d->task = t->id;
  d->entry = t->entry;
  d->how = how;
  tl__safe_str(d->key_name, sizeof d->key_name, tl__key_name(key));
  struct tl__task_ext *x = t->x;
  tl__safe_str(d->task_name, sizeof d->task_name, x != NULL ? x->name : NULL);
  d->bt_n = 0;
  if (x != NULL && x->bt != NULL && x->bt_n <= TL__BT_MAX) {
    memcpy(d->bt, x->bt, x->bt_n * sizeof d->bt[0]);
    d->bt_n = x->bt_n;
  }
  const struct tl__setbt *set = tl__bt_set_of(t, key);
  d->set_n = set != NULL && set->n <= TL__BT_MAX ? set->n : 0;
  if (d->set_n)
    memcpy(d->set, set->pc, d->set_n * sizeof d->set[0]);
  atomic_store_explicit(&d->ready, 1, memory_order_release);
}

static void describe_drops(struct job *j, uint64_t n)
{
  char key[NAME_LEN + 16], sym[512];
  for (uint64_t i = 0; i < n && i < DETAIL_DROPS; i++) {
    struct drop *d = &R.drops[i];
    if (!atomic_load_explicit(&d->ready, memory_order_acquire))
      continue;
    key_label(d->key, d->key_name, key, sizeof key);
    const char *how = d->how == DROP_THREAD_EXIT ? "its thread exited"
                      : d->how == DROP_ABANDONED ? "it was abandoned"
                                                 : "it finished";
    const char *whose = d->how == DROP_THREAD_EXIT ? "the root task" : "task";
    if (d->task_name[0] != '\0')
      out(j, "dropped value %p of %s (no destructor): still bound in %s %llu \"%s\" when %s", d->value, key,
          whose, (unsigned long long)d->task, d->task_name, how);
    else
      out(j, "dropped value %p of %s (no destructor): still bound in %s %llu when %s", d->value, key, whose,
          (unsigned long long)d->task, how);
    if (d->entry != NULL) {
      tl__bt_symbol((uintptr_t)d->entry, 0, sym, sizeof sym);
      out(j, "  entry: %s", sym);
    }
    if (d->set_n > 0) {
      out(j, "  set at:");
      frames(j, d->set, (int)d->set_n);
    }
    if (d->how != DROP_THREAD_EXIT) {
      if (d->bt_n > 0) {
        out(j, "  task created at:");
        frames(j, d->bt, (int)d->bt_n);
      } else {
        out(j, "  task created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
      }
    }
  }
  if (n > DETAIL_DROPS)
    out(j, "... and %llu more dropped values", (unsigned long long)(n - DETAIL_DROPS));
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
  struct job *j;
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
  struct snap *s = R.nsnaps < DETAIL_TASKS ? &R.snaps[R.nsnaps++] : NULL;
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
  for (int i = 0; i < R.nsnaps; i++) {
    struct snap *s = &R.snaps[i];
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

static void describe_task(struct job *j, const struct snap *s)
{
  char sym[512], state[128], key[NAME_LEN + 32];
  switch (s->state) {
  case TL__NEW:
    fmt(state, sizeof state, "never started");
    break;
  case TL__SUSPENDED:
    fmt(state, sizeof state, "suspended");
    break;
  case TL__ABANDONED:
    fmt(state, sizeof state, "abandoned (its ucontext_t was made again before it finished)");
    break;
  default:
    if (s->rec == j->here) {
      fmt(state, sizeof state, j->kind == LEAK ? "running (exit was called in it)" : "running (it called tl_dump)");
    } else {
      const struct tl__thread *th = thread_running(s->rec);
      if (th != NULL)
        fmt(state, sizeof state, "running on another thread (whose root task is %llu)",
            (unsigned long long)th->root.id);
      else
        fmt(state, sizeof state, "running");
    }
    break;
  }
  if (s->name[0] != '\0')
    out(j, "task %llu \"%s\": %s; made by task %llu", (unsigned long long)s->id, s->name, state,
        (unsigned long long)s->parent);
  else
    out(j, "task %llu: %s; made by task %llu", (unsigned long long)s->id, state, (unsigned long long)s->parent);

  if (s->entry != NULL) {
    tl__bt_symbol((uintptr_t)s->entry, 0, sym, sizeof sym);
    out(j, "  entry: %s", sym);
  }
  if (s->bt_n > 0) {
    out(j, "  created at:");
    frames(j, s->bt, (int)s->bt_n);
  } else {
    out(j, "  created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
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
      out(j, "  suspended at (unreliable: its stack is shared with task %llu, and copied out and back):",
          (unsigned long long)s->shared_with);
    else
      out(j, "  suspended at:");
    if (n > 0)
      frames(j, pc, n);
    else if (n == 0 && s->entry != NULL) {
      tl__bt_symbol((uintptr_t)s->entry, 0, sym, sizeof sym);
      out(j, "    #0 in %s, which switched away in a tail call", sym);
    } else if (n == 0)
      out(j, "    in its entry function, which switched away in a tail call");
    else
      out(j, "    unknown: %s", why);
  } else if (s->state == TL__RUNNING && s->rec == j->here && j->here_n > 0) {
    out(j, "  running at:");
    frames(j, j->here_bt, j->here_n);
  }

  if (s->nloc_all == 0) {
    out(j, "  locals: none");
    return;
  }
  out(j, "  locals: %llu%s", (unsigned long long)s->nloc_all, s->state == TL__ABANDONED ? " (held when abandoned)" : "");
  for (uint32_t i = 0; i < s->nloc; i++) {
    key_label(s->loc[i].key, NULL, key, sizeof key);
    out(j, "    %s = %p", key, s->loc[i].value);
  }
  if (s->nloc_all > s->nloc)
    out(j, "    ... and %llu more", (unsigned long long)(s->nloc_all - s->nloc));
}

/* Runs with R.lock held. */
static void job_body(struct job *j)
{
  const char *what = j->kind == LEAK ? "leak" : "dump";
  struct collect c = {.j = j};
  R.nsnaps = 0;
  j->tasks = j->locals = 0;
  if (tl__task_foreach(collect_task, &c) != 0) {
    out(j, "%s report: the task registry is busy on this thread; no report", what);
    return;
  }
  tl__task_foreach(shared_task, NULL);
  /* Oldest first: the live list holds the newest first. */
  for (int i = 1; i < R.nsnaps; i++)
    for (int k = i; k > 0 && R.snaps[k - 1].id > R.snaps[k].id; k--) {
      struct snap tmp = R.snaps[k];
      R.snaps[k] = R.snaps[k - 1];
      R.snaps[k - 1] = tmp;
    }

  /* Abandoned tasks beyond those task.c keeps are counted, not shown. */
  uint64_t unkept = 0;
  if (tl__opt.leaks) {
    struct tl__stats st = {0};
    tl__task_stats(&st);
    if (st.abandoned > c.kept)
      unkept = st.abandoned - c.kept;
  }
  uint64_t ndrops = atomic_load_explicit(&R.ndrops, memory_order_relaxed);
  uint64_t tasks = j->tasks + unkept;
  uint64_t locals = j->locals + ndrops;

  if (j->kind == DUMP || tasks > 0 || locals > 0) {
    out(j, "%s report of process %d: %llu %s tasks, %llu locals", what, (int)j->pid, (unsigned long long)tasks,
        j->kind == LEAK ? "leaked" : "live", (unsigned long long)locals);
    for (int i = 0; i < R.nsnaps; i++)
      describe_task(j, &R.snaps[i]);
    if (j->tasks > (uint64_t)R.nsnaps)
      out(j, "... and %llu more tasks, not described", (unsigned long long)(j->tasks - (uint64_t)R.nsnaps));
    if (unkept > 0)
      out(j, "... and %llu more abandoned tasks, not kept for the report (at most %d are)",
          (unsigned long long)unkept, TL__KEEP_MAX);
    describe_drops(j, ndrops);
  }
  j->tasks = tasks;
  j->locals = locals;
  out(j, "%s summary: %llu tasks, %llu locals", what, (unsigned long long)tasks, (unsigned long long)locals);
}

static void job_entry(void)
{
  job_body(R.job);
}

/* Whether the caller's stack is too small for the report: exit() may run
 * on a coroutine stack of a few kilobytes. */
static int small_stack(const struct job *j)
{
  const struct tl__task *t = j->here;
  uintptr_t sp = tl__sp();
  return t != NULL && tl__in_stack(t, sp) && sp - t->lo < JOB_STACK_NEED;
}

/* Runs the job, on a stack of its own when the caller's is small. The
 * switch uses libc's functions directly: the tracker never sees it, and
 * nothing on the job's stack asks which task runs. */
static void run_job(struct job *j)
{
  void *stack = MAP_FAILED;
  if (small_stack(j) && tl__real_makecontext != NULL && tl__real_swapcontext != NULL)
    stack = mmap(NULL, JOB_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED || getcontext(&R.job_ctx) != 0) {
    job_body(j);
  } else {
    R.job = j;
    R.job_ctx.uc_stack.ss_sp = stack;
    R.job_ctx.uc_stack.ss_size = JOB_STACK_SIZE;
    R.job_ctx.uc_link = &R.job_back;
    tl__real_makecontext(&R.job_ctx, job_entry, 0);
    tl__real_swapcontext(&R.job_back, &R.job_ctx);
    R.job = NULL;
  }
  if (stack != MAP_FAILED)
    munmap(stack, JOB_STACK_SIZE);
}

/* Sets up a job for the calling thread and takes the report lock; returns
 * EDEADLK when this thread is already writing a report. here: capture the
 * calling stack (reports show where they were asked for; the stats line
 * alone does not need it). */
static int job_begin(struct job *j, enum kind kind, int fd, int here)
{
  memset(j, 0, sizeof *j);
  j->kind = kind;
  j->fd = fd;
  j->pid = getpid();
  j->tag = atomic_load_explicit(&R.forked, memory_order_relaxed);
  struct tl__thread *th = tl__tls;
  if ((uintptr_t)th > 1) {
    j->self = th;
    j->here = th->override != NULL ? th->override : th->current;
  }
  /* The calling stack, captured here, before the report's own frames. */
  if (here)
    j->here_n = tl__bt_here(j->here_bt, TL__BT_MAX);
  return tl__lock(&R.lock);
}

__attribute__((visibility("default"))) int tl_dump(int fd)
{
  if (fd < 0 || fcntl(fd, F_GETFL) < 0)
    return EBADF;
  tl__init();
  struct job j;
  int err = job_begin(&j, DUMP, fd, 1);
  if (err != 0)
    return err;
  run_job(&j);
  tl__unlock(&R.lock);
  return j.err;
}

/* With TASKLOCAL_LEAKS=error, the exit status becomes 23. The program's
 * buffered stdout would be lost by _exit (glibc flushes stdio after the
 * ELF destructors, where this runs), so it is flushed first, without
 * waiting for a thread that holds it. */
static void exit_leaked(void)
{
  if (ftrylockfile(stdout) == 0) {
    fflush_unlocked(stdout);
    funlockfile(stdout);
  }
  tl__real_exit(23);
}

static void stats_line(struct job *j)
{
  struct tl__stats st = {0};
  tl__task_stats(&st);
  out(j, "stats: created=%llu finished=%llu abandoned=%llu switches=%llu untracked=%llu peak=%llu keys=%llu",
      (unsigned long long)st.created, (unsigned long long)st.finished, (unsigned long long)st.abandoned,
      (unsigned long long)st.switches, (unsigned long long)st.untracked, (unsigned long long)st.peak,
      (unsigned long long)tl__keys_created());
}

/* A process that leaves by _exit skips the exit handlers (stress-ng's
 * forked workers do): the stats line, when asked for, is written here
 * instead. The leak report is not: like LeakSanitizer, which checks only
 * at exit, it would list everything a forked child inherited and never
 * meant to end. */
void tl__report_quick_exit(void)
{
  if (!tl__opt.stats || atomic_exchange_explicit(&R.exited, 1, memory_order_relaxed))
    return;
  struct job j;
  if (job_begin(&j, LEAK, tl__options_log_fd(), 0) != 0)
    return;
  stats_line(&j);
  tl__unlock(&R.lock);
}

void tl__report_exit(void)
{
  if (atomic_exchange_explicit(&R.exited, 1, memory_order_relaxed))
    return;
  if (!tl__opt.leaks && !tl__opt.stats)
    return;
  struct job j;
  if (job_begin(&j, LEAK, tl__options_log_fd(), 1) != 0)
    return;
  if (tl__opt.leaks)
    run_job(&j);
  if (tl__opt.stats)
    stats_line(&j);
  tl__unlock(&R.lock);
  if (tl__opt.leaks == 2 && (j.tasks > 0 || j.locals > 0))
    exit_leaked();
}

/* ------------------------------------------------------------------------
 * The dump signal
 *
 * Unwinding and symbol lookups take locks (the dynamic loader's) and may
 * allocate, so they cannot run in a signal handler. The handler writes one
 * byte into a pipe; a thread started at load, only when the option is set,
 * waits on the pipe and writes the dump. Signals that arrive during a dump
 * are merged into the next one.
 * ------------------------------------------------------------------------ */

static void on_dump_signal(int sig)
{
  (void)sig;
  int saved = errno;
  char b = 1;
  /* A program that closes every descriptor may have reused the pipe's
   * number for a file of its own: fstat (async-signal-safe) tells. A full
   * pipe already holds a request, so the write's result does not matter. */
  struct stat st;
  int fd = R.pipe_wr;
  if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == R.pipe_ino && S_ISFIFO(st.st_mode)) {
    ssize_t ignored = write(fd, &b, 1);
    (void)ignored;
  }
  errno = saved;
}

static void *dump_thread(void *arg)
{
  int fd = (int)(intptr_t)arg;
  char buf[64];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      tl_dump(tl__options_log_fd());
      tl__trace_dump();
    }
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(fd);
  return NULL;
}

static void dump_start(void)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    tl__message("TASKLOCAL_DUMP_SIGNAL: cannot make a pipe: %s; no dumps", strerrordesc_np(errno));
    return;
  }
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  /* The thread blocks every signal, so that the program's signals keep
   * going to the program's threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 1u << 20);
  pthread_t tid;
  int err = pthread_create(&tid, &attr, dump_thread, (void *)(intptr_t)p[0]);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    close(p[0]);
    close(p[1]);
    tl__message("TASKLOCAL_DUMP_SIGNAL: cannot start the dump thread: %s; no dumps", strerrordesc_np(err));
    return;
  }
  pthread_setname_np(tid, "tasklocal-dump");
  struct stat st;
  int old_wr = R.pipe_wr;
  R.pipe_ino = fstat(p[1], &st) == 0 ? st.st_ino : 0;
  R.pipe_wr = p[1];
  if (old_wr >= 0)
    close(old_wr);
}

static void install_dump_signal(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_dump_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(tl__opt.dump_signal, &sa, NULL) != 0)
    tl__message("TASKLOCAL_DUMP_SIGNAL: cannot handle signal %d: %s", tl__opt.dump_signal, strerrordesc_np(errno));
}

static void fork_parent(void)
{
  atomic_store_explicit(&R.forked, 1, memory_order_relaxed);
}

/* The child has no dump thread, and its report lock may have been held by
 * a thread it does not have. Its dump signals must reach its own thread:
 * the pipe shared with the parent is replaced. */
static void fork_child(void)
{
  atomic_store_explicit(&R.forked, 1, memory_order_relaxed);
  tl__lock_reset(&R.lock);
  tl__bt_atfork_child();
  if (tl__opt.dump_signal)
    dump_start();
}

__attribute__((constructor)) static void report_load(void)
{
  tl__init();
  pthread_atfork(NULL, fork_parent, fork_child);
  if (tl__opt.dump_signal) {
    dump_start();
    install_dump_signal();
  }
}
