/* drops.c: values dropped for want of a destructor. */
#ifndef TL_DROPS_H
#define TL_DROPS_H

#include "internal.h"
#include "backtrace.h"

#define TL__NAME_LEN 64                    /* names copied into reports */
#define TL__DROPS_KEPT 64                  /* dropped values recorded in full */
enum { TL__DROP_FINISHED, TL__DROP_ABANDONED, TL__DROP_THREAD_EXIT, TL__DROP_RELEASED };
struct tl__drop {                          /* ready is set last: a report skips a record being filled */
  _Atomic int ready;
  uint64_t key, task;
  void *value;
  void (*entry)(void);
  int how;                                 /* TL__DROP_* */
  char key_name[TL__NAME_LEN];
  char task_name[TL__NAME_LEN];
  uint32_t bt_n;
  uintptr_t bt[TL__BT_MAX];
  uint32_t set_n;                          /* where it was set, with backtraces on */
  uintptr_t set[TL__BT_MAX];
};
void tl__drop_note(struct tl__task *t, tl_key_t key, void *value); /* bound, no destructor, at task end */
uint64_t tl__drops_count(void);
const struct tl__drop *tl__drop_get(uint64_t i); /* NULL beyond those kept, or while being filled */

#endif /* TL_DROPS_H */
