/* tracejson.c: the timeline in Chrome's trace-event JSON. */
#ifndef TL_TRACEJSON_H
#define TL_TRACEJSON_H

#include "internal.h"

/* Writes the timeline of the n rings taken (tl__rings_take) to fd; returns
 * 0 or the first write error, and the events dropped in *dropped. */
int tl__tjson_write(int fd, int n, uint64_t *dropped);

#endif /* TL_TRACEJSON_H */
