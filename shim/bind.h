/* bind.c: scoped bindings, inheritance, a task scope's end. */
#ifndef TL_BIND_H
#define TL_BIND_H

#include "internal.h"

int tl__bind(tl_key_t key, const void *value, tl_token_t *token);
int tl__unbind(tl_token_t *token);
int tl__inherit(struct tl__task *parent, struct tl__task *child); /* at makecontext */
void tl__values_observe_tasks(void);       /* once, in tl__init: a task's scope end, abandon, extension */

#endif /* TL_BIND_H */
