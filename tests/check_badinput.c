/* Bad input (doc/reliability.md): every public entry point with each invalid input,
 * and the exact error the header documents for it.
 *
 * The table below has one row per call: what is passed, what must come
 * back, and, where the call must change nothing, a check of the state
 * afterwards. Every row runs in its own process (Check's fork mode) with a
 * fresh fixture: a live key bound to a known value, a deleted key, a key
 * whose deleted slot was given to a new key ("reused"), a scoped-only key,
 * a custom-scope key whose discriminator names no owner, and open scoped
 * bindings whose tokens can be forged, replayed or used out of order. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <tasklocal.h>
#include <ucontext.h>
#include <unistd.h>

/* ---- the fixture ---- */

static tl_key_t live, deleted, reused, scoped, nobody;
static int live_value, reused_value, outer_value, inner_value;
static tl_token_t outer, inner;            /* open bindings of `live`, outer first */

static void *no_owner(void *arg)
{
  (void)arg;
  return NULL;
}

static const struct tl_disc disc_nobody = {no_owner, NULL};

static void setup(void)
{
  ck_assert_int_eq(tl_key_create(&deleted, NULL), 0);
  ck_assert_int_eq(tl_set(deleted, &live_value), 0);
  ck_assert_int_eq(tl_key_delete(deleted), 0);
  /* The next key takes the deleted one's slot: same low 32 bits. */
  ck_assert_int_eq(tl_key_create(&reused, NULL), 0);
  ck_assert_uint_eq((uint32_t)reused, (uint32_t)deleted);
  ck_assert_uint_ne(reused, deleted);
  ck_assert_int_eq(tl_set(reused, &reused_value), 0);
  ck_assert_int_eq(tl_key_create(&live, NULL), 0);
  ck_assert_int_eq(tl_set(live, &live_value), 0);
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.flags = TL_KEY_SCOPED_ONLY;
  ck_assert_int_eq(tl_key_create_attr(&scoped, &a), 0);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_CUSTOM;
  a.disc = &disc_nobody;
  ck_assert_int_eq(tl_key_create_attr(&nobody, &a), 0);
}

/* Binds outer then inner on `live`. */
static void bind_two(void)
{
  ck_assert_int_eq(tl_bind(live, &outer_value, &outer), 0);
  ck_assert_int_eq(tl_bind(live, &inner_value, &inner), 0);
  ck_assert_ptr_eq(tl_get(live), &inner_value);
}

/* The state a failed call must leave: every key as the fixture made it. */
static void state_unchanged(void)
{
  void *v = NULL;
  ck_assert_int_eq(tl_lookup(live, &v), 0);
  ck_assert_ptr_eq(v, &live_value);
  ck_assert_int_eq(tl_lookup(reused, &v), 0);
  ck_assert_ptr_eq(v, &reused_value);
  ck_assert_int_eq(tl_lookup(deleted, &v), EINVAL);
  ck_assert_ptr_null(tl_get(deleted));
}

/* The same while the two bindings of bind_two are open. */
static void bindings_unchanged(void)
{
  ck_assert_ptr_eq(tl_get(live), &inner_value);
  ck_assert_int_eq(tl_unbind(&inner), 0);
  ck_assert_ptr_eq(tl_get(live), &outer_value);
  ck_assert_int_eq(tl_unbind(&outer), 0);
  ck_assert_ptr_eq(tl_get(live), &live_value);
}

/* Keys that are never valid. The random one has a plausible slot and a
 * generation no key ever had; the all-ones one hits no slot at all. */
static tl_key_t bad_key(int which)
{
  switch (which) {
  case 0:
    return 0;
  case 1:
    return deleted;
  case 2:
    return (tl_key_t)0x5eed0000u << 32 | (uint32_t)live;
  case 3:
    return UINT64_MAX;
  case 4:
    return (uint32_t)live;                 /* generation 0: marks a free slot */
  default:
    return (tl_key_t)0x12345678u << 32 | 0xabcdefu;
  }
}

#define NBAD 6

