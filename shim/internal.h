/* Private interfaces shared by the files of shim/. Nothing here is exported:
 * the library is built with -fvisibility=hidden and a version script, and
 * every internal name starts with tl__ so that it can never collide with
 * the host program's symbols.
 *
 * The library is built in layers, each file calling only the files listed
 * before it (its own layer's earlier files, and the layers below):
 *
 *   1. Base      message.c   the one output path (tl__message, tl__vline)
 *                optvalue.c  an option's value by its kind: parsed, printed
 *                options.c   the options' table, read once at load
 *                real.c      the real ucontext functions behind ours
 *                lock.c      locks, and tl__tls, the one thread-local pointer
 *                ownstack.c  a stack of the library's own, for small callers
 *                heapblocks.c the heap's live blocks, for the leak scan
 *                heapreal.c  the real allocation functions behind ours
 *                alloc.c     every allocation, and the fault injection of tests
 *                thread.c    per-thread state, made on first use
 *                task/events.c the observers told of a task's life
 *                traceclock.c the trace's clock: the TSC or CLOCK_MONOTONIC
 *                trace.c     the timeline (TASKLOCAL_TRACE): a ring per thread
 *   2. Indexes   task/stacktree.c which task's stack holds a stack pointer
 *                task/ctxmap.c    which task saved itself in a ucontext_t; the
 *                                 threads' hints in front of it
 *                task/registry.c  task records, the live list, ids and counts;
 *                                 finished tasks' records waiting for release
 *   3. Identity  task/identity.c  which task runs: the switch's prediction, repair
 *   4. Tools     valgrind.c  valgrind told of each task's stack
 *                tools.c     the sanitizers' fiber annotations; a task's tools
 *                backtrace.c creation backtraces, unwinding, symbols
 *   5. Values    keys.c      keys: records, names, generations
 *                drops.c     values dropped for want of a destructor
 *                vtab.c      value tables and destructor rounds
 *                scope.c     where values live: thread, custom owners; defers
 *                values.c    get, lookup, set, unset; initializers, singletons
 *                bind.c      scoped bindings, inheritance, a task scope's end
 *                tlsym.c     a __thread variable found by name (libelf)
 *                pkeys.c     the pthread keys made per task: noted, saved, destroyed
 *                tasktls.c   the program's thread-local state swapped at switches
 *   6. Tasks     task/life.c a task's life once made: start, end, release, abandon
 *                task/make.c makecontext's side: every way a task is made
 *                task/release.c tasks whose stacks the program gave back
 *                root.c      root tasks; fork; the values at process exit
 *   7. Reports   writer.c    a report's lines, on a stack of its own if need be
 *                symbolize.c names, source files and lines of addresses (libdw)
 *                suppress.c  TASKLOCAL_SUPPRESSIONS: rules that keep tasks out of reports
 *                reach/scan.c the scan's state, memory and flood fill
 *                reach/roots.c the scan's roots, and the holes that are not roots
 *                reach/classify.c one scan: tasks copied, keys, roots, the fill
 *                reach.c     leaked or parked: the reachability scan of a report
 *                report/scratch.c a report's one mapping: records, depot, sort
 *                report/gather.c what a report shows of every task, copied
 *                report/group.c alike tasks grouped, biggest first
 *                report/text.c a report as text
 *                report/json.c a report as JSON
 *                report.c    what a leak report or a dump says
 *                traceread.c the trace's rings read back: events, tasks, symbols
 *                traceout.c  the trace file's text: its buffer, JSON strings
 *                tracejson.c the timeline in Chrome's trace-event JSON
 *                tracefile.c the trace file: its path, when it is written
 *                dump.c      tl_dump and the dump signal
 *                exitreport.c the reports at exit and at _exit
 *   8. Top       init.c      set-up at load; thread, fork and exit events
 *                arch/<arch>.S, interpose.c  the interposed functions
 *                keycalls.c  the interposed pthread_key_create and pthread_key_delete
 *                heapwatch.c the interposed allocation functions
 *                debug.c     the anchor of the gdb extension
 *                api.c       the public API and its table for TL_DYNAMIC
 *
 * What a lower layer must know of an event seen above it (a thread begins
 * or ends, the process forks or exits) is dispatched from init.c, or
 * through the hooks it registers (tl__thread_hooks). A task's life (made,
 * started, finished, abandoned, released, gone) is announced by the task
 * module through the table of observers in task/events.c, which the
 * layers that follow tasks (trace.c, tasktls.c, tools.c, bind.c) fill
 * from the functions init.c calls: the task module names none of them.
 *
 * The task module (shim/task/, with its interface in shim/task.h) owns a
 * task's record: task/make.c and task/life.c make and end tasks, and its
 * indexes (the stack tree, the context map with its hints, the registry
 * with the ended lists, the identity of the running task) are its parts; only the
 * registry changes the counts. Files outside it include the index headers
 * they read (task/identity.h for the running task, task/registry.h for a
 * task's extension and the walk of live tasks).
 *
 * The reachability scan (shim/reach/) and the report (shim/report/) are
 * split the same way: reach.c and report.c are their entry points, and
 * the files under each share a private header (reach/scan.h,
 * report/scratch.h) for the state of one scan or one report.
 *
 * This file holds the types that every layer shares. Each file's interface
 * is in the header of its name (keys.h for keys.c), and a file includes
 * the headers of the files it calls, all of them listed before it above:
 * its includes are its dependencies. */
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

