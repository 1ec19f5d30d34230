/* The ways a coroutine ends, one per argument, for the tests of released
 * tasks (tests/check_release.c). It knows nothing of tasklocal: each
 * coroutine binds a value through the weak hook of the leak-report test
 * plugin (tests/plugin/leakplug.c), under a key without a destructor, so
 * that the report's dropped-value lines show when and how the library saw
 * the task end. Every coroutine but the first ends by switching away for
 * good, as most schedulers' coroutines do.
 *
 *   return    the function returns; uc_link goes back to main: finished
 *   free      its stack, from malloc, is freed: released
 *   munmap    its stack, from mmap, is unmapped: released
 *   realloc   its stack's block is grown with realloc and moves: released
 *   reallocarray  the same with reallocarray (glibc's calls realloc)
 *   mremap    its stack's mapping is moved with mremap: released
 *   thread    another thread frees its stack: released
 *   remake    its ucontext_t is made again on the same stack (a pool that
 *             reuses both): released, by the makecontext
 *   unstarted made, never started, its stack then freed: released
 *   abandon   its ucontext_t is made again on another stack while its own
 *             is still held: abandoned (a leak)
 *   pool      a pool of coroutines made in one local ucontext_t and
 *             entered with siglongjmp, as QEMU's: they wait in the pool at
 *             exit, their stacks held: neither released nor finished
 *   inner     its stack is carved from another coroutine's stack, which a
 *             sibling then takes: never released (stacks within stacks)
 *   jumpexit  entered with swapcontext, it leaves with siglongjmp (which
 *             the library does not see) and main calls exit: exit runs on
 *             the main stack, not in the coroutine, which is suspended
 *   jumpfree  the same, then main frees its stack, as OpenSSL's async jobs
 *             end: released
 *   handoff   a pool's stack: the first coroutine switches away for good,
 *             and the pool makes the next one, in another ucontext_t, on
 *             the same stack, which it keeps until exit; the next one
 *             returns: the first is released at exit, the next finished
 *   carved    its stack is the third of four carved from one malloc'd
 *             block, as a pool may carve them; the block is freed:
 *             released (seen while leak reports are on)
 */
#include "prog.h"
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

extern void leakplug_set(const char *key, void *value, int destructor) __attribute__((weak));

#define STACK (64 * 1024)

static ucontext_t main_ctx, co_ctx;

static void set(uintptr_t value)
{
  if (leakplug_set)
    leakplug_set("ends.value", (void *)value, 0);
}

__attribute__((noinline)) static void returns(void)
{
  set(0x1001);
}

/* Binds its value, then switches away for good. */
__attribute__((noinline)) static void leaves(void)
{
  set(0x2002);
  swapcontext(&co_ctx, &main_ctx);
  puts("resumed, which never happens");
  abort();
}

static void make_linked(ucontext_t *uc, void *stack, size_t size, void (*fn)(void), ucontext_t *link)
{
  getcontext(uc);
  uc->uc_stack.ss_sp = stack;
  uc->uc_stack.ss_size = size;
  uc->uc_link = link;
  makecontext(uc, fn, 0);
}

static void make(ucontext_t *uc, void *stack, size_t size, void (*fn)(void))
{
  make_linked(uc, stack, size, fn, &main_ctx);
}

static void *map(size_t size)
{
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    abort();
  return p;
}

static void *freer(void *stack)
{
  free(stack);
  return NULL;
}

static sigjmp_buf jump_back;

__attribute__((noinline)) static void jumps_out(void)
{
  set(0x5005);
  siglongjmp(jump_back, 1);
}

/* QEMU's pool: every coroutine is made in the same local ucontext_t and
 * first entered with swapcontext; from then on it is entered and left with
 * siglongjmp, and waits in the pool when its work is done. */
#define POOL 3
static sigjmp_buf pool_caller, pool_self[POOL];
static int pool_index;

__attribute__((noinline)) static void pool_entry(void)
{
  int me = pool_index;
  set(0x3000 + (uintptr_t)me);
  if (sigsetjmp(pool_self[me], 0) == 0)
    siglongjmp(pool_caller, 1);
  for (;;) {
    /* Work done: back to the caller, then wait to be entered again. */
    if (sigsetjmp(pool_self[me], 0) == 0)
      siglongjmp(pool_caller, 1);
  }
}

static void pool(void)
{
  for (volatile int i = 0; i < POOL; i++) {
    ucontext_t local, back;
    pool_index = i;
    make(&local, malloc(STACK), STACK, pool_entry);
    if (sigsetjmp(pool_caller, 0) == 0)
      swapcontext(&back, &local);
  }
  for (volatile int round = 0; round < 2; round++)
    for (volatile int i = 0; i < POOL; i++)
      if (sigsetjmp(pool_caller, 0) == 0)
        siglongjmp(pool_self[i], 1);
}

/* Stacks within a stack: the outer coroutine's stack holds the inner's.
 * When a sibling of the inner one is made on the same memory, the inner
 * one stays: a library that carves stacks from another may copy them. */
