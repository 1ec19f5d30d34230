/* real.c: the real ucontext functions behind ours. */
#ifndef TL_REAL_H
#define TL_REAL_H

#include "internal.h"

extern int (*tl__real_swapcontext)(ucontext_t *, const ucontext_t *);
extern int (*tl__real_setcontext)(const ucontext_t *);
extern void (*tl__real_makecontext)(ucontext_t *, void (*)(void), int, ...);
/* The jumps: longjmp, _longjmp, siglongjmp, __longjmp_chk, in that order. */
extern void (*tl__real_jump[4])(struct __jmp_buf_tag *, int);
void tl__real_exit(int status) __attribute__((noreturn)); /* libc's _exit */
extern int tl__interposing;                /* our wrappers are the ones the process calls */
void tl__real_lookup(void);                /* at load */

#endif /* TL_REAL_H */
