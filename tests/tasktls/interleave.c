/* Coroutines that use libreqid's per-request state, interleaved on one
 * thread by a round-robin scheduler: each sets its request, yields, and
 * checks when it resumes that the request is still its own. An unmodified
 * program: with the state per thread, every coroutine sees the last one's
 * request; with TASKLOCAL_TASK_LOCAL naming it, each sees its own.
 *
 * One line of counts on stdout (tests/check_tasktls.c reads it):
 *   tls: fresh_bad=N id_bad=N msg_bad=N root=N  keys: fresh_bad=N bad=N root=N made=N destroyed=N
 *     program: bad=N
 * fresh_bad: coroutines that did not start with what a new thread has (a
 * request id of 0, the message "none", no context); root: whether the
 * main thread's own request survived (1); destroyed: contexts destroyed by
 * the end; program: the program's own __thread variable, which
 * only the test that names it expects per task. The exit status is 0 when
 * libreqid's state is per task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "reqid.h"

#define NCO 4
#define ROUNDS 5
#define STACK_SIZE (256 * 1024)

static ucontext_t sched;
static struct coro {
  ucontext_t ctx;
  int done;
} co[NCO];
static int current;
static int fresh_bad, id_bad, msg_bad, key_fresh_bad, key_bad, prog_bad;
/* The program's own thread-local: an executable exports nothing, so it is
 * in its .symtab only. Not static, so that the compiler cannot assume the
 * switch leaves it alone. */
__thread long program_request;

static void body(void)
{
  int me = current;
  if (reqid_get() != 0 || strcmp(reqid_message(), "none") != 0)
    fresh_bad++;
  if (reqid_has_ctx())
    key_fresh_bad++;
  for (int r = 0; r < ROUNDS; r++) {
    long id = 1000 * (me + 1) + r;
    char want[32];
    snprintf(want, sizeof want, "request %ld", id);
    reqid_set(id);
    program_request = id;
    swapcontext(&co[me].ctx, &sched);
    if (program_request != id)
      prog_bad++;
    if (reqid_get() != id)
      id_bad++;
    if (strcmp(reqid_message(), want) != 0)
      msg_bad++;
    if (reqid_ctx() != id)
      key_bad++;
  }
  co[me].done = 1;
}

/* Apart from main's loop: getcontext returns twice, and no local of the
 * loop must be live across it. */
static void make(int i)
{
  getcontext(&co[i].ctx);
  co[i].ctx.uc_stack.ss_sp = malloc(STACK_SIZE);
  co[i].ctx.uc_stack.ss_size = STACK_SIZE;
  co[i].ctx.uc_link = &sched;
  makecontext(&co[i].ctx, body, 0);
}

int main(void)
{
  reqid_set(-1);
  for (int i = 0; i < NCO; i++)
    make(i);
  for (int left = NCO; left > 0;) {
    left = 0;
    for (int i = 0; i < NCO; i++) {
      if (co[i].done)
        continue;
      current = i;
      swapcontext(&sched, &co[i].ctx);
      left += !co[i].done;
    }
  }
  int root = reqid_get() == -1 && strcmp(reqid_message(), "request -1") == 0, key_root = reqid_ctx() == -1;
  printf("tls: fresh_bad=%d id_bad=%d msg_bad=%d root=%d  keys: fresh_bad=%d bad=%d root=%d made=%d destroyed=%d"
         "  program: bad=%d\n",
         fresh_bad, id_bad, msg_bad, root, key_fresh_bad, key_bad, key_root, reqid_ctx_made(), reqid_ctx_destroyed(),
         prog_bad);
  for (int i = 0; i < NCO; i++)
    free(co[i].ctx.uc_stack.ss_sp);
  int ok = fresh_bad == 0 && id_bad == 0 && msg_bad == 0 && root && key_root && key_fresh_bad == 0 && key_bad == 0 &&
           reqid_ctx_made() == NCO + 1 && reqid_ctx_destroyed() == NCO;
  return ok ? 0 : 1;
}
