/* traceout.c: the trace file's JSON text, buffered and written with
 * write(2). */
#ifndef TL_TRACEOUT_H
#define TL_TRACEOUT_H

#include "internal.h"

#define TL__OUT_BUF 8192

struct tl__out {
  int fd;
  int err;                                 /* the first write error */
  size_t len;
  char buf[TL__OUT_BUF];
};

void tl__out_flush(struct tl__out *o);
void tl__outf(struct tl__out *o, const char *f, ...) __attribute__((format(printf, 2, 3)));
void tl__out_str(struct tl__out *o, const char *s); /* a JSON string, quoted and escaped */

#endif /* TL_TRACEOUT_H */
