/* A report's scratch memory (report.c says why it is one mapping): the
 * records, the pool of names and locals, the depot of unique backtraces,
 * and the sort they all use. */
#include "../internal.h"
#include "scratch.h"
#include "../alloc.h"

#include <string.h>

struct tl__report_scratch tl__report_scratch;

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
int tl__report_scratch_map(uint64_t n)
{
  for (;;) {
    uint64_t cap = n + MORE_TASKS;
    uint64_t stacks = 2 * cap + 1 < DEPOT_MAX ? 2 * cap + 1 : DEPOT_MAX;
    uint64_t groups = cap + 1 < GROUPS_MAX ? cap + 1 : GROUPS_MAX;
    uint64_t pool = cap * POOL_PER_TASK < POOL_MAX ? cap * POOL_PER_TASK : POOL_MAX;
    size_t size = round_up(cap * sizeof(struct report_task)) + round_up(cap * sizeof(uint32_t)) + round_up(pool) +
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
    memset(&tl__report_scratch, 0, sizeof tl__report_scratch);
    tl__report_scratch.map = m;
    tl__report_scratch.map_size = size;
    char *p = m;
    tl__report_scratch.recs = (struct report_task *)p, p += round_up(cap * sizeof(struct report_task));
    tl__report_scratch.caprecs = (uint32_t)cap;
    tl__report_scratch.order = (uint32_t *)p, p += round_up(cap * sizeof(uint32_t));
    tl__report_scratch.pool = p, p += round_up(pool);
    tl__report_scratch.pool_cap = pool;
    tl__report_scratch.stacks = (struct stack *)p, p += round_up(stacks * sizeof(struct stack));
    tl__report_scratch.capstacks = (uint32_t)stacks;
    tl__report_scratch.nstacks = 1;
    tl__report_scratch.stack_head = (uint32_t *)p, p += round_up(stacks * sizeof(uint32_t));
    tl__report_scratch.pcs = (uintptr_t *)p, p += round_up(stacks * 4 * sizeof(uintptr_t));
    tl__report_scratch.cappcs = stacks * 4;
    tl__report_scratch.groups = (struct group *)p, p += round_up(groups * sizeof(struct group));
    tl__report_scratch.capgroups = (uint32_t)groups;
    tl__report_scratch.ngroups = 1;
    tl__report_scratch.group_head = (uint32_t *)p, p += round_up(groups * sizeof(uint32_t));
    tl__report_scratch.group_order = (uint32_t *)p;
    return 0;
  }
}

void tl__report_scratch_unmap(void)
{
  if (tl__report_scratch.map != NULL)
    tl__scratch_free(tl__report_scratch.map, tl__report_scratch.map_size);
  tl__report_scratch.map = NULL;
}

/* n bytes of the pool, or NULL when it is full. */
void *tl__report_pool_take(size_t n, uint32_t *off)
{
  n = (n + 7) & ~(size_t)7;
  if (tl__report_scratch.pool_used + n > tl__report_scratch.pool_cap)
    return NULL;
  *off = (uint32_t)tl__report_scratch.pool_used;
  tl__report_scratch.pool_used += n;
  return tl__report_scratch.pool + *off;
}

uint32_t tl__report_hash_words(const uintptr_t *w, size_t n, uint64_t seed)
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
uint32_t tl__report_intern(const uintptr_t *pc, uint32_t n)
{
  if (n == 0)
    return 0;
  uint32_t h = tl__report_hash_words(pc, n, n);
  uint32_t *slot = &tl__report_scratch.stack_head[h % tl__report_scratch.capstacks];
  for (uint32_t i = *slot; i != 0; i = tl__report_scratch.stacks[i].next)
    if (tl__report_scratch.stacks[i].hash == h && tl__report_scratch.stacks[i].n == n &&
        memcmp(&tl__report_scratch.pcs[tl__report_scratch.stacks[i].off], pc, n * sizeof *pc) == 0)
      return i;
  if (tl__report_scratch.nstacks >= tl__report_scratch.capstacks ||
      tl__report_scratch.npcs + n > tl__report_scratch.cappcs)
    return NOT_KEPT;
  uint32_t i = tl__report_scratch.nstacks++;
  tl__report_scratch.stacks[i] = (struct stack){h, n, (uint32_t)tl__report_scratch.npcs, *slot};
  memcpy(&tl__report_scratch.pcs[tl__report_scratch.npcs], pc, n * sizeof *pc);
  tl__report_scratch.npcs += n;
  *slot = i;
  return i;
}

/* Sorts n record or group numbers with heapsort: no allocation, and
 * O(n log n) whatever the input. */
void tl__report_sort_numbers(uint32_t *a, uint32_t n, int (*before)(uint32_t x, uint32_t y))
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
