/* trace.c: the timeline of task switches (TASKLOCAL_TRACE).
 *
 * Each thread records into a ring of its own, made at thread start; the
 * file is written at exit, at _exit, on the dump signal and by
 * tl_trace_flush. The hooks in the other files are one TL__TRACE line
 * each: with tracing off they cost a load and a branch, and interpose.S's
 * inline switch leaves for the C path when tl__trace_on is set. TL_NO_TRACE
 * (make bench's comparison build) removes them. */
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
  TL__TEV_EXIT                             /* a: the task current at thread exit */
};

/* Once, in tl__init, after the options. Entry functions are named, when a
 * file is written, by symbol (backtrace.c's tl__bt_symbol, which lies in a
 * layer above: init.c passes it down). */
void tl__trace_setup(void (*symbol)(uintptr_t pc, int ret, char *buf, size_t size));
void tl__trace_thread(struct tl__thread *th); /* thread start: its ring */
void tl__trace_thread_exit(struct tl__thread *th); /* its ring stays for the file */
void tl__trace_event(struct tl__thread *th, unsigned type, uint64_t a, uint64_t b);
void tl__trace_make(struct tl__thread *th, const struct tl__task *t);
void tl__trace_name(const struct tl__task *t, const char *name);
void tl__trace_exit(void);                 /* process exit or _exit: the file, once */
void tl__trace_dump(void);                 /* the dump signal (its thread, not the handler) */
int tl__trace_flush(void);                 /* tl_trace_flush (api.c) */
void tl__trace_atfork_child(void);

#endif /* TL_TRACE_H */
