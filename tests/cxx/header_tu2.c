/* The matrix's second translation unit, compiled in the other language
 * than header.c (TL_MATRIX_TU2): both must share the keys and values, and
 * with TL_DYNAMIC the one fallback. */
#include "tasklocal.h"

#ifdef __cplusplus
#define C_LINKAGE extern "C"
#else
#define C_LINKAGE
#endif

C_LINKAGE int tu2_reads(tl_key_t key, const void *want);
C_LINKAGE int tu2_binds(tl_key_t key, const void *value);

/* 1 when key's value here is want. */
int tu2_reads(tl_key_t key, const void *want)
{
  return tl_get(key) == want;
}

/* 1 when value can be bound to key for a TL_WITH block here, and is seen
 * inside it. */
int tu2_binds(tl_key_t key, const void *value)
{
  int seen = 0;
  TL_WITH(key, value)
  {
    seen = tl_get(key) == value;
  }
  return seen;
}
