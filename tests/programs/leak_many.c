/* Many alike coroutines left suspended, for the grouping of the leak
 * report and its benchmark: "leak_many 5 20 10" makes three groups of 5,
 * 20 and 10 coroutines, one group after the other (the ids of a group
 * follow each other). The coroutines of group g are made at a call depth
 * of g + 1 in make_at(), so each group has a creation backtrace of its
 * own; every coroutine runs once and parks in the same place, wait_here()
 * inlined into worker(), and is still suspended at exit. The report has
 * one entry per group, biggest first.
 */
#include "prog.h"

#define STACK (8 * 1024)

static ucontext_t main_ctx;
static volatile int keep_going = 1;

static inline __attribute__((always_inline)) void wait_here(ucontext_t *self)
{
  while (keep_going)
    swapcontext(self, &main_ctx);
}

static void worker(int i, ucontext_t *self)
{
  (void)i;
  wait_here(self);
  __asm__ volatile(""); /* no tail call: the frame stays for the backtrace */
}

__attribute__((noinline)) static void make_at(int depth, ucontext_t *uc, int i)
{
  if (depth > 1) {
    make_at(depth - 1, uc, i);
    __asm__ volatile(""); /* each level keeps its frame */
    return;
  }
  makecontext(uc, (void (*)(void))worker, 2, i, uc);
}

/* One context, made at a depth of g + 1. Apart from any loop: getcontext
 * returns twice, as far as the compiler knows. */
__attribute__((noinline)) static void make_one(ucontext_t *uc, char *stack, int i, int g)
{
  getcontext(uc);
  uc->uc_stack.ss_sp = stack;
  uc->uc_stack.ss_size = STACK;
  uc->uc_link = &main_ctx;
  make_at(g, uc, i);
}

/* The n contexts of group g, from i on. */
__attribute__((noinline)) static void make_group(ucontext_t *uc, char *stacks, int i, int n, int g)
{
  for (; n > 0; n--, i++)
    make_one(&uc[i], stacks + (size_t)i * STACK, i, g);
}

int main(int argc, char **argv)
{
  int total = 0;
  for (int g = 1; g < argc; g++)
    total += atoi(argv[g]);
  ucontext_t *uc = calloc((size_t)total, sizeof *uc);
  char *stacks = malloc((size_t)total * STACK);
  if (uc == NULL || stacks == NULL)
    return 1;
  for (int g = 1, i = 0; g < argc; i += atoi(argv[g]), g++)
    make_group(uc, stacks, i, atoi(argv[g]), g);
  for (int i = 0; i < total; i++)
    swapcontext(&main_ctx, &uc[i]);
  printf("%d coroutines suspended in %d groups\n", total, argc - 1);
  return 0;
}
