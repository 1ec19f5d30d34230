/* release.c: tasks ended by giving back the memory of their stacks. */
#ifndef TL_RELEASE_H
#define TL_RELEASE_H

#include "../internal.h"

enum { TL__RELEASE_FREE, TL__RELEASE_UNMAP };
/* [a, b) is being given back (a heap block freed: TL__RELEASE_FREE; pages
 * unmapped: TL__RELEASE_UNMAP): the tasks whose stacks it holds end, now,
 * on this thread. Returns how many. */
uint64_t tl__release_range(uintptr_t a, uintptr_t b, int how);

/* At exit: the suspended tasks whose stacks a newer task took, and that
 * never ran since, are released (release.c says which). Returns how many. */
uint64_t tl__release_displaced(void);

#endif /* TL_RELEASE_H */
