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
 * define TL_DYNAMIC before including this header and link nothing: the
 * header finds the library at run time and falls back to per-thread storage
 * without it (see "Header-only use" at the end).
 *
 * The header is C99 or later and C++11 or later; C++ also gets a scoped
 * binding, tl::with (see "C++" at the end).
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
 * on tl::with, so an exception leaving the block unbinds too (see "C++"
 * at the end). */
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
 * functions. With TL_DYNAMIC defined before this header is included, every
 * function above is a static inline wrapper that calls through that table,
 * and the program needs no -ltasklocal (only -ldl on glibc before 2.34).
 *
 * Detection happens at the first call of any function, once for the whole
 * process: dlsym(RTLD_DEFAULT, "tl_api_v1") finds the library when it is
 * preloaded, linked, or dlopened with RTLD_GLOBAL; then
 * dlopen("libtasklocal.so.0", RTLD_NOLOAD) finds it when it was dlopened
 * locally. The table is accepted when its version is TL_API_VERSION and its
 * size at least ours. Threads that race on the first call each compute the
 * same answer and publish it with an atomic store, so no lock is needed.
 * A library loaded after the first call is not used: keys made by the
 * fallback would mean nothing to it.
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

#define TL_API_VERSION 1

struct tl_api {
  uint32_t size;                           /* sizeof(struct tl_api) in the library */
  uint32_t version;                        /* TL_API_VERSION */
  int (*key_create)(tl_key_t *, void (*)(void *));
  int (*key_create_attr)(tl_key_t *, const tl_key_attr_t *);
  int (*key_find)(tl_key_t *, const char *);
  int (*key_delete)(tl_key_t);
  void *(*get)(tl_key_t);
  int (*lookup)(tl_key_t, void **);
  int (*set)(tl_key_t, const void *);
  int (*unset)(tl_key_t);
  int (*bind)(tl_key_t, const void *, tl_token_t *);
  int (*unbind)(tl_token_t *);
  int (*loop_close)(void);
  int (*disc_end)(const struct tl_disc *, void *);
  void *(*singleton)(tl_key_t, void *(*)(void *), void *);
  int (*defer)(int, void (*)(void *), void *);
  tl_task_t *(*current)(void);
  uint64_t (*task_id)(const tl_task_t *);
  int (*task_set_name)(tl_task_t *, const char *);
  const char *(*task_name)(const tl_task_t *);
  int (*foreach)(tl_task_t *, int (*)(tl_key_t, const char *, void *, void *), void *);
  int (*dump)(int);
  int (*available)(void);
  int (*trace_flush)(void);                /* new entries go last: older headers check only the size */
};

#ifndef TL_DYNAMIC
TL_API extern const struct tl_api tl_api_v1; /* the library's table */
#endif

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

