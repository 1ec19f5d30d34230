/* Per-thread state.
 *
 * Each thread that touches the library gets one struct tl__thread, holding
 * the task that runs on it and its root task (the thread's own stack). The
 * struct is found through the one thread-local pointer tl__tls. It must be
 * possible to make it from a signal handler on a thread that never used the
 * library (tl_get is async-signal-safe), so it comes from mmap'd pages, not
 * from malloc, and the thread's stack range is read from /proc/self/maps
 * with plain system calls rather than with pthread_getattr_np (which
 * allocates and reads the same file through stdio for the main thread).
 *
 * A thread's state begins and ends with its root task, which the task
 * layers above keep: they say what to do through hooks that the top of
 * the library registers once at load (tl__thread_hooks), so that this file
 * names none of their functions. */
#include "internal.h"
#include "thread.h"
#include "lock.h"
#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Exported (but not part of the API) for the inline read path of
 * tasklocal.h; see internal.h. */
__attribute__((visibility("default"))) __thread struct tl__rview tl__view
    __attribute__((tls_model("initial-exec")));

/* The value table of a scope that never bound anything (internal.h): a
 * thread's own scope starts with it, like every task's. */
_Alignas(16) struct tl__ent tl__empty_ent;

static struct {
  struct tl__lock lock;                    /* guards the lists below */
  struct tl__thread *threads;              /* live thread states */
  struct tl__thread *spare;                /* states of exited threads, for reuse */
  pthread_key_t exit_key;                  /* its destructor tells us a thread exits */
  int exit_key_ok;
  uint64_t dead_switches, dead_untracked;  /* counters of exited threads */
  uint64_t dead_made, dead_finished, dead_released;
  struct tl__thread_hooks hooks;           /* from the top of the library, at load */
} threadreg;
/* For debuggers (debug.c). */
const struct tl__debug_threads tl__debug_threads = {&threadreg.threads, &threadreg.dead_switches, &threadreg.dead_untracked, &threadreg.dead_made,
                                                    &threadreg.dead_finished, &threadreg.dead_released};

void tl__thread_hooks(const struct tl__thread_hooks *hooks)
{
  threadreg.hooks = *hooks;
}

/* A hexadecimal number of /proc/self/maps, *p left on what follows it
 * (the leak scan reads the file too: reach/roots.c). */
