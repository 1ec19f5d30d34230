/* Leaked or parked (doc/reports.md): of the tasks that never finished and
 * were never released, which ones nothing can resume.
 *
 * A task is resumed through its ucontext_t, and only a program that still
 * holds a pointer to that context (or to the heap block that holds it), or
 * into the task's stack, can do it. So, as LeakSanitizer does for heap
 * blocks and Go's goroutine leak profile for blocked goroutines, the scan
 * flood-fills the memory reachable from the roots, taking every aligned
 * word as a pointer:
 * - roots: every writable mapping of the process (globals of every loaded
 *   object, thread stacks with their TLS blocks, the program's own mmap'd
 *   arenas), less what is not the program's: the library's own data and
 *   pages, malloc's arenas (whose blocks are read only when reached), the
 *   stacks of the candidate tasks, and the part of the calling stack below
 *   the scan; the stacks of tasks running on any thread, from the calling
 *   one's stack pointer up for its own; the values the library keeps for
 *   the program (thread-scope and custom-scope values, the roots' locals,
 *   keys' attributes);
 * - a heap block is read when a reached word points into it;
 * - a candidate task (made, never started or suspended or abandoned) is
 *   reached when a reached word points into its ucontext_t, into the heap
 *   block holding that context or its stack, or into its stack; its stack
 *   (from its saved stack pointer up) and its locals are then read too.
 * What is never reached is the fixed point the kinds need: a task referred
 * to only by its own stack, or by the stacks of other unreached tasks,
 * stays unreached, and is leaked; every other unfinished task is parked.
 *
 * A task called leaked must never be resumable, so whenever the scan
 * cannot be sure of what it saw, no task is called leaked: when the heap's
 * blocks are not all known (leak checking was off at start, a block was
 * missed), when a root cannot be read, and when another thread switched
 * tasks or allocated while the scan ran.
 *
 * Other threads are not stopped (the library has no way to stop them that
 * is safe for the host); every read goes through tl__safe_read, so that
 * memory unmapped meanwhile is an error, not a fault. All the scan's
 * memory is mmap'd and given back at the end of the report.
 *
 * The scan's parts are in shim/reach/: scan.c (its state, its memory and
 * the flood fill), roots.c (the roots, and the holes that are not roots)
 * and classify.c (one scan, from the tasks copied to each one reached or
 * not); this file runs it for a report and answers for its kinds.
 */
#include "internal.h"
#include "thread.h"
#include "reach.h"
#include "reach/scan.h"
#include "reach/roots.h"
#include "reach/classify.h"
#include "options.h"
#include "task/registry.h"
#include "heapblocks.h"
#include "alloc.h"
#include "ownstack.h"
#include "suppress.h"
#include "symbolize.h"
#include "tools.h"
#include "message.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* TASKLOCAL_VERBOSE: where the word that keeps each parked task reachable
 * lies, and in which mapping. */
static void explain(void)
{
  static const char *const via[] = {"a root", "a heap block", "a task's stack", "a task's locals"};
  int told = 0;
  for (size_t i = 0; i < tl__scan.ntasks && told < EXPLAINED; i++) {
    const struct rtask *r = &tl__scan.tasks[i];
    if (!r->cand || !r->reached)
      continue;
    told++;
    const char *path = "";
    size_t len = 0;
    for (const char *p = tl__scan.maps; p != NULL && *p;) {
      const char *line = p, *line0 = p, *nl = strchr(p, '\n');
      p = nl != NULL ? nl + 1 : p + strlen(p);
      uintptr_t lo = tl__maps_hex(&line);
      if (*line != '-')
        continue;
      line++;
      uintptr_t hi = tl__maps_hex(&line);
      if (r->seen_at >= lo && r->seen_at < hi) {
        path = line0;
        len = (size_t)(p - line) - (nl != NULL);
        break;
      }
    }
    char name[160];
    if (len >= sizeof name)
      len = sizeof name - 1;
    memcpy(name, path, len);
    name[len] = '\0';
    tl__message("leak scan: task %llu is reached from %p, in %s (mapping %s)", (unsigned long long)r->id,
        (void *)r->seen_at, via[r->via < 4 ? r->via : 0], name);
  }
}

void tl__reach_begin(struct tl__job *j)
{
  if (tl__scan.early) {
    tl__scan.early = 0;                           /* the exit report: scanned already */
    return;
  }
  memset(&tl__scan, 0, sizeof tl__scan);
  tl__scan.active = 1;
  tl__suppress_reset();
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  tl__scan_entry(j);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  for (size_t i = 0; i < tl__scan.ntasks; i++) {
    struct rtask *r = &tl__scan.tasks[i];
    r->kind = r->cand && !r->reached && tl__scan.undecided == NULL ? TL__KIND_LEAKED : TL__KIND_PARKED;
  }
  if (tl__opt.verbose) {
    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    size_t reached = 0;
    for (size_t i = 0; i < tl__scan.heap.n; i++)
      reached += tl__scan.block_mark != NULL && (tl__scan.block_mark[i] & 1);
    tl__message("leak scan: %zu tasks, %zu heap blocks (%zu reached), %llu MiB read in %ld ms", tl__scan.ntasks,
        tl__scan.heap.n, reached, (unsigned long long)(tl__scan.bytes >> 20), ms);
    explain();
  }
  /* Suppressions, after the scan: symbols and unwinding take locks, and
   * their frames must not be read as roots. */
  if (tl__suppress_active()) {
    /* Rules name what the report shows: its symbolizer's names. */
    tl__sym_begin(1);
    for (size_t i = 0; i < tl__scan.ntasks; i++) {
      struct rtask *r = &tl__scan.tasks[i];
      if ((r->flags & TL__F_ROOT) || r->state == TL__FINISHED)
        continue;
      const void *ctx = r->state == TL__SUSPENDED && (r->flags & TL__F_STARTED) ? (const void *)r->ctx : NULL;
      if (tl__suppress_task(r->entry, r->bt, (int)r->bt_n, ctx, r->lo, r->hi) >= 0)
        r->kind = TL__KIND_SUPPRESSED;
    }
    tl__sym_end();
  }
}

