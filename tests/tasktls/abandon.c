/* A task's per-task key values when it ends without returning: the
 * coroutine makes its libreqid context and switches away for good, and
 * then main ends it in one of three ways (the argument):
 *   stack    makes a new context on its stack (the task is released)
 *   context  makes its ucontext_t again, on another stack (abandoned)
 *   free     frees its stack (released)
 * The context's destructor must run then, on main's thread, while main's
 * own context (the root task's) stays untouched; the coroutine made next
 * starts with nothing. One line on stdout:
 *   abandon: destroyed_at_end=N fresh=N root=N
 * and the exit status is 0 when the key is per task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "reqid.h"

#define STACK_SIZE (256 * 1024)

static ucontext_t sched, co, co2;
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

static void make(ucontext_t *c, void (*fn)(void), void *stack)
{
  getcontext(c);
  c->uc_stack.ss_sp = stack;
  c->uc_stack.ss_size = STACK_SIZE;
  c->uc_link = &sched;
  makecontext(c, fn, 0);
}

int main(int argc, char **argv)
{
  const char *how = argc > 1 ? argv[1] : "stack";
  void *stack = malloc(STACK_SIZE), *other = malloc(STACK_SIZE);
  reqid_set(-1);
  make(&co, first, stack);
  swapcontext(&sched, &co);
  ucontext_t *next = &co;
  if (strcmp(how, "stack") == 0) {
    make(&co, second, stack);
  } else if (strcmp(how, "context") == 0) {
    make(&co, second, other);
  } else {
    free(stack);
    stack = NULL;
    make(&co2, second, other);
    next = &co2;
  }
  int destroyed = reqid_ctx_destroyed();
  swapcontext(&sched, next);
  int root = reqid_ctx() == -1 && reqid_get() == -1;
  printf("abandon: destroyed_at_end=%d fresh=%d root=%d\n", destroyed, fresh, root);
  free(stack);
  free(other);
  return destroyed == 1 && fresh && root ? 0 : 1;
}
