/* The seeds' semantics: initializers, inheritance,
 * scoped bindings and TL_WITH, thread and custom scopes, singletons,
 * deferred calls, names and iteration. The first tests translate the
 * examples (doc/api.md) of the four Python libraries tasklocal is modelled on. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <tasklocal.h>
#include <ucontext.h>

#define STACK (64 * 1024)

/* A coroutine of the tests: made with makecontext, resumed with resume(),
 * yielding back with yield(). */
struct co {
  ucontext_t ctx;
  ucontext_t back;
  char *stack;
  int done;
};

static struct co *running;

static void start(struct co *c, void (*fn)(void))
{
  c->stack = malloc(STACK);
  c->done = 0;
  tl_test_context(&c->ctx, c->stack, STACK, fn, &c->back);
}

static void resume(struct co *c)
{
  struct co *prev = running;
  running = c;
  swapcontext(&c->back, &c->ctx);
  running = prev;
}

static void yield(void)
{
  struct co *c = running;
  swapcontext(&c->ctx, &c->back);
}

static void finish(struct co *c)
{
  free(c->stack);
  c->stack = NULL;
}

/* ---- metapensiero.asyncio.tasklocal: two tasks interleaving a_var ---- */

static tl_key_t a_var;
static const char *seen_a, *seen_b;

static void task_foo(void)
{
  tl_set(a_var, "foo");
  yield();
  seen_a = tl_get(a_var);
}

static void task_bar(void)
{
  tl_set(a_var, "bar");
  yield();
  seen_b = tl_get(a_var);
}

START_TEST(test_seed_interleaving)
{
  struct co a, b;
  ck_assert_int_eq(tl_key_create(&a_var, NULL), 0);
  start(&a, task_foo);
  start(&b, task_bar);
  resume(&a);
  resume(&b);
  ck_assert_ptr_null(tl_get(a_var)); /* the root has its own, unbound */
  resume(&a);
  resume(&b);
  ck_assert_str_eq(seen_a, "foo");
  ck_assert_str_eq(seen_b, "bar");
  finish(&a);
  finish(&b);
}
END_TEST

/* ---- metapensiero: a Local subclass whose __init__ runs in each task ---- */

static int inits;
static tl_key_t counted;

static void *count_init(void *arg)
{
  ck_assert_ptr_eq(arg, &inits);
  ck_assert_ptr_null(tl_get(counted)); /* re-entrant: unbound, no recursion */
  void *v;
  ck_assert_int_eq(tl_lookup(counted, &v), ENOENT);
  return (void *)(intptr_t)++inits;
}

static intptr_t in_task;
static void task_reads_counted(void)
{
  in_task = (intptr_t)tl_get(counted);
  ck_assert_int_eq((intptr_t)tl_get(counted), in_task); /* once per task */
}

START_TEST(test_seed_init_per_task)
{
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.init = count_init;
  a.init_arg = &inits;
  ck_assert_int_eq(tl_key_create_attr(&counted, &a), 0);
  ck_assert_int_eq((intptr_t)tl_get(counted), 1);
  ck_assert_int_eq((intptr_t)tl_get(counted), 1);
  struct co c1, c2;
  start(&c1, task_reads_counted);
  resume(&c1);
  ck_assert_int_eq(in_task, 2);
  start(&c2, task_reads_counted);
  resume(&c2);
  ck_assert_int_eq(in_task, 3);
  ck_assert_int_eq(inits, 3);
  /* tl_set and tl_unset never initialize; the next read does again. */
  ck_assert_int_eq(tl_unset(counted), 0);
  ck_assert_int_eq((intptr_t)tl_get(counted), 4);
  finish(&c1);
  finish(&c2);
}
END_TEST

/* ---- aiocontext: a request id propagated to child tasks by copy ---- */

static tl_key_t request_id;
static int copies, frees;
static char *child_saw, *grandchild_saw;
static struct co child, grandchild;

static void *dup_str(const void *v)
{
  copies++;
  return v ? strdup(v) : NULL;
}

static void free_str(void *v)
{
  frees++;
  free(v);
}

static void grandchild_task(void)
{
  grandchild_saw = strdup(tl_get(request_id));
}

