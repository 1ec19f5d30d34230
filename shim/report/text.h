/* report/text.c: a report as text (private to shim/report/). */
#ifndef TL_REPORT_TEXT_H
#define TL_REPORT_TEXT_H

#include "../internal.h"
#include "../writer.h"
#include "../drops.h"

struct totals {
  const char *what;                        /* "leak" or "dump" */
  uint64_t tasks, locals, unkept, drops;
  uint64_t leaked, parked;                 /* tasks, by kind */
  const char *undecided;                   /* why no task could be called leaked, or NULL */
  uint32_t described;                      /* groups described */
  uint64_t undescribed;                    /* tasks in the others, or without a record */
};

void tl__report_depot_frames(uint32_t s, const uintptr_t **pc, int *n);
const char *tl__report_drop_when(const struct tl__drop *d);
void tl__report_print_text(struct tl__job *j, const struct totals *t);

#endif /* TL_REPORT_TEXT_H */
