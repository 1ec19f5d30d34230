/* The timing loop that the benchmarks of whole operations share
 * (ucbench.c, tlsbench.c): a loop of n operations is repeated in ROUNDS
 * chunks of about CHUNK_NS each, and the fastest chunk gives the cost per
 * operation, the best estimate on a machine that other users load at the
 * same time. Each program is one file built on its own: the functions are
 * static. */
#ifndef TL_BENCH_TIMELOOP_H
#define TL_BENCH_TIMELOOP_H

#include <time.h>

#define ROUNDS 10
#define CHUNK_NS 4e6

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Calibrates a chunk to CHUNK_NS, then returns the fastest of ROUNDS
 * chunks in ns per iteration; *total (when not NULL) counts every
 * iteration run. */
static double time_loop(void (*loop)(long n), long *total)
{
  long n = 100, all = 0;
  for (;;) {
    double t0 = now_ns();
    loop(n);
    all += n;
    if (now_ns() - t0 >= CHUNK_NS || n > (1L << 40))
      break;
    n *= 2;
  }
  double best = 1e300;
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_ns();
    loop(n);
    double ns = (now_ns() - t0) / (double)n;
    all += n;
    if (ns < best)
      best = ns;
  }
  if (total != NULL)
    *total = all;
  return best;
}

#endif /* TL_BENCH_TIMELOOP_H */
