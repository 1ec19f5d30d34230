/* The observers of a task's life: one table, a list of functions for each
 * kind of news (events.h), filled once at load by the layers that follow
 * tasks, each from a function of its own that tl__init calls. The
 * task module announces; it knows nobody who listens, so that it calls
 * only down, and a layer that begins to follow tasks touches only itself
 * and init.c. A layer registers only when it has something to do (tracing
 * on, a tool present): a kind with no observers costs a task's life a
 * load and a branch.
 */
#include "../internal.h"
#include "events.h"

struct tl__observers tl__observers;

int tl__task_observe(enum tl__news what, tl__observer fn)
{
  if (tl__observers.n[what] == TL__OBSERVERS_MAX)
    return -1;
  tl__observers.fn[what][tl__observers.n[what]++] = fn;
  return 0;
}

void tl__announce_all(struct tl__thread *th, enum tl__news what, const struct tl__event *ev)
{
  for (uint32_t i = 0; i < tl__observers.n[what]; i++)
    tl__observers.fn[what][i](th, ev);
}
