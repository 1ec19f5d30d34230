/* Released tasks: a coroutine whose stack the program gives back has
 * ended. Each case runs tests/programs/ends (an unmodified program) under
 * the shim, with the leak-report plugin binding one value without a
 * destructor in each coroutine, leak reports and the stats line on, and
 * reads what the library says: how many tasks ended each way, how the
 * dropped value was dropped, and what the leak report still counts. */
#include "testutil.h"

#include <string.h>
#include <unistd.h>

/* Where Debian keeps the target's libraries. */
#if defined(__x86_64__)
#define TL_TEST_MULTIARCH "x86_64-linux-gnu"
#else
#define TL_TEST_MULTIARCH "aarch64-linux-gnu"
#endif

#define LIB TL_BUILD_DIR "/libtasklocal.so"
#define LEAKPLUG TL_BUILD_DIR "/tests/libtlleakplug.so"
#define ENDS TL_BUILD_DIR "/tests/programs/ends"
#define HEAPBOUND TL_BUILD_DIR "/tests/programs/heapbound"
#define LEAK_SHARED TL_BUILD_DIR "/tests/programs/leak_shared"
#define DEADLINE_S 60

struct run {
  int status;
  char *out, *err;
};

/* prog's argument is mode (none when NULL); leaks: TASKLOCAL_LEAKS's
 * value, NULL for 1; preload: what LD_PRELOAD holds, NULL for the library
 * and the plugin. */
static void run_prog(struct run *r, const char *prog, const char *mode, const char *leaks, const char *preload)
{
  static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", "ASAN_OPTIONS=", NULL};
  char leaks_var[32], preload_var[1024];
  snprintf(leaks_var, sizeof leaks_var, "TASKLOCAL_LEAKS=%s", leaks != NULL ? leaks : "1");
  snprintf(preload_var, sizeof preload_var, "LD_PRELOAD=%s", preload != NULL ? preload : LIB " " LEAKPLUG);
  const char *vars[] = {TL_TEST_ASAN_ENV, preload_var, leaks_var, "TASKLOCAL_STATS=1"};
  char **env = tl_test_env(drop, vars, sizeof vars / sizeof vars[0]);
  const char *argv[] = {prog, mode, NULL};
  struct tl_test_proc p;
  tl_test_exec(&p, (char *const *)argv, env, DEADLINE_S);
  free(env);
  ck_assert_msg(!p.timed_out, "%s %s ran past %.0f s", prog, mode != NULL ? mode : "", p.deadline_s);
  r->status = WIFEXITED(p.wstatus) ? WEXITSTATUS(p.wstatus) : 128 + WTERMSIG(p.wstatus);
  r->out = p.out.data;
  r->err = p.err.data;
}

static void run_with(struct run *r, const char *mode, const char *leaks, const char *preload)
{
  run_prog(r, ENDS, mode, leaks, preload);
}

static void run(struct run *r, const char *mode, const char *leaks)
{
  run_with(r, mode, leaks, NULL);
}

static void run_free(struct run *r)
{
  free(r->out);
  free(r->err);
}

static void has(const struct run *r, const char *want)
{
  ck_assert_msg(strstr(r->err, want) != NULL, "no \"%s\" in:\n%s", want, r->err);
}

static void has_out(const struct run *r, const char *want)
{
  ck_assert_msg(strstr(r->out, want) != NULL, "no \"%s\" in:\n%s", want, r->out);
}

static void lacks(const struct run *r, const char *unwanted)
{
  ck_assert_msg(strstr(r->err, unwanted) == NULL, "\"%s\" in:\n%s", unwanted, r->err);
}

/* The stats line's counts, as "finished=F abandoned=A released=R". */
static void counts(const struct run *r, int finished, int abandoned, int released)
{
  char want[128];
  snprintf(want, sizeof want, " finished=%d abandoned=%d released=%d ", finished, abandoned, released);
  has(r, want);
}

/* One coroutine that switches away for good and whose stack the program
 * gives back in the mode's way: released, its value dropped as a released
 * task's, and no leak. */
static void released_once(const char *mode)
{
  struct run r;
  run(&r, mode, NULL);
  ck_assert_msg(r.status == 0, "ends %s: status %d\n%s", mode, r.status, r.err);
  counts(&r, 0, 0, 1);
  has(&r, "(no destructor): still bound in task ");
  has(&r, "when its stack was released");
  has(&r, "tasklocal: leak summary: 0 tasks, 1 locals\n");
  run_free(&r);
}

START_TEST(freed)
{
  released_once("free");
}
END_TEST

START_TEST(unmapped)
{
  released_once("munmap");
}
END_TEST

START_TEST(reallocated)
{
  released_once("realloc");
}
END_TEST

