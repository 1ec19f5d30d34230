/* tools.c: valgrind and the sanitizers' fiber annotations. */
#ifndef TL_TOOLS_H
#define TL_TOOLS_H

#include "internal.h"

void tl__tools_setup(void);                /* once, at load: which sanitizer is in the process */
extern int tl__fibers_on;                  /* a sanitizer wants fiber annotations */
void tl__tools_observe_tasks(void);        /* once, after tl__tools_setup: tasks made, started, ended */
void tl__fibers_switch(struct tl__thread *th, struct tl__task *from, struct tl__task *to);
void tl__fibers_jump(struct tl__thread *th, const struct __jmp_buf_tag *env); /* before a longjmp */
void tl__fibers_commit(void);
int tl__lsan_present(void);                /* LeakSanitizer takes suspended stacks as root regions */
void tl__lsan_forget(struct tl__task *t);  /* its stack is no root region any more */              /* from arch/<arch>.S: TSan's pending switch, at no C depth */

#endif /* TL_TOOLS_H */
