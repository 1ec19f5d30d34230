/* The table of functions that header-only users find at run time
 * (TL_DYNAMIC, SPEC 3.10): one versioned symbol instead of one dlsym per
 * function, checked for version and size by the header. */
#include "internal.h"

const struct tl_api tl_api_v1 = {
    .size = sizeof(struct tl_api),
    .version = TL_API_VERSION,
    .key_create = tl_key_create,
    .key_create_attr = tl_key_create_attr,
    .key_find = tl_key_find,
    .key_delete = tl_key_delete,
    .get = tl_get,
    .lookup = tl_lookup,
    .set = tl_set,
    .unset = tl_unset,
    .bind = tl_bind,
    .unbind = tl_unbind,
    .loop_close = tl_loop_close,
    .disc_end = tl_disc_end,
    .singleton = tl_singleton,
    .defer = tl_defer,
    .current = tl_current,
    .task_id = tl_task_id,
    .task_set_name = tl_task_set_name,
    .task_name = tl_task_name,
    .foreach = tl_foreach,
    .dump = tl_dump,
    .available = tl_available,
    .trace_flush = tl_trace_flush,
};
