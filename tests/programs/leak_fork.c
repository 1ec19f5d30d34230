/* Forked children report for themselves, for the leak report tests. The
 * parent leaves one coroutine suspended, forks, and waits for the child;
 * the child, which inherits that coroutine, leaves one more suspended and
 * exits with exit(0). The child's report counts 2 tasks, the parent's 1,
 * and both tag their lines with their pid.
 */
#include "prog.h"
#include <sys/wait.h>
#include <unistd.h>

#define STACK (128 * 1024)

static ucontext_t main_ctx, parent_co, child_co;

__attribute__((noinline)) void suspended_in_parent(void)
{
  swapcontext(&parent_co, &main_ctx);
  __asm__ volatile(""); /* no tail call: the frame stays for the backtrace */
}

__attribute__((noinline)) void suspended_in_child(void)
{
  swapcontext(&child_co, &main_ctx);
  __asm__ volatile("");
}

static void park(ucontext_t *ctx, void (*fn)(void))
{
  getcontext(ctx);
  ctx->uc_stack.ss_sp = malloc(STACK);
  ctx->uc_stack.ss_size = STACK;
  ctx->uc_link = &main_ctx;
  makecontext(ctx, fn, 0);
  swapcontext(&main_ctx, ctx);
}

int main(void)
{
  park(&parent_co, suspended_in_parent);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    return 1;
  if (pid == 0) {
    park(&child_co, suspended_in_child);
    printf("child %d: exiting\n", (int)getpid());
    exit(0);
  }
  int status;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
    return 1;
  printf("parent %d: child %d exited with %d\n", (int)getpid(), (int)pid, WEXITSTATUS(status));
  return 0;
}