static const char *const bad_name[NBAD] = {"zero", "deleted", "random generation", "all ones", "generation 0",
                                           "random slot"};

/* ---- rows ---- */

static int fn_foreach(tl_key_t key, const char *name, void *value, void *arg)
{
  (void)key;
  (void)name;
  (void)value;
  (void)arg;
  return 0;
}

static void destroy_nothing(void *v)
{
  (void)v;
}

static void *make_nothing(void *arg)
{
  (void)arg;
  return &live_value;
}

static void deferred_nothing(void *arg)
{
  (void)arg;
}

static void *copy_nothing(const void *v)
{
  return (void *)v;
}

typedef int (*row_fn)(tl_key_t bad);

struct row {
  const char *what;
  row_fn call;
  int expect;
  int uses_key;                            /* called once with each bad key */
  void (*after)(void);                     /* the state to check afterwards, or NULL */
};

static int r_create_null(tl_key_t k)
{
  (void)k;
  return tl_key_create(NULL, destroy_nothing);
}

static int attr_call(tl_key_attr_t a)
{
  tl_key_t k = 0;
  int rc = tl_key_create_attr(&k, &a);
  if (rc != 0)
    ck_assert_uint_eq(k, 0);               /* nothing written on failure */
  return rc;
}

static int r_attr_null_key(tl_key_t k)
{
  (void)k;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  return tl_key_create_attr(NULL, &a);
}

static int r_attr_name_taken(tl_key_t k)
{
  (void)k;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.name = "badinput.taken";
  tl_key_t first;
  ck_assert_int_eq(tl_key_create_attr(&first, &a), 0);
  int rc = attr_call(a);
  tl_key_t found;
  ck_assert_int_eq(tl_key_find(&found, "badinput.taken"), 0);
  ck_assert_uint_eq(found, first);
  return rc;
}

static int r_attr_name_of_deleted_key(tl_key_t k)
{
  (void)k;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.name = "badinput.again";
  tl_key_t first, second;
  ck_assert_int_eq(tl_key_create_attr(&first, &a), 0);
  ck_assert_int_eq(tl_key_delete(first), 0);
  /* A deleted key's name is free again: not an error. */
  int rc = tl_key_create_attr(&second, &a);
  ck_assert_uint_ne(first, second);
  return rc;
}

static int r_find_null_key(tl_key_t k)
{
  (void)k;
  return tl_key_find(NULL, "x");
}

static int r_find_null_name(tl_key_t k)
{
  (void)k;
  tl_key_t found;
  return tl_key_find(&found, NULL);
}

static int r_find_absent(tl_key_t k)
{
  (void)k;
  tl_key_t found = 0;
  int rc = tl_key_find(&found, "badinput.absent");
  ck_assert_uint_eq(found, 0);
  return rc;
}

static int r_delete(tl_key_t k)
{
  return tl_key_delete(k);
}

static int r_get(tl_key_t k)
{
  return tl_get(k) == NULL ? 0 : -1;
}

static int r_lookup(tl_key_t k)
{
  void *v = &live_value;
  return tl_lookup(k, &v);
}

static int r_lookup_null(tl_key_t k)
{
  (void)k;
  return tl_lookup(live, NULL);
}

static int r_set(tl_key_t k)
{
  return tl_set(k, &inner_value);
}

static int r_unset(tl_key_t k)
{
  return tl_unset(k);
}

static int r_set_scoped(tl_key_t k)
{
  (void)k;
  return tl_set(scoped, &inner_value);
}

static int r_unset_scoped(tl_key_t k)
{
  (void)k;
  tl_token_t t;
  ck_assert_int_eq(tl_bind(scoped, &outer_value, &t), 0);
  int rc = tl_unset(scoped);
  ck_assert_ptr_eq(tl_get(scoped), &outer_value);
  ck_assert_int_eq(tl_unbind(&t), 0);
  return rc;
}

static int r_bind(tl_key_t k)
{
  tl_token_t t;
  memset(&t, 0x5a, sizeof t);
  return tl_bind(k, &inner_value, &t);
}