/* The inline read path. A linked program (or a plugin of a preloaded one)
 * reads a bound task key without a call. The library keeps, in each
 * thread's own TLS block, a view of the task running there: its stack
 * range and its value table. A read checks the stack pointer against the
 * range, then looks at the view's copy of the last key read through the
 * library (four loads relative to %fs in all), and only for another key in
 * the table (two more, and two from the table). Whenever anything the view
 * mirrors may change (a switch, a task's end, a table replaced, a
 * destructor running for another task), the library first empties the view
 * (span 0), and the next read goes to the library, which fills the view
 * again once it knows for sure which task runs; a value bound, rebound or
 * unbound in place forgets the copy of that key (last 0) before the table
 * changes. The copy is what CPython's contextvars keeps in each variable
 * (the last value read and the context it came from), kept here per thread:
 * a loop that reads one key makes no load from the table at all. Fields
 * are only ever added at the end; a reordering changes TL_VERSION_MAJOR. Once a key has been
 * deleted, every read goes to the library, which checks that a key it
 * finds in a table is still live (tl_key_delete empties every thread's
 * view, and none is filled again). A stack pointer
 * outside the range (a switch the library never saw, as with siglongjmp)
 * also goes to the library, which finds the task by its stack.
 *
 * Coroutines move between threads (M:N schedulers), and a compiler may keep
 * the address of a thread-local variable in a register across a call such
 * as swapcontext, after which the code runs on another thread. So the view
 * is never reached through an address: each field is loaded relative to
 * %fs by a volatile asm statement, which the compiler can neither merge
 * with an earlier one nor move, and which reads the view of the thread the
 * code runs on at that instant. (The view's offset from %fs is the same in
 * every thread.) Define TL_NO_INLINE before including this header to always
 * call the library instead. */
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
  struct tl__ent_a64 {
    uint64_t key;
    void *value;
  };
  unsigned long off, sp, lo, span, last, value, ents, tag;
  __asm__("adrp %0, :gottprel:tl__view\n\tldr %0, [%0, #:gottprel_lo12:tl__view]" : "=r"(off));
  __asm__("mov %0, sp" : "=r"(sp));
  TL__VIEW_PAIR(lo, span, off, 0);
  if (__builtin_expect(sp - lo < span, 1)) {
    TL__VIEW_PAIR(last, value, off, 32);
    if (__builtin_expect(last == key, 1))
      return (void *)value;
    TL__VIEW_PAIR(ents, tag, off, 16);
    const struct tl__ent_a64 *e =
        (const struct tl__ent_a64 *)(ents + (unsigned long)((uint32_t)key & (uint32_t)tag) * 8);
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
/* The header-only implementation. Everything here has a tl__dyn_ or
 * tl__fb_ name; shared state and functions are weak so that every
 * translation unit (and shared object) of the program uses one copy. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The definitions below are their own only declarations, so the warnings
 * that ask for a separate prototype are off for them (and them only). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-declarations"
#if !defined(__cplusplus) || defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#endif
#ifdef __clang__
#pragma GCC diagnostic ignored "-Wmissing-variable-declarations"
#endif

#define TL__FB_CHUNK 1024u
#define TL__FB_CHUNKS 1024u

struct tl__fb_key {
  uint32_t gen;                            /* the live key's generation, or the next one */
  int live;
  tl_key_attr_t attr;                      /* attr.name is a copy */
  uint32_t next_free;                      /* slot + 1 */
};

struct tl__fb_ent {
  tl_key_t key;
  void *value;
};

struct tl__fb_binding {
  uint64_t seq;
  tl_key_t key;
  void *prev;
  int prev_bound;
};

struct tl__fb_perthread {
  struct tl__fb_ent *vals;                 /* indexed by slot */
  uint32_t cap;
  struct tl__fb_binding *binds;
  uint32_t nbinds, capbinds;
  uint64_t seq, id;
  tl_key_t initing;                        /* the key whose init runs now */
};

struct tl__fb_state {
  pthread_mutex_t lock;
  struct tl__fb_key *chunk[TL__FB_CHUNKS];
  uint32_t nslots, free_head;
  pthread_once_t once;
  pthread_key_t exit_key;
  uint64_t next_id;
  const struct tl_api *api;                /* what detection chose; read with __atomic */
};

/* glibc's PTHREAD_MUTEX_INITIALIZER spells the mutex's two list pointers
 * as 0 (bits/struct_mutex.h), which C++ compilers flag under
 * -Wzero-as-null-pointer-constant where the macro is expanded: here. */
#ifdef __cplusplus
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wzero-as-null-pointer-constant"
#endif
__attribute__((weak)) struct tl__fb_state tl__fb = {PTHREAD_MUTEX_INITIALIZER, {TL__NULL}, 0, 0, PTHREAD_ONCE_INIT, 0, 1, TL__NULL};
#ifdef __cplusplus
#pragma GCC diagnostic pop
#endif
__attribute__((weak)) __thread struct tl__fb_perthread *tl__fb_self;

