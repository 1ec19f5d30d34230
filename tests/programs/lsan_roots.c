/* What LeakSanitizer sees of a suspended coroutine (doc/reports.md): built
 * with AddressSanitizer and run under the shim, the block that only a
 * parked coroutine's stack points to must not be reported. parked_holder
 * mallocs 1234 bytes, keeps the pointer on its own stack (mmap'd, which
 * LeakSanitizer does not read by itself) and waits; its context is a
 * global, so the program could resume it. (Alone, without the fiber
 * annotations the shim makes, AddressSanitizer cannot unwind an allocation
 * made on a coroutine stack, and LeakSanitizer ignores such blocks.)
 */
#include "prog.h"
#include <string.h>
#include <sys/mman.h>

#define STACK (64 * 1024)

static ucontext_t main_ctx;
__attribute__((used)) ucontext_t parked_ctx; /* not static: the compiler must keep it */
static ucontext_t *volatile next_ctx;

/* The block's address is written to the coroutine's stack by a function
 * of its own, and the argument registers are overwritten before the
 * switch, so that no saved register (swapcontext saves the argument
 * registers too) holds it: only the stack does. */
__attribute__((noinline)) static void stash(void *volatile *slot, size_t size)
{
  *slot = malloc(size);
}

__attribute__((noinline)) static void wipe(long a, long b, long c, long d, long e, long f)
{
  __asm__ volatile("" ::"r"(a), "r"(b), "r"(c), "r"(d), "r"(e), "r"(f));
}

__attribute__((noinline)) static void park(ucontext_t *self)
{
  for (;;)
    swapcontext(self, &main_ctx);
}

__attribute__((noinline)) static void hold(size_t size)
{
  void *volatile slot[1];
  ucontext_t *self = next_ctx;
  stash(slot, size);
  wipe(0, 0, 0, 0, 0, 0);
  park(self);
}

void parked_holder(void)
{
  hold(1234);
}

__attribute__((noinline)) static void setup(void)
{
  void *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED)
    exit(1);
  getcontext(&parked_ctx);
  parked_ctx.uc_stack.ss_sp = stack;
  parked_ctx.uc_stack.ss_size = STACK;
  parked_ctx.uc_link = &main_ctx;
  makecontext(&parked_ctx, parked_holder, 0);
  next_ctx = &parked_ctx;
  swapcontext(&main_ctx, &parked_ctx);
  next_ctx = NULL;
}

int main(void)
{
  setup();
  memset(&main_ctx, 0, sizeof main_ctx);
  puts("done");
  return 0;
}