/* TL_WITH whose binding cannot be made skips its block and sets errno. */
static int with_call(tl_key_t k)
{
  int ran = 0;
  errno = 0;
  TL_WITH(k, &inner_value)
  {
    ran = 1;
  }
  ck_assert_int_eq(ran, 0);
  return errno;
}

static int r_with(tl_key_t k)
{
  return with_call(k);
}

static int r_with_nobody(tl_key_t k)
{
  (void)k;
  return with_call(nobody);
}

static int r_bind_null_token(tl_key_t k)
{
  (void)k;
  return tl_bind(live, &inner_value, NULL);
}

static int r_unbind_null(tl_key_t k)
{
  (void)k;
  return tl_unbind(NULL);
}

static int r_unbind_zero(tl_key_t k)
{
  (void)k;
  bind_two();
  tl_token_t t;
  memset(&t, 0, sizeof t);
  int rc = tl_unbind(&t);
  bindings_unchanged();
  return rc;
}

static int r_unbind_random(tl_key_t k)
{
  (void)k;
  bind_two();
  int rc = 0;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 1000; i++) {
    tl_token_t t;
    for (int j = 0; j < 4; j++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      t.opaque[j] = x;
    }
    rc = tl_unbind(&t);
    if (rc != EINVAL)
      break;
  }
  bindings_unchanged();
  return rc;
}

/* A real token with one word changed: the id, the sequence number, the
 * key or the check. */
static int forged(int word, uint64_t delta)
{
  bind_two();
  tl_token_t t = inner;
  t.opaque[word] += delta;
  int rc = tl_unbind(&t);
  bindings_unchanged();
  return rc;
}

static int r_unbind_forged_id(tl_key_t k)
{
  (void)k;
  return forged(0, 1);
}

static int r_unbind_forged_seq(tl_key_t k)
{
  (void)k;
  return forged(1, 1);
}

static int r_unbind_forged_key(tl_key_t k)
{
  (void)k;
  return forged(2, (uint64_t)1 << 32);
}

static int r_unbind_forged_check(tl_key_t k)
{
  (void)k;
  return forged(3, 1);
}

static int r_unbind_out_of_order(tl_key_t k)
{
  (void)k;
  bind_two();
  tl_token_t copy = outer;
  int rc = tl_unbind(&copy);
  bindings_unchanged();
  return rc;
}

static int r_unbind_twice(tl_key_t k)
{
  (void)k;
  bind_two();
  tl_token_t copy = inner;
  ck_assert_int_eq(tl_unbind(&inner), 0);
  int rc = tl_unbind(&copy);               /* a replayed token */
  ck_assert_ptr_eq(tl_get(live), &outer_value);
  ck_assert_int_eq(tl_unbind(&outer), 0);
  ck_assert_ptr_eq(tl_get(live), &live_value);
  return rc;
}

static int r_unbind_replayed_after_rebind(tl_key_t k)
{
  (void)k;
  /* The same key bound again at the same depth: the old token must not
   * undo the new binding. */
  tl_token_t first, second;
  ck_assert_int_eq(tl_bind(live, &outer_value, &first), 0);
  tl_token_t copy = first;
  ck_assert_int_eq(tl_unbind(&first), 0);
  ck_assert_int_eq(tl_bind(live, &inner_value, &second), 0);
  int rc = tl_unbind(&copy);
  ck_assert_ptr_eq(tl_get(live), &inner_value);
  ck_assert_int_eq(tl_unbind(&second), 0);
  ck_assert_ptr_eq(tl_get(live), &live_value);
  return rc;
}

/* ---- a token used in another task or thread ---- */

static ucontext_t main_ctx, co_ctx;
static char co_stack[64 * 1024] __attribute__((aligned(16)));
static int co_rc;

static void co_unbinds_parents(void)
{
  tl_token_t copy = inner;
  co_rc = tl_unbind(&copy);
}

