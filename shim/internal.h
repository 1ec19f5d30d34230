/* Private interfaces shared by the files of shim/. Nothing here is exported:
 * the library is built with -fvisibility=hidden and a version script, and
 * every internal name starts with tl__ so that it can never collide with
 * the host program's symbols.
 *
 * The library is built in layers, each file calling only the files listed
 * before it (its own layer's earlier files, and the layers below):
 *
 *   1. Base      message.c   the one output path (tl__message, tl__vline)
 *                options.c   the options, read once at load
 *                real.c      the real ucontext functions behind ours
 *                lock.c      locks, and tl__tls, the one thread-local pointer
 *                alloc.c     every allocation, and the fault injection of tests
 *                thread.c    per-thread state, made on first use
 *   2. Indexes   stacktree.c which task's stack holds a stack pointer
 *                ctxmap.c    which task saved itself in a ucontext_t
 *                registry.c  task records, the live list, ids and counts
 *   3. Identity  identity.c  which task runs: the switch's prediction, repair
 *   4. Tools     tools.c     valgrind and the sanitizers' fiber annotations
 *                backtrace.c creation backtraces, unwinding, symbols
 *   5. Values    keys.c      keys: records, names, generations
 *                drops.c     values dropped for want of a destructor
 *                vtab.c      value tables and destructor rounds
 *                scope.c     where values live: thread, custom owners; defers
 *                values.c    get, lookup, set, unset; initializers, singletons
 *                bind.c      scoped bindings, inheritance, a task scope's end
 *   6. Tasks     ended.c     finished tasks waiting for their records' release
 *                task.c      a task's life: make, start, end, abandon
 *                root.c      root tasks; fork; the values at process exit
 *   7. Reports   writer.c    a report's lines, on a stack of its own if need be
 *                report.c    what a leak report or a dump says
 *                dump.c      tl_dump and the dump signal
 *                exitreport.c the reports at exit and at _exit
 *   8. Top       init.c      set-up at load; thread, fork and exit events
 *                interpose.S, interpose.c  the interposed functions
 *                debug.c     the anchor of the gdb extension
 *                api.c       the public API and its table for TL_DYNAMIC
 *
 * What a lower layer must know of an event seen above it (a thread begins
 * or ends, the process forks or exits) is dispatched from init.c, or
 * through the hooks it registers (tl__thread_hooks). This file holds the
 * shared types and every internal declaration, layer by layer; inline
 * functions that use another file's symbols live in that file's header
 * (lock.h, thread.h, identity.h). */
#ifndef TL_INTERNAL_H
#define TL_INTERNAL_H

#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <ucontext.h>

/* The library defines tl_get itself: no inline read path inside it. */
#define TL_NO_INLINE 1
#include "tasklocal.h"

#if !defined(__x86_64__) || !defined(__linux__) || !defined(__GLIBC__)
#error "tasklocal tracks glibc's x86_64 ucontext implementation; other targets are not supported yet"
#endif

#define TL__LIKELY(x) __builtin_expect(!!(x), 1)
#define TL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* ------------------------------------------------------------------------
 * Locks
 *
 * A spinning lock that remembers its owner thread. Signal handlers may call
 * tl_get(), and the slow path of a read takes a lock: a handler that
 * interrupts its own thread while that thread holds the lock must not wait
 * for itself. tl__lock() reports that case instead of deadlocking, and the
 * caller falls back to what it already knows.
 * ------------------------------------------------------------------------ */

struct tl__lock {
  _Atomic uintptr_t owner;                 /* 0 when free, else the owner's tl__thread_token() */
};

uintptr_t tl__thread_token(void);          /* unique per thread, needs no allocation */
int tl__lock(struct tl__lock *lock);       /* 0, or EDEADLK when this thread already holds it */
void tl__unlock(struct tl__lock *lock);
void tl__lock_reset(struct tl__lock *lock); /* in a forked child: the owner thread is gone */

/* ------------------------------------------------------------------------
 * Tasks and threads
 * ------------------------------------------------------------------------ */

enum tl__state {
  TL__NEW = 0,                             /* made, never started */
  TL__RUNNING = 1,                         /* running on some thread */
  TL__SUSPENDED = 2,                       /* saved by a switch, or left by setcontext */
  TL__FINISHED = 3,                        /* its function returned */
  TL__ABANDONED = 4                        /* its ucontext_t was made again */
};

/* One entry of a task's value table. A key of 0 marks an empty entry and 1
 * a removed one (real keys always have a non-zero generation in the high
 * 32 bits, so they are never below 2^32). */
