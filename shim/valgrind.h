/* valgrind.c: valgrind told of each task's stack. */
#ifndef TL_VALGRIND_H
#define TL_VALGRIND_H

#include "internal.h"

int tl__valgrind_on(void);                 /* valgrind runs the process */
void tl__valgrind_made(struct tl__task *t); /* registers its stack, under valgrind */
void tl__valgrind_gone(struct tl__task *t); /* deregisters it */
void tl__valgrind_quiet(int on);           /* memcheck's error reporting off (1) and on (0) */

#endif /* TL_VALGRIND_H */
