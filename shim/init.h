/* init.c: set-up at load; thread, fork and exit events. */
#ifndef TL_INIT_H
#define TL_INIT_H

#include "internal.h"

void tl__init(void);                       /* idempotent; safe before our constructor */

#endif /* TL_INIT_H */
