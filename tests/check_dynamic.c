/* Header-only use (include/tasklocal_dynamic.h): this program defines TL_DYNAMIC and is
 * linked without -ltasklocal. Alone it gets the per-thread fallback; run
 * with the library preloaded (a child of the test re-executes itself that
 * way) or dlopened, it gets the library and per-task semantics. A second
 * translation unit (dynamic_tu2.c) checks that the fallback's state is one
 * for the whole program. */
#define TL_DYNAMIC
#include "testutil.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>
#include <tasklocal.h>
#include <ucontext.h>
#include <unistd.h>

int tu2_set(tl_key_t key, void *value);
void *tu2_get(tl_key_t key);
int tu2_available(void);

static int destroyed;
static void count_destroy(void *v)
{
  (void)v;
  destroyed++;
}

START_TEST(test_fallback_basics)
{
  tl_key_t k, found;
  void *v;
  ck_assert_int_eq(tl_available(), 0);
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.name = "dyn";
  a.destroy = count_destroy;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), 0);
  ck_assert_int_eq(tl_key_create_attr(&found, &a), EEXIST);
  ck_assert_int_eq(tl_key_find(&found, "dyn"), 0);
  ck_assert_uint_eq(found, k);
  ck_assert_int_eq(tl_lookup(k, &v), ENOENT);
  ck_assert_int_eq(tl_set(k, NULL), 0);
  ck_assert_int_eq(tl_lookup(k, &v), 0);
  ck_assert_ptr_null(v);
  ck_assert_int_eq(tl_set(k, "x"), 0);
  ck_assert_str_eq(tl_get(k), "x");
  /* The other translation unit sees the same keys and values. */
  ck_assert_int_eq(tu2_available(), 0);
  ck_assert_str_eq(tu2_get(k), "x");
  ck_assert_int_eq(tu2_set(k, "y"), 0);
  ck_assert_str_eq(tl_get(k), "y");
  ck_assert_int_eq(tl_unset(k), 0);
  ck_assert_int_eq(tl_lookup(k, &v), ENOENT);
  ck_assert_int_eq(tl_key_delete(k), 0);
  ck_assert_ptr_null(tl_get(k));
  ck_assert_int_eq(tl_set(k, "z"), EINVAL);
  ck_assert_int_eq(tl_key_delete(k), EINVAL);
}
END_TEST

START_TEST(test_fallback_errors)
{
  tl_key_t k;
  tl_key_attr_t a = TL_KEY_ATTR_INIT;
  a.scope = 9;
  ck_assert_int_eq(tl_key_create_attr(&k, &a), EINVAL); /* argument errors: EINVAL in both modes */
  ck_assert_int_eq(tl_key_create(NULL, NULL), EINVAL);
  ck_assert_int_eq(tl_set(0, NULL), EINVAL);
  ck_assert_int_eq(tl_defer(9, count_destroy, NULL), EINVAL);
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, NULL, NULL), EINVAL);
  ck_assert_int_eq(tl_disc_end(NULL, &k), EINVAL);
  /* The rest is the library's alone. */
  ck_assert_int_eq(tl_key_create(&k, NULL), 0);
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, count_destroy, NULL), ENOSYS);
  ck_assert_int_eq(tl_loop_close(), ENOSYS);
  errno = 0;
  ck_assert_ptr_null(tl_current());
  ck_assert_int_eq(errno, ENOSYS);
  errno = 0;
  ck_assert_ptr_null(tl_singleton(k, (void *(*)(void *))strdup, "x"));
  ck_assert_int_eq(errno, ENOSYS);
  ck_assert_int_eq(tl_dump(2), ENOSYS);
  ck_assert_int_eq(tl_task_set_name(NULL, "x"), ENOSYS);
  ck_assert_int_eq(tl_trace_flush(), ENOSYS);
}
END_TEST

static void *thread_body(void *arg)
{
  tl_key_t k = *(tl_key_t *)arg;
  if (tl_get(k) != NULL)
    return (void *)1;
  tl_set(k, "mine");
  return NULL;
}

START_TEST(test_fallback_per_thread)
{
  tl_key_t k;
  destroyed = 0;
  ck_assert_int_eq(tl_key_create(&k, count_destroy), 0);
  ck_assert_int_eq(tl_set(k, "main"), 0);
  pthread_t t;
  void *r;
  ck_assert_int_eq(pthread_create(&t, NULL, thread_body, &k), 0);
  ck_assert_int_eq(pthread_join(t, &r), 0);
  ck_assert_ptr_null(r);
  ck_assert_int_eq(destroyed, 1); /* the thread's value, at its exit */
  ck_assert_str_eq(tl_get(k), "main");
}
END_TEST

