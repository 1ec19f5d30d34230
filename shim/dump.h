/* dump.c: tl_dump and the dump signal. */
#ifndef TL_DUMP_H
#define TL_DUMP_H

#include "internal.h"

int tl__dump(int fd);
void tl__dump_setup(void);                 /* at load: the dump signal, when asked for */
void tl__dump_atfork(int phase);

#endif /* TL_DUMP_H */
