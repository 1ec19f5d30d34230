/* Test plugin for the leaky programs (tests/programs/leak_*.c).
 *
 * Preloaded after libtasklocal.so, it defines the weak hooks those
 * unmodified programs call, so that they can bind task-local values and
 * name tasks without including tasklocal.h:
 *   leakplug_set(key, value, destructor)  binds value under the named key
 *                                         in the running task; the key is
 *                                         made on first use, with a
 *                                         destructor that does nothing when
 *                                         destructor is non-zero, else none
 *   leakplug_name(name)                   names the running task
 * Without the plugin the hooks are absent and the programs skip them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tasklocal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void ignore(void *value)
{
  (void)value;
}

static void complain(const char *what, const char *name, int err)
{
  char line[256];
  int n = snprintf(line, sizeof line, "leakplug: %s %s: %s\n", what, name, strerror(err));
  if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
    return;
}

static tl_key_t key_of(const char *name, int destructor)
{
  tl_key_t key = 0;
  pthread_mutex_lock(&lock);
  if (tl_key_find(&key, name) != 0) {
    tl_key_attr_t attr = TL_KEY_ATTR_INIT;
    attr.name = name;
    attr.destroy = destructor ? ignore : NULL;
    int err = tl_key_create_attr(&key, &attr);
    if (err != 0) {
      complain("cannot create key", name, err);
      key = 0;
    }
  }
  pthread_mutex_unlock(&lock);
  return key;
}

__attribute__((visibility("default"))) void leakplug_set(const char *name, void *value, int destructor)
{
  tl_key_t key = key_of(name, destructor);
  int err = key != 0 ? tl_set(key, value) : EINVAL;
  if (err != 0)
    complain("cannot set", name, err);
}

__attribute__((visibility("default"))) void leakplug_name(const char *name)
{
  int err = tl_task_set_name(tl_current(), name);
  if (err != 0)
    complain("cannot name the task", name, err);
}
