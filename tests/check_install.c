/* make install and make uninstall (mk/install.mk).
 *
 * Every test installs into a DESTDIR of its own, with PREFIX=/usr, from
 * the library this suite was built with (TL_BUILD_DIR), and looks at what
 * a user would use: the files, links and modes, the soname, tasklocal.pc
 * through pkg-config, a program built from it, tasklocal-run, the man
 * pages, and the gdb extension, which one test installs under a PREFIX of
 * its own (without DESTDIR, so that gdb finds it by the library's real
 * path). Nothing is installed into the real system.
 */
#include "testutil.h"

#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#define TCASE_TIMEOUT_S 180

/* The program is built from a temporary directory: the sanitizer build
 * of the suites links a sanitized library, which only a program built with
 * the same sanitizers can load first. */
#if TL_TEST_UNDER_ASAN
#define PROG_CFLAGS "-fsanitize=address,undefined"
#define RUN_ENV "ASAN_OPTIONS=verify_asan_link_order=0 "
#else
#define PROG_CFLAGS ""
#define RUN_ENV ""
#endif

/* The compiler of the programs built against the installation: the one
 * of this suite's build (the cross compiler, for the aarch64 suites run
 * under qemu-user). */
#ifndef TL_TEST_CC
#define TL_TEST_CC "cc"
#endif

/* What lists the libraries a program loads: ldd runs the host's dynamic
 * linker, which cannot load an emulated aarch64 program; the program's
 * own one can, asked with LD_TRACE_LOADED_OBJECTS as ldd asks it. */
#if TL_TEST_EMULATED
#define LDD "LD_TRACE_LOADED_OBJECTS=1"
#else
#define LDD "ldd"
#endif

static char base[PATH_MAX];                /* one directory for the whole run */
static char src[PATH_MAX];                 /* the source tree, holding the Makefile */

/* The source tree is the first directory above the build directory that
 * holds mk/install.mk (build/ and build/asan/ both lie under it); a build
 * directory elsewhere (make BUILD=/tmp/x) leaves the current directory,
 * where make runs the suites. */
static int is_source_tree(const char *dir)
{
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/mk/install.mk", dir) >= (int)sizeof path || access(path, R_OK) != 0)
    return 0;
  return snprintf(path, sizeof path, "%s/include/tasklocal.h", dir) < (int)sizeof path && access(path, R_OK) == 0;
}

static void find_source_tree(void)
{
  snprintf(src, sizeof src, "%s", TL_BUILD_DIR);
  for (char *slash; (slash = strrchr(src, '/')) != NULL && slash != src;) {
    *slash = '\0';
    if (is_source_tree(src))
      return;
  }
  if (getcwd(src, sizeof src) != NULL && is_source_tree(src))
    return;
  src[0] = '\0';
}

static void setup(void)
{
  find_source_tree();
  const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
  if (snprintf(base, sizeof base, "%s/tlinstall.XXXXXX", tmp) >= (int)sizeof base || mkdtemp(base) == NULL)
    base[0] = '\0';
}

static void teardown(void)
{
  char cmd[PATH_MAX + 32];
  if (base[0] != '\0') {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
      fprintf(stderr, "check_install: could not remove %s\n", base);
  }
}

/* Runs a shell command, with stderr joined to stdout; returns its exit
 * status (or -1) and, when out is not NULL, what it printed (to free). No
 * command may take longer than the whole test case. */
__attribute__((format(printf, 2, 3))) static int sh(char **out, const char *fmt, ...)
{
  char *cmd, *full;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&cmd, fmt, ap);
  va_end(ap);
  ck_assert_msg(n >= 0, "out of memory");
  ck_assert(asprintf(&full, "( %s ) 2>&1", cmd) >= 0);
  char *const argv[] = {(char *)"/bin/sh", (char *)"-c", full, NULL};
  struct tl_test_proc p;
  tl_test_exec(&p, argv, environ, TCASE_TIMEOUT_S);
  free(full);
  free(cmd);
  free(p.err.data);
  if (out != NULL)
    *out = p.out.data;
  else
    free(p.out.data);
  return !p.timed_out && WIFEXITED(p.wstatus) ? WEXITSTATUS(p.wstatus) : -1;
}

