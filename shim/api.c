/* The public API (include/tasklocal.h documents it), and the table of
 * its functions that header-only users find at run time (TL_DYNAMIC,
 * include/tasklocal_dynamic.h): one versioned symbol instead of one dlsym
 * per function, checked for version and size by the header.
 *
 * These are the library's entry points with the interposed functions
 * (interpose.c). Each one that can be the first call into the library
 * (another library's constructor may call it before ours has run) sets the
 * library up first with tl__init(), which costs one load once done. The
 * functions that take a key or a token need not: a valid one was made by
 * a call that did.
 */
#include "internal.h"
#include "tasklocal_dynamic.h"                /* struct tl_api */
#include "real.h"
#include "alloc.h"
#include "thread.h"
#include "task/registry.h"
#include "task/identity.h"
#include "keys.h"
#include "scope.h"
#include "values.h"
#include "bind.h"
#include "dump.h"
#include "init.h"
#include "trace.h"
#include "tracefile.h"

#include <errno.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * Keys
 * ------------------------------------------------------------------------ */

int tl_key_create_attr(tl_key_t *key, const tl_key_attr_t *attr)
{
  tl__init();
  return tl__key_create(key, attr);
}

int tl_key_create(tl_key_t *key, void (*destroy)(void *value))
{
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.destroy = destroy;
  return tl_key_create_attr(key, &attr);
}

int tl_key_find(tl_key_t *key, const char *name)
{
  return tl__key_find(key, name);
}

int tl_key_delete(tl_key_t key)
{
  return tl__key_delete(key);
}

/* ------------------------------------------------------------------------
 * Values and scoped bindings
 * ------------------------------------------------------------------------ */

void *tl_get(tl_key_t key)
{
  return tl__get(key);
}

int tl_lookup(tl_key_t key, void **value)
{
  if (value == NULL)
    return EINVAL;
  return tl__lookup(key, value);
}

int tl_set(tl_key_t key, const void *value)
{
  return tl__set(key, value);
}

int tl_unset(tl_key_t key)
{
  return tl__store(key, NULL, 1, 0);
}

int tl_bind(tl_key_t key, const void *value, tl_token_t *token)
{
  return tl__bind(key, value, token);
}

int tl_unbind(tl_token_t *token)
{
  return tl__unbind(token);
}

/* ------------------------------------------------------------------------
 * Scopes, singletons and deferred calls
 * ------------------------------------------------------------------------ */

int tl_loop_close(void)
{
  tl__init();
  return tl__loop_close();
}

int tl_disc_end(const struct tl_disc *disc, void *owner)
{
  return tl__disc_end(disc, owner);
}

void *tl_singleton(tl_key_t key, void *(*make)(void *arg), void *arg)
{
  return tl__singleton(key, make, arg);
}

int tl_defer(int scope, void (*fn)(void *arg), void *arg)
{
  tl__init();
  return tl__defer(scope, fn, arg);
}

/* ------------------------------------------------------------------------
 * Tasks
 * ------------------------------------------------------------------------ */

tl_task_t *tl_current(void)
{
  tl__init();
  return (tl_task_t *)tl__task_now();
}

uint64_t tl_task_id(const tl_task_t *task)
{
  return task ? ((const struct tl__task *)task)->id : 0;
}

int tl_task_set_name(tl_task_t *task, const char *name)
{
  tl__init();
  struct tl__task *t = task ? (struct tl__task *)task : tl__task_now();
  if (t == NULL)
    return ENOMEM;                         /* the thread's state could not be made */
  if (t->id == 0)
    return EINVAL;
  char *copy = NULL;
  if (name != NULL) {
    size_t len = strlen(name) + 1;
    if ((copy = tl__alloc(len)) == NULL)
      return ENOMEM;
    memcpy(copy, name, len);
  }
  struct tl__task_ext *x = tl__task_ext(t);
  if (x == NULL) {
    tl__free(copy);
    return ENOMEM;
  }
  char *old = x->name;
  x->name = copy;
  TL__TRACE(tl__trace_name(t, copy));
  tl__free(old);
  return 0;
}

const char *tl_task_name(const tl_task_t *task)
{
  tl__init();
  const struct tl__task *t = task ? (const struct tl__task *)task : tl__task_now();
  return t != NULL && t->x != NULL ? t->x->name : NULL;
}

int tl_foreach(tl_task_t *task, int (*fn)(tl_key_t key, const char *name, void *value, void *arg), void *arg)
{
  tl__init();
  struct tl__task *t = task ? (struct tl__task *)task : tl__task_now();
  if (t == NULL || fn == NULL || t->id == 0)
    return EINVAL;
  for (uint32_t i = 0;; i++) {
    /* The table is read again at each step: fn may bind values. */
    struct tl__vtab *vt = atomic_load_explicit(&t->vt, memory_order_acquire);
    if (vt == tl__vt_empty || i > tl__vt_mask(vt))
      return 0;
    struct tl__ent *e = &tl__vt_ent(vt)[i];
    uint64_t key = atomic_load_explicit(&e->key, memory_order_acquire);
    if (key <= TL__TOMB || !tl__key_valid(key))
      continue;
    int r = fn(key, tl__key_name(key), atomic_load_explicit(&e->value, memory_order_relaxed), arg);
    if (r != 0)
      return r;
  }
}

/* ------------------------------------------------------------------------
 * Diagnostics
 * ------------------------------------------------------------------------ */

int tl_available(void)
{
  tl__init();
  return tl__interposing;
}

int tl_dump(int fd)
{
  tl__init();
  return tl__dump(fd);
}

int tl_trace_flush(void)
{
  tl__init();
  return tl__trace_flush();
}

/* ------------------------------------------------------------------------
 * The table for TL_DYNAMIC
 * ------------------------------------------------------------------------ */

const struct tl_api tl_api_v1 = {
    .size = sizeof(struct tl_api),
    .version = TL_API_VERSION,
    .key_create = tl_key_create,
    .key_create_attr = tl_key_create_attr,
    .key_find = tl_key_find,
    .key_delete = tl_key_delete,
    .get = tl_get,
    .lookup = tl_lookup,
    .set = tl_set,
    .unset = tl_unset,
    .bind = tl_bind,
    .unbind = tl_unbind,
    .loop_close = tl_loop_close,
    .disc_end = tl_disc_end,
    .singleton = tl_singleton,
    .defer = tl_defer,
    .current = tl_current,
    .task_id = tl_task_id,
    .task_set_name = tl_task_set_name,
    .task_name = tl_task_name,
    .foreach = tl_foreach,
    .dump = tl_dump,
    .available = tl_available,
    .trace_flush = tl_trace_flush,
};
