/* tasklocal.hpp: the C++ part of tasklocal, the scoped binding tl::with
 * and TL_WITH built on it.
 *
 * tasklocal.h includes this file when compiled as C++, so a C++ program
 * may include either; this one also includes tasklocal.h.
 */
#ifndef TASKLOCAL_HPP
#define TASKLOCAL_HPP

#ifndef __cplusplus
#error "tasklocal.hpp is C++: a C program includes tasklocal.h"
#endif

#include "tasklocal.h"

#if __cplusplus >= 201103L /* otherwise tasklocal.h gave its one error */

/* ------------------------------------------------------------------------
 * C++
 *
 * The header is valid C++11 and later, warning-free under -Wall -Wextra
 * -Wpedantic -Wold-style-cast -Wzero-as-null-pointer-constant
 * -Wuseless-cast, linked, with TL_DYNAMIC and with TL_NO_INLINE. The
 * functions above keep C linkage, so C and C++ translation units of one
 * program share keys and values (and, with TL_DYNAMIC, one fallback).
 * C++ also gets the scoped binding tl::with, and TL_WITH built on it.
 *
 * tl::with guard(key, value); binds value to key with tl_bind until the
 * guard goes out of scope, however the scope is left: its end, return,
 * break, or an exception passing through. Nothing in it throws. Whether
 * the binding was made is in the guard: it converts to true while it holds
 * the binding, and guard.error() is what tl_bind returned (0, or EINVAL,
 * ESRCH, ENOMEM as above); a guard that could not bind unbinds nothing.
 * guard.unbind() ends the binding early and returns what tl_unbind did; on
 * an error (ESRCH, ENOMEM, or EINVAL while a binding made after it is
 * still open) the guard keeps the binding and its destructor tries again.
 * It is EINVAL on a guard that holds no binding. The destructor cannot
 * report an error: a binding it fails to undo outlives the guard, as with
 * TL_WITH. Guards follow tl_bind's rules, same task and innermost first,
 * which scopes on the stack give by construction. A guard can be moved
 * into a new one (to return it from a function), which leaves the old one
 * holding nothing; it cannot be copied or assigned (assigning would first
 * have to undo the target's binding, out of order).
 *
 * In C++, TL_WITH(key, value) { ... } is a for statement over a tl::with:
 * it behaves as in C (the block is skipped with errno set when the binding
 * cannot be made; break and continue leave the TL_WITH block itself), and
 * an exception leaving the block unbinds as well.
 *
 * Callbacks must not throw: a key's destroy, init and copy, a custom
 * discriminator's current, tl_singleton's make, the fn of tl_defer and of
 * tl_foreach. The library is C, and an exception thrown out of a callback
 * crosses the library's frames without any of their clean-up. What then
 * happens (glibc, tested on x86_64):
 * - from a callback that the library runs on its own, at a task's end
 *   (destroy, deferred calls), at thread exit or at process exit, or from
 *   copy, which runs inside makecontext (declared noexcept by glibc's C++
 *   headers): no handler is found and std::terminate is called;
 * - from a callback run inside a call the program made (init inside
 *   tl_get or tl_lookup, make inside tl_singleton, fn inside tl_foreach,
 *   destroy inside tl_loop_close or tl_disc_end, current inside any call
 *   on a custom-scope key): the exception reaches the caller's handler,
 *   but the library was left in the middle of that call (an initializer
 *   still marked as running, a scope half destroyed), and what it does
 *   afterwards is undefined.
 * Declare C++ callbacks noexcept, lambdas included
 * (+[](void *p) noexcept { delete static_cast<T *>(p); }): an exception
 * that would leave one calls std::terminate at once, in every case.
 * ------------------------------------------------------------------------ */

namespace tl {

class with {
public:
  with(tl_key_t key, const void *value) noexcept : token_(), err_(tl_bind(key, value, &token_)), bound_(err_ == 0) {}
  with(with &&other) noexcept : token_(other.token_), err_(other.err_), bound_(other.bound_) { other.bound_ = false; }
  with(const with &) = delete;
  with &operator=(const with &) = delete;
  with &operator=(with &&) = delete;
  ~with()
  {
    if (bound_)
      tl_unbind(&token_);
  }

  explicit operator bool() const noexcept { return bound_; }  /* it holds the binding */
  int error() const noexcept { return err_; }                 /* what tl_bind returned */
  int unbind() noexcept                                       /* ends the binding now */
  {
    if (!bound_)
      return EINVAL;
    int err = tl_unbind(&token_);
    if (err == 0)
      bound_ = false;
    return err;
  }

private:
  tl_token_t token_;
  int err_;
  bool bound_;
};

} /* namespace tl */

/* TL_WITH's loop variable in C++: the guard, and whether the block ran. */
class tl__with_block {
public:
  tl__with_block(tl_key_t key, const void *value) noexcept : guard_(key, value), entered_(false) {}
  bool enter() noexcept
  {
    if (entered_)
      return false;
    entered_ = true;
    if (!guard_)
      errno = guard_.error();
    return static_cast<bool>(guard_);
  }

private:
  tl::with guard_;
  bool entered_;
};

#define TL__WITH_(key, value, w) for (::tl__with_block w((key), (value)); w.enter();)
#endif /* C++11 */
#endif /* TASKLOCAL_HPP */
