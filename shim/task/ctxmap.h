/* ctxmap.c: which task saved itself in a ucontext_t. */
#ifndef TL_CTXMAP_H
#define TL_CTXMAP_H

#include "../internal.h"

void tl__map_save(struct tl__task *t, const void *ctx);
void tl__map_del(struct tl__task *t);
struct tl__task *tl__map_get(const void *ctx);
void tl__map_atfork(int phase);

#endif /* TL_CTXMAP_H */