struct tl__ent {
  _Atomic uint64_t key;
  void *_Atomic value;
};

#define TL__EMPTY 0u
#define TL__TOMB 1u

/* A value table: open addressing on the key's slot number, which is a
 * small integer, so keys created together land in distinct entries. A
 * table is a power of two of entries and nothing else. Scopes hold it by a
 * handle of one word: the address of its first entry plus a tag, 2 x
 * (capacity - 1). A reader on another thread (a report, tl_foreach, the
 * inline read path of tasklocal.h) loads the handle once, so it never
 * pairs the capacity of one table with the entries of another, which a
 * capacity kept anywhere else would allow. The entries are aligned to
 * 4 x the capacity in bytes, so the bit just above the tag is zero and
 * h & (h + 2) is the address without the tag. The tag is doubled because
 * keys hold their slot shifted left by one (key.c): key & tag is then the
 * offset of the key's first entry in units of 8 bytes, which an x86
 * address scales for free, and the read path needs no shift.
 *
 * The whole table is replaced (never resized in place) so that a signal
 * handler reading it always sees a complete one. Tables of up to
 * TL__VT_SMALL entries may fill up completely and come from the
 * small-block pools of alloc.c, which add nothing to a block: 4 values
 * cost their 64 bytes (SPEC 6: 16 per value). Larger ones stay at most
 * three quarters full and count their used entries after the last one. */
struct tl__vtab;                           /* never defined: the type of handles */

#define TL__VT_SMALL 8u

static inline struct tl__ent *tl__vt_ent(const struct tl__vtab *vt)
{
  uintptr_t h = (uintptr_t)vt;
  return (struct tl__ent *)(h & (h + 2));
}

static inline uint32_t tl__vt_mask(const struct tl__vtab *vt)
{
  uintptr_t h = (uintptr_t)vt;
  return (uint32_t)(h - (h & (h + 2))) >> 1; /* the capacity - 1 */
}

/* The entry where a search for key starts: entry slot & mask. */
static inline struct tl__ent *tl__vt_home(const struct tl__vtab *vt, tl_key_t key)
{
  uintptr_t h = (uintptr_t)vt, base = h & (h + 2);
  return (struct tl__ent *)(base + (uintptr_t)((uint32_t)key & (uint32_t)(h - base)) * 8);
}

/* The slot of a key (key.c): a key is generation << 32 | slot << 1. */
static inline uint32_t tl__key_slot(tl_key_t key)
{
  return (uint32_t)key >> 1;
}

/* The record of one task. Kept small (at most 128 bytes) because a program
 * may hold a million suspended tasks. Records come from a type-stable pool
 * and are never returned to the system, so a stale pointer (a context copied
 * after its task ended) can be checked against its id without a crash. */
struct tl__task {
  uintptr_t lo, hi;                        /* the stack: [lo, hi) */
  struct tl__vtab *_Atomic vt;             /* the values; never NULL */
  uint64_t id;                             /* unique, never reused; 0 while free */
  const void *ctx;                         /* the ucontext_t it last saved itself into */
  struct tl__task *hnext;                  /* chain in the context map */
  struct tl__task *left, *right;           /* the stack-range tree */
  void (*entry)(void);                     /* the function given to makecontext */
  uint64_t parent;                         /* id of the task that made it */
  _Atomic uint8_t state;                   /* enum tl__state */
  uint8_t flags;                           /* TL__F_* */
  uint8_t mapped;                          /* ctx is entered in the context map */
  uint8_t in_tree;                         /* entered in the stack-range tree */
  uint32_t ran_on;                         /* for debuggers: the low half of its last thread's tl__thread address */
  struct tl__task *lnext;                  /* the list of live tasks, for reports and fork */
  struct tl__task *lprev;
  struct tl__task_ext *x;                  /* rarely used parts, made on demand; NULL at first */
};

/* Fields of a record that the context map's readers load while a writer
 * may store them (task.c): plain fields accessed with relaxed atomic
 * operations, so that the races the map's sequence lock tolerates are well
 * defined (and quiet under TSan). */