/* A pool hands a stack to the next coroutine, in another ucontext_t,
 * while the first is suspended for good, and keeps the stack: the first
 * never ran again, and is released at exit instead of being reported. */
START_TEST(handed_off)
{
  struct run r;
  run(&r, "handoff", NULL);
  ck_assert_msg(r.status == 0, "ends handoff: status %d\n%s", r.status, r.err);
  counts(&r, 1, 0, 1);
  has(&r, "when its stack was released");
  has(&r, "tasklocal: leak summary: 0 tasks, 2 locals\n");
  run_free(&r);
}
END_TEST

/* A stack-copying library's shared stack from malloc: the first coroutine
 * was displaced and never ran again, but the second, displaced after it,
 * did, which shows the stack is a copying one: all three stay suspended
 * and are reported, none is released. */
START_TEST(copying_stack_kept)
{
  struct run r;
  run_prog(&r, LEAK_SHARED, "heap", NULL, NULL);
  ck_assert_msg(r.status == 0, "leak_shared heap: status %d\n%s", r.status, r.err);
  counts(&r, 0, 0, 0);
  has(&r, "tasklocal: leak summary: 3 tasks, 0 locals\n");
  run_free(&r);
}
END_TEST

/* A stack carved from the middle of a pool's block: while leak reports
 * are on, the freed block is looked through whole. */
START_TEST(carved_from_a_block)
{
  /* A program built with ASan starts allocating before the environment
   * can be read, so the heap's blocks are not followed there (as the
   * leak kinds of check_leakkinds are not decided). */
  if (TL_TEST_UNDER_ASAN)
    return;
  released_once("carved");
}
END_TEST

/* reallocarray: ours, since an allocator after us (a sanitizer's runtime)
 * resizes inside itself. */
START_TEST(reallocated_array)
{
  released_once("reallocarray");
}
END_TEST

START_TEST(remapped)
{
  released_once("mremap");
}
END_TEST

START_TEST(freed_by_another_thread)
{
  released_once("thread");
}
END_TEST

/* Left by a siglongjmp the library does not see, then freed: found
 * suspended from the stack pointer, and released. */
START_TEST(freed_after_siglongjmp)
{
  released_once("jumpfree");
}
END_TEST

START_TEST(never_started_then_freed)
{
  struct run r;
  run(&r, "unstarted", NULL);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 0, 0, 1);
  has(&r, "tasklocal: leak summary: 0 tasks, 0 locals\n");
  run_free(&r);
}
END_TEST

/* A function that returns finishes, as before. */
START_TEST(returned)
{
  struct run r;
  run(&r, "return", NULL);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 1, 0, 0);
  has(&r, "when it finished");
  has(&r, "tasklocal: leak summary: 0 tasks, 1 locals\n");
  run_free(&r);
}
END_TEST

/* A pool that reuses the ucontext_t and the stack: each makecontext
 * releases the coroutine that left them; the last one returns. */
START_TEST(remade_in_place)
{
  struct run r;
  run(&r, "remake", NULL);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 1, 0, 3);
  has(&r, "tasklocal: leak summary: 0 tasks, 4 locals\n");
  run_free(&r);
}
END_TEST

/* The ucontext_t made again on another stack, the old one still held:
 * abandoned, a leak with the value it held. */
START_TEST(abandoned)
{
  struct run r;
  run(&r, "abandon", NULL);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 1, 1, 0);
  has(&r, "abandoned (its ucontext_t was made again before it finished)");
  has(&r, "tasklocal: leak summary: 1 tasks, 2 locals\n");
  run_free(&r);
}
END_TEST

/* QEMU's pool: the coroutines are entered by siglongjmp and wait in the
 * pool at exit with their stacks held. Nothing is released; the three are
 * in the report (still referenced: the pool holds them). */
START_TEST(siglongjmp_pool)
{
  struct run r;
  run(&r, "pool", NULL);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 0, 0, 0);
  has(&r, "tasklocal: leak summary: 3 tasks, 3 locals\n");
  run_free(&r);
}
END_TEST

/* A stack within another one, taken by a sibling: never released (a
 * library that carves stacks from another may copy them out and back). */
START_TEST(stack_within_a_stack)
{
  struct run r;
  run(&r, "inner", NULL);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 2, 0, 0);
  lacks(&r, "when its stack was released");
  has(&r, "tasklocal: leak summary: 1 tasks, 2 locals\n");
  run_free(&r);
}
END_TEST

/* Without leak reports the heap's blocks are not followed, and releases
 * are seen all the same. */