static int r_unbind_other_task(tl_key_t k)
{
  (void)k;
  bind_two();
  tl_test_context(&co_ctx, co_stack, sizeof co_stack, co_unbinds_parents, &main_ctx);
  ck_assert_int_eq(swapcontext(&main_ctx, &co_ctx), 0);
  bindings_unchanged();
  return co_rc;
}

static void *thread_unbinds(void *arg)
{
  tl_token_t copy = *(tl_token_t *)arg;
  return (void *)(intptr_t)tl_unbind(&copy);
}

static int r_unbind_other_thread(tl_key_t k)
{
  (void)k;
  bind_two();
  pthread_t t;
  void *res;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_unbinds, &inner), 0);
  ck_assert_int_eq(pthread_join(t, &res), 0);
  bindings_unchanged();
  return (int)(intptr_t)res;
}

/* A token of a task that has finished, used by the root. */
static tl_token_t finished_token;

static void co_binds_and_returns(void)
{
  ck_assert_int_eq(tl_bind(live, &inner_value, &finished_token), 0);
}

static int r_unbind_finished_task(tl_key_t k)
{
  (void)k;
  tl_test_context(&co_ctx, co_stack, sizeof co_stack, co_binds_and_returns, &main_ctx);
  ck_assert_int_eq(swapcontext(&main_ctx, &co_ctx), 0);
  return tl_unbind(&finished_token);
}

static int r_bind_scoped_ok(tl_key_t k)
{
  (void)k;
  /* The allowed way to set a scoped-only key, as a control row. */
  tl_token_t t;
  int rc = tl_bind(scoped, &inner_value, &t);
  ck_assert_int_eq(tl_unbind(&t), 0);
  return rc;
}

/* ---- custom scope with no owner ---- */

static int r_nobody_get(tl_key_t k)
{
  (void)k;
  return tl_get(nobody) == NULL ? 0 : -1;
}

static int r_nobody_set(tl_key_t k)
{
  (void)k;
  return tl_set(nobody, &inner_value);
}

static int r_nobody_lookup(tl_key_t k)
{
  (void)k;
  void *v;
  return tl_lookup(nobody, &v);
}

static int r_nobody_unset(tl_key_t k)
{
  (void)k;
  return tl_unset(nobody);
}

static int r_nobody_bind(tl_key_t k)
{
  (void)k;
  tl_token_t t;
  return tl_bind(nobody, &inner_value, &t);
}

static int r_nobody_singleton(tl_key_t k)
{
  (void)k;
  errno = 0;
  void *v = tl_singleton(nobody, make_nothing, NULL);
  ck_assert_ptr_null(v);
  return errno;
}

static int r_disc_end_null_disc(tl_key_t k)
{
  (void)k;
  static int owner;
  return tl_disc_end(NULL, &owner);
}

static int r_disc_end_null_owner(tl_key_t k)
{
  (void)k;
  return tl_disc_end(&disc_nobody, NULL);
}

static int r_disc_end_unknown(tl_key_t k)
{
  (void)k;
  /* An owner that never had values: nothing to end, not an error. */
  static const struct tl_disc other = {no_owner, NULL};
  static int owner;
  return tl_disc_end(&other, &owner);
}

/* ---- singletons and deferred calls ---- */

static int r_singleton(tl_key_t k)
{
  errno = 0;
  void *v = tl_singleton(k, make_nothing, NULL);
  ck_assert_ptr_null(v);
  return errno;
}

static int r_singleton_null_make(tl_key_t k)
{
  (void)k;
  errno = 0;
  tl_key_t fresh;
  ck_assert_int_eq(tl_key_create(&fresh, NULL), 0);
  void *v = tl_singleton(fresh, NULL, NULL);
  ck_assert_ptr_null(v);
  return errno;
}

static tl_key_t reentrant_key;
static void *reentrant_result = &live_value;
static int reentrant_errno;

static void *make_reentrant(void *arg)
{
  (void)arg;
  errno = 0;
  reentrant_result = tl_singleton(reentrant_key, make_reentrant, NULL);
  reentrant_errno = errno;
  return &outer_value;
}

