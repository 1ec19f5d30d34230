// tl::with and TL_WITH in C++ (tests/cxx/check_cxx.c runs this program):
// each way out of a scope (its end, break, continue, return, an exception)
// restores exactly the previous state; a binding that cannot be made is
// reported and undoes nothing; guards move but do not copy. With the
// library (linked, or found by TL_DYNAMIC), also inside coroutines: each
// task sees its own binding across switches, and an exception thrown and
// caught inside a coroutine unbinds there.
//
// Prints one line per failed check and exits 1 if there was any.
#include "tasklocal.hpp"

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <type_traits>
#include <ucontext.h>
#include <utility>

static_assert(!std::is_copy_constructible<tl::with>::value, "a guard cannot be copied");
static_assert(!std::is_copy_assignable<tl::with>::value, "a guard cannot be assigned");
static_assert(!std::is_move_assignable<tl::with>::value, "a guard cannot be move-assigned");
static_assert(std::is_nothrow_move_constructible<tl::with>::value, "a guard moves without throwing");
static_assert(std::is_nothrow_destructible<tl::with>::value, "a guard's destructor does not throw");
static_assert(std::is_nothrow_constructible<tl::with, tl_key_t, const void *>::value, "binding does not throw");
static_assert(!std::is_convertible<tl::with, bool>::value, "a guard converts to bool only explicitly");

static int failures;

#define EXPECT(cond)                                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::printf("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                           \
    }                                                                       \
  } while (0)

static tl_key_t key;
static int a = 1, b = 2, c = 3;

static bool unbound(tl_key_t k)
{
  void *v = nullptr;
  return tl_lookup(k, &v) == ENOENT;
}

static void guard_scopes()
{
  {
    tl::with g(key, &a);
    EXPECT(g && g.error() == 0 && tl_get(key) == &a);
    {
      tl::with inner(key, &b);
      EXPECT(inner && tl_get(key) == &b);
    }
    EXPECT(tl_get(key) == &a);
  }
  EXPECT(unbound(key));

  // A value set before is what comes back, not "unbound".
  EXPECT(tl_set(key, &c) == 0);
  {
    tl::with g(key, &a);
    EXPECT(tl_get(key) == &a);
  }
  EXPECT(tl_get(key) == &c);
  EXPECT(tl_unset(key) == 0);
}

static int guard_return(bool early)
{
  tl::with g(key, &a);
  if (early)
    return tl_get(key) == &a ? 1 : 0;
  return 2;
}

static void guard_exception()
{
  try {
    tl::with g(key, &a);
    tl::with inner(key, &b);
    throw std::runtime_error("leaves two guards");
  } catch (const std::exception &) {
    EXPECT(unbound(key));
  }
  EXPECT(unbound(key));
}

static void guard_failure()
{
  tl::with outer(key, &a);
  {
    tl::with bad(0, &b);                    // 0 is never a key
    EXPECT(!bad && bad.error() == EINVAL);
    EXPECT(bad.unbind() == EINVAL);
    EXPECT(tl_get(key) == &a);
  }
  // The failed guard's end touched nothing.
  EXPECT(tl_get(key) == &a);
}

static void guard_unbind()
{
  tl::with outer(key, &a);
  tl::with inner(key, &b);
  // Out of order: refused, and both still hold their bindings.
  EXPECT(outer.unbind() == EINVAL && outer && tl_get(key) == &b);
  EXPECT(inner.unbind() == 0 && !inner && tl_get(key) == &a);
  EXPECT(inner.unbind() == EINVAL);
  EXPECT(outer.unbind() == 0 && !outer && unbound(key));
  // Both destructors now do nothing.
}

static tl::with bind_for_caller(const void *value)
{
  tl::with g(key, value);
  return g;                                 // moved (or elided) into the caller's guard
}

static void guard_move()
{
  {
    tl::with g = bind_for_caller(&a);
    EXPECT(g && tl_get(key) == &a);
  }
  EXPECT(unbound(key));
  {
    tl::with first(key, &b);
    tl::with second(std::move(first));
    EXPECT(!first && second && tl_get(key) == &b);
    EXPECT(first.unbind() == EINVAL && tl_get(key) == &b);
  }
  EXPECT(unbound(key));
}

static int with_return()
{
  TL_WITH(key, &a)
  {
    return tl_get(key) == &a ? 1 : 0;
  }
  return -1;
}

