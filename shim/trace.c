/* The timeline of task switches (TASKLOCAL_TRACE), recorded.
 *
 * Each thread that the library sees gets a ring of its own at thread
 * start, mapped with mmap (MAP_NORESERVE: only the pages written become
 * memory); a thread whose ring cannot be mapped goes untraced, and the
 * first such failure says so in one line. The hooks in the switch paths,
 * and the observer of the task module's news (a task made, started,
 * finished, abandoned, released: task/events.h), store one 32-byte event
 * each: a timestamp (traceclock.c), two task ids and a type. No lock, no allocation, no
 * system call: the ring belongs to its thread, which alone writes it. When
 * the ring is full the oldest events are overwritten; the file tells how
 * many were dropped. A ring outlives its thread (its events are part of
 * the timeline) until TRACE_KEEP_EXITED rings of exited threads are kept;
 * a new thread then reuses the oldest, whose events count as dropped.
 *
 * An event's slot holds its index (seq) once it is complete, and ~0 while
 * it is written, so that a writer on another thread (exit, tl_trace_flush)
 * reads only whole events: it checks seq before and after copying one. A
 * signal handler that records an event on the same thread in the two
 * instructions between the load and the store of head takes the same slot,
 * and one of the two events is lost; nothing is ever torn.
 *
 * The file is written from the rings in the Reports layer (tracefile.c
 * says when), which reads what it needs of the recording through the
 * accessors below (tl__trace_rings...) and holds the recording's lock while
 * it writes.
 */
#include "internal.h"
#include "heapreal.h"
#include "trace.h"
#include "traceclock.h"
#include "message.h"
#include "options.h"
#include "lock.h"
#include "task/events.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TRACE_KEEP_EXITED 256              /* rings of exited threads kept for the file */

int tl__trace_on;

static struct {
  struct tl__lock lock;                    /* one writer at a time; recycling rings */
  struct tl__ring *_Atomic rings;
  int per_pid;                             /* the path has %p: each process its own file */
  int pid;                                 /* the process the rings belong to */
  _Atomic uint64_t exits;                  /* threads exited, numbering their rings */
  _Atomic uint32_t exited;                 /* rings of exited threads kept */
  _Atomic uint64_t recycled;               /* events lost with the rings reused */
  _Atomic uint32_t untraced;               /* threads whose ring could not be made */
  _Atomic int warned_ring;
} tracing;

void tl__trace_setup(void)
{
  if (tl__opt.trace == NULL)
    return;
  for (const char *p = tl__opt.trace; *p; p++) {
    if (p[0] == '%' && p[1] == 'p')
      tracing.per_pid = 1;
    if (p[0] == '%' && p[1] != '\0')
      p++;
  }
  tracing.pid = (int)getpid();
  tl__tclock_setup();
  tl__trace_on = 1;
}

static inline void put(struct tl__ring *r, unsigned type, uint64_t a, uint64_t b, unsigned aux)
{
  uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  atomic_store_explicit(&r->head, h + 1, memory_order_relaxed);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  struct tl__tev *e = &r->ev[h & r->mask];
  atomic_store_explicit(&e->seq, UINT32_MAX, memory_order_relaxed);
  /* The fields below must not be seen before the slot is marked
   * (tl__store_order, arch.h: on x86 only the compiler must be stopped).
   * The fields are relaxed atomics for the concurrent reader. */
  tl__store_order();
  __atomic_store_n(&e->ts, tl__tclock_now(), __ATOMIC_RELAXED);
  __atomic_store_n(&e->a, a, __ATOMIC_RELAXED);
  __atomic_store_n(&e->b, b, __ATOMIC_RELAXED);
  __atomic_store_n(&e->type, (uint16_t)type, __ATOMIC_RELAXED);
  __atomic_store_n(&e->aux, (uint16_t)aux, __ATOMIC_RELAXED);
  atomic_store_explicit(&e->seq, (uint32_t)h, memory_order_release);
}

static void ring_start(struct tl__ring *r, struct tl__thread *th)
{
  r->tid = (int)syscall(SYS_gettid);
  r->name[0] = '\0';
  put(r, TL__TEV_THREAD, th->root.id, th->current != NULL ? th->current->id : th->root.id, 0);
}

