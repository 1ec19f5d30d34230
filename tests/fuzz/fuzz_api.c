/* libFuzzer harness for the public API and the task tracker.
 *
 * Each input is decoded into a sequence of operations: create and delete
 * keys (task, thread and custom scope; scoped-only; shared and copied
 * inheritance), get/lookup/set/unset, bind/unbind with real, replayed,
 * out-of-order and forged tokens, spawn (makecontext), switch
 * (swapcontext between any two tasks), finish (the task's function
 * returns), abandon (makecontext again on a suspended task's context),
 * custom owners and tl_disc_end, tl_loop_close, tl_defer, tl_singleton,
 * names, tl_foreach, and keys that were never valid.
 *
 * The operations run inside whichever task is current: every task, the
 * root included, runs the same interpreter on the shared input, so a
 * switch simply lets the next task go on reading it. A simple model in
 * the harness (per task, per thread and per owner: which key is bound to
 * what; per task: the open bindings) predicts every result; destructor
 * and deferred calls are logged and compared with the model at every
 * point where a scope ends. Any difference aborts with a message.
 *
 * Values are fake pointers that are never dereferenced, so a wrong
 * destructor call shows up as a model mismatch, not as memory damage.
 * At the end of each input every task is finished and every key deleted,
 * so that runs do not accumulate state in the library. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "tasklocal.h"

#define MAX_KEYS 12
#define MAX_TASKS 8                        /* slot 0 is the root */
#define MAX_BINDS 16
#define MAX_EVENTS 256
#define MAX_OPS 400
#define STACK_SIZE (256 * 1024)

/* ---- failures ---- */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz_api: model mismatch: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

#define EXPECT_RC(got, want, what)                                                                 \
  do {                                                                                             \
    int g_ = (got), w_ = (want);                                                                   \
    if (g_ != w_)                                                                                  \
      fail("%s: returned %d, the model says %d (op %d)", what, g_, w_, op_index);                  \
  } while (0)

/* ---- the input ---- */

static const uint8_t *in_data;
static size_t in_size, in_pos;
static int op_index;

static int input_left(void)
{
  return in_pos < in_size && op_index < MAX_OPS;
}

static uint8_t byte(void)
{
  return in_pos < in_size ? in_data[in_pos++] : 0;
}

static uint64_t word64(void)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | byte();
  return v;
}

/* ---- fake values ---- */

static uintptr_t next_fake = 0x1000;

static void *fake(void)
{
  next_fake += 16;
  return (void *)next_fake;
}

/* ---- the model ---- */

struct mkey {
  int used;                                /* the slot holds a key (live or deleted) */
  int live;
  tl_key_t key;
  int scope, inherit, scoped_only, has_destroy;
  int named;
  char name[16];
};

struct mval {
  int bound;
  void *value;
};

struct mbind {
  int key;                                 /* model key index */
  tl_key_t handle;                         /* the key as it was when bound */
  tl_token_t token;
  struct mval prev;
};

enum { FREE = 0, NEW, SUSPENDED, RUNNING };

struct mtask {
  int state;
  uint64_t id;                             /* known once it ran */
  struct mval val[MAX_KEYS];
  struct mbind binds[MAX_BINDS];
  int nbinds;
  void *shared[MAX_KEYS];                  /* inherited by SHARE: not its to destroy */
  int has_shared[MAX_KEYS];
  int defers[8];
  int ndefers;
  char name[16];
  int named;
  ucontext_t ctx;
  char *stack;
};

static struct mkey keys[MAX_KEYS];
static struct mtask tasks[MAX_TASKS];
static struct mval thread_val[MAX_KEYS];
static struct mval owner_val[3][MAX_KEYS]; /* owner 0 is "none" and never holds values */
static int thread_defers[8], nthread_defers;
static int cur;                            /* the running task's slot */
static int owner;                          /* 0: none, 1 or 2 */
static int finish_all;                     /* cleaning up: every task returns at once */
static int next_defer_id;

static int owner_objs[3];
static void *current_owner(void *arg)
{
  (void)arg;
  return owner == 0 ? NULL : &owner_objs[owner];
}