/* The registers and instructions that differ between architectures. */
#include "arch.h"

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

/* ------------------------------------------------------------------------
 * Tasks and threads
 * ------------------------------------------------------------------------ */

enum tl__state {
  TL__NEW = 0,                             /* made, never started */
  TL__RUNNING = 1,                         /* running on some thread */
  TL__SUSPENDED = 2,                       /* saved by a switch, or left by setcontext */
  TL__FINISHED = 3,                        /* its function returned */
  TL__ABANDONED = 4,                       /* its ucontext_t was made again */
  TL__RELEASED = 5                         /* its stack was given back or taken: ending now */
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
 * keys hold their slot shifted left by one (keys.c): key & tag is then the
 * offset of the key's first entry in units of 8 bytes, which an x86
 * address scales for free, and the read path needs no shift.
 *
 * The whole table is replaced (never resized in place) so that a signal
 * handler reading it always sees a complete one. Tables of up to
 * TL__VT_SMALL entries may fill up completely and come from the
 * small-block pools of alloc.c, which add nothing to a block: 4 values
 * cost their 64 bytes (doc/performance.md: 16 per value). Larger ones stay at most
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

/* The slot of a key (keys.c): a key is generation << 32 | slot << 1. */
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
  uint8_t in_tree;                         /* TL__TREE_*: entered in the stack-range tree */
  uint32_t ran_on;                         /* for debuggers: the low half of its last thread's tl__thread address */
  struct tl__task *lnext;                  /* the list of live tasks, for reports and fork */
  struct tl__task *lprev;
  struct tl__task_ext *x;                  /* rarely used parts, made on demand; NULL at first */
};

/* Fields of a record that the context map's readers load while a writer
 * may store them (ctxmap.c): plain fields accessed with relaxed atomic
 * operations, so that the races the map's sequence lock tolerates are well
 * defined (and quiet under TSan). */
#define TL__LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define TL__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

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
  void *tls;                               /* its saved thread-local state (tasktls.c) */
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

/* in_tree: in the stack-range tree, and whether a newer task of the same
 * stack is (stacktree.c keeps it, with the registry's lock held). */
#define TL__TREE_IN 0x1u
#define TL__TREE_SHADOWED 0x2u
/* A newer task was made on exactly its stack while it was suspended, and
 * it has not run since (ran_on was cleared then; a switch into it sets it
 * again): a pool gave its stack to the next task, or a stack-copying
 * library shares one stack among its coroutines (task/release.c). */
#define TL__TREE_DISPLACED 0x4u

/* t is suspended, displaced from its stack, and has not run since. */
static inline int tl__displaced(const struct tl__task *t)
{
  return atomic_load_explicit(&t->state, memory_order_relaxed) == TL__SUSPENDED &&
         (TL__LOAD(t->in_tree) & TL__TREE_DISPLACED) && TL__LOAD(t->ran_on) == 0;
}

