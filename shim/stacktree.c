/* The stack-range tree: which task's stack holds a stack pointer. Changed
 * and searched with the registry's lock held (registry.c).
 *
 * Each record in the tree also says whether a newer task of the same stack
 * is there (TL__TREE_SHADOWED), so that the common makecontext knows that
 * the record it reuses in place is still the newest of its stack with one
 * load, without the lock (task.c, remake).
 */
#include "internal.h"
#include "stacktree.h"

/* The stack-range tree; changed with R.lock held. */
static struct {
  struct tl__task *root;
  int changing;                            /* a tree_add or tree_del is under way */
} T;

/* ------------------------------------------------------------------------
 * The stack-range tree: a treap ordered by (hi ascending, id descending),
 * with the heap priority derived from the record's address, so a record
 * needs only two links, and one whose id changes in place (ended_take)
 * keeps its priority. Called with the registry's lock held (R.lock).
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
  struct tl__task *n = T.root, *best = NULL;
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

/* Changes of the tree are marked (T.changing) for a signal handler that
 * interrupts them on the same thread: see tl__tree_changing. */
/* A task enters the tree as the newest of its stack (its id is newer than
 * any handed out before: tl__registry_new_id), which the previous newest
 * is no longer. */
void tl__tree_add(struct tl__task *t)
{
  struct tl__task *prev = tl__tree_ceil(t->hi, UINT64_MAX);
  T.changing = 1;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  if (prev != NULL && prev->hi == t->hi)
    TL__STORE(prev->in_tree, prev->in_tree | TL__TREE_SHADOWED);
  T.root = tree_insert(T.root, t);
  TL__STORE(t->in_tree, TL__TREE_IN);
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  T.changing = 0;
}

void tl__tree_del(struct tl__task *t)
{
  if (t->in_tree) {
    T.changing = 1;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    T.root = tree_delete(T.root, t);
    /* The newest of its stack leaves: the next one is the newest now. */
    if (!(t->in_tree & TL__TREE_SHADOWED)) {
      struct tl__task *next = tl__tree_ceil(t->hi, UINT64_MAX);
      if (next != NULL && next->hi == t->hi)
        TL__STORE(next->in_tree, TL__TREE_IN);
    }
    TL__STORE(t->in_tree, 0);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    T.changing = 0;
  }
}

/* Whether a tl__tree_add or tl__tree_del is under way on this thread, for
 * a signal handler that interrupted it while it held the registry's lock:
 * the tree may then be half changed. */
int tl__tree_changing(void)
{
  int changing = T.changing;
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  return changing;
}
