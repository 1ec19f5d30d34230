/* The header in C and C++, and the C++ API (make check-cxx, mk/cxx.mk).
 *
 * - The compile matrix: tests/cxx/header.c, which calls every function and
 *   macro of the header, compiled by gcc and clang as C99, C11 and C17 and
 *   by g++ and clang++ as C++11, C++17 and C++20, each linked, header-only
 *   (TL_DYNAMIC), without the inline read path (TL_NO_INLINE) and through
 *   the header of its own of each language (tasklocal_dynamic.h in C,
 *   tasklocal.hpp in C++), with
 *   -Werror and every warning C and C++ users commonly turn on. One test
 *   per cell.
 * - Older languages: C89 (strict and GNU) and C++98/03 get one #error from
 *   the header, naming the minimum, and no other diagnostic from it.
 * - Some cells are also linked and run, to see that the code compiled is
 *   right as well: linked, header-only with and without the library
 *   preloaded, and C and C++ translation units in one program, which must
 *   share keys and values (and the header-only fallback).
 * - tests/cxx/guard.cpp: tl::with and TL_WITH in C++, built by both
 *   compilers and in the three ways.
 * - tests/cxx/throw.cpp: a callback that throws, in each case that the
 *   header documents, by both compilers.
 */
#include "testutil.h"

#include <stdarg.h>

#ifndef TL_SOURCE_DIR
#error "TL_SOURCE_DIR must name the source tree"
#endif
#ifndef TL_CC_GNU
#error "TL_CC_GNU, TL_CXX_GNU, TL_CC_CLANG and TL_CXX_CLANG must name the compilers"
#endif

#define DIR TL_BUILD_DIR "/tests/cxx"
#define LIB_PATH TL_BUILD_DIR "/libtasklocal.so"
#define HEADER_C TL_SOURCE_DIR "/tests/cxx/header.c"
#define HEADER_TU2 TL_SOURCE_DIR "/tests/cxx/header_tu2.c"
#define LINK_LIB "-L" TL_BUILD_DIR " -Wl,-rpath," TL_BUILD_DIR " -ltasklocal"
#define DEADLINE_S 300.0

/* The warnings of every cell, then those of one language or compiler. */
#define WARN_ALL                                                                                    \
  "-Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion -Wcast-qual -Wundef " \
  "-Wredundant-decls -Wmissing-declarations"
#define WARN_C "-Wstrict-prototypes -Wmissing-prototypes"
#define WARN_CXX "-Wold-style-cast -Wzero-as-null-pointer-constant"
#define WARN_GXX "-Wuseless-cast"
#define WARN_CLANG "-Wmissing-variable-declarations"

struct compiler {
  const char *cmd;
  int cxx, clang;
};

static const struct compiler compilers[] = {
    {TL_CC_GNU, 0, 0}, {TL_CC_CLANG, 0, 1}, {TL_CXX_GNU, 1, 0}, {TL_CXX_CLANG, 1, 1}};
static const char *const c_stds[] = {"c99", "c11", "c17"};
static const char *const cxx_stds[] = {"c++11", "c++17", "c++20"};
/* TL_MATRIX_OWN_HEADER: header.c includes the header of its own of each
 * language instead of tasklocal.h, tasklocal_dynamic.h in C (header-only
 * use, as TL_DYNAMIC) and tasklocal.hpp in C++ (linked). */
static const char *const variants[] = {"", "-DTL_DYNAMIC", "-DTL_NO_INLINE", "-DTL_MATRIX_OWN_HEADER"};
#define N_STDS 3
#define N_VARIANTS 4
#define N_CELLS (4 * N_STDS * N_VARIANTS)

/* The flags of compiler c for a cell: language, standard, warnings. */
static void cell_flags(char *out, size_t size, const struct compiler *c, const char *std)
{
  snprintf(out, size, "%s -std=%s %s %s %s %s", c->cxx ? "-x c++" : "", std, WARN_ALL, c->cxx ? WARN_CXX : WARN_C,
           c->clang ? WARN_CLANG : (c->cxx ? WARN_GXX : ""), c->clang ? "-Wmissing-prototypes" : "");
}

