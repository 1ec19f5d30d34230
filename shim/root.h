/* root.c: root tasks; fork; the values at process exit. */
#ifndef TL_ROOT_H
#define TL_ROOT_H

#include "internal.h"

void tl__root_init(struct tl__thread *th);
void tl__root_fini(struct tl__thread *th); /* thread exit: destroys the root's values */
void tl__root_forget(struct tl__thread *th); /* the root leaves the indexes */
void tl__task_atfork(int phase);           /* -1 before fork, 0 parent, 1 child */
void tl__task_exit(void);                  /* process exit: the roots' values */
void tl__task_exit_free(void);             /* after the exit report: the roots' extensions */

#endif /* TL_ROOT_H */
