/* Keys and values: creation, names, deletion and stale
 * handles, get/lookup/set/unset, validation of attributes and of made-up
 * keys, destructors at thread exit, and no fixed limit on keys. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <tasklocal.h>

START_TEST(test_create_get_set)
{
  tl_key_t k = 0;
  ck_assert_int_eq(tl_key_create(&k, NULL), 0);
  ck_assert_uint_ne(k, 0);
  ck_assert_ptr_null(tl_get(k));
  int a, b;
  ck_assert_int_eq(tl_set(k, &a), 0);
  ck_assert_ptr_eq(tl_get(k), &a);
  ck_assert_int_eq(tl_set(k, &b), 0);
  ck_assert_ptr_eq(tl_get(k), &b);
  ck_assert_int_eq(tl_key_delete(k), 0);
}
END_TEST

START_TEST(test_lookup_tells_null_from_unbound)
{
  tl_key_t k;
  void *v = (void *)1;
  ck_assert_int_eq(tl_key_create(&k, NULL), 0);
  ck_assert_int_eq(tl_lookup(k, &v), ENOENT);
  ck_assert_int_eq(tl_set(k, NULL), 0);
  ck_assert_int_eq(tl_lookup(k, &v), 0);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(tl_unset(k), 0);
  ck_assert_int_eq(tl_lookup(k, &v), ENOENT);
  ck_assert_int_eq(tl_unset(k), 0); /* unbinding an unbound key is fine */
  ck_assert_int_eq(tl_lookup(k, NULL), EINVAL);
}
END_TEST

static int destroyed;
static void count_destroy(void *v)
{
  (void)v;
  destroyed++;
}

START_TEST(test_set_does_not_destroy_previous)
{
  tl_key_t k;
  int a, b;
  destroyed = 0;
  ck_assert_int_eq(tl_key_create(&k, count_destroy), 0);
  ck_assert_int_eq(tl_set(k, &a), 0);
  ck_assert_int_eq(tl_set(k, &b), 0);
  ck_assert_int_eq(tl_unset(k), 0);
  ck_assert_int_eq(destroyed, 0);
  ck_assert_int_eq(tl_set(k, &a), 0);
  ck_assert_int_eq(tl_key_delete(k), 0); /* dropped without destructor */
  ck_assert_int_eq(destroyed, 0);
}
END_TEST

START_TEST(test_invalid_keys)
{
  tl_key_t bad[] = {0, 1, 0xffffffffu, 0xdeadbeefcafef00dull, UINT64_MAX, 1ull << 32, (7ull << 32) | 5};
  void *v;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ck_assert_ptr_null(tl_get(bad[i]));
    ck_assert_int_eq(tl_set(bad[i], &v), EINVAL);
    ck_assert_int_eq(tl_lookup(bad[i], &v), EINVAL);
    ck_assert_int_eq(tl_unset(bad[i]), EINVAL);
    ck_assert_int_eq(tl_key_delete(bad[i]), EINVAL);
  }
  ck_assert_int_eq(tl_key_create(NULL, NULL), EINVAL);
  ck_assert_int_eq(tl_key_create_attr(NULL, NULL), EINVAL);
}
END_TEST

START_TEST(test_deleted_key_stays_invalid)
{
  tl_key_t k1, k2;
  int a, b;
  ck_assert_int_eq(tl_key_create(&k1, NULL), 0);
  ck_assert_int_eq(tl_set(k1, &a), 0);
  ck_assert_int_eq(tl_key_delete(k1), 0);
  ck_assert_ptr_null(tl_get(k1));
  ck_assert_int_eq(tl_key_delete(k1), EINVAL);
  /* The slot is reused by the next key; the old handle must not see it. */
  ck_assert_int_eq(tl_key_create(&k2, NULL), 0);
  ck_assert_uint_ne(k1, k2);
  ck_assert_uint_eq((uint32_t)k1, (uint32_t)k2);
  ck_assert_ptr_null(tl_get(k2)); /* the old value is not inherited by the new key */
  ck_assert_int_eq(tl_set(k2, &b), 0);
  ck_assert_ptr_null(tl_get(k1));
  ck_assert_int_eq(tl_set(k1, &a), EINVAL);
  ck_assert_ptr_eq(tl_get(k2), &b);
  ck_assert_int_eq(tl_key_delete(k2), 0);
}
END_TEST