/* Runs a shell command with stderr joined to stdout and returns its exit
 * status (-1 if it did not exit); *out gets what it printed (to free). */
__attribute__((format(printf, 2, 3))) static int sh(char **out, const char *fmt, ...)
{
  char *cmd;
  va_list ap;
  va_start(ap, fmt);
  ck_assert_msg(vasprintf(&cmd, fmt, ap) >= 0, "out of memory");
  va_end(ap);
  char *full;
  ck_assert_msg(asprintf(&full, "exec 2>&1; %s", cmd) >= 0, "out of memory");
  char *const argv[] = {(char *)"/bin/sh", (char *)"-c", full, NULL};
  struct tl_test_proc p;
  tl_test_exec(&p, argv, environ, DEADLINE_S);
  int status = !p.timed_out && WIFEXITED(p.wstatus) ? WEXITSTATUS(p.wstatus) : -1;
  if (out != NULL)
    *out = strdup(p.out.data);
  tl_test_proc_free(&p);
  free(full);
  free(cmd);
  return status;
}

static void setup(void)
{
  ck_assert_int_eq(sh(NULL, "mkdir -p '%s/matrix'", DIR), 0);
}

/* ------------------------------------------------------------------------
 * The compile matrix
 * ------------------------------------------------------------------------ */

START_TEST(test_matrix_cell)
{
  const struct compiler *c = &compilers[_i / (N_STDS * N_VARIANTS)];
  const char *std = (c->cxx ? cxx_stds : c_stds)[_i / N_VARIANTS % N_STDS];
  const char *variant = variants[_i % N_VARIANTS];
  char flags[512], *out;
  cell_flags(flags, sizeof flags, c, std);
  int status = sh(&out, "%s %s %s -O2 -I'%s/include' -c '%s' -o '%s/matrix/cell%d.o'", c->cmd, flags, variant,
                  TL_SOURCE_DIR, HEADER_C, DIR, _i);
  ck_assert_msg(status == 0 && out[0] == '\0', "%s -std=%s %s: exit %d:\n%s", c->cmd, std,
                variant[0] ? variant : "(linked)", status, out);
  free(out);
}
END_TEST

/* A language older than the header's minimum. */
static const struct {
  int compiler;
  const char *std, *minimum;
} old_languages[] = {
    {0, "c89", "C99"},    {0, "gnu89", "C99"},  {1, "c89", "C99"},    {1, "gnu89", "C99"},
    {2, "c++98", "C++11"}, {2, "c++03", "C++11"}, {3, "c++98", "C++11"}, {3, "c++03", "C++11"},
};

START_TEST(test_old_language)
{
  const struct compiler *c = &compilers[old_languages[_i].compiler];
  const char *std = old_languages[_i].std;
  char *out, want[64];
  /* A translation unit of the header and one declaration, so that the
   * header's diagnostics are the only ones. */
  int status = sh(&out, "printf '#include \"tasklocal.h\"\\nint tl_old_language;\\n' | %s %s -std=%s -Wall -Wextra "
                  "-Wpedantic -Werror -I'%s/include' -c -o /dev/null -",
                  c->cmd, c->cxx ? "-x c++" : "-x c", std, TL_SOURCE_DIR);
  ck_assert_msg(status != 0, "%s -std=%s accepted the header:\n%s", c->cmd, std, out);
  snprintf(want, sizeof want, "needs %s or later", old_languages[_i].minimum);
  /* One diagnostic, the #error, which names the minimum. */
  int errors = 0;
  const char *first = strstr(out, ": error: ");
  for (const char *p = out; (p = strstr(p, ": error: ")) != NULL; p++)
    errors++;
  ck_assert_msg(errors == 1 && strstr(first, want) != NULL && strstr(out, ": warning: ") == NULL,
                "%s -std=%s: not one clear #error naming %s:\n%s", c->cmd, std, old_languages[_i].minimum, out);
  free(out);
}
END_TEST

