/* Pattern: coroutines that spawn coroutines, and makecontext arguments
 * (doc/tracking.md).
 *
 * main makes co1 with 8 int arguments. co1 makes and runs its child co2
 * with 12 int arguments; co2 makes two grandchildren: co3 receives a 64-bit
 * pointer as one whole makecontext argument (glibc on x86_64 passes every
 * argument as 64 bits), co4 receives another one split into two 32-bit
 * halves. Every task yields to its parent at least once and is resumed
 * later, and every one finishes through uc_link into its parent's suspended
 * context. Every argument is printed and checked. The pointers point into
 * main's stack frame, so their upper halves are never zero.
 */
#include "prog.h"
#include <stdint.h>

/* Larger than valgrind's default --max-stackframe (2 MB), so that memcheck
 * takes a jump from one coroutine stack to another for a switch, not for
 * one huge stack frame. Only the pages a coroutine touches are committed. */
#define STACK_SIZE (4 * 1024 * 1024)

struct message {
  const char *text;
  long value;
};

static const int args8[8] = {101, -102, 103, 2147483647, -2147483647 - 1,
                             106, 107, -108};
static const int args12[12] = {201, 202, -203, 204, 205, 206,
                               -207, 208, 209, 210, 211, -212};

static ucontext_t main_ctx, ctx1, ctx2, ctx3, ctx4;
static struct message *whole_expected, *split_expected;
static int bad_args;

/* Prepares a context to be made on a new stack, and returns the stack.
 * getcontext comes first, so that no local variable is live across it (the
 * compiler treats it like setjmp). */
static void *make(ucontext_t *ctx, ucontext_t *link)
{
  void *stack;

  if (getcontext(ctx) != 0)
    abort();
  stack = malloc(STACK_SIZE);
  if (stack == NULL)
    abort();
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = STACK_SIZE;
  ctx->uc_link = link;
  return stack;
}

static void print_args(const char *name, const int *got, const int *want,
                       int n)
{
  printf("%s: %d args:", name, n);
  for (int i = 0; i < n; i++) {
    printf(" %d", got[i]);
    bad_args += got[i] != want[i];
  }
  printf("\n");
}

static void co3_main(struct message *msg)
{
  probe("co3");
  printf("co3: whole pointer %s, text '%s', value %ld\n",
         msg == whole_expected ? "intact" : "BROKEN", msg->text, msg->value);
  bad_args += msg != whole_expected;
  msg->value *= 2;
  probe("co3");
  swapcontext(&ctx3, &ctx2);
  probe("co3");
  msg->value += 1;
  printf("co3: resumed, value %ld, returns into co2\n", msg->value);
  probe("co3");
}

static void co4_main(uint32_t low, uint32_t high)
{
  struct message *msg = (struct message *)(((uintptr_t)high << 32) | low);

  probe("co4");
  printf("co4: split pointer %s, text '%s', value %ld\n",
         msg == split_expected ? "intact" : "BROKEN", msg->text, msg->value);
  bad_args += msg != split_expected;
  msg->value *= 3;
  probe("co4");
  swapcontext(&ctx4, &ctx2);
  probe("co4");
  msg->value += 2;
  printf("co4: resumed, value %ld, returns into co2\n", msg->value);
  probe("co4");
}

static void co2_main(int a1, int a2, int a3, int a4, int a5, int a6, int a7,
                     int a8, int a9, int a10, int a11, int a12)
{
  const int got[12] = {a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12};
  uintptr_t p = (uintptr_t)split_expected;
  void *stack3, *stack4;

  probe("co2");
  print_args("co2", got, args12, 12);
  stack3 = make(&ctx3, &ctx2);
  makecontext(&ctx3, (void (*)(void))co3_main, 1, whole_expected);
  stack4 = make(&ctx4, &ctx2);
  makecontext(&ctx4, (void (*)(void))co4_main, 2, (uint32_t)p,
              (uint32_t)(p >> 32));

  printf("co2: runs grandchildren co3 and co4\n");
  swapcontext(&ctx2, &ctx3);
  probe("co2");
  swapcontext(&ctx2, &ctx4);
  probe("co2");
  printf("co2: yields to co1\n");
  swapcontext(&ctx2, &ctx1);
  probe("co2");
  printf("co2: resumes co3 to its end\n");
  swapcontext(&ctx2, &ctx3);
  probe("co2");
  printf("co2: resumes co4 to its end\n");
  swapcontext(&ctx2, &ctx4);
  probe("co2");
  free(stack3);
  free(stack4);
  printf("co2: returns into co1\n");
  probe("co2");
}

static void co1_main(int a1, int a2, int a3, int a4, int a5, int a6, int a7,
                     int a8)
{
  const int got[8] = {a1, a2, a3, a4, a5, a6, a7, a8};
  void *stack2;

  probe("co1");
  print_args("co1", got, args8, 8);
  stack2 = make(&ctx2, &ctx1);
  makecontext(&ctx2, (void (*)(void))co2_main, 12, args12[0], args12[1],
              args12[2], args12[3], args12[4], args12[5], args12[6],
              args12[7], args12[8], args12[9], args12[10], args12[11]);
  printf("co1: runs child co2\n");
  swapcontext(&ctx1, &ctx2);
  probe("co1");
  printf("co1: yields to main\n");
  swapcontext(&ctx1, &main_ctx);
  probe("co1");
  printf("co1: resumes co2 to its end\n");
  swapcontext(&ctx1, &ctx2);
  probe("co1");
  free(stack2);
  printf("co1: returns into main\n");
  probe("co1");
}

int main(void)
{
  struct message whole = {"whole", 10};
  struct message split = {"split", 20};
  void *stack1;

  /* Line buffering keeps the output in order with the events even when a
   * run crashes half-way, which makes a failing run easier to read. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  whole_expected = &whole;
  split_expected = &split;
  probe("main");
  stack1 = make(&ctx1, &main_ctx);
  makecontext(&ctx1, (void (*)(void))co1_main, 8, args8[0], args8[1],
              args8[2], args8[3], args8[4], args8[5], args8[6], args8[7]);
  printf("main: runs co1\n");
  swapcontext(&main_ctx, &ctx1);
  probe("main");
  printf("main: resumes co1\n");
  swapcontext(&main_ctx, &ctx1);
  probe("main");
  free(stack1);
  printf("main: whole %ld, split %ld, bad arguments %d\n", whole.value,
         split.value, bad_args);
  probe("main");
  return !(bad_args == 0 && whole.value == 21 && split.value == 62);
}
