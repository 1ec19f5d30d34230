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
 * A report is made in three steps, each a function of its own:
 * - gather_tasks copies what the report shows of every task into a record,
 *   walking the registry under its lock only for that; then, without the
 *   lock, reads the creation backtraces, interned in a table of unique
 *   backtraces (a task refers to one by number, as LeakSanitizer's stack
 *   depot does), and unwinds the suspended tasks (what the program may
 *   have freed since, saved contexts, stacks and backtraces, is read with
 *   fault-safe reads, in batches);
 * - group_tasks puts alike tasks together (struct like: a field added
 *   there, such as a task's kind, joins the key) and orders the groups,
 *   biggest first;
 * - print_text or print_json writes at most TASKLOCAL_REPORT_MAX groups,
 *   symbolized then (symbolize.c), and the summary, which counts every
 *   task.
 * A program may have millions of tasks: the records, the backtraces and
 * the groups live in one anonymous mapping made for the report and
 * unmapped after it, never in the program's heap, and the work is
 * O(n log n). Only the symbolization of the groups described allocates
 * (libdw's).
 */
#include "internal.h"
#include "report.h"
#include "message.h"
#include "options.h"
#include "thread.h"
#include "task/registry.h"
#include "backtrace.h"
#include "keys.h"
#include "drops.h"
#include "writer.h"
#include "symbolize.h"
#include "alloc.h"
#include "reach.h"
#include "suppress.h"

#include <string.h>

#define DETAIL_LOCALS 16                   /* locals listed per task */
#define IDS_SHOWN 8                        /* ids listed per group */
#define MORE_TASKS 1024                    /* room for tasks made between counting and copying */
#define DEPOT_MAX (1u << 17)               /* unique backtraces kept per report */
#define GROUPS_MAX (1u << 16)              /* groups kept per report */
#define POOL_PER_TASK 128                  /* bytes of names and locals per task, on average */
#define POOL_MAX (256u << 20)

enum { NOT_KEPT = UINT32_MAX };            /* a backtrace the depot had no room for */

struct local {
  uint64_t key;
  void *value;
};

/* What a report shows of one task, copied under the registry's lock;
 * created, shared_with, suspended, unwound and why are filled after it. */
struct rec {
  uint64_t id, parent;
  uint64_t running_on;                     /* the root of the thread it ran on when copied, or 0 */
  uint64_t shared_with;                    /* a task on the same stack, or 0 */
  uint64_t nloc;                           /* all its locals */
  const void *ctx;
  uintptr_t lo, hi;
  void (*entry)(void);
  uint32_t state, flags, mapped;
  uint32_t here;                           /* it runs the code that asked for the report */
  uint32_t kind;                           /* enum tl__kind (reach.c) */
  const uintptr_t *bt;                     /* its creation backtrace, read after the lock */
  uint32_t bt_n;
  uint32_t created;                        /* creation backtrace: depot number, 0 for none */
  uint32_t name;                           /* pool offset + 1, or 0 */
  uint32_t loc, nlisted;                   /* locals listed: pool offset, count */
  uint32_t suspended;                      /* the suspended stack: depot number, 0 for none */
  int32_t unwound;                         /* its frames; 0: a tail call; -1: why says */
  const char *why;
};

/* What makes tasks alike: two tasks whose keys are equal, byte for byte,
 * are described once. The key is zeroed before it is filled, padding
 * included, so that it compares with memcmp. */
struct like {
  uint32_t state;
  uint32_t kind;
  uint32_t created, suspended;
  int32_t unwound;
  uint32_t started, mapped, here, shared;
  uint64_t running_on;
  uintptr_t entry;
  const char *why;
};

struct group {
  struct like key;
  uint32_t hash, first;                    /* first: the record of its lowest id */
  uint32_t next;                           /* chain in the group table, 0 ends it */
  uint32_t same_parent, same_name;
  uint64_t count, nloc;
  uint64_t ids[IDS_SHOWN];
};

struct stack {
  uint32_t hash, n, off, next;             /* next: chain in the depot's table, 0 ends it */
};

/* Guarded by the writer's lock (writer.c): one report at a time. */
static struct {
  void *map;
  size_t map_size;
  struct rec *recs;
  uint32_t nrecs, caprecs;                 /* tasks beyond caprecs are counted only */
  uint64_t kept;                           /* abandoned tasks seen */
  uint32_t *order;                         /* record numbers, sorted */
  char *pool;                              /* names and locals */
  size_t pool_used, pool_cap;
  struct stack *stacks;                    /* the depot; 0 is no backtrace */
  uint32_t nstacks, capstacks, *stack_head;
  uintptr_t *pcs;
  size_t npcs, cappcs;
  struct group *groups;                    /* 0 unused */
  uint32_t ngroups, capgroups, *group_head, *group_order; /* tasks of groups beyond capgroups: counted only */
} scratch;

/* ------------------------------------------------------------------------
 * Scratch memory
 * ------------------------------------------------------------------------ */

static size_t round_up(size_t n)
{
  return (n + 63) & ~(size_t)63;
}

/* One mapping for n tasks (tl__scratch: only the pages written become
 * memory), smaller if it cannot be had. 0, or -1 when even a small one
 * cannot be made: the report then counts the tasks and shows none. */
static int scratch_map(uint64_t n)
{
  for (;;) {
    uint64_t cap = n + MORE_TASKS;
    uint64_t stacks = 2 * cap + 1 < DEPOT_MAX ? 2 * cap + 1 : DEPOT_MAX;
    uint64_t groups = cap + 1 < GROUPS_MAX ? cap + 1 : GROUPS_MAX;
    uint64_t pool = cap * POOL_PER_TASK < POOL_MAX ? cap * POOL_PER_TASK : POOL_MAX;
    size_t size = round_up(cap * sizeof(struct rec)) + round_up(cap * sizeof(uint32_t)) + round_up(pool) +
                  round_up(stacks * sizeof(struct stack)) + round_up(stacks * sizeof(uint32_t)) +
                  round_up(stacks * 4 * sizeof(uintptr_t)) + round_up(groups * sizeof(struct group)) +
                  2 * round_up(groups * sizeof(uint32_t));
    void *m = tl__scratch(size);
    if (m == NULL) {
      if (n <= 64)
        return -1;
      n /= 4;
      continue;
    }
    memset(&scratch, 0, sizeof scratch);
    scratch.map = m;
    scratch.map_size = size;
    char *p = m;
    scratch.recs = (struct rec *)p, p += round_up(cap * sizeof(struct rec));
    scratch.caprecs = (uint32_t)cap;
    scratch.order = (uint32_t *)p, p += round_up(cap * sizeof(uint32_t));
    scratch.pool = p, p += round_up(pool);
    scratch.pool_cap = pool;
    scratch.stacks = (struct stack *)p, p += round_up(stacks * sizeof(struct stack));
    scratch.capstacks = (uint32_t)stacks;
    scratch.nstacks = 1;
    scratch.stack_head = (uint32_t *)p, p += round_up(stacks * sizeof(uint32_t));
    scratch.pcs = (uintptr_t *)p, p += round_up(stacks * 4 * sizeof(uintptr_t));
    scratch.cappcs = stacks * 4;
    scratch.groups = (struct group *)p, p += round_up(groups * sizeof(struct group));
    scratch.capgroups = (uint32_t)groups;
    scratch.ngroups = 1;
    scratch.group_head = (uint32_t *)p, p += round_up(groups * sizeof(uint32_t));
    scratch.group_order = (uint32_t *)p;
    return 0;
  }
}

static void scratch_unmap(void)
{
  if (scratch.map != NULL)
    tl__scratch_free(scratch.map, scratch.map_size);
  scratch.map = NULL;
}

/* n bytes of the pool, or NULL when it is full. */
static void *pool_take(size_t n, uint32_t *off)
{
  n = (n + 7) & ~(size_t)7;
  if (scratch.pool_used + n > scratch.pool_cap)
    return NULL;
  *off = (uint32_t)scratch.pool_used;
  scratch.pool_used += n;
  return scratch.pool + *off;
}

static uint32_t hash_words(const uintptr_t *w, size_t n, uint64_t seed)
{
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint64_t)w[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return (uint32_t)(h ^ (h >> 32));
}

/* The depot's number of a backtrace, the same for equal ones: 0 for an
 * empty one, NOT_KEPT when there is no room left. */
static uint32_t intern(const uintptr_t *pc, uint32_t n)
{
  if (n == 0)
    return 0;
  uint32_t h = hash_words(pc, n, n);
  uint32_t *slot = &scratch.stack_head[h % scratch.capstacks];
  for (uint32_t i = *slot; i != 0; i = scratch.stacks[i].next)
    if (scratch.stacks[i].hash == h && scratch.stacks[i].n == n && memcmp(&scratch.pcs[scratch.stacks[i].off], pc, n * sizeof *pc) == 0)
      return i;
  if (scratch.nstacks >= scratch.capstacks || scratch.npcs + n > scratch.cappcs)
    return NOT_KEPT;
  uint32_t i = scratch.nstacks++;
  scratch.stacks[i] = (struct stack){h, n, (uint32_t)scratch.npcs, *slot};
  memcpy(&scratch.pcs[scratch.npcs], pc, n * sizeof *pc);
  scratch.npcs += n;
  *slot = i;
  return i;
}

/* Sorts n record or group numbers with heapsort: no allocation, and
 * O(n log n) whatever the input. */
static void sort_numbers(uint32_t *a, uint32_t n, int (*before)(uint32_t x, uint32_t y))
{
  for (uint32_t start = n / 2; n > 1;) {
    uint32_t root;
    if (start > 0) {
      root = --start;
    } else {
      n--;
      uint32_t t = a[0];
      a[0] = a[n];
      a[n] = t;
      root = 0;
    }
    for (;;) {
      uint32_t child = 2 * root + 1;
      if (child >= n)
        break;
      if (child + 1 < n && before(a[child], a[child + 1]))
        child++;
      if (!before(a[root], a[child]))
        break;
      uint32_t t = a[root];
      a[root] = a[child];
      a[child] = t;
      root = child;
    }
  }
}

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

struct gather {
  struct tl__job *j;
  uint64_t leaked, parked;                 /* tasks counted, by kind */
};

/* Whether a task of this kind counts, by TASKLOCAL_LEAK_KINDS; suppressed
 * ones never do. */
static int kind_counts(enum tl__kind kind)
{
  if (kind == TL__KIND_SUPPRESSED)
    return 0;
  return tl__opt.leak_kinds == TL__KINDS_ALL || kind == TL__KIND_LEAKED;
}

static const char *kind_name(uint32_t kind)
{
  return kind == TL__KIND_LEAKED ? "leaked" : "parked";
}

static int copy_task(struct tl__task *t, void *arg)
{
  struct gather *g = arg;
  uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (!reported(t, state))
    return 0;
  enum tl__kind kind = tl__reach_kind(t, t->id);
  if (!kind_counts(kind))
    return 0;
  if (kind == TL__KIND_LEAKED)
    g->leaked++;
  else
    g->parked++;
  g->j->tasks++;
  if (state == TL__ABANDONED)
    scratch.kept++;
  struct tl__task_ext *x = t->x;
  const struct tl__vtab *vt =
    state == TL__ABANDONED ? (x != NULL ? x->held : NULL) : atomic_load_explicit(&t->vt, memory_order_acquire);
  struct local list[DETAIL_LOCALS];
  uint32_t nlisted = 0;
  uint64_t nloc = count_locals(vt, list, &nlisted);
  g->j->locals += nloc;
  if (scratch.nrecs >= scratch.caprecs)
    return 0;
  struct rec *r = &scratch.recs[scratch.nrecs++];
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
    struct local *l = pool_take(nlisted * sizeof *l, &r->loc);
    if (l != NULL) {
      memcpy(l, list, nlisted * sizeof *l);
      r->nlisted = nlisted;
    }
  }
  if (x != NULL) {
    char name[TL__NAME_LEN];
    tl__safe_str(name, sizeof name, x->name);
    uint32_t off;
    char *p = name[0] != '\0' ? pool_take(strlen(name) + 1, &off) : NULL;
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
  return scratch.recs[x].lo < scratch.recs[y].lo || (scratch.recs[x].lo == scratch.recs[y].lo && scratch.recs[x].id < scratch.recs[y].id);
}

/* Shared-stack coroutines copy their stack out and back: the stack of a
 * suspended one holds another's frames, so its backtrace is unreliable.
 * The stacks in order of their start: a stack overlaps an earlier one
 * exactly when it starts below the furthest end seen so far. */
static void find_shared(void)
{
  uint32_t n = 0;
  for (uint32_t i = 0; i < scratch.nrecs; i++)
    if (scratch.recs[i].state != TL__ABANDONED && scratch.recs[i].hi > scratch.recs[i].lo)
      scratch.order[n++] = i;
  sort_numbers(scratch.order, n, by_lo);
  uint32_t far = UINT32_MAX;
  for (uint32_t k = 0; k < n; k++) {
    struct rec *r = &scratch.recs[scratch.order[k]];
    if (far != UINT32_MAX && r->lo < scratch.recs[far].hi) {
      struct rec *o = &scratch.recs[far];
      if (r->state == TL__SUSPENDED && r->shared_with == 0)
        r->shared_with = o->id;
      if (o->state == TL__SUSPENDED && o->shared_with == 0)
        o->shared_with = r->id;
    }
    if (far == UINT32_MAX || r->hi > scratch.recs[far].hi)
      far = scratch.order[k];
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
  for (uint32_t i = 0; i < scratch.nrecs;) {
    uint32_t k = 0;
    for (; i < scratch.nrecs && k < BATCH; i++)
      if (scratch.recs[i].bt != NULL && scratch.recs[i].bt_n > 0) {
        v[k] = (struct tl__readv){buf[k], scratch.recs[i].bt, scratch.recs[i].bt_n * sizeof buf[0][0], 0};
        which[k++] = i;
      }
    tl__safe_read_many(v, k);
    for (uint32_t m = 0; m < k; m++)
      if (v[m].ok)
        scratch.recs[which[m]].created = intern(buf[m], scratch.recs[which[m]].bt_n);
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
  for (uint32_t i = 0; i < scratch.nrecs;) {
    uint32_t k = 0;
    for (; i < scratch.nrecs && k < BATCH; i++) {
      struct rec *r = &scratch.recs[i];
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
      const struct rec *r = &scratch.recs[which[m]];
      /* Outside its stack, tl__bt_unwind says why; nothing to read. */
      p[m] = (struct tl__readv){&probe[m], (const void *)(sp >= r->lo && sp < r->hi ? sp : 0), 1, 0};
    }
    tl__safe_read_many(p, k);
    for (uint32_t m = 0; m < k; m++) {
      struct rec *r = &scratch.recs[which[m]];
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
        r->suspended = intern(pc, (uint32_t)n);
    }
  }
}

/* Every task the report counts, with what it shows of them. The registry
 * is walked twice under its lock: once to count, once to copy. 0, or -1
 * when this thread already holds the registry (the report is made from
 * inside the library). */
static int gather_tasks(struct tl__job *j, struct gather *g)
{
  uint64_t n = 0;
  if (tl__task_foreach(count_task, &n) != 0)
    return -1;
  /* Without memory for records, every task is counted and none kept. */
  if (scratch_map(n) != 0)
    memset(&scratch, 0, sizeof scratch);
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
  if (scratch.map == NULL)
    return 0;
  find_shared();
  read_backtraces();
  unwind_suspended();
  return 0;
}

/* ------------------------------------------------------------------------
 * Grouping alike tasks
 * ------------------------------------------------------------------------ */

static int by_id(uint32_t x, uint32_t y)
{
  return scratch.recs[x].id < scratch.recs[y].id;
}

/* Leaked tasks first, then the biggest groups. */
static int bigger_first(uint32_t x, uint32_t y)
{
  const struct group *a = &scratch.groups[x], *b = &scratch.groups[y];
  if ((a->key.kind == TL__KIND_LEAKED) != (b->key.kind == TL__KIND_LEAKED))
    return a->key.kind == TL__KIND_LEAKED;
  if (a->count != b->count)
    return a->count > b->count;
  return scratch.recs[a->first].id < scratch.recs[b->first].id;
}

static void like_of(const struct rec *r, struct like *k)
{
  memset(k, 0, sizeof *k);
  k->state = r->state;
  k->kind = r->kind;
  k->created = r->created;
  k->entry = (uintptr_t)r->entry;
  k->started = (r->flags & TL__F_STARTED) != 0;
  k->here = r->here;
  k->running_on = r->running_on;
  if (r->state == TL__SUSPENDED) {
    k->suspended = r->suspended;
    k->unwound = r->unwound > 0 ? 1 : r->unwound;
    k->why = r->why;
    k->mapped = r->mapped;
    k->shared = r->shared_with != 0;
  }
}

static int same_name(const struct rec *a, const struct rec *b)
{
  if (a->name == 0 || b->name == 0)
    return a->name == b->name;
  return strcmp(scratch.pool + a->name - 1, scratch.pool + b->name - 1) == 0;
}

/* Alike tasks in groups, in order of their ids within each, and the
 * groups leaked first, then biggest first (the oldest first among
 * equals). */
static void group_tasks(void)
{
  if (scratch.map == NULL)
    return;
  for (uint32_t i = 0; i < scratch.nrecs; i++)
    scratch.order[i] = i;
  sort_numbers(scratch.order, scratch.nrecs, by_id);
  for (uint32_t k = 0; k < scratch.nrecs; k++) {
    struct rec *r = &scratch.recs[scratch.order[k]];
    struct like key;
    like_of(r, &key);
    uint32_t h = hash_words((const uintptr_t *)&key, sizeof key / sizeof(uintptr_t), 0);
    uint32_t *slot = &scratch.group_head[h % scratch.capgroups];
    uint32_t gi = *slot;
    while (gi != 0 && (scratch.groups[gi].hash != h || memcmp(&scratch.groups[gi].key, &key, sizeof key) != 0))
      gi = scratch.groups[gi].next;
    if (gi == 0) {
      if (scratch.ngroups >= scratch.capgroups)
        continue;
      gi = scratch.ngroups++;
      struct group *g = &scratch.groups[gi];
      memset(g, 0, sizeof *g);
      g->key = key;
      g->hash = h;
      g->first = scratch.order[k];
      g->next = *slot;
      g->same_parent = g->same_name = 1;
      *slot = gi;
    }
    struct group *g = &scratch.groups[gi];
    const struct rec *first = &scratch.recs[g->first];
    if (g->count < IDS_SHOWN)
      g->ids[g->count] = r->id;
    g->count++;
    g->nloc += r->nloc;
    g->same_parent &= r->parent == first->parent;
    g->same_name &= same_name(r, first);
  }
  for (uint32_t i = 1; i < scratch.ngroups; i++)
    scratch.group_order[i - 1] = i;
  sort_numbers(scratch.group_order, scratch.ngroups - 1, bigger_first);
}

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

static void depot_frames(uint32_t s, const uintptr_t **pc, int *n)
{
  *pc = NULL;
  *n = 0;
  if (s != 0 && s != NOT_KEPT) {
    *pc = &scratch.pcs[scratch.stacks[s].off];
    *n = (int)scratch.stacks[s].n;
  }
}

static void state_text(struct tl__job *j, const struct rec *r, char *buf, size_t size)
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
      tl__formatf(buf, size, j->kind == TL__JOB_LEAK ? "running (exit was called in it)" : "running (it called tl_dump)");
    else if (r->running_on != 0)
      tl__formatf(buf, size, "running on another thread (whose root task is %llu)", (unsigned long long)r->running_on);
    else
      tl__formatf(buf, size, "running");
    break;
  }
}

static void text_group(struct tl__job *j, const struct group *g)
{
  const struct rec *r = &scratch.recs[g->first];
  char text[700], state[128], made[64] = "", count[32], ids[IDS_SHOWN * 22 + 8], name[TL__NAME_LEN + 4] = "";
  state_text(j, r, state, sizeof state);
  if (g->same_parent)
    tl__formatf(made, sizeof made, "; made by task %llu", (unsigned long long)r->parent);
  else
    tl__formatf(made, sizeof made, "; made by several tasks");
  if (r->name != 0 && g->same_name)
    tl__formatf(name, sizeof name, " \"%s\"", scratch.pool + r->name - 1);
  if (g->count == 1) {
    tl__job_line(j, "task %llu%s: %s%s; %s", (unsigned long long)r->id, name, state, made, kind_name(r->kind));
  } else {
    size_t o = 0;
    for (uint64_t i = 0; i < g->count && i < IDS_SHOWN; i++)
      o += (size_t)tl__formatf(ids + o, sizeof ids - o, "%s%llu", i > 0 ? ", " : "", (unsigned long long)g->ids[i]);
    if (g->count > IDS_SHOWN)
      tl__formatf(ids + o, sizeof ids - o, " ...");
    thousands(g->count, count, sizeof count);
    tl__job_line(j, "%s tasks%s like this (ids %s): %s%s; %s", count, name, ids, state, made, kind_name(r->kind));
  }

  if (r->entry != NULL) {
    entry_text(r->entry, text, sizeof text);
    tl__job_line(j, "  entry: %s", text);
  }
  const uintptr_t *pc;
  int n;
  depot_frames(r->created, &pc, &n);
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
    depot_frames(r->suspended, &pc, &n);
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
  const struct local *l = (const struct local *)(scratch.pool + r->loc);
  char key[TL__NAME_LEN + 32];
  for (uint32_t i = 0; i < r->nlisted; i++) {
    key_label(l[i].key, NULL, key, sizeof key);
    tl__job_line(j, "    %s = %p", key, l[i].value);
  }
  if (r->nloc > r->nlisted)
    tl__job_line(j, "    ... and %llu more", (unsigned long long)(r->nloc - r->nlisted));
}

static const char *drop_when(const struct tl__drop *d)
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
          whose, (unsigned long long)d->task, d->task_name, drop_when(d));
    else
      tl__job_line(j, "dropped value %p of %s (no destructor): still bound in %s %llu when %s", d->value, key, whose,
          (unsigned long long)d->task, drop_when(d));
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

struct totals {
  const char *what;                        /* "leak" or "dump" */
  uint64_t tasks, locals, unkept, drops;
  uint64_t leaked, parked;                 /* tasks, by kind */
  const char *undecided;                   /* why no task could be called leaked, or NULL */
  uint32_t described;                      /* groups described */
  uint64_t undescribed;                    /* tasks in the others, or without a record */
};

static void print_text(struct tl__job *j, const struct totals *t)
{
  if (j->kind == TL__JOB_DUMP || t->tasks > 0 || t->locals > 0) {
    tl__job_line(j, "%s report of process %d: %llu %s tasks, %llu locals", t->what, (int)j->pid,
        (unsigned long long)t->tasks, j->kind == TL__JOB_LEAK ? "unfinished" : "live", (unsigned long long)t->locals);
    for (uint32_t i = 0; i < t->described; i++)
      text_group(j, &scratch.groups[scratch.group_order[i]]);
    if (t->undescribed > 0) {
      uint32_t more = scratch.ngroups > 0 ? scratch.ngroups - 1 - t->described : 0;
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

/* ------------------------------------------------------------------------
 * Printing: JSON
 *
 * One document, written in lines that each begin with "tasklocal: " (as
 * every line of the library does): the document is the text of the lines
 * from "tasklocal: {" to "tasklocal: }", without that prefix. A line is
 * at most some 900 bytes: strings are cut to fit.
 * ------------------------------------------------------------------------ */

#define JSON_LINE 880
#define JSON_STR_MAX 400

struct json {
  struct tl__job *j;
  size_t len;
  char buf[JSON_LINE + JSON_STR_MAX + 64];
};

static void json_flush(struct json *w)
{
  if (w->len == 0)
    return;
  w->buf[w->len] = '\0';
  tl__job_line(w->j, "%s", w->buf);
  w->len = 0;
}

static void json_raw(struct json *w, const char *s)
{
  size_t n = strlen(s);
  if (w->len + n > JSON_LINE)
    json_flush(w);
  if (n > sizeof w->buf - 1 - w->len)
    n = sizeof w->buf - 1 - w->len;
  memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void json_fmt(struct json *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void json_fmt(struct json *w, const char *fmt, ...)
{
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  tl__format(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  json_raw(w, tmp);
}

/* A JSON string, escaped, and cut (at a character's start) when long. */
static void json_str(struct json *w, const char *s)
{
  char out[JSON_STR_MAX + 8];
  size_t o = 0;
  out[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p; p++) {
    char e[8];
    size_t n;
    if (*p == '"' || *p == '\\')
      n = (size_t)tl__formatf(e, sizeof e, "\\%c", *p);
    else if (*p < 0x20)
      n = (size_t)tl__formatf(e, sizeof e, "\\u%04x", *p);
    else
      e[0] = (char)*p, n = 1;
    if (o + n > JSON_STR_MAX) {
      while (o > 1 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
        o--;
      if (o > 1 && ((unsigned char)out[o - 1] & 0x80))
        o--;
      break;
    }
    memcpy(out + o, e, n);
    o += n;
  }
  out[o++] = '"';
  out[o] = '\0';
  json_raw(w, out);
}

static void json_frame(struct json *w, const struct tl__sym *f, int last)
{
  json_fmt(w, "{\"pc\": \"0x%lx\", \"function\": ", (unsigned long)f->pc);
  if (f->func[0] != '\0')
    json_str(w, f->func);
  else
    json_raw(w, "null");
  json_raw(w, ", \"file\": ");
  if (f->line > 0 && f->file[0] != '\0')
    json_str(w, f->file);
  else
    json_raw(w, "null");
  json_fmt(w, ", \"line\": %d, \"offset\": %lu, \"module\": ", f->line, f->offset);
  if (f->module[0] != '\0')
    json_str(w, f->module);
  else
    json_raw(w, "null");
  json_fmt(w, ", \"module_offset\": %lu, \"inlined\": %s, \"source\": \"%s\"}%s", f->module_offset,
      f->inlined ? "true" : "false", tl__sym_source_name(f->source), last ? "" : ",");
  json_flush(w);
}

/* A backtrace as an array of frames, inlined calls as frames of their own. */
static void json_frames(struct json *w, const uintptr_t *pc, int n, int ret)
{
  json_raw(w, "[");
  json_flush(w);
  struct tl__sym f[TL__SYM_INLINE_MAX];
  for (int i = 0; i < n; i++) {
    int m = tl__sym_lookup(pc[i], ret, f, TL__SYM_INLINE_MAX);
    for (int s = 0; s < m; s++)
      json_frame(w, &f[s], i == n - 1 && s == m - 1);
  }
  json_raw(w, "]");
}

static void json_entry(struct json *w, void (*entry)(void))
{
  if (entry == NULL) {
    json_raw(w, "null");
    return;
  }
  struct tl__sym f[TL__SYM_INLINE_MAX];
  int m = tl__sym_lookup((uintptr_t)entry, 0, f, TL__SYM_INLINE_MAX);
  json_frame(w, &f[m - 1], 1);
}

static const char *state_word(uint32_t state)
{
  switch (state) {
  case TL__NEW:
    return "never started";
  case TL__SUSPENDED:
    return "suspended";
  case TL__ABANDONED:
    return "abandoned";
  default:
    return "running";
  }
}

static void json_group(struct tl__job *j, struct json *w, const struct group *g, int last)
{
  const struct rec *r = &scratch.recs[g->first];
  json_fmt(w, "{\"count\": %llu, \"ids\": [", (unsigned long long)g->count);
  for (uint64_t i = 0; i < g->count && i < IDS_SHOWN; i++)
    json_fmt(w, "%s%llu", i > 0 ? ", " : "", (unsigned long long)g->ids[i]);
  json_fmt(w, "], \"id\": %llu, \"name\": ", (unsigned long long)r->id);
  if (r->name != 0 && g->same_name)
    json_str(w, scratch.pool + r->name - 1);
  else
    json_raw(w, "null");
  json_fmt(w, ", \"state\": \"%s\", \"kind\": \"%s\"", state_word(r->state), kind_name(r->kind));
  if (r->state == TL__RUNNING)
    json_fmt(w, ", \"running\": \"%s\", \"running_on\": %llu",
        r->here ? (j->kind == TL__JOB_LEAK ? "exit was called in it" : "it called tl_dump")
                : r->running_on != 0 ? "on another thread" : "",
        (unsigned long long)r->running_on);
  if (g->same_parent)
    json_fmt(w, ", \"parent\": %llu", (unsigned long long)r->parent);
  else
    json_raw(w, ", \"parent\": null");
  json_raw(w, ", \"entry\": ");
  json_flush(w);
  json_entry(w, r->entry);
  json_raw(w, ", \"created\": ");
  const uintptr_t *pc;
  int n;
  depot_frames(r->created, &pc, &n);
  if (n > 0)
    json_frames(w, pc, n, 1);
  else
    json_raw(w, "null");
  if (r->state == TL__SUSPENDED) {
    json_raw(w, ", \"suspended\": {\"frames\": ");
    depot_frames(r->suspended, &pc, &n);
    if (n > 0)
      json_frames(w, pc, n, 1);
    else
      json_raw(w, r->unwound == 0 ? "[]" : "null");
    json_raw(w, ", \"tail_call\": ");
    json_raw(w, r->unwound == 0 ? "true" : "false");
    json_raw(w, ", \"unknown\": ");
    if (r->unwound < 0)
      json_str(w, r->why);
    else
      json_raw(w, "null");
    json_raw(w, ", \"unreliable_shared_with\": ");
    if (g->key.shared)
      json_fmt(w, "%llu}", (unsigned long long)r->shared_with);
    else
      json_raw(w, "null}");
  } else if (r->state == TL__RUNNING && r->here && j->here_n > 0) {
    json_raw(w, ", \"running_at\": ");
    json_frames(w, j->here_bt, j->here_n, 1);
  }
  json_fmt(w, ", \"locals\": {\"count\": %llu, \"first_task_count\": %llu, \"held_when_abandoned\": %s, \"values\": [",
      (unsigned long long)g->nloc, (unsigned long long)r->nloc, r->state == TL__ABANDONED ? "true" : "false");
  const struct local *l = (const struct local *)(scratch.pool + r->loc);
  for (uint32_t i = 0; i < r->nlisted; i++) {
    char name[TL__NAME_LEN];
    tl__safe_str(name, sizeof name, tl__key_name(l[i].key));
    json_fmt(w, "%s{\"key\": %llu, \"name\": ", i > 0 ? ", " : "", (unsigned long long)l[i].key);
    if (name[0] != '\0')
      json_str(w, name);
    else
      json_raw(w, "null");
    json_fmt(w, ", \"value\": \"%p\"}", l[i].value);
  }
  json_raw(w, "]}}");
  json_raw(w, last ? "" : ",");
  json_flush(w);
}

static void json_drops(struct json *w, uint64_t n)
{
  int first = 1;
  for (uint64_t i = 0; i < n && i < TL__DROPS_KEPT; i++) {
    const struct tl__drop *d = tl__drop_get(i);
    if (d == NULL)
      continue;
    char key[TL__NAME_LEN];
    tl__safe_str(key, sizeof key, d->key_name);
    json_fmt(w, "%s{\"value\": \"%p\", \"key\": %llu, \"key_name\": ", first ? "" : ",", d->value,
        (unsigned long long)d->key);
    first = 0;
    if (key[0] != '\0')
      json_str(w, key);
    else
      json_raw(w, "null");
    json_fmt(w, ", \"task\": %llu, \"task_name\": ", (unsigned long long)d->task);
    if (d->task_name[0] != '\0')
      json_str(w, d->task_name);
    else
      json_raw(w, "null");
    json_raw(w, ", \"when\": ");
    json_str(w, drop_when(d));
    json_raw(w, ", \"entry\": ");
    json_flush(w);
    json_entry(w, d->entry);
    json_raw(w, ", \"set_at\": ");
    if (d->set_n > 0)
      json_frames(w, d->set, (int)d->set_n, 1);
    else
      json_raw(w, "null");
    json_raw(w, ", \"created\": ");
    if (d->bt_n > 0 && d->how != TL__DROP_THREAD_EXIT)
      json_frames(w, d->bt, (int)d->bt_n, 1);
    else
      json_raw(w, "null");
    json_raw(w, "}");
    json_flush(w);
  }
}

static void print_json(struct tl__job *j, const struct totals *t)
{
  struct json w = {.j = j};
  /* A forked process's lines end with its pid in text; here the document
   * says it, and nothing may follow a line's JSON. */
  int tag = j->tag;
  j->tag = 0;
  json_raw(&w, "{");
  json_flush(&w);
  json_fmt(&w, "\"report\": \"%s\", \"pid\": %d, \"tasks\": %llu, \"locals\": %llu, ", t->what, (int)j->pid,
      (unsigned long long)t->tasks, (unsigned long long)t->locals);
  json_fmt(&w, "\"groups_total\": %u, \"groups_described\": %u, \"report_max\": %u, ", (unsigned)(scratch.ngroups ? scratch.ngroups - 1 : 0),
      (unsigned)t->described, (unsigned)tl__opt.report_max);
  json_fmt(&w, "\"tasks_not_described\": %llu, \"abandoned_not_kept\": %llu, \"groups\": [",
      (unsigned long long)t->undescribed, (unsigned long long)t->unkept);
  json_flush(&w);
  for (uint32_t i = 0; i < t->described; i++)
    json_group(j, &w, &scratch.groups[scratch.group_order[i]], i + 1 == t->described);
  json_fmt(&w, "], \"dropped_total\": %llu, \"dropped\": [", (unsigned long long)t->drops);
  json_flush(&w);
  json_drops(&w, t->drops);
  json_raw(&w, "], \"kinds\": {");
  json_fmt(&w, "\"leaked\": %llu, \"parked\": %llu, \"undecided\": ", (unsigned long long)t->leaked,
      (unsigned long long)t->parked);
  if (t->undecided != NULL)
    json_str(&w, t->undecided);
  else
    json_raw(&w, "null");
  json_fmt(&w, "}, \"summary\": {\"tasks\": %llu, \"locals\": %llu}", (unsigned long long)t->tasks,
      (unsigned long long)t->locals);
  json_flush(&w);
  json_raw(&w, "}");
  json_flush(&w);
  j->tag = tag;
}

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
  if (gather_tasks(j, &g) != 0) {
    tl__job_line(j, "%s report: the task registry is busy on this thread; no report", t.what);
    scratch_unmap();
    return;
  }
  group_tasks();

  /* Abandoned tasks beyond those task/life.c keeps are counted, not shown
   * (and, not seen by the scan, taken as parked). */
  if (tl__opt.leaks && tl__opt.leak_kinds == TL__KINDS_ALL) {
    struct tl__stats st = {0};
    tl__task_stats(&st);
    if (st.abandoned > scratch.kept)
      t.unkept = st.abandoned - scratch.kept;
  }
  t.leaked = g.leaked;
  t.parked = g.parked + t.unkept;
  t.undecided = tl__reach_undecided();
  t.drops = tl__drops_count();
  t.tasks = j->tasks + t.unkept;
  t.locals = j->locals + t.drops;
  uint32_t ngroups = scratch.ngroups > 0 ? scratch.ngroups - 1 : 0;
  uint32_t max = tl__opt.report_max > 0 ? (uint32_t)tl__opt.report_max : 0;
  t.described = ngroups < max ? ngroups : max;
  t.undescribed = j->tasks;
  for (uint32_t i = 0; i < t.described; i++)
    t.undescribed -= scratch.groups[scratch.group_order[i]].count;

  /* libdw allocates: not when even the report's own memory was short. */
  tl__sym_begin(scratch.map != NULL);
  if (tl__opt.report_json)
    print_json(j, &t);
  else
    print_text(j, &t);
  tl__sym_end();
  scratch_unmap();
  j->tasks = t.tasks;
  j->locals = t.locals;
}