#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* The parts of a task that most tasks never need. */
struct tl__task_ext {
  char *name;                              /* tl_task_set_name, our copy */
  uintptr_t *bt;                           /* creation backtrace: raw return addresses */
  uint32_t bt_n;
  struct tl__vtab *held;                   /* an abandoned task kept for the report: its values */
  struct tl__bind *binds;                  /* open scoped bindings, innermost last */
  uint32_t nbinds, capbinds;
  uint64_t bind_seq;                       /* numbers the bindings; never reused */
  struct tl__defer *defers;                /* tl_defer(TL_SCOPE_TASK), newest first */
  struct tl__shared *shared;               /* values inherited by TL_INHERIT_SHARE */
  uint32_t nshared;
  struct tl__setbt *sets;                  /* where values of keys without destructor were set */
  uint32_t nsets;
  void *fiber;                             /* TSan's fiber, or ASan's saved fake stack (tools.c) */
};

struct tl__bind {
  uint64_t seq;
  tl_key_t key;
  void *prev;
  int prev_bound;
};

struct tl__defer {
  void (*fn)(void *arg);
  void *arg;
  struct tl__defer *next;
};

struct tl__shared {
  tl_key_t key;
  void *value;
};

struct tl__init_frame {                    /* an initializer running on this thread */
  tl_key_t key;
  const void *instance;                    /* the scope instance it initializes */
  struct tl__init_frame *next;
};

/* A task's flags are written only by the thread that owns the task at
 * the time: its maker until makecontext returns, then the thread running
 * it. What other threads change (a makecontext that takes over the task's
 * context address, or abandons it and takes it out of the tree) lives in
 * bytes of their own, mapped and in_tree, written under the lock of the
 * index they describe. Distinct bytes are distinct memory locations, so
 * an unlocked read-modify-write of flags cannot lose another thread's
 * write; a locked one would cost tens of cycles on every task life. */
static inline void tl__flag_set(struct tl__task *t, unsigned f)
{
  __atomic_store_n(&t->flags, (uint8_t)(__atomic_load_n(&t->flags, __ATOMIC_RELAXED) | f), __ATOMIC_RELAXED);
}

static inline void tl__flag_clear(struct tl__task *t, unsigned f)
{
  __atomic_store_n(&t->flags, (uint8_t)(__atomic_load_n(&t->flags, __ATOMIC_RELAXED) & ~f), __ATOMIC_RELAXED);
}

#define TL__F_ROOT 0x1u                    /* a thread's own stack */
#define TL__F_STARTED 0x8u                 /* its trampoline ran */
#define TL__F_MADE 0x10u                   /* ctx is where it was made, not where a switch saved it */
#define TL__F_VG 0x20u                     /* its stack is registered with valgrind (tools.c) */

/* A finished task's record is released in a batch with others, when its
 * thread next takes the registry's lock anyway (a makecontext), instead of
 * taking the lock once more at every task's end (task.c, ended_release). */
#define TL__ENDED_MAX 8

/* Small blocks (alloc.c) come in TL__SMALL_CLASSES power-of-two sizes. A
 * thread keeps a few freed blocks of each size for itself, so that a task
 * life that makes and frees one value table takes no global lock. */
#define TL__SMALL_CLASSES 2

struct tl__small_cache {
  void *head[TL__SMALL_CLASSES];           /* freed blocks, linked through their first word */
  uint8_t n[TL__SMALL_CLASSES];            /* how many on each list */
  uint8_t busy;                            /* being changed (a signal handler must not), or closed */
};

/* Per-thread state. The only thread-local variable of the library is the
 * pointer to this struct (tl__tls, initial-exec). */
struct tl__thread {
  struct tl__task *current;                /* the task believed to run here */
  struct tl__rview *view;                  /* this thread's read view (its tl__view) */
  struct tl__task *prev;                   /* the task that began the last switch */
  struct tl__task *override;               /* a task whose destructors run here */
  int in_switch;                           /* a switch was announced and not yet seen done */
  int dying;                               /* thread exit in progress */
  uint64_t switches;                       /* switches made on this thread */
  uint64_t untracked;                      /* unseen switches found from the stack pointer */
  struct tl__vtab *_Atomic tvt;            /* thread-scope values */
  struct tl__defer *defers;                /* tl_defer(TL_SCOPE_THREAD), newest first */
  struct tl__init_frame *initing;          /* initializers and singleton makers running here */
  struct tl__hint {                        /* recent answers of the context map, unchecked */
    const void *ctx;
    struct tl__task *task;
    uint64_t id;
  } hint[8];
  struct tl__task *ended[TL__ENDED_MAX];   /* finished here, records not yet released */
  uint32_t nended;                         /* entries in ended */
  uint32_t uncounted;                      /* finished here, not yet in the registry's counts */
  uint64_t binds;                          /* bindings made here (key.c, tl__destroy_vals) */
  struct tl__thread *next, *prevt;         /* all threads, for fork */
  struct tl__fibers {                      /* what the sanitizers were told (tools.c) */
    void *root;                            /* TSan: this thread's own fiber */
    void *expect;                          /* TSan: the fiber made current last */
    void *pending;                         /* TSan: to switch to when the C frames are gone */
    const void *root_bottom;               /* ASan's bounds of this thread's own stack */
    size_t root_size;
    void *root_fake;                       /* ASan: the root task's saved fake stack */
  } fib;
  struct tl__small_cache cache;            /* alloc.c: freed small blocks kept for this thread */
  struct tl__task root;                    /* this thread's own stack */
};

