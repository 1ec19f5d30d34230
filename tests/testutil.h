/* Small helpers shared by the Check suites. */
#ifndef TL_TESTUTIL_H
#define TL_TESTUTIL_H

#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TL_BUILD_DIR
#error "TL_BUILD_DIR must name the build directory"
#endif

/* The resident set size of this process, in KiB. */
static inline long tl_test_rss_kib(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return rss * 4;
}

/* Runs every suite given, with Check's fork mode so that each test has its
 * own process, and returns the exit status for main(). */
static inline int tl_test_run(Suite *s)
{
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