__attribute__((weak)) struct tl__fb_key *tl__fb_rec(tl_key_t key)
{
  uint32_t slot = TL__CAST(uint32_t, key), gen = TL__CAST(uint32_t, key >> 32);
  if (gen == 0 || slot >= TL__FB_CHUNK * TL__FB_CHUNKS)
    return TL__NULL;
  struct tl__fb_key *c = __atomic_load_n(&tl__fb.chunk[slot / TL__FB_CHUNK], __ATOMIC_ACQUIRE);
  if (c == TL__NULL)
    return TL__NULL;
  struct tl__fb_key *r = &c[slot % TL__FB_CHUNK];
  return __atomic_load_n(&r->live, __ATOMIC_ACQUIRE) && r->gen == gen ? r : TL__NULL;
}

__attribute__((weak)) void tl__fb_thread_exit(void *arg)
{
  struct tl__fb_perthread *th = TL__CAST(struct tl__fb_perthread *, arg);
  for (int round = 0; round < 4; round++) {
    int called = 0;
    for (uint32_t i = 0; i < th->cap; i++) {
      struct tl__fb_ent e = th->vals[i];
      if (e.key == 0)
        continue;
      th->vals[i].key = 0;
      struct tl__fb_key *r = tl__fb_rec(e.key);
      if (r != TL__NULL && e.value != TL__NULL && r->attr.destroy != TL__NULL) {
        r->attr.destroy(e.value);
        called = 1;
      }
    }
    if (!called)
      break;
  }
  tl__fb_self = TL__NULL;
  free(th->vals);
  free(th->binds);
  free(th);
}

__attribute__((weak)) void tl__fb_once(void)
{
  pthread_key_create(&tl__fb.exit_key, tl__fb_thread_exit);
}

__attribute__((weak)) struct tl__fb_perthread *tl__fb_thread(void)
{
  struct tl__fb_perthread *th = tl__fb_self;
  if (th == TL__NULL) {
    pthread_once(&tl__fb.once, tl__fb_once);
    th = TL__CAST(struct tl__fb_perthread *, calloc(1, sizeof *th));
    if (th == TL__NULL)
      return TL__NULL;
    th->id = __atomic_fetch_add(&tl__fb.next_id, 1, __ATOMIC_RELAXED);
    pthread_setspecific(tl__fb.exit_key, th);
    tl__fb_self = th;
  }
  return th;
}

__attribute__((weak)) int tl__fb_key_create_attr(tl_key_t *key, const tl_key_attr_t *attr)
{
  static const tl_key_attr_t defaults = TL_KEY_ATTR_INIT;
  if (key == TL__NULL)
    return EINVAL;
  if (attr == TL__NULL)
    attr = &defaults;
  if (attr->scope < TL_SCOPE_TASK || attr->scope > TL_SCOPE_CUSTOM || attr->inherit < TL_INHERIT_NONE ||
      attr->inherit > TL_INHERIT_COPY || (attr->inherit == TL_INHERIT_COPY && attr->copy == TL__NULL) ||
      (attr->scope == TL_SCOPE_CUSTOM && (attr->disc == TL__NULL || attr->disc->current == TL__NULL)) ||
      (attr->scope != TL_SCOPE_TASK && attr->inherit != TL_INHERIT_NONE) || (attr->flags & ~TL_KEY_SCOPED_ONLY) ||
      (attr->name != TL__NULL && attr->name[0] == '\0'))
    return EINVAL;
  if (attr->scope == TL_SCOPE_CUSTOM)
    return ENOSYS;
  char *name = TL__NULL;
  if (attr->name != TL__NULL) {
    size_t len = strlen(attr->name) + 1;
    if ((name = TL__CAST(char *, malloc(len))) == TL__NULL)
      return ENOMEM;
    memcpy(name, attr->name, len);
  }
  int err = 0;
  pthread_mutex_lock(&tl__fb.lock);
  for (uint32_t i = 0; name != TL__NULL && i < tl__fb.nslots; i++) {
    struct tl__fb_key *r = &tl__fb.chunk[i / TL__FB_CHUNK][i % TL__FB_CHUNK];
    if (r->live && r->attr.name != TL__NULL && strcmp(r->attr.name, name) == 0)
      err = EEXIST;
  }
  uint32_t slot = tl__fb.free_head ? tl__fb.free_head - 1 : tl__fb.nslots;
  if (err == 0 && slot >= TL__FB_CHUNK * TL__FB_CHUNKS)
    err = EAGAIN;
  if (err == 0 && tl__fb.chunk[slot / TL__FB_CHUNK] == TL__NULL) {
    struct tl__fb_key *c = TL__CAST(struct tl__fb_key *, calloc(TL__FB_CHUNK, sizeof *c));
    if (c == TL__NULL)
      err = ENOMEM;
    else
      __atomic_store_n(&tl__fb.chunk[slot / TL__FB_CHUNK], c, __ATOMIC_RELEASE);
  }
  if (err == 0) {
    struct tl__fb_key *r = &tl__fb.chunk[slot / TL__FB_CHUNK][slot % TL__FB_CHUNK];
    if (tl__fb.free_head)
      tl__fb.free_head = r->next_free;
    else
      tl__fb.nslots++;
    if (r->gen == 0)
      r->gen = 1;
    r->attr = *attr;
    r->attr.name = name;
    __atomic_store_n(&r->live, 1, __ATOMIC_RELEASE);
    *key = TL__CAST(uint64_t, r->gen) << 32 | slot;
    name = TL__NULL;
  }
  pthread_mutex_unlock(&tl__fb.lock);
  free(name);
  return err;
}

