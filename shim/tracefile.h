/* tracefile.c: the trace file, and when it is written. */
#ifndef TL_TRACEFILE_H
#define TL_TRACEFILE_H

#include "internal.h"

void tl__trace_exit(void);                 /* process exit or _exit: the file, once */
void tl__trace_dump(void);                 /* the dump signal (its thread, not the handler) */
int tl__trace_flush(void);                 /* tl_trace_flush (api.c) */
void tl__trace_file_atfork_child(void);

#endif /* TL_TRACEFILE_H */