/* Runs `prog AVAILABLE` alone (or with preload in LD_PRELOAD): it must
 * find tl_available() as told and all its checks true. */
static void run_cell(const char *prog, const char *preload, int available)
{
  char *out;
  int status = sh(&out, "%s%s%s '%s' %d", preload ? "LD_PRELOAD='" : "", preload ? preload : "", preload ? "'" : "",
                  prog, available);
  ck_assert_msg(status == 0 && strstr(out, ": 0 failed checks") != NULL, "%s%s%s: exit %d:\n%s", prog,
                preload ? " under " : "", preload ? preload : "", status, out);
  free(out);
}

/* Cells that are linked and run: compiler, standard, variant, and for two
 * translation units the compiler of the second (in the other language). */
static const struct {
  int compiler;
  const char *std, *variant;
  int tu2_compiler;                        /* -1: one translation unit */
  const char *tu2_std;
} runs[] = {
    {0, "c99", "", -1, NULL},
    {1, "c17", "-DTL_NO_INLINE", -1, NULL},
    {0, "c11", "-DTL_DYNAMIC", -1, NULL},
    {2, "c++11", "", -1, NULL},
    {3, "c++20", "-DTL_DYNAMIC", -1, NULL},
    {3, "c++17", "-DTL_NO_INLINE", -1, NULL},
    {2, "c++17", "-DTL_DYNAMIC", 0, "c99"},
    {1, "c11", "", 3, "c++20"},
    {0, "c17", "-DTL_MATRIX_OWN_HEADER", -1, NULL},
    {3, "c++11", "-DTL_MATRIX_OWN_HEADER", -1, NULL},
};

START_TEST(test_link_and_run)
{
  const struct compiler *c = &compilers[runs[_i].compiler];
  const char *variant = runs[_i].variant;
  int dynamic = strcmp(variant, "-DTL_DYNAMIC") == 0 || (strcmp(variant, "-DTL_MATRIX_OWN_HEADER") == 0 && !c->cxx);
  int two = runs[_i].tu2_compiler >= 0;
  char flags[512], prog[512], objs[1100], *out;
  snprintf(prog, sizeof prog, "%s/matrix/run%d", DIR, _i);
  cell_flags(flags, sizeof flags, c, runs[_i].std);
  int status = sh(&out, "%s %s %s %s -O2 -I'%s/include' -c '%s' -o '%s.o'", c->cmd, flags, variant,
                  two ? "-DTL_MATRIX_TU2" : "", TL_SOURCE_DIR, HEADER_C, prog);
  ck_assert_msg(status == 0, "%s -std=%s: exit %d:\n%s", c->cmd, runs[_i].std, status, out);
  free(out);
  snprintf(objs, sizeof objs, "'%s.o'", prog);
  const struct compiler *linker = c;
  if (two) {
    const struct compiler *c2 = &compilers[runs[_i].tu2_compiler];
    cell_flags(flags, sizeof flags, c2, runs[_i].tu2_std);
    status = sh(&out, "%s %s %s -O2 -I'%s/include' -c '%s' -o '%s.tu2.o'", c2->cmd, flags, variant, TL_SOURCE_DIR,
                HEADER_TU2, prog);
    ck_assert_msg(status == 0, "%s -std=%s (second unit): exit %d:\n%s", c2->cmd, runs[_i].tu2_std, status, out);
    free(out);
    snprintf(objs, sizeof objs, "'%s.o' '%s.tu2.o'", prog, prog);
    if (c2->cxx)
      linker = c2;
  }
  /* Header-only programs link no tasklocal library. */
  status = sh(&out, "%s %s -o '%s' %s -ldl -pthread", linker->cmd, objs, prog, dynamic ? "" : LINK_LIB);
  ck_assert_msg(status == 0, "linking %s: exit %d:\n%s", prog, status, out);
  free(out);
  if (dynamic) {
    run_cell(prog, NULL, 0);
    run_cell(prog, LIB_PATH, 1);
  } else {
    run_cell(prog, NULL, 1);
  }
}
END_TEST

