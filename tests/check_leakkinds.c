/* Leaked or parked, and suppressions (doc/reports.md).
 *
 * Each case runs tests/programs/leak_kinds (an unmodified ucontext program
 * with planted leaks, whose entry functions are named after the kind each
 * coroutine must get) in a process of its own under LD_PRELOAD of the shim,
 * and reads the kind that the report gives each task, found through the
 * task's entry function. Under AddressSanitizer the library has no heap
 * registry yet (its allocator would be bypassed), so the scan decides
 * nothing: every task must then be parked, never leaked.
 *
 * TL_BUILD_DIR is the absolute path of the build directory.
 */
#include "testutil.h"

#define LIB TL_BUILD_DIR "/libtasklocal.so"
#define PROG TL_BUILD_DIR "/tests/programs/leak_kinds"
#define PRELOAD "LD_PRELOAD=" LIB
#define LEAKPLUG TL_BUILD_DIR "/tests/libtlleakplug.so"

#define DEADLINE_S 40
#define TCASE_TIMEOUT_S 120

/* Whether the scan can call tasks leaked in this build. */
#define DECIDES (!TL_TEST_UNDER_ASAN)

struct run {
  int status;
  char *out, *err;
};

/* Runs leak_kinds MODE with the shim and TASKLOCAL_LEAKS=1 (unless extra
 * sets them), and extra's variables. */
static void run(struct run *r, const char *mode, const char *const extra[])
{
  static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", "ASAN_OPTIONS=", NULL};
  const char *vars[16] = {TL_TEST_ASAN_ENV, PRELOAD, "TASKLOCAL_LEAKS=1"};
  size_t n = 3;
  for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
    ck_assert(n < sizeof vars / sizeof vars[0]);
    if (strncmp(extra[i], "TASKLOCAL_LEAKS=", 16) == 0)
      vars[2] = extra[i];
    else if (strncmp(extra[i], "LD_PRELOAD=", 11) == 0)
      vars[1] = extra[i];
    else
      vars[n++] = extra[i];
  }
  char **env = tl_test_env(drop, vars, n);
  const char *argv[] = {PROG, mode, NULL};
  struct tl_test_proc c;
  tl_test_spawn(&c, (char *const *)argv, env);
  free(env);
  tl_test_reap(&c, DEADLINE_S);
  r->status = WIFEXITED(c.wstatus) ? WEXITSTATUS(c.wstatus) : 128 + WTERMSIG(c.wstatus);
  r->out = c.out.data;
  r->err = c.err.data;
}

static void run_free(struct run *r)
{
  free(r->out);
  free(r->err);
}

static int count(const char *text, const char *needle)
{
  int n = 0;
  for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
    n++;
  return n;
}

static void assert_has(const char *text, const char *needle)
{
  ck_assert_msg(strstr(text, needle) != NULL, "missing \"%s\" in:\n%.1500s", needle, text);
}

/* The kind on the task line just before "  entry: FN+", or NULL when no
 * task has that entry. */
static const char *kind_of(const char *text, const char *fn)
{
  char needle[128];
  snprintf(needle, sizeof needle, "tasklocal:   entry: %s ", fn);
  const char *at = strstr(text, needle);
  if (at == NULL)
    return NULL;
  /* Back to the start of the line before. */
  const char *end = at - 1, *line = end;
  while (line > text && line[-1] != '\n')
    line--;
  static char kind[16];
  const char *semi = end;
  while (semi > line && *semi != ';')
    semi--;
  snprintf(kind, sizeof kind, "%.*s", (int)(end - semi - 2), semi + 2);
  return kind;
}

static void assert_kind(const char *text, const char *fn, const char *want)
{
  const char *k = kind_of(text, fn);
  ck_assert_msg(k != NULL, "no task with entry %s in:\n%.1500s", fn, text);
  if (!DECIDES)
    want = "parked";
  ck_assert_msg(strcmp(k, want) == 0, "%s is %s, not %s, in:\n%.1500s", fn, k, want, text);
}

static void assert_line(const char *text, const char *line)
{
  char want[256];
  snprintf(want, sizeof want, "tasklocal: %s\n", line);
  assert_has(text, want);
}

/* The kinds line and the summary, with leaked tasks counted as parked
 * where the scan cannot decide. */
