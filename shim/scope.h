/* scope.c: where values live: thread, custom owners; defers. */
#ifndef TL_SCOPE_H
#define TL_SCOPE_H

#include "internal.h"
#include "lock.h"

struct tl__scope_ref {
  struct tl__vtab *_Atomic *holder;        /* the table of the key's scope */
  struct tl__lock *lock;                   /* held until tl__scope_leave, or NULL */
};
int tl__scope_enter(const tl_key_attr_t *a, struct tl__task *t, int create, struct tl__scope_ref *ref);
void tl__scope_leave(struct tl__scope_ref *ref);
int tl__disc_end(const struct tl_disc *disc, void *owner);
int tl__defer(int scope, void (*fn)(void *arg), void *arg);
void tl__run_defers(struct tl__defer **list);
void tl__thread_scope_end(struct tl__thread *th); /* thread-scope values and defers */
int tl__loop_close(void);
void tl__scope_atfork(int phase);          /* -1 before fork, 0 parent, 1 child */

#endif /* TL_SCOPE_H */