/* ------------------------------------------------------------------------
 * tl::with and TL_WITH in C++, and callbacks that throw
 * ------------------------------------------------------------------------ */

/* guard.cpp as mk/cxx.mk builds it, and with the library preloaded when
 * it is header-only. */
static const struct {
  const char *name, *preload;
  int library;
} guards[] = {
    {"guard-g++-c++11", NULL, 1},
    {"guard-clang++-c++17-dynamic", NULL, 0},
    {"guard-clang++-c++17-dynamic", LIB_PATH, 1},
    {"guard-g++-c++20-noinline", NULL, 1},
};

START_TEST(test_guard)
{
  char *out;
  int status = sh(&out, "%s%s%s '%s/%s'", guards[_i].preload ? "LD_PRELOAD='" : "",
                  guards[_i].preload ? guards[_i].preload : "", guards[_i].preload ? "'" : "", DIR, guards[_i].name);
  const char *want = guards[_i].library ? "guard: 0 failed checks (library in use)"
                                        : "guard: 0 failed checks (library not found)";
  ck_assert_msg(status == 0 && strstr(out, want) != NULL, "%s%s: exit %d:\n%s", guards[_i].name,
                guards[_i].preload ? " (library preloaded)" : "", status, out);
  free(out);
}
END_TEST

/* What throw.cpp must print for each case: the header's "C++" section. */
static const struct {
  const char *name, *want;
} throws[] = {
    {"task-end-destroy", "terminate\n"},
    {"task-end-defer", "terminate\n"},
    {"thread-exit-destroy", "terminate\n"},
    {"process-exit-destroy", "no exception reached main\nterminate\n"},
    {"makecontext-copy", "terminate\n"},
    {"noexcept-init", "terminate\n"},
    {"get-init", "caught: from init\n"},
    {"singleton-make", "caught: from init\n"},
    {"foreach-fn", "caught: from foreach\n"},
    {"loop-close-destroy", "caught: from destroy\n"},
    {"disc-end-destroy", "caught: from destroy\n"},
    {"disc-current", "caught: from a discriminator\n"},
};
#define N_THROWS (sizeof throws / sizeof throws[0])
static const char *const throw_programs[] = {"throw-g++", "throw-clang++"};

START_TEST(test_throwing_callback)
{
  const char *prog = throw_programs[_i / N_THROWS], *name = throws[_i % N_THROWS].name;
  const char *want = throws[_i % N_THROWS].want;
  char *out;
  int status = sh(&out, "'%s/%s' %s", DIR, prog, name);
  /* 42 comes from the program's terminate handler only. */
  int want_status = strstr(want, "terminate") != NULL ? 42 : 0;
  ck_assert_msg(status == want_status && strcmp(out, want) == 0, "%s %s: exit %d, printed:\n%s\nexpected exit %d:\n%s",
                prog, name, status, out, want_status, want);
  free(out);
}
END_TEST

static Suite *cxx_suite(void)
{
  Suite *s = suite_create("cxx");
  TCase *tc = tcase_create("header");
  tcase_set_timeout(tc, DEADLINE_S);
  tcase_add_unchecked_fixture(tc, setup, NULL);
  tcase_add_loop_test(tc, test_matrix_cell, 0, N_CELLS);
  tcase_add_loop_test(tc, test_old_language, 0, sizeof old_languages / sizeof old_languages[0]);
  tcase_add_loop_test(tc, test_link_and_run, 0, sizeof runs / sizeof runs[0]);
  suite_add_tcase(s, tc);
  tc = tcase_create("api");
  tcase_set_timeout(tc, 60);
  tcase_add_loop_test(tc, test_guard, 0, sizeof guards / sizeof guards[0]);
  tcase_add_loop_test(tc, test_throwing_callback, 0, 2 * N_THROWS);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(cxx_suite());
}