#define TL__F_ROOT 0x1u                    /* a thread's own stack */
#define TL__F_STARTED 0x8u                 /* its trampoline ran */
#define TL__F_MADE 0x10u                   /* ctx is where it was made, not where a switch saved it */
#define TL__F_VG 0x20u                     /* its stack is registered with valgrind (tools.c) */
#define TL__F_LSAN 0x40u                   /* its stack is a LeakSanitizer root region (tools.c) */

/* A finished task's record is released in a batch with others, when its
 * thread next takes the registry's lock anyway (a makecontext), instead of
 * taking the lock once more at every task's end (registry.c, tl__ended_release). */
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
  uint64_t binds;                          /* bindings made here (vtab.c, tl__destroy_vals) */
  /* What a task life of the common loop (task/make.c, remake) changes, kept
   * per thread so that it writes nothing other threads write (doc/performance.md): */
  uint64_t made_here, finished_here;       /* tasks made and finished in that loop, counted here */
  uint64_t released_here;                  /* and never-started tasks whose stacks theirs took */
  uint64_t id_next, id_end;                /* this thread's block of task ids (registry.c) */
  struct tl__task *pool;                   /* free task records of this thread (registry.c) */
  uint32_t pool_n;                         /* how many */
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
  struct tl__ring *ring;                   /* trace.c: this thread's events, or NULL */
  void *tasktls;                           /* tasktls.c: where this thread's copies are */
  struct tl__task root;                    /* this thread's own stack */
} __attribute__((aligned(64)));            /* threads' states share no cache line */

_Static_assert(sizeof(struct tl__task) <= 112, "a task record must stay small (doc/performance.md: 128 bytes per task)");

_Static_assert(sizeof(struct tl__ent) == 16 && offsetof(struct tl__ent, value) == 8,
               "the inline read path of tasklocal.h reads entries as {key, value}");

/* tl__tls holds TL__BUSY while the thread's state is being made: a signal
 * handler that interrupts the set-up sees no state rather than half of it. */
#define TL__BUSY ((struct tl__thread *)1)

/* The stack pointer, without making the caller set up a frame. */
static inline uintptr_t tl__sp(void)
{
  uintptr_t sp;
  __asm__(TL__SP_ASM : "=r"(sp));
  return sp;
}

static inline int tl__in_stack(const struct tl__task *t, uintptr_t sp)
{
  return sp - t->lo < t->hi - t->lo;
}

/* arch/<arch>.S: the labels of the assembly that C code needs */
void tl__trampoline(void);                 /* where every made context starts */
extern const char tl__trampoline_end[];     /* backtraces stop in [tl__trampoline, here) */

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
#define TL__DEBUG_VERSION 4

struct tl__debug_tasks {                   /* registry.c */
  struct tl__task *const *live;            /* the live list (through lnext) */
  struct tl__task *const *kept;            /* abandoned tasks kept for the report */
  const uint64_t *made, *finished, *abandoned, *peak;
  const uint64_t *released;                /* since version 3 */
};

struct tl__debug_threads {                 /* thread.c */
  struct tl__thread *const *list;          /* live thread states (through next) */
  const uint64_t *dead_switches, *dead_untracked, *dead_made, *dead_finished, *dead_released; /* dead_released: version 3, was dead_abandoned */
};

struct tl__debug_keys {                    /* keys.c */
  const void *chunks;                      /* pointers to 1 << chunk_bits records each */
  const uint32_t *nslots;                  /* slots ever used */
  const uint64_t *created;
  uint32_t chunk_bits, rec_size, rec_gen, rec_attr; /* rec_gen: uint32_t; rec_attr: tl_key_attr_t */
};

struct tl__debug_scan {                    /* reach.c: what the last leak scan concluded; since version 4 */
  const uint64_t *scans;                   /* scans made so far (reports with leak reports on) */
  const uint64_t *n;                       /* tasks in the last scan's table */
  const void *const *seen;                 /* its table: n records of {uint64_t id; uint64_t kind},
                                            * kind 0 parked, 1 leaked, 2 suppressed */
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
