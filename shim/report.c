/* What a report says: the leak report at exit (exitreport.c) and the
 * live-task dump (dump.c) list the tasks, their locals and the values
 * dropped at tasks' ends (drops.c); writer.c writes the lines. The format
 * of both, text and JSON, is in doc/reports.md.
 *
 * What leaked:
 * - a made task that never finished: never started, suspended at exit,
 *   running at exit (exit() was called in it, or it runs on another
 *   thread), or abandoned (its ucontext_t was made again; task/life.c keeps
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
 * A report is made in three steps, each a function of its own, in a file
 * of its own under shim/report/:
 * - tl__report_gather_tasks (report/gather.c) copies what the report shows of every task into a record,
 *   walking the registry under its lock only for that; then, without the
 *   lock, reads the creation backtraces, interned in a table of unique
 *   backtraces (a task refers to one by number, as LeakSanitizer's stack
 *   depot does), and unwinds the suspended tasks (what the program may
 *   have freed since, saved contexts, stacks and backtraces, is read with
 *   fault-safe reads, in batches);
 * - tl__report_group_tasks (report/group.c) puts alike tasks together (struct like: a field added
 *   there, such as a task's kind, joins the key) and orders the groups,
 *   biggest first;
 * - tl__report_print_text (report/text.c) or tl__report_print_json
 *   (report/json.c) writes at most TASKLOCAL_REPORT_MAX groups,
 *   symbolized then (symbolize.c), and the summary, which counts every
 *   task.
 * A program may have millions of tasks: the records, the backtraces and
 * the groups live in one anonymous mapping (report/scratch.c) made for the report and
 * unmapped after it, never in the program's heap, and the work is
 * O(n log n). Only the symbolization of the groups described allocates
 * (libdw's).
 */
#include "internal.h"
#include "report.h"
#include "report/scratch.h"
#include "report/gather.h"
#include "report/group.h"
#include "report/text.h"
#include "report/json.h"
#include "options.h"
#include "task/registry.h"
#include "drops.h"
#include "writer.h"
#include "symbolize.h"
#include "reach.h"

/* ------------------------------------------------------------------------
 * The report
 * ------------------------------------------------------------------------ */

/* The body of a leak report or a dump, run by tl__job_run with the
 * writer's lock held. */
void tl__report_body(struct tl__job *j)
{
  struct totals t = {.what = j->kind == TL__JOB_LEAK ? "leak" : "dump"};
  struct gather g = {0};
  j->tasks = j->locals = 0;
  if (tl__report_gather_tasks(j, &g) != 0) {
    tl__job_line(j, "%s report: the task registry is busy on this thread; no report", t.what);
    tl__report_scratch_unmap();
    return;
  }
  tl__report_group_tasks();

  /* Abandoned tasks beyond those task/life.c keeps are counted, not shown
   * (and, not seen by the scan, taken as parked). */
  if (tl__opt.leaks && tl__opt.leak_kinds == TL__KINDS_ALL) {
    struct tl__stats st = {0};
    tl__task_stats(&st);
    if (st.abandoned > tl__report_scratch.kept)
      t.unkept = st.abandoned - tl__report_scratch.kept;
  }
  t.leaked = g.leaked;
  t.parked = g.parked + t.unkept;
  t.undecided = tl__reach_undecided();
  t.drops = tl__drops_count();
  t.tasks = j->tasks + t.unkept;
  t.locals = j->locals + t.drops;
  uint32_t ngroups = tl__report_scratch.ngroups > 0 ? tl__report_scratch.ngroups - 1 : 0;
  uint32_t max = tl__opt.report_max > 0 ? (uint32_t)tl__opt.report_max : 0;
  t.described = ngroups < max ? ngroups : max;
  t.undescribed = j->tasks;
  for (uint32_t i = 0; i < t.described; i++)
    t.undescribed -= tl__report_scratch.groups[tl__report_scratch.group_order[i]].count;

  /* libdw allocates: not when even the report's own memory was short. */
  tl__sym_begin(tl__report_scratch.map != NULL);
  if (tl__opt.report_json)
    tl__report_print_json(j, &t);
  else
    tl__report_print_text(j, &t);
  tl__sym_end();
  tl__report_scratch_unmap();
  j->tasks = t.tasks;
  j->locals = t.locals;
}