static void child_task(void)
{
  child_saw = strdup(tl_get(request_id));
  char *copy = tl_get(request_id);
  tl_set(request_id, strdup("child-changed")); /* tl_set does not destroy the copy: the child frees it */
  free(copy);
  start(&grandchild, grandchild_task); /* the grandchild sees the child's value */
  resume(&grandchild);
}

START_TEST(test_seed_request_id_copied)
{
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.inherit = TL_INHERIT_COPY;
  a.copy = dup_str;
  a.destroy = free_str;
  a.name = "request_id";
  ck_assert_int_eq(tl_key_create_attr(&request_id, &a), 0);
  char *mine = strdup("req-42");
  ck_assert_int_eq(tl_set(request_id, mine), 0);
  start(&child, child_task);
  ck_assert_int_eq(copies, 1); /* copied at makecontext, in the parent */
  ck_assert_int_eq(tl_set(request_id, strdup("parent-later")), 0); /* not seen by the child */
  free(mine);
  resume(&child);
  ck_assert_str_eq(child_saw, "req-42");
  ck_assert_str_eq(grandchild_saw, "child-changed");
  ck_assert_str_eq(tl_get(request_id), "parent-later");
  /* The grandchild's copy and the child's own value were destroyed when
   * they finished; the parent's stays bound. */
  ck_assert_int_eq(copies, 2);
  ck_assert_int_eq(frees, 2);
  free(child_saw);
  free(grandchild_saw);
  finish(&child);
  finish(&grandchild);
}
END_TEST

/* ---- inheritance by sharing: the same pointer, not the child's ---- */

static tl_key_t shared_key;
static void *child_shared;
static int shared_frees;
static void count_free(void *v)
{
  (void)v;
  shared_frees++;
}

static void share_child(void)
{
  child_shared = tl_get(shared_key);
}

START_TEST(test_inherit_share)
{
  static int config;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.inherit = TL_INHERIT_SHARE;
  a.destroy = count_free;
  ck_assert_int_eq(tl_key_create_attr(&shared_key, &a), 0);
  ck_assert_int_eq(tl_set(shared_key, &config), 0);
  struct co c;
  start(&c, share_child);
  resume(&c);
  ck_assert_ptr_eq(child_shared, &config);
  ck_assert_int_eq(shared_frees, 0); /* the child's end does not destroy the parent's value */
  finish(&c);
}
END_TEST

/* ---- xlocal: nested with-blocks restore 5, then unbound ---- */

START_TEST(test_seed_nested_with)
{
  tl_key_t x;
  void *v;
  ck_assert_int_eq(tl_key_create(&x, NULL), 0);
  TL_WITH(x, (void *)5)
  {
    ck_assert_int_eq((intptr_t)tl_get(x), 5);
    TL_WITH(x, (void *)6)
    {
      ck_assert_int_eq((intptr_t)tl_get(x), 6);
    }
    ck_assert_int_eq((intptr_t)tl_get(x), 5);
  }
  ck_assert_int_eq(tl_lookup(x, &v), ENOENT);
}
END_TEST

static int with_return(tl_key_t x)
{
  TL_WITH(x, (void *)7)
  {
    return (int)(intptr_t)tl_get(x);
  }
  return -1;
}

START_TEST(test_with_every_exit)
{
  tl_key_t x;
  void *v;
  ck_assert_int_eq(tl_key_create(&x, NULL), 0);
  int ran = 0;
  TL_WITH(x, (void *)1)
  {
    ran++;
    break; /* leaves the TL_WITH block itself */
    ck_abort();
  }
  ck_assert_int_eq(ran, 1);
  ck_assert_int_eq(tl_lookup(x, &v), ENOENT);
  ck_assert_int_eq(with_return(x), 7);
  ck_assert_int_eq(tl_lookup(x, &v), ENOENT);
  TL_WITH(x, (void *)2)
  {
    goto out;
  }
out:
  ck_assert_int_eq(tl_lookup(x, &v), ENOENT);
  for (int i = 0; i < 3; i++) {
    TL_WITH(x, (void *)3)
    {
      if (i == 1)
        continue;
      ck_assert_int_eq((intptr_t)tl_get(x), 3);
    }
    ck_assert_int_eq(tl_lookup(x, &v), ENOENT);
  }
  /* A binding that cannot be made: the block does not run. */
  ran = 0;
  errno = 0;
  TL_WITH(0, (void *)1)
  {
    ran = 1;
  }
  ck_assert_int_eq(ran, 0);
  ck_assert_int_eq(errno, EINVAL);
}
END_TEST