/* The oldest ring of an exited thread, taken back for a new thread once
 * TRACE_KEEP_EXITED are kept; NULL if there is none or a writer holds
 * the lock (the new thread then maps a ring of its own). */
static struct tl__ring *ring_recycle(void)
{
  if (atomic_load_explicit(&tracing.exited, memory_order_relaxed) < TRACE_KEEP_EXITED)
    return NULL;
  uintptr_t expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&tracing.lock.owner, &expected, tl__thread_token(),
                                               memory_order_acquire, memory_order_relaxed))
    return NULL;
  struct tl__ring *old = NULL;
  for (struct tl__ring *r = atomic_load_explicit(&tracing.rings, memory_order_acquire); r != NULL; r = r->next)
    if (r->exit_seq != 0 && (old == NULL || r->exit_seq < old->exit_seq))
      old = r;
  if (old != NULL) {
    uint64_t h = atomic_load_explicit(&old->head, memory_order_relaxed);
    atomic_fetch_add_explicit(&tracing.recycled, h < old->mask + 1 ? h : old->mask + 1, memory_order_relaxed);
    atomic_store_explicit(&old->head, 0, memory_order_relaxed);
    old->exit_seq = 0;
    atomic_fetch_sub_explicit(&tracing.exited, 1, memory_order_relaxed);
  }
  tl__unlock(&tracing.lock);
  return old;
}

void tl__trace_thread(struct tl__thread *th)
{
  struct tl__ring *r = ring_recycle();
  if (r == NULL) {
    size_t page = 4096, cap = tl__opt.trace_size;
    size_t bytes = (sizeof(struct tl__ring) + cap * sizeof(struct tl__tev) + page - 1) & ~(page - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      atomic_fetch_add_explicit(&tracing.untraced, 1, memory_order_relaxed);
      if (!atomic_exchange_explicit(&tracing.warned_ring, 1, memory_order_relaxed))
        tl__message("TASKLOCAL_TRACE: cannot map a ring of %zu bytes for thread %d: %s; it is not traced "
                    "(a smaller TASKLOCAL_TRACE_SIZE needs less)",
                    bytes, (int)syscall(SYS_gettid), strerrordesc_np(errno));
      return;
    }
    r = p;
    r->mask = cap - 1;
    r->bytes = bytes;
    r->next = atomic_load_explicit(&tracing.rings, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&tracing.rings, &r->next, r, memory_order_release,
                                                  memory_order_relaxed))
      ;
  }
  ring_start(r, th);
  th->ring = r;
}

void tl__trace_thread_exit(struct tl__thread *th)
{
  struct tl__ring *r = th->ring;
  if (r == NULL)
    return;
  put(r, TL__TEV_EXIT, th->current != NULL ? th->current->id : 0, 0, 0);
  prctl(PR_GET_NAME, r->name, 0, 0, 0);
  th->ring = NULL;
  r->exit_seq = atomic_fetch_add_explicit(&tracing.exits, 1, memory_order_relaxed) + 1;
  atomic_fetch_add_explicit(&tracing.exited, 1, memory_order_relaxed);
}

void tl__trace_event(struct tl__thread *th, unsigned type, uint64_t a, uint64_t b)
{
  struct tl__ring *r = th->ring;
  if (r != NULL)
    put(r, type, a, b, 0);
}

static void trace_make(struct tl__thread *th, const struct tl__task *t)
{
  struct tl__ring *r = th->ring;
  if (r == NULL)
    return;
  put(r, TL__TEV_MAKE, t->id, t->parent, 0);
  put(r, TL__TEV_ENTRY, t->id, (uint64_t)(uintptr_t)t->entry, 0);
}

/* The task module's news (task/events.h), as the timeline records it, on
 * the thread where it happens. */
static void trace_made(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__LIKELY(tl__trace_on))
    trace_make(th, ev->t);
}

static void trace_started(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__LIKELY(tl__trace_on))
    tl__trace_event(th, TL__TEV_START, ev->id, ev->other != NULL ? ev->other->id : 0);
}

static void trace_abandoned(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__LIKELY(tl__trace_on))
    tl__trace_event(th, TL__TEV_ABANDON, ev->t->id, 0);
}

