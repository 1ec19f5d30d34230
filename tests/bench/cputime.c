/* Helper of make bench's real-program rows: runs a command and appends
 * what it cost to a file, as one line "WALL CPU" in seconds, CPU being
 * user plus system time of the command and of every descendant it waited
 * for (wait4's accounting). On a machine that other users load, the CPU
 * time of a run moves far less than its wall time, which counts the time
 * spent waiting for a core.
 *
 *   cputime FILE COMMAND [ARGS...]
 *
 * The command's status is cputime's status (128 + N when signal N ended
 * it); nothing is written when it could not be started.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: cputime FILE COMMAND [ARGS...]\n");
    return 2;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) {
    perror("cputime: fork");
    return 127;
  }
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror("cputime: exec");
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) != pid) {
    perror("cputime: wait4");
    return 127;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (rc == 127)
    return rc;
  FILE *f = fopen(argv[1], "a");
  if (f == NULL) {
    perror("cputime: open");
    return 127;
  }
  fprintf(f, "%.6f %.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
          seconds(ru.ru_utime) + seconds(ru.ru_stime));
  fclose(f);
  return rc;
}
