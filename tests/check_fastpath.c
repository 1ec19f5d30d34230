/* The assembly fast paths decide as the C does.
 *
 * swapcontext's inline switch (arch/<arch>.S) repeats, for the common
 * case, what tl__before_swap does in C, and x86_64's makecontext repeats
 * tl__task_remake's never-started loop. This suite is linked with the
 * library's sources themselves, so that it can reach both: it runs the
 * same program of switches and makes twice, each time in a child of the
 * same process (so with the same records at the same addresses and the
 * same ids), once through the wrappers the program calls and once through
 * the C functions alone, and compares what the library had decided at
 * each real call: the current and previous task, the tasks' states, the
 * thread's counters, hints and id block, the record a make reuses, the
 * function and registers it gives the context. The real functions are
 * replaced by recorders that take that snapshot and then call them.
 *
 * --wrap counts the calls into C, to make sure the first run did take the
 * fast paths (or the comparison would show nothing).
 */
#include "testutil.h"

#include "internal.h"
#include "task/ctxmap.h"
#include "task/identity.h"
#include "interpose.h"
#include "options.h"
#include "real.h"
#include "thread.h"

#include <stdint.h>
#include <sys/mman.h>

void tl__before_swap(ucontext_t *oucp, const ucontext_t *ucp);
void __real_tl__before_swap(ucontext_t *oucp, const ucontext_t *ucp);
void __wrap_tl__before_swap(ucontext_t *oucp, const ucontext_t *ucp);
void (*__real_tl__before_make(ucontext_t *ucp, void (*func)(void)))(void);
void (*__wrap_tl__before_make(ucontext_t *ucp, void (*func)(void)))(void);

#define NCO 3
#define STACK_SIZE (64 * 1024)
#define MAX_SNAPS 512

/* What the library had decided when it called the real function. */
struct task_snap {
  uint64_t id, parent;
  uintptr_t lo, hi;
  const void *ctx, *vt;
  void (*entry)(void);
  uint8_t state, flags, mapped, in_tree;
  uint32_t ran_on;
};

struct snap {
  int kind;                                /* 's'wap or 'm'ake */
  int step;
  uint64_t current, prev;                  /* ids */
  int in_switch;
  uint64_t switches, untracked, made_here, released_here, id_next, id_end;
  uint32_t nended, uncounted;
  uint64_t span;                           /* the read view's span */
  struct tl__hint hint[8];
  struct task_snap cur, target;            /* the current task; the target's, or the made one's */
  void (*start)(void);                     /* make: the function given to the real makecontext */
  uintptr_t regs[3];                       /* make: what the context carries to the trampoline */
};

struct record {
  int n, slow_swaps, slow_makes, swaps, makes;
  struct snap snaps[MAX_SNAPS];
};

static struct record *rec;                 /* shared with the parent */
static int through_c;                      /* this run calls the C functions, not the wrappers */
static int step;

static int (*genuine_swap)(ucontext_t *, const ucontext_t *);
static void (*genuine_make)(ucontext_t *, void (*)(void), int, ...);

void __wrap_tl__before_swap(ucontext_t *oucp, const ucontext_t *ucp)
{
  rec->slow_swaps++;
  __real_tl__before_swap(oucp, ucp);
}

void (*__wrap_tl__before_make(ucontext_t *ucp, void (*func)(void)))(void)
{
  rec->slow_makes++;
  return __real_tl__before_make(ucp, func);
}

static void task_snap(struct task_snap *s, const struct tl__task *t)
{
  memset(s, 0, sizeof *s);
  if (t == NULL)
    return;
  s->id = t->id;
  s->parent = t->parent;
  s->lo = t->lo;
  s->hi = t->hi;
  s->ctx = t->ctx;
  s->vt = t->vt;
  s->entry = t->entry;
  s->state = t->state;
  s->flags = t->flags;
  s->mapped = t->mapped;
  s->in_tree = t->in_tree;
  s->ran_on = t->ran_on;
}

static struct snap *snap(int kind, const void *ctx)
{
  ck_assert_int_lt(rec->n, MAX_SNAPS);
  struct snap *s = &rec->snaps[rec->n++];
  memset(s, 0, sizeof *s);
  struct tl__thread *th = tl__tls;
  s->kind = kind;
  s->step = step;
  s->current = th->current != NULL ? th->current->id : 0;
  s->prev = th->prev != NULL ? th->prev->id : 0;
  s->in_switch = th->in_switch;
  s->switches = th->switches;
  s->untracked = th->untracked;
  s->made_here = th->made_here;
  s->released_here = th->released_here;
  s->id_next = th->id_next;
  s->id_end = th->id_end;
  s->nended = th->nended;
  s->uncounted = th->uncounted;
  s->span = tl__view.span;
  memcpy(s->hint, th->hint, sizeof s->hint);
  task_snap(&s->cur, th->current);
  task_snap(&s->target, tl__hint_task(th, ctx));
  return s;
}

static int record_swap(ucontext_t *oucp, const ucontext_t *ucp)
{
  snap('s', ucp);
  return genuine_swap(oucp, ucp);
}