__attribute__((weak)) int tl__fb_key_create(tl_key_t *key, void (*destroy)(void *))
{
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.destroy = destroy;
  return tl__fb_key_create_attr(key, &attr);
}

__attribute__((weak)) int tl__fb_key_find(tl_key_t *key, const char *name)
{
  if (key == TL__NULL || name == TL__NULL)
    return EINVAL;
  int err = ENOENT;
  pthread_mutex_lock(&tl__fb.lock);
  for (uint32_t i = 0; i < tl__fb.nslots && err != 0; i++) {
    struct tl__fb_key *r = &tl__fb.chunk[i / TL__FB_CHUNK][i % TL__FB_CHUNK];
    if (r->live && r->attr.name != TL__NULL && strcmp(r->attr.name, name) == 0) {
      *key = TL__CAST(uint64_t, r->gen) << 32 | i;
      err = 0;
    }
  }
  pthread_mutex_unlock(&tl__fb.lock);
  return err;
}

__attribute__((weak)) int tl__fb_key_delete(tl_key_t key)
{
  int err = EINVAL;
  char *name = TL__NULL;
  pthread_mutex_lock(&tl__fb.lock);
  struct tl__fb_key *r = tl__fb_rec(key);
  if (r != TL__NULL) {
    __atomic_store_n(&r->live, 0, __ATOMIC_RELEASE);
    r->gen = r->gen + 1 ? r->gen + 1 : 1;  /* the old handle never matches again */
    name = TL__UNCONST(char *, r->attr.name);
    r->attr.name = TL__NULL;
    r->next_free = tl__fb.free_head;
    tl__fb.free_head = TL__CAST(uint32_t, key) + 1;
    err = 0;
  }
  pthread_mutex_unlock(&tl__fb.lock);
  free(name);
  return err;
}

__attribute__((weak)) int tl__fb_put(tl_key_t key, void *value, int remove)
{
  struct tl__fb_perthread *th = tl__fb_thread();
  if (th == TL__NULL)
    return ENOMEM;
  uint32_t slot = TL__CAST(uint32_t, key);
  if (slot >= th->cap) {
    if (remove)
      return 0;
    uint32_t cap = th->cap ? th->cap : 16;
    while (cap <= slot)
      cap *= 2;
    struct tl__fb_ent *v = TL__CAST(struct tl__fb_ent *, calloc(cap, sizeof *v));
    if (v == TL__NULL)
      return ENOMEM;
    if (th->cap)
      memcpy(v, th->vals, th->cap * sizeof *v);
    free(th->vals);
    th->vals = v;
    th->cap = cap;
  }
  th->vals[slot].key = remove ? 0 : key;
  th->vals[slot].value = remove ? TL__NULL : value;
  return 0;
}

