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

#include <errno.h>
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

/* Keys with attr.init: the first tl_get/tl_lookup (or tl_singleton) of the
 * key in a scope where it is unbound calls init(init_arg) once and binds the
 * result (even NULL). A re-entrant read of the same key from inside init
 * sees it unbound and does not call init again. tl_set, tl_bind and
 * tl_unset never call init.
 *
 * Errors of the value functions: EINVAL for an invalid key (or a NULL
 * pointer where one is required), EPERM for tl_set/tl_unset of a
 * TL_KEY_SCOPED_ONLY key, ESRCH when a custom-scope key's discriminator
 * names no owner (tl_get then returns NULL), ENOMEM with the previous
 * binding intact. */

/* ------------------------------------------------------------------------
 * Scoped bindings
 *
 * tl_bind binds a value until the matching tl_unbind, which restores
 * exactly what was there before: a value, or unbound (contextvars'
 * token/reset, xlocal's with-block). Bindings nest in strict LIFO order
 * within one task; unbinding out of order, twice, in another task, or with
 * a token that tl_bind did not fill is EINVAL and changes nothing. Tokens
 * are plain data, checked without following any pointer in them. Bindings
 * still open when a task ends are dropped: the bound values belong to the
 * code that bound them and get no destructor.
 * ------------------------------------------------------------------------ */

typedef struct tl_token {
  uint64_t opaque[4];
} tl_token_t;

TL_API int tl_bind(tl_key_t key, const void *value, tl_token_t *token);  /* binds until tl_unbind(token) */
TL_API int tl_unbind(tl_token_t *token);   /* restores the previous state; EINVAL if not the innermost */

/* TL_WITH(key, value) { ... } binds value to key for the block and unbinds
 * it on every way out: the end of the block, break (which leaves the
 * TL_WITH block itself), continue, return and goto. If the binding cannot
 * be made (EINVAL, EPERM never applies, ESRCH, ENOMEM), the block is not
 * run and errno holds the error, as a Python with-statement whose
 * __enter__ raises. Needs GCC or Clang (the cleanup attribute). */
#define TL_WITH(key, value) TL__WITH_(key, value, TL__CAT_(tl__with_, __COUNTER__))

/* ------------------------------------------------------------------------
 * Scopes
 *
 * A key's values belong to the running task (TL_SCOPE_TASK, the default),
 * to the OS thread whatever task runs on it (TL_SCOPE_THREAD: one value per
 * scheduler loop, "loop-local"), or to an owner named by a custom
 * discriminator (TL_SCOPE_CUSTOM: a session, a request...). A custom
 * discriminator's current() returning NULL means "no owner": tl_get gives
 * NULL and tl_set, tl_lookup, tl_unset and tl_bind give ESRCH. Custom
 * owners' values live in a table shared by all threads, under a lock.
 * Thread-scope values are destroyed at thread exit (the main thread's at
 * process exit) or by tl_loop_close.
 * ------------------------------------------------------------------------ */

TL_API int tl_loop_close(void);            /* destroys this thread's thread-scope values, runs its deferred calls */
TL_API int tl_disc_end(const struct tl_disc *disc, void *owner);  /* destroys owner's values for keys of disc */

/* ------------------------------------------------------------------------
 * Singletons and deferred calls
 *
 * tl_singleton is asyncio-loop-local's singleton: the scope's value of key,
 * made by make(arg) the first time and destroyed with the scope by the
 * key's destructor. make runs once per scope instance (a thread-scope key
 * gets a new one after tl_loop_close). If make returns NULL nothing is
 * bound and the next call tries again. A re-entrant call for the same key
 * from inside make returns NULL with errno EDEADLK.
 *
 * tl_defer registers fn(arg) to run when the current task (TL_SCOPE_TASK)
 * or thread (TL_SCOPE_THREAD, also at tl_loop_close) ends, after the
 * destructors of its values, last registered first.
 * ------------------------------------------------------------------------ */

TL_API void *tl_singleton(tl_key_t key, void *(*make)(void *arg), void *arg);  /* NULL with errno on error */
TL_API int tl_defer(int scope, void (*fn)(void *arg), void *arg);  /* EINVAL for other scopes or NULL fn */

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
TL_API int tl_task_set_name(tl_task_t *task, const char *name);  /* NULL task: the current one; NULL name clears */
TL_API const char *tl_task_name(const tl_task_t *task);  /* NULL when unnamed */

/* tl_foreach calls fn(key, name, value, arg) for each task-scope value bound
 * in task (NULL: the current task), like iterating a dict; a non-zero
 * return from fn stops the walk and is returned. Call it for the current
 * task or one that is suspended; values that fn binds or unbinds may or may
 * not be visited. */
TL_API int tl_foreach(tl_task_t *task, int (*fn)(tl_key_t key, const char *name, void *value, void *arg),
                      void *arg);

/* ------------------------------------------------------------------------
 * Diagnostics
 * ------------------------------------------------------------------------ */

TL_API int tl_available(void);             /* 1 when the shim is preloaded and tracking ucontext */

/* ------------------------------------------------------------------------
 * Internals of the macros above; not part of the API.
 * ------------------------------------------------------------------------ */

#define TL__CAT2_(a, b) a##b
#define TL__CAT_(a, b) TL__CAT2_(a, b)

struct tl__with {
  tl_token_t token;
  int bound;
  int once;
};

static inline struct tl__with tl__with_begin(tl_key_t key, const void *value)
{
  struct tl__with w;
  int err = tl_bind(key, value, &w.token);
  w.bound = w.once = err == 0;
  if (err != 0)
    errno = err;
  return w;
}

static inline void tl__with_end(struct tl__with *w)
{
  if (w->bound)
    tl_unbind(&w->token);
}

#define TL__WITH_(key, value, w)                                                                   \
  for (struct tl__with w __attribute__((cleanup(tl__with_end))) = tl__with_begin((key), (value)); \
       w.once; w.once = 0)

#ifdef __cplusplus
}
#endif

#endif /* TASKLOCAL_H */