static int r_singleton_reentrant(tl_key_t k)
{
  (void)k;
  ck_assert_int_eq(tl_key_create(&reentrant_key, NULL), 0);
  ck_assert_ptr_eq(tl_singleton(reentrant_key, make_reentrant, NULL), &outer_value);
  ck_assert_ptr_null(reentrant_result);
  return reentrant_errno;
}

static int r_defer_scope_custom(tl_key_t k)
{
  (void)k;
  return tl_defer(TL_SCOPE_CUSTOM, deferred_nothing, NULL);
}

static int r_defer_scope_neg(tl_key_t k)
{
  (void)k;
  return tl_defer(-1, deferred_nothing, NULL);
}

static int r_defer_scope_high(tl_key_t k)
{
  (void)k;
  return tl_defer(99, deferred_nothing, NULL);
}

static int r_defer_null_fn(tl_key_t k)
{
  (void)k;
  return tl_defer(TL_SCOPE_TASK, NULL, NULL);
}

static int r_defer_thread_null_fn(tl_key_t k)
{
  (void)k;
  return tl_defer(TL_SCOPE_THREAD, NULL, NULL);
}

/* ---- tasks and diagnostics ---- */

static int r_task_id_null(tl_key_t k)
{
  (void)k;
  return tl_task_id(NULL) == 0 ? 0 : -1;
}

static int r_foreach_null_fn(tl_key_t k)
{
  (void)k;
  return tl_foreach(NULL, NULL, NULL);
}

static int r_foreach_current(tl_key_t k)
{
  (void)k;
  return tl_foreach(tl_current(), fn_foreach, NULL);
}

static int r_name_null_clears(tl_key_t k)
{
  (void)k;
  ck_assert_int_eq(tl_task_set_name(NULL, "badinput"), 0);
  ck_assert_str_eq(tl_task_name(NULL), "badinput");
  int rc = tl_task_set_name(NULL, NULL);
  ck_assert_ptr_null(tl_task_name(NULL));
  return rc;
}

static int r_dump_negative(tl_key_t k)
{
  (void)k;
  return tl_dump(-1);
}

static int r_dump_int_min(tl_key_t k)
{
  (void)k;
  return tl_dump(INT32_MIN);
}

static int r_dump_closed(tl_key_t k)
{
  (void)k;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  close(fd);
  return tl_dump(fd);
}

static int r_dump_read_only(tl_key_t k)
{
  (void)k;
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  int rc = tl_dump(fd);
  close(fd);
  return rc;
}

static int r_dump_ok(tl_key_t k)
{
  (void)k;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  ck_assert_int_ge(fd, 0);
  int rc = tl_dump(fd);
  close(fd);
  return rc;
}