static void record_make(ucontext_t *ucp, void (*func)(void), int argc, ...)
{
  ck_assert_int_eq(argc, 0);
  struct snap *s = snap('m', ucp);
  s->start = func;
#if defined(__x86_64__)
  s->regs[0] = (uintptr_t)ucp->uc_mcontext.gregs[REG_R12];
  s->regs[1] = (uintptr_t)ucp->uc_mcontext.gregs[REG_R13];
  s->regs[2] = (uintptr_t)ucp->uc_mcontext.gregs[REG_R14];
#elif defined(__aarch64__)
  s->regs[0] = ucp->uc_mcontext.regs[20];
  s->regs[1] = ucp->uc_mcontext.regs[21];
  s->regs[2] = ucp->uc_mcontext.regs[22];
#endif
  genuine_make(ucp, func, 0);
}

/* The program's calls, through the wrappers or through C alone (what the
 * wrappers' slow paths do: the bookkeeping, then the real function). */
static void swap(ucontext_t *oucp, const ucontext_t *ucp)
{
  step++;
  rec->swaps++;
  if (through_c) {
    tl__before_swap(oucp, ucp);
    ck_assert_int_eq(tl__real_swapcontext(oucp, ucp), 0);
  } else {
    ck_assert_int_eq(swapcontext(oucp, ucp), 0);
  }
}

static void make(ucontext_t *ucp, void (*func)(void))
{
  step++;
  rec->makes++;
  if (through_c) {
    void (*start)(void) = tl__before_make(ucp, func);
    tl__real_makecontext(ucp, start, 0);
  } else {
    makecontext(ucp, func, 0);
  }
}

/* The contexts, chosen in a pool so that those sharing a set of the
 * thread's hints (two ways, tl__hint_index and tl__hint_put) are two at
 * most and have the same first way, so that none pushes another out:
 * which switches find their hint then depends on the program, not on
 * where the loader put it. */
static ucontext_t pool[32];
static ucontext_t *main_ctx, *elsewhere, *co[NCO];
static ucontext_t *back;                   /* where the coroutines return to */
static ucontext_t *made_on[NCO + 1];       /* the context made on each stack */
static char stacks[NCO + 1][STACK_SIZE] __attribute__((aligned(16)));

static void choose_contexts(void)
{
  ucontext_t **want[] = {&main_ctx, &elsewhere, &co[0], &co[1], &co[2]};
  int used[4] = {0}, first[4], n = 0;
  for (size_t i = 0; i < sizeof pool / sizeof pool[0] && n < (int)(sizeof want / sizeof want[0]); i++) {
    int way = (int)tl__hint_index(&pool[i]), set = way >> 1;
    if (used[set] == 0 || (used[set] < 2 && first[set] == way)) {
      first[set] = way;
      used[set]++;
      *want[n++] = &pool[i];
    }
  }
  ck_assert_int_eq(n, sizeof want / sizeof want[0]);
  back = main_ctx;
}

static void prepare(ucontext_t *uc, int i, size_t size, ucontext_t *link)
{
  ck_assert_int_eq(getcontext(uc), 0);
  uc->uc_stack.ss_sp = stacks[i];
  uc->uc_stack.ss_size = size;
  uc->uc_link = link;
  made_on[i] = uc;
}

/* The stack the caller runs on. */
static int which(void)
{
  char here;
  for (int i = 0; i <= NCO; i++)
    if (&here >= stacks[i] && &here < stacks[i] + STACK_SIZE)
      return i;
  ck_abort_msg("not on a coroutine's stack");
  return -1;
}

/* A scheduler's coroutine: back to main, three rounds. */
static void asym(void)
{
  ucontext_t *me = made_on[which()];
  for (int round = 0; round < 3; round++)
    swap(me, back);
}

/* Symmetric: each passes to the next; the last goes back to main. */
static void sym(void)
{
  int me = which();
  for (int round = 0; round < 2; round++)
    swap(co[me], me + 1 < NCO ? co[me + 1] : main_ctx);
}

static void nothing(void)
{
}

/* Makes co[0] again twice, from another task than the one that made it
 * last: the record is reused with this task as the parent. */
static void maker(void)
{
  make(co[0], nothing);
  make(co[0], asym);
  swap(co[1], main_ctx);
}