/* make, as a user runs it, without the variables of the make that runs
 * this suite: its jobserver descriptors are not ours. The library is
 * taken as it was built for this suite (-o): while other work goes on in
 * the tree, a rebuild here could replace the sanitizer build of it with a
 * plain one. */
static void make_in_prefix(const char *destdir, const char *prefix, const char *target)
{
  char *out;
  int rc = sh(&out,
              "cd '%s' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory "
              "BUILD='%s' -o '%s/libtasklocal.so' %s DESTDIR='%s' PREFIX='%s'",
              src, TL_BUILD_DIR, TL_BUILD_DIR, target, destdir, prefix);
  ck_assert_msg(rc == 0, "make %s DESTDIR=%s PREFIX=%s exited with %d:\n%s", target, destdir, prefix, rc, out);
  free(out);
}

static void make_in(const char *destdir, const char *target)
{
  make_in_prefix(destdir, "/usr", target);
}

/* A fresh DESTDIR under the run's directory, with tasklocal installed. */
static const char *install(const char *name)
{
  static char dest[PATH_MAX];
  ck_assert_msg(src[0] != '\0', "cannot find the source tree above %s", TL_BUILD_DIR);
  ck_assert_msg(base[0] != '\0', "cannot make a temporary directory");
  ck_assert(snprintf(dest, sizeof dest, "%s/dest-%s", base, name) < (int)sizeof dest);
  ck_assert_msg(mkdir(dest, 0755) == 0, "mkdir %s: %s", dest, strerror(errno));
  make_in(dest, "install");
  return dest;
}

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
  fputs(text, f);
  ck_assert(fclose(f) == 0);
}

static void check_file(const char *dest, const char *rel, mode_t mode)
{
  char path[PATH_MAX];
  struct stat st;
  ck_assert(snprintf(path, sizeof path, "%s%s", dest, rel) < (int)sizeof path);
  ck_assert_msg(lstat(path, &st) == 0, "%s is not installed: %s", rel, strerror(errno));
  ck_assert_msg(S_ISREG(st.st_mode), "%s is not a regular file", rel);
  ck_assert_msg((st.st_mode & 07777) == mode, "%s has mode %o, not %o", rel, (unsigned)(st.st_mode & 07777),
                (unsigned)mode);
}

static void check_link(const char *dest, const char *rel, const char *target)
{
  char path[PATH_MAX], got[PATH_MAX];
  ck_assert(snprintf(path, sizeof path, "%s%s", dest, rel) < (int)sizeof path);
  ssize_t n = readlink(path, got, sizeof got - 1);
  ck_assert_msg(n > 0, "%s is not a symbolic link: %s", rel, strerror(errno));
  got[n] = '\0';
  ck_assert_msg(strcmp(got, target) == 0, "%s points to %s, not %s", rel, got, target);
  struct stat st;
  ck_assert_msg(stat(path, &st) == 0, "%s is a dangling link", rel);
}

/* A program's run: exit status 0 and exactly the expected stdout (out is
 * freed). Its stderr went to the file errname in the run's directory and
 * is shown on failure only: a sanitized library warns there about
 * makecontext. */
static void check_output(const char *what, int rc, char *out, const char *expected, const char *errname)
{
  if (rc != 0 || strcmp(out, expected) != 0) {
    char *err;
    sh(&err, "cat '%s/%s'", base, errname);
    ck_abort_msg("%s exited with %d and printed:\n%s\nexpected:\n%s\nstderr:\n%s", what, rc, out, expected, err);
  }
  free(out);
}

/* What a user runs to build against the installation in dest. */
#define PKG_ENV "PKG_CONFIG_LIBDIR='%s/usr/lib/pkgconfig' PKG_CONFIG_SYSROOT_DIR='%s' "