static const struct tl_disc disc = {current_owner, NULL};

/* ---- logged calls ---- */

struct event {
  int kind;                                /* 0 destroy, 1 deferred call */
  void *value;                             /* the value destroyed, or the defer id */
};

static struct event events[MAX_EVENTS];
static int nevents;
static int copies;                         /* copies made by TL_INHERIT_COPY */
static const void *copy_src[MAX_KEYS];     /* the copies made by one makecontext: from what */
static void *copy_dst[MAX_KEYS];

static void log_event(int kind, void *value)
{
  if (nevents == MAX_EVENTS)
    fail("too many destructor or deferred calls");
  events[nevents].kind = kind;
  events[nevents].value = value;
  nevents++;
}

static void destroy_value(void *v)
{
  log_event(0, v);
}

static void deferred(void *arg)
{
  log_event(1, arg);
}

static void *copy_value(const void *v)
{
  void *c = v == NULL ? NULL : fake();
  if (copies < MAX_KEYS) {
    copy_src[copies] = v;
    copy_dst[copies] = c;
  }
  copies++;
  return c;
}

/* The copy that the last makecontext made of v (each is used once). */
static void *copy_of(const void *v)
{
  for (int i = 0; i < copies && i < MAX_KEYS; i++) {
    if (copy_src[i] == v && copy_dst[i] != (void *)-1) {
      void *c = copy_dst[i];
      copy_dst[i] = (void *)-1;
      return c;
    }
  }
  fail("no copy was made of %p (op %d)", v, op_index);
}

static void *make_value(void *arg)
{
  (void)arg;
  return fake();
}

/* Expected calls of the scope end being checked. */
static struct event expected[MAX_EVENTS];
static int nexpected;

static void expect_event(int kind, void *value)
{
  if (nexpected == MAX_EVENTS)
    fail("too many expected calls");
  expected[nexpected].kind = kind;
  expected[nexpected].value = value;
  nexpected++;
}

static int event_cmp(const void *a, const void *b)
{
  const struct event *x = a, *y = b;
  if (x->kind != y->kind)
    return x->kind - y->kind;
  return x->value < y->value ? -1 : x->value > y->value;
}

/* Destructor calls come in table order, which the model does not know:
 * they are compared as sets. Deferred calls must come after every
 * destructor and in exactly the expected (LIFO) order. */
static void check_events(const char *what)
{
  int got_destroy = 0, want_destroy = 0;
  for (int i = 0; i < nevents; i++)
    got_destroy += events[i].kind == 0;
  for (int i = 0; i < nexpected; i++)
    want_destroy += expected[i].kind == 0;
  if (nevents != nexpected || got_destroy != want_destroy)
    fail("%s: %d destructor and %d deferred calls, the model says %d and %d (op %d)", what, got_destroy,
         nevents - got_destroy, want_destroy, nexpected - want_destroy, op_index);
  for (int i = 0; i < nevents; i++)
    if ((events[i].kind == 0) != (i < got_destroy))
      fail("%s: a deferred call ran before a destructor (op %d)", what, op_index);
  for (int i = got_destroy; i < nevents; i++)
    if (events[i].value != expected[i].value)
      fail("%s: deferred call %d ran out of order (op %d)", what, i - got_destroy, op_index);
  qsort(events, (size_t)got_destroy, sizeof events[0], event_cmp);
  qsort(expected, (size_t)want_destroy, sizeof expected[0], event_cmp);
  for (int i = 0; i < got_destroy; i++)
    if (events[i].value != expected[i].value)
      fail("%s: destructor called with %p, the model expects %p (op %d)", what, events[i].value,
           expected[i].value, op_index);
  nevents = nexpected = 0;
}

static void no_events(const char *what)
{
  nexpected = 0;
  check_events(what);
}

/* ---- where a key's value lives ---- */

/* The model's value of key k in the current scope, or NULL when the
 * scope is a custom one with no owner. */
static struct mval *scope_val(int k)
{
  switch (keys[k].scope) {
  case TL_SCOPE_THREAD:
    return &thread_val[k];
  case TL_SCOPE_CUSTOM:
    return owner == 0 ? NULL : &owner_val[owner][k];
  default:
    return &tasks[cur].val[k];
  }
}