__attribute__((weak)) int tl__fb_lookup(tl_key_t key, void **value)
{
  struct tl__fb_key *r = tl__fb_rec(key);
  if (r == TL__NULL || value == TL__NULL)
    return EINVAL;
  struct tl__fb_perthread *th = tl__fb_self;
  uint32_t slot = TL__CAST(uint32_t, key);
  if (th != TL__NULL && slot < th->cap && th->vals[slot].key == key) {
    *value = th->vals[slot].value;
    return 0;
  }
  if (r->attr.init == TL__NULL || (th = tl__fb_thread()) == TL__NULL || th->initing == key)
    return ENOENT;
  th->initing = key;
  void *v = r->attr.init(r->attr.init_arg);
  th->initing = 0;
  int err = tl__fb_put(key, v, 0);
  if (err == 0)
    *value = v;
  return err;
}

__attribute__((weak)) void *tl__fb_get(tl_key_t key)
{
  void *v = TL__NULL;
  return tl__fb_lookup(key, &v) == 0 ? v : TL__NULL;
}

__attribute__((weak)) int tl__fb_set(tl_key_t key, const void *value)
{
  struct tl__fb_key *r = tl__fb_rec(key);
  if (r == TL__NULL)
    return EINVAL;
  if (r->attr.flags & TL_KEY_SCOPED_ONLY)
    return EPERM;
  return tl__fb_put(key, TL__UNCONST(void *, value), 0);
}

__attribute__((weak)) int tl__fb_unset(tl_key_t key)
{
  struct tl__fb_key *r = tl__fb_rec(key);
  if (r == TL__NULL)
    return EINVAL;
  if (r->attr.flags & TL_KEY_SCOPED_ONLY)
    return EPERM;
  return tl__fb_put(key, TL__NULL, 1);
}

__attribute__((weak)) uint64_t tl__fb_check(uint64_t id, uint64_t seq, uint64_t key)
{
  uint64_t x = id * 0x9e3779b97f4a7c15ull ^ seq * 0xbf58476d1ce4e5b9ull ^ key ^ TL__BITCAST(uintptr_t, &tl__fb);
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 29);
}

__attribute__((weak)) int tl__fb_bind(tl_key_t key, const void *value, tl_token_t *token)
{
  struct tl__fb_perthread *th;
  if (token == TL__NULL || tl__fb_rec(key) == TL__NULL)
    return EINVAL;
  if ((th = tl__fb_thread()) == TL__NULL)
    return ENOMEM;
  if (th->nbinds == th->capbinds) {
    uint32_t cap = th->capbinds ? th->capbinds * 2 : 8;
    struct tl__fb_binding *b = TL__CAST(struct tl__fb_binding *, realloc(th->binds, cap * sizeof *b));
    if (b == TL__NULL)
      return ENOMEM;
    th->binds = b;
    th->capbinds = cap;
  }
  uint32_t slot = TL__CAST(uint32_t, key);
  struct tl__fb_binding b = {++th->seq, key, TL__NULL, 0};
  if (slot < th->cap && th->vals[slot].key == key) {
    b.prev = th->vals[slot].value;
    b.prev_bound = 1;
  }
  int err = tl__fb_put(key, TL__UNCONST(void *, value), 0);
  if (err != 0)
    return err;
  th->binds[th->nbinds++] = b;
  token->opaque[0] = th->id;
  token->opaque[1] = b.seq;
  token->opaque[2] = key;
  token->opaque[3] = tl__fb_check(th->id, b.seq, key);
  return 0;
}

