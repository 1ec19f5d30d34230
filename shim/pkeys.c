/* pthread keys of unmodified code, made per task.
 *
 * pthread_key_create is interposed (keycalls.c) to note, when
 * TASKLOCAL_TASK_LOCAL names pthread-keys:OBJECT (or all), the keys that
 * code in that object makes, with their destructors. Keys made before the
 * library has read its options (by other libraries' constructors, or by a
 * sanitizer's runtime before the C library has an environment) wait, with
 * their makers, to be judged when it has (tl__pkeys_ready).
 * pthread_getspecific and pthread_setspecific are
 * not interposed: the thread's slots of those keys hold the running task's
 * values, because every switch the shim sees saves the leaving task's
 * values and puts the arriving task's in place (tasktls.c). A read costs
 * what glibc's costs, per task or not. When a task ends, its values go to
 * the destructors as pthread hands a thread's to them at its exit: each
 * non-NULL value is cleared, then passed to its key's destructor, in up to
 * four rounds while destructors set values again
 * (PTHREAD_DESTRUCTOR_ITERATIONS).
 *
 * A noted key keeps its position for the life of the process (a deleted
 * one stays dead), so a task's saved values are an array indexed by
 * position that only ever grows, and readers need no lock: a position is
 * written before the count that publishes it.
 */
#include "internal.h"
#include "pkeys.h"
#include "tlsym.h"
#include "lock.h"
#include "message.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#define PATTERNS_MAX 8
#define PENDING_MAX 32

/* A key made before the options were read, judged once they are. */
struct pending {
  pthread_key_t key;
  void (*destroy)(void *);
  const void *caller;                      /* NULL once deleted */
};

struct pkey {
  pthread_key_t key;
  void (*destroy)(void *);
  _Atomic int live;                        /* 0 once deleted */
};

static struct {
  struct tl__lock lock;                    /* guards the adding of a key, and the waiting ones */
  struct pkey keys[TL__PKEYS_MAX];
  _Atomic uint32_t n;
  int all;
  const char *pattern[PATTERNS_MAX];
  uint32_t npattern;
  int warned;
  _Atomic int ready;                       /* the option was read: keys are judged as they come */
  struct pending pending[PENDING_MAX];
  uint32_t npending;
} pkeyreg;

int tl__pkeys_on;
int tl__pkeys_watch = 1;

void tl__pkeys_want(const char *object)
{
  if (strcmp(object, "all") == 0)
    pkeyreg.all = 1;
  else if (pkeyreg.npattern < PATTERNS_MAX)
    pkeyreg.pattern[pkeyreg.npattern++] = object;
  else {
    tl__message("TASKLOCAL_TASK_LOCAL: more than %d pthread-keys objects; pthread-keys:%s ignored", PATTERNS_MAX,
                object);
    return;
  }
  tl__pkeys_on = 1;
}

/* The objects that "all" leaves out: the C library, and the sanitizers'
 * runtimes, whose keys keep their own per-thread records. */