static void assert_kinds(const char *text, int leaked, int parked, int tasks)
{
  char line[128];
  if (DECIDES)
    snprintf(line, sizeof line, "leak kinds: %d leaked, %d parked", leaked, parked);
  else
    snprintf(line, sizeof line, "leak kinds: 0 leaked, %d parked", leaked + parked);
  assert_line(text, line);
  snprintf(line, sizeof line, "leak summary: %d tasks, 0 locals", tasks);
  assert_line(text, line);
  ck_assert_msg(strstr(text, "leak kinds:") < strstr(text, "leak summary:"), "the kinds line is not before the summary");
}

/* ------------------------------------------------------------------------
 * Kinds
 * ------------------------------------------------------------------------ */

START_TEST(dropped_reference_is_leaked)
{
  struct run r;
  run(&r, "dropped", NULL);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "done\n");
  assert_kind(r.err, "leaked_dropped", "leaked");
  assert_kinds(r.err, 1, 0, 1);
  run_free(&r);
}
END_TEST

START_TEST(referenced_from_leaked_stack_is_leaked)
{
  struct run r;
  run(&r, "chain", NULL);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "leaked_chain_head", "leaked");
  assert_kind(r.err, "leaked_chain_tail", "leaked");
  assert_kinds(r.err, 2, 0, 2);
  run_free(&r);
}
END_TEST

START_TEST(cycle_is_leaked)
{
  struct run r;
  run(&r, "cycle", NULL);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "leaked_cycle_a", "leaked");
  assert_kind(r.err, "leaked_cycle_b", "leaked");
  assert_kinds(r.err, 2, 0, 2);
  run_free(&r);
}
END_TEST

START_TEST(queued_is_parked)
{
  struct run r;
  run(&r, "queue", NULL);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "parked_in_queue", "parked");
  assert_kinds(r.err, 0, 1, 1);
  run_free(&r);
}
END_TEST

START_TEST(context_in_reachable_block_is_parked)
{
  struct run r;
  run(&r, "heapctx", NULL);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "parked_heap_ctx", "parked");
  assert_kinds(r.err, 0, 1, 1);
  run_free(&r);
}
END_TEST

START_TEST(context_in_freed_block_is_leaked)
{
  struct run r;
  run(&r, "freed", NULL);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "leaked_freed_ctx", "leaked");
  assert_kinds(r.err, 1, 0, 1);
  run_free(&r);
}
END_TEST

/* Stacks in memory that would otherwise be a root: an mmap'd one, and
 * one in the program's data. */
START_TEST(stacks_in_roots_leaked)
{
  struct run r;
  run(&r, "mapped", NULL);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "leaked_mapped", "leaked");
  assert_kind(r.err, "leaked_static", "leaked");
  assert_kinds(r.err, 2, 0, 2);
  run_free(&r);
}
END_TEST

/* Task-local values are the program's: those of a root task are roots,
 * those of a leaked task are not. */
START_TEST(locals_are_references)
{
  const char *env[] = {"LD_PRELOAD=" LIB " " LEAKPLUG, NULL};
  struct run r;
  run(&r, "local", env);
  ck_assert_int_eq(r.status, 0);
  assert_kind(r.err, "parked_by_local", "parked");
  assert_kind(r.err, "leaked_by_local", "leaked");
  assert_kind(r.err, "leaked_local_owner", "leaked");
  run_free(&r);
}
END_TEST

/* Every case in one process; leaked tasks are described first. */
START_TEST(mixed_leaked_first)
{
  struct run r;
  run(&r, "mixed", NULL);
  ck_assert_int_eq(r.status, 0);
  static const char *const leaked[] = {"leaked_dropped", "leaked_chain_head", "leaked_chain_tail", "leaked_cycle_a",
                                       "leaked_cycle_b", "leaked_freed_ctx", "leaked_mapped", "leaked_static"};
  for (size_t i = 0; i < sizeof leaked / sizeof leaked[0]; i++)
    assert_kind(r.err, leaked[i], "leaked");
  assert_kind(r.err, "parked_in_queue", "parked");
  assert_kind(r.err, "parked_heap_ctx", "parked");
  assert_kinds(r.err, 8, 2, 10);
  if (DECIDES) {
    const char *first_parked = strstr(r.err, "; parked\n");
    const char *last_leaked = NULL;
    for (const char *p = r.err; (p = strstr(p, "; leaked\n")) != NULL; p++)
      last_leaked = p;
    ck_assert_ptr_nonnull(first_parked);
    ck_assert_ptr_nonnull(last_leaked);
    ck_assert_msg(last_leaked < first_parked, "a parked task is described before a leaked one:\n%.1500s", r.err);
  } else {
    assert_has(r.err, "leak kinds: no task is called leaked: ");
  }
  run_free(&r);
}
END_TEST