extern __thread struct tl__thread *tl__tls __attribute__((tls_model("initial-exec")));

_Static_assert(sizeof(struct tl__task) <= 112, "a task record must stay small (SPEC 6: 128 bytes per task)");

/* The read view of the running task, for the inline read path of
 * tasklocal.h (which explains it): per thread, in the TLS block (thread.c).
 * Emptied (span 0) before anything it mirrors may change, by
 * tl__view_drop (thread.h); filled by tl_get once the running task is
 * certain (values.c). Only the thread itself writes its view; a signal
 * handler on it reads a span of 0 or a complete view, because the span is
 * written last. */
extern __thread struct tl__rview tl__view __attribute__((tls_model("initial-exec")));

_Static_assert(sizeof(struct tl__ent) == 16 && offsetof(struct tl__ent, value) == 8,
               "the inline read path of tasklocal.h reads entries as {key, value}");

/* tl__tls holds TL__BUSY while the thread's state is being made: a signal
 * handler that interrupts the set-up sees no state rather than half of it. */
#define TL__BUSY ((struct tl__thread *)1)

/* The stack pointer, without making the caller set up a frame. */
static inline uintptr_t tl__sp(void)
{
  uintptr_t sp;
  __asm__("mov %%rsp, %0" : "=r"(sp));
  return sp;
}

static inline int tl__in_stack(const struct tl__task *t, uintptr_t sp)
{
  return sp - t->lo < t->hi - t->lo;
}

/* ========================================================================
 * 1. Base
 * ======================================================================== */

/* message.c: the one output path */
void tl__message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tl__message_fd(int fd);               /* where tl__message lines go (TASKLOCAL_LOG) */
int tl__format(char *buf, size_t size, const char *fmt, va_list ap);
int tl__formatf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tl__vline(int fd, const char *suffix, const char *fmt, va_list ap); /* one line to fd: 0 or errno */

/* options.c: read once, at load (SPEC 4.1). */
struct tl__options {
  int leaks;                               /* 0 off, 1 report at exit, 2 also exit 23 on leaks */
  int backtrace;                           /* capture creation backtraces */
  int dump_signal;                         /* 0, or the signal that dumps the live tasks */
  int stats;                               /* the stats line at exit */
  int verbose;                             /* print the effective options */
  int fibers;                              /* tell a sanitizer in the process about switches */
  int log_fd;                              /* where reports go: 2, or TASKLOCAL_LOG */
};
extern struct tl__options tl__opt;
void tl__options_read(void);
int tl__options_log_fd(void);              /* tl__opt.log_fd, or 2 if the program reused its number */

/* real.c: the functions behind ours, found at load */
extern int (*tl__real_swapcontext)(ucontext_t *, const ucontext_t *);
extern int (*tl__real_setcontext)(const ucontext_t *);
extern void (*tl__real_makecontext)(ucontext_t *, void (*)(void), int, ...);
/* The jumps: longjmp, _longjmp, siglongjmp, __longjmp_chk, in that order. */
extern void (*tl__real_jump[4])(struct __jmp_buf_tag *, int);
void tl__real_exit(int status) __attribute__((noreturn)); /* libc's _exit */
extern int tl__interposing;                /* our wrappers are the ones the process calls */
void tl__real_lookup(void);                /* at load */

/* lock.c: struct tl__lock and its functions are above, with the lock's
 * rationale; tl__lock_fast is in lock.h. */

/* alloc.c: every allocation of the library goes through these, so that a
 * test can make the Nth one fail. */