static const struct row rows[] = {
    {"tl_key_create(NULL, destroy)", r_create_null, EINVAL, 0, state_unchanged},
    {"tl_key_create_attr(NULL, attr)", r_attr_null_key, EINVAL, 0, state_unchanged},
    {"attr.name taken", r_attr_name_taken, EEXIST, 0, state_unchanged},
    {"attr.name of a deleted key", r_attr_name_of_deleted_key, 0, 0, state_unchanged},
    {"tl_key_find(NULL, name)", r_find_null_key, EINVAL, 0, NULL},
    {"tl_key_find(&key, NULL)", r_find_null_name, EINVAL, 0, NULL},
    {"tl_key_find of an absent name", r_find_absent, ENOENT, 0, NULL},
    {"tl_key_delete(bad key)", r_delete, EINVAL, 1, state_unchanged},
    {"tl_get(bad key) is NULL", r_get, 0, 1, state_unchanged},
    {"tl_lookup(bad key)", r_lookup, EINVAL, 1, state_unchanged},
    {"tl_lookup(key, NULL)", r_lookup_null, EINVAL, 0, state_unchanged},
    {"tl_set(bad key)", r_set, EINVAL, 1, state_unchanged},
    {"tl_unset(bad key)", r_unset, EINVAL, 1, state_unchanged},
    {"tl_set(scoped-only key)", r_set_scoped, EPERM, 0, state_unchanged},
    {"tl_unset(scoped-only key)", r_unset_scoped, EPERM, 0, state_unchanged},
    {"tl_bind(scoped-only key) is allowed", r_bind_scoped_ok, 0, 0, state_unchanged},
    {"tl_bind(bad key)", r_bind, EINVAL, 1, state_unchanged},
    {"TL_WITH(bad key) errno", r_with, EINVAL, 1, state_unchanged},
    {"TL_WITH(custom key, no owner) errno", r_with_nobody, ESRCH, 0, state_unchanged},
    {"tl_bind(key, value, NULL)", r_bind_null_token, EINVAL, 0, state_unchanged},
    {"tl_unbind(NULL)", r_unbind_null, EINVAL, 0, state_unchanged},
    {"tl_unbind(zero token)", r_unbind_zero, EINVAL, 0, state_unchanged},
    {"tl_unbind(random tokens)", r_unbind_random, EINVAL, 0, state_unchanged},
    {"tl_unbind(token, id changed)", r_unbind_forged_id, EINVAL, 0, state_unchanged},
    {"tl_unbind(token, sequence changed)", r_unbind_forged_seq, EINVAL, 0, state_unchanged},
    {"tl_unbind(token, key changed)", r_unbind_forged_key, EINVAL, 0, state_unchanged},
    {"tl_unbind(token, check changed)", r_unbind_forged_check, EINVAL, 0, state_unchanged},
    {"tl_unbind out of order", r_unbind_out_of_order, EINVAL, 0, state_unchanged},
    {"tl_unbind twice (replayed token)", r_unbind_twice, EINVAL, 0, state_unchanged},
    {"tl_unbind of an old token after a rebind", r_unbind_replayed_after_rebind, EINVAL, 0, state_unchanged},
    {"tl_unbind in another task", r_unbind_other_task, EINVAL, 0, state_unchanged},
    {"tl_unbind in another thread", r_unbind_other_thread, EINVAL, 0, state_unchanged},
    {"tl_unbind of a finished task's token", r_unbind_finished_task, EINVAL, 0, state_unchanged},
    {"custom key, no owner: tl_get is NULL", r_nobody_get, 0, 0, state_unchanged},
    {"custom key, no owner: tl_set", r_nobody_set, ESRCH, 0, state_unchanged},
    {"custom key, no owner: tl_lookup", r_nobody_lookup, ESRCH, 0, state_unchanged},
    {"custom key, no owner: tl_unset", r_nobody_unset, ESRCH, 0, state_unchanged},
    {"custom key, no owner: tl_bind", r_nobody_bind, ESRCH, 0, state_unchanged},
    {"custom key, no owner: tl_singleton errno", r_nobody_singleton, ESRCH, 0, state_unchanged},
    {"tl_disc_end(NULL, owner)", r_disc_end_null_disc, EINVAL, 0, state_unchanged},
    {"tl_disc_end(disc, NULL)", r_disc_end_null_owner, EINVAL, 0, state_unchanged},
    {"tl_disc_end of an owner without values", r_disc_end_unknown, 0, 0, state_unchanged},
    {"tl_singleton(bad key) errno", r_singleton, EINVAL, 1, state_unchanged},
    {"tl_singleton(key, NULL make) errno", r_singleton_null_make, EINVAL, 0, state_unchanged},
    {"tl_singleton re-entrant errno", r_singleton_reentrant, EDEADLK, 0, state_unchanged},
    {"tl_defer(TL_SCOPE_CUSTOM)", r_defer_scope_custom, EINVAL, 0, state_unchanged},
    {"tl_defer(-1)", r_defer_scope_neg, EINVAL, 0, state_unchanged},
    {"tl_defer(99)", r_defer_scope_high, EINVAL, 0, state_unchanged},
    {"tl_defer(TL_SCOPE_TASK, NULL)", r_defer_null_fn, EINVAL, 0, state_unchanged},
    {"tl_defer(TL_SCOPE_THREAD, NULL)", r_defer_thread_null_fn, EINVAL, 0, state_unchanged},
    {"tl_task_id(NULL) is 0", r_task_id_null, 0, 0, NULL},
    {"tl_foreach(NULL, NULL)", r_foreach_null_fn, EINVAL, 0, state_unchanged},
    {"tl_foreach(current, fn) control", r_foreach_current, 0, 0, state_unchanged},
    {"tl_task_set_name(NULL, NULL) clears", r_name_null_clears, 0, 0, state_unchanged},
    {"tl_dump(-1)", r_dump_negative, EBADF, 0, state_unchanged},
    {"tl_dump(INT_MIN)", r_dump_int_min, EBADF, 0, state_unchanged},
    {"tl_dump(closed fd)", r_dump_closed, EBADF, 0, state_unchanged},
    {"tl_dump(fd open read-only)", r_dump_read_only, EBADF, 0, state_unchanged},
    {"tl_dump(/dev/null) control", r_dump_ok, 0, 0, state_unchanged},
};

