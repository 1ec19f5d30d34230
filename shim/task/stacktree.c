/* The stack-range tree: which task's stack holds a stack pointer. Changed
 * and searched with the registry's lock held (registry.c).
 *
 * Each record in the tree also says whether a newer task of the same stack
 * is there (TL__TREE_SHADOWED), so that the common makecontext knows that
 * the record it reuses in place is still the newest of its stack with one
 * load, without the lock (make.c, remake).
 */
#include "../internal.h"
#include "stacktree.h"

/* The stack-range tree; changed with the registry's lock held. */
static struct {
  struct tl__task *root;
  int changing;                            /* a tree_add or tree_del is under way */
} stacks;

/* ------------------------------------------------------------------------
 * The stack-range tree: a treap ordered by (hi ascending, id descending),
 * with the heap priority derived from the record's address, so a record
 * needs only two links, and one whose id changes in place (ended_take)
 * keeps its priority. Called with the registry's lock held.
 * ------------------------------------------------------------------------ */

static uint64_t prio(const struct tl__task *t)
{
  uint64_t x = (uint64_t)(uintptr_t)t * 0x9e3779b97f4a7c15ull;
  return x ^ (x >> 29);
}

static int before(uintptr_t hi, uint64_t id, const struct tl__task *t)
{
  return hi < t->hi || (hi == t->hi && id > t->id);
}

static struct tl__task *tree_insert(struct tl__task *root, struct tl__task *n)
{
  if (root == NULL) {
    n->left = n->right = NULL;
    return n;
  }
  if (before(n->hi, n->id, root)) {
    root->left = tree_insert(root->left, n);
    if (prio(root->left) > prio(root)) {
      struct tl__task *l = root->left;
      root->left = l->right;
      l->right = root;
      return l;
    }
  } else {
    root->right = tree_insert(root->right, n);
    if (prio(root->right) > prio(root)) {
      struct tl__task *r = root->right;
      root->right = r->left;
      r->left = root;
      return r;
    }
  }
  return root;
}

static struct tl__task *tree_merge(struct tl__task *a, struct tl__task *b)
{
  if (a == NULL)
    return b;
  if (b == NULL)
    return a;
  if (prio(a) > prio(b)) {
    a->right = tree_merge(a->right, b);
    return a;
  }
  b->left = tree_merge(a, b->left);
  return b;
}

static struct tl__task *tree_delete(struct tl__task *root, struct tl__task *n)
{
  if (root == NULL)
    return NULL;
  if (root == n)
    return tree_merge(n->left, n->right);
  if (before(n->hi, n->id, root))
    root->left = tree_delete(root->left, n);
  else
    root->right = tree_delete(root->right, n);
  return root;
}

/* The first task in tree order at or after (hi, id). */
struct tl__task *tl__tree_ceil(uintptr_t hi, uint64_t id)
{
  struct tl__task *n = stacks.root, *best = NULL;
  while (n != NULL) {
    if (before(hi, id, n) || (hi == n->hi && id == n->id)) {
      best = n;
      n = n->left;
    } else {
      n = n->right;
    }
  }
  return best;
}

/* The innermost live task whose stack holds sp. Ranges are visited by
 * increasing top; the first one that also starts at or below sp is the
 * innermost for properly nested stacks. The walk is bounded: a pathological
 * layout gives "unknown", never a long stall. */
struct tl__task *tl__tree_find(uintptr_t sp)
{
  struct tl__task *n = tl__tree_ceil(sp + 1, UINT64_MAX);
  for (int i = 0; n != NULL && i < 64; i++) {
    if (n->lo <= sp && atomic_load_explicit(&n->state, memory_order_relaxed) != TL__FINISHED)
      return n;
    n = tl__tree_ceil(n->hi, n->id - 1);
  }
  return NULL;
}

