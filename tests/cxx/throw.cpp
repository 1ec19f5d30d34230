// Callbacks that throw (tests/cxx/check_cxx.c runs this program once per
// case, each in a process of its own): what the header's "C++" section
// documents. The library's frames are C frames with unwind tables but no
// clean-up, so an exception from a callback either finds no handler
// (std::terminate) or crosses them to the program's handler.
//
// Usage: throw CASE. The terminate handler prints "terminate" and exits
// with 42; a case whose exception reaches its handler prints "caught: "
// and the message, then leaves at once with _exit(0), since the library's
// state is undefined from then on.
#include "tasklocal.hpp"

#include <cstdio>
#include <cstring>
#include <exception>
#include <pthread.h>
#include <stdexcept>
#include <ucontext.h>
#include <unistd.h>

static ucontext_t main_ctx, co_ctx;
alignas(16) static char stack[256 * 1024];
static tl_key_t key;
static int value;

[[noreturn]] static void on_terminate()
{
  static const char line[] = "terminate\n";
  if (write(STDOUT_FILENO, line, sizeof line - 1) < 0)
    _exit(43);
  _exit(42);
}

[[noreturn]] static void caught(const std::exception &e)
{
  std::printf("caught: %s\n", e.what());
  std::fflush(stdout);
  _exit(0);
}

static void throwing_destroy(void *)
{
  throw std::runtime_error("from destroy");
}

static void *throwing_make(void *)
{
  throw std::runtime_error("from init");
}

// A noexcept callback whose code throws: std::terminate, by the language.
static void *throwing_make_noexcept(void *arg) noexcept
{
  return throwing_make(arg);
}

static void *throwing_copy(const void *)
{
  throw std::runtime_error("from copy");
}

static void throwing_fn(void *)
{
  throw std::runtime_error("from a deferred call");
}

static int throwing_visit(tl_key_t, const char *, void *, void *)
{
  throw std::runtime_error("from foreach");
}

static void *throwing_current(void *)
{
  throw std::runtime_error("from a discriminator");
}

static void *one_owner(void *)
{
  return &value;
}

static void co_sets()
{
  tl_set(key, &value);
}

static void co_defers()
{
  tl_defer(TL_SCOPE_TASK, throwing_fn, nullptr);
}

// Runs fn as a coroutine to its end, the switch inside a try block: the
// task's end is not inside it, so nothing can reach it.
static void run_coroutine(void (*fn)())
{
  getcontext(&co_ctx);
  co_ctx.uc_stack.ss_sp = stack;
  co_ctx.uc_stack.ss_size = sizeof stack;
  co_ctx.uc_link = &main_ctx;
  makecontext(&co_ctx, fn, 0);
  try {
    swapcontext(&main_ctx, &co_ctx);
  } catch (const std::exception &e) {
    caught(e);
  }
}

static void *thread_sets(void *)
{
  tl_set(key, &value);
  return nullptr;
}

static tl_key_t make_key(tl_key_attr_t attr)
{
  tl_key_t k;
  if (tl_key_create_attr(&k, &attr) != 0) {
    std::printf("tl_key_create_attr failed\n");
    _exit(2);
  }
  return k;
}

int main(int argc, char **argv)
{
  std::setvbuf(stdout, nullptr, _IONBF, 0);
  std::set_terminate(on_terminate);
  const char *c = argc > 1 ? argv[1] : "";
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  struct tl_disc disc = {one_owner, nullptr};

  if (std::strcmp(c, "task-end-destroy") == 0) {
    attr.destroy = throwing_destroy;
    key = make_key(attr);
    run_coroutine(co_sets);
  } else if (std::strcmp(c, "task-end-defer") == 0) {
    key = make_key(attr);
    run_coroutine(co_defers);
  } else if (std::strcmp(c, "thread-exit-destroy") == 0) {
    attr.destroy = throwing_destroy;
    key = make_key(attr);
    pthread_t t;
    if (pthread_create(&t, nullptr, thread_sets, nullptr) == 0)
      pthread_join(t, nullptr);
  } else if (std::strcmp(c, "process-exit-destroy") == 0) {
    attr.destroy = throwing_destroy;
    key = make_key(attr);
    tl_set(key, &value);
  } else if (std::strcmp(c, "makecontext-copy") == 0) {
    attr.inherit = TL_INHERIT_COPY;
    attr.copy = throwing_copy;
    key = make_key(attr);
    tl_set(key, &value);
    getcontext(&co_ctx);
    co_ctx.uc_stack.ss_sp = stack;
    co_ctx.uc_stack.ss_size = sizeof stack;
    co_ctx.uc_link = &main_ctx;
    try {
      makecontext(&co_ctx, co_sets, 0);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "noexcept-init") == 0) {
    attr.init = throwing_make_noexcept;
    key = make_key(attr);
    try {
      tl_get(key);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "get-init") == 0) {
    attr.init = throwing_make;
    key = make_key(attr);
    try {
      tl_get(key);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "singleton-make") == 0) {
    key = make_key(attr);
    try {
      tl_singleton(key, throwing_make, nullptr);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "foreach-fn") == 0) {
    key = make_key(attr);
    tl_set(key, &value);
    try {
      tl_foreach(nullptr, throwing_visit, nullptr);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "loop-close-destroy") == 0) {
    attr.scope = TL_SCOPE_THREAD;
    attr.destroy = throwing_destroy;
    key = make_key(attr);
    tl_set(key, &value);
    try {
      tl_loop_close();
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "disc-end-destroy") == 0) {
    attr.scope = TL_SCOPE_CUSTOM;
    attr.disc = &disc;
    attr.destroy = throwing_destroy;
    key = make_key(attr);
    tl_set(key, &value);
    try {
      tl_disc_end(&disc, &value);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else if (std::strcmp(c, "disc-current") == 0) {
    disc.current = throwing_current;
    attr.scope = TL_SCOPE_CUSTOM;
    attr.disc = &disc;
    key = make_key(attr);
    try {
      tl_get(key);
    } catch (const std::exception &e) {
      caught(e);
    }
  } else {
    std::printf("unknown case %s\n", c);
    return 2;
  }
  std::printf("no exception reached main\n");
  return 0;
}