__attribute__((weak)) int tl__fb_unbind(tl_token_t *token)
{
  struct tl__fb_perthread *th = tl__fb_self;
  if (token == TL__NULL || th == TL__NULL || th->nbinds == 0 || token->opaque[0] != th->id ||
      token->opaque[3] != tl__fb_check(token->opaque[0], token->opaque[1], token->opaque[2]))
    return EINVAL;
  struct tl__fb_binding *top = &th->binds[th->nbinds - 1];
  if (top->seq != token->opaque[1] || top->key != token->opaque[2])
    return EINVAL;
  if (tl__fb_rec(top->key) != TL__NULL) {
    int err = tl__fb_put(top->key, top->prev, !top->prev_bound);
    if (err != 0)
      return err;
  }
  th->nbinds--;
  memset(token, 0, sizeof *token);
  return 0;
}

__attribute__((weak)) int tl__fb_loop_close(void) { return ENOSYS; }
__attribute__((weak)) int tl__fb_disc_end(const struct tl_disc *disc, void *owner)
{
  return disc == TL__NULL || owner == TL__NULL ? EINVAL : ENOSYS;
}
__attribute__((weak)) void *tl__fb_singleton(tl_key_t key, void *(*make)(void *), void *arg)
{
  (void)arg;
  errno = make == TL__NULL || tl__fb_rec(key) == TL__NULL ? EINVAL : ENOSYS;
  return TL__NULL;
}
__attribute__((weak)) int tl__fb_defer(int scope, void (*fn)(void *), void *arg)
{
  (void)arg;
  return fn == TL__NULL || (scope != TL_SCOPE_TASK && scope != TL_SCOPE_THREAD) ? EINVAL : ENOSYS;
}
__attribute__((weak)) tl_task_t *tl__fb_current(void)
{
  errno = ENOSYS;
  return TL__NULL;
}
__attribute__((weak)) uint64_t tl__fb_task_id(const tl_task_t *task)
{
  (void)task;
  return 0;
}
__attribute__((weak)) int tl__fb_task_set_name(tl_task_t *task, const char *name)
{
  (void)task;
  (void)name;
  return ENOSYS;
}
__attribute__((weak)) const char *tl__fb_task_name(const tl_task_t *task)
{
  (void)task;
  errno = ENOSYS;
  return TL__NULL;
}
__attribute__((weak)) int tl__fb_foreach(tl_task_t *task, int (*fn)(tl_key_t, const char *, void *, void *), void *arg)
{
  (void)task;
  (void)arg;
  return fn == TL__NULL ? EINVAL : ENOSYS;
}
__attribute__((weak)) int tl__fb_dump(int fd) { return fd < 0 ? EBADF : ENOSYS; }
__attribute__((weak)) int tl__fb_available(void) { return 0; }
__attribute__((weak)) int tl__fb_trace_flush(void) { return ENOSYS; }

__attribute__((weak)) TL__EXTERN_DEF const struct tl_api tl__fb_api = {
    sizeof(struct tl_api), TL_API_VERSION, tl__fb_key_create, tl__fb_key_create_attr, tl__fb_key_find,
    tl__fb_key_delete, tl__fb_get, tl__fb_lookup, tl__fb_set, tl__fb_unset, tl__fb_bind, tl__fb_unbind,
    tl__fb_loop_close, tl__fb_disc_end, tl__fb_singleton, tl__fb_defer, tl__fb_current, tl__fb_task_id,
    tl__fb_task_set_name, tl__fb_task_name, tl__fb_foreach, tl__fb_dump, tl__fb_available, tl__fb_trace_flush};

/* Detection: see "Header-only use" above. */
__attribute__((weak)) const struct tl_api *tl__dyn_api_slow(void)
{
  const struct tl_api *api = TL__CAST(const struct tl_api *, dlsym(TL__NULL /* RTLD_DEFAULT */, "tl_api_v1"));
  if (api == TL__NULL) {
    void *lib = dlopen("libtasklocal.so.0", RTLD_LAZY | RTLD_NOLOAD);
    if (lib != TL__NULL)
      api = TL__CAST(const struct tl_api *, dlsym(lib, "tl_api_v1"));
  }
  if (api == TL__NULL || api->version != TL_API_VERSION || api->size < sizeof(struct tl_api))
    api = &tl__fb_api;
  __atomic_store_n(&tl__fb.api, api, __ATOMIC_RELEASE);
  return api;
}

