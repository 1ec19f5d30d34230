/* A small GNU Pth program for make check-real. Pth switches its threads
 * with makecontext/swapcontext/setcontext (Debian builds it with the
 * "mcsc" machine-context method), so under the shim every Pth thread is a
 * task. It knows nothing of tasklocal: like the programs of
 * tests/programs/, it calls the weak tlprobe(label) that the probe plugin
 * (tests/plugin/probe.c) defines, so that the test can see each Pth thread
 * keep one task and one task-local record through all its yields.
 *
 * Four workers take turns through pth_yield, a mutex-protected counter
 * and a Pth key of their own; a fifth thread is spawned by a worker
 * (nesting) and joined by it. The output is the same on every run: Pth's
 * scheduler is not preemptive and nothing here waits on time or I/O.
 */
#define _GNU_SOURCE
#include <pth.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define WORKERS 4
#define ROUNDS 5

extern void tlprobe(const char *label) __attribute__((weak));

static pth_mutex_t lock = PTH_MUTEX_INIT;
static pth_key_t pth_key;
static long counter;

static void probe(const char *label)
{
  if (tlprobe != NULL)
    tlprobe(label);
}

static void *child(void *arg)
{
  long id = (long)(intptr_t)arg;
  char label[32];
  snprintf(label, sizeof label, "child-of-%ld", id);
  for (int r = 0; r < 3; r++) {
    probe(label);
    printf("  child of worker %ld: step %d\n", id, r);
    pth_yield(NULL);
  }
  return (void *)(intptr_t)(id * 1000);
}

static void *worker(void *arg)
{
  long id = (long)(intptr_t)arg;
  char label[32];
  long sum = 0;
  snprintf(label, sizeof label, "worker-%ld", id);
  pth_key_setdata(pth_key, (void *)(intptr_t)(id + 1));
  for (int r = 0; r < ROUNDS; r++) {
    probe(label);
    pth_mutex_acquire(&lock, FALSE, NULL);
    long seen = ++counter;
    pth_mutex_release(&lock);
    sum += id * 10 + r;
    printf("worker %ld: round %d, counter %ld, own key %ld\n", id, r, seen,
           (long)(intptr_t)pth_key_getdata(pth_key));
    if (id == 2 && r == 1) {
      pth_t c = pth_spawn(PTH_ATTR_DEFAULT, child, arg);
      void *ret = NULL;
      pth_join(c, &ret);
      printf("worker %ld: joined its child, which returned %ld\n", id, (long)(intptr_t)ret);
    }
    pth_yield(NULL);
  }
  probe(label);
  return (void *)(intptr_t)sum;
}

int main(void)
{
  if (!pth_init()) {
    fprintf(stderr, "pth_init failed\n");
    return 1;
  }
  pth_key_create(&pth_key, NULL);
  probe("main");
  pth_t t[WORKERS];
  for (long i = 0; i < WORKERS; i++) {
    t[i] = pth_spawn(PTH_ATTR_DEFAULT, worker, (void *)(intptr_t)i);
    if (t[i] == NULL) {
      fprintf(stderr, "pth_spawn failed\n");
      return 1;
    }
  }
  for (int i = 0; i < WORKERS; i++) {
    void *ret = NULL;
    pth_join(t[i], &ret);
    printf("main: worker %d returned %ld\n", i, (long)(intptr_t)ret);
  }
  probe("main");
  printf("main: counter %ld\n", counter);
  pth_kill();
  return 0;
}
