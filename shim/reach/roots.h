/* reach/roots.c: the scan's roots and holes (private to shim/reach/). */
#ifndef TL_REACH_ROOTS_H
#define TL_REACH_ROOTS_H

#include "../internal.h"
#include "scan.h"

#include <link.h>

struct shadow {
  uintptr_t lo, hi;                        /* AddressSanitizer's shadow memory, or 0, 0 */
};

void tl__scan_hole(uintptr_t lo, uintptr_t hi);           /* not a root */
void tl__scan_own_pages(uintptr_t lo, uintptr_t hi, void *arg); /* a hole, for the page walks */
int tl__scan_own_segments(struct dl_phdr_info *info, size_t size, void *arg);
void tl__scan_merge_holes(struct range *tmp);            /* sorted and merged, through tmp */
int tl__scan_read_maps(void);                             /* /proc/self/maps, into tl__scan.maps */
void tl__scan_push_mappings(struct shadow sh);            /* each writable mapping, as roots */
struct range tl__scan_mapping_of(uintptr_t p);            /* the mapping holding p */
void tl__scan_library_roots(void);                        /* the values the library keeps for the program */

#endif /* TL_REACH_ROOTS_H */