#define NROWS ((int)(sizeof rows / sizeof rows[0]))

START_TEST(test_row)
{
  const struct row *r = &rows[_i];
  int n = r->uses_key ? NBAD : 1;
  for (int b = 0; b < n; b++) {
    tl_key_t k = r->uses_key ? bad_key(b) : 0;
    int rc = r->call(k);
    ck_assert_msg(rc == r->expect, "%s%s%s: returned %d (%s), the header documents %d (%s)", r->what,
                  r->uses_key ? " with a key that is " : "", r->uses_key ? bad_name[b] : "", rc,
                  rc > 0 ? strerror(rc) : "-", r->expect, r->expect > 0 ? strerror(r->expect) : "success");
    if (r->after != NULL)
      r->after();
  }
}
END_TEST

/* Attributes tl_key_create_attr refuses with EINVAL, leaving the key
 * unwritten. TL_KEY_ATTR_INIT is all zeros (task scope, no inheritance),
 * so each row names only what it changes. */
static const struct tl_disc disc_without_current = {NULL, NULL};

static const struct {
  const char *what;
  tl_key_attr_t attr;
} bad_attrs[] = {
    {"attr.scope = 3", {.scope = 3}},
    {"attr.scope = -1", {.scope = -1}},
    {"attr.inherit = 3", {.inherit = 3, .copy = copy_nothing}},
    {"attr.inherit = -1", {.inherit = -1}},
    {"TL_INHERIT_COPY without copy", {.inherit = TL_INHERIT_COPY}},
    {"TL_SCOPE_CUSTOM without disc", {.scope = TL_SCOPE_CUSTOM}},
    {"TL_SCOPE_CUSTOM with disc->current NULL", {.scope = TL_SCOPE_CUSTOM, .disc = &disc_without_current}},
    {"TL_SCOPE_THREAD with TL_INHERIT_SHARE", {.scope = TL_SCOPE_THREAD, .inherit = TL_INHERIT_SHARE}},
    {"TL_SCOPE_CUSTOM with TL_INHERIT_COPY",
     {.scope = TL_SCOPE_CUSTOM, .disc = &disc_nobody, .inherit = TL_INHERIT_COPY, .copy = copy_nothing}},
    {"attr.flags = 0x2", {.flags = 0x2}},
    {"attr.flags with bit 31", {.flags = TL_KEY_SCOPED_ONLY | 0x80000000u}},
    {"attr.name empty", {.name = ""}},
};

#define NBAD_ATTRS ((int)(sizeof bad_attrs / sizeof bad_attrs[0]))

START_TEST(test_bad_attr)
{
  int rc = attr_call(bad_attrs[_i].attr);
  ck_assert_msg(rc == EINVAL, "%s: returned %d (%s), the header documents %d (%s)", bad_attrs[_i].what, rc,
                rc > 0 ? strerror(rc) : "-", EINVAL, strerror(EINVAL));
}
END_TEST

/* The reused key: a new key in a deleted key's slot sees none of the old
 * key's values, and the old handle reaches none of the new key's. */
