/* The top of the library: its set-up at load, and the events of a thread's
 * and the process's life, dispatched to the layers below in the order
 * they need (internal.h lists the layers).
 *
 * Another library's constructor may call makecontext, or the API, before
 * our constructor runs, so every entry point (the interposed functions in
 * interpose.c, the API in api.c) calls tl__init() first; tl__init() is
 * cheap once done and safe to call early. Nothing below this file makes a
 * thread's state before tl__init has run: the layers that begin and end a
 * thread's root task are told of it through the hooks registered here.
 */
#include "internal.h"
#include "init.h"
#include "options.h"
#include "real.h"
#include "lock.h"
#include "alloc.h"
#include "thread.h"
#include "tools.h"
#include "backtrace.h"
#include "keys.h"
#include "scope.h"
#include "root.h"
#include "writer.h"
#include "heapblocks.h"
#include "heapbind.h"
#include "task/release.h"
#include "suppress.h"
#include "reach.h"
#include "ownstack.h"
#include "dump.h"
#include "exitreport.h"
#include "trace.h"
#include "tracefile.h"
#include "tasktls.h"
#include "bind.h"

#include <pthread.h>

static struct {
  _Atomic int state;                       /* 0 not begun, 1 in progress, 2 done */
  struct tl__lock lock;
} initstate;

/* fork: every lock of the library is taken before (so that no structure
 * is half changed in the child), released in the parent and reset in the
 * child, where the threads that could hold them do not exist (the three
 * phases of musl's atfork hook). Keys, then custom owners, then tasks,
 * then the small-block pools, which are taken while any other is held,
 * then the heap registry's stripes, which any allocation takes.
 * The report writer only notes that the process forked. */
static void atfork_prepare(void)
{
  tl__key_atfork(-1);
  tl__scope_atfork(-1);
  tl__task_atfork(-1);
  tl__alloc_atfork(-1);
  tl__heapblocks_atfork(-1);
}

static void atfork_parent(void)
{
  tl__heapblocks_atfork(0);
  tl__alloc_atfork(0);
  tl__task_atfork(0);
  tl__scope_atfork(0);
  tl__key_atfork(0);
  tl__writer_atfork(0);
}

/* In the child, the backtraces' locks and the dump thread too: the child
 * has neither the threads that held them nor the parent's dump thread. */
static void atfork_child(void)
{
  tl__heapblocks_atfork(1);
  tl__alloc_atfork(1);
  tl__task_atfork(1);
  tl__scope_atfork(1);
  tl__key_atfork(1);
  tl__writer_atfork(1);
  tl__own_stack_atfork(1);
  tl__bt_atfork_child();
  tl__dump_atfork(1);
  tl__trace_atfork_child();
  tl__trace_file_atfork_child();
  tl__tasktls_atfork_child();
}

/* A thread's state begins with its root task and ends with it; its trace
 * ring, when tracing, is made after the root and outlives it (trace.c). */
static void thread_start(struct tl__thread *th)
{
  tl__root_init(th);
  TL__TRACE(tl__trace_thread(th));
}

static void thread_exit(struct tl__thread *th)
{
  tl__root_fini(th);
  tl__tasktls_thread_exit(th);
  TL__TRACE(tl__trace_thread_exit(th));
}

static const struct tl__thread_hooks thread_hooks = {
  .start = thread_start,
  .exit = thread_exit,
  .drop = tl__root_forget,
};

void tl__init(void)
{
  if (TL__LIKELY(atomic_load_explicit(&initstate.state, memory_order_acquire) == 2))
    return;
  if (tl__lock(&initstate.lock) != 0)
    return;
  if (atomic_load_explicit(&initstate.state, memory_order_relaxed) == 0) {
    atomic_store_explicit(&initstate.state, 1, memory_order_relaxed);
    tl__options_read();
    tl__tasktls_setup();
    tl__real_lookup();
    /* After the real functions are known: a failing dlsym allocates (its
     * error message), and a preloaded allocator may use ucontext. */
    tl__alloc_setup();
    tl__heap_bind_direct();
    tl__tools_setup();
    tl__reach_setup();
    tl__suppress_read();
    tl__reach_lsan_setup();
    tl__bt_setup((const void *)tl__trampoline, tl__trampoline_end);
    tl__trace_setup();
    /* The task module's observers, before the first task (a thread's
     * root), in the order each step is told to them: the values first (an
     * abandoned task's are copied for the leak report before anything can
     * run), then the trace, so that it records an end before what the
     * others' destructors do about it. */
    tl__values_observe_tasks();
    tl__trace_observe_tasks();
    tl__tasktls_observe_tasks();
    tl__tools_observe_tasks();
    tl__thread_hooks(&thread_hooks);
    tl__thread_setup();
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    tl__dump_setup();
    atomic_store_explicit(&initstate.state, 2, memory_order_release);
  }
  tl__unlock(&initstate.lock);
}

__attribute__((constructor)) static void tl__constructor(void)
{
  tl__init();
  tl__self();
}

/* Process exit: the trace is written first (the exit report may end the
 * process, with TASKLOCAL_LEAKS=error), then the tasks that a pool ended
 * by giving their stacks to new ones are released (task/release.c), then
 * the exit report's scan runs
 * (the roots' values still count as references), then the roots' values
 * are destroyed, then the exit report is written, then what the report
 * still needed is freed. */
__attribute__((destructor)) static void tl__destructor(void)
{
  tl__trace_exit();
  tl__release_displaced();
  tl__reach_exit_early();
  tl__task_exit();
  tl__report_exit();
  tl__task_exit_free();
}
