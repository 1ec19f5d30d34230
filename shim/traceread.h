/* traceread.c: the trace's rings read back for the file: whole events,
 * and the tables of the tasks they name. */
#ifndef TL_TRACEREAD_H
#define TL_TRACEREAD_H

#include "internal.h"
#include "trace.h"

#define TL__TSYM_LEN 128

struct tl__tinfo {
  uint64_t id, parent;
  uintptr_t entry;
  uint32_t name;                           /* 1 + its index in names, or 0 */
  uint32_t flags;
};

#define TL__TI_ROOT 0x1u
#define TL__TI_MADE 0x2u                   /* its make event was kept */
#define TL__TI_STARTED 0x4u                /* its flow's end was written */

struct tl__tsym {
  uintptr_t entry;                         /* 0: empty */
  char text[TL__TSYM_LEN];                 /* tl__bt_symbol's "fn+0x0 (module)" */
  char shorter[TL__TSYM_LEN];              /* "fn" when it names the function's start */
};

/* The writer's tables, in memory mapped for one write. */
struct tl__ttab {
  struct tl__tinfo *t;
  uint64_t tmask;
  char (*names)[TL__TRACE_NAME_MAX + 1];
  uint32_t nnames, capnames;
  struct tl__tsym *syms;
  void *map;
  size_t bytes;
};

int tl__rings_take(void);                  /* the rings and their heads, once: how many */
struct tl__ring *tl__rings_taken(void);    /* the newest ring taken */
int tl__rings_any(void);                   /* anything but thread starts and exits recorded */
int tl__ring_read(const struct tl__ring *r, uint64_t i, struct tl__tev *e); /* 0: not whole, or gone */
uint64_t tl__ring_first(const struct tl__ring *r); /* the oldest event the ring can hold */
void tl__ttab_make(struct tl__ttab *tb);
void tl__ttab_free(struct tl__ttab *tb);
struct tl__tinfo *tl__ttab_task(struct tl__ttab *tb, uint64_t id, int add);
const struct tl__tsym *tl__ttab_sym(struct tl__ttab *tb, uintptr_t entry);

#endif /* TL_TRACEREAD_H */
