// The C++ runtime's exception state across coroutine switches, in an
// unmodified program: a coroutine switches away inside a catch block,
// another throws and catches, and switches away inside its own catch;
// the first resumes and rethrows with `throw;`, and must get its own
// exception back. Then std::uncaught_exceptions() is checked in
// destructors that run while one coroutine unwinds and another does not.
//
// Per thread (no cxx-eh), the runtime keeps one chain of caught exceptions
// for all coroutines: the first coroutine's `throw;` rethrows the second's
// exception, and the counts of uncaught exceptions mix. What follows that
// is undefined (the chain is corrupt), so the program stops at the first
// wrong answer and says which: one line on stdout,
//   eh: ok
// or
//   eh: wrong: WHAT
// with exit status 0 or 1. With the argument "uncaught", only the part
// on std::uncaught_exceptions() runs, so that its failure is seen too.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <ucontext.h>

namespace {

ucontext_t sched, a_ctx, b_ctx, x_ctx, y_ctx;
const std::size_t kStack = 256 * 1024;

[[noreturn]] void wrong(const char *what)
{
  std::printf("eh: wrong: %s\n", what);
  std::fflush(stdout);
  std::_Exit(1);
}

void co_a()
{
  try {
    throw std::runtime_error("A");
  } catch (...) {
    swapcontext(&a_ctx, &sched);
    try {
      throw;
    } catch (const std::runtime_error &e) {
      if (std::strcmp(e.what(), "A") != 0)
        wrong("the rethrow in coroutine A gave another coroutine's exception");
    }
  }
  if (std::uncaught_exceptions() != 0)
    wrong("coroutine A ends with an uncaught exception counted");
}

void co_b()
{
  try {
    throw std::runtime_error("B");
  } catch (const std::runtime_error &e) {
    swapcontext(&b_ctx, &sched);
    if (std::strcmp(e.what(), "B") != 0)
      wrong("coroutine B's caught exception changed");
    try {
      throw;
    } catch (const std::runtime_error &e2) {
      if (std::strcmp(e2.what(), "B") != 0)
        wrong("the rethrow in coroutine B gave another coroutine's exception");
    }
  }
}

// A destructor that checks the count of uncaught exceptions before and
// after a switch to the scheduler (when asked to switch).
struct Guard {
  int expect;
  ucontext_t *self;
  ~Guard()
  {
    if (std::uncaught_exceptions() != expect)
      wrong("std::uncaught_exceptions() wrong in a destructor before a switch");
    if (self != nullptr) {
      swapcontext(self, &sched);
      if (std::uncaught_exceptions() != expect)
        wrong("std::uncaught_exceptions() wrong in a destructor after a switch");
    }
  }
};

void co_x()
{
  try {
    Guard g{1, &x_ctx};
    throw std::runtime_error("X");
  } catch (const std::runtime_error &) {
  }
}

void co_y()
{
  Guard g{0, nullptr};
}

void make(ucontext_t *c, void (*fn)())
{
  getcontext(c);
  c->uc_stack.ss_sp = std::malloc(kStack);
  c->uc_stack.ss_size = kStack;
  c->uc_link = &sched;
  makecontext(c, fn, 0);
}

} // namespace

int main(int argc, char **argv)
{
  if (argc < 2 || std::strcmp(argv[1], "uncaught") != 0) {
    make(&a_ctx, co_a);
    make(&b_ctx, co_b);
    swapcontext(&sched, &a_ctx);           // A catches and switches away
    swapcontext(&sched, &b_ctx);           // B throws, catches, switches away
    swapcontext(&sched, &a_ctx);           // A rethrows: its own exception; A ends
    swapcontext(&sched, &b_ctx);           // B rethrows its own; B ends
    if (std::uncaught_exceptions() != 0)
      wrong("the main thread counts an uncaught exception");
  }
  make(&x_ctx, co_x);
  make(&y_ctx, co_y);
  swapcontext(&sched, &x_ctx);             // X unwinds; its destructor switches away
  swapcontext(&sched, &y_ctx);             // Y's destructor runs without unwinding
  swapcontext(&sched, &x_ctx);             // X's destructor goes on; X ends
  if (std::uncaught_exceptions() != 0)
    wrong("the main thread counts an uncaught exception at the end");
  try {
    throw std::logic_error("main");
  } catch (const std::logic_error &e) {
    if (std::strcmp(e.what(), "main") != 0)
      wrong("the main thread's own exception");
  }
  std::printf("eh: ok\n");
  return 0;
}