uintptr_t tl__maps_hex(const char **p)
{
  uintptr_t v = 0;
  for (;;) {
    char c = **p;
    if (c >= '0' && c <= '9')
      v = v * 16 + (uintptr_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v = v * 16 + (uintptr_t)(c - 'a' + 10);
    else
      return v;
    (*p)++;
  }
}

/* The mapping of /proc/self/maps that holds sp. The main thread's stack is
 * the "[stack]" mapping, which the kernel grows on demand: its low end is
 * taken from RLIMIT_STACK. Returns 0 on success. */
static int stack_of(uintptr_t sp, uintptr_t *lo, uintptr_t *hi)
{
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  char buf[4096];
  size_t have = 0;
  int found = -1;
  for (;;) {
    ssize_t n = syscall(SYS_read, fd, buf + have, sizeof buf - 1 - have);
    if (n <= 0)
      break;
    have += (size_t)n;
    buf[have] = '\0';
    char *line = buf, *nl;
    while ((nl = memchr(line, '\n', have - (size_t)(line - buf))) != NULL) {
      *nl = '\0';
      const char *p = line;
      uintptr_t a = tl__maps_hex(&p);
      if (*p == '-') {
        p++;
        uintptr_t b = tl__maps_hex(&p);
        if (sp >= a && sp < b) {
          *lo = a;
          *hi = b;
          if (strstr(p, "[stack]") != NULL) {
            struct rlimit rl;
            uintptr_t max = 8u << 20;
            if (syscall(SYS_getrlimit, RLIMIT_STACK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
              max = rl.rlim_cur;
            if (max < b - a)
              max = b - a;
            *lo = b - max > b ? 0 : b - max;
          }
          found = 0;
          break;
        }
      }
      line = nl + 1;
    }
    if (found == 0)
      break;
    have -= (size_t)(line - buf);
    memmove(buf, line, have);
    if (have == sizeof buf - 1)
      have = 0;                            /* a line longer than the buffer: skip it */
  }
  syscall(SYS_close, fd);
  return found;
}

static void on_thread_exit(void *arg)
{
  struct tl__thread *th = arg;
  th->dying = 1;
  threadreg.hooks.exit(th);
  /* Before the state can go to another thread: the blocks it keeps are
   * then usable by all. */
  tl__small_cache_flush(th);
  if (tl__lock(&threadreg.lock) != 0)
    return;
  threadreg.dead_switches += th->switches;
  threadreg.dead_untracked += th->untracked;
  threadreg.dead_made += th->made_here;
  threadreg.dead_finished += th->finished_here;
  threadreg.dead_released += th->released_here;
  if (th->prevt)
    th->prevt->next = th->next;
  else
    threadreg.threads = th->next;
  if (th->next)
    th->next->prevt = th->prevt;
  th->next = threadreg.spare;
  threadreg.spare = th;
  tl__unlock(&threadreg.lock);
  tl__tls = NULL;
}

static struct tl__thread *thread_alloc(void)
{
  struct tl__thread *th = NULL;
  if (tl__lock(&threadreg.lock) != 0)
    return NULL;
  if (threadreg.spare == NULL) {
    size_t size = 64 * 1024, n = size / sizeof(struct tl__thread);
    char *page = tl__pages(size);
    for (size_t i = 0; page != NULL && i < n; i++) {
      struct tl__thread *t = (struct tl__thread *)(page + i * sizeof(struct tl__thread));
      t->next = threadreg.spare;
      threadreg.spare = t;
    }
  }
  if (threadreg.spare != NULL) {
    th = threadreg.spare;
    threadreg.spare = th->next;
    /* A state made again keeps the free task records of its last thread. */
    struct tl__task *pool = th->pool;
    uint32_t pool_n = th->pool_n;
    memset(th, 0, sizeof *th);
    th->pool = pool;
    th->pool_n = pool_n;
    th->view = &tl__view;                  /* in the list, it may be written by tl_key_delete */
    th->next = threadreg.threads;
    if (threadreg.threads)
      threadreg.threads->prevt = th;
    threadreg.threads = th;
  }
  tl__unlock(&threadreg.lock);
  return th;
}

struct tl__thread *tl__thread_init(void)
{
  struct tl__thread *th = tl__tls;
  if (th == TL__BUSY)
    return NULL;
  if (th != NULL)
    return th;
  /* The library is set up before anything can make a thread's state: its
   * entry points (the interposed functions, the API) make sure of it. */
  if (threadreg.hooks.start == NULL)
    return NULL;
  tl__tls = TL__BUSY;
  th = thread_alloc();
  if (th == NULL) {
    tl__tls = NULL;
    return NULL;
  }
  uintptr_t sp = tl__sp(), lo, hi;
  if (stack_of(sp, &lo, &hi) != 0) {
    /* No /proc: assume a generous window around the current frame. */
    lo = sp > (8u << 20) ? sp - (8u << 20) : 0;
    hi = sp + (64u << 10);
  }
  th->root.lo = lo;
  th->root.hi = hi;
  th->tvt = tl__vt_empty;
  threadreg.hooks.start(th);
  th->current = &th->root;
  if (threadreg.exit_key_ok)
    pthread_setspecific(threadreg.exit_key, th);
  tl__tls = th;
  return th;
}

void tl__thread_setup(void)
{
  threadreg.exit_key_ok = pthread_key_create(&threadreg.exit_key, on_thread_exit) == 0;
}

/* The counts each thread keeps, summed over the live threads and the
 * exited ones. A thread that runs meanwhile may be read in the middle of
 * moving a finished task from one count to another. */
void tl__thread_stats(struct tl__thread_counts *c)
{
  c->switches = threadreg.dead_switches;
  c->untracked = threadreg.dead_untracked;
  c->made = threadreg.dead_made;
  c->finished = threadreg.dead_finished;
  c->released = threadreg.dead_released;
  c->ended = 0;
  if (tl__lock(&threadreg.lock) != 0)
    return;
  for (struct tl__thread *th = threadreg.threads; th; th = th->next) {
    c->switches += __atomic_load_n(&th->switches, __ATOMIC_RELAXED);
    c->untracked += __atomic_load_n(&th->untracked, __ATOMIC_RELAXED);
    c->made += __atomic_load_n(&th->made_here, __ATOMIC_RELAXED);
    c->finished += __atomic_load_n(&th->finished_here, __ATOMIC_RELAXED);
    c->released += __atomic_load_n(&th->released_here, __ATOMIC_RELAXED);
    c->ended += __atomic_load_n(&th->uncounted, __ATOMIC_RELAXED);
  }
  tl__unlock(&threadreg.lock);
}

/* fork: phase -1 before (take the lock so that no list is half changed),
 * 0 in the parent after, 1 in the child after. The child keeps only the
 * calling thread: the states of the others go back to the spare list, and
 * their root tasks are forgotten by the task registry. */
void tl__thread_atfork(int phase)
{
  if (phase < 0) {
    tl__lock(&threadreg.lock);
    return;
  }
  if (phase == 0) {
    tl__unlock(&threadreg.lock);
    return;
  }
  tl__lock_reset(&threadreg.lock);
  struct tl__thread *me = tl__tls, *th = threadreg.threads, *next;
  threadreg.threads = NULL;
  for (; th; th = next) {
    next = th->next;
    if (th == me) {
      th->next = th->prevt = NULL;
      threadreg.threads = th;
    } else {
      threadreg.hooks.drop(th);
      tl__small_cache_flush(th);
      /* The tasks it made and ended stay in the counts, which are the
       * process's history (its switches go, as they always did). */
      threadreg.dead_made += th->made_here;
      threadreg.dead_finished += th->finished_here;
      threadreg.dead_released += th->released_here;
      th->next = threadreg.spare;
      threadreg.spare = th;
    }
  }
}

void tl__views_drop_all(void)
{
  if (tl__lock(&threadreg.lock) != 0) {
    tl__view_drop();                       /* called with the lock held: only this thread's */
    return;
  }
  for (struct tl__thread *th = threadreg.threads; th != NULL; th = th->next)
    __atomic_store_n(&th->view->span, 0, __ATOMIC_SEQ_CST);
  tl__unlock(&threadreg.lock);
}

struct tl__thread *tl__thread_list(void)
{
  return threadreg.threads;
}
