/* A report's first step: what it shows of every task, copied under the
 * registry's lock, then the creation backtraces and the suspended stacks
 * read without it. */
#include "../internal.h"
#include "gather.h"
#include "scratch.h"
#include "../options.h"
#include "../thread.h"
#include "../task/registry.h"
#include "../backtrace.h"
#include "../keys.h"
#include "../drops.h"
#include "../alloc.h"
#include "../reach.h"
#include "../suppress.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * Gathering the tasks
 * ------------------------------------------------------------------------ */

static const struct tl__thread *thread_running(const struct tl__task *t)
{
  for (const struct tl__thread *th = tl__thread_list(); th != NULL; th = th->next)
    if (th->current == t)
      return th;
  return NULL;
}

static int reported(const struct tl__task *t, uint32_t state)
{
  return !(t->flags & TL__F_ROOT) && t->id != 0 && state != TL__FINISHED;
}

static int count_task(struct tl__task *t, void *arg)
{
  uint64_t *n = arg;
  *n += reported(t, atomic_load_explicit(&t->state, memory_order_relaxed));
  return 0;
}

/* Counts the locals of a value table, listing the first ones in list.
 * The table of a task running on another thread may be replaced and
 * freed while it is read, so it is copied with fault-safe reads, in
 * pieces. */
static uint64_t count_locals(const struct tl__vtab *vt, struct local *list, uint32_t *nlisted)
{
  if (vt == NULL || vt == tl__vt_empty)
    return 0;
  /* The capacity is in the handle, read once: it belongs to these entries. */
  const struct tl__ent *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  if (mask >= (1u << 28))
    return 0;
  uint64_t n = 0;
  struct tl__ent buf[64];
  for (uint32_t i = 0; i <= mask;) {
    uint32_t k = mask + 1 - i;
    if (k > 64)
      k = 64;
    if (tl__safe_read(buf, &ent[i], k * sizeof buf[0]) != 0)
      break;
    for (uint32_t m = 0; m < k; m++) {
      uint64_t key = atomic_load_explicit(&buf[m].key, memory_order_relaxed);
      void *value = atomic_load_explicit(&buf[m].value, memory_order_relaxed);
      if (key <= TL__TOMB || !tl__key_valid(key))
        continue;
      n++;
      if (*nlisted < DETAIL_LOCALS)
        list[(*nlisted)++] = (struct local){key, value};
    }
    i += k;
  }
  return n;
}

/* Whether a task of this kind counts, by TASKLOCAL_LEAK_KINDS; suppressed
 * ones never do. */
static int kind_counts(enum tl__kind kind)
{
  if (kind == TL__KIND_SUPPRESSED)
    return 0;
  return tl__opt.leak_kinds == TL__KINDS_ALL || kind == TL__KIND_LEAKED;
}

const char *tl__report_kind_name(uint32_t kind)
{
  return kind == TL__KIND_LEAKED ? "leaked" : "parked";
}