static void trace_released(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__LIKELY(tl__trace_on))
    tl__trace_event(th, TL__TEV_RELEASE, ev->t->id, 0);
}

/* A task whose record had ended runs untracked: its end is a switch. */
static void trace_finished(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__LIKELY(tl__trace_on))
    tl__trace_event(th, ev->t != NULL ? TL__TEV_FINISH : TL__TEV_SWITCH, ev->id, ev->other->id);
}

void tl__trace_observe_tasks(void)
{
#ifdef TL_NO_TRACE
  return;                                  /* the comparison build has no hooks */
#endif
  if (!tl__trace_on)
    return;
  tl__task_observe(TL__NEWS_MADE, trace_made);
  tl__task_observe(TL__NEWS_STARTED, trace_started);
  tl__task_observe(TL__NEWS_ABANDONED, trace_abandoned);
  tl__task_observe(TL__NEWS_RELEASED, trace_released);
  tl__task_observe(TL__NEWS_FINISHED, trace_finished);
}

/* The name goes into the ring of the thread that sets it, 8 bytes an
 * event: the task record (and its copy of the name) may be gone when the
 * file is written. */
void tl__trace_name(const struct tl__task *t, const char *name)
{
  struct tl__thread *th = tl__tls;
  if ((uintptr_t)th <= 1 || th->ring == NULL)
    return;
  size_t len = name != NULL ? strnlen(name, TL__TRACE_NAME_MAX) : 0;
  for (size_t part = 0; part == 0 || part * 8 < len; part++) {
    uint64_t chunk = 0;
    size_t n = len - part * 8 < 8 ? len - part * 8 : 8;
    memcpy(&chunk, name + part * 8, n);
    put(th->ring, TL__TEV_NAME, t->id, chunk, (unsigned)(part | len << 4));
  }
}

struct tl__ring *tl__trace_rings(void)
{
  return atomic_load_explicit(&tracing.rings, memory_order_acquire);
}

int tl__trace_lock(void)
{
  return tl__lock(&tracing.lock);
}

void tl__trace_unlock(void)
{
  tl__unlock(&tracing.lock);
}

int tl__trace_pid(void)
{
  return tracing.pid;
}

uint64_t tl__trace_recycled(void)
{
  return atomic_load_explicit(&tracing.recycled, memory_order_relaxed);
}

uint32_t tl__trace_untraced(void)
{
  return atomic_load_explicit(&tracing.untraced, memory_order_relaxed);
}

/* ------------------------------------------------------------------------
 * fork
 * ------------------------------------------------------------------------ */

/* The child keeps the thread that forked. Its events so far are the
 * parent's: the child's file starts afresh, with that thread's ring
 * emptied and the other rings (threads the child does not have) unmapped.
 * Without %p in the path the child would overwrite its parent's file: it
 * traces nothing. */
void tl__trace_atfork_child(void)
{
  if (!tl__trace_on)
    return;
  tl__lock_reset(&tracing.lock);
  struct tl__thread *me = tl__tls;
  struct tl__ring *mine = (uintptr_t)me > 1 && tracing.per_pid ? me->ring : NULL;
  struct tl__ring *r = atomic_load_explicit(&tracing.rings, memory_order_relaxed), *next;
  for (; r != NULL; r = next) {
    next = r->next;
    if (r != mine)
      tl__unmap(r, r->bytes);
  }
  if ((uintptr_t)me > 1 && mine == NULL)
    me->ring = NULL;
  atomic_store_explicit(&tracing.rings, mine, memory_order_relaxed);
  atomic_store_explicit(&tracing.exited, 0, memory_order_relaxed);
  atomic_store_explicit(&tracing.recycled, 0, memory_order_relaxed);
  atomic_store_explicit(&tracing.untraced, 0, memory_order_relaxed);
  tracing.pid = (int)getpid();
  if (!tracing.per_pid) {
    tl__trace_on = 0;
    return;
  }
  if (mine != NULL) {
    mine->next = NULL;
    atomic_store_explicit(&mine->head, 0, memory_order_relaxed);
    ring_start(mine, me);
  }
}
