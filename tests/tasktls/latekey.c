/* A pthread key made after a task saved its values: coroutine A switches
 * away before any key exists; B makes libreqid's key (its first use) and
 * sets its context; when A resumes it must find no context of its own,
 * not B's and not whatever its saved state held where the key's value now
 * goes. One line on stdout:
 *   latekey: a_fresh=N b_own=N
 * and the exit status is 0 when the key is per task. */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "reqid.h"

#define STACK_SIZE (256 * 1024)

static ucontext_t sched, a, b;
static int a_fresh, b_own;

static void task_a(void)
{
  swapcontext(&a, &sched);
  a_fresh = !reqid_has_ctx();
}

static void task_b(void)
{
  reqid_set(5);
  swapcontext(&b, &sched);
  b_own = reqid_ctx() == 5;
}

static void make(ucontext_t *c, void (*fn)(void))
{
  getcontext(c);
  c->uc_stack.ss_sp = malloc(STACK_SIZE);
  c->uc_stack.ss_size = STACK_SIZE;
  c->uc_link = &sched;
  makecontext(c, fn, 0);
}

int main(void)
{
  make(&a, task_a);
  make(&b, task_b);
  swapcontext(&sched, &a);                 /* A saves: no key exists yet */
  swapcontext(&sched, &b);                 /* B makes the key, sets it */
  swapcontext(&sched, &a);                 /* A resumes and ends */
  swapcontext(&sched, &b);                 /* B resumes and ends */
  printf("latekey: a_fresh=%d b_own=%d\n", a_fresh, b_own);
  free(a.uc_stack.ss_sp);
  free(b.uc_stack.ss_sp);
  return a_fresh && b_own ? 0 : 1;
}