START_TEST(test_names)
{
  tl_key_t k, found, other;
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  char name[32];
  strcpy(name, "request_id");
  attr.name = name;
  ck_assert_int_eq(tl_key_create_attr(&k, &attr), 0);
  strcpy(name, "clobbered"); /* the library keeps its own copy */
  ck_assert_int_eq(tl_key_find(&found, "request_id"), 0);
  ck_assert_uint_eq(found, k);
  attr.name = "request_id";
  ck_assert_int_eq(tl_key_create_attr(&other, &attr), EEXIST);
  ck_assert_int_eq(tl_key_find(&found, "clobbered"), ENOENT);
  ck_assert_int_eq(tl_key_find(NULL, "request_id"), EINVAL);
  ck_assert_int_eq(tl_key_find(&found, NULL), EINVAL);
  ck_assert_int_eq(tl_key_delete(k), 0);
  ck_assert_int_eq(tl_key_find(&found, "request_id"), ENOENT);
  ck_assert_int_eq(tl_key_create_attr(&other, &attr), 0);
  ck_assert_int_eq(tl_key_find(&found, "request_id"), 0);
  ck_assert_uint_eq(found, other);
  ck_assert_int_eq(tl_key_delete(other), 0);
}
END_TEST

static void *dummy_copy(const void *v) { return (void *)v; }
static void *dummy_current(void *arg) { return arg; }

START_TEST(test_attr_validation)
{
  tl_key_t k;
  struct tl_disc disc = {dummy_current, NULL};
  struct tl_disc no_fn = {NULL, NULL};
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = 7;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a.scope = -1;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.inherit = 3;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a.inherit = TL_INHERIT_COPY; /* without copy */
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_CUSTOM; /* without disc */
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a.disc = &no_fn;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.flags = 0x80;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_THREAD;
  a.inherit = TL_INHERIT_SHARE;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a.scope = TL_SCOPE_CUSTOM;
  a.disc = &disc;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.name = "";
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL);
  /* Every valid combination is accepted. */
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.inherit = TL_INHERIT_COPY;
  a.copy = dummy_copy;
  a.flags = TL_KEY_SCOPED_ONLY;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), 0);
  ck_assert_int_eq(tl_key_delete(k), 0);
  a = (tl_key_attr_t)TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_CUSTOM;
  a.disc = &disc;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), 0);
  ck_assert_int_eq(tl_key_delete(k), 0);
  /* NULL attributes mean the defaults. */
  ck_assert_int_eq(tl_key_create_attr(&k, NULL), 0);
  ck_assert_int_eq(tl_key_delete(k), 0);
}
END_TEST

START_TEST(test_million_keys)
{
  enum { N = 1000000 };
  tl_key_t *keys = malloc(N * sizeof *keys);
  ck_assert_ptr_nonnull(keys);
  for (uintptr_t i = 0; i < N; i++) {
    ck_assert_int_eq(tl_key_create(&keys[i], NULL), 0);
    ck_assert_int_eq(tl_set(keys[i], (void *)(i + 1)), 0);
  }
  for (uintptr_t i = 0; i < N; i++)
    ck_assert_ptr_eq(tl_get(keys[i]), (void *)(i + 1));
  for (uintptr_t i = 0; i < N; i++)
    ck_assert_int_eq(tl_key_delete(keys[i]), 0);
  for (uintptr_t i = 0; i < N; i += 9973)
    ck_assert_ptr_null(tl_get(keys[i]));
  free(keys);
}
END_TEST

/* The value tables against a model: random binds, unbinds and key
 * deletions, so that a table grows past the small sizes, fills with
 * removed entries and is rebuilt, and key slots come back with new
 * generations while old values of theirs are still in the table. */
enum { MODEL_KEYS = 40, MODEL_STEPS = 200000 };

struct model {
  tl_key_t key;
  int bound;
  void *value;
};

static int count_bound(tl_key_t key, const char *name, void *value, void *arg)
{
  (void)key;
  (void)name;
  (void)value;
  (*(int *)arg)++;
  return 0;
}

static void model_check(const struct model *m)
{
  void *v = &v;
  int err = tl_lookup(m->key, &v);
  ck_assert_int_eq(err, m->bound ? 0 : ENOENT);
  if (m->bound)
    ck_assert_ptr_eq(v, m->value);
  ck_assert_ptr_eq(tl_get(m->key), m->bound ? m->value : NULL);
}