void *tl__alloc(size_t size);
void *tl__calloc(size_t n, size_t size);
void *tl__realloc(void *p, size_t size);   /* p intact on failure */
void tl__free(void *p);
void *tl__pages(size_t size);              /* mmap'd, for pools; async-signal-safe */
void *tl__small_alloc(size_t size);        /* 64 or 128 bytes, aligned to the size; not zeroed */
void tl__small_free(void *p, size_t size); /* from any thread */
void tl__small_cache_flush(struct tl__thread *th); /* its kept blocks to the pools; closes its cache */
void tl__alloc_setup(void);                /* once, in tl__init */
void tl__alloc_atfork(int phase);          /* -1 before fork, 0 parent, 1 child */

/* thread.c: per-thread state (tl__self and the read view in thread.h) */
struct tl__thread_hooks {                  /* what the task layers do when a thread's state begins and ends */
  void (*start)(struct tl__thread *th);    /* its root task begins (tl__root_init) */
  void (*exit)(struct tl__thread *th);     /* the thread exits: its root's scope ends (tl__root_fini) */
  void (*drop)(struct tl__thread *th);     /* a forked child has no such thread (tl__root_forget) */
};
void tl__thread_hooks(const struct tl__thread_hooks *hooks); /* once, at load, before any state is made */
void tl__thread_setup(void);               /* once, at load */
struct tl__thread *tl__thread_init(void);  /* the calling thread's state, made on first use */
void tl__thread_atfork(int phase);         /* -1 before fork, 0 parent, 1 child */
void tl__thread_stats(uint64_t *switches, uint64_t *untracked, uint64_t *ended); /* ended: not yet counted */
struct tl__thread *tl__thread_list(void);
void tl__views_drop_all(void);             /* every thread's read view, after a key's deletion */

/* ========================================================================
 * 2. Indexes: what finds a task
 * ======================================================================== */

/* stacktree.c: all with the registry's lock held */
void tl__tree_add(struct tl__task *t);
void tl__tree_del(struct tl__task *t);
struct tl__task *tl__tree_ceil(uintptr_t hi, uint64_t id);
struct tl__task *tl__tree_find(uintptr_t sp);
int tl__tree_changing(void);

/* ctxmap.c */
void tl__map_save(struct tl__task *t, const void *ctx);
void tl__map_del(struct tl__task *t);
struct tl__task *tl__map_get(const void *ctx);
void tl__map_atfork(int phase);

/* registry.c */
struct tl__counts {                        /* changed with the registry's lock held */
  uint64_t made, finished, abandoned;      /* tasks made, and ended each way */
  uint64_t live, peak;                     /* made tasks not ended yet, and their most */
  uint64_t next_id;                        /* the next task's id */
};
struct tl__stats {
  uint64_t created, finished, abandoned, switches, untracked, peak;
};
#define TL__KEEP_MAX 4096                  /* abandoned tasks kept for the leak report */

int tl__registry_lock(void);               /* 0, or EDEADLK (a signal handler on the holder) */
int tl__registry_lock_fast(void);
void tl__registry_unlock(void);
struct tl__counts *tl__registry_counts(void);
struct tl__task *tl__record_alloc(void);   /* a free record (not zeroed), or NULL */
void tl__record_free(struct tl__task *t);
struct tl__task_ext *tl__task_ext(struct tl__task *t); /* made on demand; NULL on ENOMEM */
void tl__live_add(struct tl__task *t);
int tl__live_has(const struct tl__task *t);
void tl__live_del(struct tl__task *t);
int tl__kept_add(struct tl__task *t);      /* an abandoned task kept for the report, if room */
void tl__registry_atfork(int phase);
void tl__task_stats(struct tl__stats *st);
/* Iterates over the live tasks and the abandoned ones kept for the report,
 * with the registry locked: fn must not switch, allocate, or call into the
 * registry. Returns what a non-zero fn returned, else 0. */
int tl__task_foreach(int (*fn)(struct tl__task *t, void *arg), void *arg);

/* ========================================================================
 * 3. Identity: which task runs (tl__task_now and tl__as_* in identity.h)
 * ======================================================================== */

void tl__hint_put(struct tl__thread *th, const void *ctx, struct tl__task *t);
struct tl__task *tl__hint_get(struct tl__thread *th, const void *ctx);
struct tl__task *tl__predict(struct tl__thread *th, const ucontext_t *ucp);
struct tl__task *tl__task_at(struct tl__thread *th, uintptr_t sp); /* whose stack holds sp, or NULL */
struct tl__task *tl__resolve(struct tl__thread *th, uintptr_t sp); /* slow path of tl__task_now */

/* ========================================================================
 * 4. Tools and backtraces
 * ======================================================================== */

