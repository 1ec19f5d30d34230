/* Pattern: shared-stack coroutines (doc/tracking.md), as in cloudwu/coroutine.
 *
 * All coroutines run on ONE shared stack. On its first resume a coroutine's
 * context is made on the shared stack (getcontext + makecontext, uc_link =
 * main) and entered with swapcontext. To yield, a coroutine copies the used
 * part of the shared stack (from its current stack pointer up to the top)
 * into its own buffer and swaps to main; to resume it, main copies those
 * bytes back to the same place and swaps into it. Every coroutine keeps an
 * array on its stack and yields from a different call depth, so the output
 * is right only if each stack image came back intact. The coroutine pointer
 * reaches makecontext split into two 32-bit halves, as cloudwu passes it.
 */
#include "prog.h"
#include <stdint.h>

/* Memcheck marks stack memory inaccessible when frames return, so after
 * another coroutine ran on the shared stack, copying a saved image back
 * looks to it like an invalid write. Real stack-copying libraries tell
 * valgrind about it when its header is there; the client request is a
 * no-op outside valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_UNDEFINED
#define VALGRIND_MAKE_MEM_UNDEFINED(addr, len) ((void)0)
#endif

/* AddressSanitizer's swapcontext interceptor keeps a frame of its own below
 * the yielding one until the real switch, so an image taken before the
 * switch misses it and the coroutine crashes when it is resumed (the
 * hazard doc/tracking.md describes for the shim's own wrapper). In such builds
 * main takes the image just after the switch instead, from the stack
 * pointer saved in the context, which covers that frame too. */
#if defined(__SANITIZE_ADDRESS__)
#define SAVE_AFTER_SWITCH 1
#else
#define SAVE_AFTER_SWITCH 0
#endif

/* The stack pointer saved in a context, by glibc's name for it. */
#if defined(__aarch64__)
#define SAVED_SP(uc) ((uintptr_t)(uc)->uc_mcontext.sp)
#else
#define SAVED_SP(uc) ((uintptr_t)(uc)->uc_mcontext.gregs[REG_RSP])
#endif

#define NCO 3
#define SHARED_STACK_SIZE (256 * 1024)
#define MAX_YIELDS 8

enum status { READY, RUNNING, SUSPENDED, DEAD };

struct coro {
  ucontext_t ctx;
  const char *name;
  int yields;       /* how many times it yields before returning */
  int depth;        /* how deep in its calls it yields from */
  enum status status;
  char *saved;      /* the coroutine's part of the shared stack, while suspended */
  size_t size, cap;
  long result;
};

static char *shared_stack;
static ucontext_t main_ctx;
static struct coro coros[NCO];

/* Copies stack memory byte by byte, out of AddressSanitizer's sight: a
 * stack image spans the red zones around live frames' locals, which it
 * would report, and the loop must not become a call to the intercepted
 * memcpy. */
__attribute__((no_sanitize_address)) static void copy_stack(char *dst,
                                                            const char *src,
                                                            size_t size)
{
  volatile char *d = dst;
  const volatile char *s = src;

  for (size_t i = 0; i < size; i++)
    d[i] = s[i];
}

/* Copies the shared stack from `low` up to its top into the coroutine's
 * buffer. */
static void save_image(struct coro *co, uintptr_t low)
{
  size_t size = (size_t)((uintptr_t)(shared_stack + SHARED_STACK_SIZE) - low);

  if (co->cap < size) {
    free(co->saved);
    co->saved = malloc(size);
    if (co->saved == NULL)
      abort();
    co->cap = size;
  }
  co->size = size;
  copy_stack(co->saved, (const char *)low, size);
}

/* The coroutine's own copy, as cloudwu does it: from a local of this frame
 * up to the top. The function is never inlined, so its frame lies below
 * the one that yields and the image holds every byte the yielding frame
 * and its callers still need. */
static __attribute__((noinline)) void save_stack(struct coro *co)
{
  char marker = 0;

  save_image(co, (uintptr_t)&marker);
}

static void yield(struct coro *co)
{
  if (!SAVE_AFTER_SWITCH)
    save_stack(co);
  co->status = SUSPENDED;
  swapcontext(&co->ctx, &main_ctx);
}