static int copy_task(struct tl__task *t, void *arg)
{
  struct gather *g = arg;
  uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (!reported(t, state))
    return 0;
  /* Kept, whatever it counts as: the abandoned tasks not kept are counted
   * from the statistics, less these. */
  if (state == TL__ABANDONED)
    tl__report_scratch.kept++;
  enum tl__kind kind = tl__reach_kind(t, t->id);
  if (!kind_counts(kind))
    return 0;
  if (kind == TL__KIND_LEAKED)
    g->leaked++;
  else
    g->parked++;
  g->j->tasks++;
  struct tl__task_ext *x = t->x;
  const struct tl__vtab *vt =
    state == TL__ABANDONED ? (x != NULL ? x->held : NULL) : atomic_load_explicit(&t->vt, memory_order_acquire);
  struct local list[DETAIL_LOCALS];
  uint32_t nlisted = 0;
  uint64_t nloc = count_locals(vt, list, &nlisted);
  g->j->locals += nloc;
  if (tl__report_scratch.nrecs >= tl__report_scratch.caprecs)
    return 0;
  struct report_task *r = &tl__report_scratch.recs[tl__report_scratch.nrecs++];
  memset(r, 0, sizeof *r);
  r->id = t->id;
  r->parent = t->parent;
  r->state = state;
  r->flags = t->flags;
  r->mapped = __atomic_load_n(&t->mapped, __ATOMIC_RELAXED);
  r->lo = t->lo;
  r->hi = t->hi;
  r->ctx = t->ctx;
  r->entry = t->entry;
  r->here = t == g->j->here;
  r->nloc = nloc;
  r->kind = kind;
  /* Which thread runs it, read with its state: by the time the report
   * is written, that thread may have switched away. */
  if (state == TL__RUNNING) {
    const struct tl__thread *on = thread_running(t);
    r->running_on = on != NULL ? on->root.id : 0;
  }
  if (nlisted > 0) {
    struct local *l = tl__report_pool_take(nlisted * sizeof *l, &r->loc);
    if (l != NULL) {
      memcpy(l, list, nlisted * sizeof *l);
      r->nlisted = nlisted;
    }
  }
  if (x != NULL) {
    char name[TL__NAME_LEN];
    tl__safe_str(name, sizeof name, x->name);
    uint32_t off;
    char *p = name[0] != '\0' ? tl__report_pool_take(strlen(name) + 1, &off) : NULL;
    if (p != NULL) {
      memcpy(p, name, strlen(name) + 1);
      r->name = off + 1;
    }
    r->bt = x->bt;
    r->bt_n = x->bt_n <= TL__BT_MAX ? x->bt_n : TL__BT_MAX;
  }
  return 0;
}

static int by_lo(uint32_t x, uint32_t y)
{
  const struct report_task *a = &tl__report_scratch.recs[x], *b = &tl__report_scratch.recs[y];
  return a->lo < b->lo || (a->lo == b->lo && a->id < b->id);
}

/* Shared-stack coroutines copy their stack out and back: the stack of a
 * suspended one holds another's frames, so its backtrace is unreliable.
 * The stacks in order of their start: a stack overlaps an earlier one
 * exactly when it starts below the furthest end seen so far. */
static void find_shared(void)
{
  uint32_t n = 0;
  for (uint32_t i = 0; i < tl__report_scratch.nrecs; i++)
    if (tl__report_scratch.recs[i].state != TL__ABANDONED &&
        tl__report_scratch.recs[i].hi > tl__report_scratch.recs[i].lo)
      tl__report_scratch.order[n++] = i;
  tl__report_sort_numbers(tl__report_scratch.order, n, by_lo);
  uint32_t far = UINT32_MAX;
  for (uint32_t k = 0; k < n; k++) {
    struct report_task *r = &tl__report_scratch.recs[tl__report_scratch.order[k]];
    if (far != UINT32_MAX && r->lo < tl__report_scratch.recs[far].hi) {
      struct report_task *o = &tl__report_scratch.recs[far];
      if (r->state == TL__SUSPENDED && r->shared_with == 0)
        r->shared_with = o->id;
      if (o->state == TL__SUSPENDED && o->shared_with == 0)
        o->shared_with = r->id;
    }
    if (far == UINT32_MAX || r->hi > tl__report_scratch.recs[far].hi)
      far = tl__report_scratch.order[k];
  }
}

/* The creation backtraces, read in batches: another thread may replace
 * one (a context made again) and free the old, so they are read with
 * fault-safe reads, after the registry's lock. */
static void read_backtraces(void)
{
  enum { BATCH = 128 };
  uintptr_t buf[BATCH][TL__BT_MAX];
  struct tl__readv v[BATCH];
  uint32_t which[BATCH];
  for (uint32_t i = 0; i < tl__report_scratch.nrecs;) {
    uint32_t k = 0;
    for (; i < tl__report_scratch.nrecs && k < BATCH; i++)
      if (tl__report_scratch.recs[i].bt != NULL && tl__report_scratch.recs[i].bt_n > 0) {
        v[k] = (struct tl__readv){buf[k], tl__report_scratch.recs[i].bt,
            tl__report_scratch.recs[i].bt_n * sizeof buf[0][0], 0};
        which[k++] = i;
      }
    tl__safe_read_many(v, k);
    for (uint32_t m = 0; m < k; m++)
      if (v[m].ok)
        tl__report_scratch.recs[which[m]].created = tl__report_intern(buf[m], tl__report_scratch.recs[which[m]].bt_n);
  }
}