static void model_run(int scope)
{
  struct model m[MODEL_KEYS];
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.scope = scope;
  for (int i = 0; i < MODEL_KEYS; i++) {
    ck_assert_int_eq(tl_key_create_attr(&m[i].key, &attr), 0);
    m[i].bound = 0;
  }
  uint64_t x = 88172645463325252ull;
  for (int step = 0; step < MODEL_STEPS; step++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    /* Mostly the first keys, so that the number bound moves around the
     * sizes where a table is replaced. */
    struct model *k = &m[(x & 0xff) % ((x >> 8) % 4 == 0 ? MODEL_KEYS : 12)];
    switch ((x >> 16) % 16) {
    case 0:
      ck_assert_int_eq(tl_key_delete(k->key), 0);
      ck_assert_ptr_null(tl_get(k->key));
      ck_assert_int_eq(tl_key_create_attr(&k->key, &attr), 0);
      k->bound = 0;
      break;
    case 1: case 2: case 3: case 4: case 5:
      ck_assert_int_eq(tl_unset(k->key), 0);
      k->bound = 0;
      break;
    default:
      k->value = (void *)(uintptr_t)(x >> 20);
      ck_assert_int_eq(tl_set(k->key, k->value), 0);
      k->bound = 1;
      break;
    }
    model_check(k);
    if (step % 1000 == 0) {
      int bound = 0, seen = 0;
      for (int i = 0; i < MODEL_KEYS; i++) {
        model_check(&m[i]);
        bound += m[i].bound;
      }
      if (scope == TL_SCOPE_TASK) {
        ck_assert_int_eq(tl_foreach(NULL, count_bound, &seen), 0);
        ck_assert_int_eq(seen, bound);
      }
    }
  }
  for (int i = 0; i < MODEL_KEYS; i++)
    ck_assert_int_eq(tl_key_delete(m[i].key), 0);
}

START_TEST(test_values_model)
{
  model_run(TL_SCOPE_TASK);
  model_run(TL_SCOPE_THREAD);
}
END_TEST

/* Destructors at thread exit, with rounds when they bind values again. */
static tl_key_t rk;
static int rounds_seen;
static void rebinding_destroy(void *v)
{
  rounds_seen++;
  if (rounds_seen < 10)
    tl_set(rk, v); /* binds again: another round, at most 4 in all */
}

static void *thread_sets(void *arg)
{
  tl_key_t k = *(tl_key_t *)arg;
  tl_set(k, &rounds_seen);
  tl_set(rk, &rounds_seen);
  return NULL;
}

START_TEST(test_thread_exit_destructors)
{
  tl_key_t k;
  destroyed = 0;
  rounds_seen = 0;
  ck_assert_int_eq(tl_key_create(&k, count_destroy), 0);
  ck_assert_int_eq(tl_key_create(&rk, rebinding_destroy), 0);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_sets, &k), 0);
  ck_assert_int_eq(pthread_join(t, NULL), 0);
  ck_assert_int_eq(destroyed, 1);
  ck_assert_int_eq(rounds_seen, 4);
  ck_assert_ptr_null(tl_get(k)); /* the main thread's value was never set */
}
END_TEST

static void *thread_reads(void *arg)
{
  tl_key_t k = *(tl_key_t *)arg;
  return tl_get(k);
}

START_TEST(test_values_per_thread)
{
  tl_key_t k;
  int a;
  ck_assert_int_eq(tl_key_create(&k, NULL), 0);
  ck_assert_int_eq(tl_set(k, &a), 0);
  pthread_t t;
  void *seen = &a;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_reads, &k), 0);
  ck_assert_int_eq(pthread_join(t, &seen), 0);
  ck_assert_ptr_null(seen);
  ck_assert_ptr_eq(tl_get(k), &a);
}
END_TEST

/* A thread keeps some freed value tables for itself (shim/alloc.c); they
 * must go back to everyone when it exits. Each short thread below ends
 * EXIT_TASKS tasks whose tables were alive at once, so that it keeps as
 * many as it may; thousands of such threads, one after the other, keep
 * the memory flat only if what each kept is used again after it. */
#define EXIT_TASKS 24
#define EXIT_THREADS 2000
#define EXIT_STACK (16 * 1024)

static tl_key_t exit_key;
static ucontext_t exit_main, exit_ctx[EXIT_TASKS];
static char exit_stacks[EXIT_TASKS][EXIT_STACK] __attribute__((aligned(16)));
static int exit_vals[EXIT_TASKS];
static int exit_next;

