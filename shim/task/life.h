/* life.c: what make.c needs of a task's end (private to the task module). */
#ifndef TL_TASK_LIFE_H
#define TL_TASK_LIFE_H

#include "../internal.h"
#include "registry.h"

void tl__task_drop(struct tl__thread *th, struct tl__task *t, enum tl__gone how); /* out of every index, record freed */
void tl__task_abandon(struct tl__thread *th, struct tl__task *t); /* its context made again, its stack held */

#endif /* TL_TASK_LIFE_H */
