/* Backtraces. Placeholder until the leak-report work lands. */
#include "internal.h"

void tl__bt_capture_task(struct tl__task *t)
{
  (void)t;
}
