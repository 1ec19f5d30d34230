/* backtrace.c: creation backtraces, unwinding, symbols. */
#ifndef TL_BACKTRACE_H
#define TL_BACKTRACE_H

#include "internal.h"

#define TL__BT_MAX 16                      /* frames kept in a backtrace */
struct tl__setbt {                         /* where a task last set a key */
  tl_key_t key;
  uint32_t n;
  uintptr_t pc[TL__BT_MAX];
};
void tl__bt_capture_task(struct tl__task *t); /* at makecontext, when tl__opt.backtrace */
int tl__bt_here(uintptr_t *pc, int max);   /* the calling stack, without the library's frames */
void tl__bt_note_set(struct tl__task *t, tl_key_t key); /* tl_set of a key without destructor */
const struct tl__setbt *tl__bt_set_of(const struct tl__task *t, tl_key_t key); /* or NULL */
int tl__bt_unwind(ucontext_t *uc, uintptr_t lo, uintptr_t hi, uintptr_t *pc, int max,
                  const char **why);       /* a copy of a saved context; -1 and *why when it cannot */
void tl__bt_symbol(uintptr_t pc, int ret, char *buf, size_t size); /* "fn+0x1c (module)" */
int tl__bt_name(uintptr_t pc, int ret, int symtab, char *name, size_t nsize, unsigned long *off, char *module,
                size_t msize, unsigned long *moff); /* the nearest symbol: 1 name, 0 module only, -1 nothing */
int tl__safe_read(void *dst, const void *src, size_t n); /* 0, or EFAULT instead of a fault */
struct tl__readv {                         /* one read of tl__safe_read_many */
  void *dst;
  const void *src;
  size_t n;
  int ok;                                  /* set: it was read */
};
void tl__safe_read_many(struct tl__readv *v, size_t n); /* many reads, a few system calls */
void tl__safe_str(char *dst, size_t size, const char *src); /* a string, read the same way */
void tl__bt_atfork_child(void);            /* in a forked child: its locks are free */
void tl__bt_setup(const void *tramp_lo, const void *tramp_hi); /* at load: the trampoline's code */

#endif /* TL_BACKTRACE_H */
