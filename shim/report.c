/* Reports. Placeholder until the leak-report work lands. */
#include "internal.h"

void tl__report_dropped(struct tl__task *t, tl_key_t key, void *value)
{
  (void)t;
  (void)key;
  (void)value;
}

void tl__report_exit(void)
{
}