START_TEST(test_files_and_soname)
{
  const char *dest = install("files");
  check_file(dest, "/usr/lib/libtasklocal.so.0.3.0", 0755);
  check_link(dest, "/usr/lib/libtasklocal.so.0", "libtasklocal.so.0.3.0");
  check_link(dest, "/usr/lib/libtasklocal.so", "libtasklocal.so.0.3.0");
  check_file(dest, "/usr/include/tasklocal.h", 0644);
  check_file(dest, "/usr/include/tasklocal_dynamic.h", 0644);
  check_file(dest, "/usr/include/tasklocal.hpp", 0644);
  check_file(dest, "/usr/lib/pkgconfig/tasklocal.pc", 0644);
  check_file(dest, "/usr/bin/tasklocal-run", 0755);
  check_file(dest, "/usr/bin/tasklocal-trace", 0755);
  check_file(dest, "/usr/share/man/man3/tasklocal.3", 0644);
  check_file(dest, "/usr/share/man/man1/tasklocal-run.1", 0644);
  check_file(dest, "/usr/share/man/man1/tasklocal-trace.1", 0644);
  check_file(dest, "/usr/share/man/man7/tasklocal.7", 0644);
  check_file(dest, "/usr/share/gdb/auto-load/usr/lib/libtasklocal.so.0.3.0-gdb.py", 0644);

  char *out;
  int rc = sh(&out, "readelf -d '%s/usr/lib/libtasklocal.so.0.3.0'", dest);
  ck_assert_msg(rc == 0, "readelf: %s", out);
  ck_assert_msg(strstr(out, "Library soname: [libtasklocal.so.0]") != NULL, "wrong or no soname:\n%s", out);
  free(out);

  /* The installed headers and gdb extension are the tree's, byte for byte. */
  const char *headers[] = {"tasklocal.h", "tasklocal_dynamic.h", "tasklocal.hpp"};
  for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
    rc = sh(&out, "cmp '%s/include/%s' '%s/usr/include/%s'", src, headers[i], dest, headers[i]);
    ck_assert_msg(rc == 0, "the installed %s differs: %s", headers[i], out);
    free(out);
  }
  rc = sh(&out, "cmp '%s/scripts/gdb/tasklocal-gdb.py' "
          "'%s/usr/share/gdb/auto-load/usr/lib/libtasklocal.so.0.3.0-gdb.py'", src, dest);
  ck_assert_msg(rc == 0, "the installed gdb extension differs: %s", out);
  free(out);

  /* The library keeps its debug information, which the extension reads. */
  rc = sh(&out, "readelf -S '%s/usr/lib/libtasklocal.so.0.3.0'", dest);
  ck_assert_msg(rc == 0 && strstr(out, ".debug_info") != NULL, "the installed library has no debug information:\n%s",
                out);
  free(out);
}
END_TEST

START_TEST(test_pkgconfig)
{
  const char *dest = install("pc");
  char *out;
  int rc = sh(&out, PKG_ENV "pkg-config --modversion tasklocal", dest, dest);
  ck_assert_msg(rc == 0 && strcmp(out, "0.3.0\n") == 0, "pkg-config --modversion: %s", out);
  free(out);
  /* The file itself names the prefix, not the staging directory. */
  rc = sh(&out, "PKG_CONFIG_LIBDIR='%s/usr/lib/pkgconfig' pkg-config --variable=prefix tasklocal", dest);
  ck_assert_msg(rc == 0 && strcmp(out, "/usr\n") == 0, "the prefix in tasklocal.pc: %s", out);
  free(out);
  rc = sh(&out, PKG_ENV "pkg-config --cflags --libs tasklocal", dest, dest);
  ck_assert_msg(rc == 0, "pkg-config --cflags --libs: %s", out);
  char want[3 * PATH_MAX];
  ck_assert(snprintf(want, sizeof want, "-I%s/usr/include -L%s/usr/lib -ltasklocal", dest, dest) < (int)sizeof want);
  ck_assert_msg(strstr(out, want) != NULL, "pkg-config gave '%s', expected '%s'", out, want);
  free(out);
}
END_TEST

/* A program linked with -ltasklocal: the library's ucontext functions come
 * first, so each coroutine has its own value without LD_PRELOAD. */