enum tl__kind tl__reach_kind(const struct tl__task *t, uint64_t id)
{
  size_t lo = 0, hi = tl__scan.ntasks;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if ((uintptr_t)tl__scan.tasks[mid].rec < (uintptr_t)t)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < tl__scan.ntasks && tl__scan.tasks[lo].rec == t && tl__scan.tasks[lo].id == id)
    return (enum tl__kind)tl__scan.tasks[lo].kind;
  return TL__KIND_PARKED;
}

/* The exit report's scan runs before the roots' values are destroyed at
 * exit (root.c): until then they are the program's references, as globals
 * are, and a task that only a local of the main thread's root task points
 * to is parked. The report (tl__reach_begin) then takes this scan's kinds. */
static void early_scan(void *arg)
{
  tl__reach_begin(arg);
}

void tl__reach_exit_early(void)
{
  if (!tl__opt.leaks)
    return;
  struct tl__job j;
  if (tl__job_begin(&j, TL__JOB_LEAK, tl__options_log_fd(), 0) != 0)
    return;
  tl__run_on_own_stack(j.here, EARLY_STACK_NEED, early_scan, &j);
  tl__scan.early = tl__scan.active;
  tl__job_end(&j);
}

/* ------------------------------------------------------------------------
 * LeakSanitizer at exit
 * ------------------------------------------------------------------------ */

static int forget_leaked(struct tl__task *t, void *arg)
{
  (void)arg;
  if (tl__reach_kind(t, t->id) == TL__KIND_LEAKED)
    tl__lsan_forget(t);
  return 0;
}

/* At exit, before LeakSanitizer's own check: the stacks of the tasks nothing
 * can resume stop being root regions (tools.c), so that what only they
 * hold is reported. The scan runs once more for the exit report. */
static void lsan_scan(void *arg)
{
  struct tl__job *j = arg;
  memset(&tl__scan, 0, sizeof tl__scan);
  tl__scan.active = 1;
  tl__scan_entry(j);
  for (size_t i = 0; i < tl__scan.ntasks; i++) {
    struct rtask *r = &tl__scan.tasks[i];
    r->kind = r->cand && !r->reached && tl__scan.undecided == NULL ? TL__KIND_LEAKED : TL__KIND_PARKED;
  }
  tl__task_foreach(forget_leaked, NULL);
  tl__reach_end();
}

/* The scan runs on the library's own stack (its frames there are not
 * read), so that it leaves nothing in the calling stack's dead frames for
 * the exit report's scan to find. */
static void lsan_exit(void)
{
  struct tl__job j;
  if (tl__job_begin(&j, TL__JOB_LEAK, 2, 0) != 0)
    return;
  tl__run_on_own_stack(j.here, SIZE_MAX, lsan_scan, &j);
  tl__job_end(&j);
}

/* At load, under LeakSanitizer: its runtime is set up before the libraries
 * that need it, so its exit handler is registered before this one, which
 * then runs first. */
void tl__reach_lsan_setup(void)
{
  if (tl__lsan_present())
    atexit(lsan_exit);
}

/* Kept after tl__reach_end, until the next scan. */
static const char *last_undecided;

const char *tl__reach_undecided(void)
{
  return last_undecided;
}

/* What the last scan concluded, kept for debuggers until the next scan
 * ends (debug.c publishes it): a table of each unfinished task's kind, by
 * id, in pages of its own. The gdb extension shows it beside each task. */
struct seen {
  uint64_t id, kind;
};

static struct {
  uint64_t scans;
  uint64_t n;
  struct seen *seen;
  size_t bytes;
} last;

const struct tl__debug_scan tl__debug_scan = {&last.scans, &last.n, (const void *const *)&last.seen};

/* The tasks whose kinds are kept: those the report may describe. */
static int kind_kept(const struct rtask *r)
{
  return !(r->flags & TL__F_ROOT) && r->state != TL__FINISHED;
}

static void keep_kinds(void)
{
  size_t n = 0;
  for (size_t i = 0; i < tl__scan.ntasks; i++)
    n += kind_kept(&tl__scan.tasks[i]);
  size_t bytes = (n * sizeof(struct seen) + 4095) & ~(size_t)4095;
  struct seen *seen = bytes != 0 ? tl__scratch(bytes) : NULL;
  if (seen == NULL)
    n = bytes = 0;                         /* the debugger then shows no kinds */
  size_t k = 0;
  for (size_t i = 0; i < tl__scan.ntasks && k < n; i++)
    if (kind_kept(&tl__scan.tasks[i]))
      seen[k++] = (struct seen){tl__scan.tasks[i].id, tl__scan.tasks[i].kind};
  if (last.seen != NULL)
    tl__scratch_free(last.seen, last.bytes);
  last.seen = seen;
  last.bytes = bytes;
  last.n = k;
  last.scans++;
}

void tl__reach_end(void)
{
  if (tl__scan.active)
    keep_kinds();
  last_undecided = tl__scan.undecided;
  tl__heapblocks_snapshot_free(&tl__scan.heap);
  for (int i = 0; i < tl__scan.nregions; i++)
    tl__scratch_free(tl__scan.regions[i].p, tl__scan.regions[i].bytes);
  memset(&tl__scan, 0, sizeof tl__scan);
}
