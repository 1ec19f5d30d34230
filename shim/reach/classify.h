/* reach/classify.c: one scan, its tasks copied and each one reached or
 * not (private to shim/reach/). */
#ifndef TL_REACH_CLASSIFY_H
#define TL_REACH_CLASSIFY_H

#include "../internal.h"
#include "../writer.h"

void tl__scan_entry(struct tl__job *j);    /* the scan, from the caller's frame up */

#endif /* TL_REACH_CLASSIFY_H */
