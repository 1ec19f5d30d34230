/* The leak scan's time at exit (doc/reports.md): 100,000 parked tasks and
 * 1 GiB of heap, all reachable, so that the scan reads all of it.
 *
 *   bench_scan /path/to/libtasklocal.so
 *
 * The program runs itself as a child under the shim with TASKLOCAL_LEAKS=1
 * and TASKLOCAL_VERBOSE=1; the child makes the tasks (never started, their
 * contexts in a global array, their stacks carved from one block) and the
 * heap (16,384 blocks of 64 KiB, each written, the first words of each
 * pointing to the next block), and exits. The scan prints its own time
 * ("leak scan: ... in N ms"), which is read back and printed, with the
 * child's whole exit (the report included) as seen from outside.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define TASKS 100000
#define TASK_STACK 2048
#define BLOCKS 16384
#define BLOCK (64 * 1024)

static ucontext_t ctx[TASKS];
static void **heap[BLOCKS];
static ucontext_t main_ctx;

static void task(void)
{
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int child(void)
{
  char *stacks = malloc((size_t)TASKS * TASK_STACK);
  if (stacks == NULL)
    return 1;
  for (int i = 0; i < TASKS; i++) {
    getcontext(&ctx[i]);
    ctx[i].uc_stack.ss_sp = stacks + (size_t)i * TASK_STACK;
    ctx[i].uc_stack.ss_size = TASK_STACK;
    ctx[i].uc_link = &main_ctx;
    makecontext(&ctx[i], task, 0);
  }
  for (int i = 0; i < BLOCKS; i++) {
    heap[i] = malloc(BLOCK);
    if (heap[i] == NULL)
      return 1;
    memset(heap[i], 0x5a, BLOCK);
    if (i > 0)
      heap[i - 1][0] = heap[i];
  }
  /* The exit report begins after this line. */
  printf("%.6f\n", now_s());
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--child") == 0)
    return child();
  if (argc < 2) {
    fprintf(stderr, "usage: %s /path/to/libtasklocal.so\n", argv[0]);
    return 2;
  }
  /* One pipe for both streams, read to its end: the report (on stderr)
   * follows the child's timestamp (on stdout). */
  int out[2];
  if (pipe(out) != 0)
    return 1;
  pid_t pid = fork();
  if (pid == 0) {
    char preload[4096];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", argv[1]);
    char *env[] = {preload, "TASKLOCAL_LEAKS=1", "TASKLOCAL_VERBOSE=1", "TASKLOCAL_BACKTRACE=0", NULL};
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(out[0]);
    char *args[] = {argv[0], "--child", NULL};
    execve("/proc/self/exe", args, env);
    _exit(127);
  }
  close(out[1]);
  static char ebuf[1 << 20];
  size_t en = 0;
  ssize_t k;
  char rest[4096];
  while ((k = read(out[0], en < sizeof ebuf - 1 ? ebuf + en : rest,
                   en < sizeof ebuf - 1 ? sizeof ebuf - 1 - en : sizeof rest)) > 0)
    if (en < sizeof ebuf - 1)
      en += (size_t)k;
  ebuf[en] = '\0';
  int status;
  waitpid(pid, &status, 0);
  double end = now_s(), start = 0;
  for (const char *p = ebuf; p != NULL && *p; p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : NULL)
    if (*p >= '0' && *p <= '9') {
      start = atof(p);
      break;
    }
  const char *line = strstr(ebuf, "tasklocal: leak scan: ");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || line == NULL) {
    fprintf(stderr, "bench_scan: the child failed (status %d):\n%.2000s\n", status, ebuf);
    return 1;
  }
  const char *nl = strchr(line, '\n');
  const char *what = line + strlen("tasklocal: leak scan: ");
  printf("leak scan at exit, %d parked tasks and %d MiB of heap: %.*s\n", TASKS, BLOCKS * (BLOCK >> 10) >> 10,
         (int)(nl != NULL ? nl - what : (long)strlen(what)), what);
  printf("  the whole exit, report included: %.0f ms\n", (end - start) * 1e3);
  return 0;
}
