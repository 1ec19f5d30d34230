/* One scan: the tasks copied from the registry, the keys that reach them,
 * the holes and the roots, then the flood fill (scan.c). */
#include "../internal.h"
#include "classify.h"
#include "scan.h"
#include "roots.h"
#include "../reach.h"
#include "../options.h"
#include "../alloc.h"
#include "../thread.h"
#include "../task/registry.h"
#include "../heapblocks.h"
#include "../ownstack.h"
#include "../backtrace.h"
#include "../suppress.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * The tasks
 * ------------------------------------------------------------------------ */

static int count_task(struct tl__task *t, void *arg)
{
  (void)t;
  (*(size_t *)arg)++;
  return 0;
}

/* Copies a task, with the registry locked: only its record's fields. */
static int copy_task(struct tl__task *t, void *arg)
{
  (void)arg;
  uint32_t state = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (t->id == 0 || state == TL__FINISHED || tl__scan.ntasks == tl__scan.cap_tasks)
    return 0;
  struct rtask *r = &tl__scan.tasks[tl__scan.ntasks++];
  memset(r, 0, offsetof(struct rtask, bt));
  r->rec = t;
  r->id = t->id;
  r->lo = t->lo;
  r->hi = t->hi;
  r->state = (uint8_t)state;
  r->flags = t->flags;
  r->entry = t->entry;
  r->x = t->x;
  r->vt = state == TL__ABANDONED ? NULL : atomic_load_explicit(&t->vt, memory_order_acquire);
  int own_ctx = (state == TL__NEW || state == TL__SUSPENDED) && __atomic_load_n(&t->mapped, __ATOMIC_RELAXED);
  r->ctx = own_ctx ? (uintptr_t)t->ctx : 0;
  /* A task displaced from its stack and not run since may have been ended
   * by a pool that gave the stack to the next task (task/release.c
   * releases it at exit): never called leaked in a dump. */
  r->cand = !(t->flags & TL__F_ROOT) && (state == TL__NEW || state == TL__SUSPENDED || state == TL__ABANDONED) &&
            r->hi > r->lo && !tl__displaced(t);
  if (state == TL__ABANDONED && t->x != NULL)
    r->vt = t->x->held;
  if (tl__suppress_active() && t->x != NULL && t->x->bt != NULL) {
    uint32_t n = t->x->bt_n <= TL__BT_MAX ? t->x->bt_n : TL__BT_MAX;
    if (tl__safe_read(r->bt, t->x->bt, n * sizeof r->bt[0]) == 0)
      r->bt_n = n;
  }
  return 0;
}

/* Where a task's stack is read from: the stack pointer its context holds
 * (saved by a switch, or set by makecontext for a task never started), if
 * the context is still its own and the pointer inside the stack, else the
 * whole stack. */
static void stack_start(struct rtask *r)
{
  r->from = r->lo;
  if (r->ctx == 0)
    return;
  ucontext_t uc;
  if (tl__safe_read(&uc, (const void *)r->ctx, sizeof uc) != 0)
    return;
  uintptr_t sp = TL__UC_SP(&uc);
  if (sp >= r->lo + RED_ZONE && sp < r->hi)
    r->from = (sp - RED_ZONE) & ~(uintptr_t)(WORD - 1);
}

static int by_rec(const struct rtask *a, const struct rtask *b)
{
  return (uintptr_t)a->rec < (uintptr_t)b->rec;
}


static int key_less(const struct key *a, const struct key *b)
{
  return a->lo < b->lo || (a->lo == b->lo && a->hi < b->hi);
}

DEFINE_SORT(sort_tasks, struct rtask, by_rec)
DEFINE_SORT(sort_keys, struct key, key_less)

/* ------------------------------------------------------------------------
 * The scan
 * ------------------------------------------------------------------------ */

/* What other threads did to the heap and to their tasks while the scan ran
 * is seen through the sum of every thread's switches and the registry's
 * changes. */