START_TEST(test_reused_slot)
{
  void *v;
  ck_assert_ptr_eq(tl_get(reused), &reused_value);
  ck_assert_int_eq(tl_set(deleted, &inner_value), EINVAL);
  ck_assert_ptr_eq(tl_get(reused), &reused_value);
  ck_assert_int_eq(tl_lookup(deleted, &v), EINVAL);
  ck_assert_int_eq(tl_key_delete(deleted), EINVAL);
  ck_assert_ptr_eq(tl_get(reused), &reused_value);
  /* Delete and reuse the slot again: the second-generation handle goes
   * stale too, and the third key starts unbound. */
  ck_assert_int_eq(tl_key_delete(reused), 0);
  tl_key_t third;
  ck_assert_int_eq(tl_key_create(&third, NULL), 0);
  ck_assert_uint_eq((uint32_t)third, (uint32_t)reused);
  ck_assert_int_eq(tl_lookup(third, &v), ENOENT);
  ck_assert_ptr_null(tl_get(reused));
  ck_assert_int_eq(tl_lookup(reused, &v), EINVAL);
}
END_TEST

/* ---- tl_set inside a destructor at task end (doc/lifetime.md) ---- */

static tl_key_t k_a, k_b;
static int rounds_a, rounds_b, set_rc_a = -1, set_rc_b = -1;

static void destroy_a(void *v)
{
  rounds_a++;
  set_rc_a = tl_set(k_a, v);               /* binds again: one more round, 4 in all */
}

static void destroy_b(void *v)
{
  rounds_b++;
  /* Binds another key in the ending task: destroyed in the next round. */
  if (rounds_b == 1)
    set_rc_b = tl_set(k_a, v);
}

static void co_sets_both(void)
{
  ck_assert_int_eq(tl_set(k_b, &inner_value), 0);
}

START_TEST(test_set_in_destructor)
{
  ck_assert_int_eq(tl_key_create(&k_a, destroy_a), 0);
  ck_assert_int_eq(tl_key_create(&k_b, destroy_b), 0);
  tl_test_context(&co_ctx, co_stack, sizeof co_stack, co_sets_both, &main_ctx);
  ck_assert_int_eq(swapcontext(&main_ctx, &co_ctx), 0);
  ck_assert_int_eq(rounds_b, 1);
  ck_assert_int_eq(set_rc_b, 0);
  /* Round 1 destroys b, which binds a; a is destroyed in the same round
   * or the next (whichever entry comes first in the table), and binds
   * itself again each time; after the 4th round what is left is dropped. */
  ck_assert_int_ge(rounds_a, 3);
  ck_assert_int_le(rounds_a, 4);
  ck_assert_int_eq(set_rc_a, 0);
  /* Nothing the destructors bound leaked into the root. */
  ck_assert_ptr_null(tl_get(k_a));
  ck_assert_ptr_null(tl_get(k_b));
  state_unchanged();
}
END_TEST

/* The same at thread exit, on the thread's root task. */
static void *thread_sets_both(void *arg)
{
  (void)arg;
  ck_assert_int_eq(tl_set(k_b, &inner_value), 0);
  return NULL;
}

START_TEST(test_set_in_destructor_thread_exit)
{
  ck_assert_int_eq(tl_key_create(&k_a, destroy_a), 0);
  ck_assert_int_eq(tl_key_create(&k_b, destroy_b), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_sets_both, NULL), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(rounds_b, 1);
  ck_assert_int_ge(rounds_a, 3);
  ck_assert_int_le(rounds_a, 4);
  ck_assert_ptr_null(tl_get(k_a));
  state_unchanged();
}
END_TEST

static Suite *badinput_suite(void)
{
  Suite *s = suite_create("badinput");
  TCase *tc = tcase_create("table");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_loop_test(tc, test_row, 0, NROWS);
  tcase_add_loop_test(tc, test_bad_attr, 0, NBAD_ATTRS);
  tcase_add_test(tc, test_reused_slot);
  tcase_add_test(tc, test_set_in_destructor);
  tcase_add_test(tc, test_set_in_destructor_thread_exit);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(badinput_suite());
}