static inline const struct tl_api *tl__dyn_api(void)
{
  const struct tl_api *api = __atomic_load_n(&tl__fb.api, __ATOMIC_ACQUIRE);
  return api != TL__NULL ? api : tl__dyn_api_slow();
}

TL_API int tl_key_create(tl_key_t *key, void (*destroy)(void *value)) { return tl__dyn_api()->key_create(key, destroy); }
TL_API int tl_key_create_attr(tl_key_t *key, const tl_key_attr_t *attr) { return tl__dyn_api()->key_create_attr(key, attr); }
TL_API int tl_key_find(tl_key_t *key, const char *name) { return tl__dyn_api()->key_find(key, name); }
TL_API int tl_key_delete(tl_key_t key) { return tl__dyn_api()->key_delete(key); }
TL_API void *tl_get(tl_key_t key) { return tl__dyn_api()->get(key); }
TL_API int tl_lookup(tl_key_t key, void **value) { return tl__dyn_api()->lookup(key, value); }
TL_API int tl_set(tl_key_t key, const void *value) { return tl__dyn_api()->set(key, value); }
TL_API int tl_unset(tl_key_t key) { return tl__dyn_api()->unset(key); }
TL_API int tl_bind(tl_key_t key, const void *value, tl_token_t *token) { return tl__dyn_api()->bind(key, value, token); }
TL_API int tl_unbind(tl_token_t *token) { return tl__dyn_api()->unbind(token); }
TL_API int tl_loop_close(void) { return tl__dyn_api()->loop_close(); }
TL_API int tl_disc_end(const struct tl_disc *disc, void *owner) { return tl__dyn_api()->disc_end(disc, owner); }
TL_API void *tl_singleton(tl_key_t key, void *(*make)(void *arg), void *arg) { return tl__dyn_api()->singleton(key, make, arg); }
TL_API int tl_defer(int scope, void (*fn)(void *arg), void *arg) { return tl__dyn_api()->defer(scope, fn, arg); }
TL_API tl_task_t *tl_current(void) { return tl__dyn_api()->current(); }
TL_API uint64_t tl_task_id(const tl_task_t *task) { return tl__dyn_api()->task_id(task); }
TL_API int tl_task_set_name(tl_task_t *task, const char *name) { return tl__dyn_api()->task_set_name(task, name); }
TL_API const char *tl_task_name(const tl_task_t *task) { return tl__dyn_api()->task_name(task); }
TL_API int tl_foreach(tl_task_t *task, int (*fn)(tl_key_t key, const char *name, void *value, void *arg), void *arg)
{
  return tl__dyn_api()->foreach(task, fn, arg);
}
TL_API int tl_dump(int fd) { return tl__dyn_api()->dump(fd); }
TL_API int tl_available(void) { return tl__dyn_api()->available(); }
TL_API int tl_trace_flush(void) { return tl__dyn_api()->trace_flush(); }
#pragma GCC diagnostic pop
#endif /* TL_DYNAMIC */

#ifdef __cplusplus
}