/* Where each suspended task is: its stack unwound from its saved
 * context, and interned. The contexts, then the bytes at their stack
 * pointers, are read in batches: a stack freed since is found here, before
 * libunwind reads it (libunwind checks each address it reads on x86_64
 * only). */
static void unwind_suspended(void)
{
  enum { BATCH = 48 };
  ucontext_t uc[BATCH];
  unsigned char probe[BATCH];
  struct tl__readv v[BATCH], p[BATCH];
  uint32_t which[BATCH];
  for (uint32_t i = 0; i < tl__report_scratch.nrecs;) {
    uint32_t k = 0;
    for (; i < tl__report_scratch.nrecs && k < BATCH; i++) {
      struct report_task *r = &tl__report_scratch.recs[i];
      if (r->state != TL__SUSPENDED)
        continue;
      if (!(r->flags & TL__F_STARTED)) {
        r->why = "it never ran";
        r->unwound = -1;
      } else if (!r->mapped || r->ctx == NULL) {
        r->why = "the ucontext_t it saved itself into was reused";
        r->unwound = -1;
      } else {
        v[k] = (struct tl__readv){&uc[k], r->ctx, sizeof uc[k], 0};
        which[k++] = i;
      }
    }
    tl__safe_read_many(v, k);
    for (uint32_t m = 0; m < k; m++) {
      uintptr_t sp = v[m].ok ? TL__UC_SP(&uc[m]) : 0;
      const struct report_task *r = &tl__report_scratch.recs[which[m]];
      /* Outside its stack, tl__bt_unwind says why; nothing to read. */
      p[m] = (struct tl__readv){&probe[m], (const void *)(sp >= r->lo && sp < r->hi ? sp : 0), 1, 0};
    }
    tl__safe_read_many(p, k);
    for (uint32_t m = 0; m < k; m++) {
      struct report_task *r = &tl__report_scratch.recs[which[m]];
      uintptr_t pc[TL__BT_MAX];
      int n = -1;
      if (!v[m].ok)
        r->why = "its saved context is no longer readable";
      else if (p[m].src != NULL && !p[m].ok)
        r->why = "its stack is no longer mapped";
      else
        n = tl__bt_unwind(&uc[m], r->lo, r->hi, pc, TL__BT_MAX, &r->why);
      r->unwound = n < 0 ? -1 : n;
      if (n > 0)
        r->suspended = tl__report_intern(pc, (uint32_t)n);
    }
  }
}

/* Every task the report counts, with what it shows of them. The registry
 * is walked twice under its lock: once to count, once to copy. 0, or -1
 * when this thread already holds the registry (the report is made from
 * inside the library). */
int tl__report_gather_tasks(struct tl__job *j, struct gather *g)
{
  uint64_t n = 0;
  if (tl__task_foreach(count_task, &n) != 0)
    return -1;
  /* Without memory for records, every task is counted and none kept. */
  if (tl__report_scratch_map(n) != 0)
    memset(&tl__report_scratch, 0, sizeof tl__report_scratch);
  g->j = j;
  /* Each task's kind comes from the reachability scan (reach.c), which
   * also counts what each suppression rule matched. Its memory goes before
   * the tasks are unwound: the unwinder must not find it where a freed
   * stack was. */
  tl__reach_begin(j);
  int busy = tl__task_foreach(copy_task, g);
  tl__reach_end();
  if (busy != 0)
    return -1;
  if (tl__report_scratch.map == NULL)
    return 0;
  find_shared();
  read_backtraces();
  unwind_suspended();
  return 0;
}
