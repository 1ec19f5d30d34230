/* The reachability scan's memory and its flood fill: the work list, the
 * words read, and the tasks and heap blocks they reach (reach.c says what
 * the scan is for). */
#include "../internal.h"
#include "scan.h"
#include "../heapblocks.h"
#include "../backtrace.h"
#include "../thread.h"
#include "../task/registry.h"
#include "../alloc.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

struct tl__scan_state tl__scan;

/* ------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------ */

void *tl__scan_scratch(size_t bytes)
{
  if (tl__scan.nregions == REGIONS || bytes == 0)
    return NULL;
  bytes = (bytes + 4095) & ~(size_t)4095;
  void *p = tl__scratch(bytes);
  if (p == NULL)
    return NULL;
  tl__scan.regions[tl__scan.nregions++] = (struct region){p, bytes};
  return p;
}

void tl__scan_undecided(const char *why)
{
  if (tl__scan.undecided == NULL)
    tl__scan.undecided = why;
}

/* ------------------------------------------------------------------------
 * Lookups
 * ------------------------------------------------------------------------ */

/* The heap block holding p, or SIZE_MAX. */
size_t tl__scan_block_of(uintptr_t p)
{
  const struct tl__heapblock *b = tl__scan.heap.blocks;
  size_t lo = 0, hi = tl__scan.heap.n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (b[mid].addr <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == 0)
    return SIZE_MAX;
  const struct tl__heapblock *c = &b[lo - 1];
  /* A block of size 0 still has an address that a pointer may hold. */
  return p - c->addr < (c->size ? c->size : 1) ? lo - 1 : SIZE_MAX;
}

void tl__scan_push(uint32_t kind, uint32_t idx, uintptr_t lo, uintptr_t hi)
{
  if (tl__scan.nwork == tl__scan.cap_work) {
    tl__scan_undecided("the scan's work list is full");
    return;
  }
  tl__scan.work[tl__scan.nwork++] = (struct work){kind, idx, lo, hi};
}

static void reach_task(uint32_t i)
{
  struct rtask *r = &tl__scan.tasks[i];
  if (r->reached)
    return;
  r->reached = 1;
  r->seen_at = tl__scan.at;
  r->via = (uint8_t)tl__scan.via;
  tl__scan_push(W_TASK, i, 0, 0);
  if (r->hi > r->from)
    tl__scan_push(W_STACK, i, r->from, r->hi);
}

void tl__scan_check_word(uintptr_t w)
{
  if (w - tl__scan.bmin < tl__scan.bmax - tl__scan.bmin) {
    size_t b = tl__scan_block_of(w);
    if (b != SIZE_MAX) {
      uint8_t m = tl__scan.block_mark[b];
      if (!(m & 1)) {
        tl__scan.block_mark[b] = m | 1;
        const struct tl__heapblock *hb = &tl__scan.heap.blocks[b];
        tl__scan_push(W_BLOCK, (uint32_t)b, hb->addr, hb->addr + hb->size);
      }
      if (!(m & 2) && tl__scan.block_tasks[b] != UINT32_MAX) {
        tl__scan.block_mark[b] |= 2;
        for (uint32_t k = 0; k < tl__scan.block_task_n[b]; k++)
          reach_task(tl__scan.block_task_list[tl__scan.block_tasks[b] + k]);
      }
      return;
    }
  }
  if (w - tl__scan.kmin < tl__scan.kmax - tl__scan.kmin) {
    /* The last key starting at or below w, then back while a key before
     * may still reach over w. */
    size_t lo = 0, hi = tl__scan.nkeys;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (tl__scan.keys[mid].lo <= w)
        lo = mid + 1;
      else
        hi = mid;
    }
    for (size_t k = lo; k-- > 0 && tl__scan.keys[k].maxhi > w;) {
      struct key *ky = &tl__scan.keys[k];
      if (ky->done || w >= ky->hi)
        continue;
      ky->done = 1;
      for (uint32_t t = 0; t < ky->n; t++)
        reach_task(tl__scan.key_tasks[ky->first + t]);
    }
  }
}

/* ------------------------------------------------------------------------
 * Reading memory
 * ------------------------------------------------------------------------ */

/* Reads [lo, hi) word by word; returns 0, or EFAULT when a part of it
 * could not be read (it is skipped). */
