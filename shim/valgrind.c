/* Telling valgrind about tasks (doc/sanitizers.md): each task's stack is registered
 * (VALGRIND_STACK_REGISTER), so that memcheck knows a switch between
 * stacks from a huge stack frame and stops warning "client switching
 * stacks?". Outside valgrind the requests cost a few instructions.
 */
#include "internal.h"
#include "valgrind.h"
#include "lock.h"
#include "alloc.h"

#include <errno.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TL__HAVE_VALGRIND 1
#endif
#endif

#ifdef TL__HAVE_VALGRIND
/* Whether valgrind runs the process, asked once: the question costs a
 * dependent chain of rotations, a few nanoseconds on every makecontext. */
static int on_valgrind(void)
{
  static int on = -1;
  int v = __atomic_load_n(&on, __ATOMIC_RELAXED);
  if (TL__UNLIKELY(v < 0)) {
    v = RUNNING_ON_VALGRIND != 0;
    __atomic_store_n(&on, v, __ATOMIC_RELAXED);
  }
  return v;
}
#endif

#ifdef TL__HAVE_VALGRIND
/* Valgrind's ids of the tasks' registered stacks, under valgrind only: the
 * record has no room to spare for them (doc/performance.md), and an extension per
 * task would make valgrind's own instruction counts of a task life (the
 * way its cost is measured) include work that a program run natively
 * never does. Open addressing on the record's address, with the removed
 * entries' followers shifted back. */
struct vg_ent {
  const struct tl__task *t;
  uint32_t id;
};

static struct {
  struct tl__lock lock;
  struct vg_ent *e;
  uint32_t cap, n;
} vgstacks;

static uint32_t vg_home(const struct tl__task *t, uint32_t cap)
{
  uint64_t x = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
  return (uint32_t)(x >> 32) & (cap - 1);
}

/* Called with vgstacks.lock held. A failed allocation keeps the old table. */
static int vg_grow(void)
{
  uint32_t cap = vgstacks.cap ? vgstacks.cap * 2 : 1024;
  struct vg_ent *e = tl__calloc(cap, sizeof *e);
  if (e == NULL)
    return ENOMEM;
  for (uint32_t i = 0; i < vgstacks.cap; i++) {
    if (vgstacks.e[i].t == NULL)
      continue;
    uint32_t k = vg_home(vgstacks.e[i].t, cap);
    while (e[k].t != NULL)
      k = (k + 1) & (cap - 1);
    e[k] = vgstacks.e[i];
  }
  tl__free(vgstacks.e);
  vgstacks.e = e;
  vgstacks.cap = cap;
  return 0;
}

static void vg_put(const struct tl__task *t, uint32_t id)
{
  if (tl__lock(&vgstacks.lock) != 0)
    return;
  if ((vgstacks.n + 1) * 2 <= vgstacks.cap || vg_grow() == 0) {
    uint32_t k = vg_home(t, vgstacks.cap);
    while (vgstacks.e[k].t != NULL && vgstacks.e[k].t != t)
      k = (k + 1) & (vgstacks.cap - 1);
    if (vgstacks.e[k].t == NULL)
      vgstacks.n++;
    vgstacks.e[k] = (struct vg_ent){t, id};
  }
  tl__unlock(&vgstacks.lock);
}

/* The id registered for t, taken out of the table; 0 if none. */
static uint32_t vg_take(const struct tl__task *t)
{
  if (vgstacks.cap == 0 || tl__lock(&vgstacks.lock) != 0)
    return 0;
  uint32_t mask = vgstacks.cap - 1, i = vg_home(t, vgstacks.cap), id = 0;
  while (vgstacks.e[i].t != NULL && vgstacks.e[i].t != t)
    i = (i + 1) & mask;
  if (vgstacks.e[i].t == t) {
    id = vgstacks.e[i].id;
    vgstacks.n--;
    /* The hole at i is filled by the first follower whose home is not
     * between i and itself, and so on until an empty entry. */
    for (uint32_t j = (i + 1) & mask; vgstacks.e[j].t != NULL; j = (j + 1) & mask) {
      uint32_t home = vg_home(vgstacks.e[j].t, vgstacks.cap);
      if (((j - home) & mask) >= ((j - i) & mask)) {
        vgstacks.e[i] = vgstacks.e[j];
        i = j;
      }
    }
    vgstacks.e[i].t = NULL;
  }
  tl__unlock(&vgstacks.lock);
  return id;
}
#endif

int tl__valgrind_on(void)
{
#ifdef TL__HAVE_VALGRIND
  return on_valgrind();
#else
  return 0;
#endif
}

void tl__valgrind_made(struct tl__task *t)
{
#ifdef TL__HAVE_VALGRIND
  if (on_valgrind() && t->hi > t->lo) {
    vg_put(t, VALGRIND_STACK_REGISTER(t->lo, t->hi));
    tl__flag_set(t, TL__F_VG);
  }
#else
  (void)t;
#endif
}

void tl__valgrind_gone(struct tl__task *t)
{
#ifdef TL__HAVE_VALGRIND
  if (t->flags & TL__F_VG) {
    uint32_t id = vg_take(t);
    if (id != 0)
      VALGRIND_STACK_DEREGISTER(id);
    tl__flag_clear(t, TL__F_VG);
  }
#else
  (void)t;
#endif
}

/* libunwind checks each stack address it is about to read by passing it to
 * a system call (its CONSERVATIVE_CHECKS), and the stack words it checks
 * are often uninitialised padding: memcheck reports "points to
 * uninitialised byte(s)" for what is libunwind's deliberate probing.
 * Backtraces are taken with memcheck's error reporting off. */
void tl__valgrind_quiet(int on)
{
#ifdef TL__HAVE_VALGRIND
  if (on)
    VALGRIND_DISABLE_ERROR_REPORTING;
  else
    VALGRIND_ENABLE_ERROR_REPORTING;
#else
  (void)on;
#endif
}
