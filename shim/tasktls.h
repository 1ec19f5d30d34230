/* tasktls.c: thread-local state of unmodified code made per task
 * (TASKLOCAL_TASK_LOCAL; doc/task-local-tls.md). */
#ifndef TL_TASKTLS_H
#define TL_TASKTLS_H

#include "internal.h"

#define TL__TASKTLS_SYMS_MAX 16            /* sym: items */
#define TL__TASKTLS_SYM_SIZE_MAX 4096      /* bytes of one variable */

/* Something is named: every switch takes the C path (arch/<arch>.S reads
 * it as a 32-bit int), where the hooks below run. */
extern int tl__tasktls_on;

void tl__tasktls_setup(void);              /* tl__init, after the options: TASKLOCAL_TASK_LOCAL's items */
/* Before the real switch from c to t (t != c), on th: c's values are
 * saved and t's put in their place. */
void tl__tasktls_switch(struct tl__thread *th, struct tl__task *c, struct tl__task *t);
/* In tl__init, after tl__tasktls_setup: a task's start, end and release
 * (task/events.h), when something is named. */
void tl__tasktls_observe_tasks(void);
void tl__tasktls_thread_exit(struct tl__thread *th);
void tl__tasktls_atfork_child(void);

#endif /* TL_TASKTLS_H */
