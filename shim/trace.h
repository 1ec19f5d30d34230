/* trace.c: the timeline of task switches (TASKLOCAL_TRACE), recorded.
 *
 * Each thread records into a ring of its own, made at thread start; the
 * file is written from the rings (tracefile.c) at exit, at _exit, on the
 * dump signal and by tl_trace_flush. The hooks in the other files are one
 * TL__TRACE line each: with tracing off they cost a load and a branch, and
 * arch/<arch>.S's inline switch leaves for the C path when tl__trace_on is
 * set. TL_NO_TRACE (make bench's comparison build) removes them. */
#ifndef TL_TRACE_H
#define TL_TRACE_H

#include "internal.h"

extern int tl__trace_on;                   /* TASKLOCAL_TRACE is set and usable */

#ifdef TL_NO_TRACE
#define TL__TRACE(call) ((void)0)
#else
#define TL__TRACE(call)                                                                                      \
  do {                                                                                                       \
    if (TL__UNLIKELY(tl__trace_on))                                                                          \
      call;                                                                                                  \
  } while (0)
#endif

enum tl__tev_type {
  TL__TEV_THREAD = 1,                      /* a: the root, b: the task current at the ring's start */
  TL__TEV_SWITCH,                          /* a: from, b: to (swapcontext, setcontext) */
  TL__TEV_START,                           /* a: the task, b: the task the switch predicted */
  TL__TEV_FINISH,                          /* a: the task, b: the next one (uc_link's, or the root) */
  TL__TEV_MAKE,                            /* a: the new task, b: its maker */
  TL__TEV_ENTRY,                           /* a: the new task, b: its entry function */
  TL__TEV_ABANDON,                         /* a: the task */
  TL__TEV_UNTRACKED,                       /* a: the task believed current, b: the one found */
  TL__TEV_NAME,                            /* a: the task, b: 8 bytes of its name */
  TL__TEV_EXIT,                            /* a: the task current at thread exit */
  TL__TEV_RELEASE                          /* a: the task, whose stack was given back or taken */
};

#define TL__TRACE_NAME_MAX 64              /* bytes of a task name kept (8 events of 8) */

struct tl__tev {
  uint64_t ts;                             /* raw clock: TSC ticks, or ns */
  uint64_t a, b;
  _Atomic uint32_t seq;                    /* the event's index (low 32 bits); ~0 while written */
  uint16_t type;                           /* enum tl__tev_type */
  uint16_t aux;                            /* NAME: part | length << 4 */
};

_Static_assert(sizeof(struct tl__tev) == 32, "an event is 32 bytes");

struct tl__ring {
  _Atomic uint64_t head;                   /* events reserved so far; stored by the owner only */
  uint64_t mask;                           /* capacity - 1 */
  struct tl__ring *next;                   /* every ring, newest first */
  size_t bytes;                            /* of the mapping */
  uint64_t exit_seq;                       /* 0 while its thread lives, else its order of exit */
  uint64_t snap;                           /* head as the writer took it (under tl__trace_lock) */
  int tid;
  char name[16];                           /* the thread's name, taken at its exit */
  struct tl__tev ev[] __attribute__((aligned(32)));
};

void tl__trace_setup(void);                /* once, in tl__init, after the options */
void tl__trace_thread(struct tl__thread *th); /* thread start: its ring */
void tl__trace_thread_exit(struct tl__thread *th); /* its ring stays for the file */
void tl__trace_event(struct tl__thread *th, unsigned type, uint64_t a, uint64_t b);
void tl__trace_observe_tasks(void);        /* in tl__init, after tl__trace_setup: the task module's news */
void tl__trace_name(const struct tl__task *t, const char *name);
void tl__trace_atfork_child(void);

/* What the file's writer reads of the recording. */
struct tl__ring *tl__trace_rings(void);    /* every ring, newest first */
int tl__trace_lock(void);                  /* one writer at a time, and no ring recycled meanwhile */
void tl__trace_unlock(void);
int tl__trace_pid(void);                   /* the process the rings belong to */
uint64_t tl__trace_recycled(void);         /* events lost with the rings reused */
uint32_t tl__trace_untraced(void);         /* threads whose ring could not be made */

#endif /* TL_TRACE_H */
