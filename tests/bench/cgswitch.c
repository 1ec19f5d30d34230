/* make bench-callgrind: a fixed number of swapcontext round trips between
 * main and one coroutine, for callgrind to count instructions (timing
 * loops calibrate themselves, which would change the count). An unmodified
 * ucontext program: no tasklocal header, no tasklocal library.
 *
 *   cgswitch N      N round trips (2N switches)
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <ucontext.h>

static ucontext_t main_uc, co_uc;

static void ping(void)
{
  for (;;)
    swapcontext(&co_uc, &main_uc);
}

int main(int argc, char **argv)
{
  long n = argc > 1 ? atol(argv[1]) : 100000;
  char *stack = malloc(64 * 1024);
  if (stack == NULL || getcontext(&co_uc) != 0)
    return 1;
  co_uc.uc_stack.ss_sp = stack;
  co_uc.uc_stack.ss_size = 64 * 1024;
  co_uc.uc_link = NULL;
  makecontext(&co_uc, ping, 0);
  for (long i = 0; i < n; i++)
    swapcontext(&main_uc, &co_uc);
  return 0;
}
