/* writer.c: a report's lines, on a stack of its own if need be. */
#ifndef TL_WRITER_H
#define TL_WRITER_H

/* A report runs on the library's own stack (ownstack.c) when less than
 * this is left on the caller's. */
#define TL__JOB_STACK_NEED (128u << 10)

#include "internal.h"
#include "backtrace.h"

enum tl__job_kind { TL__JOB_LEAK, TL__JOB_DUMP };
struct tl__job {
  enum tl__job_kind kind;
  int fd;
  int err;                                 /* the first write error */
  pid_t pid;
  int tag;                                 /* lines end with the pid */
  const struct tl__thread *self;           /* the calling thread's state, or NULL */
  const struct tl__task *here;             /* the task running on the calling thread */
  int here_n;
  uintptr_t here_bt[TL__BT_MAX];
  uint64_t tasks, locals;                  /* the summary */
};
int tl__job_begin(struct tl__job *j, enum tl__job_kind kind, int fd, int here); /* 0 or EDEADLK */
void tl__job_run(struct tl__job *j, void (*body)(struct tl__job *j)); /* on a stack of its own if need be */
void tl__job_end(struct tl__job *j);
void tl__job_line(struct tl__job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl__writer_atfork(int phase);

#endif /* TL_WRITER_H */
