// C++ exceptions and coroutines; the same program must behave exactly as
// without the shim. Built by g++ and by clang++ (mk/traps.mk); each mode
// is one run:
//
// - no argument: a coroutine throws after it was resumed (possibly after
//   other coroutines ran on their own stacks), and the unwinder walks
//   frames that called swapcontext. The shim's wrappers leave no frame
//   behind, so unwinding never meets one of them.
// - "symmetric": coroutines switch directly to one another. The throw is
//   in the very function that called swapcontext, right after it returns,
//   and is caught several frames up, through frames with destructors; a
//   coroutine switches away from inside a catch block while the other
//   throws and catches, and then rethrows its own exception with throw;
//   an exception made in one coroutine is thrown again in the other
//   through std::exception_ptr.
// - "uncaught": an exception leaves a coroutine's function. The coroutine's
//   stack ends at glibc's start frame (below the shim's trampoline, under
//   the shim), so no handler is found: std::terminate, SIGABRT, and the
//   same message on stderr. The try block around the switch in main is on
//   another stack and must not catch it.
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <sys/resource.h>
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

// Prints when its frame is left, by return or by unwinding.
struct frame_guard {
  int co, depth;
  ~frame_guard() { std::printf("coroutine %d: frame %d left\n", co, depth); }
};

// Switches to the other coroutine and throws as soon as it comes back, in
// the frame that called swapcontext.
static void switch_then_throw(int i, int depth)
{
  frame_guard g{i, depth};
  if (depth > 0) {
    switch_then_throw(i, depth - 1);
    return;
  }
  swapcontext(&co_ctx[i], &co_ctx[1 - i]);
  throw std::out_of_range("thrown right after swapcontext in coroutine " + std::to_string(i));
}

static std::exception_ptr handed_over;

static void symmetric(int i)
{
  for (int round = 0; round < 2; round++) {
    try {
      switch_then_throw(i, 3);
    } catch (const std::out_of_range &e) {
      caught[i]++;
      std::printf("coroutine %d round %d caught: %s\n", i, round, e.what());
    }
  }
  // Coroutine 0 switches away inside a catch block; coroutine 1 throws
  // and catches meanwhile, and switches back once its handler is done
  // (the caught-exception stack is per thread, not per coroutine, so it
  // must be as coroutine 0 left it); coroutine 0 then rethrows its own.
  if (i == 0) {
    try {
      try {
        throw std::runtime_error("coroutine 0's own");
      } catch (const std::exception &) {
        swapcontext(&co_ctx[0], &co_ctx[1]);
        try {
          throw std::logic_error("nested in coroutine 0's handler");
        } catch (const std::logic_error &e) {
          std::printf("coroutine 0 caught inside a handler: %s\n", e.what());
        }
        throw;
      }
    } catch (const std::runtime_error &e) {
      caught[0]++;
      std::printf("coroutine 0 rethrew: %s\n", e.what());
    }
  } else {
    try {
      throw std::logic_error("thrown in coroutine 1 while coroutine 0 is in a handler");
    } catch (const std::logic_error &e) {
      std::printf("coroutine 1 caught: %s\n", e.what());
    }
    swapcontext(&co_ctx[1], &co_ctx[0]);
  }
  // Coroutine 0 makes an exception, coroutine 1 throws it and ends.
  if (i == 0) {
    try {
      throw std::invalid_argument("made in coroutine 0");
    } catch (...) {
      handed_over = std::current_exception();
    }
    swapcontext(&co_ctx[0], &co_ctx[1]);
  } else {
    try {
      std::rethrow_exception(handed_over);
    } catch (const std::invalid_argument &e) {
      caught[1]++;
      std::printf("coroutine 1 caught what coroutine 0 made: %s\n", e.what());
    }
    handed_over = nullptr;
  }
}

static void uncaught(int i)
{
  yield_to_main(i);
  throw std::runtime_error("leaves coroutine " + std::to_string(i));
}

// Apart from main: getcontext returns twice, and the compiler warns about
// the loop variable of its caller.
static void make_coroutines(void (*fn)(int), ucontext_t *link)
{
  for (int i = 0; i < 2; i++) {
    getcontext(&co_ctx[i]);
    co_ctx[i].uc_stack.ss_sp = stacks[i];
    co_ctx[i].uc_stack.ss_size = sizeof stacks[i];
    co_ctx[i].uc_link = link;
    makecontext(&co_ctx[i], reinterpret_cast<void (*)()>(fn), 1, i);
  }
}

int main(int argc, char **argv)
{
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const char *mode = argc > 1 ? argv[1] : "";
  if (std::strcmp(mode, "symmetric") == 0) {
    // Coroutine 1 ends first (through main); coroutine 0 is resumed to
    // its end from main.
    make_coroutines(symmetric, &main_ctx);
    swapcontext(&main_ctx, &co_ctx[0]);
    swapcontext(&main_ctx, &co_ctx[0]);
    std::printf("caught %d and %d\n", caught[0], caught[1]);
    return caught[0] == 3 && caught[1] == 3 ? 0 : 1;
  }
  if (std::strcmp(mode, "uncaught") == 0) {
    // The abort is expected: no core file.
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    make_coroutines(uncaught, &main_ctx);
    try {
      swapcontext(&main_ctx, &co_ctx[0]);
      std::printf("coroutine 0 suspended\n");
      swapcontext(&main_ctx, &co_ctx[0]);
    } catch (...) {
      std::printf("main caught what it must not\n");
    }
    std::printf("main went on after an uncaught exception\n");
    return 1;
  }
  make_coroutines(co, &main_ctx);
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