static void with_macro()
{
  int ran = 0;
  TL_WITH(key, &a)
  {
    ran++;
    EXPECT(tl_get(key) == &a);
    TL_WITH(key, &b)
    {
      EXPECT(tl_get(key) == &b);
    }
    EXPECT(tl_get(key) == &a);
  }
  EXPECT(ran == 1 && unbound(key));

  // break and continue leave the TL_WITH block, not the loop around it.
  int rounds = 0, after = 0;
  for (int i = 0; i < 4; i++) {
    rounds++;
    TL_WITH(key, &a)
    {
      if (i % 2 == 0)
        break;
      continue;
    }
    EXPECT(unbound(key));
    after++;
  }
  EXPECT(rounds == 4 && after == 4 && unbound(key));

  EXPECT(with_return() == 1 && unbound(key));

  try {
    TL_WITH(key, &a)
    {
      TL_WITH(key, &b)
      {
        throw std::logic_error("leaves two TL_WITH blocks");
      }
    }
  } catch (const std::exception &) {
    EXPECT(unbound(key));
  }

  // A binding that cannot be made skips the block and sets errno.
  errno = 0;
  ran = 0;
  TL_WITH(0, &a)
  {
    ran++;
  }
  EXPECT(ran == 0 && errno == EINVAL);
}

// A scoped-only key: only bindings, which guards make.
static void scoped_only()
{
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.flags = TL_KEY_SCOPED_ONLY;
  tl_key_t only;
  EXPECT(tl_key_create_attr(&only, &attr) == 0);
  {
    tl::with g(only, &a);
    EXPECT(g && tl_get(only) == &a && tl_set(only, &b) == EPERM);
  }
  EXPECT(unbound(only));
  EXPECT(tl_key_delete(only) == 0);
}

// With the library: a custom scope whose discriminator names no owner.
static void *no_owner(void *) noexcept
{
  return nullptr;
}

static void no_scope()
{
  static const struct tl_disc disc = {no_owner, nullptr};
  tl_key_attr_t attr = TL_KEY_ATTR_INIT;
  attr.scope = TL_SCOPE_CUSTOM;
  attr.disc = &disc;
  tl_key_t custom;
  EXPECT(tl_key_create_attr(&custom, &attr) == 0);
  tl::with g(custom, &a);
  EXPECT(!g && g.error() == ESRCH);
  EXPECT(tl_key_delete(custom) == 0);
}

// With the library: guards in two coroutines that switch with each other.
static ucontext_t main_ctx, co_ctx[2];
alignas(16) static char stacks[2][128 * 1024];
static int co_seen[2];

static void co(int i)
{
  int *mine = i == 0 ? &b : &c;
  tl::with g(key, mine);
  for (int round = 0; round < 3; round++) {
    swapcontext(&co_ctx[i], &main_ctx);
    if (tl_get(key) == mine)
      co_seen[i]++;
    try {
      tl::with inner(key, &a);
      swapcontext(&co_ctx[i], &main_ctx);
      if (tl_get(key) == &a)
        co_seen[i]++;
      throw std::runtime_error("caught in the coroutine");
    } catch (const std::exception &) {
      if (tl_get(key) == mine)
        co_seen[i]++;
    }
  }
}

static void make_coroutines()
{
  for (int i = 0; i < 2; i++) {
    getcontext(&co_ctx[i]);
    co_ctx[i].uc_stack.ss_sp = stacks[i];
    co_ctx[i].uc_stack.ss_size = sizeof stacks[i];
    co_ctx[i].uc_link = &main_ctx;
    makecontext(&co_ctx[i], reinterpret_cast<void (*)()>(co), 1, i);
  }
}

static void coroutines()
{
  make_coroutines();
  tl::with g(key, &a);
  for (int step = 0; step < 7; step++) {
    for (int i = 0; i < 2; i++) {
      swapcontext(&main_ctx, &co_ctx[i]);
      EXPECT(tl_get(key) == &a);
    }
  }
  EXPECT(co_seen[0] == 9 && co_seen[1] == 9);
}

int main()
{
  EXPECT(tl_key_create(&key, nullptr) == 0);
  guard_scopes();
  EXPECT(guard_return(true) == 1 && unbound(key));
  EXPECT(guard_return(false) == 2 && unbound(key));
  guard_exception();
  guard_failure();
  guard_unbind();
  guard_move();
  with_macro();
  scoped_only();
  if (tl_available()) {
    no_scope();
    coroutines();
  }
  EXPECT(unbound(key));
  std::printf("guard: %d failed checks (library %s)\n", failures, tl_available() ? "in use" : "not found");
  return failures != 0;
}
