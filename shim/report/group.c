/* A report's second step: alike tasks put together, and the groups
 * ordered. */
#include "../internal.h"
#include "group.h"
#include "scratch.h"
#include "../reach.h"

#include <string.h>

/* ------------------------------------------------------------------------
 * Grouping alike tasks
 * ------------------------------------------------------------------------ */

static int by_id(uint32_t x, uint32_t y)
{
  return tl__report_scratch.recs[x].id < tl__report_scratch.recs[y].id;
}

/* Leaked tasks first, then the biggest groups. */
static int bigger_first(uint32_t x, uint32_t y)
{
  const struct group *a = &tl__report_scratch.groups[x], *b = &tl__report_scratch.groups[y];
  if ((a->key.kind == TL__KIND_LEAKED) != (b->key.kind == TL__KIND_LEAKED))
    return a->key.kind == TL__KIND_LEAKED;
  if (a->count != b->count)
    return a->count > b->count;
  return tl__report_scratch.recs[a->first].id < tl__report_scratch.recs[b->first].id;
}

static void like_of(const struct report_task *r, struct like *k)
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

int tl__report_same_name(const struct report_task *a, const struct report_task *b)
{
  if (a->name == 0 || b->name == 0)
    return a->name == b->name;
  return strcmp(tl__report_scratch.pool + a->name - 1, tl__report_scratch.pool + b->name - 1) == 0;
}

/* Alike tasks in groups, in order of their ids within each, and the
 * groups leaked first, then biggest first (the oldest first among
 * equals). */
void tl__report_group_tasks(void)
{
  if (tl__report_scratch.map == NULL)
    return;
  for (uint32_t i = 0; i < tl__report_scratch.nrecs; i++)
    tl__report_scratch.order[i] = i;
  tl__report_sort_numbers(tl__report_scratch.order, tl__report_scratch.nrecs, by_id);
  for (uint32_t k = 0; k < tl__report_scratch.nrecs; k++) {
    struct report_task *r = &tl__report_scratch.recs[tl__report_scratch.order[k]];
    struct like key;
    like_of(r, &key);
    uint32_t h = tl__report_hash_words((const uintptr_t *)&key, sizeof key / sizeof(uintptr_t), 0);
    uint32_t *slot = &tl__report_scratch.group_head[h % tl__report_scratch.capgroups];
    uint32_t gi = *slot;
    while (gi != 0 &&
           (tl__report_scratch.groups[gi].hash != h ||
            memcmp(&tl__report_scratch.groups[gi].key, &key, sizeof key) != 0))
      gi = tl__report_scratch.groups[gi].next;
    if (gi == 0) {
      if (tl__report_scratch.ngroups >= tl__report_scratch.capgroups)
        continue;
      gi = tl__report_scratch.ngroups++;
      struct group *g = &tl__report_scratch.groups[gi];
      memset(g, 0, sizeof *g);
      g->key = key;
      g->hash = h;
      g->first = tl__report_scratch.order[k];
      g->next = *slot;
      g->same_parent = g->same_name = 1;
      *slot = gi;
    }
    struct group *g = &tl__report_scratch.groups[gi];
    const struct report_task *first = &tl__report_scratch.recs[g->first];
    if (g->count < IDS_SHOWN)
      g->ids[g->count] = r->id;
    g->count++;
    g->nloc += r->nloc;
    g->same_parent &= r->parent == first->parent;
    g->same_name &= tl__report_same_name(r, first);
  }
  for (uint32_t i = 1; i < tl__report_scratch.ngroups; i++)
    tl__report_scratch.group_order[i - 1] = i;
  tl__report_sort_numbers(tl__report_scratch.group_order, tl__report_scratch.ngroups - 1, bigger_first);
}
