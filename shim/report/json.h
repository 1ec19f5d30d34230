/* report/json.c: a report as JSON (private to shim/report/). */
#ifndef TL_REPORT_JSON_H
#define TL_REPORT_JSON_H

#include "../internal.h"
#include "../writer.h"
#include "text.h"

void tl__report_print_json(struct tl__job *j, const struct totals *t);

#endif /* TL_REPORT_JSON_H */
