/* A suspended coroutine whose stack goes away, for the leak report tests.
 * argv[1] picks what happens to the stack after the coroutine parks:
 *   unmap    the stack is unmapped with munmap and its ucontext_t freed:
 *            the task is released (it ends, and the report has no task);
 *   syscall  the same, but unmapped with the system call itself, which
 *            the library does not see: the report unwinds suspended tasks
 *            from their saved context, and must neither crash nor trust
 *            what it reads (1 task);
 *   garbage  the stack is overwritten with a pattern (reused memory):
 *            nothing printed as a frame may come from it (1 task).
 */
#include "prog.h"
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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
  } else if (strcmp(mode, "syscall") == 0) {
    syscall(SYS_munmap, stack, STACK);
    free(co);
  } else {
    munmap(stack, STACK);
    free(co);
  }
  puts("main: done");
  return 0;
}
