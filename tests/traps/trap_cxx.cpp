// C++ exceptions thrown and caught inside coroutines, across switches: a
// coroutine throws after it was resumed (possibly after other coroutines
// ran on their own stacks), and the unwinder walks frames that called
// swapcontext. The shim's wrappers leave no frame behind, so unwinding
// never meets one of them.
#include <cstdio>
#include <stdexcept>
#include <string>
#include <ucontext.h>

static ucontext_t main_ctx, co_ctx[2];
alignas(16) static char stacks[2][128 * 1024];
static int caught[2];

static void yield_to_main(int i)
{
  swapcontext(&co_ctx[i], &main_ctx);
}

static void deep(int i, int depth)
{
  if (depth == 0) {
    yield_to_main(i);
    throw std::runtime_error("thrown in coroutine " + std::to_string(i));
  }
  deep(i, depth - 1);
}

static void co(int i)
{
  for (int round = 0; round < 3; round++) {
    try {
      deep(i, 5 + i);
    } catch (const std::exception &e) {
      caught[i]++;
      std::printf("coroutine %d round %d caught: %s\n", i, round, e.what());
    }
    yield_to_main(i);
  }
}

// Apart from main: getcontext returns twice, and the compiler warns about
// the loop variable of its caller.
static void make_coroutines()
{
  for (int i = 0; i < 2; i++) {
    getcontext(&co_ctx[i]);
    co_ctx[i].uc_stack.ss_sp = stacks[i];
    co_ctx[i].uc_stack.ss_size = sizeof stacks[i];
    co_ctx[i].uc_link = &main_ctx;
    makecontext(&co_ctx[i], (void (*)())co, 1, i);
  }
}

int main()
{
  make_coroutines();
  for (int step = 0; step < 7; step++)
    for (int i = 0; i < 2; i++)
      swapcontext(&main_ctx, &co_ctx[i]);
  try {
    throw std::logic_error("thrown in main");
  } catch (const std::exception &e) {
    std::printf("main caught: %s\n", e.what());
  }
  std::printf("caught %d and %d\n", caught[0], caught[1]);
  return caught[0] == 3 && caught[1] == 3 ? 0 : 1;
}
