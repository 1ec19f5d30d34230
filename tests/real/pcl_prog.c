/* A small program on the Portable Coroutine Library (Debian's libpcl1-dev)
 * for make check-real. PCL makes each coroutine with makecontext on a
 * stack it allocates, and switches with swapcontext (co_call, co_resume);
 * a coroutine whose function returns ends through co_exit, which switches
 * away for good and frees it later. Under the shim every coroutine is a
 * task. Like the programs of tests/programs/, it knows nothing of
 * tasklocal: it calls the weak tlprobe(label) that the probe plugin
 * (tests/plugin/probe.c) defines, so that the test sees each coroutine
 * keep one task and one task-local record through all its switches.
 *
 * Three generators yield values to the main program, one of them calls a
 * nested coroutine of its own, and then, as PCL's own benchmark does, the
 * program makes and deletes many coroutines that never run (their stacks
 * come from malloc and go back to it: the shim must retire each).
 */
#define _GNU_SOURCE
#include <pcl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define GENERATORS 3
#define STEPS 4
#define NEVER_RUN 200000
#define STACK (64 * 1024)

extern void tlprobe(const char *label) __attribute__((weak));

static void probe(const char *label)
{
  if (tlprobe != NULL)
    tlprobe(label);
}

struct gen {
  coroutine_t co;
  char label[16];
  long value;
  int done;
};

static struct gen gens[GENERATORS];

static void inner(void *arg)
{
  long *acc = arg;
  for (int i = 0; i < 2; i++) {
    probe("inner");
    *acc += 100;
    co_resume();
  }
  probe("inner");
}

static void generator(void *arg)
{
  struct gen *g = arg;
  long id = g - gens;
  probe(g->label);
  for (int i = 1; i <= STEPS; i++) {
    g->value = id * 10 + i;
    if (id == 1 && i == 2) {
      /* A coroutine that calls one of its own. */
      long acc = 0;
      coroutine_t c = co_create(inner, &acc, NULL, STACK);
      if (c == NULL)
        exit(3);
      for (int k = 0; k < 3; k++)
        co_call(c);
      g->value += acc;
    }
    co_resume();
    probe(g->label);
  }
  g->done = 1;
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (co_thread_init() != 0)
    return 2;
  probe("main");
  for (int i = 0; i < GENERATORS; i++) {
    snprintf(gens[i].label, sizeof gens[i].label, "gen%d", i);
    gens[i].co = co_create(generator, &gens[i], NULL, STACK);
    if (gens[i].co == NULL)
      return 2;
  }
  for (int step = 1; step <= STEPS; step++) {
    for (int i = 0; i < GENERATORS; i++) {
      co_call(gens[i].co);
      probe("main");
      printf("step %d: gen%d gives %ld\n", step, i, gens[i].value);
    }
  }
  /* The last call lets every generator return: PCL ends it with co_exit. */
  for (int i = 0; i < GENERATORS; i++) {
    co_call(gens[i].co);
    printf("gen%d %s\n", i, gens[i].done ? "returned" : "did not return");
  }
  long made = 0;
  for (long n = 0; n < NEVER_RUN; n++) {
    coroutine_t c = co_create(inner, NULL, NULL, 16 * 1024);
    if (c == NULL)
      break;
    co_delete(c);
    made++;
  }
  printf("made and deleted %ld coroutines that never ran\n", made);
  co_thread_cleanup();
  return 0;
}