/* tools.c: telling valgrind and the sanitizers about tasks and switches */
void tl__tools_setup(void);                /* once, at load: which sanitizer is in the process */
extern int tl__fibers_on;                  /* a sanitizer wants fiber annotations */
void tl__tools_made(struct tl__task *t);   /* a task was made */
void tl__tools_gone(struct tl__task *t);   /* a task ended or was abandoned */
void tl__fibers_switch(struct tl__thread *th, struct tl__task *from, struct tl__task *to);
void tl__fibers_fix(struct tl__thread *th, struct tl__task *wrong, struct tl__task *t); /* t runs, not wrong */
void tl__fibers_jump(struct tl__thread *th, const struct __jmp_buf_tag *env); /* before a longjmp */
void tl__fibers_end(struct tl__thread *th, struct tl__task *next, int exit); /* the task dies */
void tl__fibers_commit(void);              /* from interpose.S: TSan's pending switch, at no C depth */
void tl__tools_quiet(int on);              /* memcheck's error reporting off (1) and on (0) */

/* backtrace.c */
#define TL__BT_MAX 16                      /* frames kept in a backtrace */
struct tl__setbt {                         /* where a task last set a key */
  tl_key_t key;
  uint32_t n;
  uintptr_t pc[TL__BT_MAX];
};
void tl__bt_capture_task(struct tl__task *t); /* at makecontext, when tl__opt.backtrace */
int tl__bt_here(uintptr_t *pc, int max);   /* the calling stack, without the library's frames */
void tl__bt_note_set(struct tl__task *t, tl_key_t key); /* tl_set of a key without destructor */
const struct tl__setbt *tl__bt_set_of(const struct tl__task *t, tl_key_t key); /* or NULL */
int tl__bt_unwind(const void *ctx, uintptr_t lo, uintptr_t hi, uintptr_t *pc, int max,
                  const char **why);       /* a saved context; -1 and *why when it cannot */
void tl__bt_symbol(uintptr_t pc, int ret, char *buf, size_t size); /* "fn+0x1c (module)" */
int tl__safe_read(void *dst, const void *src, size_t n); /* 0, or EFAULT instead of a fault */
void tl__safe_str(char *dst, size_t size, const char *src); /* a string, read the same way */
void tl__bt_atfork_child(void);            /* in a forked child: its locks are free */
void tl__bt_setup(const void *tramp_lo, const void *tramp_hi); /* at load: the trampoline's code */

/* ========================================================================
 * 5. Keys and values
 * ======================================================================== */

/* keys.c. A key's word holds its generation in the low half and, in the
 * high half, what tl_set needs of its attributes. */
#define TL__W_NOT_TASK (1ull << 32)        /* scope other than TL_SCOPE_TASK */
#define TL__W_SCOPED_ONLY (1ull << 33)     /* TL_KEY_SCOPED_ONLY */
#define TL__W_NO_DESTROY (1ull << 34)      /* no destructor */
/* Keys ever deleted. The read view trusts every entry it finds, so it
 * exists only while no key was ever deleted: a deleted key's values stay
 * in tables until their entries are reused, and only the library checks a
 * key's generation. tl_key_delete empties every thread's view after
 * counting the deletion; a fill that ran concurrently sees the count after
 * publishing its span and empties the view again (both sides sequentially
 * consistent: one of them sees the other). */
extern _Atomic uint64_t tl__key_deletions;
extern _Atomic uint32_t tl__inheriting;   /* live keys with inherit != NONE */
int tl__key_create(tl_key_t *key, const tl_key_attr_t *attr);
int tl__key_find(tl_key_t *key, const char *name);
int tl__key_delete(tl_key_t key);
uint64_t tl__key_word(tl_key_t key);       /* 0 when the key is invalid */
int tl__key_valid(tl_key_t key);
int tl__key_info(tl_key_t key, tl_key_attr_t *attr); /* lock-free copy of the attributes */
const char *tl__key_name(tl_key_t key);   /* NULL when unnamed or invalid */
int tl__key_destroy_fn(tl_key_t key, void (**destroy)(void *)); /* its destructor; 0 when deleted */
uint64_t tl__keys_created(void);
void tl__key_atfork(int phase);            /* -1 before fork, 0 parent, 1 child */

