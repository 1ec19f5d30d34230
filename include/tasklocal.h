/* tasklocal: task-local storage for ucontext coroutines.
 *
 * Preload libtasklocal.so into a program whose coroutines are POSIX ucontext
 * contexts (makecontext/swapcontext/setcontext) and every coroutine ("task")
 * gets its own value for each key, the way every thread has its own value
 * for a pthread key. The library follows every switch, so code that runs
 * inside a coroutine (a plugin, a logging library) can keep per-coroutine
 * state without the scheduler's help.
 *
 * Conventions, as in pthreads: functions that can fail return 0 or a
 * positive errno value and never set errno; getters return NULL when there
 * is nothing to return. Every key is validated: zero, deleted and made-up
 * keys give EINVAL (or NULL from tl_get), never a crash.
 *
 * A program that includes this header and links -ltasklocal works with or
 * without the library preloaded: when ucontext tracking is not active, each
 * thread is one task (tl_available() tells which).
 */
#ifndef TASKLOCAL_H
#define TASKLOCAL_H

#include <stddef.h>
#include <stdint.h>

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 1
#define TL_VERSION_PATCH 0
#define TL_VERSION 100 /* major * 10000 + minor * 100 + patch */

#if defined(__GNUC__)
#define TL_API __attribute__((visibility("default")))
#else
#define TL_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Keys
 *
 * A key names one slot; every scope (by default every task) has its own
 * value for it. Keys are 64-bit handles: a deleted key stays invalid even
 * after its internal slot is given to a new key. There is no fixed limit on
 * the number of keys.
 * ------------------------------------------------------------------------ */

typedef uint64_t tl_key_t;                 /* 0 is never a valid key */

enum tl_scope {
  TL_SCOPE_TASK = 0,                       /* the running ucontext task (default) */
  TL_SCOPE_THREAD = 1,                     /* the OS thread, whatever task runs on it */
  TL_SCOPE_CUSTOM = 2                      /* the owner named by attr.disc */
};

enum tl_inherit {
  TL_INHERIT_NONE = 0,                     /* a new task starts unbound (default) */
  TL_INHERIT_SHARE = 1,                    /* a new task starts with its parent's pointer */
  TL_INHERIT_COPY = 2                      /* a new task starts with copy(parent's value) */
};

#define TL_KEY_SCOPED_ONLY 0x1u            /* tl_set/tl_unset give EPERM; only tl_bind/TL_WITH */

struct tl_disc {                           /* a custom discriminator (TL_SCOPE_CUSTOM) */
  void *(*current)(void *arg);             /* the current owner, or NULL for none */
  void *arg;                               /* passed to current() */
};

typedef struct tl_key_attr {
  const char *name;                        /* optional, unique in the process (copied) */
  void (*destroy)(void *value);            /* called with each value still bound when its scope ends */
  void *(*init)(void *arg);                /* makes the value on first read where unbound */
  void *init_arg;                          /* passed to init() */
  int inherit;                             /* enum tl_inherit */
  void *(*copy)(const void *value);        /* for TL_INHERIT_COPY */
  unsigned flags;                          /* TL_KEY_SCOPED_ONLY */
  int scope;                               /* enum tl_scope */
  const struct tl_disc *disc;              /* for TL_SCOPE_CUSTOM; must outlive the key */
} tl_key_attr_t;

#define TL_KEY_ATTR_INIT {0}               /* the defaults: task scope, no inheritance */

TL_API int tl_key_create(tl_key_t *key, void (*destroy)(void *value));  /* a task key; destroy may be NULL */
TL_API int tl_key_create_attr(tl_key_t *key, const tl_key_attr_t *attr);  /* EINVAL bad attr, EEXIST name taken */
TL_API int tl_key_find(tl_key_t *key, const char *name);  /* the key of that name, or ENOENT */
TL_API int tl_key_delete(tl_key_t key);    /* values are dropped without destructors, as pthread_key_delete */

/* ------------------------------------------------------------------------
 * Values
 *
 * Reads take no lock and allocate nothing; tl_get and tl_lookup may be
 * called from signal handlers. Setting a value never destroys the previous
 * one: as with pthread_setspecific, the caller owns it.
 * ------------------------------------------------------------------------ */

TL_API void *tl_get(tl_key_t key);         /* the value bound in the current scope; NULL if unbound or invalid */
TL_API int tl_lookup(tl_key_t key, void **value);  /* like tl_get, but ENOENT when unbound */
TL_API int tl_set(tl_key_t key, const void *value);  /* binds value; ENOMEM leaves the old binding */
TL_API int tl_unset(tl_key_t key);         /* back to unbound, no destructor; 0 if it was unbound */

/* ------------------------------------------------------------------------
 * Tasks
 *
 * Every thread has a root task (its own stack) and every makecontext call
 * makes a new task. A task finishes when its function returns; it is
 * abandoned when its ucontext_t is made again before it finished. At either
 * end, each value still bound is passed to its key's destructor; if
 * destructors bind new values, this repeats, up to 4 rounds (as pthreads).
 * A tl_task_t pointer is valid while its task lives; tl_task_id() is unique
 * in the process and never reused, so keep the id to refer to an ended task.
 * ------------------------------------------------------------------------ */

typedef struct tl_task tl_task_t;

TL_API tl_task_t *tl_current(void);        /* the running task; async-signal-safe */
TL_API uint64_t tl_task_id(const tl_task_t *task);  /* its id (0 for NULL) */

/* ------------------------------------------------------------------------
 * Diagnostics
 * ------------------------------------------------------------------------ */

TL_API int tl_available(void);             /* 1 when the shim is preloaded and tracking ucontext */

#ifdef __cplusplus
}
#endif

#endif /* TASKLOCAL_H */
