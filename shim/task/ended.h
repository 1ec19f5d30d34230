/* ended.c: finished tasks waiting for their records' release. */
#ifndef TL_ENDED_H
#define TL_ENDED_H

#include "../internal.h"
#include "registry.h"

void tl__ext_destroy(struct tl__task_ext *x);
void tl__ext_destroy_all(struct tl__task_ext **xs, uint32_t n);
void tl__ext_free(struct tl__task *t);
void tl__ended_unmap(struct tl__thread *th, const void *keep);
uint32_t tl__ended_release(struct tl__thread *th, struct tl__task_ext **xs);
struct tl__task *tl__ended_at(struct tl__thread *th, const void *ctx);
struct tl__task *tl__ended_take(struct tl__thread *th, struct tl__task *old, uintptr_t lo, uintptr_t hi);
void tl__ended_flush(struct tl__thread *th);

#endif /* TL_ENDED_H */
