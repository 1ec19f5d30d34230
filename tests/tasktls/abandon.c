/* A task's per-task key values at its abandonment: the coroutine makes its
 * libreqid context and switches away for good; main makes its ucontext_t
 * again, which abandons the task, and the context's destructor must run
 * then, on main's thread, while main's own context (the root task's) stays
 * untouched. The coroutine made next in the same ucontext_t starts with
 * nothing. One line on stdout:
 *   abandon: destroyed_at_remake=N fresh=N root=N
 * and the exit status is 0 when the key is per task. */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "reqid.h"

#define STACK_SIZE (256 * 1024)

static ucontext_t sched, co;
static int fresh;

static void first(void)
{
  reqid_set(7);
  swapcontext(&co, &sched);
  abort();                                 /* never resumed */
}

static void second(void)
{
  fresh = !reqid_has_ctx() && reqid_get() == 0;
}

static void make(void (*fn)(void), void *stack)
{
  getcontext(&co);
  co.uc_stack.ss_sp = stack;
  co.uc_stack.ss_size = STACK_SIZE;
  co.uc_link = &sched;
  makecontext(&co, fn, 0);
}

int main(void)
{
  void *stack = malloc(STACK_SIZE);
  reqid_set(-1);
  make(first, stack);
  swapcontext(&sched, &co);
  make(second, stack);
  int destroyed = reqid_ctx_destroyed();
  swapcontext(&sched, &co);
  int root = reqid_ctx() == -1 && reqid_get() == -1;
  printf("abandon: destroyed_at_remake=%d fresh=%d root=%d\n", destroyed, fresh, root);
  free(stack);
  return destroyed == 1 && fresh && root ? 0 : 1;
}