/* ---- tokens: strict LIFO, same task, no forgery ---- */

static tl_token_t token_from_task;
static tl_key_t tok_key;
static void binds_in_task(void)
{
  ck_assert_int_eq(tl_bind(tok_key, (void *)9, &token_from_task), 0);
  yield();
  ck_assert_int_eq(tl_unbind(&token_from_task), 0);
}

START_TEST(test_token_misuse)
{
  void *v;
  tl_token_t t1, t2, copy, forged;
  ck_assert_int_eq(tl_key_create(&tok_key, NULL), 0);
  ck_assert_int_eq(tl_set(tok_key, (void *)1), 0);
  ck_assert_int_eq(tl_bind(tok_key, (void *)2, &t1), 0);
  ck_assert_int_eq(tl_bind(tok_key, (void *)3, &t2), 0);
  ck_assert_int_eq(tl_unbind(&t1), EINVAL); /* out of order */
  ck_assert_int_eq((intptr_t)tl_get(tok_key), 3);
  memset(&forged, 0, sizeof forged);
  ck_assert_int_eq(tl_unbind(&forged), EINVAL);
  srand(7);
  for (int i = 0; i < 1000; i++) {
    for (size_t j = 0; j < sizeof forged; j++)
      ((unsigned char *)&forged)[j] = (unsigned char)rand();
    ck_assert_int_eq(tl_unbind(&forged), EINVAL);
  }
  forged = t2;
  forged.opaque[1]++;
  ck_assert_int_eq(tl_unbind(&forged), EINVAL);
  ck_assert_int_eq(tl_unbind(NULL), EINVAL);
  ck_assert_int_eq((intptr_t)tl_get(tok_key), 3);
  copy = t2;
  ck_assert_int_eq(tl_unbind(&t2), 0);
  ck_assert_int_eq(tl_unbind(&copy), EINVAL); /* used twice */
  ck_assert_int_eq((intptr_t)tl_get(tok_key), 2);
  /* A token of another task. */
  struct co c;
  start(&c, binds_in_task);
  resume(&c);
  ck_assert_int_eq(tl_unbind(&token_from_task), EINVAL);
  resume(&c);
  ck_assert_int_eq(tl_unbind(&t1), 0);
  ck_assert_int_eq(tl_lookup(tok_key, &v), 0);
  ck_assert_int_eq((intptr_t)v, 1);
  ck_assert_int_eq(tl_bind(tok_key, NULL, NULL), EINVAL);
  ck_assert_int_eq(tl_bind(0, NULL, &t1), EINVAL);
  finish(&c);
}
END_TEST

START_TEST(test_scoped_only)
{
  tl_key_t k;
  tl_token_t t;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.flags = TL_KEY_SCOPED_ONLY;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), 0);
  ck_assert_int_eq(tl_set(k, (void *)1), EPERM);
  ck_assert_int_eq(tl_bind(k, (void *)2, &t), 0);
  ck_assert_int_eq(tl_set(k, (void *)1), EPERM); /* cannot rebind the caller's value */
  ck_assert_int_eq(tl_unset(k), EPERM);
  TL_WITH(k, (void *)3)
  {
    ck_assert_int_eq((intptr_t)tl_get(k), 3); /* only shadow it */
  }
  ck_assert_int_eq((intptr_t)tl_get(k), 2);
  ck_assert_int_eq(tl_unbind(&t), 0);
  ck_assert_ptr_null(tl_get(k));
}
END_TEST

/* Bindings still open when a task ends are dropped without destructor,
 * and what they replaced is destroyed as the task's own. */
static tl_key_t open_key;
static int open_destroyed[3];
static void record_destroy(void *v)
{
  open_destroyed[(intptr_t)v]++;
}

static void leaves_binding_open(void)
{
  tl_token_t t;
  tl_set(open_key, (void *)1);
  tl_bind(open_key, (void *)2, &t);
}