static void check_key(int k)
{
  struct mkey *m = &keys[k];
  if (!m->used)
    return;
  void *v = (void *)0x1;
  int rc = tl_lookup(m->key, &v);
  void *g = tl_get(m->key);
  if (!m->live) {
    EXPECT_RC(rc, EINVAL, "tl_lookup(deleted key)");
    if (g != NULL)
      fail("tl_get(deleted key) gave %p", g);
    return;
  }
  struct mval *mv = scope_val(k);
  if (mv == NULL) {
    EXPECT_RC(rc, ESRCH, "tl_lookup(custom key, no owner)");
  } else if (mv->bound) {
    EXPECT_RC(rc, 0, "tl_lookup(bound key)");
    if (v != mv->value)
      fail("tl_lookup(key %d) gave %p, the model says %p (op %d)", k, v, mv->value, op_index);
  } else {
    EXPECT_RC(rc, ENOENT, "tl_lookup(unbound key)");
  }
  void *want = mv != NULL && mv->bound ? mv->value : NULL;
  if (g != want)
    fail("tl_get(key %d) gave %p, the model says %p (op %d)", k, g, want, op_index);
}

static void check_all(void)
{
  for (int k = 0; k < MAX_KEYS; k++)
    check_key(k);
  uint64_t id = tl_task_id(tl_current());
  if (tasks[cur].id == 0) {
    for (int t = 0; t < MAX_TASKS; t++)
      if (t != cur && tasks[t].state != FREE && tasks[t].id == id)
        fail("task %d has the id of task %d (op %d)", cur, t, op_index);
    tasks[cur].id = id;
  } else if (tasks[cur].id != id)
    fail("task %d has id %llu, it had %llu (op %d)", cur, (unsigned long long)id,
         (unsigned long long)tasks[cur].id, op_index);
}

/* ---- scope ends ---- */

/* What the library does at a task's end: open bindings are undone,
 * innermost first; then every value still bound goes to its key's
 * destructor, except inherited shared ones; then the deferred calls. */
static void model_task_end(int t)
{
  struct mtask *mt = &tasks[t];
  int saved = cur;
  cur = t;
  while (mt->nbinds > 0) {
    struct mbind *b = &mt->binds[--mt->nbinds];
    if (!keys[b->key].live || keys[b->key].key != b->handle)
      continue;
    struct mval *mv = scope_val(b->key);
    if (mv != NULL)
      *mv = b->prev;
  }
  cur = saved;
  for (int k = 0; k < MAX_KEYS; k++) {
    struct mval *mv = &mt->val[k];
    if (mv->bound && mv->value != NULL && keys[k].live && keys[k].has_destroy &&
        !(mt->has_shared[k] && mt->shared[k] == mv->value))
      expect_event(0, mv->value);
    mv->bound = 0;
    mv->value = NULL;
    mt->has_shared[k] = 0;
  }
  for (int i = mt->ndefers - 1; i >= 0; i--)
    expect_event(1, (void *)(intptr_t)mt->defers[i]);
  mt->ndefers = 0;
  mt->named = 0;
  mt->id = 0;
}

static void model_scope_values_end(struct mval *vals, int scope)
{
  for (int k = 0; k < MAX_KEYS; k++) {
    if (keys[k].scope != scope)
      continue;
    if (vals[k].bound && vals[k].value != NULL && keys[k].live && keys[k].has_destroy)
      expect_event(0, vals[k].value);
    vals[k].bound = 0;
    vals[k].value = NULL;
  }
}

/* ---- tasks ---- */

static void task_main(void);

/* The root's context, where a finishing task goes (uc_link). */
static ucontext_t *root_ctx(void)
{
  return &tasks[0].ctx;
}

/* Every task's function: it runs the interpreter until told to finish. */
static void run_ops(void);

static void task_main(void)
{
  run_ops();
  /* Returning finishes the task; the library ends its scope on the way to
   * uc_link (the root), which checks the calls it made. */
  tasks[cur].state = FREE;
  tasks[0].state = RUNNING;
  cur = 0;
}