int tl__scan_words(uintptr_t lo, uintptr_t hi)
{
  int err = 0;
  lo = (lo + WORD - 1) & ~(uintptr_t)(WORD - 1);
  while (lo + WORD <= hi) {
    size_t n = hi - lo < READ_CHUNK ? (size_t)(hi - lo) : READ_CHUNK;
    n &= ~(size_t)(WORD - 1);
    if (tl__safe_read(tl__scan.buf, (const void *)lo, n) != 0) {
      /* The rest of this page may be gone; the next page may not. */
      err = EFAULT;
      uintptr_t next = (lo | 4095) + 1;
      if (next <= lo || next >= hi)
        break;
      lo = next;
      continue;
    }
    tl__scan.bytes += n;
    for (size_t i = 0; i < n / WORD; i++) {
      tl__scan.at = lo + i * WORD;
      tl__scan_check_word(tl__scan.buf[i]);
    }
    tl__scan.at = 0;
    lo += n;
  }
  return err;
}

/* The first index of a sorted, disjoint array of ranges whose hi is above p. */
static size_t first_above(const struct range *a, size_t n, uintptr_t p)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid].hi <= p)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* [lo, hi) without the heap's blocks. */
static int scan_without_blocks(uintptr_t lo, uintptr_t hi)
{
  int err = 0;
  const struct tl__heapblock *b = tl__scan.heap.blocks;
  size_t i = tl__scan_block_of(lo);
  if (i == SIZE_MAX) {
    /* The first block at or above lo. */
    size_t l = 0, h = tl__scan.heap.n;
    while (l < h) {
      size_t mid = l + (h - l) / 2;
      if (b[mid].addr < lo)
        l = mid + 1;
      else
        h = mid;
    }
    i = l;
  }
  uintptr_t at = lo;
  for (; i < tl__scan.heap.n && b[i].addr < hi && at < hi; i++) {
    if (b[i].addr > at)
      err |= tl__scan_words(at, b[i].addr);
    uintptr_t end = b[i].addr + (b[i].size ? b[i].size : 1);
    if (end > at)
      at = end;
  }
  if (at < hi)
    err |= tl__scan_words(at, hi);
  return err;
}

/* [lo, hi) without the holes, and for roots without the heap's blocks. */
static int scan_range(uintptr_t lo, uintptr_t hi, int root)
{
  int err = 0;
  uintptr_t at = lo;
  for (size_t i = first_above(tl__scan.holes, tl__scan.nholes, lo);
       i < tl__scan.nholes && tl__scan.holes[i].lo < hi && at < hi; i++) {
    if (tl__scan.holes[i].lo > at)
      err |= root ? scan_without_blocks(at, tl__scan.holes[i].lo) : tl__scan_words(at, tl__scan.holes[i].lo);
    if (tl__scan.holes[i].hi > at)
      at = tl__scan.holes[i].hi;
  }
  if (at < hi)
    err |= root ? scan_without_blocks(at, hi) : tl__scan_words(at, hi);
  return err;
}

/* The values of a value table (its handle, read once), as words. */
void tl__scan_vtab(const struct tl__vtab *vt)
{
  if (vt == NULL || vt == tl__vt_empty)
    return;
  const struct tl__ent *ent = tl__vt_ent(vt);
  uint32_t mask = tl__vt_mask(vt);
  if (mask >= (1u << 28))
    return;
  tl__scan_words((uintptr_t)ent, (uintptr_t)(ent + mask + 1));
}

void tl__scan_defers(const struct tl__defer *d)
{
  for (int i = 0; d != NULL && i < 100000; i++) {
    struct tl__defer c;
    if (tl__safe_read(&c, d, sizeof c) != 0)
      break;
    tl__scan_check_word((uintptr_t)c.arg);
    d = c.next;
  }
}

/* What the library keeps for a task that the program gave it: its values,
 * the values its open bindings will restore, its deferred calls' arguments
 * and its inherited values. */
static void scan_task_values(const struct rtask *r)
{
  tl__scan_vtab(r->vt);
  struct tl__task_ext x;
  if (r->x == NULL || tl__safe_read(&x, r->x, sizeof x) != 0)
    return;
  if (x.binds != NULL && x.nbinds < (1u << 20))
    tl__scan_words((uintptr_t)x.binds, (uintptr_t)(x.binds + x.nbinds));
  if (x.shared != NULL && x.nshared < (1u << 20))
    tl__scan_words((uintptr_t)x.shared, (uintptr_t)(x.shared + x.nshared));
  tl__scan_defers(x.defers);
}

void tl__scan_drain(void)
{
  while (tl__scan.nwork > 0) {
    struct work w = tl__scan.work[--tl__scan.nwork];
    tl__scan.via = w.kind;
    switch (w.kind) {
    case W_ROOT:
      if (scan_range(w.lo, w.hi, 1) != 0)
        tl__scan_undecided("a root could not be read");
      break;
    case W_BLOCK:
      scan_range(w.lo, w.hi, 0);
      break;
    case W_STACK:
      tl__scan_words(w.lo, w.hi);
      break;
    case W_TASK:
      scan_task_values(&tl__scan.tasks[w.idx]);
      break;
    }
  }
}
