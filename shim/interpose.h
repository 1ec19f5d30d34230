/* interpose.c: the C half of the interposed functions (arch/<arch>.S holds
 * the rest). */
#ifndef TL_INTERPOSE_H
#define TL_INTERPOSE_H

#include "internal.h"

void (*tl__before_make(ucontext_t *ucp, void (*func)(void)))(void); /* the function to start */

#endif /* TL_INTERPOSE_H */