static void switch_to(int t)
{
  int from = cur;
  tasks[from].state = SUSPENDED;
  tasks[t].state = RUNNING;
  cur = t;
  if (swapcontext(&tasks[from].ctx, &tasks[t].ctx) != 0)
    fail("swapcontext failed");
  /* Back in `from`: whoever switched here set cur and the states. */
  if (cur != from)
    fail("resumed task %d, but the model runs %d", from, cur);
}

/* A task that finished (through uc_link to the root) ends here, in the
 * root: its scope end is checked against the model. */
static void after_finish(int t)
{
  model_task_end(t);
  check_events("task end");
  free(tasks[t].stack);
  tasks[t].stack = NULL;
}

static int finished_slot = -1;

static void op_spawn(int t)
{
  struct mtask *mt = &tasks[t];
  if (t == 0 || t == cur || mt->state == RUNNING)
    return;
  if (mt->state == NEW || mt->state == SUSPENDED) {
    /* Abandonment: makecontext on the same ucontext_t. Its scope ends now,
     * with the same calls as a finish. */
    model_task_end(t);
  }
  char *old_stack = mt->stack;
  mt->stack = malloc(STACK_SIZE);
  if (mt->stack == NULL)
    fail("out of memory");
  if (getcontext(&mt->ctx) != 0)
    fail("getcontext failed");
  mt->ctx.uc_stack.ss_sp = mt->stack;
  mt->ctx.uc_stack.ss_size = STACK_SIZE;
  mt->ctx.uc_link = root_ctx();
  copies = 0;
  makecontext(&mt->ctx, task_main, 0);
  check_events(mt->state == FREE ? "makecontext" : "abandonment");
  free(old_stack);
  /* The child starts with what the parent had bound for inheriting keys. */
  struct mtask *parent = &tasks[cur];
  int want_copies = 0;
  mt->nbinds = mt->ndefers = 0;
  mt->named = 0;
  mt->id = 0;
  for (int k = 0; k < MAX_KEYS; k++) {
    mt->val[k].bound = 0;
    mt->val[k].value = NULL;
    mt->has_shared[k] = 0;
    if (!keys[k].live || keys[k].scope != TL_SCOPE_TASK || keys[k].inherit == TL_INHERIT_NONE ||
        !parent->val[k].bound)
      continue;
    mt->val[k].bound = 1;
    if (keys[k].inherit == TL_INHERIT_SHARE) {
      mt->val[k].value = parent->val[k].value;
      mt->has_shared[k] = 1;
      mt->shared[k] = parent->val[k].value;
    } else {
      want_copies++;
    }
  }
  if (copies != want_copies)
    fail("makecontext made %d copies, the model says %d (op %d)", copies, want_copies, op_index);
  for (int k = 0; k < MAX_KEYS; k++)
    if (mt->val[k].bound && !mt->has_shared[k])
      mt->val[k].value = copy_of(parent->val[k].value);
  mt->state = NEW;
}

static void op_switch(int t)
{
  if (t == cur || tasks[t].state == FREE)
    return;
  switch_to(t);
  if (finished_slot >= 0) {
    int f = finished_slot;
    finished_slot = -1;
    after_finish(f);
  }
}

/* ---- keys ---- */

static int find_free_key(void)
{
  for (int k = 0; k < MAX_KEYS; k++)
    if (!keys[k].live)
      return k;
  return -1;
}

