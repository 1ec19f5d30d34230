/* tlsym.c: a __thread variable found by name in the loaded objects. */
#ifndef TL_TLSYM_H
#define TL_TLSYM_H

#include "internal.h"

enum tl__tlsym_result {
  TL__TLSYM_NONE,                          /* no object holds the name */
  TL__TLSYM_NOT_TLS,                       /* the name is there, but not a __thread variable */
  TL__TLSYM_FOUND
};

struct tl__tlsym {
  uint64_t module;                         /* its object's TLS module id (dl_iterate_phdr) */
  uint64_t offset;                         /* where it lies in the module's TLS block */
  uint64_t size;                           /* its symbol's size */
  const unsigned char *image;              /* the module's initial TLS image (PT_TLS) */
  uint64_t image_size;                     /* of which this many bytes are initialized; zeros after */
};

/* Whether the object at path is the one pattern names: the same path, the
 * same file name, or a file name that begins with pattern and a dot. */
int tl__object_matches(const char *path, const char *pattern);
/* name in the dynamic symbol table or .symtab of the first loaded object
 * (object == NULL) or of the object matching object; never in ours. */
enum tl__tlsym_result tl__tlsym_find(const char *name, const char *object, struct tl__tlsym *out);
/* Its address in the calling thread's TLS, allocated there if need be. */
void *tl__tlsym_here(const struct tl__tlsym *s);

#endif /* TL_TLSYM_H */