/* ------------------------------------------------------------------------
 * The stack-page filter: whether a freed heap block may hold a task's
 * stack, with one load (heapwatch.c). Each task in the tree counts once in
 * the entries of the page its stack starts in and of the page before, by
 * page number modulo the table's size: a block that holds a stack and
 * starts less than a page before it (a stack allocated alone, or behind
 * its coroutine's small header) starts in one of those two pages. Counts
 * change with the registry's lock held and are read without it; one that
 * reaches 255 stays there, which only sends more frees to the exact check.
 * The table is in .bss: its pages cost memory only where stacks are.
 * ------------------------------------------------------------------------ */

_Atomic uint8_t tl__stack_pages[TL__STACK_PAGES];

static void pages_count(uintptr_t lo, int add)
{
  uintptr_t page = lo >> TL__PAGE_SHIFT;
  for (uintptr_t p = page - 1; p != page + 1; p++) {
    _Atomic uint8_t *c = &tl__stack_pages[p & (TL__STACK_PAGES - 1)];
    uint8_t n = atomic_load_explicit(c, memory_order_relaxed);
    if (n != 255)
      atomic_store_explicit(c, (uint8_t)(add ? n + 1 : n - 1), memory_order_relaxed);
  }
}

/* The tasks whose stacks end in (a, b], in tree order: first, then each
 * next one (NULL at the end). With the registry's lock held. */
struct tl__task *tl__tree_first_in(uintptr_t a, uintptr_t b)
{
  struct tl__task *n = tl__tree_ceil(a + 1, UINT64_MAX);
  return n != NULL && n->hi <= b ? n : NULL;
}

struct tl__task *tl__tree_next_in(const struct tl__task *t, uintptr_t b)
{
  struct tl__task *n = tl__tree_ceil(t->hi, t->id - 1);
  return n != NULL && n->hi <= b ? n : NULL;
}

/* Changes of the tree are marked (stacks.changing) for a signal handler that
 * interrupts them on the same thread: see tl__tree_changing. */
/* A task enters the tree as the newest of its stack (its id is newer than
 * any handed out before: tl__registry_new_id), which the previous newest
 * is no longer. */
void tl__tree_add(struct tl__task *t)
{
  struct tl__task *prev = tl__tree_ceil(t->hi, UINT64_MAX);
  stacks.changing = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (prev != NULL && prev->hi == t->hi) {
    uint8_t mark = TL__TREE_SHADOWED;
    if (prev->lo == t->lo && atomic_load_explicit(&prev->state, memory_order_relaxed) == TL__SUSPENDED &&
        (TL__LOAD(prev->flags) & (TL__F_STARTED | TL__F_ROOT)) == TL__F_STARTED) {
      mark |= TL__TREE_DISPLACED;
      TL__STORE(prev->ran_on, 0);
    }
    TL__STORE(prev->in_tree, prev->in_tree | mark);
  }
  stacks.root = tree_insert(stacks.root, t);
  TL__STORE(t->in_tree, TL__TREE_IN);
  pages_count(t->lo, 1);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  stacks.changing = 0;
}

void tl__tree_del(struct tl__task *t)
{
  if (t->in_tree) {
    stacks.changing = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    stacks.root = tree_delete(stacks.root, t);
    pages_count(t->lo, 0);
    /* The newest of its stack leaves: the next one is the newest now. */
    if (!(t->in_tree & TL__TREE_SHADOWED)) {
      struct tl__task *next = tl__tree_ceil(t->hi, UINT64_MAX);
      if (next != NULL && next->hi == t->hi)
        TL__STORE(next->in_tree, TL__TREE_IN | (next->in_tree & TL__TREE_DISPLACED));
    }
    TL__STORE(t->in_tree, 0);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    stacks.changing = 0;
  }
}

/* Whether a tl__tree_add or tl__tree_del is under way on this thread, for
 * a signal handler that interrupted it while it held the registry's lock:
 * the tree may then be half changed. */
int tl__tree_changing(void)
{
  int changing = stacks.changing;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  return changing;
}
