// A small C++ program on Boost.Context (Debian's libboost-context-dev) for
// make check-real. Built with BOOST_USE_UCONTEXT, boost::context::fiber
// makes each fiber with makecontext on a stack of its own and switches
// with swapcontext, so under the shim every fiber is a task. A fiber whose
// function returns switches away for good, and the fiber that resumes next
// frees its record and stack: it never returns into the makecontext
// trampoline. Like the programs of tests/programs/, this one knows nothing
// of tasklocal: it calls the weak tlprobe(label) that the probe plugin
// (tests/plugin/probe.c) defines, so that the test sees each fiber keep
// one task and one task-local record through all its switches.
//
// What it does, the same on every run:
// - four workers, resumed in turn by main, each yield 400 times;
// - two fibers that resume each other directly ("ping" makes "pong"),
//   300 times each;
// - exceptions: a worker throws and catches inside itself, another hands
//   an exception to main through std::exception_ptr, and main destroys a
//   fiber that is still suspended, which Boost unwinds by throwing its
//   forced_unwind inside it (running the fiber's destructors);
// - 100 short-lived fibers one after another, each on the stack the one
//   before it used (see reusing_stack).
//
// An ended fiber never returns into makecontext's trampoline: the shim
// sees it end when its stack is taken by a new fiber of the same kind
// (its ucontext_t, at the top of the stack, is made again there) or given
// back to the C library at the end (the task is released, and its values
// destroyed). Every stack is given back, so no task is left at exit.
#define BOOST_USE_UCONTEXT
#include <boost/context/fiber.hpp>

#include <cstdio>
#include <cstdlib>
#include <new>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ctx = boost::context;

extern "C" void tlprobe(const char *label) __attribute__((weak));

static void probe(const std::string &label)
{
  if (tlprobe != nullptr)
    tlprobe(label.c_str());
}

// The ucontext backend keeps the running fiber's record in a thread-local
// pointer behind fiber_activation_record::current(), which its headers
// declare and Boost's own src/fiber.cpp defines, but only in a
// libboost_context built with context-impl=ucontext. Debian builds the
// default fcontext one (its libboost_context.so exports make_fcontext and
// jump_fcontext, no current()), so the definition is here: each thread's
// record starts as one for the thread's own stack, made on first use and
// deleted at thread exit, as Boost's does.
namespace boost {
namespace context {
namespace detail {

namespace {
struct thread_record {
  fiber_activation_record *running;
  fiber_activation_record *own;
  thread_record() : running(new fiber_activation_record()), own(running) {}
  ~thread_record() { delete own; }
  thread_record(const thread_record &) = delete;
  thread_record &operator=(const thread_record &) = delete;
};
} // namespace

fiber_activation_record *&fiber_activation_record::current() noexcept
{
  static thread_local thread_record rec;
  return rec.running;
}

} // namespace detail
} // namespace context
} // namespace boost

static const int WORKERS = 4;
static const int YIELDS = 400;
static const int PINGS = 300;
static const int SHORT_LIVED = 100;
static const std::size_t STACK_SIZE = 64 * 1024;

// A stack allocator that keeps the stacks of ended fibers for the next
// ones, as servers that run a fiber per request do. Boost keeps a fiber's
// record, with its ucontext_t, at the top of the fiber's stack, so a new
// fiber on a reused stack makes a ucontext_t that an ended fiber used.
class reusing_stack {
public:
  ctx::stack_context allocate()
  {
    void *base;
    if (pool_->empty()) {
      base = std::malloc(STACK_SIZE);
      if (base == nullptr)
        throw std::bad_alloc();
    } else {
      base = pool_->back();
      pool_->pop_back();
    }
    ctx::stack_context sc;
    sc.size = STACK_SIZE;
    sc.sp = static_cast<char *>(base) + STACK_SIZE;
    return sc;
  }
  void deallocate(ctx::stack_context &sc) noexcept
  {
    void *base = static_cast<char *>(sc.sp) - sc.size;
    try {
      pool_->push_back(base);
    } catch (...) {
      std::free(base);
    }
  }
  static void release()
  {
    for (void *base : *pool_)
      std::free(base);
    pool_->clear();
  }

private:
  static std::vector<void *> *pool_;
};

static std::vector<void *> pool_storage;
std::vector<void *> *reusing_stack::pool_ = &pool_storage;

// Prints when the fiber's stack is unwound, by return or by forced_unwind.
struct announce {
  std::string what;
  explicit announce(std::string w) : what(std::move(w)) {}
  ~announce() { std::printf("%s: frames unwound\n", what.c_str()); }
  announce(const announce &) = delete;
  announce &operator=(const announce &) = delete;
};

