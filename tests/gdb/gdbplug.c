/* Test plugin for the gdb extension's programs (tests/gdb/tasks.c, mn.c).
 *
 * Preloaded after libtasklocal.so, it defines the weak hooks those
 * unmodified programs call, so that they can name tasks and bind values
 * of every scope without including tasklocal.h:
 *   gdbplug_name(name)                names the running task
 *   gdbplug_set(key, scope, value)    binds value under the named key, made
 *                                     on first use with that scope (0 task,
 *                                     1 thread, 2 custom) and no destructor
 *   gdbplug_session(owner)            the owner of custom-scope keys from
 *                                     now on (NULL for none)
 * Without the plugin the hooks are absent and the programs skip them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tasklocal.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *_Atomic session;

static void *current_session(void *arg)
{
  (void)arg;
  return session;
}

/* One discriminator for every custom key: the test finds its owners by it. */
static const struct tl_disc sessions = {current_session, NULL};

static void complain(const char *what, const char *name, int err)
{
  char line[256];
  int n = snprintf(line, sizeof line, "gdbplug: %s %s: %s\n", what, name, strerror(err));
  if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
    return;
}

__attribute__((visibility("default"))) void gdbplug_name(const char *name)
{
  int err = tl_task_set_name(tl_current(), name);
  if (err != 0)
    complain("cannot name the task", name, err);
}

__attribute__((visibility("default"))) void gdbplug_session(void *owner)
{
  session = owner;
}

__attribute__((visibility("default"))) void gdbplug_set(const char *name, int scope, void *value)
{
  tl_key_t key = 0;
  pthread_mutex_lock(&lock);
  int err = tl_key_find(&key, name);
  if (err != 0) {
    tl_key_attr_t attr = TL_KEY_ATTR_INIT;
    attr.name = name;
    attr.scope = scope;
    attr.disc = scope == TL_SCOPE_CUSTOM ? &sessions : NULL;
    err = tl_key_create_attr(&key, &attr);
  }
  pthread_mutex_unlock(&lock);
  if (err == 0)
    err = tl_set(key, value);
  if (err != 0)
    complain("cannot set", name, err);
}