/* TASKLOCAL_LEAK_KINDS=leaked: parked tasks neither count nor are
 * described. */
START_TEST(kinds_leaked_only)
{
  const char *env[] = {"TASKLOCAL_LEAK_KINDS=leaked", NULL};
  struct run r;
  run(&r, "mixed", env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(count(r.err, "; parked\n"), 0);
  ck_assert_ptr_null(kind_of(r.err, "parked_in_queue"));
  if (DECIDES) {
    ck_assert_int_eq(count(r.err, "; leaked\n"), 8);
    assert_line(r.err, "leak kinds: 8 leaked, 0 parked");
    assert_line(r.err, "leak summary: 8 tasks, 0 locals");
  } else {
    assert_line(r.err, "leak summary: 0 tasks, 0 locals");
  }
  run_free(&r);
}
END_TEST

/* With TASKLOCAL_LEAKS=error, only the kinds that count set status 23. */
START_TEST(kinds_and_error_status)
{
  const char *parked_only[] = {"TASKLOCAL_LEAKS=error", "TASKLOCAL_LEAK_KINDS=leaked", NULL};
  const char *all[] = {"TASKLOCAL_LEAKS=error", NULL};
  struct run r;
  run(&r, "queue", parked_only);
  ck_assert_int_eq(r.status, 0);
  assert_line(r.err, "leak summary: 0 tasks, 0 locals");
  run_free(&r);
  run(&r, "queue", all);
  ck_assert_int_eq(r.status, 23);
  run_free(&r);
  run(&r, "dropped", parked_only);
  ck_assert_int_eq(r.status, DECIDES ? 23 : 0);
  run_free(&r);
}
END_TEST

START_TEST(kinds_bad_value)
{
  const char *env[] = {"TASKLOCAL_LEAK_KINDS=some", NULL};
  struct run r;
  run(&r, "queue", env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(count(r.err, "TASKLOCAL_LEAK_KINDS=some is not valid"), 1);
  assert_kinds(r.err, 0, 1, 1);
  run_free(&r);
}
END_TEST

/* The live dump scans too; the program waits in read() meanwhile. The
 * dump goes to stdout (TASKLOCAL_LOG), where the test waits for it. With
 * leak checking off at start, the heap's blocks are not known: no task is
 * called leaked, and the report says why. */
static void dump_case(const char *leaks, struct tl_test_proc *c)
{
  static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", "ASAN_OPTIONS=", NULL};
  const char *vars[] = {TL_TEST_ASAN_ENV, PRELOAD, leaks, "TASKLOCAL_DUMP_SIGNAL=USR2", "TASKLOCAL_LOG=/dev/stdout"};
  char **env = tl_test_env(drop, vars, sizeof vars / sizeof vars[0]);
  const char *argv[] = {PROG, "dump", NULL};
  tl_test_spawn(c, (char *const *)argv, env);
  free(env);
  ck_assert_msg(tl_test_read_until(c, "tasklocal: dump summary:", DEADLINE_S), "no dump:\n%.1500s", c->out.data);
  tl_test_reap(c, DEADLINE_S);
  ck_assert_int_eq(WIFEXITED(c->wstatus) ? WEXITSTATUS(c->wstatus) : -1, 0);
}

START_TEST(dump_has_kinds)
{
  struct tl_test_proc c;
  dump_case("TASKLOCAL_LEAKS=1", &c);
  const char *text = c.out.data;
  /* The main thread's stack is read whole (the scan runs on the dump
   * thread, and does not know where the other's stack pointer is): what
   * its dead frames hold may keep some of the leaked tasks parked. */
  assert_kind(text, "parked_in_queue", "parked");
  assert_kind(text, "parked_heap_ctx", "parked");
  int leaked = -1, parked = -1;
  for (const char *k = text; (k = strstr(k, "tasklocal: dump kinds: ")) != NULL && leaked < 0; k++)
    if (sscanf(k, "tasklocal: dump kinds: %d leaked, %d parked", &leaked, &parked) != 2)
      leaked = -1;
  ck_assert_msg(leaked >= 0, "no kinds line in:\n%.1500s", text);
  ck_assert_int_eq(leaked + parked, 10);
  if (DECIDES)
    ck_assert_int_ge(leaked, 4);
  else
    ck_assert_int_eq(leaked, 0);
  assert_line(text, "dump summary: 10 tasks, 0 locals");
  free(c.out.data);
  free(c.err.data);

  /* Without leak checking an abandoned task is not kept: where malloc
   * reuses the freed context's block for the next one (aarch64), the
   * freed case's task is abandoned and gone, so the count is not fixed. */
  dump_case("TASKLOCAL_LEAKS=0", &c);
  text = c.out.data;
  assert_kind(text, "leaked_cycle_a", "parked");
  assert_has(text, "tasklocal: dump kinds: no task is called leaked: TASKLOCAL_LEAKS was off at start");
  ck_assert_msg(strstr(text, "tasklocal: dump kinds: 0 leaked, ") != NULL, "a task is leaked in:\n%.1500s", text);
  free(c.out.data);
  free(c.err.data);
}
END_TEST

/* ------------------------------------------------------------------------
 * Suppressions
 * ------------------------------------------------------------------------ */

/* A suppressions file of this text; its path in path. */
static void rules(char *path, size_t size, const char *text)
{
  snprintf(path, size, "/tmp/tl-supp-XXXXXX");
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void run_rules(struct run *r, const char *text)
{
  char path[64], var[128];
  rules(path, sizeof path, text);
  snprintf(var, sizeof var, "TASKLOCAL_SUPPRESSIONS=%s", path);
  const char *env[] = {var, NULL};
  run(r, "mixed", env);
  unlink(path);
  ck_assert_int_eq(r->status, 0);
}

/* By entry function, by a frame of the creation backtrace (make() is
 * called from case_cycle for both cycle tasks), and by a frame where the
 * tasks are suspended; comments and blank lines are skipped. */
START_TEST(suppressions_match)
{
  struct run r;
  run_rules(&r, "# the first case\ntask:leaked_dropp*\n\n   task:case_cycle  \n");
  ck_assert_ptr_null(kind_of(r.err, "leaked_dropped"));
  ck_assert_ptr_null(kind_of(r.err, "leaked_cycle_a"));
  ck_assert_ptr_null(kind_of(r.err, "leaked_cycle_b"));
  assert_kind(r.err, "leaked_chain_head", "leaked");
  assert_line(r.err, "suppressed 1 tasks by rule task:leaked_dropp*");
  assert_line(r.err, "suppressed 2 tasks by rule task:case_cycle");
  assert_kinds(r.err, 5, 2, 7);
  ck_assert_int_eq(count(r.err, "TASKLOCAL_SUPPRESSIONS"), 0);
  run_free(&r);

  /* Only a frame where it is suspended names wait_forever for
   * parked_in_queue (its entry and creation frames do not). The freed
   * case's context may be unreadable by then, and its task not unwound. */
  run_rules(&r, "task:^wait_forever\n");
  ck_assert_ptr_null(kind_of(r.err, "parked_in_queue"));
  ck_assert_ptr_null(kind_of(r.err, "leaked_cycle_a"));
  ck_assert_msg(strstr(r.err, "tasklocal: suppressed 10 tasks by rule task:^wait_forever\n") != NULL ||
                    strstr(r.err, "tasklocal: suppressed 9 tasks by rule task:^wait_forever\n") != NULL,
                "no count of the rule in:\n%.1500s", r.err);
  run_free(&r);
}
END_TEST

START_TEST(suppressions_no_match)
{
  struct run r;
  run_rules(&r, "task:no_such_function\ntask:^eaked_dropped\ntask:leaked_dropped$x\n");
  assert_line(r.err, "suppressed 0 tasks by rule task:no_such_function");
  assert_line(r.err, "suppressed 0 tasks by rule task:^eaked_dropped");
  assert_kinds(r.err, 8, 2, 10);
  run_free(&r);
}
END_TEST

/* A bad line: one warning, and the other rules apply. */
START_TEST(suppressions_bad_line)
{
  struct run r;
  run_rules(&r, "leak:leaked_dropped\ntask:\ntask:leaked_freed_ctx\n");
  ck_assert_int_eq(count(r.err, "is not a rule (task:PATTERN)"), 2);
  assert_has(r.err, ": line 1 is not a rule (task:PATTERN): \"leak:leaked_dropped\"; it is ignored\n");
  assert_has(r.err, ": line 2 is not a rule");
  assert_line(r.err, "suppressed 1 tasks by rule task:leaked_freed_ctx");
  assert_kind(r.err, "leaked_dropped", "leaked");
  assert_kinds(r.err, 7, 2, 9);
  run_free(&r);
}
END_TEST

START_TEST(suppressions_missing_file)
{
  const char *env[] = {"TASKLOCAL_SUPPRESSIONS=/nonexistent/tl-supp", NULL};
  struct run r;
  run(&r, "mixed", env);
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(count(r.err, "TASKLOCAL_SUPPRESSIONS=/nonexistent/tl-supp: cannot open it"), 1);
  ck_assert_int_eq(count(r.err, "suppressed "), 0);
  assert_kinds(r.err, 8, 2, 10);
  run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------------
 * tasklocal-run
 * ------------------------------------------------------------------------ */

/* A copy of scripts/tasklocal-run in a directory of its own, with this
 * build's library where the script looks first (../build next to it). */
static void script_copy(char *script, size_t size)
{
  char dir[256], src[600] = "", root[] = "/tmp/tlkinds.XXXXXX", cmd[2048];
  snprintf(dir, sizeof dir, "%s", TL_BUILD_DIR);
  for (;;) {
    snprintf(src, sizeof src, "%s/scripts/tasklocal-run", dir);
    if (access(src, X_OK) == 0)
      break;
    char *slash = strrchr(dir, '/');
    ck_assert_msg(slash != NULL && slash != dir, "scripts/tasklocal-run not found above %s", TL_BUILD_DIR);
    *slash = '\0';
  }
  ck_assert_ptr_nonnull(mkdtemp(root));
  snprintf(cmd, sizeof cmd, "mkdir %s/bin %s/build && cp %s %s/bin/ && ln -s %s %s/build/libtasklocal.so", root, root, src,
           root, LIB, root);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(script, size, "%s/bin/tasklocal-run", root);
}

START_TEST(run_script_kinds)
{
  char script[600], path[64], opt[128];
  script_copy(script, sizeof script);
  rules(path, sizeof path, "task:leaked_freed_ctx\n");
  snprintf(opt, sizeof opt, "--suppressions=%s", path);
  const char *argv[] = {script, "--leaks", "--leak-kinds", "leaked", opt, "--", PROG, "mixed", NULL};
  static const char *const drop[] = {"LD_PRELOAD=", "TASKLOCAL_", "ASAN_OPTIONS=", NULL};
  const char *vars[] = {TL_TEST_ASAN_ENV};
  char **env = tl_test_env(drop, vars, 1);
  struct tl_test_proc c;
  tl_test_spawn(&c, (char *const *)argv, env);
  free(env);
  tl_test_reap(&c, DEADLINE_S);
  unlink(path);
  ck_assert_msg(WIFEXITED(c.wstatus) && WEXITSTATUS(c.wstatus) == 0, "status %d:\n%.1500s", c.wstatus, c.err.data);
  assert_line(c.err.data, "suppressed 1 tasks by rule task:leaked_freed_ctx");
  ck_assert_int_eq(count(c.err.data, "; parked\n"), 0);
  assert_line(c.err.data, DECIDES ? "leak summary: 7 tasks, 0 locals" : "leak summary: 0 tasks, 0 locals");
  free(c.out.data);
  free(c.err.data);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %.*s", (int)(strlen(script) - strlen("/bin/tasklocal-run")), script);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *kinds_suite(void)
{
  Suite *s = suite_create("leakkinds");
  struct {
    const char *name;
    const TTest *test;
  } cases[] = {
    {"dropped", dropped_reference_is_leaked},
    {"chain", referenced_from_leaked_stack_is_leaked},
    {"cycle", cycle_is_leaked},
    {"queue", queued_is_parked},
    {"heapctx", context_in_reachable_block_is_parked},
    {"freed", context_in_freed_block_is_leaked},
    {"mapped", stacks_in_roots_leaked},
    {"local", locals_are_references},
    {"mixed", mixed_leaked_first},
    {"dump", dump_has_kinds},
    {"kinds_leaked", kinds_leaked_only},
    {"kinds_error", kinds_and_error_status},
    {"kinds_bad", kinds_bad_value},
    {"supp_match", suppressions_match},
    {"supp_none", suppressions_no_match},
    {"supp_bad_line", suppressions_bad_line},
    {"supp_missing", suppressions_missing_file},
    {"run_script", run_script_kinds},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_set_timeout(tc, TCASE_TIMEOUT_S);
    tcase_add_test(tc, cases[i].test);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void)
{
  return tl_test_run(kinds_suite());
}
