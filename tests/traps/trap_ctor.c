/* Prints what the coroutine run by libtltrapctor.so's constructor did. */
#include <stdio.h>

int trap_ctor_steps(void);

int main(void)
{
  printf("constructor coroutine steps: %d\n", trap_ctor_steps());
  return trap_ctor_steps() == 11 ? 0 : 1;
}