START_TEST(test_fallback_bindings)
{
  tl_key_t k;
  tl_token_t t1, t2, copy;
  void *v;
  ck_assert_int_eq(tl_key_create(&k, NULL), 0);
  TL_WITH(k, (void *)5)
  {
    ck_assert_int_eq((intptr_t)tl_get(k), 5);
    TL_WITH(k, (void *)6)
    {
      ck_assert_int_eq((intptr_t)tl_get(k), 6);
    }
    ck_assert_int_eq((intptr_t)tl_get(k), 5);
  }
  ck_assert_int_eq(tl_lookup(k, &v), ENOENT);
  ck_assert_int_eq(tl_bind(k, (void *)1, &t1), 0);
  ck_assert_int_eq(tl_bind(k, (void *)2, &t2), 0);
  ck_assert_int_eq(tl_unbind(&t1), EINVAL);
  copy = t2;
  ck_assert_int_eq(tl_unbind(&t2), 0);
  ck_assert_int_eq(tl_unbind(&copy), EINVAL);
  memset(&copy, 0xa5, sizeof copy);
  ck_assert_int_eq(tl_unbind(&copy), EINVAL);
  ck_assert_int_eq(tl_unbind(&t1), 0);
  ck_assert_int_eq(tl_lookup(k, &v), ENOENT);
}
END_TEST

/* The library dlopened locally (not RTLD_GLOBAL) before the first call:
 * found with RTLD_NOLOAD by its soname. Its ucontext functions are not the
 * ones the program calls, so it is not tracking, but the API is its own. */
START_TEST(test_dlopen_local)
{
  void *lib = dlopen(TL_BUILD_DIR "/libtasklocal.so.0", RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(lib != NULL, "%s", dlerror());
  ck_assert_ptr_nonnull(tl_current());
  ck_assert_uint_ne(tl_task_id(tl_current()), 0);
  tl_key_t k;
  ck_assert_int_eq(tl_key_create(&k, NULL), 0);
  ck_assert_int_eq(tl_defer(TL_SCOPE_TASK, count_destroy, NULL), 0);
}
END_TEST

/* ---- the child run with the library preloaded ---- */

static ucontext_t main_ctx, co_ctx;
static char stack[64 * 1024];
static tl_key_t co_key;
static void *co_saw;
static uint64_t co_id;

static void co_fn(void)
{
  co_saw = tl_get(co_key);
  co_id = tl_task_id(tl_current());
  tl_set(co_key, "child");
}

static int child_with_library(void)
{
  static int ok = 1;
#define EXPECT(c)                                                                                  \
  do {                                                                                             \
    if (!(c)) {                                                                                    \
      fprintf(stderr, "check_dynamic child: failed: %s\n", #c);                                    \
      ok = 0;                                                                                      \
    }                                                                                              \
  } while (0)
  EXPECT(tl_available() == 1);
  EXPECT(tu2_available() == 1);
  EXPECT(tl_key_create(&co_key, NULL) == 0);
  EXPECT(tl_set(co_key, "root") == 0);
  getcontext(&co_ctx);
  co_ctx.uc_stack.ss_sp = stack;
  co_ctx.uc_stack.ss_size = sizeof stack;
  co_ctx.uc_link = &main_ctx;
  makecontext(&co_ctx, co_fn, 0);
  swapcontext(&main_ctx, &co_ctx);
  EXPECT(co_saw == NULL);                   /* the task had its own, unbound */
  EXPECT(co_id != 0 && co_id != tl_task_id(tl_current()));
  EXPECT(tl_get(co_key) != NULL && strcmp(tl_get(co_key), "root") == 0);
  EXPECT(tl_trace_flush() == ENOTSUP);     /* found, through the table's last entry; no TASKLOCAL_TRACE */
  return ok ? 0 : 1;
}

START_TEST(test_with_library_preloaded)
{
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    setenv("LD_PRELOAD", TL_BUILD_DIR "/libtasklocal.so", 1);
    /* In the sanitizer build the preloaded library comes before ASan's
     * runtime, which ASan would otherwise refuse. */
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
    unsetenv("TASKLOCAL_TRACE");
    execl("/proc/self/exe", "check_dynamic", "--child-with-library", (char *)NULL);
    _exit(127);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

int main(int argc, char **argv)
{
  if (argc > 1 && strcmp(argv[1], "--child-with-library") == 0)
    return child_with_library();
  Suite *s = suite_create("dynamic");
  TCase *tc = tcase_create("dynamic");
  tcase_add_test(tc, test_fallback_basics);
  tcase_add_test(tc, test_fallback_errors);
  tcase_add_test(tc, test_fallback_per_thread);
  tcase_add_test(tc, test_fallback_bindings);
  tcase_add_test(tc, test_dlopen_local);
  tcase_add_test(tc, test_with_library_preloaded);
  suite_add_tcase(s, tc);
  return tl_test_run(s);
}
