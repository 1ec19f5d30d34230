/* Shared-stack coroutines left suspended at exit, for the leak report
 * tests. Both run on one stack; each one's used part is copied out when it
 * yields and back before it resumes (as libraries that save memory per
 * coroutine do). Both are suspended at exit: the report counts 2 tasks,
 * and their suspended backtraces are marked unreliable, since the shared
 * stack holds only one of them at a time.
 *
 * With the argument "heap", three coroutines share a stack from malloc, as
 * cloudwu's coroutine keeps it; after each has yielded once, only the
 * middle one is resumed. All three are still suspended at exit, and the
 * first, which never ran again after the second took the stack, is one of
 * them: the second's resumption shows the stack is a copying one.
 */
#include "prog.h"
#include <string.h>

#define STACK (64 * 1024)
#define N 3

static char shared_static[STACK] __attribute__((aligned(16)));
static char *shared = shared_static;
static ucontext_t main_ctx;

static struct co {
  ucontext_t ctx;
  char *saved;
  size_t used;
} co[N];

static int running = -1;

/* Copies stack memory out of AddressSanitizer's sight: a stack image spans
 * the red zones around live frames, which it would report; the volatile
 * accesses keep the loop from becoming a call to the intercepted memcpy. */
__attribute__((no_sanitize_address)) static void copy_stack(char *dst, const char *src, size_t size)
{
  volatile char *d = dst;
  const volatile char *s = src;
  for (size_t i = 0; i < size; i++)
    d[i] = s[i];
}

/* Copies the running coroutine's used stack out and yields. */
__attribute__((noinline)) void shared_yield(void)
{
  struct co *c = &co[running];
  char here;
  char *top = shared + STACK;
  c->used = (size_t)(top - &here) + 256;
  if (c->used > STACK)
    c->used = STACK;
  c->saved = realloc(c->saved, c->used);
  copy_stack(c->saved, top - c->used, c->used);
  swapcontext(&c->ctx, &main_ctx);
  __asm__ volatile(""); /* no tail call: the frame stays for the backtrace */
}

__attribute__((noinline)) void shared_worker(int i)
{
  printf("shared_worker %d: yielding\n", i);
  shared_yield();
  printf("shared_worker %d: resumed\n", i);
  shared_yield();
  __asm__ volatile("");
}

static void resume(int i)
{
  struct co *c = &co[i];
  if (c->saved != NULL)
    copy_stack(shared + STACK - c->used, c->saved, c->used);
  running = i;
  swapcontext(&main_ctx, &c->ctx);
  running = -1;
}

int main(int argc, char **argv)
{
  int heap = argc > 1 && strcmp(argv[1], "heap") == 0;
  int n = heap ? 3 : 2;
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (heap && (shared = malloc(STACK)) == NULL)
    return 2;
  /* volatile: getcontext returns twice. */
  for (volatile int i = 0; i < n; i++) {
    getcontext(&co[i].ctx);
    co[i].ctx.uc_stack.ss_sp = shared;
    co[i].ctx.uc_stack.ss_size = STACK;
    co[i].ctx.uc_link = &main_ctx;
    makecontext(&co[i].ctx, (void (*)(void))shared_worker, 1, i);
    resume(i);
  }
  if (heap) {
    resume(1);
    puts("main: leaving all three suspended");
    return 0;
  }
  for (int i = 0; i < n; i++)
    resume(i);
  puts("main: leaving both suspended");
  return 0;
}