static void program(void)
{
  /* Asymmetric rounds: the first switch to each coroutine is C's work,
   * the next ones the fast path's; the last ends each through uc_link. */
  for (int i = 0; i < NCO; i++) {
    prepare(co[i], i, STACK_SIZE, main_ctx);
    make(co[i], asym);
  }
  for (int round = 0; round < 4; round++)
    for (int i = 0; i < NCO; i++)
      swap(main_ctx, co[i]);

  /* Main saves itself elsewhere once: C's work, and the hints change. */
  prepare(co[0], 0, STACK_SIZE, main_ctx);
  make(co[0], asym);
  back = elsewhere;
  swap(elsewhere, co[0]);
  back = main_ctx;
  swap(main_ctx, co[0]);

  /* Symmetric passes (co[0]'s suspended task is released: its context is
   * made again on its stack). */
  for (int i = 0; i < NCO; i++) {
    prepare(co[i], i, STACK_SIZE, main_ctx);
    make(co[i], sym);
  }
  for (int round = 0; round < 3; round++)
    swap(main_ctx, co[0]);

  /* Never-started contexts made again and again on the same stack (the
   * PCL loop), also from another task; then on less of it; then with creation backtraces asked
   * for; then over a suspended task; then after one finished. */
  for (int i = 0; i < 20; i++) {
    prepare(co[0], NCO, STACK_SIZE, main_ctx);
    make(co[0], nothing);
  }
  prepare(co[1], 1, STACK_SIZE, main_ctx);
  make(co[1], maker);
  swap(main_ctx, co[1]);
  prepare(co[0], NCO, STACK_SIZE / 2, main_ctx);
  make(co[0], nothing);
  make(co[0], nothing);
  int backtrace = tl__opt.backtrace;
  tl__opt.backtrace = 1;
  make(co[0], nothing);
  tl__opt.backtrace = backtrace;
  make(co[0], nothing);
  make(co[0], asym);
  swap(main_ctx, co[0]);
  for (int i = 0; i < 3; i++)
    make(co[0], nothing);
  swap(main_ctx, co[0]);
  for (int i = 0; i < 3; i++)
    make(co[0], nothing);
}

/* Runs the program in a child, which writes its record at r. Both
 * records are mapped before either child starts, so that the children
 * map their task records at the same addresses. */
static void run(struct record *r, int c)
{
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    rec = r;
    through_c = c;
    genuine_swap = tl__real_swapcontext;
    genuine_make = tl__real_makecontext;
    tl__real_swapcontext = record_swap;
    tl__real_makecontext = record_make;
    program();
    _exit(0);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the run %s failed: status %#x",
                c ? "through C" : "through the wrappers", status);
}

static void describe(const struct snap *s, char *buf, size_t size)
{
  snprintf(buf, size,
           "%c at step %d: current %llu prev %llu in_switch %d switches %llu made %llu released %llu id_next %llu "
           "nended %u uncounted %u span %llu; current state %u flags %#x; target id %llu parent %llu state %u "
           "flags %#x mapped %u entry %p; start %p regs %#lx %#lx %#lx",
           s->kind, s->step, (unsigned long long)s->current, (unsigned long long)s->prev, s->in_switch,
           (unsigned long long)s->switches, (unsigned long long)s->made_here, (unsigned long long)s->released_here,
           (unsigned long long)s->id_next, s->nended, s->uncounted, (unsigned long long)s->span, s->cur.state,
           s->cur.flags, (unsigned long long)s->target.id, (unsigned long long)s->target.parent, s->target.state,
           s->target.flags, s->target.mapped, (void *)(uintptr_t)s->target.entry, (void *)(uintptr_t)s->start,
           (unsigned long)s->regs[0], (unsigned long)s->regs[1], (unsigned long)s->regs[2]);
}

START_TEST(fast_path_agrees)
{
  /* This thread's state exists before the children copy it. */
  ck_assert_ptr_nonnull(tl_current());
  ck_assert_ptr_nonnull(tl__tls);
  choose_contexts();
  struct record *wrappers = mmap(NULL, 2 * sizeof *wrappers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ck_assert_ptr_ne(wrappers, MAP_FAILED);
  struct record *c = wrappers + 1;
  run(wrappers, 0);
  run(c, 1);
  ck_assert_int_eq(wrappers->n, c->n);
  ck_assert_int_eq(wrappers->n, wrappers->swaps + wrappers->makes);
  for (int i = 0; i < c->n; i++) {
    char a[1024], b[1024];
    describe(&wrappers->snaps[i], a, sizeof a);
    describe(&c->snaps[i], b, sizeof b);
    ck_assert_msg(memcmp(&wrappers->snaps[i], &c->snaps[i], sizeof c->snaps[i]) == 0,
                  "the fast path decided otherwise than C:\nwrappers: %s\nC:        %s", a, b);
  }
  /* The comparison meant something: the C run went through C every time,
   * and the wrappers took their fast paths for most switches (and, on
   * x86_64, for most of the makes of the loop). */
  ck_assert_int_eq(c->slow_swaps, c->swaps);
  ck_assert_int_eq(c->slow_makes, c->makes);
  /* Under AddressSanitizer every switch is announced to it, in C. */
  if (TL_TEST_UNDER_ASAN)
    return;
  ck_assert_msg(wrappers->slow_swaps * 2 < wrappers->swaps, "%d of %d switches went to C", wrappers->slow_swaps,
                wrappers->swaps);
#if defined(__x86_64__)
  ck_assert_msg(wrappers->slow_makes * 2 < wrappers->makes, "%d of %d makes went to C", wrappers->slow_makes,
                wrappers->makes);
#endif
}
END_TEST

static Suite *fastpath_suite(void)
{
  Suite *s = suite_create("fastpath");
  TCase *tc = tcase_create("agree");
  tcase_add_test(tc, fast_path_agrees);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  return tl_test_run(fastpath_suite());
}
