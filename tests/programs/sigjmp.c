/* Pattern: ucontext start, sigsetjmp/siglongjmp switches (doc/tracking.md), as
 * QEMU's coroutine-ucontext backend does it.
 *
 * Each coroutine is made with makecontext and entered once with
 * swapcontext, into a trampoline that records its resume point with
 * sigsetjmp and goes straight back to its creator: co1 and co3 with
 * siglongjmp (as QEMU), co2 with swapcontext. From then on every switch
 * between main and the coroutines is sigsetjmp/siglongjmp, which the shim
 * never sees. When a coroutine's work is done, the trampoline jumps to main
 * for good, as QEMU's does: the contexts never return, so the coroutines
 * never finish as ucontext tasks, and main frees their stacks.
 */
#include "prog.h"
/* glibc's fortified longjmp refuses to jump to a frame on another stack,
 * which is the whole point here, so the check is turned off as QEMU does. */
#undef _FORTIFY_SOURCE
#include <setjmp.h>
#include <stdint.h>

#define NCO 3
/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

struct coro {
  sigjmp_buf env;   /* where the coroutine continues when switched to */
  ucontext_t uc;    /* used only to enter the trampoline the first time */
  void *stack;
  const char *name;
  int start_by_swap; /* goes back to its creator with swapcontext, not siglongjmp */
  int steps;
  long result;
  int done;
};

static struct coro coros[NCO];
static sigjmp_buf sched_env;  /* where main continues when a coroutine yields */
static sigjmp_buf create_env; /* where the creator continues after the first entry */
static ucontext_t create_uc;  /* the creator's context, saved by the first entry */

/* Leaves the coroutine for main; returns when main switches back. */
static void yield(struct coro *co)
{
  if (!sigsetjmp(co->env, 0))
    siglongjmp(sched_env, 1);
}

/* Switches from main to the coroutine; returns when it yields. Kept apart
 * from main's loop so that no local of main is live across the jump. */
static void run(struct coro *co)
{
  if (!sigsetjmp(sched_env, 0))
    siglongjmp(co->env, 1);
}

static void body(struct coro *co)
{
  long product = 1;

  probe(co->name);
  for (int step = 1; step <= co->steps; step++) {
    product *= step + 1;
    printf("%s: step %d product %ld\n", co->name, step, product);
    probe(co->name);
    yield(co);
    probe(co->name);
  }
  co->result = product;
  printf("%s: done\n", co->name);
  probe(co->name);
}

static void trampoline(uint32_t low, uint32_t high)
{
  /* Read through a volatile pointer: the variable must keep its value when
   * sigsetjmp returns the second time. */
  struct coro *volatile co = (struct coro *)(((uintptr_t)high << 32) | low);

  if (!sigsetjmp(co->env, 0)) {
    if (co->start_by_swap)
      swapcontext(&co->uc, &create_uc);
    else
      siglongjmp(create_env, 1);
  }
  body(co);
  co->done = 1;
  siglongjmp(sched_env, 1);
}

static int create(struct coro *co)
{
  uintptr_t p = (uintptr_t)co;

  co->stack = malloc(STACK_SIZE);
  if (co->stack == NULL || getcontext(&co->uc) != 0)
    return -1;
  co->uc.uc_stack.ss_sp = co->stack;
  co->uc.uc_stack.ss_size = STACK_SIZE;
  /* Never used: the trampoline does not return. */
  co->uc.uc_link = &create_uc;
  makecontext(&co->uc, (void (*)(void))trampoline, 2, (uint32_t)p,
              (uint32_t)(p >> 32));
  if (!sigsetjmp(create_env, 0))
    swapcontext(&create_uc, &co->uc);
  return 0;
}

int main(void)
{
  static const char *const names[NCO] = {"co1", "co2", "co3"};
  int live = NCO;
  int failed = 0;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  probe("main");
  for (int i = 0; i < NCO; i++) {
    coros[i].name = names[i];
    coros[i].steps = 2 + i;
    coros[i].start_by_swap = i == 1;
    if (create(&coros[i]) != 0)
      return 2;
    probe("main");
    printf("main: created %s\n", names[i]);
  }

  for (int round = 1; live > 0; round++) {
    printf("main: round %d\n", round);
    for (int i = 0; i < NCO; i++) {
      struct coro *co = &coros[i];
      if (co->done)
        continue;
      probe("main");
      run(co);
      probe("main");
      if (co->done) {
        printf("main: %s done, frees its stack\n", co->name);
        free(co->stack);
        co->stack = NULL;
        live--;
      }
    }
  }

  for (int i = 0; i < NCO; i++) {
    long expected = 1;
    for (int k = 2; k <= coros[i].steps + 1; k++)
      expected *= k;
    printf("main: %s result %ld (%s)\n", coros[i].name, coros[i].result,
           coros[i].result == expected ? "ok" : "WRONG");
    failed |= coros[i].result != expected;
  }
  probe("main");
  return failed;
}