static void op_key_create(void)
{
  int k = find_free_key();
  uint8_t a = byte(), b = byte();
  if (k < 0)
    return;
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  int scope = a % 3, inherit = (a / 3) % 3;
  attr.scope = scope;
  attr.inherit = inherit;
  attr.flags = (b & 1) ? TL_KEY_SCOPED_ONLY : 0;
  attr.destroy = (b & 2) ? destroy_value : NULL;
  attr.copy = inherit == TL_INHERIT_COPY ? copy_value : NULL;
  attr.disc = scope == TL_SCOPE_CUSTOM ? &disc : NULL;
  char name[16];
  int named = (b & 4) != 0;
  if (named) {
    snprintf(name, sizeof name, "fz%d", (b >> 3) & 3);
    attr.name = name;
  }
  int want = 0;
  if (scope != TL_SCOPE_TASK && inherit != TL_INHERIT_NONE)
    want = EINVAL;
  for (int i = 0; named && want == 0 && i < MAX_KEYS; i++)
    if (keys[i].live && keys[i].named && strcmp(keys[i].name, name) == 0)
      want = EEXIST;
  tl_key_t key = 0;
  EXPECT_RC(tl_key_create_attr(&key, &attr), want, "tl_key_create_attr");
  if (want != 0)
    return;
  for (int i = 0; i < MAX_KEYS; i++)
    if (keys[i].used && keys[i].key == key)
      fail("tl_key_create_attr gave key %llx again (op %d)", (unsigned long long)key, op_index);
  struct mkey *m = &keys[k];
  memset(m, 0, sizeof *m);
  m->used = m->live = 1;
  m->key = key;
  m->scope = scope;
  m->inherit = inherit;
  m->scoped_only = (b & 1) != 0;
  m->has_destroy = (b & 2) != 0;
  m->named = named;
  if (named)
    snprintf(m->name, sizeof m->name, "%s", name);
  /* A new key starts unbound everywhere. */
  for (int t = 0; t < MAX_TASKS; t++) {
    tasks[t].val[k].bound = 0;
    tasks[t].val[k].value = NULL;
    tasks[t].has_shared[k] = 0;
  }
  thread_val[k].bound = 0;
  owner_val[1][k].bound = owner_val[2][k].bound = 0;
  if (named) {
    tl_key_t found = 0;
    EXPECT_RC(tl_key_find(&found, name), 0, "tl_key_find");
    if (found != key)
      fail("tl_key_find gave another key (op %d)", op_index);
  }
}

static void op_key_delete(int k)
{
  struct mkey *m = &keys[k];
  if (!m->used)
    return;
  EXPECT_RC(tl_key_delete(m->key), m->live ? 0 : EINVAL, "tl_key_delete");
  if (!m->live)
    return;
  m->live = 0;
  if (m->named) {
    tl_key_t found;
    EXPECT_RC(tl_key_find(&found, m->name), ENOENT, "tl_key_find(deleted name)");
  }
  /* Values are dropped without destructors. */
  no_events("tl_key_delete");
}

/* ---- values ---- */

static void op_set(int k, int remove)
{
  struct mkey *m = &keys[k];
  if (!m->used)
    return;
  void *v = (byte() & 7) == 0 ? NULL : fake();
  int want;
  struct mval *mv = m->live ? scope_val(k) : NULL;
  if (!m->live)
    want = EINVAL;
  else if (m->scoped_only)
    want = EPERM;
  else if (mv == NULL)
    want = ESRCH;
  else
    want = 0;
  if (remove)
    EXPECT_RC(tl_unset(m->key), want, "tl_unset");
  else
    EXPECT_RC(tl_set(m->key, v), want, "tl_set");
  no_events(remove ? "tl_unset" : "tl_set");
  if (want != 0)
    return;
  mv->bound = !remove;
  mv->value = remove ? NULL : v;
}

static void op_bind(int k)
{
  struct mkey *m = &keys[k];
  struct mtask *mt = &tasks[cur];
  if (!m->used || mt->nbinds == MAX_BINDS)
    return;
  void *v = fake();
  struct mval *mv = m->live ? scope_val(k) : NULL;
  int want = !m->live ? EINVAL : mv == NULL ? ESRCH : 0;
  tl_token_t tok;
  EXPECT_RC(tl_bind(m->key, v, &tok), want, "tl_bind");
  if (want != 0)
    return;
  struct mbind *b = &mt->binds[mt->nbinds++];
  b->key = k;
  b->handle = m->key;
  b->token = tok;
  b->prev = *mv;
  mv->bound = 1;
  mv->value = v;
}

