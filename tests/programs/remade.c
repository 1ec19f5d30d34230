/* Pattern: contexts made again and again and never run, as the Portable
 * Coroutine Library's benchmark does (doc/lifetime.md): each makecontext of the
 * same ucontext_t, on the same stack, retires the never-started task made
 * there before. The last one made is then run, with the arguments of its
 * own makecontext (eight of them, two of them pointers), and it must be a
 * task of its own: co1 and co2 are each made 50 times in their own
 * context and stack, co2 while co1 is suspended, and co3 in co1's context
 * once co1 has finished.
 */
#include "prog.h"
#include <stdint.h>
#include <string.h>

#define STACK_SIZE (256 * 1024)
#define REMAKES 50

static ucontext_t main_ctx, ctx_a, ctx_b;
static char *stack_a, *stack_b;
static const char *names[] = {"co1", "co2", "co3"};

/* Made REMAKES times with made = 0 .. REMAKES - 1: only the last one runs. */
static void co_main(int which, int made, int a2, int a3, int a4, int a5, const char *tag, ucontext_t *self)
{
  const char *label = names[which];
  probe(label);
  printf("%s: made %d times, arguments %d %d %d %d, tag %s\n", label, made + 1, a2, a3, a4, a5, tag);
  if (made != REMAKES - 1 || strcmp(tag, label) != 0) {
    printf("%s: wrong arguments\n", label);
    exit(1);
  }
  swapcontext(self, &main_ctx);
  probe(label);
  printf("%s: resumed, returns\n", label);
  probe(label);
}

static void make_many(ucontext_t *ctx, char *stack, int which)
{
  if (getcontext(ctx) != 0) {
    perror("getcontext");
    exit(1);
  }
  for (int i = 0; i < REMAKES; i++) {
    ctx->uc_stack.ss_sp = stack;
    ctx->uc_stack.ss_size = STACK_SIZE;
    ctx->uc_link = &main_ctx;
    makecontext(ctx, (void (*)(void))co_main, 8, which, i, 2, 3, 4, 5, names[which], ctx);
  }
}

int main(void)
{
  stack_a = malloc(STACK_SIZE);
  stack_b = malloc(STACK_SIZE);
  if (stack_a == NULL || stack_b == NULL)
    return 1;
  probe("main");
  make_many(&ctx_a, stack_a, 0);
  swapcontext(&main_ctx, &ctx_a);          /* co1 starts and yields */
  probe("main");
  make_many(&ctx_b, stack_b, 1);
  swapcontext(&main_ctx, &ctx_b);          /* co2 starts and yields */
  swapcontext(&main_ctx, &ctx_a);          /* co1 returns */
  probe("main");
  make_many(&ctx_a, stack_a, 2);           /* in co1's context, once it has finished */
  swapcontext(&main_ctx, &ctx_a);          /* co3 starts and yields */
  swapcontext(&main_ctx, &ctx_b);          /* co2 returns */
  swapcontext(&main_ctx, &ctx_a);          /* co3 returns */
  probe("main");
  printf("main: done\n");
  free(stack_a);
  free(stack_b);
  return 0;
}
