/* Writing a report (the leak report, a dump, the stats line): one job at
 * a time, whose lines go to one descriptor, each written with write(2) by
 * tl__vline (message.c), never through stdio or malloc, whose locks and
 * state belong to the host. Once the process has forked, every line ends
 * with " (pid N)", so that the reports of a parent and its children can be
 * told apart in one stream. A job runs on a stack of its own when the
 * caller's is small: exit() may be called on a coroutine stack of a few
 * kilobytes.
 */
#include "internal.h"
#include "writer.h"
#include "message.h"
#include "real.h"
#include "lock.h"
#include "backtrace.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A job runs on a stack of its own when less than this is left on the
 * caller's. */
#define JOB_STACK_NEED (128u << 10)
#define JOB_STACK_SIZE (1u << 20)

static struct {
  struct tl__lock lock;                    /* one job at a time */
  _Atomic int forked;                      /* this process forked, or is a forked child */
  struct tl__lock run_lock;                /* the stack of its own: one user at a time */
  void (*fn)(void *arg);                   /* what runs there */
  void *arg;
  ucontext_t back, ctx;
} W;

void tl__job_line(struct tl__job *j, const char *fmt, ...)
{
  char tag[32] = "";
  if (j->tag)
    tl__formatf(tag, sizeof tag, " (pid %d)", (int)j->pid);
  va_list ap;
  va_start(ap, fmt);
  int err = tl__vline(j->fd, tag, fmt, ap);
  va_end(ap);
  if (err != 0 && j->err == 0)
    j->err = err;
}

static void run_entry(void)
{
  W.fn(W.arg);
}

/* Whether less than JOB_STACK_NEED is left on the stack of task t, which
 * runs the caller: exit() may run on a coroutine stack of a few
 * kilobytes. */
static int small_stack(const struct tl__task *t)
{
  uintptr_t sp = tl__sp();
  return t != NULL && tl__in_stack(t, sp) && sp - t->lo < JOB_STACK_NEED;
}

/* Runs fn(arg), on a stack of its own when the caller's (that of task
 * here) is small: the reports and the trace file are written this way.
 * The switch uses libc's functions directly: the tracker never sees it,
 * and nothing on that stack asks which task runs. */
void tl__run_on_own_stack(const struct tl__task *here, void (*fn)(void *arg), void *arg)
{
  void *stack = MAP_FAILED;
  if (small_stack(here) && tl__real_makecontext != NULL && tl__real_swapcontext != NULL &&
      tl__lock(&W.run_lock) == 0) {
    stack = mmap(NULL, JOB_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
      tl__unlock(&W.run_lock);
  }
  if (stack == MAP_FAILED) {
    fn(arg);
    return;
  }
  if (getcontext(&W.ctx) != 0) {
    fn(arg);
  } else {
    W.fn = fn;
    W.arg = arg;
    W.ctx.uc_stack.ss_sp = stack;
    W.ctx.uc_stack.ss_size = JOB_STACK_SIZE;
    W.ctx.uc_link = &W.back;
    tl__real_makecontext(&W.ctx, run_entry, 0);
    tl__real_swapcontext(&W.back, &W.ctx);
  }
  munmap(stack, JOB_STACK_SIZE);
  tl__unlock(&W.run_lock);
}

struct job_call {
  struct tl__job *j;
  void (*body)(struct tl__job *j);
};

static void job_call(void *arg)
{
  struct job_call *c = arg;
  c->body(c->j);
}

/* Runs body(j), on a stack of its own when the caller's is small. */
void tl__job_run(struct tl__job *j, void (*body)(struct tl__job *j))
{
  struct job_call c = {j, body};
  tl__run_on_own_stack(j->here, job_call, &c);
}

/* Sets up a job for the calling thread and takes the writer's lock;
 * returns EDEADLK when this thread is already writing a report. here:
 * capture the calling stack (reports show where they were asked for; the
 * stats line alone does not need it). */
int tl__job_begin(struct tl__job *j, enum tl__job_kind kind, int fd, int here)
{
  memset(j, 0, sizeof *j);
  j->kind = kind;
  j->fd = fd;
  j->pid = getpid();
  j->tag = atomic_load_explicit(&W.forked, memory_order_relaxed);
  struct tl__thread *th = tl__tls;
  if ((uintptr_t)th > 1) {
    j->self = th;
    j->here = th->override != NULL ? th->override : th->current;
  }
  /* The calling stack, captured here, before the report's own frames. */
  if (here)
    j->here_n = tl__bt_here(j->here_bt, TL__BT_MAX);
  return tl__lock(&W.lock);
}

void tl__job_end(struct tl__job *j)
{
  (void)j;
  tl__unlock(&W.lock);
}

/* fork: from then on lines carry the pid; in the child, the lock may have
 * been held by a thread it does not have. */
void tl__writer_atfork(int phase)
{
  if (phase < 0)
    return;
  atomic_store_explicit(&W.forked, 1, memory_order_relaxed);
  if (phase > 0) {
    tl__lock_reset(&W.lock);
    tl__lock_reset(&W.run_lock);
  }
}
