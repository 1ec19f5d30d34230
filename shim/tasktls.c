/* Thread-local state of unmodified code, made per task
 * (TASKLOCAL_TASK_LOCAL=ITEM[,ITEM...]; doc/task-local-tls.md).
 *
 * The items: sym:NAME[@OBJECT], a __thread variable (tlsym.c finds it);
 * pthread-keys:OBJECT|all, the pthread keys code in OBJECT makes
 * (pkeys.c); cxx-eh, the C++ runtime's exception state, the struct that
 * __cxa_get_globals() returns (the chain of caught exceptions and the
 * count of uncaught ones), from libstdc++ or libc++abi.
 *
 * All of it stays where the program's code looks for it, in the thread:
 * at every switch the shim sees, before the real switch (interpose.c's
 * announce, the task module's news of a start or an end), the leaving task's values are copied out into
 * its record's extension and the arriving task's are copied in, or what a
 * new thread starts with when it has none saved (the variable's initial
 * image, NULL keys, no exception). A task that resumes on another thread
 * finds its values copied into that thread's. Code that the compiler made
 * keep a variable's address across a switch still reads the thread's copy,
 * which is the running task's when the task resumed on the same thread:
 * nothing moves but the contents.
 *
 * The items are looked up at the first switch, not at load, so that the
 * libraries a program dlopens before it starts its coroutines are found.
 * An item that cannot be had (no such symbol, not a __thread variable,
 * larger than TL__TASKTLS_SYM_SIZE_MAX, no C++ runtime) gets one warning;
 * the others apply.
 */
#include "internal.h"
#include "tasktls.h"
#include "tlsym.h"
#include "pkeys.h"
#include "alloc.h"
#include "lock.h"
#include "message.h"
#include "task/registry.h"
#include "options.h"
#include "task/events.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

/* The C++ runtimes' struct __cxa_eh_globals (libstdc++'s unwind-cxx.h,
 * libc++abi's cxa_exception.h), without ARM EHABI's third field, which
 * neither x86_64 nor aarch64 has. */
struct eh_globals {
  void *caught;
  unsigned int uncaught;
};

struct sym {
  struct tl__tlsym where;
  uint32_t at;                             /* its place in a task's saved values */
  uint32_t size;
  unsigned char *init;                     /* what a new thread's copy holds */
};

/* A thread's copies, found at its first switch, with what a switch needs
 * to know of each next to it. */
struct here {
  struct eh_globals *eh;
  uint32_t eh_at;
  uint32_t nsym;
  struct slot {
    void *addr;                            /* the thread's copy */
    const unsigned char *init;
    uint32_t at, size;
  } sym[TL__TASKTLS_SYMS_MAX];
};

/* A task's saved values: the variables and the exception state at their
 * places, then one value per per-task key: room for cap, of which the
 * first nkeys were saved (keys noted since then have no value in it). */
struct saved {
  uint32_t cap, nkeys;
  _Alignas(16) unsigned char data[];
};

enum { UNRESOLVED, RESOLVED };

static struct {
  char spec[4096];                         /* TASKLOCAL_TASK_LOCAL, cut into items in place */
  struct item {
    const char *name, *object;
  } want[TL__TASKTLS_SYMS_MAX];
  uint32_t nwant;
  int want_eh;
  struct tl__lock lock;                    /* guards the resolution */
  _Atomic int state;
  struct sym sym[TL__TASKTLS_SYMS_MAX];
  uint32_t nsym;
  struct eh_globals *(*eh_get)(void);
  uint32_t eh_at;
  uint32_t size;                           /* bytes of data before the keys */
} tasktls;

int tl__tasktls_on;

static void bad_item(const char *item, const char *why)
{
  tl__message("TASKLOCAL_TASK_LOCAL: %s: %s; ignored", item, why);
}

