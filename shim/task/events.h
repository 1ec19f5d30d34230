/* events.c: the observers of a task's life, told by the task module. */
#ifndef TL_EVENTS_H
#define TL_EVENTS_H

#include "../internal.h"

/* What the task module (make.c, life.c, registry.c) announces of a task's
 * life. The layers that follow tasks (the trace, the tools, the program's
 * thread-local state, the values) register for what they need, from
 * tl__init, and the task module calls none of them by name. */
enum tl__news {
  TL__NEWS_MADE,                           /* t made: its context is ready to start it */
  TL__NEWS_STARTED,                        /* t runs its function; other: the task the switch made current */
  TL__NEWS_ABANDONED,                      /* t's context made again, its stack held: it ends, values still held */
  TL__NEWS_RELEASED,                       /* t's stack given back or taken: it ends, values still held */
  TL__NEWS_SCOPE_END,                      /* t's scope ends: bindings, values, deferred calls */
  TL__NEWS_FINISHING,                      /* t's function returned (t NULL: its record had ended); other: the next task */
  TL__NEWS_FINISHED,                       /* other runs now, in place of the finished task id (t as at FINISHING) */
  TL__NEWS_GONE,                           /* t leaves the indexes: its stack is no task's any more */
  TL__NEWS_FREED,                          /* x, a record's extension, is freed: its owners free their parts */
  TL__NEWS_KINDS
};

struct tl__event {
  struct tl__task *t;
  struct tl__task *other;
  struct tl__task_ext *x;                  /* FREED */
  uint64_t id;                             /* STARTED, FINISHING, FINISHED: t's id */
  int exit;                                /* FINISHING: no uc_link, so exit follows on t's stack */
};

/* th is the thread the event happens on (NULL for FREED, which needs none). */
typedef void (*tl__observer)(struct tl__thread *th, const struct tl__event *ev);

#define TL__OBSERVERS_MAX 4                /* a kind's observers: the values, the trace, tasktls, the tools */

/* Written from tl__init only, before any task exists; read without a lock. */
struct tl__observers {
  uint32_t n[TL__NEWS_KINDS];
  tl__observer fn[TL__NEWS_KINDS][TL__OBSERVERS_MAX];
};
extern struct tl__observers tl__observers;

/* fn is told of what, after the observers registered for it before. -1
 * when what has no room left. */
int tl__task_observe(enum tl__news what, tl__observer fn);

void tl__announce_all(struct tl__thread *th, enum tl__news what, const struct tl__event *ev);

/* The news what, with the event's fields as designated initializers
 * (.t = t, ...), to each of its observers in turn. A kind nobody observes
 * costs a load and a branch, as the flag it replaces did, and the event is
 * only built when someone listens; one observer, the common case when any
 * listens, is called straight, without a loop to keep. */
#define TL__ANNOUNCE(th, what, ...)                                                                          \
  do {                                                                                                       \
    uint32_t n_ = tl__observers.n[what];                                                                     \
    if (TL__UNLIKELY(n_ != 0)) {                                                                             \
      const struct tl__event ev_ = {__VA_ARGS__};                                                            \
      if (n_ == 1)                                                                                           \
        tl__observers.fn[what][0]((th), &ev_);                                                               \
      else                                                                                                   \
        tl__announce_all((th), (what), &ev_);                                                                \
    }                                                                                                        \
  } while (0)

#endif /* TL_EVENTS_H */
