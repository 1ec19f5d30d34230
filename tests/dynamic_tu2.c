/* A second translation unit of check_dynamic: with TL_DYNAMIC, both units
 * must share one fallback (keys and values), and one detection result. */
#define TL_DYNAMIC
#include <tasklocal.h>

int tu2_set(tl_key_t key, void *value);
void *tu2_get(tl_key_t key);
int tu2_available(void);

int tu2_set(tl_key_t key, void *value)
{
  return tl_set(key, value);
}

void *tu2_get(tl_key_t key)
{
  return tl_get(key);
}

int tu2_available(void)
{
  return tl_available();
}
