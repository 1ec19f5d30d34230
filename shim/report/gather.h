/* report/gather.c: every task a report counts, copied (private to shim/report/). */
#ifndef TL_REPORT_GATHER_H
#define TL_REPORT_GATHER_H

#include "../internal.h"
#include "../writer.h"

struct gather {
  struct tl__job *j;
  uint64_t leaked, parked;                 /* tasks counted, by kind */
};

const char *tl__report_kind_name(uint32_t kind);
int tl__report_gather_tasks(struct tl__job *j, struct gather *g); /* nonzero: the registry is busy */

#endif /* TL_REPORT_GATHER_H */
