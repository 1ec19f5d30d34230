/* The reports at the end of the process: at exit, the leak report
 * (TASKLOCAL_LEAKS, doc/reports.md, with exit status 23 when it is "error") and
 * the stats line (TASKLOCAL_STATS); at _exit, the stats line alone.
 */
#include "internal.h"
#include "exitreport.h"
#include "options.h"
#include "real.h"
#include "task/registry.h"
#include "keys.h"
#include "writer.h"
#include "report.h"

#include <stdio.h>

static struct {
  _Atomic int exited;                      /* the exit report ran */
} exitrep;

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

static void stats_line(struct tl__job *j)
{
  struct tl__stats st = {0};
  tl__task_stats(&st);
  tl__job_line(j, "stats: created=%llu finished=%llu abandoned=%llu released=%llu switches=%llu untracked=%llu peak=%llu keys=%llu",
      (unsigned long long)st.created, (unsigned long long)st.finished, (unsigned long long)st.abandoned,
      (unsigned long long)st.released,
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
  if (!tl__opt.stats || atomic_exchange_explicit(&exitrep.exited, 1, memory_order_relaxed))
    return;
  struct tl__job j;
  if (tl__job_begin(&j, TL__JOB_LEAK, tl__options_log_fd(), 0) != 0)
    return;
  stats_line(&j);
  tl__job_end(&j);
}

void tl__report_exit(void)
{
  if (atomic_exchange_explicit(&exitrep.exited, 1, memory_order_relaxed))
    return;
  if (!tl__opt.leaks && !tl__opt.stats)
    return;
  struct tl__job j;
  if (tl__job_begin(&j, TL__JOB_LEAK, tl__options_log_fd(), 1) != 0)
    return;
  if (tl__opt.leaks)
    tl__job_run(&j, tl__report_body);
  if (tl__opt.stats)
    stats_line(&j);
  tl__job_end(&j);
  if (tl__opt.leaks == 2 && (j.tasks > 0 || j.locals > 0))
    exit_leaked();
}