static int system_object(const char *path)
{
  static const char *const names[] = {"libc.so", "libasan", "libtsan", "liblsan", "libubsan", "libhwasan"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (tl__object_matches(path, names[i]))
      return 1;
  const char *base = strrchr(path, '/');
  return strncmp(base != NULL ? base + 1 : path, "libclang_rt.", 12) == 0;
}

/* Whether the code at caller, which made a key, is in an object named. The
 * library's own keys (thread.c's) never are. */
static int wanted(const void *caller)
{
  Dl_info info, self;
  if (!dladdr(caller, &info) || !dladdr((const void *)wanted, &self) || info.dli_fbase == self.dli_fbase ||
      info.dli_fname == NULL)
    return 0;
  if (pkeyreg.all)
    return !system_object(info.dli_fname);
  for (uint32_t i = 0; i < pkeyreg.npattern; i++)
    if (tl__object_matches(info.dli_fname, pkeyreg.pattern[i]))
      return 1;
  return 0;
}

/* With pkeyreg.lock held: key becomes per task. */
static void add(pthread_key_t key, void (*destroy)(void *))
{
  uint32_t n = atomic_load_explicit(&pkeyreg.n, memory_order_relaxed);
  if (n < TL__PKEYS_MAX) {
    pkeyreg.keys[n].key = key;
    pkeyreg.keys[n].destroy = destroy;
    atomic_store_explicit(&pkeyreg.keys[n].live, 1, memory_order_relaxed);
    atomic_store_explicit(&pkeyreg.n, n + 1, memory_order_release);
  } else if (!pkeyreg.warned) {
    pkeyreg.warned = 1;
    tl__message("TASKLOCAL_TASK_LOCAL: more than %d pthread keys made per task; later ones stay per thread",
                TL__PKEYS_MAX);
  }
}

static void add_locked(pthread_key_t key, void (*destroy)(void *))
{
  if (tl__lock(&pkeyreg.lock) != 0)
    return;
  add(key, destroy);
  tl__unlock(&pkeyreg.lock);
}

/* The maker is judged (dladdr, which takes the dynamic linker's lock)
 * without pkeyreg.lock held: a thread inside dlopen holds that lock when a
 * constructor makes a key. */
void tl__pkeys_note(pthread_key_t key, void (*destroy)(void *), const void *caller)
{
  if (!atomic_load_explicit(&pkeyreg.ready, memory_order_acquire)) {
    if (tl__lock(&pkeyreg.lock) != 0)
      return;
    int ready = atomic_load_explicit(&pkeyreg.ready, memory_order_relaxed);
    if (!ready && pkeyreg.npending < PENDING_MAX)
      pkeyreg.pending[pkeyreg.npending++] = (struct pending){key, destroy, caller};
    tl__unlock(&pkeyreg.lock);
    if (!ready)
      return;
  }
  if (tl__pkeys_on && wanted(caller))
    add_locked(key, destroy);
}

void tl__pkeys_forget(pthread_key_t key)
{
  if (tl__lock(&pkeyreg.lock) != 0)
    return;
  uint32_t n = atomic_load_explicit(&pkeyreg.n, memory_order_relaxed);
  for (uint32_t i = 0; i < n; i++)
    if (pkeyreg.keys[i].key == key)
      atomic_store_explicit(&pkeyreg.keys[i].live, 0, memory_order_relaxed);
  for (uint32_t i = 0; i < pkeyreg.npending; i++)
    if (pkeyreg.pending[i].key == key)
      pkeyreg.pending[i].caller = NULL;
  tl__unlock(&pkeyreg.lock);
}

void tl__pkeys_ready(void)
{
  struct pending waiting[PENDING_MAX];
  uint32_t n = 0;
  if (tl__lock(&pkeyreg.lock) != 0)
    return;
  for (uint32_t i = 0; i < pkeyreg.npending; i++)
    if (pkeyreg.pending[i].caller != NULL)
      waiting[n++] = pkeyreg.pending[i];
  pkeyreg.npending = 0;
  atomic_store_explicit(&pkeyreg.ready, 1, memory_order_release);
  tl__unlock(&pkeyreg.lock);
  for (uint32_t i = 0; tl__pkeys_on && i < n; i++)
    if (wanted(waiting[i].caller))
      add_locked(waiting[i].key, waiting[i].destroy);
  tl__pkeys_watch = tl__pkeys_on;
}

uint32_t tl__pkeys_count(void)
{
  return atomic_load_explicit(&pkeyreg.n, memory_order_acquire);
}

void tl__pkeys_save(void **vals, uint32_t n)
{
  for (uint32_t i = 0; i < n; i++)
    vals[i] = atomic_load_explicit(&pkeyreg.keys[i].live, memory_order_relaxed) ? pthread_getspecific(pkeyreg.keys[i].key)
                                                                          : NULL;
}

void tl__pkeys_load(void *const *vals, uint32_t nvals, uint32_t n)
{
  for (uint32_t i = 0; i < n; i++) {
    if (!atomic_load_explicit(&pkeyreg.keys[i].live, memory_order_relaxed))
      continue;
    void *v = i < nvals ? vals[i] : NULL;
    /* A slot that already holds it is left alone: setting a NULL value is
     * free in glibc, but a non-NULL one in a thread that never used a key
     * of its block allocates the block. */
    if (pthread_getspecific(pkeyreg.keys[i].key) != v)
      pthread_setspecific(pkeyreg.keys[i].key, v);
  }
}

uint32_t tl__pkeys_destroy(uint32_t n)
{
  uint32_t called = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!atomic_load_explicit(&pkeyreg.keys[i].live, memory_order_relaxed))
      continue;
    void *v = pthread_getspecific(pkeyreg.keys[i].key);
    if (v == NULL)
      continue;
    pthread_setspecific(pkeyreg.keys[i].key, NULL);
    if (pkeyreg.keys[i].destroy != NULL) {
      pkeyreg.keys[i].destroy(v);
      called++;
    }
  }
  return called;
}

void tl__pkeys_atfork_child(void)
{
  tl__lock_reset(&pkeyreg.lock);
}