static void op_unbind(void)
{
  uint8_t how = byte();
  struct mtask *mt = &tasks[cur];
  tl_token_t tok;
  int want = EINVAL, top = 0;
  switch (how % 5) {
  case 0: /* the innermost binding: the right one */
  case 1:
    if (mt->nbinds == 0)
      return;
    tok = mt->binds[mt->nbinds - 1].token;
    top = 1;
    break;
  case 2: { /* an outer binding of this task: out of order */
    if (mt->nbinds < 2)
      return;
    tok = mt->binds[byte() % (mt->nbinds - 1)].token;
    break;
  }
  case 3: { /* the innermost binding of another task */
    int t = byte() % MAX_TASKS;
    if (t == cur || tasks[t].state == FREE || tasks[t].nbinds == 0)
      return;
    tok = tasks[t].binds[tasks[t].nbinds - 1].token;
    break;
  }
  default: /* forged: random words, or a real token with one word changed */
    if (mt->nbinds > 0 && (how & 8)) {
      tok = mt->binds[mt->nbinds - 1].token;
      tok.opaque[byte() % 4] ^= (uint64_t)1 << (byte() % 64);
    } else {
      for (int i = 0; i < 4; i++)
        tok.opaque[i] = word64();
    }
    break;
  }
  struct mbind *b = top ? &mt->binds[mt->nbinds - 1] : NULL;
  struct mval *mv = NULL;
  if (top) {
    want = 0;
    if (keys[b->key].live && keys[b->key].key == b->handle) {
      mv = scope_val(b->key);
      if (mv == NULL)
        want = ESRCH;                      /* no owner to restore into: nothing changes */
    }
  }
  EXPECT_RC(tl_unbind(&tok), want, "tl_unbind");
  no_events("tl_unbind");
  if (want != 0)
    return;
  if (mv != NULL)
    *mv = b->prev;
  mt->nbinds--;
}

static void op_singleton(int k)
{
  struct mkey *m = &keys[k];
  if (!m->used)
    return;
  errno = 0;
  void *v = tl_singleton(m->key, make_value, NULL);
  struct mval *mv = m->live ? scope_val(k) : NULL;
  if (!m->live || mv == NULL) {
    if (v != NULL || errno != (m->live ? ESRCH : EINVAL))
      fail("tl_singleton of an invalid key or no owner gave %p, errno %d (op %d)", v, errno, op_index);
    return;
  }
  no_events("tl_singleton");
  if (mv->bound) {
    if (v != mv->value)
      fail("tl_singleton gave %p, the bound value is %p (op %d)", v, mv->value, op_index);
    return;
  }
  if (v == NULL)
    fail("tl_singleton made nothing (errno %d, op %d)", errno, op_index);
  mv->bound = 1;
  mv->value = v;
}

static void op_bad_key(void)
{
  tl_key_t k = word64();
  for (int i = 0; i < MAX_KEYS; i++)
    if (keys[i].live && keys[i].key == k)
      return;
  void *v;
  tl_token_t tok;
  if (tl_get(k) != NULL)
    fail("tl_get(invalid key %llx) is not NULL", (unsigned long long)k);
  EXPECT_RC(tl_lookup(k, &v), EINVAL, "tl_lookup(invalid key)");
  EXPECT_RC(tl_set(k, &v), EINVAL, "tl_set(invalid key)");
  EXPECT_RC(tl_unset(k), EINVAL, "tl_unset(invalid key)");
  EXPECT_RC(tl_bind(k, &v, &tok), EINVAL, "tl_bind(invalid key)");
  EXPECT_RC(tl_key_delete(k), EINVAL, "tl_key_delete(invalid key)");
}

/* ---- scopes ---- */

static void op_loop_close(void)
{
  model_scope_values_end(thread_val, TL_SCOPE_THREAD);
  for (int i = nthread_defers - 1; i >= 0; i--)
    expect_event(1, (void *)(intptr_t)thread_defers[i]);
  nthread_defers = 0;
  EXPECT_RC(tl_loop_close(), 0, "tl_loop_close");
  check_events("tl_loop_close");
}

static void op_disc_end(int o)
{
  model_scope_values_end(owner_val[o], TL_SCOPE_CUSTOM);
  EXPECT_RC(tl_disc_end(&disc, &owner_objs[o]), 0, "tl_disc_end");
  check_events("tl_disc_end");
}

