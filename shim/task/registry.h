/* registry.c: task records, the live list, ids and counts. */
#ifndef TL_REGISTRY_H
#define TL_REGISTRY_H

#include "../internal.h"

struct tl__counts {                        /* changed with the registry's lock held, here only */
  uint64_t made, finished, abandoned, released; /* tasks made, and ended each way */
  uint64_t live, peak;                     /* made tasks not ended yet, and their most */
};
struct tl__stats {
  uint64_t created, finished, abandoned, released, switches, untracked, peak;
};
#define TL__KEEP_MAX 4096                  /* abandoned tasks kept for the leak report */

enum tl__gone { TL__GONE_UNCOUNTED, TL__GONE_FINISHED, TL__GONE_ABANDONED, TL__GONE_RELEASED };

int tl__registry_lock(void);               /* 0, or EDEADLK (a signal handler on the holder) */
void tl__registry_unlock(void);
/* With the lock held: */
void tl__registry_made(struct tl__task *t); /* a new task enters the live list and the counts */
void tl__registry_unmade(void);            /* one made is taken back (its start failed) */
void tl__registry_ended(struct tl__task *t, enum tl__gone how); /* t leaves the live list, counted as how */
void tl__registry_finished(uint32_t n);    /* n finished tasks counted by their thread until now */
uint64_t tl__registry_new_id(void);        /* newer than every id handed out so far */
uint64_t tl__registry_id_after(struct tl__thread *th, uint64_t above); /* from th's block, > above */
struct tl__task *tl__record_alloc(struct tl__thread *th); /* a free record (not zeroed), or NULL */
void tl__record_free(struct tl__thread *th, struct tl__task *t); /* to th's records */
struct tl__task_ext *tl__task_ext(struct tl__task *t); /* made on demand; NULL on ENOMEM */
void tl__live_add(struct tl__task *t);     /* uncounted: a root task */
int tl__live_has(const struct tl__task *t);
void tl__live_del(struct tl__task *t);
int tl__kept_add(struct tl__task *t);      /* an abandoned task kept for the report (and counted), if room */
void tl__registry_atfork(int phase);
/* Finished tasks waiting in their thread's ended list, and extensions: */
void tl__ext_destroy(struct tl__task_ext *x);
void tl__ext_destroy_all(struct tl__task_ext **xs, uint32_t n);
void tl__ext_free(struct tl__task *t);
void tl__ended_unmap(struct tl__thread *th, const void *keep);
uint32_t tl__ended_release(struct tl__thread *th, struct tl__task_ext **xs);
struct tl__task *tl__ended_at(struct tl__thread *th, const void *ctx);
struct tl__task *tl__ended_take(struct tl__thread *th, struct tl__task *old, uintptr_t lo, uintptr_t hi);
void tl__ended_flush(struct tl__thread *th);

void tl__task_stats(struct tl__stats *st);
/* Iterates over the live tasks and the abandoned ones kept for the report,
 * with the registry locked: fn must not switch, allocate, or call into the
 * registry. Returns what a non-zero fn returned, else 0. */
int tl__task_foreach(int (*fn)(struct tl__task *t, void *arg), void *arg);

#endif /* TL_REGISTRY_H */