static ucontext_t outer_ctx, inner_ctx, sibling_ctx;
static char *outer_stack;

__attribute__((noinline)) static void inner(void)
{
  set(0x4004);
  swapcontext(&inner_ctx, &outer_ctx);
}

__attribute__((noinline)) static void outer(void)
{
  make_linked(&inner_ctx, outer_stack, STACK / 4, inner, &outer_ctx);
  swapcontext(&outer_ctx, &inner_ctx);
  make_linked(&sibling_ctx, outer_stack, STACK / 4, returns, &outer_ctx);
  swapcontext(&outer_ctx, &sibling_ctx);
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "free";
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(mode, "return") == 0) {
    make(&co_ctx, malloc(STACK), STACK, returns);
    swapcontext(&main_ctx, &co_ctx);
  } else if (strcmp(mode, "free") == 0 || strcmp(mode, "thread") == 0 || strcmp(mode, "realloc") == 0 ||
             strcmp(mode, "reallocarray") == 0) {
    char *stack = malloc(STACK);
    make(&co_ctx, stack, STACK, leaves);
    swapcontext(&main_ctx, &co_ctx);
    if (strcmp(mode, "free") == 0) {
      free(stack);
    } else if (strcmp(mode, "realloc") == 0 || strcmp(mode, "reallocarray") == 0) {
      /* A block in the way, so that growing the stack's block moves it. */
      void *wall = malloc(64);
      char *moved = strcmp(mode, "realloc") == 0 ? realloc(stack, 16 * STACK) : reallocarray(stack, 16, STACK);
      printf("moved: %s\n", moved != stack ? "yes" : "no");
      free(moved);
      free(wall);
    } else {
      pthread_t th;
      if (pthread_create(&th, NULL, freer, stack) != 0 || pthread_join(th, NULL) != 0)
        return 1;
    }
  } else if (strcmp(mode, "handoff") == 0) {
    static ucontext_t slots[2];
    char *stack = malloc(STACK);
    make(&slots[0], stack, STACK, leaves);
    swapcontext(&main_ctx, &slots[0]);
    make(&slots[1], stack, STACK, returns);
    swapcontext(&main_ctx, &slots[1]);
  } else if (strcmp(mode, "carved") == 0) {
    char *block = malloc(4 * STACK);
    make(&co_ctx, block + 2 * STACK, STACK, leaves);
    swapcontext(&main_ctx, &co_ctx);
    free(block);
  } else if (strcmp(mode, "munmap") == 0 || strcmp(mode, "mremap") == 0) {
    char *stack = map(STACK);
    make(&co_ctx, stack, STACK, leaves);
    swapcontext(&main_ctx, &co_ctx);
    if (strcmp(mode, "munmap") == 0) {
      munmap(stack, STACK);
    } else {
      void *moved = mremap(stack, STACK, 64 * STACK, MREMAP_MAYMOVE);
      if (moved == MAP_FAILED)
        return 1;
      munmap(moved, 64 * STACK);
    }
  } else if (strcmp(mode, "remake") == 0) {
    char *stack = malloc(STACK);
    for (int i = 0; i < 3; i++) {
      make(&co_ctx, stack, STACK, leaves);
      swapcontext(&main_ctx, &co_ctx);
    }
    make(&co_ctx, stack, STACK, returns);
    swapcontext(&main_ctx, &co_ctx);
    free(stack);
  } else if (strcmp(mode, "unstarted") == 0) {
    char *stack = malloc(STACK);
    make(&co_ctx, stack, STACK, leaves);
    free(stack);
  } else if (strcmp(mode, "abandon") == 0) {
    make(&co_ctx, malloc(STACK), STACK, leaves);
    swapcontext(&main_ctx, &co_ctx);
    make(&co_ctx, malloc(STACK), STACK, returns);
    swapcontext(&main_ctx, &co_ctx);
  } else if (strcmp(mode, "pool") == 0) {
    pool();
  } else if (strcmp(mode, "jumpfree") == 0) {
    char *stack = malloc(STACK);
    make(&co_ctx, stack, STACK, jumps_out);
    if (sigsetjmp(jump_back, 0) == 0)
      swapcontext(&main_ctx, &co_ctx);
    free(stack);
  } else if (strcmp(mode, "jumpexit") == 0) {
    make(&co_ctx, malloc(STACK), STACK, jumps_out);
    if (sigsetjmp(jump_back, 0) == 0)
      swapcontext(&main_ctx, &co_ctx);
    printf("%s: done\n", mode);
    exit(0);
  } else if (strcmp(mode, "inner") == 0) {
    outer_stack = malloc(STACK);
    make(&outer_ctx, outer_stack, STACK, outer);
    swapcontext(&main_ctx, &outer_ctx);
  } else {
    fprintf(stderr, "ends: unknown mode %s\n", mode);
    return 2;
  }
  printf("%s: done\n", mode);
  return 0;
}
