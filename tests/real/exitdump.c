/* Test plugin for make check-real: the live-task report at _exit.
 *
 * stress-ng's workers are forked processes that leave with _exit, which
 * skips the exit handlers where the shim prints TASKLOCAL_STATS: the
 * coroutines they ran would leave no trace. Preloaded after the shim, this
 * plugin wraps _exit and first appends the live-task report (tl_dump) to
 * the file named by TLREAL_DUMP, so that the test can see that the shim
 * tracked the workers' tasks. Without TLREAL_DUMP it only forwards.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "tasklocal.h"

__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
  const char *path = getenv("TLREAL_DUMP");
  if (path != NULL && *path != '\0') {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      tl_dump(fd);
      close(fd);
    }
  }
  void (*real)(int) = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
  if (real != NULL)
    real(status);
  /* Should the lookup fail, the process still ends as it asked to. */
  for (;;)
    syscall(SYS_exit_group, status);
}