static void op_defer(int thread_scope)
{
  int id = ++next_defer_id;
  if (thread_scope) {
    if (nthread_defers == 8)
      return;
    EXPECT_RC(tl_defer(TL_SCOPE_THREAD, deferred, (void *)(intptr_t)id), 0, "tl_defer(thread)");
    thread_defers[nthread_defers++] = id;
  } else {
    struct mtask *mt = &tasks[cur];
    /* The root's deferred calls would run only at process exit. */
    if (cur == 0 || mt->ndefers == 8)
      return;
    EXPECT_RC(tl_defer(TL_SCOPE_TASK, deferred, (void *)(intptr_t)id), 0, "tl_defer(task)");
    mt->defers[mt->ndefers++] = id;
  }
}

/* ---- introspection ---- */

static int seen_count;
static int foreach_fn(tl_key_t key, const char *name, void *value, void *arg)
{
  (void)name;
  (void)arg;
  for (int k = 0; k < MAX_KEYS; k++) {
    if (keys[k].live && keys[k].key == key) {
      if (keys[k].scope != TL_SCOPE_TASK)
        fail("tl_foreach visited a key of another scope (op %d)", op_index);
      if (!tasks[cur].val[k].bound || tasks[cur].val[k].value != value)
        fail("tl_foreach visited key %d = %p, the model says %s %p (op %d)", k, value,
             tasks[cur].val[k].bound ? "bound to" : "unbound", tasks[cur].val[k].value, op_index);
      seen_count++;
      return 0;
    }
  }
  fail("tl_foreach visited a key that is not live (op %d)", op_index);
}

static void op_foreach(void)
{
  seen_count = 0;
  EXPECT_RC(tl_foreach(NULL, foreach_fn, NULL), 0, "tl_foreach");
  int want = 0;
  for (int k = 0; k < MAX_KEYS; k++)
    want += keys[k].live && keys[k].scope == TL_SCOPE_TASK && tasks[cur].val[k].bound;
  if (seen_count != want)
    fail("tl_foreach visited %d values, the model has %d (op %d)", seen_count, want, op_index);
}

static void op_name(void)
{
  struct mtask *mt = &tasks[cur];
  uint8_t b = byte();
  if (b & 1) {
    EXPECT_RC(tl_task_set_name(NULL, NULL), 0, "tl_task_set_name(NULL)");
    mt->named = 0;
  } else {
    snprintf(mt->name, sizeof mt->name, "t%d", b);
    EXPECT_RC(tl_task_set_name(NULL, mt->name), 0, "tl_task_set_name");
    mt->named = 1;
  }
  const char *now = tl_task_name(NULL);
  if (mt->named ? now == NULL || strcmp(now, mt->name) != 0 : now != NULL)
    fail("tl_task_name is %s, the model says %s (op %d)", now ? now : "NULL", mt->named ? mt->name : "NULL",
         op_index);
}

/* ---- the interpreter ---- */

enum {
  OP_CREATE, OP_DELETE, OP_GET, OP_SET, OP_UNSET, OP_BIND, OP_UNBIND, OP_SPAWN, OP_SWITCH, OP_FINISH,
  OP_LOOP_CLOSE, OP_DISC_END, OP_OWNER, OP_DEFER, OP_SINGLETON, OP_BAD_KEY, OP_FOREACH, OP_NAME, OP_COUNT
};

/* FUZZ_API_TRACE=1 prints each operation as it runs, to read a failing
 * input. */
static int trace = -1;
static const char *const op_names[] = {"create", "delete", "get", "set", "unset", "bind", "unbind", "spawn",
                                       "switch", "finish", "loop_close", "disc_end", "owner", "defer",
                                       "singleton", "bad_key", "foreach", "name"};

