/* report/scratch.c: a report's records, backtrace depot and groups, in
 * one mapping (private to report.c and the files of shim/report/). */
#ifndef TL_REPORT_SCRATCH_H
#define TL_REPORT_SCRATCH_H

#include "../internal.h"

#define DETAIL_LOCALS 16                   /* locals listed per task */
#define IDS_SHOWN 8                        /* ids listed per group */
#define MORE_TASKS 1024                    /* room for tasks made between counting and copying */
#define DEPOT_MAX (1u << 17)               /* unique backtraces kept per report */
#define GROUPS_MAX (1u << 16)              /* groups kept per report */
#define POOL_PER_TASK 128                  /* bytes of names and locals per task, on average */
#define POOL_MAX (256u << 20)

enum { NOT_KEPT = UINT32_MAX };            /* a backtrace the depot had no room for */

struct local {
  uint64_t key;
  void *value;
};

/* What a report shows of one task, copied under the registry's lock;
 * created, shared_with, suspended, unwound and why are filled after it. */
struct report_task {
  uint64_t id, parent;
  uint64_t running_on;                     /* the root of the thread it ran on when copied, or 0 */
  uint64_t shared_with;                    /* a task on the same stack, or 0 */
  uint64_t nloc;                           /* all its locals */
  const void *ctx;
  uintptr_t lo, hi;
  void (*entry)(void);
  uint32_t state, flags, mapped;
  uint32_t here;                           /* it runs the code that asked for the report */
  uint32_t kind;                           /* enum tl__kind (reach.c) */
  const uintptr_t *bt;                     /* its creation backtrace, read after the lock */
  uint32_t bt_n;
  uint32_t created;                        /* creation backtrace: depot number, 0 for none */
  uint32_t name;                           /* pool offset + 1, or 0 */
  uint32_t loc, nlisted;                   /* locals listed: pool offset, count */
  uint32_t suspended;                      /* the suspended stack: depot number, 0 for none */
  int32_t unwound;                         /* its frames; 0: a tail call; -1: why says */
  const char *why;
};

/* What makes tasks alike: two tasks whose keys are equal, byte for byte,
 * are described once. The key is zeroed before it is filled, padding
 * included, so that it compares with memcmp. */
struct like {
  uint32_t state;
  uint32_t kind;
  uint32_t created, suspended;
  int32_t unwound;
  uint32_t started, mapped, here, shared;
  uint64_t running_on;
  uintptr_t entry;
  const char *why;
};

struct group {
  struct like key;
  uint32_t hash, first;                    /* first: the record of its lowest id */
  uint32_t next;                           /* chain in the group table, 0 ends it */
  uint32_t same_parent, same_name;
  uint64_t count, nloc;
  uint64_t ids[IDS_SHOWN];
};

struct stack {
  uint32_t hash, n, off, next;             /* next: chain in the depot's table, 0 ends it */
};

/* A report's scratch memory. Guarded by the writer's lock (writer.c): one
 * report at a time. */
struct tl__report_scratch {
  void *map;
  size_t map_size;
  struct report_task *recs;
  uint32_t nrecs, caprecs;                 /* tasks beyond caprecs are counted only */
  uint64_t kept;                           /* abandoned tasks seen */
  uint32_t *order;                         /* record numbers, sorted */
  char *pool;                              /* names and locals */
  size_t pool_used, pool_cap;
  struct stack *stacks;                    /* the depot; 0 is no backtrace */
  uint32_t nstacks, capstacks, *stack_head;
  uintptr_t *pcs;
  size_t npcs, cappcs;
  struct group *groups;                    /* 0 unused */
  uint32_t ngroups, capgroups, *group_head, *group_order; /* tasks of groups beyond capgroups: counted only */
};
extern struct tl__report_scratch tl__report_scratch;

int tl__report_scratch_map(uint64_t n);    /* the mapping, for n tasks */
void tl__report_scratch_unmap(void);
void *tl__report_pool_take(size_t n, uint32_t *off); /* n bytes of the pool, or NULL when it is full */
uint32_t tl__report_hash_words(const uintptr_t *w, size_t n, uint64_t seed);
uint32_t tl__report_intern(const uintptr_t *pc, uint32_t n); /* a backtrace's depot number */
void tl__report_sort_numbers(uint32_t *a, uint32_t n, int (*before)(uint32_t x, uint32_t y));

#endif /* TL_REPORT_SCRATCH_H */
