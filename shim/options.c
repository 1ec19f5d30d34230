/* Options (SPEC 4.1). Placeholder defaults until the leak-report work lands. */
#include "internal.h"

struct tl__options tl__opt = {.log_fd = 2};

void tl__options_read(void)
{
}
