/* Cost of task creation with creation backtraces on and off
 * (TASKLOCAL_BACKTRACE), measured side by side in one run.
 *
 *   bench_backtrace /path/to/libtasklocal.so
 *
 * The program runs itself as a child three ways, five times each,
 * interleaved: without the shim, under the shim with TASKLOCAL_BACKTRACE=0,
 * and with TASKLOCAL_BACKTRACE=1. Each child times a task's whole life
 * (makecontext from 8 frames deep, switch in, return through uc_link) over
 * many tasks and prints nanoseconds per task; the best of the five runs of
 * each way is kept. The report prints those, the extra cost of capturing a
 * backtrace, and the ratio on/off.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define TASKS 200000
#define RUNS 5
#define DEPTH 8

static ucontext_t main_ctx, task_ctx;
static char stack[64 * 1024];
static volatile unsigned long sink;

static void task(void)
{
  sink++;
}

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Makes and runs one task from depth frames down, as a scheduler called
 * from deeper code would. */
__attribute__((noinline)) static void spawn_at(int depth)
{
  if (depth > 0) {
    spawn_at(depth - 1);
    __asm__ volatile("");
    return;
  }
  getcontext(&task_ctx);
  task_ctx.uc_stack.ss_sp = stack;
  task_ctx.uc_stack.ss_size = sizeof stack;
  task_ctx.uc_link = &main_ctx;
  makecontext(&task_ctx, task, 0);
  swapcontext(&main_ctx, &task_ctx);
}

static int child(void)
{
  for (int i = 0; i < TASKS / 10; i++)
    spawn_at(DEPTH);
  double t0 = now_ns();
  for (int i = 0; i < TASKS; i++)
    spawn_at(DEPTH);
  printf("%.1f\n", (now_ns() - t0) / TASKS);
  return 0;
}

/* Runs this program as a child with env and returns its ns per task. */
static double measure(const char *self, const char *preload, const char *backtrace)
{
  int p[2];
  if (pipe(p) != 0)
    exit(1);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    unsetenv("LD_PRELOAD");
    unsetenv("TASKLOCAL_LEAKS");
    if (preload != NULL)
      setenv("LD_PRELOAD", preload, 1);
    if (backtrace != NULL)
      setenv("TASKLOCAL_BACKTRACE", backtrace, 1);
    execl(self, self, "--child", (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  char buf[64] = {0};
  ssize_t n = read(p[0], buf, sizeof buf - 1);
  close(p[0]);
  int status;
  waitpid(pid, &status, 0);
  if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "bench_backtrace: a child run failed\n");
    exit(1);
  }
  return strtod(buf, NULL);
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--child") == 0)
    return child();
  if (argc < 2) {
    fprintf(stderr, "usage: bench_backtrace /path/to/libtasklocal.so\n");
    return 2;
  }
  const char *lib = argv[1];
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return 1;
  self[n] = '\0';
  double best[3] = {1e30, 1e30, 1e30};
  for (int r = 0; r < RUNS; r++) {
    double v[3] = {measure(self, NULL, NULL), measure(self, lib, "0"), measure(self, lib, "1")};
    for (int i = 0; i < 3; i++)
      if (v[i] < best[i])
        best[i] = v[i];
  }
  printf("task life (makecontext %d frames deep, switch in, return), best of %d runs of %d tasks:\n", DEPTH, RUNS,
         TASKS);
  printf("  %-32s %8.1f ns\n", "without the shim", best[0]);
  printf("  %-32s %8.1f ns\n", "shim, TASKLOCAL_BACKTRACE=0", best[1]);
  printf("  %-32s %8.1f ns\n", "shim, TASKLOCAL_BACKTRACE=1", best[2]);
  printf("  %-32s %8.1f ns per task\n", "backtrace capture", best[2] - best[1]);
  printf("  ratio backtrace on / off: %.2fx\n", best[2] / best[1]);
  return 0;
}
