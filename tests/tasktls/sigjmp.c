/* libreqid's state in coroutines that the program switches with
 * siglongjmp, after entering each once with swapcontext (as QEMU does):
 * switches the shim never sees, so the state cannot follow the tasks
 * there (doc/task-local-tls.md). The test is that nothing breaks: the
 * program runs to its end, whatever the requests it reads back. One line
 * on stdout:
 *   sigjmp: done mismatches=N
 */
#define _GNU_SOURCE
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "reqid.h"

#define NCO 3
#define STEPS 4
#define STACK_SIZE (256 * 1024)

struct coro {
  sigjmp_buf env;
  ucontext_t uc;
  int index;
  int done;
};

static struct coro coros[NCO];
static sigjmp_buf sched_env, create_env;
static ucontext_t create_uc;
static int mismatches;

static void yield(struct coro *co)
{
  if (!sigsetjmp(co->env, 0))
    siglongjmp(sched_env, 1);
}

static void run(struct coro *co)
{
  if (!sigsetjmp(sched_env, 0))
    siglongjmp(co->env, 1);
}

static void trampoline(uint32_t low, uint32_t high)
{
  struct coro *volatile co = (struct coro *)(((uintptr_t)high << 32) | low);
  if (!sigsetjmp(co->env, 0)) {
    if (co->index == 1)
      swapcontext(&co->uc, &create_uc);
    else
      siglongjmp(create_env, 1);
  }
  for (int s = 0; s < STEPS; s++) {
    long id = 10 * (co->index + 1) + s;
    reqid_set(id);
    yield(co);
    if (reqid_get() != id || reqid_ctx() != id)
      mismatches++;
  }
  co->done = 1;
  siglongjmp(sched_env, 1);
}

/* Apart from main's loop: getcontext and sigsetjmp return twice. */
static void create(int i)
{
  struct coro *co = &coros[i];
  uintptr_t p = (uintptr_t)co;
  co->index = i;
  getcontext(&co->uc);
  co->uc.uc_stack.ss_sp = malloc(STACK_SIZE);
  co->uc.uc_stack.ss_size = STACK_SIZE;
  co->uc.uc_link = &create_uc;
  makecontext(&co->uc, (void (*)(void))trampoline, 2, (uint32_t)p, (uint32_t)(p >> 32));
  if (!sigsetjmp(create_env, 0))
    swapcontext(&create_uc, &co->uc);
}

int main(void)
{
  reqid_set(-1);
  for (int i = 0; i < NCO; i++)
    create(i);
  for (int left = NCO; left > 0;) {
    left = 0;
    for (int i = 0; i < NCO; i++)
      if (!coros[i].done) {
        run(&coros[i]);
        left += !coros[i].done;
      }
  }
  for (int i = 0; i < NCO; i++)
    free(coros[i].uc.uc_stack.ss_sp);
  printf("sigjmp: done mismatches=%d\n", mismatches);
  return 0;
}
