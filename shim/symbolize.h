/* symbolize.c: names, source files and lines of addresses, for reports. */
#ifndef TL_SYMBOLIZE_H
#define TL_SYMBOLIZE_H

#include "internal.h"

enum tl__sym_source {
  TL__SYM_NONE,                            /* nothing known: no module holds the address */
  TL__SYM_DWARF,                           /* function, file and line from DWARF */
  TL__SYM_SYMTAB,                          /* function from an ELF symbol table, no line */
  TL__SYM_UNWIND,                          /* the fallback: libunwind's or dladdr's nearest symbol */
};

#define TL__SYM_INLINE_MAX 8               /* frames one address gives, inlined ones included */

struct tl__sym {                           /* one frame of an address: inlined, or the real one */
  uintptr_t pc;
  enum tl__sym_source source;
  int inlined;                             /* inlined into the frame that follows */
  int line;                                /* 0: no line */
  unsigned long offset;                    /* from the function's start, when there is no line */
  unsigned long module_offset;             /* from the module's start */
  char func[256];                          /* "" when unknown */
  char file[256];                          /* "" when unknown */
  char module[64];                         /* base name, "" when unknown */
};

void tl__sym_begin(int full);              /* per report: full uses libdw (it allocates) */
void tl__sym_end(void);
int tl__sym_lookup(uintptr_t pc, int ret, struct tl__sym *out, int max); /* frames, innermost first */
void tl__sym_text(const struct tl__sym *f, char *buf, size_t size); /* "fn file.c:40 (module)" */
const char *tl__sym_source_name(enum tl__sym_source s); /* "dwarf", "symtab", "libunwind", "none" */

#endif /* TL_SYMBOLIZE_H */