static std::exception_ptr handed_over;

static ctx::fiber worker(int id, long *sum, ctx::fiber &&main)
{
  std::string label = "worker" + std::to_string(id);
  probe(label);
  for (int i = 1; i <= YIELDS; i++) {
    *sum += i * (id + 1);
    if (id == 1 && i == YIELDS / 2) {
      try {
        throw std::runtime_error(label + " threw at " + std::to_string(i));
      } catch (const std::exception &e) {
        std::printf("%s caught: %s\n", label.c_str(), e.what());
      }
    }
    if (id == 2 && i == YIELDS / 4) {
      try {
        throw std::logic_error(label + " hands this to main");
      } catch (...) {
        handed_over = std::current_exception();
      }
    }
    main = std::move(main).resume();
    if (i % 40 == 0)
      probe(label);
  }
  probe(label);
  return std::move(main);
}

static ctx::fiber pong(ctx::fiber &&ping, long *count)
{
  probe("pong");
  for (int i = 0; i < PINGS; i++) {
    ++*count;
    ping = std::move(ping).resume();
    if (i % 50 == 0)
      probe("pong");
  }
  probe("pong");
  return std::move(ping);
}

static ctx::fiber ping(ctx::fiber &&main, long *pings, long *pongs)
{
  probe("ping");
  ctx::fiber other{std::allocator_arg, reusing_stack(), [pongs](ctx::fiber &&p) { return pong(std::move(p), pongs); }};
  for (int i = 0; i < PINGS; i++) {
    ++*pings;
    other = std::move(other).resume();
    if (i % 50 == 0)
      probe("ping");
  }
  // Once more, so that pong returns and ends.
  other = std::move(other).resume();
  std::printf("ping: pong %s\n", other ? "still suspended" : "finished");
  probe("ping");
  return std::move(main);
}

int main()
{
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  probe("main");

  std::vector<long> sums(WORKERS, 0);
  std::vector<ctx::fiber> workers;
  for (int id = 0; id < WORKERS; id++) {
    long *sum = &sums[static_cast<size_t>(id)];
    workers.emplace_back(std::allocator_arg, reusing_stack(), [id, sum](ctx::fiber &&m) { return worker(id, sum, std::move(m)); });
  }
  int live = WORKERS, turns = 0;
  while (live > 0) {
    live = 0;
    for (auto &f : workers) {
      if (!f)
        continue;
      f = std::move(f).resume();
      turns++;
      if (f)
        live++;
    }
    if (turns == WORKERS * 3)
      probe("main");
    if (handed_over) {
      try {
        std::rethrow_exception(handed_over);
      } catch (const std::exception &e) {
        std::printf("main caught from a fiber: %s\n", e.what());
      }
      handed_over = nullptr;
    }
  }
  probe("main");
  for (int id = 0; id < WORKERS; id++)
    std::printf("worker%d: sum %ld\n", id, sums[static_cast<size_t>(id)]);
  std::printf("main resumed the workers %d times\n", turns);

  long pings = 0, pongs = 0;
  ctx::fiber p{std::allocator_arg, reusing_stack(), [&pings, &pongs](ctx::fiber &&m) { return ping(std::move(m), &pings, &pongs); }};
  p = std::move(p).resume();
  std::printf("ping %ld times, pong %ld times, ping %s\n", pings, pongs, p ? "suspended" : "finished");

  {
    ctx::fiber victim{std::allocator_arg, reusing_stack(), [](ctx::fiber &&m) {
      announce a("victim");
      probe("victim");
      for (;;)
        m = std::move(m).resume();
      return std::move(m);
    }};
    victim = std::move(victim).resume();
    victim = std::move(victim).resume();
    std::printf("victim suspended; destroying it\n");
  }
  probe("main");

  long ran = 0;
  for (int i = 0; i < SHORT_LIVED; i++) {
    ctx::fiber f{std::allocator_arg, reusing_stack(), [&ran](ctx::fiber &&m) {
      ran++;
      m = std::move(m).resume();
      ran++;
      return std::move(m);
    }};
    f = std::move(f).resume();
    f = std::move(f).resume();
    if (f)
      std::printf("short-lived fiber %d did not finish\n", i);
  }
  std::printf("%d short-lived fibers ran %ld steps\n", SHORT_LIVED, ran);
  // A handle that still names an ended fiber gives its stack back only
  // when it goes: the workers' and ping's, before the pool is emptied
  // (else their stacks would leak, as valgrind and LeakSanitizer say).
  workers.clear();
  p = ctx::fiber{};
  reusing_stack::release();
  probe("main");
  std::printf("done\n");
  return 0;
}
