/* stacktree.c: which task's stack holds a stack pointer. */
#ifndef TL_STACKTREE_H
#define TL_STACKTREE_H

#include "../internal.h"

void tl__tree_add(struct tl__task *t);
void tl__tree_del(struct tl__task *t);
struct tl__task *tl__tree_ceil(uintptr_t hi, uint64_t id);
struct tl__task *tl__tree_find(uintptr_t sp);
int tl__tree_changing(void);
struct tl__task *tl__tree_first_in(uintptr_t a, uintptr_t b); /* tasks whose stacks end in (a, b] */
struct tl__task *tl__tree_next_in(const struct tl__task *t, uintptr_t b);

/* The stack-page filter (stacktree.c explains it). */
#define TL__PAGE_SHIFT 12
#define TL__STACK_PAGES (1u << 18)
extern _Atomic uint8_t tl__stack_pages[TL__STACK_PAGES];

/* Whether a heap block at a may hold the start of a task's stack (if
 * not, surely not). */
__attribute__((no_sanitize("address", "thread", "undefined"))) static inline int tl__stack_page_hit(uintptr_t a)
{
  return atomic_load_explicit(&tl__stack_pages[(a >> TL__PAGE_SHIFT) & (TL__STACK_PAGES - 1)],
                              memory_order_relaxed) != 0;
}

/* Whether a stack may start anywhere in [a, b): the filter's entries of
 * every page there (a block too big to look through is taken as a hit). */
__attribute__((no_sanitize("address", "thread", "undefined"))) static inline int tl__stack_pages_hit(uintptr_t a,
                                                                                                    uintptr_t b)
{
  if (b <= a)
    return 0;
  uintptr_t first = a >> TL__PAGE_SHIFT, last = (b - 1) >> TL__PAGE_SHIFT;
  if (last - first >= TL__STACK_PAGES)
    return 1;
  for (uintptr_t p = first;; p++) {
    if (atomic_load_explicit(&tl__stack_pages[p & (TL__STACK_PAGES - 1)], memory_order_relaxed) != 0)
      return 1;
    if (p == last)
      return 0;
  }
}

#endif /* TL_STACKTREE_H */
