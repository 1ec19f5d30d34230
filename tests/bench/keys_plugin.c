/* Benchmark plugin: task-local values in an unmodified program.
 *
 * Preloaded after libtasklocal.so into tests/bench/ucbench.c, it defines
 * the hook that the program calls inside each task and binds one value
 * for each of TLBENCH_KEYS task keys there (4 unless set; 0 binds
 * nothing). Every key has a destructor, so a task's end passes each value
 * to it: make bench times a task life with that work and measures the
 * memory that bound values cost.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasklocal.h"

#define MAX_KEYS 64

static tl_key_t keys[MAX_KEYS];
static int slots[MAX_KEYS];                /* the values: one distinct address per key */
static int nkeys;
static unsigned long destroyed;
static int reported;

/* The destructor counts, and does nothing else: the figure is then the
 * library's own work, not the cost of a free(). */
static void destroy(void *value)
{
  (void)value;
  destroyed++;
}

__attribute__((constructor)) static void plugin_init(void)
{
  const char *env = getenv("TLBENCH_KEYS");
  long n = env != NULL ? strtol(env, NULL, 10) : 4;
  if (n < 0 || n > MAX_KEYS) {
    fprintf(stderr, "keys_plugin: TLBENCH_KEYS must be 0 to %d\n", MAX_KEYS);
    exit(2);
  }
  for (int i = 0; i < n; i++) {
    int err = tl_key_create(&keys[i], destroy);
    if (err != 0) {
      fprintf(stderr, "keys_plugin: tl_key_create: %s\n", strerror(err));
      exit(1);
    }
  }
  nkeys = (int)n;
}

__attribute__((visibility("default"))) void tlbench_task_hook(void)
{
  for (int i = 0; i < nkeys; i++) {
    int err = tl_set(keys[i], &slots[i]);
    if (err != 0 && !reported) {
      reported = 1;
      fprintf(stderr, "keys_plugin: tl_set: %s\n", strerror(err));
    }
  }
}

__attribute__((visibility("default"))) unsigned long tlbench_destroyed(void)
{
  return destroyed;
}