static const char linked_prog[] =
    "#define _GNU_SOURCE\n"
    "#include <stdio.h>\n"
    "#include <ucontext.h>\n"
    "#include <tasklocal.h>\n"
    "\n"
    "static tl_key_t key;\n"
    "static ucontext_t main_uc, co_uc;\n"
    "static char stack[256 * 1024];\n"
    "\n"
    "static void co(void)\n"
    "{\n"
    "  tl_set(key, \"coroutine\");\n"
    "  swapcontext(&co_uc, &main_uc);\n"
    "  printf(\"co sees %s\\n\", (const char *)tl_get(key));\n"
    "}\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "  if (tl_key_create(&key, NULL) != 0 || tl_set(key, \"main\") != 0)\n"
    "    return 1;\n"
    "  getcontext(&co_uc);\n"
    "  co_uc.uc_stack.ss_sp = stack;\n"
    "  co_uc.uc_stack.ss_size = sizeof stack;\n"
    "  co_uc.uc_link = &main_uc;\n"
    "  makecontext(&co_uc, co, 0);\n"
    "  swapcontext(&main_uc, &co_uc);\n"
    "  printf(\"main sees %s\\n\", (const char *)tl_get(key));\n"
    "  swapcontext(&main_uc, &co_uc);\n"
    "  printf(\"available=%d version=%d\\n\", tl_available(), TL_VERSION);\n"
    "  return 0;\n"
    "}\n";

START_TEST(test_build_and_run)
{
  const char *dest = install("prog");
  char path[PATH_MAX], *out;
  ck_assert(snprintf(path, sizeof path, "%s/prog.c", base) < (int)sizeof path);
  write_file(path, linked_prog);
  int rc = sh(&out,
              "cd '%s' && " TL_TEST_CC " -std=c11 -Wall -Wextra -Werror " PROG_CFLAGS " prog.c -o prog "
              "$(" PKG_ENV "pkg-config --cflags --libs tasklocal)",
              base, dest, dest);
  ck_assert_msg(rc == 0, "building with pkg-config failed:\n%s", out);
  free(out);

  /* It needs the library by its soname, the name that stays across
   * compatible versions. */
  rc = sh(&out, "readelf -d '%s/prog'", base);
  ck_assert_msg(rc == 0 && strstr(out, "Shared library: [libtasklocal.so.0]") != NULL,
                "the program does not need libtasklocal.so.0:\n%s", out);
  free(out);

  rc = sh(&out, RUN_ENV "LD_LIBRARY_PATH='%s/usr/lib' '%s/prog' 2>'%s/prog.err'", dest, base, base);
  check_output("the linked program", rc, out, "main sees main\nco sees coroutine\navailable=1 version=300\n",
               "prog.err");

  /* It came from the installation, not from the build tree. */
  rc = sh(&out, "LD_LIBRARY_PATH='%s/usr/lib' " LDD " '%s/prog'", dest, base);
  ck_assert_msg(rc == 0 && strstr(out, "/usr/lib/libtasklocal.so.0") != NULL && strstr(out, dest) != NULL,
                "ldd does not show the installed library:\n%s", out);
  free(out);
}
END_TEST

/* Header-only: nothing linked; the installed tasklocal-run preloads the
 * installed library, which the program then finds. */
static const char dynamic_prog[] = /* a format: the define, then the header */
    "%s"
    "#include <stdio.h>\n"
    "#include <%s>\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "  printf(\"available=%%d\\n\", tl_available());\n"
    "  return 0;\n"
    "}\n";

START_TEST(test_tasklocal_run)
{
  const char *dest = install("run");
  char path[PATH_MAX], *out;
  int rc = sh(&out, "'%s/usr/bin/tasklocal-run' --version", dest);
  ck_assert_msg(rc == 0 && strcmp(out, "tasklocal-run 0.3.0\n") == 0, "tasklocal-run --version: %s", out);
  free(out);
  rc = sh(&out, "'%s/usr/bin/tasklocal-trace' --version", dest);
  ck_assert_msg(rc == 0 && strcmp(out, "tasklocal-trace 0.3.0\n") == 0, "tasklocal-trace --version: %s", out);
  free(out);

  /* Header-only by defining TL_DYNAMIC, then by including
   * tasklocal_dynamic.h. */
  for (int v = 0; v < 2; v++) {
    ck_assert(snprintf(path, sizeof path, "%s/dyn.c", base) < (int)sizeof path);
    char *text;
    ck_assert(asprintf(&text, dynamic_prog, v == 0 ? "#define TL_DYNAMIC\n" : "",
                       v == 0 ? "tasklocal.h" : "tasklocal_dynamic.h") >= 0);
    write_file(path, text);
    free(text);
    rc = sh(&out,
            "cd '%s' && " TL_TEST_CC " -std=c11 -Wall -Wextra -Werror dyn.c -o dyn "
            "$(" PKG_ENV "pkg-config --cflags tasklocal) -ldl",
            base, dest, dest);
    ck_assert_msg(rc == 0, "building the header-only program failed:\n%s", out);
    free(out);

    rc = sh(&out, "env -u LD_PRELOAD '%s/dyn' 2>'%s/dyn.err'", base, base);
    check_output("the header-only program alone", rc, out, "available=0\n", "dyn.err");
    rc = sh(&out, "env -u LD_PRELOAD -u TASKLOCAL_LIB " RUN_ENV "'%s/usr/bin/tasklocal-run' '%s/dyn' 2>'%s/dyn.err'",
            dest, base, base);
    check_output("the header-only program under the installed tasklocal-run", rc, out, "available=1\n", "dyn.err");
  }
}
END_TEST

/* A C++ program built against the installation with tasklocal.hpp. */
static const char cxx_prog[] =
    "#include <cstdio>\n"
    "#include <tasklocal.hpp>\n"
    "\n"
    "int main()\n"
    "{\n"
    "  tl_key_t key;\n"
    "  if (tl_key_create(&key, nullptr) != 0)\n"
    "    return 1;\n"
    "  {\n"
    "    tl::with guard(key, \"bound\");\n"
    "    std::printf(\"%s\\n\", static_cast<const char *>(tl_get(key)));\n"
    "  }\n"
    "  std::printf(\"%s\\n\", tl_get(key) == nullptr ? \"unbound\" : \"still bound\");\n"
    "  return 0;\n"
    "}\n";

START_TEST(test_cxx_header)
{
  char *out = NULL;
  if (TL_TEST_EMULATED || sh(&out, "command -v c++") != 0) {
    fprintf(stderr, "test_cxx_header: skipped (no C++ compiler for this build)\n");
    free(out);
    return;
  }
  free(out);
  const char *dest = install("cxx");
  char path[PATH_MAX];
  ck_assert(snprintf(path, sizeof path, "%s/prog.cpp", base) < (int)sizeof path);
  write_file(path, cxx_prog);
  int rc = sh(&out,
              "cd '%s' && c++ -std=c++11 -Wall -Wextra -Wpedantic -Werror " PROG_CFLAGS " prog.cpp -o prog-cxx "
              "$(" PKG_ENV "pkg-config --cflags --libs tasklocal)",
              base, dest, dest);
  ck_assert_msg(rc == 0, "building the C++ program failed:\n%s", out);
  free(out);
  rc = sh(&out, RUN_ENV "LD_LIBRARY_PATH='%s/usr/lib' '%s/prog-cxx' 2>'%s/prog.err'", dest, base, base);
  check_output("the C++ program", rc, out, "bound\nunbound\n", "prog.err");
}
END_TEST

START_TEST(test_man_pages)
{
  static const char *const pages[][2] = {
    {"man3/tasklocal.3", "3 tasklocal"},
    {"man1/tasklocal-run.1", "1 tasklocal-run"},
    {"man1/tasklocal-trace.1", "1 tasklocal-trace"},
    {"man7/tasklocal.7", "7 tasklocal"},
  };
  const char *dest = install("man");
  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
    char *out;
    /* man -l renders the file itself; groff's warnings (with --warnings)
     * go to stderr, which sh() joins to what is read, so stdout goes to
     * a file of its own and anything read back is a warning. */
    int rc = sh(&out,
                "MANWIDTH=80 MANPAGER=cat PAGER=cat man --warnings -l '%s/usr/share/man/%s' "
                ">'%s/page.txt' && test -s '%s/page.txt'",
                dest, pages[i][0], base, base);
    ck_assert_msg(rc == 0, "man -l %s failed:\n%s", pages[i][0], out);
    ck_assert_msg(out[0] == '\0', "man -l %s warns:\n%s", pages[i][0], out);
    free(out);
    rc = sh(&out, "groff -man -Tutf8 -ww -z '%s/usr/share/man/%s'", dest, pages[i][0]);
    ck_assert_msg(rc == 0 && out[0] == '\0', "groff -ww %s warns:\n%s", pages[i][0], out);
    free(out);
    /* A user finds it by name in the installed manual. */
    rc = sh(&out, "MANWIDTH=80 MANPAGER=cat PAGER=cat man -M '%s/usr/share/man' %s | head -1", dest,
            pages[i][1]);
    ck_assert_msg(rc == 0 && strstr(out, "TASKLOCAL") != NULL, "man -M ... %s: %s", pages[i][1], out);
    free(out);
  }
}
END_TEST

/* gdb loads the installed extension by itself, as the installed library's
 * objfile script, once its directory is a scripts directory and a safe
 * path (a prefix other than gdb's own needs both), and reads the installed
 * library's structures with it. Then uninstall leaves nothing. */
START_TEST(test_gdb_autoload)
{
  if (TL_TEST_UNDER_ASAN) {
    fprintf(stderr, "check_install: the gdb auto-load test needs the plain build; skipped\n");
    return;
  }
  if (TL_TEST_EMULATED) {
    fprintf(stderr, "check_install: gdb cannot run an aarch64 program under qemu-user; auto-load test skipped\n");
    return;
  }
  char *out;
  if (sh(&out, "command -v gdb") != 0) {
    fprintf(stderr, "check_install: gdb is not installed (scripts/install-deps installs it); "
                    "auto-load test skipped\n");
    free(out);
    return;
  }
  free(out);
  ck_assert_msg(src[0] != '\0' && base[0] != '\0', "no source tree or temporary directory");
  char prefix[PATH_MAX];
  ck_assert(snprintf(prefix, sizeof prefix, "%s/gdbprefix", base) < (int)sizeof prefix);
  make_in_prefix("", prefix, "install");
  char script[2 * PATH_MAX];
  ck_assert(snprintf(script, sizeof script, "%s/share/gdb/auto-load%s/lib/libtasklocal.so.0.3.0-gdb.py", prefix,
                     prefix) < (int)sizeof script);
  check_file("", script, 0644);
  int rc = sh(&out,
              "gdb -nx -batch -iex 'add-auto-load-scripts-directory %s/share/gdb/auto-load' "
              "-iex 'add-auto-load-safe-path %s/share/gdb/auto-load' -ex 'set startup-with-shell off' "
              "-ex 'set environment LD_PRELOAD %s/lib/libtasklocal.so' -ex 'catch syscall exit_group' -ex run "
              "-ex 'tl stats' -ex kill --args /bin/true",
              prefix, prefix, prefix);
  ck_assert_msg(rc == 0 && strstr(out, "tasklocal: stats: created=0 finished=0 abandoned=0 released=0 ") != NULL,
                "gdb did not load the installed extension (rc %d):\n%s", rc, out);
  free(out);
  make_in_prefix("", prefix, "uninstall");
  rc = sh(&out, "find '%s' ! -type d", prefix);
  ck_assert_msg(rc == 0 && out[0] == '\0', "make uninstall left:\n%s", out);
  free(out);
}
END_TEST

START_TEST(test_uninstall)
{
  const char *dest = install("uninstall");
  char *out;
  make_in(dest, "uninstall");
  int rc = sh(&out, "find '%s' ! -type d", dest);
  ck_assert_msg(rc == 0 && out[0] == '\0', "make uninstall left:\n%s", out);
  free(out);
  /* Twice is harmless, as after a partial removal by hand. */
  make_in(dest, "uninstall");
}
END_TEST

static Suite *install_suite(void)
{
  Suite *s = suite_create("install");
  TCase *tc = tcase_create("install");
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, TCASE_TIMEOUT_S);
  tcase_add_test(tc, test_files_and_soname);
  tcase_add_test(tc, test_pkgconfig);
  tcase_add_test(tc, test_build_and_run);
  tcase_add_test(tc, test_tasklocal_run);
  tcase_add_test(tc, test_cxx_header);
  tcase_add_test(tc, test_man_pages);
  tcase_add_test(tc, test_gdb_autoload);
  tcase_add_test(tc, test_uninstall);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(install_suite());
}
