/* tasklocal_dynamic.h: header-only use of tasklocal (TL_DYNAMIC).
 *
 * A program that defines TL_DYNAMIC before including tasklocal.h gets this
 * file too, and links nothing: every function of tasklocal.h becomes a
 * static inline wrapper that calls through the table the library exports
 * (tl_api_v1), found at run time, or else a per-thread fallback. Including
 * this file on its own is the same as defining TL_DYNAMIC and including
 * tasklocal.h. What detection does and what the fallback offers is
 * described under "Header-only use" in tasklocal.h.
 *
 * Detection happens at the first call of any function, once for the whole
 * process: dlsym(RTLD_DEFAULT, "tl_api_v1") finds the library when it is
 * preloaded, linked, or dlopened with RTLD_GLOBAL; then
 * dlopen("libtasklocal.so.0", RTLD_NOLOAD) finds it when it was dlopened
 * locally. The table is accepted when its version is TL_API_VERSION and
 * its size at least ours. Threads that race on the first call each compute
 * the same answer and publish it with an atomic store, so no lock is
 * needed. A library loaded after the first call is not used: keys made by
 * the fallback would mean nothing to it.
 */
#ifndef TASKLOCAL_H
#ifndef TL_DYNAMIC
#define TL_DYNAMIC 1
#endif
#include "tasklocal.h" /* which includes this file again, inside its extern "C" block */
#else

/* The table. The library includes this file after tasklocal.h, without
 * TL_DYNAMIC, for this part only: it defines tl_api_v1. */
#ifndef TASKLOCAL_API_TABLE
#define TASKLOCAL_API_TABLE
#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif /* TASKLOCAL_API_TABLE */

/* The header-only implementation. */
#if defined(TL_DYNAMIC) && !defined(TASKLOCAL_DYNAMIC_H)
#define TASKLOCAL_DYNAMIC_H

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

#endif /* TASKLOCAL_DYNAMIC_H */
#endif /* TASKLOCAL_H */
