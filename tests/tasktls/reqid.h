/* libreqid.c's functions, for the programs of this directory. */
#ifndef REQID_H
#define REQID_H
void reqid_set(long id);
long reqid_get(void);
const char *reqid_message(void);
long reqid_ctx(void);
int reqid_has_ctx(void);
int reqid_ctx_made(void);
int reqid_ctx_destroyed(void);
#endif