void tl__tasktls_setup(void)
{
  const char *v = tl__opt.task_local;
  if (v == NULL || strlen(v) >= sizeof tasktls.spec) {
    tl__pkeys_ready();
    return;
  }
  strcpy(tasktls.spec, v);
  char *save = NULL;
  for (char *it = strtok_r(tasktls.spec, ",", &save); it != NULL; it = strtok_r(NULL, ",", &save)) {
    if (strncmp(it, "sym:", 4) == 0) {
      char *name = it + 4, *at = strchr(name, '@');
      if (at != NULL)
        *at = '\0';
      if (*name == '\0' || (at != NULL && at[1] == '\0'))
        bad_item(it, "expected sym:NAME or sym:NAME@OBJECT");
      else if (tasktls.nwant == TL__TASKTLS_SYMS_MAX)
        bad_item(it, "too many sym: items");
      else
        tasktls.want[tasktls.nwant++] = (struct item){name, at != NULL ? at + 1 : NULL};
    } else if (strncmp(it, "pthread-keys:", 13) == 0 && it[13] != '\0') {
      tl__pkeys_want(it + 13);
    } else if (strcmp(it, "cxx-eh") == 0) {
      tasktls.want_eh = 1;
    } else {
      bad_item(it, "not an item (sym:NAME[@OBJECT], pthread-keys:OBJECT|all or cxx-eh)");
    }
  }
  tl__pkeys_ready();
  tl__tasktls_on = tasktls.nwant != 0 || tasktls.want_eh || tl__pkeys_on;
}

static void add_sym(const struct item *w)
{
  struct sym *s = &tasktls.sym[tasktls.nsym];
  const char *object = w->object != NULL ? w->object : "any loaded object";
  switch (tl__tlsym_find(w->name, w->object, &s->where)) {
  case TL__TLSYM_NONE:
    tl__message("TASKLOCAL_TASK_LOCAL: sym:%s: no such symbol in %s; ignored", w->name, object);
    return;
  case TL__TLSYM_NOT_TLS:
    tl__message("TASKLOCAL_TASK_LOCAL: sym:%s: not a __thread variable in %s; ignored", w->name, object);
    return;
  case TL__TLSYM_FOUND:
    break;
  }
  if (s->where.size == 0 || s->where.size > TL__TASKTLS_SYM_SIZE_MAX) {
    tl__message("TASKLOCAL_TASK_LOCAL: sym:%s: its size, %llu bytes, is not between 1 and %d; ignored", w->name,
                (unsigned long long)s->where.size, TL__TASKTLS_SYM_SIZE_MAX);
    return;
  }
  s->size = (uint32_t)s->where.size;
  s->init = tl__calloc(1, s->size);
  if (s->init == NULL) {
    tl__message("TASKLOCAL_TASK_LOCAL: sym:%s: out of memory; ignored", w->name);
    return;
  }
  uint64_t off = s->where.offset, have = s->where.image_size;
  if (off < have)
    memcpy(s->init, s->where.image + off, have - off < s->size ? have - off : s->size);
  s->at = tasktls.size;
  tasktls.size += (s->size + 15u) & ~15u;
  tasktls.nsym++;
}

/* The items, looked up once, at the first switch of any thread. */
static __attribute__((noinline)) int resolve(void)
{
  if (tl__lock(&tasktls.lock) != 0)
    return -1;                             /* a signal handler interrupted the resolution */
  if (atomic_load_explicit(&tasktls.state, memory_order_relaxed) == UNRESOLVED) {
    for (uint32_t i = 0; i < tasktls.nwant; i++)
      add_sym(&tasktls.want[i]);
    if (tasktls.want_eh) {
      tasktls.eh_get = (struct eh_globals * (*)(void)) dlsym(RTLD_DEFAULT, "__cxa_get_globals");
      if (tasktls.eh_get == NULL)
        tl__message("TASKLOCAL_TASK_LOCAL: cxx-eh: no C++ runtime (libstdc++ or libc++abi) is loaded; ignored");
      else {
        tasktls.eh_at = tasktls.size;
        tasktls.size += 16;
      }
    }
    /* Nothing to swap after all: the switches go back to the fast path. */
    if (tasktls.nsym == 0 && tasktls.eh_get == NULL && !tl__pkeys_on)
      __atomic_store_n(&tl__tasktls_on, 0, __ATOMIC_RELAXED);
    atomic_store_explicit(&tasktls.state, RESOLVED, memory_order_release);
  }
  tl__unlock(&tasktls.lock);
  return 0;
}

