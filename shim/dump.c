/* The live-task dump: tl_dump(fd), and the dump signal
 * (TASKLOCAL_DUMP_SIGNAL), which writes the same report whenever it
 * arrives.
 */
#include "internal.h"
#include "dump.h"
#include "message.h"
#include "options.h"
#include "writer.h"
#include "report.h"
#include "tracefile.h"
#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
  int pipe_wr;                             /* the dump signal's handler -> the dump thread */
  ino_t pipe_ino;                          /* that pipe, to tell it from a reused number */
} dumpsig = {.pipe_wr = -1};

/* tl_dump: the report of the live tasks, written to fd now. */
int tl__dump(int fd)
{
  if (fd < 0 || fcntl(fd, F_GETFL) < 0)
    return EBADF;
  struct tl__job j;
  int err = tl__job_begin(&j, TL__JOB_DUMP, fd, 1);
  if (err != 0)
    return err;
  tl__job_run(&j, tl__report_body);
  tl__job_end(&j);
  return j.err;
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
  int fd = dumpsig.pipe_wr;
  if (fd >= 0 && fstat(fd, &st) == 0 && st.st_ino == dumpsig.pipe_ino && S_ISFIFO(st.st_mode)) {
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
      tl__dump(tl__options_log_fd());
      tl__trace_dump();
    } else if (n == 0 || errno != EINTR)
      break;
  }
  close(fd);
  return NULL;
}

#define DUMP_STACK (1u << 20)

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
  /* Its stack comes from the library's pages, so that the leak scan
   * (reach.c) does not read it as the program's: its dead frames hold what
   * the last dump's scan held, every task's stack and context among it. A
   * forked child's thread takes the parent's stack, whose thread the child
   * does not have. */
  static void *stack;
  if (stack == NULL && (stack = tl__pages(DUMP_STACK)) != NULL)
    mprotect(stack, 4096, PROT_NONE);      /* a guard page */
  if (stack == NULL || pthread_attr_setstack(&attr, (char *)stack + 4096, DUMP_STACK - 4096) != 0)
    pthread_attr_setstacksize(&attr, DUMP_STACK);
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
  int old_wr = dumpsig.pipe_wr;
  dumpsig.pipe_ino = fstat(p[1], &st) == 0 ? st.st_ino : 0;
  dumpsig.pipe_wr = p[1];
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

/* fork: the child has no dump thread. Its dump signals must reach its own
 * thread: the pipe shared with the parent is replaced. */
void tl__dump_atfork(int phase)
{
  if (phase > 0 && tl__opt.dump_signal)
    dump_start();
}

/* At load: the dump thread and the signal's handler, when asked for. */
void tl__dump_setup(void)
{
  if (tl__opt.dump_signal) {
    dump_start();
    install_dump_signal();
  }
}
