/* Benchmark: PCL's own benchmark loop (cobench), as a real program.
 *
 * The Portable Coroutine Library's cobench times two things: making and
 * deleting coroutines that never run (co_create mallocs a stack and calls
 * makecontext, co_delete frees it), and switching to a coroutine and back
 * (co_call, co_resume: swapcontext each way). This program does both,
 * CREATES and SWITCHES times, and prints a checksum that does not depend
 * on timing; make bench times the whole run alone and under the shim.
 *
 *   pclbench [CREATES [SWITCHES]]
 */
#include <pcl.h>
#include <stdio.h>
#include <stdlib.h>

#define STACK (16 * 1024)

static unsigned long counter;

static void never(void *arg)
{
  (void)arg;
}

static void ping(void *arg)
{
  (void)arg;
  for (;;) {
    counter++;
    co_resume();
  }
}

int main(int argc, char **argv)
{
  unsigned long creates = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
  unsigned long switches = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
  unsigned long made = 0;

  if (co_thread_init() != 0) {
    fprintf(stderr, "pclbench: co_thread_init failed\n");
    return 1;
  }
  for (unsigned long i = 0; i < creates; i++) {
    coroutine_t c = co_create(never, NULL, NULL, STACK);
    if (c == NULL) {
      fprintf(stderr, "pclbench: co_create failed\n");
      return 1;
    }
    made++;
    co_delete(c);
  }
  coroutine_t p = co_create(ping, NULL, NULL, STACK);
  if (p == NULL) {
    fprintf(stderr, "pclbench: co_create failed\n");
    return 1;
  }
  for (unsigned long i = 0; i < switches; i++)
    co_call(p);
  /* The coroutine is left suspended in its loop, as cobench leaves it. */
  co_thread_cleanup();
  printf("made %lu switched %lu\n", made, counter);
  return 0;
}
