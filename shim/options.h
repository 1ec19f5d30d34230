/* options.c: the options, read once at load. */
#ifndef TL_OPTIONS_H
#define TL_OPTIONS_H

#include "internal.h"

/* The options' values, as the rest of the library reads them. Each field is
 * filled from one row of the table in options.c; adding an option is a
 * field here, an entry in that file's enum and a row in its table. The
 * assembly of makecontext reads leaks and backtrace. */
struct tl__options {
  int leaks;                               /* 0 off, 1 report at exit, 2 also exit 23 on leaks */
  int backtrace;                           /* capture creation backtraces */
  int dump_signal;                         /* 0, or the signal that dumps the live tasks */
  int stats;                               /* the stats line at exit */
  int verbose;                             /* print the effective options */
  int fibers;                              /* tell a sanitizer in the process about switches */
  int log_fd;                              /* where reports go: 2, or TASKLOCAL_LOG opened */
  const char *log;                         /* TASKLOCAL_LOG once opened, or NULL */
  const char *trace;                       /* TASKLOCAL_TRACE, or NULL */
  int trace_size;                          /* TASKLOCAL_TRACE_SIZE: events per thread, a power of two */
  int leak_kinds;                          /* TASKLOCAL_LEAK_KINDS: TL__KINDS_ALL or TL__KINDS_LEAKED */
  const char *suppressions;                /* TASKLOCAL_SUPPRESSIONS, or NULL */
  const char *task_local;                  /* TASKLOCAL_TASK_LOCAL, or NULL (tasktls.c parses it) */
  int report_json;                         /* TASKLOCAL_REPORT_FORMAT: 0 text, 1 json */
  int report_max;                          /* TASKLOCAL_REPORT_MAX: groups of alike tasks described */
};
#define TL__KINDS_ALL 0                    /* leaked and parked tasks count and are described */
#define TL__KINDS_LEAKED 1                 /* leaked ones only */
extern struct tl__options tl__opt;
void tl__options_read(void);
int tl__options_log_fd(void);              /* tl__opt.log_fd, or 2 if the program reused its number */

#endif /* TL_OPTIONS_H */