START_TEST(test_open_binding_at_end)
{
  ck_assert_int_eq(tl_key_create(&open_key, record_destroy), 0);
  struct co c;
  start(&c, leaves_binding_open);
  resume(&c);
  ck_assert_int_eq(open_destroyed[2], 0);
  ck_assert_int_eq(open_destroyed[1], 1);
  finish(&c);
}
END_TEST

/* ---- asyncio-loop-local: deferred calls in reverse order ---- */

static char order[8];
static int norder;
static void note(void *arg)
{
  order[norder++] = *(const char *)arg;
}

static void defers_three(void)
{
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, note, "1"), 0);
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, note, "2"), 0);
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, note, "3"), 0);
  yield();
}

START_TEST(test_seed_defer_lifo)
{
  struct co c;
  start(&c, defers_three);
  resume(&c);
  ck_assert_int_eq(norder, 0);
  resume(&c);
  ck_assert_str_eq(order, "321");
  ck_assert_int_eq(tl_defer(7, note, "x"), EINVAL);
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, NULL, NULL), EINVAL);
  ck_assert_int_eq(tl_defer(TL_SCOPE_CUSTOM, note, "x"), EINVAL);
  finish(&c);
}
END_TEST

/* ---- asyncio-loop-local: a singleton per loop (thread) ---- */

static tl_key_t loop_key;
static int made, unmade;
static void *make_pool(void *arg)
{
  made++;
  ck_assert_ptr_null(tl_singleton(loop_key, make_pool, arg)); /* re-entrant: refused */
  ck_assert_int_eq(errno, EDEADLK);
  return malloc(16);
}

static void free_pool(void *v)
{
  unmade++;
  free(v);
}

static void *pool_in_task;
static void task_gets_pool(void)
{
  pool_in_task = tl_singleton(loop_key, make_pool, NULL);
}

static void *thread_gets_pool(void *arg)
{
  (void)arg;
  return tl_singleton(loop_key, make_pool, NULL);
}

START_TEST(test_seed_singleton_per_thread)
{
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_THREAD;
  a.destroy = free_pool;
  ck_assert_int_eq(tl_key_create_attr(&loop_key, &a), 0);
  void *p = tl_singleton(loop_key, make_pool, NULL);
  ck_assert_ptr_nonnull(p);
  struct co c;
  start(&c, task_gets_pool);
  resume(&c);
  ck_assert_ptr_eq(pool_in_task, p); /* every task of the thread shares it */
  ck_assert_int_eq(made, 1);
  pthread_t t;
  void *other;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_gets_pool, NULL), 0);
  ck_assert_int_eq(pthread_join(t, &other), 0);
  ck_assert_int_eq(made, 2);
  ck_assert_int_eq(unmade, 1); /* destroyed at that thread's exit */
  /* Closing the loop destroys it and runs the thread's deferred calls; the
   * next use makes a fresh instance. */
  norder = 0;
  memset(order, 0, sizeof order);
  ck_assert_int_eq(tl_defer(TL_SCOPE_THREAD, note, "a"), 0);
  ck_assert_int_eq(tl_defer(TL_SCOPE_THREAD, note, "b"), 0);
  ck_assert_int_eq(tl_loop_close(), 0);
  ck_assert_int_eq(unmade, 2);
  ck_assert_str_eq(order, "ba");
  void *q = tl_singleton(loop_key, make_pool, NULL);
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(made, 3);
  ck_assert_ptr_null(tl_singleton(0, make_pool, NULL));
  ck_assert_int_eq(errno, EINVAL);
  finish(&c);
}
END_TEST

/* ---- custom discriminators ---- */

static void *session;
static void *current_session(void *arg)
{
  return *(void **)arg;
}

static struct tl_disc by_session = {current_session, &session};
static int session_frees;
static tl_key_t user_key;
static void session_free(void *v)
{
  session_frees++;
  if (session_frees == 1)
    ck_assert_int_eq(tl_set(user_key, v), 0); /* rebinding: one more round */
}

