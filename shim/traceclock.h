/* traceclock.c: the clock of the trace's events, and their times in
 * nanoseconds when the file is written. */
#ifndef TL_TRACECLOCK_H
#define TL_TRACECLOCK_H

#include "internal.h"

/* Converts raw timestamps to nanoseconds since the load-time point, with
 * the rate measured between that point and one taken now. */
struct tl__tconv {
  uint64_t raw0, raw1, ns1;                /* ns1: nanoseconds from raw0 to raw1 */
};

void tl__tclock_setup(void);               /* once, when tracing: the clock, and the load-time point */
uint64_t tl__tclock_now(void);             /* an event's timestamp: TSC ticks, or ns */
int tl__tclock_tsc(void);                  /* timestamps are TSC ticks, else ns */
struct tl__tconv tl__tclock_conv(void);    /* the conversion, with a point taken now */
uint64_t tl__tclock_ns(const struct tl__tconv *cv, uint64_t raw);

#endif /* TL_TRACECLOCK_H */
