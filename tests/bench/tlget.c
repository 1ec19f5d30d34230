/* Benchmark: the read path. tl_get of a bound task key, measured inside a
 * running coroutine, side by side with pthread_getspecific, a plain
 * __thread read and GNU Pth's pth_key_getdata, in one process.
 *
 *   tlget TASKS KEYS
 *
 * makes KEYS task keys and TASKS - 1 tasks that are never started (each
 * with its own ucontext_t and its own 4 KiB stack slice), then starts one
 * more task, which binds every key and times the reads of the middle one.
 * It prints "name ns-per-read" lines for make bench (tests/bench/run.sh).
 *
 * The variants alternate in rounds, so that a burst of noise from the other
 * users of the machine hits all of them; a variant's figure is its fastest
 * round, the best estimate of its cost on a loaded machine.
 *
 * Built twice: linked with -ltasklocal (and -lpth), and, once the header
 * has it, with -DTL_DYNAMIC and -DTLBENCH_NO_PTH, run under LD_PRELOAD, to
 * compare header-only detection with linking.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#ifndef TLBENCH_NO_PTH
#include <pth.h>
#endif

#include "tasklocal.h"

#define SLICE 4096                         /* the stack slice of a never-started task */
#define UC_ROOM 1024                       /* the start of a slice holds its ucontext_t */
#define BENCH_STACK (256 * 1024)           /* the measuring task's stack */
#define ROUNDS 10
#define CHUNK_NS 4e6                       /* each timed chunk lasts about 4 ms */

_Static_assert(sizeof(ucontext_t) <= UC_ROOM, "a ucontext_t must fit at the start of its slice");

/* Keeps the compiler from moving a read out of its loop: the key becomes
 * unknown and memory may have changed on every iteration, as when a program
 * does other work between two reads. The same barrier is in every loop. */
#define OPAQUE(x) __asm__ volatile("" : "+r"(x) : : "memory")
/* Makes the compiler produce the value read, without using it. */
#define USE(x) __asm__ volatile("" : : "r"(x))

struct variant {
  const char *name;
  void (*loop)(long n);
  long n;                                  /* iterations per chunk, calibrated */
  double best;                             /* ns per iteration, fastest chunk */
};

static tl_key_t *keys;
static long nkeys;
static tl_key_t tl_k;                      /* the measured key */
static pthread_key_t pt_k;
static __thread void *tls_value;
#ifndef TLBENCH_NO_PTH
static pth_key_t pth_k;
#endif
static int marker;                         /* every variant's value is its address */
static ucontext_t main_uc, bench_uc;
static int failed;

static double now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

__attribute__((noinline)) static void loop_empty(long n)
{
  long k = 0;
  for (long i = 0; i < n; i++) {
    OPAQUE(k);
    USE(k);
  }
}

__attribute__((noinline)) static void loop_tl_get(long n)
{
  tl_key_t k = tl_k;
  for (long i = 0; i < n; i++) {
    OPAQUE(k);
    void *v = tl_get(k);
    USE(v);
  }
}

__attribute__((noinline)) static void loop_pthread(long n)
{
  pthread_key_t k = pt_k;
  for (long i = 0; i < n; i++) {
    OPAQUE(k);
    void *v = pthread_getspecific(k);
    USE(v);
  }
}

__attribute__((noinline)) static void loop_thread(long n)
{
  long k = 0;
  for (long i = 0; i < n; i++) {
    OPAQUE(k);
    void *v = tls_value;
    USE(v);
  }
}

#ifndef TLBENCH_NO_PTH
__attribute__((noinline)) static void loop_pth(long n)
{
  pth_key_t k = pth_k;
  for (long i = 0; i < n; i++) {
    OPAQUE(k);
    void *v = pth_key_getdata(k);
    USE(v);
  }
}
#endif

