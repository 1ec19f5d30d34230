/* options.c: the options, read once at load. */
#ifndef TL_OPTIONS_H
#define TL_OPTIONS_H

#include "internal.h"

struct tl__options {
  int leaks;                               /* 0 off, 1 report at exit, 2 also exit 23 on leaks */
  int backtrace;                           /* capture creation backtraces */
  int dump_signal;                         /* 0, or the signal that dumps the live tasks */
  int stats;                               /* the stats line at exit */
  int verbose;                             /* print the effective options */
  int fibers;                              /* tell a sanitizer in the process about switches */
  int log_fd;                              /* where reports go: 2, or TASKLOCAL_LOG */
  const char *trace;                       /* TASKLOCAL_TRACE, or NULL */
  uint32_t trace_size;                     /* TASKLOCAL_TRACE_SIZE: events per thread, a power of two */
  int leak_kinds;                          /* TASKLOCAL_LEAK_KINDS: TL__KINDS_ALL or TL__KINDS_LEAKED */
  const char *suppressions;                /* TASKLOCAL_SUPPRESSIONS, or NULL */
};
#define TL__KINDS_ALL 0                    /* leaked and parked tasks count and are described */
#define TL__KINDS_LEAKED 1                 /* leaked ones only */
extern struct tl__options tl__opt;
void tl__options_read(void);
int tl__options_log_fd(void);              /* tl__opt.log_fd, or 2 if the program reused its number */

#endif /* TL_OPTIONS_H */