static __attribute__((noinline)) struct here *here_make(struct tl__thread *th)
{
  if (atomic_load_explicit(&tasktls.state, memory_order_acquire) != RESOLVED && resolve() != 0)
    return NULL;
  struct here *h = tl__calloc(1, sizeof *h);
  if (h == NULL)
    return NULL;
  for (uint32_t i = 0; i < tasktls.nsym; i++)
    h->sym[i] = (struct slot){tl__tlsym_here(&tasktls.sym[i].where), tasktls.sym[i].init, tasktls.sym[i].at, tasktls.sym[i].size};
  h->nsym = tasktls.nsym;
  if (tasktls.eh_get != NULL)
    h->eh = tasktls.eh_get();
  h->eh_at = tasktls.eh_at;
  th->tasktls = h;
  return h;
}

static inline struct here *here(struct tl__thread *th)
{
  struct here *h = th->tasktls;
  return TL__LIKELY(h != NULL) ? h : here_make(th);
}

static inline void **keys_of(struct saved *s)
{
  return (void **)(void *)(s->data + tasktls.size);
}

/* Where c's values go, grown to hold nkeys keys; NULL on ENOMEM. */
static struct saved *saved_for(struct tl__task *c, uint32_t nkeys)
{
  struct tl__task_ext *x = c->x != NULL ? c->x : tl__task_ext(c);
  if (x == NULL)
    return NULL;
  struct saved *s = x->tls;
  if (TL__UNLIKELY(s == NULL || s->cap < nkeys)) {
    uint32_t cap = nkeys < 4 ? 4 : nkeys;
    s = tl__realloc(s, sizeof *s + tasktls.size + cap * sizeof(void *));
    if (s == NULL)
      return NULL;
    s->cap = cap;
    x->tls = s;
  }
  return s;
}

/* One variable's bytes: most are a word, copied without a call. */
static inline void copy(void *to, const void *from, uint32_t size)
{
  if (TL__LIKELY(size == 8))
    __builtin_memcpy(to, from, 8);
  else
    memcpy(to, from, size);
}

/* The thread's values, c's, are copied out. A task whose values cannot be
 * kept for want of memory finds what a new thread has when it resumes. */
static inline void save(struct here *h, struct tl__task *c, uint32_t nkeys)
{
  struct saved *s = saved_for(c, nkeys);
  if (TL__UNLIKELY(s == NULL)) {
    if (c->x != NULL) {
      tl__free(c->x->tls);                 /* older values must not come back */
      c->x->tls = NULL;
    }
    return;
  }
  for (uint32_t i = 0; i < h->nsym; i++)
    copy(s->data + h->sym[i].at, h->sym[i].addr, h->sym[i].size);
  if (h->eh != NULL)
    __builtin_memcpy(s->data + h->eh_at, h->eh, sizeof(struct eh_globals));
  if (nkeys != 0)
    tl__pkeys_save(keys_of(s), nkeys);
  s->nkeys = nkeys;
}

/* t's values are copied in: those it saved, or a new thread's. */
static inline void load(struct here *h, struct tl__task *t, uint32_t nkeys)
{
  struct saved *s = t->x != NULL ? t->x->tls : NULL;
  for (uint32_t i = 0; i < h->nsym; i++)
    copy(h->sym[i].addr, s != NULL ? s->data + h->sym[i].at : h->sym[i].init, h->sym[i].size);
  if (h->eh != NULL) {
    if (s != NULL)
      __builtin_memcpy(h->eh, s->data + h->eh_at, sizeof(struct eh_globals));
    else
      *h->eh = (struct eh_globals){NULL, 0};
  }
  if (nkeys != 0)
    tl__pkeys_load(s != NULL ? keys_of(s) : NULL, s != NULL ? s->nkeys : 0, nkeys);
}

