/* Planted leaks for the leak report's kinds: which unfinished coroutines
 * nothing can resume (leaked) and which are still referenced (parked).
 * argv[1] picks one case; each coroutine's entry function says what the
 * report must call it:
 *   dropped  leaked_dropped: its ucontext_t lives in a malloc'd block whose
 *            only pointer, a global, is cleared (the block is not freed);
 *   chain    leaked_chain_head is dropped as above, and leaked_chain_tail is
 *            referenced only from the head's stack;
 *   cycle    leaked_cycle_a and leaked_cycle_b refer only to each other,
 *            each from its own stack;
 *   queue    parked_in_queue waits in a global queue;
 *   heapctx  parked_heap_ctx's ucontext_t is inside a heap block (not at its
 *            start) that a global points to;
 *   freed    leaked_freed_ctx: as heapctx, then the global is cleared and
 *            the block freed;
 *   mapped   leaked_mapped (on an mmap'd stack) and leaked_static (on a stack
 *            in the program's zero-initialised data) refer only to each
 *            other: their stacks lie in memory that is otherwise a root;
 *   local    with the test plugin (tests/plugin/leakplug.c) preloaded:
 *            parked_by_local's block is referenced only by a task-local
 *            value of the main thread's root task, and leaked_by_local's
 *            only by one of leaked_local_owner, a dropped coroutine;
 *   mixed    all of the above in one process (local only when asked);
 *   dump     the same, then raises SIGUSR2 (the dump signal of the test)
 *            and waits for its stdin to close before it exits.
 * Other stacks are malloc'd and never freed, nor pointed to by anything the
 * program keeps, so the report does not depend on how the library treats
 * released stacks. The setup runs in functions that return, and the stack
 * below main is overwritten afterwards, so that no stale copy of a pointer
 * is left in a dead frame that the scan of main's stack would read.
 */
#include "prog.h"
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define STACK (64 * 1024)

struct co {
  char header[40];                         /* the context is not at the block's start */
  ucontext_t ctx;
  struct co *peer;
};

extern void leakplug_set(const char *key, void *value, int destructor) __attribute__((weak));

/* Not static, and used: the compiler must keep every store to them. */
static ucontext_t main_ctx;
__attribute__((used)) struct co *queue[4]; /* parked coroutines */
__attribute__((used)) struct co *heap_holder; /* keeps parked_heap_ctx's block */
__attribute__((used)) struct co *holder;   /* cleared before exit */
static struct co *next_start;              /* handed to the coroutine being started, then cleared */

static char static_stack[STACK] __attribute__((aligned(16)));

static struct co *make_on(void (*fn)(void), void *stack)
{
  struct co *c = calloc(1, sizeof *c);
  if (c == NULL || stack == NULL)
    exit(1);
  getcontext(&c->ctx);
  c->ctx.uc_stack.ss_sp = stack;
  c->ctx.uc_stack.ss_size = STACK;
  c->ctx.uc_link = &main_ctx;
  makecontext(&c->ctx, fn, 0);
  return c;
}

static struct co *make(void (*fn)(void))
{
  return make_on(fn, malloc(STACK));
}

/* Runs c until it parks. */
static void start(struct co *c)
{
  next_start = c;
  swapcontext(&main_ctx, &c->ctx);
  next_start = NULL;
}

/* The coroutines take themselves and their peer from next_start into
 * locals, which stay on their own stacks while they wait forever. */
/* tag differs in every caller, so that the compiler cannot fold two
 * entry functions into one, which would show one's name in another's
 * backtrace. */
static volatile int tags;

__attribute__((noinline)) static void wait_forever(struct co *volatile self, struct co *volatile peer, int tag)
{
  tags += tag;
  for (;;)
    swapcontext(&self->ctx, &main_ctx);
  (void)peer;
}

void leaked_dropped(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 1);
}

void leaked_chain_head(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, self->peer, 2);
}

void leaked_chain_tail(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 3);
}

void leaked_cycle_a(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, self->peer, 4);
}

void leaked_cycle_b(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, self->peer, 5);
}

void parked_in_queue(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 6);
}

void parked_heap_ctx(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 7);
}

void leaked_freed_ctx(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 8);
}

void leaked_mapped(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, self->peer, 9);
}

void leaked_static(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, self->peer, 10);
}

