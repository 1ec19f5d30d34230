/* Test plugin for the switch-pattern programs (tests/programs/).
 *
 * Preloaded after libtasklocal.so, it defines the weak tlprobe() that the
 * unmodified programs call. It keeps one record per task in a task-local
 * key: the first probe in a task makes the record, every probe bumps its
 * count. Each probe logs the task the library reports and the record it
 * found, so the test can see whether a coroutine keeps one identity and
 * one value across every switch; the key's destructor logs when the
 * library ends a task. The log goes to the file named by TLPROBE_LOG (or
 * stderr), never to stdout, which must stay the program's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tasklocal.h"

#define LINE_MAX_LEN 512
#define LABEL_MAX_LEN 100

struct record {
  uint64_t rec;   /* unique in the process, in order of creation */
  uint64_t count; /* probes seen in this task so far */
  char label[LABEL_MAX_LEN + 1];
};

static tl_key_t key;
static int log_fd = STDERR_FILENO;
static atomic_uint_fast64_t next_rec = 1;

/* Writes one whole line with a single write(2): the log is opened with
 * O_APPEND, so lines from several threads never interleave. A line that
 * cannot be written is lost rather than allowed to disturb the program. */
static void emit(const char *line, int len)
{
  ssize_t n;

  if (len <= 0)
    return;
  if (len >= LINE_MAX_LEN)
    len = LINE_MAX_LEN - 1;
  do
    n = write(log_fd, line, (size_t)len);
  while (n < 0 && errno == EINTR);
}

static void destroy_record(void *value)
{
  struct record *r = value;
  char line[LINE_MAX_LEN];

  emit(line, snprintf(line, sizeof line, "destroy rec=%" PRIu64
                      " label=%s count=%" PRIu64 "\n",
                      r->rec, r->label, r->count));
  free(r);
}

/* Runs after the library's own constructors, since the plugin depends on
 * it. The log file stays open until the process ends, because destructors
 * of the main thread's values run during exit. */
__attribute__((constructor)) static void probe_init(void)
{
  const char *path = getenv("TLPROBE_LOG");
  char line[LINE_MAX_LEN];
  int err;

  if (path != NULL && *path != '\0') {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
      log_fd = fd;
  }
  err = tl_key_create(&key, destroy_record);
  if (err != 0)
    emit(line, snprintf(line, sizeof line,
                        "error tl_key_create failed: %s\n", strerror(err)));
}

__attribute__((visibility("default"))) void tlprobe(const char *label)
{
  char line[LINE_MAX_LEN];
  uint64_t task = tl_task_id(tl_current());
  struct record *r = tl_get(key);
  int err;

  if (r == NULL) {
    r = malloc(sizeof *r);
    if (r == NULL) {
      emit(line, snprintf(line, sizeof line,
                          "error out of memory for label=%s\n", label));
      return;
    }
    r->rec = atomic_fetch_add(&next_rec, 1);
    r->count = 0;
    snprintf(r->label, sizeof r->label, "%s", label);
    err = tl_set(key, r);
    if (err != 0) {
      emit(line, snprintf(line, sizeof line,
                          "error tl_set failed for label=%s: %s\n", label,
                          strerror(err)));
      free(r);
      return;
    }
  }
  r->count++;
  emit(line, snprintf(line, sizeof line,
                      "probe label=%.*s task=%" PRIu64 " rec=%" PRIu64
                      " count=%" PRIu64 " avail=%d\n",
                      LABEL_MAX_LEN, label, task, r->rec, r->count,
                      tl_available()));
}
