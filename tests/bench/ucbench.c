/* Benchmark: what the shim costs an unmodified ucontext program.
 *
 * This program does not include tasklocal.h and does not link the
 * library: make bench runs it as it is and with libtasklocal.so preloaded,
 * alternately, and compares. Modes (each prints "name value" lines):
 *
 *   ucbench switch          ns per swapcontext round trip, main <-> a coroutine
 *   ucbench life            ns per task life: makecontext on a reused context
 *                           and stack, swapcontext into it, return through uc_link
 *   ucbench make            ns per makecontext on a reused context and stack,
 *                           never started (the PCL benchmark's loop)
 *   ucbench mem-new N       anonymous RSS growth in bytes for N never-started tasks
 *   ucbench mem-started N   anonymous RSS growth in bytes for N tasks that started,
 *                           called the hook and are left suspended
 *   ucbench malloc SIZE     ns per malloc(SIZE) + free, with 64 suspended tasks on
 *                           malloc'd stacks around (what watching for released
 *                           stacks costs every free)
 *
 * Inside each task the program calls tlbench_task_hook() when something in
 * the process defines it: the plugin tests/bench/keys_plugin.c, preloaded
 * after the shim, binds task-local values there. Without the plugin the
 * weak reference is NULL and the program pays one test per task in every
 * run alike.
 *
 * A mode that times repeats its loop in ROUNDS chunks of about CHUNK_NS
 * each and reports the fastest chunk, the best estimate of the cost on a
 * machine that other users load at the same time.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define STACK_SIZE (64 * 1024)
#define SLICE 4096                         /* one task's ucontext_t and stack, in mem-* modes */
#define UC_ROOM 1024                       /* the start of a slice holds the ucontext_t */
#define CANARY 0x7a5c1e0ca1ca5eedull       /* at the far end of a slice's stack */
#define ROUNDS 10
#define CHUNK_NS 4e6

_Static_assert(sizeof(ucontext_t) <= UC_ROOM, "a ucontext_t must fit at the start of its slice");

extern void tlbench_task_hook(void) __attribute__((weak));
extern unsigned long tlbench_destroyed(void) __attribute__((weak));

static ucontext_t main_uc, co_uc;
static char *stack;
static ucontext_t *started_self;           /* the context a mem-started task saves itself in */

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void hook(void)
{
  if (tlbench_task_hook)
    tlbench_task_hook();
}

/* The coroutine of the switch mode: every resume yields straight back. */
static void ping(void)
{
  for (;;)
    swapcontext(&co_uc, &main_uc);
}

/* The task of the life mode: it lives, calls the hook, and returns into
 * main through uc_link. */
static void short_life(void)
{
  hook();
}

static void never_run(void)
{
}

static void loop_switch(long n)
{
  for (long i = 0; i < n; i++)
    swapcontext(&main_uc, &co_uc);
}

static void loop_life(long n)
{
  for (long i = 0; i < n; i++) {
    co_uc.uc_stack.ss_sp = stack;
    co_uc.uc_stack.ss_size = STACK_SIZE;
    co_uc.uc_link = &main_uc;
    makecontext(&co_uc, short_life, 0);
    swapcontext(&main_uc, &co_uc);
  }
}

static void loop_make(long n)
{
  for (long i = 0; i < n; i++) {
    co_uc.uc_stack.ss_sp = stack;
    co_uc.uc_stack.ss_size = STACK_SIZE;
    co_uc.uc_link = &main_uc;
    makecontext(&co_uc, never_run, 0);
  }
}

static void started_task(void);
static size_t block_size;

static void loop_malloc(long n)
{
  for (long i = 0; i < n; i++) {
    void *p = malloc(block_size);
    /* Keeps the compiler from pairing the two calls away. */
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
  }
}

/* 64 tasks suspended on stacks from malloc, as a server's coroutines are,
 * so that the shim has stacks to watch for. */
static void park_tasks(void)
{
  static ucontext_t uc[64];
  for (int i = 0; i < 64; i++) {
    getcontext(&uc[i]);
    uc[i].uc_stack.ss_sp = malloc(STACK_SIZE);
    uc[i].uc_stack.ss_size = STACK_SIZE;
    uc[i].uc_link = &main_uc;
    started_self = &uc[i];
    makecontext(&uc[i], started_task, 0);
    swapcontext(&main_uc, &uc[i]);
  }
}

/* Calibrates a chunk to CHUNK_NS, then returns the fastest of ROUNDS
 * chunks in ns per iteration; *total counts every iteration run. */
static double time_loop(void (*loop)(long n), long *total)
{
  long n = 100;
  *total = 0;
  for (;;) {
    double t0 = now_ns();
    loop(n);
    *total += n;
    if (now_ns() - t0 >= CHUNK_NS || n > (1L << 40))
      break;
    n *= 2;
  }
  double best = 1e300;
  for (int r = 0; r < ROUNDS; r++) {
    double t0 = now_ns();
    loop(n);
    double ns = (now_ns() - t0) / (double)n;
    *total += n;
    if (ns < best)
      best = ns;
  }
  return best;
}