void tl__tasktls_switch(struct tl__thread *th, struct tl__task *c, struct tl__task *t)
{
  struct here *h = here(th);
  if (TL__UNLIKELY(h == NULL))
    return;
  uint32_t nkeys = tl__pkeys_count();
  save(h, c, nkeys);
  load(h, t, nkeys);
}

static void task_enter(struct tl__thread *th, struct tl__task *t)
{
  struct here *h = here(th);
  if (h != NULL)
    load(h, t, tl__pkeys_count());
}

/* The thread's key values are t's: up to four rounds of destructors, as
 * at a thread's exit. */
static void destroy_keys(void)
{
  for (int round = 0; round < 4; round++)
    if (tl__pkeys_destroy(tl__pkeys_count()) == 0)
      break;
}

static void task_finish(struct tl__thread *th, struct tl__task *t, struct tl__task *next)
{
  struct here *h = here(th);
  if (h == NULL)
    return;
  if (t != NULL && tl__pkeys_count() != 0)
    destroy_keys();
  load(h, next, tl__pkeys_count());
}

static void task_end(struct tl__task *t)
{
  struct saved *s = t->x != NULL ? t->x->tls : NULL;
  uint32_t n = tl__pkeys_count();
  if (s == NULL || n == 0)
    return;
  uint32_t i = 0;
  while (i < n && (i >= s->nkeys || keys_of(s)[i] == NULL))
    i++;
  if (i == n)
    return;                                /* no key values: nothing to destroy */
  /* The running task's values step aside while t's are destroyed in the
   * thread's slots, where its destructors look for them. */
  void **mine = tl__alloc(n * sizeof(void *));
  if (mine == NULL)
    return;
  tl__pkeys_save(mine, n);
  tl__pkeys_load(keys_of(s), s->nkeys, n);
  destroy_keys();
  memset(keys_of(s), 0, s->nkeys * sizeof(void *));
  tl__pkeys_load(mine, n, n);
  tl__free(mine);
}


/* The task module's news (task/events.h). A made task that starts where
 * another was predicted takes its values; a finished one's keys are
 * destroyed and the next task's values go in; one that ends without
 * running (released, abandoned) has its keys destroyed here; and its
 * saved values go with its record's extension, whether or not the items
 * are still followed then. */
static void tasktls_started(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__UNLIKELY(tl__tasktls_on) && ev->other != ev->t)
    task_enter(th, ev->t);
}

static void tasktls_finishing(struct tl__thread *th, const struct tl__event *ev)
{
  if (TL__UNLIKELY(tl__tasktls_on))
    task_finish(th, ev->t, ev->other);
}

static void tasktls_ended(struct tl__thread *th, const struct tl__event *ev)
{
  (void)th;
  if (TL__UNLIKELY(tl__tasktls_on))
    task_end(ev->t);
}

static void tasktls_freed(struct tl__thread *th, const struct tl__event *ev)
{
  (void)th;
  tl__free(ev->x->tls);
}

void tl__tasktls_observe_tasks(void)
{
  if (!tl__tasktls_on)
    return;
  tl__task_observe(TL__NEWS_STARTED, tasktls_started);
  tl__task_observe(TL__NEWS_FINISHING, tasktls_finishing);
  tl__task_observe(TL__NEWS_ABANDONED, tasktls_ended);
  tl__task_observe(TL__NEWS_RELEASED, tasktls_ended);
  tl__task_observe(TL__NEWS_FREED, tasktls_freed);
}

void tl__tasktls_thread_exit(struct tl__thread *th)
{
  tl__free(th->tasktls);
  th->tasktls = NULL;
}

void tl__tasktls_atfork_child(void)
{
  tl__lock_reset(&tasktls.lock);
  tl__pkeys_atfork_child();
}
