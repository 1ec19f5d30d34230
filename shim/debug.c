/* The anchor of the gdb extension (scripts/gdb/tasklocal-gdb.py).
 *
 * A debugger looking at a core file or a stopped process finds this one
 * symbol in the library's debug information and everything else from it:
 * the registries' parts that registry.c, thread.c, keys.c and scope.c publish
 * (internal.h), and a few facts the extension checks before it trusts
 * anything, so that a library of another layout gives a clear message
 * rather than garbage. The anchor is constant and read only by debuggers.
 */
#include "internal.h"
#include "thread.h"
#include "task/registry.h"
#include "reach.h"

struct tl__debug {
  char magic[16];                          /* "tasklocal-debug", NUL-terminated */
  uint32_t version;                        /* TL__DEBUG_VERSION */
  uint32_t task_size, task_ext_size, thread_size, ent_size; /* sizeof, to cross-check the DWARF */
  const char *lib_version;                 /* the library's version, "0.3.0" */
  const struct tl__debug_tasks *tasks;
  const struct tl__debug_threads *threads;
  const struct tl__debug_keys *keys;
  const struct tl__debug_owners *owners;
  const struct tl__debug_scan *scan;       /* since version 4 */
  const struct tl__ent *empty;             /* the table of a scope that never bound anything */
  const void *trampoline, *trampoline_end; /* where every task's stack begins: backtraces stop here */
};

#define TL__STR(x) #x
#define TL__XSTR(x) TL__STR(x)

__attribute__((used)) const struct tl__debug tl__debug = {
  .magic = "tasklocal-debug",
  .version = TL__DEBUG_VERSION,
  .task_size = sizeof(struct tl__task),
  .task_ext_size = sizeof(struct tl__task_ext),
  .thread_size = sizeof(struct tl__thread),
  .ent_size = sizeof(struct tl__ent),
  .lib_version = TL__XSTR(TL_VERSION_MAJOR) "." TL__XSTR(TL_VERSION_MINOR) "." TL__XSTR(TL_VERSION_PATCH),
  .tasks = &tl__debug_tasks,
  .threads = &tl__debug_threads,
  .keys = &tl__debug_keys,
  .owners = &tl__debug_owners,
  .scan = &tl__debug_scan,
  .empty = &tl__empty_ent,
  .trampoline = (const void *)tl__trampoline,
  .trampoline_end = tl__trampoline_end,
};
