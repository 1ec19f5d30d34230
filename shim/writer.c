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
#include "ownstack.h"
#include "task/identity.h"

#include <string.h>
#include <unistd.h>


static struct {
  struct tl__lock lock;                    /* one job at a time */
  _Atomic int forked;                      /* this process forked, or is a forked child */
} writer;

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
  tl__run_on_own_stack(j->here, TL__JOB_STACK_NEED, job_call, &c);
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
  j->tag = atomic_load_explicit(&writer.forked, memory_order_relaxed);
  struct tl__thread *th = tl__tls;
  if ((uintptr_t)th > 1) {
    j->self = th;
    /* Checked against the stack pointer, as a read is: exit() may be
     * called on the main stack after a siglongjmp out of a coroutine (QEMU
     * and OpenSSL switch that way), which the tracker did not see. */
    j->here = th->override != NULL ? th->override : tl__task_now();
  }
  /* The calling stack, captured here, before the report's own frames. */
  if (here)
    j->here_n = tl__bt_here(j->here_bt, TL__BT_MAX);
  return tl__lock(&writer.lock);
}

void tl__job_end(struct tl__job *j)
{
  (void)j;
  tl__unlock(&writer.lock);
}

/* fork: from then on lines carry the pid; in the child, the lock may have
 * been held by a thread it does not have. */
void tl__writer_atfork(int phase)
{
  if (phase < 0)
    return;
  atomic_store_explicit(&writer.forked, 1, memory_order_relaxed);
  if (phase > 0) {
    tl__lock_reset(&writer.lock);
  }
}