static void exit_task(void)
{
  int i = exit_next;
  ck_assert_int_eq(tl_set(exit_key, &exit_vals[i]), 0);
  swapcontext(&exit_ctx[i], &exit_main);
  ck_assert_ptr_eq(tl_get(exit_key), &exit_vals[i]);
}

static void *thread_ends_tasks(void *arg)
{
  (void)arg;
  for (int i = 0; i < EXIT_TASKS; i++) {
    tl_test_context(&exit_ctx[i], exit_stacks[i], EXIT_STACK, exit_task, &exit_main);
    exit_next = i;
    ck_assert_int_eq(swapcontext(&exit_main, &exit_ctx[i]), 0);
  }
  for (int i = 0; i < EXIT_TASKS; i++)
    ck_assert_int_eq(swapcontext(&exit_main, &exit_ctx[i]), 0);
  return NULL;
}

static void run_exit_threads(int n)
{
  for (int i = 0; i < n; i++) {
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, thread_ends_tasks, NULL), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
  }
}

START_TEST(test_thread_exit_returns_tables)
{
  ck_assert_int_eq(tl_key_create(&exit_key, NULL), 0);
  run_exit_threads(100);
  long before = tl_test_rss_kib();
  run_exit_threads(EXIT_THREADS);
  long after = tl_test_rss_kib();
  /* AddressSanitizer's own memory grows with every thread made, and so
   * does qemu-user's. */
  if (!TL_TEST_UNDER_ASAN && !TL_TEST_EMULATED)
    ck_assert_msg(after - before < 512, "RSS grew by %ld KiB over %d threads", after - before, EXIT_THREADS);
}
END_TEST

START_TEST(test_available_when_linked)
{
  /* This test binary links -ltasklocal ahead of libc, so the library's
   * ucontext functions are the ones in use. */
  ck_assert_int_eq(tl_available(), 1);
  ck_assert_ptr_nonnull(tl_current());
  ck_assert_uint_ne(tl_task_id(tl_current()), 0);
  ck_assert_uint_eq(tl_task_id(NULL), 0);
}
END_TEST

/* A key deleted on one thread reads as unbound on another that had it
 * bound, once the deletion is over: the other thread's inline read path
 * had a view of its table with the key in it (read twice to fill it), and
 * the deletion must empty that view. */
static tl_key_t cross_key;
static int cross_value;
static sem_t cross_bound, cross_deleted;
static void *cross_after;

static void *cross_reader(void *arg)
{
  (void)arg;
  tl_set(cross_key, &cross_value);
  if (tl_get(cross_key) == &cross_value && tl_get(cross_key) == &cross_value)
    cross_after = &cross_value;            /* the view is filled now */
  sem_post(&cross_bound);
  sem_wait(&cross_deleted);
  cross_after = tl_get(cross_key);
  return NULL;
}

START_TEST(test_delete_empties_other_threads_views)
{
  ck_assert_int_eq(tl_key_create(&cross_key, NULL), 0);
  sem_init(&cross_bound, 0, 0);
  sem_init(&cross_deleted, 0, 0);
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, cross_reader, NULL), 0);
  sem_wait(&cross_bound);
  ck_assert_ptr_eq(cross_after, &cross_value);
  ck_assert_int_eq(tl_key_delete(cross_key), 0);
  sem_post(&cross_deleted);
  pthread_join(th, NULL);
  ck_assert_ptr_null(cross_after);
}
END_TEST

static Suite *keys_suite(void)
{
  Suite *s = suite_create("keys");
  TCase *tc = tcase_create("keys");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_create_get_set);
  tcase_add_test(tc, test_lookup_tells_null_from_unbound);
  tcase_add_test(tc, test_set_does_not_destroy_previous);
  tcase_add_test(tc, test_invalid_keys);
  tcase_add_test(tc, test_deleted_key_stays_invalid);
  tcase_add_test(tc, test_delete_empties_other_threads_views);
  tcase_add_test(tc, test_names);
  tcase_add_test(tc, test_attr_validation);
  tcase_add_test(tc, test_million_keys);
  tcase_add_test(tc, test_values_model);
  tcase_add_test(tc, test_thread_exit_destructors);
  tcase_add_test(tc, test_values_per_thread);
  tcase_add_test(tc, test_thread_exit_returns_tables);
  tcase_add_test(tc, test_available_when_linked);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(keys_suite());
}