static uint64_t activity(void)
{
  uint64_t n = tl__heapblocks_changes();
  for (const struct tl__thread *th = tl__thread_list(); th != NULL; th = th->next)
    n += __atomic_load_n(&th->switches, __ATOMIC_RELAXED);
  return n;
}

/* Builds the keys: each candidate's context and stack, or the heap blocks
 * holding them. */
static int build_keys(void)
{
  size_t n = tl__scan.heap.n;
  tl__scan.block_mark = tl__scan_scratch(n + 1);
  tl__scan.block_tasks = tl__scan_scratch((n + 1) * sizeof *tl__scan.block_tasks);
  tl__scan.block_task_n = tl__scan_scratch((n + 1) * sizeof *tl__scan.block_task_n);
  tl__scan.block_task_list = tl__scan_scratch((2 * tl__scan.ntasks + 1) * sizeof *tl__scan.block_task_list);
  tl__scan.keys = tl__scan_scratch((2 * tl__scan.ntasks + 1) * sizeof *tl__scan.keys);
  struct key *ktmp = tl__scan_scratch((2 * tl__scan.ntasks + 1) * sizeof *ktmp);
  tl__scan.key_tasks = tl__scan_scratch((2 * tl__scan.ntasks + 1) * sizeof *tl__scan.key_tasks);
  if (tl__scan.block_mark == NULL || tl__scan.block_tasks == NULL || tl__scan.block_task_n == NULL ||
      tl__scan.block_task_list == NULL || tl__scan.keys == NULL || ktmp == NULL || tl__scan.key_tasks == NULL)
    return ENOMEM;
  memset(tl__scan.block_tasks, 0xff, n * sizeof *tl__scan.block_tasks);
  /* Pairs (block, task): counted, then placed. */
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      uint32_t at = 0;
      for (size_t b = 0; b < n; b++)
        if (tl__scan.block_task_n[b] > 0) {
          tl__scan.block_tasks[b] = at;
          at += tl__scan.block_task_n[b];
          tl__scan.block_task_n[b] = 0;
        }
    }
    for (size_t i = 0; i < tl__scan.ntasks; i++) {
      const struct rtask *r = &tl__scan.tasks[i];
      if (!r->cand)
        continue;
      size_t bs = tl__scan_block_of(r->lo), bc = r->ctx != 0 ? tl__scan_block_of(r->ctx) : SIZE_MAX;
      size_t both[2] = {bs, bc == bs ? SIZE_MAX : bc};
      for (int k = 0; k < 2; k++)
        if (both[k] != SIZE_MAX) {
          if (pass == 1)
            tl__scan.block_task_list[tl__scan.block_tasks[both[k]] + tl__scan.block_task_n[both[k]]] = (uint32_t)i;
          tl__scan.block_task_n[both[k]]++;
        }
    }
  }
  /* Ranges outside the heap: (lo, hi, task) as keys of one task, sorted,
   * then those of equal bounds merged. */
  size_t nk = 0;
  for (size_t i = 0; i < tl__scan.ntasks; i++) {
    const struct rtask *r = &tl__scan.tasks[i];
    if (!r->cand)
      continue;
    if (tl__scan_block_of(r->lo) == SIZE_MAX)
      tl__scan.keys[nk++] = (struct key){.lo = r->lo, .hi = r->hi, .first = (uint32_t)i};
    if (r->ctx != 0 && tl__scan_block_of(r->ctx) == SIZE_MAX)
      tl__scan.keys[nk++] = (struct key){.lo = r->ctx, .hi = r->ctx + sizeof(ucontext_t), .first = (uint32_t)i};
  }
  struct key *s = sort_keys(tl__scan.keys, ktmp, nk);
  size_t m = 0;
  for (size_t i = 0; i < nk; i++) {
    tl__scan.key_tasks[i] = s[i].first;
    if (m > 0 && tl__scan.keys[m - 1].lo == s[i].lo && tl__scan.keys[m - 1].hi == s[i].hi) {
      tl__scan.keys[m - 1].n++;
      continue;
    }
    tl__scan.keys[m++] = (struct key){.lo = s[i].lo, .hi = s[i].hi, .first = (uint32_t)i, .n = 1};
  }
  tl__scan.nkeys = m;
  uintptr_t maxhi = 0;
  tl__scan.kmin = m > 0 ? tl__scan.keys[0].lo : 0;
  for (size_t i = 0; i < m; i++) {
    if (tl__scan.keys[i].hi > maxhi)
      maxhi = tl__scan.keys[i].hi;
    tl__scan.keys[i].maxhi = maxhi;
  }
  tl__scan.kmax = maxhi;
  tl__scan.bmin = n > 0 ? tl__scan.heap.blocks[0].addr : 0;
  tl__scan.bmax = 0;
  for (size_t b = 0; b < n; b++)
    if (tl__scan.heap.blocks[b].addr + tl__scan.heap.blocks[b].size + 1 > tl__scan.bmax)
      tl__scan.bmax = tl__scan.heap.blocks[b].addr + tl__scan.heap.blocks[b].size + 1;
  return 0;
}