/* drops.c: values dropped at a task's end for want of a destructor */
#define TL__NAME_LEN 64                    /* names copied into reports */
#define TL__DROPS_KEPT 64                  /* dropped values recorded in full */
enum { TL__DROP_FINISHED, TL__DROP_ABANDONED, TL__DROP_THREAD_EXIT };
struct tl__drop {                          /* ready is set last: a report skips a record being filled */
  _Atomic int ready;
  uint64_t key, task;
  void *value;
  void (*entry)(void);
  int how;                                 /* TL__DROP_* */
  char key_name[TL__NAME_LEN];
  char task_name[TL__NAME_LEN];
  uint32_t bt_n;
  uintptr_t bt[TL__BT_MAX];
  uint32_t set_n;                          /* where it was set, with backtraces on */
  uintptr_t set[TL__BT_MAX];
};
void tl__drop_note(struct tl__task *t, tl_key_t key, void *value); /* bound, no destructor, at task end */
uint64_t tl__drops_count(void);
const struct tl__drop *tl__drop_get(uint64_t i); /* NULL beyond those kept, or while being filled */

/* vtab.c */
struct tl__ent *tl__vtab_find(struct tl__vtab *vt, tl_key_t key);
int tl__vtab_first(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value);
int tl__vtab_put(struct tl__vtab *_Atomic *holder, tl_key_t key, void *value);
int tl__vtab_remove(struct tl__vtab *_Atomic *holder, tl_key_t key);
void tl__vtab_free(struct tl__vtab *vt);
struct tl__vtab *tl__vtab_copy(struct tl__vtab *vt); /* NULL for the empty table, or on ENOMEM */
void tl__destroy_vals(struct tl__vtab *_Atomic *holder, struct tl__task *t,
                      int (*keep)(tl_key_t key, void *value, void *arg), void *arg);

/* scope.c */
struct tl__scope_ref {
  struct tl__vtab *_Atomic *holder;        /* the table of the key's scope */
  struct tl__lock *lock;                   /* held until tl__scope_leave, or NULL */
};
int tl__scope_enter(const tl_key_attr_t *a, struct tl__task *t, int create, struct tl__scope_ref *ref);
void tl__scope_leave(struct tl__scope_ref *ref);
int tl__disc_end(const struct tl_disc *disc, void *owner);
int tl__defer(int scope, void (*fn)(void *arg), void *arg);
void tl__run_defers(struct tl__defer **list);
void tl__thread_scope_end(struct tl__thread *th); /* thread-scope values and defers */
int tl__loop_close(void);
void tl__scope_atfork(int phase);          /* -1 before fork, 0 parent, 1 child */

/* values.c */
void *tl__get(tl_key_t key);
int tl__lookup(tl_key_t key, void **value);
int tl__set(tl_key_t key, const void *value);
int tl__store(tl_key_t key, const void *value, int remove, int scoped);
int tl__run_init(tl_key_t key, const tl_key_attr_t *a, struct tl__task *t, void *(*make)(void *),
                 void *arg, int bind_null, void **value);
void *tl__singleton(tl_key_t key, void *(*make)(void *arg), void *arg);

/* bind.c */
int tl__bind(tl_key_t key, const void *value, tl_token_t *token);
int tl__unbind(tl_token_t *token);
int tl__inherit(struct tl__task *parent, struct tl__task *child); /* at makecontext */
void tl__task_scope_end(struct tl__thread *th, struct tl__task *t); /* bindings, values, defers */

/* ========================================================================
 * 6. Tasks
 * ======================================================================== */

/* ended.c: finished tasks whose records wait for release */
void tl__ext_destroy(struct tl__task_ext *x);
void tl__ext_destroy_all(struct tl__task_ext **xs, uint32_t n);
void tl__ext_free(struct tl__task *t);
void tl__ended_unmap(struct tl__thread *th, const void *keep);
uint32_t tl__ended_release(struct tl__thread *th, struct tl__task_ext **xs);
struct tl__task *tl__ended_at(struct tl__thread *th, const void *ctx);
struct tl__task *tl__ended_take(struct tl__thread *th, struct tl__task *old, uintptr_t lo, uintptr_t hi);
void tl__ended_flush(struct tl__thread *th);

/* task.c */
struct tl__task *tl__task_make(ucontext_t *ucp, void (*entry)(void)); /* before the real makecontext; NULL: untracked */
void tl__task_begin(struct tl__task *t, uint64_t id); /* from tl__trampoline */
void tl__task_end(struct tl__task *t, uint64_t id, const ucontext_t *const *link_slot); /* from the trampoline */
void tl__destroy_values(struct tl__thread *th, struct tl__task *t); /* the end of a task's scope */

