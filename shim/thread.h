/* thread.c: per-thread state, made on first use. */
#ifndef TL_THREAD_H
#define TL_THREAD_H

#include "internal.h"
#include "lock.h"

struct tl__thread_hooks {                  /* what the task layers do when a thread's state begins and ends */
  void (*start)(struct tl__thread *th);    /* its root task begins (tl__root_init) */
  void (*exit)(struct tl__thread *th);     /* the thread exits: its root's scope ends (tl__root_fini) */
  void (*drop)(struct tl__thread *th);     /* a forked child has no such thread (tl__root_forget) */
};
void tl__thread_hooks(const struct tl__thread_hooks *hooks); /* once, at load, before any state is made */
void tl__thread_setup(void);               /* once, at load */
struct tl__thread *tl__thread_init(void);  /* the calling thread's state, made on first use */
void tl__thread_atfork(int phase);         /* -1 before fork, 0 parent, 1 child */
struct tl__thread_counts {
  uint64_t switches, untracked;
  uint64_t made, finished, released;       /* made_here, finished_here, released_here */
  uint64_t ended;                          /* finished, not yet in the registry's counts */
};
void tl__thread_stats(struct tl__thread_counts *c);
struct tl__thread *tl__thread_list(void);
void tl__views_drop_all(void);
uintptr_t tl__maps_hex(const char **p);    /* a hexadecimal number of /proc/self/maps */             /* every thread's read view, after a key's deletion */

/* The read view of the running task, for the inline read path of
 * tasklocal.h (which explains it): per thread, in the TLS block (thread.c).
 * Emptied (span 0) before anything it mirrors may change, by
 * tl__view_drop (thread.h); filled by tl_get once the running task is
 * certain (values.c). Only the thread itself writes its view; a signal
 * handler on it reads a span of 0 or a complete view, because the span is
 * written last. */
extern __thread struct tl__rview tl__view __attribute__((tls_model("initial-exec")));

extern struct tl__ent tl__empty_ent;
#define tl__vt_empty ((struct tl__vtab *)(void *)&tl__empty_ent)

static inline void tl__view_drop(void)
{
  __atomic_store_n(&tl__view.span, 0, __ATOMIC_RELAXED);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Forgets the view's copy of key's value (tasklocal.h), before a value of
 * key changes in place in any table: the copy is only ever of the running
 * task's, but telling whose table changes costs more than a needless miss.
 * The key goes first, as in a table's entry (vtab.c): a signal handler that
 * reads between the two stores misses, or (for the invalid key 0) reads
 * what an emptied table entry would give it. */
static inline void tl__view_forget(tl_key_t key)
{
  if (TL__UNLIKELY(__atomic_load_n(&tl__view.last, __ATOMIC_RELAXED) == key)) {
    __atomic_store_n(&tl__view.last, 0, __ATOMIC_RELAXED);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&tl__view.value, 0, __ATOMIC_RELAXED);
  }
}

static inline struct tl__thread *tl__self(void)
{
  struct tl__thread *th = tl__tls;
  if (TL__UNLIKELY(th == NULL || th == TL__BUSY))
    th = tl__thread_init();
  return th;
}

#endif /* TL_THREAD_H */