/* Looked up at load: dlsym allocates when a symbol is missing, and a
 * report must not. */
static void (*asan_shadow)(size_t *scale, size_t *offset);

void tl__reach_setup(void)
{
  *(void **)&asan_shadow = dlsym(RTLD_DEFAULT, "__asan_get_shadow_mapping");
}

/* AddressSanitizer's shadow memory: terabytes of the address space, none of
 * it the program's data. */
static void shadow_of_asan(struct shadow *sh)
{
  sh->lo = sh->hi = 0;
  if (asan_shadow == NULL)
    return;
  size_t scale = 0, offset = 0;
  asan_shadow(&scale, &offset);
  sh->lo = offset;
  sh->hi = offset + ((uintptr_t)1 << 48 >> scale);
}

__attribute__((noinline)) static void classify(struct tl__job *j, uintptr_t sp)
{
  tl__scan.undecided = NULL;
  /* The tasks, twice: counted, then copied into memory of their size. */
  size_t n = 0;
  if (tl__task_foreach(count_task, &n) != 0) {
    tl__scan_undecided("the task registry is busy on this thread");
    return;
  }
  tl__scan.cap_tasks = n + 64;
  tl__scan.tasks = tl__scan_scratch(tl__scan.cap_tasks * sizeof *tl__scan.tasks);
  struct rtask *ttmp = tl__scan_scratch(tl__scan.cap_tasks * sizeof *ttmp);
  tl__scan.buf = tl__scan_scratch(READ_CHUNK);
  if (tl__scan.tasks == NULL || ttmp == NULL || tl__scan.buf == NULL) {
    tl__scan_undecided("out of memory");
    return;
  }
  uint64_t before = activity();
  tl__scan.ntasks = 0;
  if (tl__task_foreach(copy_task, NULL) != 0) {
    tl__scan_undecided("the task registry is busy on this thread");
    return;
  }
  struct rtask *sorted = sort_tasks(tl__scan.tasks, ttmp, tl__scan.ntasks);
  if (sorted != tl__scan.tasks)
    memcpy(tl__scan.tasks, sorted, tl__scan.ntasks * sizeof *sorted);
  /* The tasks are copied even when nothing can be decided: suppressions
   * apply to them all the same. The program's thread-local state that
   * TASKLOCAL_TASK_LOCAL keeps per task lives in the library's own blocks,
   * which the scan does not read. */
  if (tl__opt.task_local != NULL) {
    tl__scan_undecided("TASKLOCAL_TASK_LOCAL keeps program state that the scan does not read");
    return;
  }
  if (tl__heapblocks_state() == TL__HEAP_OFF) {
    tl__scan_undecided(tl__opt.leaks
        ? "the heap's blocks are not known (the allocation functions in use are not the library's)"
        : "TASKLOCAL_LEAKS was off at start: the heap's blocks are not known");
    return;
  }
  for (size_t i = 0; i < tl__scan.ntasks; i++)
    if (tl__scan.tasks[i].cand)
      stack_start(&tl__scan.tasks[i]);

  if (tl__heapblocks_snapshot(&tl__scan.heap) != 0) {
    tl__scan_undecided("the heap's blocks could not be copied");
    return;
  }
  if (tl__scan.heap.unsure)
    tl__scan_undecided("some heap blocks are not known");
  if (tl__scan_read_maps() != 0) {
    tl__scan_undecided("/proc/self/maps could not be read");
    return;
  }
  if (build_keys() != 0) {
    tl__scan_undecided("out of memory");
    return;
  }
  tl__scan.cap_holes = tl__scan.ntasks + 4096 + tl__own_pages_count() + REGIONS + 64;
  tl__scan.holes = tl__scan_scratch(tl__scan.cap_holes * sizeof *tl__scan.holes);
  struct range *htmp = tl__scan_scratch(tl__scan.cap_holes * sizeof *htmp);
  tl__scan.cap_work = tl__scan.heap.n + 2 * tl__scan.ntasks + 65536;
  tl__scan.work = tl__scan_scratch(tl__scan.cap_work * sizeof *tl__scan.work);
  if (tl__scan.holes == NULL || htmp == NULL || tl__scan.work == NULL) {
    tl__scan_undecided("out of memory");
    return;
  }
  /* Holes: the library's data and pages, the candidates' stacks, and the
   * calling stack below the scan (on a stack of the report's own, all of
   * that stack), and the scan's own memory, all mapped by now. */
  tl__own_pages(tl__scan_own_pages, NULL);
  tl__heapblocks_tables(tl__scan_own_pages, NULL);
  tl__scan_hole((uintptr_t)tl__scan.heap.blocks, (uintptr_t)tl__scan.heap.blocks + tl__scan.heap.mapped);
  uintptr_t own_lo, own_hi;
  tl__own_stack_range(&own_lo, &own_hi);
  tl__scan_hole(own_lo, own_hi);
  dl_iterate_phdr(tl__scan_own_segments, (void *)&tl__scan);
  for (int i = 0; i < tl__scan.nregions; i++)
    tl__scan_hole((uintptr_t)tl__scan.regions[i].p, (uintptr_t)tl__scan.regions[i].p + tl__scan.regions[i].bytes);
  for (size_t i = 0; i < tl__scan.ntasks; i++)
    if (tl__scan.tasks[i].cand)
      tl__scan_hole(tl__scan.tasks[i].lo, tl__scan.tasks[i].hi);
  struct range m = tl__scan_mapping_of(sp);
  const struct tl__task *here = j->here;
  int on_here = here != NULL && sp >= here->lo && sp < here->hi;
  tl__scan_hole(m.lo, here == NULL || on_here ? sp : m.hi);
  tl__scan_merge_holes(htmp);

  struct shadow sh;
  shadow_of_asan(&sh);
  tl__scan_push_mappings(sh);
  /* Running tasks' stacks, which may lie in heap blocks; the calling
   * task's from the scan's stack pointer up. Roots' values. */
  for (size_t i = 0; i < tl__scan.ntasks; i++) {
    struct rtask *r = &tl__scan.tasks[i];
    if (r->cand)
      continue;
    r->reached = 1;
    tl__scan_push(W_TASK, (uint32_t)i, 0, 0);
    if (r->state == TL__RUNNING && !(r->flags & TL__F_ROOT) && r->hi > r->lo) {
      uintptr_t from = r->rec == here && on_here ? sp : r->lo;
      tl__scan_push(W_STACK, (uint32_t)i, from, r->hi);
    }
  }
  tl__scan_drain();
  tl__scan_library_roots();
  tl__scan_drain();
  if (activity() != before)
    tl__scan_undecided("other threads switched tasks or used the heap while the scan ran");
}

/* The entry of the scan: callee-saved registers are spilled here, and the
 * scan reads the calling stack from this frame up; the frames of the scan
 * itself lie below and are not read. */
__attribute__((noinline)) void tl__scan_entry(struct tl__job *j)
{
  __builtin_unwind_init();
  uintptr_t sp = tl__sp();
  classify(j, sp);
  __asm__ volatile("" ::: "memory");
}