/* Calls itself `depth` times, each frame holding a buffer, then yields, so
 * that each coroutine's stack image has a different size. */
static __attribute__((noinline)) long deep_yield(struct coro *co, int depth)
{
  volatile char pad[512];
  long sum;

  pad[0] = (char)depth;
  pad[sizeof pad - 1] = (char)(depth + 1);
  if (depth == 0) {
    probe(co->name);
    yield(co);
    probe(co->name);
    sum = 0;
  } else {
    sum = deep_yield(co, depth - 1);
  }
  return sum + pad[0] + pad[sizeof pad - 1];
}

static void coro_main(uint32_t low, uint32_t high)
{
  struct coro *co = (struct coro *)(((uintptr_t)high << 32) | low);
  long fib[MAX_YIELDS + 2] = {0, 1};
  long depth_sums = 0;

  probe(co->name);
  for (int i = 1; i <= co->yields; i++) {
    fib[i + 1] = fib[i] + fib[i - 1];
    printf("%s: step %d fib %ld, yields from depth %d\n", co->name, i,
           fib[i + 1], co->depth);
    depth_sums += deep_yield(co, co->depth);
  }
  co->result = fib[co->yields + 1] * 1000 + depth_sums;
  printf("%s: returns %ld\n", co->name, co->result);
  probe(co->name);
}

static void resume(struct coro *co)
{
  uintptr_t p = (uintptr_t)co;

  switch (co->status) {
  case READY:
    if (getcontext(&co->ctx) != 0)
      abort();
    co->ctx.uc_stack.ss_sp = shared_stack;
    co->ctx.uc_stack.ss_size = SHARED_STACK_SIZE;
    co->ctx.uc_link = &main_ctx;
    makecontext(&co->ctx, (void (*)(void))coro_main, 2, (uint32_t)p,
                (uint32_t)(p >> 32));
    break;
  case SUSPENDED:
    (void)VALGRIND_MAKE_MEM_UNDEFINED(shared_stack + SHARED_STACK_SIZE - co->size,
                                      co->size);
    copy_stack(shared_stack + SHARED_STACK_SIZE - co->size, co->saved,
               co->size);
    break;
  default:
    abort();
  }
  co->status = RUNNING;
  swapcontext(&main_ctx, &co->ctx);
  /* A coroutine that comes back still RUNNING did not yield: it returned
   * and reached main through uc_link. */
  if (co->status == RUNNING)
    co->status = DEAD;
  else if (SAVE_AFTER_SWITCH)
    save_image(co, SAVED_SP(&co->ctx));
}

int main(void)
{
  static const char *const names[NCO] = {"co1", "co2", "co3"};
  int live = NCO;
  int failed = 0;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  shared_stack = malloc(SHARED_STACK_SIZE);
  if (shared_stack == NULL)
    return 2;
  probe("main");
  for (int i = 0; i < NCO; i++) {
    coros[i].name = names[i];
    coros[i].yields = 3 + i;
    coros[i].depth = 2 * i + 1;
    coros[i].status = READY;
  }

  while (live > 0) {
    for (int i = 0; i < NCO; i++) {
      struct coro *co = &coros[i];
      if (co->status == DEAD)
        continue;
      probe("main");
      resume(co);
      probe("main");
      if (co->status == DEAD) {
        printf("main: %s finished\n", co->name);
        free(co->saved);
        co->saved = NULL;
        live--;
      }
    }
  }

  for (int i = 0; i < NCO; i++) {
    long a = 0, b = 1;
    long pads = 0;
    for (int k = 0; k < coros[i].yields; k++) {
      long c = a + b;
      a = b;
      b = c;
    }
    for (int d = 0; d <= coros[i].depth; d++)
      pads += 2 * d + 1;
    long expected = b * 1000 + pads * coros[i].yields;
    printf("main: %s result %ld (%s)\n", coros[i].name, coros[i].result,
           coros[i].result == expected ? "ok" : "WRONG");
    failed |= coros[i].result != expected;
  }
  free(shared_stack);
  probe("main");
  return failed;
}
