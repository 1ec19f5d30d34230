/* A suspended coroutine whose ucontext_t and stack the program has freed,
 * for the leak report tests: the report unwinds suspended tasks from their
 * saved context, and must neither crash nor print garbage as frames it
 * trusts. argv[1] picks what happens to the stack after the coroutine
 * parks:
 *   unmap    the stack is unmapped and its ucontext_t freed;
 *   garbage  the stack is overwritten with a pattern (reused memory).
 * The report counts 1 task either way.
 */
#include "prog.h"
#include <string.h>
#include <sys/mman.h>

#define STACK (64 * 1024)

static ucontext_t main_ctx;
static ucontext_t *co;

__attribute__((noinline)) void parked_then_freed(void)
{
  swapcontext(co, &main_ctx);
  __asm__ volatile("");
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "unmap";
  void *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  co = malloc(sizeof *co);
  if (stack == MAP_FAILED || co == NULL)
    return 1;
  getcontext(co);
  co->uc_stack.ss_sp = stack;
  co->uc_stack.ss_size = STACK;
  co->uc_link = &main_ctx;
  makecontext(co, parked_then_freed, 0);
  swapcontext(&main_ctx, co);
  if (strcmp(mode, "garbage") == 0) {
    memset(stack, 0x41, STACK);
  } else {
    munmap(stack, STACK);
    free(co);
  }
  puts("main: done");
  return 0;
}