START_TEST(test_custom_scope)
{
  static int s1, s2;
  void *v;
  tl_token_t t;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = TL_SCOPE_CUSTOM;
  a.disc = &by_session;
  a.destroy = session_free;
  ck_assert_int_eq(tl_key_create_attr(&user_key, &a), 0);
  session = NULL; /* no owner */
  ck_assert_ptr_null(tl_get(user_key));
  ck_assert_int_eq(tl_set(user_key, "x"), ESRCH);
  ck_assert_int_eq(tl_lookup(user_key, &v), ESRCH);
  ck_assert_int_eq(tl_unset(user_key), ESRCH);
  ck_assert_int_eq(tl_bind(user_key, "x", &t), ESRCH);
  session = &s1;
  ck_assert_int_eq(tl_lookup(user_key, &v), ENOENT);
  ck_assert_int_eq(tl_set(user_key, "alice"), 0);
  session = &s2;
  ck_assert_ptr_null(tl_get(user_key));
  ck_assert_int_eq(tl_set(user_key, "bob"), 0);
  session = &s1;
  ck_assert_str_eq(tl_get(user_key), "alice");
  ck_assert_int_eq(tl_disc_end(&by_session, &s1), 0);
  ck_assert_int_eq(session_frees, 2); /* "alice", then again after the rebind */
  ck_assert_ptr_null(tl_get(user_key));
  ck_assert_int_eq(tl_disc_end(&by_session, &s1), 0); /* nothing left: no more calls */
  ck_assert_int_eq(session_frees, 2);
  session = &s2;
  ck_assert_str_eq(tl_get(user_key), "bob");
  ck_assert_int_eq(tl_disc_end(NULL, &s2), EINVAL);
  ck_assert_int_eq(tl_disc_end(&by_session, NULL), EINVAL);
}
END_TEST

/* ---- introspection ---- */

static int collect(tl_key_t key, const char *name, void *value, void *arg)
{
  (void)key;
  char *buf = arg;
  strcat(buf, name ? name : "?");
  strcat(buf, "=");
  strcat(buf, value);
  strcat(buf, ";");
  return strcmp(name ? name : "", "stop") == 0 ? 42 : 0;
}

START_TEST(test_foreach_and_names)
{
  tl_key_t a, b, c;
  tl_key_attr_t at = TL_KEY_ATTR_INIT;
  at.name = "user";
  ck_assert_int_eq(tl_key_create_attr(&a, &at), 0);
  at.name = "lang";
  ck_assert_int_eq(tl_key_create_attr(&b, &at), 0);
  at.name = "stop";
  ck_assert_int_eq(tl_key_create_attr(&c, &at), 0);
  tl_set(a, "ann");
  tl_set(b, "fr");
  char buf[128] = "";
  ck_assert_int_eq(tl_foreach(NULL, collect, buf), 0);
  ck_assert_ptr_nonnull(strstr(buf, "user=ann;"));
  ck_assert_ptr_nonnull(strstr(buf, "lang=fr;"));
  tl_set(c, "now");
  buf[0] = '\0';
  ck_assert_int_eq(tl_foreach(tl_current(), collect, buf), 42);
  ck_assert_int_eq(tl_foreach(NULL, NULL, NULL), EINVAL);

  ck_assert_ptr_null(tl_task_name(NULL));
  ck_assert_int_eq(tl_task_set_name(NULL, "main loop"), 0);
  ck_assert_str_eq(tl_task_name(tl_current()), "main loop");
  ck_assert_int_eq(tl_task_set_name(tl_current(), NULL), 0);
  ck_assert_ptr_null(tl_task_name(NULL));
}
END_TEST

static Suite *scopes_suite(void)
{
  Suite *s = suite_create("scopes");
  TCase *tc = tcase_create("scopes");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_seed_interleaving);
  tcase_add_test(tc, test_seed_init_per_task);
  tcase_add_test(tc, test_seed_request_id_copied);
  tcase_add_test(tc, test_inherit_share);
  tcase_add_test(tc, test_seed_nested_with);
  tcase_add_test(tc, test_with_every_exit);
  tcase_add_test(tc, test_token_misuse);
  tcase_add_test(tc, test_scoped_only);
  tcase_add_test(tc, test_open_binding_at_end);
  tcase_add_test(tc, test_seed_defer_lifo);
  tcase_add_test(tc, test_seed_singleton_per_thread);
  tcase_add_test(tc, test_custom_scope);
  tcase_add_test(tc, test_foreach_and_names);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(scopes_suite());
}
