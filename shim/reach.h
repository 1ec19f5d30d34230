/* reach.c: which unfinished tasks are leaked, which parked. */
#ifndef TL_REACH_H
#define TL_REACH_H

#include "internal.h"
#include "writer.h"

enum tl__kind {
  TL__KIND_PARKED = 0,                     /* still referenced, or undecided */
  TL__KIND_LEAKED = 1,                     /* nothing can resume it */
  TL__KIND_SUPPRESSED = 2                  /* matched a rule of TASKLOCAL_SUPPRESSIONS */
};

/* The scan, for one report (the writer's lock held): the tasks are copied,
 * the memory reachable from the roots is flood-filled, and each unfinished
 * task gets its kind. Nothing is allocated: its memory is mmap'd, and
 * given back by tl__reach_end. */
void tl__reach_setup(void);                /* at load */
void tl__reach_begin(struct tl__job *j);
enum tl__kind tl__reach_kind(const struct tl__task *t, uint64_t id); /* parked for a task it did not see */
const char *tl__reach_undecided(void);     /* why no task could be called leaked, or NULL; after the end too */
void tl__reach_end(void);
void tl__reach_exit_early(void);           /* at exit, before the roots' values go: the exit report's scan */
void tl__reach_lsan_setup(void);           /* at load: under LeakSanitizer, its exit handler */
extern const struct tl__debug_scan tl__debug_scan; /* the last scan's kinds, for the gdb extension */

#endif /* TL_REACH_H */
