/* A program that tells the sanitizers about its switches itself, as QEMU
 * built with --enable-asan does (util/coroutine-ucontext.c): it calls
 * __sanitizer_start_switch_fiber before each swapcontext and
 * __sanitizer_finish_switch_fiber after it, and switches ThreadSanitizer
 * fibers. The shim must then stay out of it: a second start before the
 * switch makes ASan abort ("starting fiber switch while in fiber switch").
 *
 * The annotation functions are weak: built without a sanitizer, they are
 * absent and the program is a plain asymmetric scheduler. Each coroutine
 * unwinds with longjmp once (see unwind.c), which ASan handles quietly only
 * when it knows which stack the thread runs on.
 */
#include "prog.h"
#include <setjmp.h>
#include <stddef.h>

#define NCO 2
#define STEPS 3
#define STACK_SIZE (256 * 1024)

void __sanitizer_start_switch_fiber(void **fake_save, const void *bottom, size_t size) __attribute__((weak));
void __sanitizer_finish_switch_fiber(void *fake, const void **bottom_old, size_t *size_old)
    __attribute__((weak));
void *__tsan_get_current_fiber(void) __attribute__((weak));
void *__tsan_create_fiber(unsigned flags) __attribute__((weak));
void __tsan_destroy_fiber(void *fiber) __attribute__((weak));
void __tsan_switch_to_fiber(void *fiber, unsigned flags) __attribute__((weak));

struct coro {
  ucontext_t ctx;
  char *stack;
  const char *name;
  void *fake;                              /* ASan's fake stack while suspended */
  void *fiber;                             /* TSan's fiber */
  jmp_buf on_error;
  int n;
};

static ucontext_t sched_ctx;
static struct coro coros[NCO];
static void *sched_fake, *sched_fiber;
static const void *sched_bottom;
static size_t sched_size;

static void start_switch(void **fake_save, const void *bottom, size_t size, void *fiber)
{
  if (__sanitizer_start_switch_fiber)
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
  if (__tsan_switch_to_fiber && fiber != NULL)
    __tsan_switch_to_fiber(fiber, 0);
}

static void finish_switch(void *fake, const void **bottom_old, size_t *size_old)
{
  if (__sanitizer_finish_switch_fiber)
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
}

static void yield(struct coro *co)
{
  start_switch(&co->fake, sched_bottom, sched_size, sched_fiber);
  swapcontext(&co->ctx, &sched_ctx);
  finish_switch(co->fake, NULL, NULL);
}

__attribute__((noinline)) static void fail(struct coro *co)
{
  longjmp(co->on_error, 1);
}

static void coro_main(int index)
{
  struct coro *co = &coros[index];
  /* The first thing on a new stack: the switch that started it ends. */
  finish_switch(NULL, &sched_bottom, &sched_size);
  probe(co->name);
  if (setjmp(co->on_error) != 0) {
    printf("%s: unwound at step %d\n", co->name, co->n);
    probe(co->name);
  }
  while (++co->n <= STEPS) {
    printf("%s: step %d\n", co->name, co->n);
    yield(co);
    probe(co->name);
    if (co->n == index + 1)
      fail(co);
  }
  printf("%s: returns\n", co->name);
  /* The coroutine ends: its fake stack goes (NULL), and uc_link resumes
   * the scheduler. */
  start_switch(NULL, sched_bottom, sched_size, sched_fiber);
}

int main(void)
{
  static const char *names[NCO] = {"co1", "co2"};

  probe("main");
  if (__tsan_get_current_fiber)
    sched_fiber = __tsan_get_current_fiber();
  for (int i = 0; i < NCO; i++) {
    struct coro *co = &coros[i];
    co->name = names[i];
    if (getcontext(&co->ctx) != 0)
      return 1;
    co->stack = malloc(STACK_SIZE);
    if (co->stack == NULL)
      return 1;
    co->ctx.uc_stack.ss_sp = co->stack;
    co->ctx.uc_stack.ss_size = STACK_SIZE;
    co->ctx.uc_link = &sched_ctx;
    makecontext(&co->ctx, (void (*)(void))coro_main, 1, i);
    if (__tsan_create_fiber)
      co->fiber = __tsan_create_fiber(0);
  }
  int live = NCO;
  while (live > 0) {
    live = 0;
    for (int i = 0; i < NCO; i++) {
      struct coro *co = &coros[i];
      if (co->n > STEPS)
        continue;
      live++;
      probe("main");
      start_switch(&sched_fake, co->stack, STACK_SIZE, co->fiber);
      swapcontext(&sched_ctx, &co->ctx);
      finish_switch(sched_fake, NULL, NULL);
    }
  }
  for (int i = 0; i < NCO; i++) {
    if (__tsan_destroy_fiber && coros[i].fiber != NULL)
      __tsan_destroy_fiber(coros[i].fiber);
    free(coros[i].stack);
  }
  printf("main: all done\n");
  return 0;
}
