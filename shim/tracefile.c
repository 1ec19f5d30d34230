/* The trace file, at TASKLOCAL_TRACE's path (%p: the pid), and when it is
 * written: at process exit (only when a task was made or a switch seen, so
 * that a launcher sharing the variable does not overwrite its child's
 * file), at _exit, on the dump signal (by the dump thread, not in the
 * handler), and by tl_trace_flush. One writer at a time, under the
 * recording's lock, on a stack of its own when the caller's is small.
 */
#include "internal.h"
#include "tracefile.h"
#include "message.h"
#include "options.h"
#include "real.h"
#include "lock.h"
#include "trace.h"
#include "traceread.h"
#include "tracejson.h"
#include "writer.h"
#include "ownstack.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>


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
  _Atomic int warned_file, exit_done;
} once;

static void write_call(void *arg)
{
  write_file(arg);
}

/* Runs write_file, on a stack of its own when the caller's is small: exit()
 * may be called on a coroutine's stack of a few kilobytes (writer.c). */
static void write_job(struct job *j)
{
  struct tl__thread *th = tl__tls;
  tl__run_on_own_stack((uintptr_t)th > 1 ? th->current : NULL, TL__JOB_STACK_NEED, write_call, j);
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
  if (j.err > 0 && !atomic_exchange_explicit(&once.warned_file, 1, memory_order_relaxed))
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
      !atomic_exchange_explicit(&once.exit_done, 1, memory_order_relaxed))
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
  atomic_store_explicit(&once.exit_done, 0, memory_order_relaxed);
  atomic_store_explicit(&once.warned_file, 0, memory_order_relaxed);
}
