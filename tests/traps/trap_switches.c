/* 20 million switches between two coroutines and the main task (or as many
 * as argv[1] says): the resident set must not grow (nothing is allocated
 * per switch). Prints the growth between the first million switches and
 * the end; exits 1 when it is over 1 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#define SWITCHES 20000000L

static ucontext_t main_ctx, co_ctx[2];
static char stacks[2][64 * 1024] __attribute__((aligned(16)));

static long rss_kib(void)
{
  long pages = 0, rss = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return rss * 4;
}

static void co(int i)
{
  for (;;) {
    /* Coroutine 0 hands over to coroutine 1 (symmetric), which goes back
     * to main (asymmetric). */
    swapcontext(&co_ctx[i], i == 0 ? &co_ctx[1] : &main_ctx);
  }
}

/* Apart from main: getcontext returns twice, and the compiler warns about
 * the loop variable of its caller. */
static void make_coroutines(void)
{
  for (int i = 0; i < 2; i++) {
    getcontext(&co_ctx[i]);
    co_ctx[i].uc_stack.ss_sp = stacks[i];
    co_ctx[i].uc_stack.ss_size = sizeof stacks[i];
    co_ctx[i].uc_link = &main_ctx;
    makecontext(&co_ctx[i], (void (*)(void))co, 1, i);
  }
}

int main(int argc, char **argv)
{
  long switches = argc > 1 ? atol(argv[1]) : SWITCHES;
  make_coroutines();
  long before = 0;
  for (long n = 0; n < switches; n += 3) {
    swapcontext(&main_ctx, &co_ctx[0]);
    if (n / 3 == 1000000 / 3)
      before = rss_kib();
  }
  long grew = rss_kib() - before;
  fprintf(stderr, "trap_switches: rss grew by %ld KiB over %ld switches\n", grew, switches);
  printf("done\n");
  return grew > 1024 ? 1 : 0;
}