/* Resident anonymous memory of the process, in bytes, from
 * /proc/self/statm: resident minus shared (file-backed) pages. The file
 * pages are libc's and the loader's code, faulted in around whatever the
 * run touches: their number moves by tens of pages from one run to the
 * next with the address-space layout (64 KiB is 0.016 B per value over
 * 4,000,000 values, the whole margin of a figure exactly at its limit).
 * What the shim and the plugin keep is all anonymous memory. */
static long rss_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, resident = -1, shared = 0;
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld %ld", &size, &resident, &shared) != 3)
    resident = -1;
  fclose(f);
  return resident < 0 ? -1 : (resident - shared) * sysconf(_SC_PAGESIZE);
}

static void started_task(void)
{
  ucontext_t *self = started_self;
  hook();
  swapcontext(self, &main_uc);
}

/* Makes count tasks, each with its own 4 KiB slice of one big mapping (its
 * ucontext_t at the start, its stack after it), starts each one when
 * start is set, and returns the growth of the resident memory. The slices
 * are touched in every run alike, so the difference between two runs is
 * what the shim and the plugin keep. */
static long mem_tasks(long count, int start)
{
  long before = rss_bytes();
  char *base = mmap(NULL, (size_t)count * SLICE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    perror("ucbench: mmap");
    return -1;
  }
  /* Huge pages turn a million page faults into a few thousand; the RSS is
   * the same, since every slice is touched anyway. */
  madvise(base, (size_t)count * SLICE, MADV_HUGEPAGE);
  for (long i = 0; i < count; i++) {
    char *slice = base + (size_t)i * SLICE;
    ucontext_t *uc = (ucontext_t *)(void *)slice;
    if (getcontext(uc) != 0) {
      perror("ucbench: getcontext");
      return -1;
    }
    uc->uc_stack.ss_sp = slice + UC_ROOM;
    uc->uc_stack.ss_size = SLICE - UC_ROOM;
    uc->uc_link = NULL;
    memcpy(slice + UC_ROOM, &(uint64_t){CANARY}, sizeof(uint64_t));
    if (start) {
      makecontext(uc, started_task, 0);
      started_self = uc;
      swapcontext(&main_uc, uc);
    } else {
      makecontext(uc, never_run, 0);
    }
  }
  long after = rss_bytes();
  /* A started task runs the shim and the plugin on a 3 KiB stack: if that
   * ever overflowed into the neighbouring slice, the figures would be
   * wrong, so say so instead. */
  for (long i = 0; i < count; i++) {
    uint64_t c;
    memcpy(&c, base + (size_t)i * SLICE + UC_ROOM, sizeof c);
    if (c != CANARY) {
      fprintf(stderr, "ucbench: task %ld overflowed its %d-byte stack\n", i, SLICE - UC_ROOM);
      return -1;
    }
  }
  return before < 0 || after < 0 ? -1 : after - before;
}

int main(int argc, char **argv)
{
  const char *mode = argc > 1 ? argv[1] : "";
  long total = 0;

  stack = malloc(STACK_SIZE);
  if (stack == NULL || getcontext(&co_uc) != 0)
    return 1;
  if (strcmp(mode, "switch") == 0 && argc == 2) {
    co_uc.uc_stack.ss_sp = stack;
    co_uc.uc_stack.ss_size = STACK_SIZE;
    co_uc.uc_link = NULL;
    makecontext(&co_uc, ping, 0);
    printf("switch %.2f\n", time_loop(loop_switch, &total));
  } else if (strcmp(mode, "life") == 0 && argc == 2) {
    printf("life %.2f\n", time_loop(loop_life, &total));
    /* The plugin's destructors show that the shim really ended each task
     * with its values: a figure for tasks it lost would look cheap. */
    if (tlbench_destroyed)
      printf("destroyed_per_task %.3f\n", (double)tlbench_destroyed() / (double)total);
  } else if (strcmp(mode, "make") == 0 && argc == 2) {
    printf("make %.2f\n", time_loop(loop_make, &total));
  } else if ((strcmp(mode, "mem-new") == 0 || strcmp(mode, "mem-started") == 0) && argc == 3) {
    long count = strtol(argv[2], NULL, 10);
    if (count < 1)
      return 2;
    long grown = mem_tasks(count, strcmp(mode, "mem-started") == 0);
    if (grown < 0)
      return 1;
    printf("%s %ld\n", mode, grown);
  } else if (strcmp(mode, "malloc") == 0 && argc == 3) {
    block_size = (size_t)strtoul(argv[2], NULL, 10);
    park_tasks();
    printf("malloc%s %.2f\n", argv[2], time_loop(loop_malloc, &total));
  } else {
    fprintf(stderr, "usage: ucbench switch|life|make|mem-new N|mem-started N|malloc SIZE\n");
    return 2;
  }
  return 0;
}
