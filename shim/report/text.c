/* A report's last step, in text: the groups described, symbolized, and
 * the summary. */
#include "../internal.h"
#include "text.h"
#include "scratch.h"
#include "gather.h"
#include "group.h"
#include "../message.h"
#include "../options.h"
#include "../backtrace.h"
#include "../keys.h"
#include "../drops.h"
#include "../writer.h"
#include "../symbolize.h"
#include "../task/registry.h"
#include "../reach.h"
#include "../suppress.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * Printing: text
 * ------------------------------------------------------------------------ */

static void key_label(tl_key_t key, const char *known, char *buf, size_t size)
{
  char name[TL__NAME_LEN];
  if (known != NULL)
    tl__safe_str(name, sizeof name, known);
  else
    tl__safe_str(name, sizeof name, tl__key_name(key));
  if (name[0] != '\0')
    tl__formatf(buf, size, "key \"%s\"", name);
  else
    tl__formatf(buf, size, "key %llu", (unsigned long long)key);
}

/* 1234567 as "1,234,567". */
static void thousands(uint64_t n, char *buf, size_t size)
{
  char digits[24];
  int nd = tl__formatf(digits, sizeof digits, "%llu", (unsigned long long)n);
  size_t o = 0;
  for (int i = 0; i < nd && o + 1 < size; i++) {
    if (i > 0 && (nd - i) % 3 == 0 && o + 2 < size)
      buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
}

static void text_frames(struct tl__job *j, const uintptr_t *pc, int n, int ret)
{
  struct tl__sym f[TL__SYM_INLINE_MAX];
  char text[700];
  for (int i = 0, k = 0; i < n; i++) {
    int m = tl__sym_lookup(pc[i], ret, f, TL__SYM_INLINE_MAX);
    for (int s = 0; s < m; s++) {
      tl__sym_text(&f[s], text, sizeof text);
      tl__job_line(j, "    #%d 0x%lx in %s", k++, (unsigned long)pc[i], text);
    }
  }
}

/* An entry function: the function itself, where it begins. */
static void entry_text(void (*entry)(void), char *buf, size_t size)
{
  struct tl__sym f[TL__SYM_INLINE_MAX];
  int m = tl__sym_lookup((uintptr_t)entry, 0, f, TL__SYM_INLINE_MAX);
  tl__sym_text(&f[m - 1], buf, size);
}

void tl__report_depot_frames(uint32_t s, const uintptr_t **pc, int *n)
{
  *pc = NULL;
  *n = 0;
  if (s != 0 && s != NOT_KEPT) {
    *pc = &tl__report_scratch.pcs[tl__report_scratch.stacks[s].off];
    *n = (int)tl__report_scratch.stacks[s].n;
  }
}

static void state_text(struct tl__job *j, const struct report_task *r, char *buf, size_t size)
{
  switch (r->state) {
  case TL__NEW:
    tl__formatf(buf, size, "never started");
    break;
  case TL__SUSPENDED:
    tl__formatf(buf, size, "suspended");
    break;
  case TL__ABANDONED:
    tl__formatf(buf, size, "abandoned (its ucontext_t was made again before it finished)");
    break;
  default:
    if (r->here)
      tl__formatf(buf, size,
          j->kind == TL__JOB_LEAK ? "running (exit was called in it)" : "running (it called tl_dump)");
    else if (r->running_on != 0)
      tl__formatf(buf, size, "running on another thread (whose root task is %llu)", (unsigned long long)r->running_on);
    else
      tl__formatf(buf, size, "running");
    break;
  }
}

static void text_group(struct tl__job *j, const struct group *g)
{
  const struct report_task *r = &tl__report_scratch.recs[g->first];
  char text[700], state[128], made[64] = "", count[32], ids[IDS_SHOWN * 22 + 8], name[TL__NAME_LEN + 4] = "";
  state_text(j, r, state, sizeof state);
  if (g->same_parent)
    tl__formatf(made, sizeof made, "; made by task %llu", (unsigned long long)r->parent);
  else
    tl__formatf(made, sizeof made, "; made by several tasks");
  if (r->name != 0 && g->same_name)
    tl__formatf(name, sizeof name, " \"%s\"", tl__report_scratch.pool + r->name - 1);
  if (g->count == 1) {
    tl__job_line(j, "task %llu%s: %s%s; %s", (unsigned long long)r->id, name, state, made,
        tl__report_kind_name(r->kind));
  } else {
    size_t o = 0;
    for (uint64_t i = 0; i < g->count && i < IDS_SHOWN; i++)
      o += (size_t)tl__formatf(ids + o, sizeof ids - o, "%s%llu", i > 0 ? ", " : "", (unsigned long long)g->ids[i]);
    if (g->count > IDS_SHOWN)
      tl__formatf(ids + o, sizeof ids - o, " ...");
    thousands(g->count, count, sizeof count);
    tl__job_line(j, "%s tasks%s like this (ids %s): %s%s; %s", count, name, ids, state, made,
        tl__report_kind_name(r->kind));
  }

  if (r->entry != NULL) {
    entry_text(r->entry, text, sizeof text);
    tl__job_line(j, "  entry: %s", text);
  }
  const uintptr_t *pc;
  int n;
  tl__report_depot_frames(r->created, &pc, &n);
  if (n > 0) {
    tl__job_line(j, "  created at:");
    text_frames(j, pc, n, 1);
  } else if (r->created == NOT_KEPT) {
    tl__job_line(j, "  created at: not kept (too many different backtraces for one report)");
  } else {
    tl__job_line(j, "  created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
  }

  if (r->state == TL__SUSPENDED) {
    if (g->key.shared)
      tl__job_line(j, "  suspended at (unreliable: its stack is shared with task %llu, and copied out and back):",
          (unsigned long long)r->shared_with);
    else
      tl__job_line(j, "  suspended at:");
    tl__report_depot_frames(r->suspended, &pc, &n);
    if (n > 0) {
      text_frames(j, pc, n, 1);
    } else if (r->unwound > 0) {
      tl__job_line(j, "    not kept (too many different backtraces for one report)");
    } else if (r->unwound == 0 && r->entry != NULL) {
      entry_text(r->entry, text, sizeof text);
      tl__job_line(j, "    #0 in %s, which switched away in a tail call", text);
    } else if (r->unwound == 0) {
      tl__job_line(j, "    in its entry function, which switched away in a tail call");
    } else {
      tl__job_line(j, "    unknown: %s", r->why != NULL ? r->why : "?");
    }
  } else if (r->state == TL__RUNNING && r->here && j->here_n > 0) {
    tl__job_line(j, "  running at:");
    text_frames(j, j->here_bt, j->here_n, 1);
  }

  if (g->nloc == 0) {
    tl__job_line(j, "  locals: none");
    return;
  }
  const char *held = r->state == TL__ABANDONED ? " (held when abandoned)" : "";
  if (g->count == 1)
    tl__job_line(j, "  locals: %llu%s", (unsigned long long)r->nloc, held);
  else
    tl__job_line(j, "  locals: %llu in these tasks%s; task %llu holds %llu", (unsigned long long)g->nloc, held,
        (unsigned long long)r->id, (unsigned long long)r->nloc);
  const struct local *l = (const struct local *)(tl__report_scratch.pool + r->loc);
  char key[TL__NAME_LEN + 32];
  for (uint32_t i = 0; i < r->nlisted; i++) {
    key_label(l[i].key, NULL, key, sizeof key);
    tl__job_line(j, "    %s = %p", key, l[i].value);
  }
  if (r->nloc > r->nlisted)
    tl__job_line(j, "    ... and %llu more", (unsigned long long)(r->nloc - r->nlisted));
}

const char *tl__report_drop_when(const struct tl__drop *d)
{
  switch (d->how) {
  case TL__DROP_THREAD_EXIT:
    return "its thread exited";
  case TL__DROP_ABANDONED:
    return "it was abandoned";
  case TL__DROP_RELEASED:
    return "its stack was released";
  default:
    return "it finished";
  }
}

static void text_drops(struct tl__job *j, uint64_t n)
{
  char key[TL__NAME_LEN + 16], text[700];
  for (uint64_t i = 0; i < n && i < TL__DROPS_KEPT; i++) {
    const struct tl__drop *d = tl__drop_get(i);
    if (d == NULL)
      continue;
    key_label(d->key, d->key_name, key, sizeof key);
    const char *whose = d->how == TL__DROP_THREAD_EXIT ? "the root task" : "task";
    if (d->task_name[0] != '\0')
      tl__job_line(j, "dropped value %p of %s (no destructor): still bound in %s %llu \"%s\" when %s", d->value, key,
          whose, (unsigned long long)d->task, d->task_name, tl__report_drop_when(d));
    else
      tl__job_line(j, "dropped value %p of %s (no destructor): still bound in %s %llu when %s", d->value, key, whose,
          (unsigned long long)d->task, tl__report_drop_when(d));
    if (d->entry != NULL) {
      entry_text(d->entry, text, sizeof text);
      tl__job_line(j, "  entry: %s", text);
    }
    if (d->set_n > 0) {
      tl__job_line(j, "  set at:");
      text_frames(j, d->set, (int)d->set_n, 1);
    }
    if (d->how != TL__DROP_THREAD_EXIT) {
      if (d->bt_n > 0) {
        tl__job_line(j, "  task created at:");
        text_frames(j, d->bt, (int)d->bt_n, 1);
      } else {
        tl__job_line(j, "  task created at: unknown (no backtrace; set TASKLOCAL_BACKTRACE=1)");
      }
    }
  }
  if (n > TL__DROPS_KEPT)
    tl__job_line(j, "... and %llu more dropped values", (unsigned long long)(n - TL__DROPS_KEPT));
}

void tl__report_print_text(struct tl__job *j, const struct totals *t)
{
  if (j->kind == TL__JOB_DUMP || t->tasks > 0 || t->locals > 0) {
    tl__job_line(j, "%s report of process %d: %llu %s tasks, %llu locals", t->what, (int)j->pid,
        (unsigned long long)t->tasks, j->kind == TL__JOB_LEAK ? "unfinished" : "live", (unsigned long long)t->locals);
    for (uint32_t i = 0; i < t->described; i++)
      text_group(j, &tl__report_scratch.groups[tl__report_scratch.group_order[i]]);
    if (t->undescribed > 0) {
      uint32_t more = tl__report_scratch.ngroups > 0 ? tl__report_scratch.ngroups - 1 - t->described : 0;
      if (more > 0)
        tl__job_line(j, "... and %llu more tasks in %u more groups, not described (TASKLOCAL_REPORT_MAX=%u)",
            (unsigned long long)t->undescribed, (unsigned)more, (unsigned)tl__opt.report_max);
      else
        tl__job_line(j, "... and %llu more tasks, not described (no room to group them)",
            (unsigned long long)t->undescribed);
    }
    if (t->unkept > 0)
      tl__job_line(j, "... and %llu more abandoned tasks, not kept for the report (at most %d are)",
          (unsigned long long)t->unkept, TL__KEEP_MAX);
    text_drops(j, t->drops);
  }
  tl__suppress_lines(j);
  if (j->kind == TL__JOB_DUMP || t->tasks > 0 || t->locals > 0) {
    if (t->undecided != NULL && t->tasks > 0)
      tl__job_line(j, "%s kinds: no task is called leaked: %s", t->what, t->undecided);
    tl__job_line(j, "%s kinds: %llu leaked, %llu parked", t->what, (unsigned long long)t->leaked,
        (unsigned long long)t->parked);
  }
  tl__job_line(j, "%s summary: %llu tasks, %llu locals", t->what, (unsigned long long)t->tasks,
      (unsigned long long)t->locals);
}