void parked_by_local(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 11);
}

void leaked_by_local(void)
{
  struct co *volatile self = next_start;
  wait_forever(self, NULL, 12);
}

/* Binds its peer's block as a local of its own, then waits. */
void leaked_local_owner(void)
{
  struct co *volatile self = next_start;
  leakplug_set("peer", self->peer, 1);
  self->peer = NULL;
  wait_forever(self, NULL, 13);
}

/* Each case: the blocks are reached through `holder` while they are made
 * and started, then dropped. The peer field is cleared once the coroutine
 * has copied it to its stack. */
__attribute__((noinline)) static void case_dropped(void)
{
  holder = make(leaked_dropped);
  start(holder);
  holder = NULL;
}

__attribute__((noinline)) static void case_chain(void)
{
  holder = make(leaked_chain_tail);
  start(holder);
  struct co *head = make(leaked_chain_head);
  head->peer = holder;
  start(head);
  head->peer = NULL;
  holder = NULL;
}

__attribute__((noinline)) static void case_cycle(void)
{
  struct co *a = make(leaked_cycle_a), *b = make(leaked_cycle_b);
  a->peer = b;
  b->peer = a;
  start(a);
  start(b);
  a->peer = b->peer = NULL;
}

__attribute__((noinline)) static void case_queue(void)
{
  queue[0] = make(parked_in_queue);
  start(queue[0]);
}

__attribute__((noinline)) static void case_heapctx(void)
{
  heap_holder = make(parked_heap_ctx);
  start(heap_holder);
}

__attribute__((noinline)) static void case_freed(void)
{
  struct co *c = make(leaked_freed_ctx);
  holder = c;
  start(c);
  holder = NULL;
  free(c);
}

__attribute__((noinline)) static void case_mapped(void)
{
  void *stack = mmap(NULL, STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct co *a = make_on(leaked_mapped, stack == MAP_FAILED ? NULL : stack);
  struct co *b = make_on(leaked_static, static_stack);
  a->peer = b;
  b->peer = a;
  start(a);
  start(b);
  a->peer = b->peer = NULL;
}

__attribute__((noinline)) static void case_local(void)
{
  holder = make(parked_by_local);
  start(holder);
  leakplug_set("holder", holder, 1);
  holder = make(leaked_by_local);
  start(holder);
  struct co *owner = make(leaked_local_owner);
  owner->peer = holder;
  start(owner);
  holder = NULL;
}

/* Overwrites the dead stack below the caller, where the cases ran. */
__attribute__((noinline)) static void scrub(void)
{
  volatile char pad[256 * 1024];
  memset((char *)pad, 0, sizeof pad);
  __asm__ volatile("" ::"r"(pad) : "memory");
}

int main(int argc, char **argv)
{
  /* stdout's buffer is static: a buffer that malloc made later could take
   * the place of the freed context of the "freed" case, and a pointer to
   * it would then point where the context was. */
  static char outbuf[BUFSIZ + 64];         /* its end, which stdout keeps, is not another's start */
  setvbuf(stdout, outbuf, _IOLBF, BUFSIZ);
  const char *which = argc > 1 ? argv[1] : "mixed";
  int dump = strcmp(which, "dump") == 0;
  int all = dump || strcmp(which, "mixed") == 0;
  if (all || strcmp(which, "dropped") == 0)
    case_dropped();
  if (all || strcmp(which, "chain") == 0)
    case_chain();
  if (all || strcmp(which, "cycle") == 0)
    case_cycle();
  if (all || strcmp(which, "queue") == 0)
    case_queue();
  if (all || strcmp(which, "heapctx") == 0)
    case_heapctx();
  if (all || strcmp(which, "freed") == 0)
    case_freed();
  if (all || strcmp(which, "mapped") == 0)
    case_mapped();
  if (strcmp(which, "local") == 0 && leakplug_set != NULL)
    case_local();
  scrub();
  /* The registers main saved at its last switch may still hold pointers
   * to the coroutines' blocks: nothing resumes main_ctx any more. */
  memset(&main_ctx, 0, sizeof main_ctx);
  if (dump) {
    raise(SIGUSR2);
    char c;
    while (read(0, &c, 1) > 0)
      ;
  }
  puts("done");
  return 0;
}