static struct variant variants[] = {
  {"tl_get", loop_tl_get, 0, 0},
  {"pthread", loop_pthread, 0, 0},
  {"thread", loop_thread, 0, 0},
#ifndef TLBENCH_NO_PTH
  {"pth", loop_pth, 0, 0},
#endif
  {"loop", loop_empty, 0, 0},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

static double run_chunk(struct variant *v)
{
  double t0 = now_ns();
  v->loop(v->n);
  return (now_ns() - t0) / (double)v->n;
}

/* Doubles the iteration count until one chunk lasts CHUNK_NS, so that the
 * clock's own cost and resolution do not matter and the cheapest and the
 * dearest variants are timed over about the same wall time. */
static void calibrate(struct variant *v)
{
  v->n = 1000;
  for (;;) {
    double t0 = now_ns();
    v->loop(v->n);
    if (now_ns() - t0 >= CHUNK_NS || v->n > (1L << 40))
      return;
    v->n *= 2;
  }
}

/* Checks that every variant reads the value that was bound: a benchmark of
 * a read that misses (a wrong task, an unbound key) would time the wrong
 * path. */
static void check_values(void)
{
  if (tl_get(tl_k) != &marker) {
    fprintf(stderr, "tlget: tl_get does not return the bound value\n");
    failed = 1;
  }
  if (pthread_getspecific(pt_k) != &marker || tls_value != &marker) {
    fprintf(stderr, "tlget: pthread_getspecific or __thread does not return the value\n");
    failed = 1;
  }
#ifndef TLBENCH_NO_PTH
  if (pth_key_getdata(pth_k) != &marker) {
    fprintf(stderr, "tlget: pth_key_getdata does not return the value\n");
    failed = 1;
  }
#endif
}

/* The measuring task: it binds every key (the measured one to &marker,
 * the others to their own slot, so that its table is as full as the key
 * count makes it), then times the variants in alternating rounds. */
static void bench_task(void)
{
  for (long i = 0; i < nkeys; i++) {
    if (tl_set(keys[i], keys[i] == tl_k ? (void *)&marker : (void *)&keys[i]) != 0) {
      fprintf(stderr, "tlget: tl_set failed for key %ld of %ld\n", i, nkeys);
      failed = 1;
      return;
    }
  }
  check_values();
  if (failed)
    return;
  for (size_t v = 0; v < NVARIANTS; v++) {
    calibrate(&variants[v]);
    variants[v].best = 1e300;
  }
  for (int r = 0; r < ROUNDS; r++) {
    for (size_t i = 0; i < NVARIANTS; i++) {
      /* The starting variant rotates, so that none always runs first
       * after the previous round's last one. */
      struct variant *v = &variants[(i + (size_t)r) % NVARIANTS];
      double ns = run_chunk(v);
      if (ns < v->best)
        v->best = ns;
    }
  }
  check_values();
}

static void idle_task(void)
{
}

/* Makes count tasks that are never started: one big mapping cut in 4 KiB
 * slices, each holding its ucontext_t at the start and its stack after it,
 * so that a task costs one page however many there are. */
static int make_idle_tasks(long count)
{
  if (count <= 0)
    return 0;
  char *base = mmap(NULL, (size_t)count * SLICE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    perror("tlget: mmap");
    return -1;
  }
  /* Every slice is touched (makecontext writes at the top of its stack):
   * huge pages make the million page faults a few thousand. Without them
   * the figures are the same, only slower to get. */
  madvise(base, (size_t)count * SLICE, MADV_HUGEPAGE);
  for (long i = 0; i < count; i++) {
    char *slice = base + (size_t)i * SLICE;
    ucontext_t *uc = (ucontext_t *)(void *)slice;
    if (getcontext(uc) != 0) {
      perror("tlget: getcontext");
      return -1;
    }
    uc->uc_stack.ss_sp = slice + UC_ROOM;
    uc->uc_stack.ss_size = SLICE - UC_ROOM;
    uc->uc_link = NULL;
    makecontext(uc, idle_task, 0);
  }
  return 0;
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: tlget TASKS KEYS\n");
    return 2;
  }
  long ntasks = strtol(argv[1], NULL, 10), nk = strtol(argv[2], NULL, 10);
  if (ntasks < 1 || nk < 1) {
    fprintf(stderr, "tlget: TASKS and KEYS must be at least 1\n");
    return 2;
  }

#ifndef TLBENCH_NO_PTH
  if (!pth_init()) {
    perror("tlget: pth_init");
    return 1;
  }
  if (!pth_key_create(&pth_k, NULL) || !pth_key_setdata(pth_k, &marker)) {
    perror("tlget: pth key");
    return 1;
  }
#endif
  if (pthread_key_create(&pt_k, NULL) != 0 || pthread_setspecific(pt_k, &marker) != 0) {
    fprintf(stderr, "tlget: pthread key\n");
    return 1;
  }
  tls_value = &marker;

  keys = calloc((size_t)nk, sizeof *keys);
  if (keys == NULL)
    return 1;
  for (long i = 0; i < nk; i++) {
    int err = tl_key_create(&keys[i], NULL);
    if (err != 0) {
      fprintf(stderr, "tlget: tl_key_create failed (%s) at key %ld\n", strerror(err), i);
      return 1;
    }
  }
  nkeys = nk;
  tl_k = keys[nk / 2];

  if (make_idle_tasks(ntasks - 1) != 0)
    return 1;

  void *stack = malloc(BENCH_STACK);
  if (stack == NULL || getcontext(&bench_uc) != 0)
    return 1;
  bench_uc.uc_stack.ss_sp = stack;
  bench_uc.uc_stack.ss_size = BENCH_STACK;
  bench_uc.uc_link = &main_uc;
  makecontext(&bench_uc, bench_task, 0);
  if (swapcontext(&main_uc, &bench_uc) != 0)
    return 1;

  if (!tl_available()) {
    fprintf(stderr, "tlget: the library is not tracking ucontext (tl_available() == 0)\n");
    failed = 1;
  }
  if (failed)
    return 1;
  for (size_t v = 0; v < NVARIANTS; v++)
    printf("%s %.4f\n", variants[v].name, variants[v].best);
  return 0;
}