static void run_ops(void)
{
  if (trace < 0)
    trace = getenv("FUZZ_API_TRACE") != NULL;
  check_all();
  while (!finish_all) {
    if (!input_left()) {
      if (cur == 0)
        return;
      op_switch(0);                        /* the root cleans up */
      continue;
    }
    uint8_t op = byte() % OP_COUNT;
    int arg = byte();
    op_index++;
    if (trace)
      fprintf(stderr, "op %d in task %d: %s %d\n", op_index, cur, op_names[op], arg);
    switch (op) {
    case OP_CREATE:
      op_key_create();
      break;
    case OP_DELETE:
      op_key_delete(arg % MAX_KEYS);
      break;
    case OP_GET:
      check_key(arg % MAX_KEYS);
      break;
    case OP_SET:
      op_set(arg % MAX_KEYS, 0);
      break;
    case OP_UNSET:
      op_set(arg % MAX_KEYS, 1);
      break;
    case OP_BIND:
      op_bind(arg % MAX_KEYS);
      break;
    case OP_UNBIND:
      op_unbind();
      break;
    case OP_SPAWN:
      op_spawn(1 + arg % (MAX_TASKS - 1));
      break;
    case OP_SWITCH:
      op_switch(arg % MAX_TASKS);
      break;
    case OP_FINISH:
      if (cur != 0) {
        finished_slot = cur;
        return;
      }
      break;
    case OP_LOOP_CLOSE:
      op_loop_close();
      break;
    case OP_DISC_END:
      op_disc_end(1 + arg % 2);
      break;
    case OP_OWNER:
      owner = arg % 3;
      break;
    case OP_DEFER:
      op_defer(arg & 1);
      break;
    case OP_SINGLETON:
      op_singleton(arg % MAX_KEYS);
      break;
    case OP_BAD_KEY:
      op_bad_key();
      break;
    case OP_FOREACH:
      op_foreach();
      break;
    case OP_NAME:
      op_name();
      break;
    }
    check_all();
  }
  if (cur != 0)
    finished_slot = cur;
}

/* ---- one input ---- */

static void cleanup(void)
{
  /* Every task returns: the root resumes each one with finish_all set. */
  finish_all = 1;
  for (int t = 1; t < MAX_TASKS; t++) {
    if (tasks[t].state == FREE)
      continue;
    op_switch(t);
  }
  finish_all = 0;
  struct mtask *root = &tasks[0];
  while (root->nbinds > 0) {
    struct mbind *b = &root->binds[root->nbinds - 1];
    int want = 0;
    struct mval *mv = NULL;
    if (keys[b->key].live && keys[b->key].key == b->handle) {
      mv = scope_val(b->key);
      if (mv == NULL) {
        owner = 1;                          /* restore into some owner rather than fail */
        mv = scope_val(b->key);
      }
    }
    EXPECT_RC(tl_unbind(&b->token), want, "tl_unbind at cleanup");
    if (mv != NULL)
      *mv = b->prev;
    root->nbinds--;
  }
  /* The root's values, thread values and owners' values go now, so that
   * the next input starts clean; then every key. */
  for (int k = 0; k < MAX_KEYS; k++)
    if (keys[k].live && keys[k].scope == TL_SCOPE_TASK && !keys[k].scoped_only)
      EXPECT_RC(tl_unset(keys[k].key), 0, "tl_unset at cleanup");
  op_loop_close();
  op_disc_end(1);
  op_disc_end(2);
  for (int k = 0; k < MAX_KEYS; k++)
    if (keys[k].live)
      EXPECT_RC(tl_key_delete(keys[k].key), 0, "tl_key_delete at cleanup");
  no_events("cleanup");
  if (tl_task_set_name(NULL, NULL) != 0)
    fail("tl_task_set_name(NULL, NULL) at cleanup");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  in_data = data;
  in_size = size;
  in_pos = 0;
  op_index = 0;
  memset(keys, 0, sizeof keys);
  for (int t = 0; t < MAX_TASKS; t++) {
    free(tasks[t].stack);
    memset(&tasks[t], 0, sizeof tasks[t]);
  }
  memset(thread_val, 0, sizeof thread_val);
  memset(owner_val, 0, sizeof owner_val);
  nthread_defers = 0;
  nevents = nexpected = 0;
  cur = 0;
  owner = 0;
  tasks[0].state = RUNNING;
  run_ops();
  cleanup();
  return 0;
}
