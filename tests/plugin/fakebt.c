/* Test plugin that replaces the shim's backtrace capture.
 *
 * The shim looks up tasklocal_backtrace_hook at its first capture and, when
 * a loaded object defines it, records what it returns instead of what
 * unw_backtrace finds. This one returns two known frames, so that a test
 * can find their names in the report: the first is inside
 * fakebt_marker_one, the second inside fakebt_marker_two (return
 * addresses, as unwinders give them: one byte past a call).
 */
#define _GNU_SOURCE
#include <stdint.h>

__attribute__((visibility("default"), noinline)) void fakebt_marker_one(void)
{
  __asm__ volatile("nop; nop; nop; nop");
}

__attribute__((visibility("default"), noinline)) void fakebt_marker_two(void)
{
  __asm__ volatile("nop; nop; nop; nop");
}

__attribute__((visibility("default"))) int tasklocal_backtrace_hook(void **pc, int max)
{
  int n = 0;
  if (n < max)
    pc[n++] = (void *)((uintptr_t)fakebt_marker_one + 2);
  if (n < max)
    pc[n++] = (void *)((uintptr_t)fakebt_marker_two + 2);
  return n;
}
