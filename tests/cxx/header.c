/* The compile matrix's translation unit (tests/cxx/check_cxx.c): valid C99
 * and C++11, compiled as either, linked with the library, header-only
 * (TL_DYNAMIC) or without the inline read path (TL_NO_INLINE), or through
 * tasklocal_dynamic.h or tasklocal.hpp (TL_MATRIX_OWN_HEADER), under every
 * warning the matrix turns on. It calls every function and macro of the
 * header, so that all of the header's inline code is compiled, and when
 * the suite also runs it, it checks what each call answers.
 *
 * Usage: header AVAILABLE, where AVAILABLE is what tl_available() must
 * say (1 with the library, 0 for the header-only fallback). Prints one
 * line per failed check and exits 1 if there was any. Built together with
 * header_tu2.c (TL_MATRIX_TU2), in the other language, it also checks that
 * both translation units see the same keys and values. */
#if defined(TL_MATRIX_OWN_HEADER) && defined(__cplusplus)
#include "tasklocal.hpp"
#elif defined(TL_MATRIX_OWN_HEADER)
#include "tasklocal_dynamic.h"
#else
#include "tasklocal.h"
#endif

#include <stdio.h>
#include <stdlib.h>

/* What differs between the two languages, without a C cast (C++'s
 * -Wold-style-cast) or a 0 for a null pointer. FROM_VOID initializes a
 * pointer from a void *, implicitly in C. */
#ifdef __cplusplus
#define NIL nullptr
#define FROM_VOID(type, p) static_cast<type>(p)
#define C_LINKAGE extern "C"
#else
#define NIL NULL
#define FROM_VOID(type, p) (p)
#define C_LINKAGE
#endif

#ifdef TL_MATRIX_TU2
C_LINKAGE int tu2_reads(tl_key_t key, const void *want);
C_LINKAGE int tu2_binds(tl_key_t key, const void *value);
#endif

static int failures;

#define EXPECT(cond)                                                       \
  do {                                                                     \
    if (!(cond)) {                                                         \
      printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
      failures++;                                                          \
    }                                                                      \
  } while (0)

static int destroyed;

static void destroy(void *value)
{
  (void)value;
  destroyed++;
}

static void *init(void *arg)
{
  return arg;
}

static void deferred(void *arg)
{
  (void)arg;
}

static int count_values(tl_key_t key, const char *name, void *value, void *arg)
{
  (void)key;
  (void)name;
  (void)value;
  int *count = FROM_VOID(int *, arg);
  ++*count;
  return 0;
}

static void *no_owner(void *arg)
{
  (void)arg;
  return NIL;
}

/* TL_WITH with a break and a return inside. */
static int with_break_and_return(tl_key_t key, const void *value)
{
  for (int i = 0; i < 3; i++) {
    TL_WITH(key, value)
    {
      if (i == 0)
        break;
      if (i == 1)
        continue;
      return tl_get(key) == value;
    }
  }
  return 0;
}

int main(int argc, char **argv)
{
  int a = 1, b = 2, available = argc > 1 ? atoi(argv[1]) : -1;
  tl_key_t k, named, found;
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.name = "tests/cxx/header";
  attr.init = init;
  attr.init_arg = &b;
  attr.destroy = destroy;
  void *v = NIL;

  EXPECT(tl_available() == available);
  EXPECT(tl_key_create(&k, destroy) == 0);
  EXPECT(tl_key_create_attr(&named, &attr) == 0);
  EXPECT(tl_key_find(&found, "tests/cxx/header") == 0 && found == named);
  EXPECT(tl_key_find(&found, "no such key") == ENOENT);
  EXPECT(tl_key_create_attr(NIL, &attr) == EINVAL);

  EXPECT(tl_get(k) == NIL);
  EXPECT(tl_lookup(k, &v) == ENOENT);
  EXPECT(tl_set(k, &a) == 0 && tl_get(k) == &a);
  EXPECT(tl_lookup(k, &v) == 0 && v == &a);
  EXPECT(tl_get(named) == &b);             /* made by init */
  EXPECT(tl_get(0) == NIL && tl_set(0, &a) == EINVAL);

  tl_token_t token;
  EXPECT(tl_bind(k, &b, &token) == 0 && tl_get(k) == &b);
  EXPECT(tl_unbind(&token) == 0 && tl_get(k) == &a);
  EXPECT(tl_unbind(&token) == EINVAL);
  TL_WITH(k, &b)
  {
    EXPECT(tl_get(k) == &b);
  }
  EXPECT(tl_get(k) == &a);
  EXPECT(with_break_and_return(k, &b) == 1 && tl_get(k) == &a);
#ifdef __cplusplus
  {
    tl::with guard(k, &b);
    EXPECT(guard && guard.error() == 0 && tl_get(k) == &b);
  }
  EXPECT(tl_get(k) == &a);
#endif
#ifdef TL_MATRIX_TU2
  /* The other language's translation unit reads what this one set, and
   * binds where this one reads. */
  EXPECT(tu2_reads(k, &a) == 1);
  EXPECT(tu2_binds(k, &b) == 1 && tl_get(k) == &a);
#endif

  int seen = 0;
  tl_task_t *task = tl_current();
  struct tl_disc disc = {no_owner, NIL};
  if (available) {
    EXPECT(task != NIL && tl_task_id(task) != 0);
    EXPECT(tl_task_set_name(task, "matrix") == 0);
    const char *name = tl_task_name(task);
    EXPECT(name != NIL && name[0] == 'm');
    EXPECT(tl_foreach(NIL, count_values, &seen) == 0 && seen == 2);
    EXPECT(tl_singleton(named, init, &a) == &b);
    EXPECT(tl_defer(TL_SCOPE_THREAD, deferred, NIL) == 0);
    EXPECT(tl_loop_close() == 0);
    EXPECT(tl_disc_end(&disc, &a) == 0);
    EXPECT(tl_dump(-1) == EBADF);
  } else {
    EXPECT(task == NIL);
    EXPECT(tl_task_id(task) == 0);
    EXPECT(tl_task_set_name(task, "matrix") == ENOSYS);
    EXPECT(tl_task_name(task) == NIL);
    EXPECT(tl_foreach(NIL, count_values, &seen) == ENOSYS);
    EXPECT(tl_singleton(named, init, &a) == NIL && errno == ENOSYS);
    EXPECT(tl_defer(TL_SCOPE_THREAD, deferred, NIL) == ENOSYS);
    EXPECT(tl_loop_close() == ENOSYS);
    EXPECT(tl_disc_end(&disc, &a) == ENOSYS);
    EXPECT(tl_dump(-1) == EBADF);
  }

  EXPECT(tl_unset(k) == 0 && tl_lookup(k, &v) == ENOENT);
  EXPECT(tl_key_delete(k) == 0 && tl_get(k) == NIL && tl_set(k, &a) == EINVAL);
  EXPECT(tl_key_delete(named) == 0);
  EXPECT(destroyed == 0);
  printf("%s: %d failed checks\n", argv[0], failures);
  return failures != 0;
}