/* root.c */
void tl__root_init(struct tl__thread *th);
void tl__root_fini(struct tl__thread *th); /* thread exit: destroys the root's values */
void tl__root_forget(struct tl__thread *th); /* the root leaves the indexes */
void tl__task_atfork(int phase);           /* -1 before fork, 0 parent, 1 child */
void tl__task_exit(void);                  /* process exit: the roots' values */
void tl__task_exit_free(void);             /* after the exit report: the roots' extensions */

/* ========================================================================
 * 7. Reports
 * ======================================================================== */

/* writer.c: a report's lines */
enum tl__job_kind { TL__JOB_LEAK, TL__JOB_DUMP };
struct tl__job {
  enum tl__job_kind kind;
  int fd;
  int err;                                 /* the first write error */
  pid_t pid;
  int tag;                                 /* lines end with the pid */
  const struct tl__thread *self;           /* the calling thread's state, or NULL */
  const struct tl__task *here;             /* the task running on the calling thread */
  int here_n;
  uintptr_t here_bt[TL__BT_MAX];
  uint64_t tasks, locals;                  /* the summary */
};
int tl__job_begin(struct tl__job *j, enum tl__job_kind kind, int fd, int here); /* 0 or EDEADLK */
void tl__job_run(struct tl__job *j, void (*body)(struct tl__job *j)); /* on a stack of its own if need be */
void tl__job_end(struct tl__job *j);
void tl__job_line(struct tl__job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tl__job_frames(struct tl__job *j, const uintptr_t *pc, int n);
void tl__writer_atfork(int phase);

/* report.c */
void tl__report_body(struct tl__job *j);   /* the leak report or the dump */

/* dump.c */
int tl__dump(int fd);
void tl__dump_setup(void);                 /* at load: the dump signal, when asked for */
void tl__dump_atfork(int phase);

/* exitreport.c */
void tl__report_exit(void);                /* leak report and stats line, at process exit */
void tl__report_quick_exit(void);          /* _exit: the stats line only */

/* ========================================================================
 * 8. The top
 * ======================================================================== */

/* init.c */
void tl__init(void);                       /* idempotent; safe before our constructor */

/* interpose.S and interpose.c */
void tl__trampoline(void);
extern const char tl__trampoline_end[];     /* backtraces stop in [tl__trampoline, here) */
void (*tl__before_make(ucontext_t *ucp, void (*func)(void)))(void); /* interpose.c; the function to start */

/* debug.c: what the gdb extension (scripts/gdb/tasklocal-gdb.py) reads in
 * a core file or a live process. It starts from the anchor tl__debug and
 * reads only what the anchor points to, the fields of the structs the
 * pointers' types name (struct tl__task, tl__task_ext, tl__thread, from
 * the library's DWARF), and the record layouts given here as numbers. The
 * registries are file-static, so each owning file publishes its own part
 * as a constant initialized where its state is defined; nothing runs and
 * nothing is written at run time. Change TL__DEBUG_VERSION (and the
 * extension) when the meaning of any of this changes; a renamed field is
 * caught by the extension as a layout mismatch. */
#define TL__DEBUG_VERSION 1

struct tl__debug_tasks {                   /* registry.c */
  struct tl__task *const *live;            /* the live list (through lnext) */
  struct tl__task *const *kept;            /* abandoned tasks kept for the report */
  const uint64_t *made, *finished, *abandoned, *peak;
};

struct tl__debug_threads {                 /* thread.c */
  struct tl__thread *const *list;          /* live thread states (through next) */
  const uint64_t *dead_switches, *dead_untracked;
};

struct tl__debug_keys {                    /* keys.c */
  const void *chunks;                      /* pointers to 1 << chunk_bits records each */
  const uint32_t *nslots;                  /* slots ever used */
  const uint64_t *created;
  uint32_t chunk_bits, rec_size, rec_gen, rec_attr; /* rec_gen: uint32_t; rec_attr: tl_key_attr_t */
};

struct tl__debug_owners {                  /* scope.c: the owners of custom scopes */
  const void *buckets;                     /* where the bucket array's address is */
  const uint32_t *nbuckets;
  uint32_t disc, owner, vt, next;          /* offsets in an owner's record */
};

extern const struct tl__debug_tasks tl__debug_tasks;
extern const struct tl__debug_threads tl__debug_threads;
extern const struct tl__debug_keys tl__debug_keys;
extern const struct tl__debug_owners tl__debug_owners;

#endif /* TL_INTERNAL_H */