START_TEST(released_without_leak_reports)
{
  struct run r;
  run(&r, "free", "0");
  ck_assert_int_eq(r.status, 0);
  counts(&r, 0, 0, 1);
  lacks(&r, "leak report");
  run_free(&r);
}
END_TEST

/* exit() on the main stack after a siglongjmp out of the coroutine: the
 * report names the coroutine suspended, not the one exit ran in. */
START_TEST(exit_after_siglongjmp)
{
  struct run r;
  run(&r, "jumpexit", NULL);
  ck_assert_int_eq(r.status, 0);
  lacks(&r, "exit was called in it");
  has(&r, ": suspended; made by task 1");
  has(&r, "tasklocal: leak summary: 1 tasks, 1 locals\n");
  run_free(&r);
}
END_TEST

/* A program that brings its own allocator (jemalloc, preloaded after the
 * library as a program linked with it would have it): the free it calls
 * is still ours first, and the task is released. */
#define JEMALLOC "/usr/lib/" TL_TEST_MULTIARCH "/libjemalloc.so.2"
START_TEST(freed_by_jemalloc)
{
  /* A sanitizer's runtime brings its own allocator: jemalloc beside it
   * is not a program anyone runs. */
  if (TL_TEST_UNDER_ASAN)
    return;
  if (access(JEMALLOC, R_OK) != 0) {
    fprintf(stderr, "check_release: %s is not installed (libjemalloc2): the jemalloc case is skipped\n", JEMALLOC);
    return;
  }
  struct run r;
  run_with(&r, "free", NULL, LIB " " JEMALLOC " " LEAKPLUG);
  ck_assert_int_eq(r.status, 0);
  counts(&r, 0, 0, 1);
  has(&r, "tasklocal: leak summary: 0 tasks, 1 locals\n");
  run_free(&r);
}
END_TEST

/* Without leak reports, the program's malloc, calloc and posix_memalign
 * are the real ones, both its call slots (bound lazily, before it first
 * calls them) and the function pointers it takes; free and realloc stay
 * ours. With leak reports, every one is ours. (Under ASan the real
 * functions behind ours are the sanitizer runtime's, not libc's.) */
START_TEST(allocation_bound_direct)
{
  if (TL_TEST_UNDER_ASAN)
    return;
  struct run r;
  run_prog(&r, HEAPBOUND, NULL, "0", LIB);
  ck_assert_int_eq(r.status, 0);
  has_out(&r, "malloc pointer=libc.so.6\n");
  has_out(&r, "calloc call=libc.so.6\n");
  has_out(&r, "posix_memalign call=libc.so.6\n");
  has_out(&r, "free pointer=libtasklocal.so\n");
  has_out(&r, "realloc call=unbound\n");
  run_free(&r);
  run_prog(&r, HEAPBOUND, NULL, "1", LIB);
  ck_assert_int_eq(r.status, 0);
  has_out(&r, "malloc pointer=libtasklocal.so\n");
  has_out(&r, "calloc call=unbound\n");
  has_out(&r, "posix_memalign call=unbound\n");
  run_free(&r);
}
END_TEST

/* With an allocator preloaded after the library, the program's malloc is
 * that allocator's. */
START_TEST(allocation_bound_to_jemalloc)
{
  if (TL_TEST_UNDER_ASAN || access(JEMALLOC, R_OK) != 0)
    return;
  struct run r;
  run_prog(&r, HEAPBOUND, NULL, "0", LIB " " JEMALLOC);
  ck_assert_int_eq(r.status, 0);
  has_out(&r, "malloc pointer=libjemalloc.so.2\n");
  has_out(&r, "calloc call=libjemalloc.so.2\n");
  has_out(&r, "free pointer=libtasklocal.so\n");
  run_free(&r);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("release");
  const struct {
    const char *name;
    const TTest *test;
  } cases[] = {
    {"free", freed},
    {"munmap", unmapped},
    {"realloc", reallocated},
    {"reallocarray", reallocated_array},
    {"carved", carved_from_a_block},
    {"handoff", handed_off},
    {"copying", copying_stack_kept},
    {"mremap", remapped},
    {"thread", freed_by_another_thread},
    {"jumpfree", freed_after_siglongjmp},
    {"unstarted", never_started_then_freed},
    {"return", returned},
    {"remake", remade_in_place},
    {"abandon", abandoned},
    {"pool", siglongjmp_pool},
    {"inner", stack_within_a_stack},
    {"no_leaks", released_without_leak_reports},
    {"jumpexit", exit_after_siglongjmp},
    {"jemalloc", freed_by_jemalloc},
    {"bound", allocation_bound_direct},
    {"bound_jemalloc", allocation_bound_to_jemalloc},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cases[i].test);
    suite_add_tcase(s, tc);
  }
  return tl_test_run(s);
}