/* ------------------------------------------------------------------------
 * C++
 *
 * The header is valid C++11 and later, warning-free under -Wall -Wextra
 * -Wpedantic -Wold-style-cast -Wzero-as-null-pointer-constant
 * -Wuseless-cast, linked, with TL_DYNAMIC and with TL_NO_INLINE. The
 * functions above keep C linkage, so C and C++ translation units of one
 * program share keys and values (and, with TL_DYNAMIC, one fallback).
 * C++ also gets, from this header alone, the scoped binding tl::with, and
 * TL_WITH built on it.
 *
 * tl::with guard(key, value); binds value to key with tl_bind until the
 * guard goes out of scope, however the scope is left: its end, return,
 * break, or an exception passing through. Nothing in it throws. Whether
 * the binding was made is in the guard: it converts to true while it holds
 * the binding, and guard.error() is what tl_bind returned (0, or EINVAL,
 * ESRCH, ENOMEM as above); a guard that could not bind unbinds nothing.
 * guard.unbind() ends the binding early and returns what tl_unbind did; on
 * an error (ESRCH, ENOMEM, or EINVAL while a binding made after it is
 * still open) the guard keeps the binding and its destructor tries again.
 * It is EINVAL on a guard that holds no binding. The destructor cannot
 * report an error: a binding it fails to undo outlives the guard, as with
 * TL_WITH. Guards follow tl_bind's rules, same task and innermost first,
 * which scopes on the stack give by construction. A guard can be moved
 * into a new one (to return it from a function), which leaves the old one
 * holding nothing; it cannot be copied or assigned (assigning would first
 * have to undo the target's binding, out of order).
 *
 * In C++, TL_WITH(key, value) { ... } is a for statement over a tl::with:
 * it behaves as in C (the block is skipped with errno set when the binding
 * cannot be made; break and continue leave the TL_WITH block itself), and
 * an exception leaving the block unbinds as well.
 *
 * Callbacks must not throw: a key's destroy, init and copy, a custom
 * discriminator's current, tl_singleton's make, the fn of tl_defer and of
 * tl_foreach. The library is C, and an exception thrown out of a callback
 * crosses the library's frames without any of their clean-up. What then
 * happens (glibc, tested on x86_64):
 * - from a callback that the library runs on its own, at a task's end
 *   (destroy, deferred calls), at thread exit or at process exit, or from
 *   copy, which runs inside makecontext (declared noexcept by glibc's C++
 *   headers): no handler is found and std::terminate is called;
 * - from a callback run inside a call the program made (init inside
 *   tl_get or tl_lookup, make inside tl_singleton, fn inside tl_foreach,
 *   destroy inside tl_loop_close or tl_disc_end, current inside any call
 *   on a custom-scope key): the exception reaches the caller's handler,
 *   but the library was left in the middle of that call (an initializer
 *   still marked as running, a scope half destroyed), and what it does
 *   afterwards is undefined.
 * Declare C++ callbacks noexcept, lambdas included
 * (+[](void *p) noexcept { delete static_cast<T *>(p); }): an exception
 * that would leave one calls std::terminate at once, in every case.
 * ------------------------------------------------------------------------ */

namespace tl {

class with {
public:
  with(tl_key_t key, const void *value) noexcept : token_(), err_(tl_bind(key, value, &token_)), bound_(err_ == 0) {}
  with(with &&other) noexcept : token_(other.token_), err_(other.err_), bound_(other.bound_) { other.bound_ = false; }
  with(const with &) = delete;
  with &operator=(const with &) = delete;
  with &operator=(with &&) = delete;
  ~with()
  {
    if (bound_)
      tl_unbind(&token_);
  }

  explicit operator bool() const noexcept { return bound_; }  /* it holds the binding */
  int error() const noexcept { return err_; }                 /* what tl_bind returned */
  int unbind() noexcept                                       /* ends the binding now */
  {
    if (!bound_)
      return EINVAL;
    int err = tl_unbind(&token_);
    if (err == 0)
      bound_ = false;
    return err;
  }

private:
  tl_token_t token_;
  int err_;
  bool bound_;
};

} /* namespace tl */

/* TL_WITH's loop variable in C++: the guard, and whether the block ran. */
class tl__with_block {
public:
  tl__with_block(tl_key_t key, const void *value) noexcept : guard_(key, value), entered_(false) {}
  bool enter() noexcept
  {
    if (entered_)
      return false;
    entered_ = true;
    if (!guard_)
      errno = guard_.error();
    return static_cast<bool>(guard_);
  }

private:
  tl::with guard_;
  bool entered_;
};

#define TL__WITH_(key, value, w) for (::tl__with_block w((key), (value)); w.enter();)
#endif /* __cplusplus */

#endif /* the language check at the top */
#endif /* TASKLOCAL_H */
