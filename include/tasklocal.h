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
 * Three ways to use it: preload libtasklocal.so into an unmodified program
 * (its plugins then call this API); link with -ltasklocal (the library's
 * ucontext functions then come before libc's and tracking is active); or
 * include tasklocal_dynamic.h (or define TL_DYNAMIC before this header) and
 * link nothing: the header finds the library at run time and falls back to
 * per-thread storage without it (see "Header-only use" below).
 *
 * The header is C99 or later and C++11 or later; C++ also gets a scoped
 * binding, tl::with, from tasklocal.hpp (which this header includes in
 * C++).
 */
#ifndef TASKLOCAL_H
#define TASKLOCAL_H

/* The header needs C99 (inline functions, declarations in for loops) or
 * C++11. An older language gets this one error and nothing else of the
 * header, rather than a cascade of syntax errors. */
#if !defined(__cplusplus) && (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 199901L)
#error "tasklocal.h needs C99 or later (compile with -std=c99, c11, c17 or gnu variants)"
#elif defined(__cplusplus) && __cplusplus < 201103L
#error "tasklocal.h needs C++11 or later (compile with -std=c++11 or later)"
#else

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define TL_VERSION_MAJOR 0
#define TL_VERSION_MINOR 3
#define TL_VERSION_PATCH 0
#define TL_VERSION 300 /* major * 10000 + minor * 100 + patch */

/* Casts and the null pointer as each language wants them: C casts in C,
 * the named casts in C++, so that the header stays quiet under
 * -Wold-style-cast, -Wuseless-cast and -Wzero-as-null-pointer-constant.
 * TL__EXTERN_DEF goes on a const object the header defines: C++ would
 * otherwise give it internal linkage, and C warns about an initialized
 * extern. */
#ifdef __cplusplus
#define TL__CAST(type, x) static_cast<type>(x)
#define TL__BITCAST(type, x) reinterpret_cast<type>(x) /* between integers and pointers */
#define TL__UNCONST(type, x) const_cast<type>(x)
#define TL__NULL nullptr
#define TL__EXTERN_DEF extern
#else
#define TL__CAST(type, x) ((type)(x))
#define TL__BITCAST(type, x) ((type)(x))
#define TL__UNCONST(type, x) ((type)(uintptr_t)(x)) /* through an integer: quiet under -Wcast-qual */
#define TL__NULL NULL
#define TL__EXTERN_DEF
#endif

#if defined(TL_DYNAMIC)
#define TL_API static inline __attribute__((unused)) /* defined by the header, below */
#elif defined(__GNUC__)
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
 * the number of keys short of memory (2^28 alive at once; EAGAIN beyond),
 * nor on the number of tasks. A key's attributes are copied at creation.
 *
 * Errors of the key functions: EINVAL for a NULL pointer, an invalid key or
 * invalid attributes (an unknown scope, inherit value or flag bit,
 * TL_INHERIT_COPY without copy, TL_SCOPE_CUSTOM without disc->current,
 * inheritance on a thread or custom key, an empty name); EEXIST for a name
 * already taken; ENOENT from tl_key_find; ENOMEM.
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

#ifdef __cplusplus
#define TL_KEY_ATTR_INIT {}                /* the defaults: task scope, no inheritance */
#else
#define TL_KEY_ATTR_INIT {0}               /* the defaults: task scope, no inheritance */
#endif

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

/* tl_unbind can also fail with ESRCH (a custom-scope key whose discriminator
 * names no owner now) or ENOMEM (restoring needs a bigger table); the
 * binding then stays and the token stays valid, so the call can be made
 * again. A NULL attr to tl_key_create_attr means the defaults. */

/* TL_WITH(key, value) { ... } binds value to key for the block and unbinds
 * it on every way out: the end of the block, break (which leaves the
 * TL_WITH block itself), continue, return and goto. If the binding cannot
 * be made (EINVAL, EPERM never applies, ESRCH, ENOMEM), the block is not
 * run and errno holds the error, as a Python with-statement whose
 * __enter__ raises. Leaving the block cannot report an error: if the
 * unbinding fails (ESRCH or ENOMEM above) the binding outlives the block.
 * In C it needs GCC or Clang (the cleanup attribute); in C++ it is built
 * on tl::with, so an exception leaving the block unbinds too
 * (tasklocal.hpp). */
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
TL_API int tl_disc_end(const struct tl_disc *disc, void *owner);  /* destroys owner's values; 0 if it had none */

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

TL_API int tl_available(void);             /* 1 when the library is in use and tracking ucontext */
TL_API int tl_dump(int fd);                /* the live-task report now ("dump summary"); EBADF; not signal-safe */
TL_API int tl_trace_flush(void);           /* writes the TASKLOCAL_TRACE file now; ENOTSUP when tracing is off */

/* ------------------------------------------------------------------------
 * Header-only use
 *
 * The library exports one versioned symbol, tl_api_v1, a table of its
 * functions (struct tl_api, in tasklocal_dynamic.h). With TL_DYNAMIC
 * defined before this header is included, it also includes
 * tasklocal_dynamic.h: every function above becomes a static
 * inline wrapper that calls through that table, found at the first call
 * (tasklocal_dynamic.h says how), and the program needs no -ltasklocal
 * (only -ldl on glibc before 2.34).
 *
 * Without the library the fallback gives per-thread semantics (each thread
 * is one task) for keys, get/lookup/set/unset and bind/unbind/TL_WITH,
 * shared by every translation unit and shared object of the program (its
 * state has weak, default-visibility symbols); key attributes other than a
 * custom scope work, with thread and task scope alike and no inheritance.
 * Everything else returns ENOSYS (pointer-returning functions give NULL
 * with errno ENOSYS); argument errors are EINVAL in both modes;
 * tl_available() is 0. The fallback holds at most 2^20 keys alive.
 * ------------------------------------------------------------------------ */

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

/* The inline read path: a linked program (or a plugin of a preloaded one)
 * reads a bound task key without a call. The library keeps, in each
 * thread's TLS block, a view of the task running there (its stack range,
 * its value table, and the last key read with its value); a read checks
 * the stack pointer against the range and the key against that copy, else
 * looks in the table, else calls the library. The library empties the view
 * (span 0) before anything it mirrors may change. Each field is loaded
 * relative to the thread pointer by a volatile asm statement, so that no
 * thread's address is kept across a switch that may move the coroutine to
 * another thread. Fields are only ever added at the end; a reordering
 * changes TL_VERSION_MAJOR. doc/performance.md tells the whole design.
 * Define TL_NO_INLINE before including this header to always call the
 * library instead. */
struct tl__rview {
  unsigned long lo, span;                  /* the running task's stack; span 0: ask the library */
  unsigned long ents, tag;                 /* its table: first entry, 2 x (capacity - 1) */
  unsigned long last, value;               /* the key the library last read for it, and its value */
};

struct tl__rent {                          /* an entry of the table */
  uint64_t key;
  void *value;
};

#if !defined(TL_DYNAMIC) && !defined(TL_NO_INLINE) && defined(__GNUC__) && defined(__x86_64__)
extern __thread struct tl__rview tl__view;

/* out = the word at byte `at` of this thread's view (a literal, so that
 * the statement compiles at -O0 too). */
#define TL__VIEW_WORD(out, off, at) __asm__ volatile("movq %%fs:" #at "(%1), %0" : "=r"(out) : "r"(off))

static inline void *tl__get_inline(tl_key_t key)
{
  unsigned long off, span, value, ents, tag;
  __asm__("movq tl__view@gottpoff(%%rip), %0" : "=r"(off));
#ifdef __GCC_ASM_FLAG_OUTPUTS__
  /* The common read is one compare and one branch: with d = sp - lo and
   * x = last ^ key, the 128-bit number x:d is below 0:span exactly when
   * the stack pointer is in the task's stack and key is the view's copy
   * (a subtraction, then a subtraction with borrow, whose carry the
   * branch tests). A second branch would cost a cycle of its own on
   * processors that predict two branches a cycle. */
  unsigned long d, x;
  int hit;
  __asm__ volatile("movq %%rsp, %0\n\t"
                   "subq %%fs:0(%3), %0\n\t"
                   "movq %%fs:32(%3), %1\n\t"
                   "xorq %4, %1\n\t"
                   "cmpq %%fs:8(%3), %0\n\t"
                   "sbbq $0, %1"
                   : "=&r"(d), "=&r"(x), "=@ccb"(hit)
                   : "r"(off), "r"(key));
  if (__builtin_expect(hit, 1)) {
    TL__VIEW_WORD(value, off, 40);
    return TL__BITCAST(void *, value);
  }
  /* Another key, or another stack: the table, when d is in the stack. */
  TL__VIEW_WORD(span, off, 8);
  if (__builtin_expect(d < span, 1)) {
#else
  unsigned long sp, lo, last;
  __asm__("movq %%rsp, %0" : "=r"(sp));
  TL__VIEW_WORD(lo, off, 0);
  TL__VIEW_WORD(span, off, 8);
  if (__builtin_expect(sp - lo < span, 1)) {
    TL__VIEW_WORD(last, off, 32);
    if (last == key) {
      TL__VIEW_WORD(value, off, 40);
      return TL__BITCAST(void *, value);
    }
#endif
    TL__VIEW_WORD(ents, off, 16);
    TL__VIEW_WORD(tag, off, 24);
    const struct tl__rent *e = TL__BITCAST(
        const struct tl__rent *, ents + TL__CAST(unsigned long, TL__CAST(uint32_t, key) & TL__CAST(uint32_t, tag)) * 8);
    /* Plain loads: only the thread running a task writes its table, and
     * the view is emptied before the table is replaced. */
    if (e->key == key)
      return e->value;
  }
  return (tl_get)(key);
}

#define tl_get(key) tl__get_inline(key)
#elif !defined(TL_DYNAMIC) && !defined(TL_NO_INLINE) && defined(__GNUC__) && defined(__aarch64__) && defined(__LP64__)
extern __thread struct tl__rview tl__view;

/* The same read on aarch64, where the thread pointer is tpidr_el0 and the
 * view's offset from it comes from an initial-exec GOT entry. Each pair of
 * words (lo and span, then ents and tag) is loaded by one volatile asm
 * statement that reads tpidr_el0 itself, so that, as on x86_64, no
 * thread's address is kept across a call: a and b = the two words at byte
 * `at` of this thread's view. */
#define TL__VIEW_PAIR(a, b, off, at)                                          \
  __asm__ volatile("mrs %0, tpidr_el0\n\tadd %0, %0, %2\n\tldp %0, %1, [%0, #" #at "]" \
                   : "=&r"(a), "=&r"(b)                                       \
                   : "r"(off))

static inline void *tl__get_inline(tl_key_t key)
{
  unsigned long off, sp, lo, span, last, value, ents, tag;
  __asm__("adrp %0, :gottprel:tl__view\n\tldr %0, [%0, #:gottprel_lo12:tl__view]" : "=r"(off));
  __asm__("mov %0, sp" : "=r"(sp));
  TL__VIEW_PAIR(lo, span, off, 0);
  if (__builtin_expect(sp - lo < span, 1)) {
    TL__VIEW_PAIR(last, value, off, 32);
    if (__builtin_expect(last == key, 1))
      return (void *)value;
    TL__VIEW_PAIR(ents, tag, off, 16);
    const struct tl__rent *e = (const struct tl__rent *)(ents + (unsigned long)((uint32_t)key & (uint32_t)tag) * 8);
    /* Plain loads, as on x86_64. */
    if (e->key == key)
      return e->value;
  }
  return (tl_get)(key);
}

#define tl_get(key) tl__get_inline(key)
#endif

#ifndef __cplusplus
#define TL__WITH_(key, value, w)                                                                   \
  for (struct tl__with w __attribute__((cleanup(tl__with_end))) = tl__with_begin((key), (value)); \
       w.once; w.once = 0)
#endif


#ifdef TL_DYNAMIC
#include "tasklocal_dynamic.h"         /* the table and the fallback */
#endif

#ifdef __cplusplus
}
#include "tasklocal.hpp"
#endif

#endif /* the language check at the top */
#endif /* TASKLOCAL_H */
