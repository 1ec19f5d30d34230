/* pkeys.c: the pthread keys made per task (TASKLOCAL_TASK_LOCAL=pthread-keys:...). */
#ifndef TL_PKEYS_H
#define TL_PKEYS_H

#include "internal.h"

#include <pthread.h>

#define TL__PKEYS_MAX 128                  /* per-task keys a process can have made, over its life */

extern int tl__pkeys_on;                   /* a pthread-keys item was named */
extern int tl__pkeys_watch;                /* keycalls.c tells of keys: until the options are read, or while on */
void tl__pkeys_want(const char *object);   /* keys made by code in object ("all": any but libc's and ours) */
void tl__pkeys_note(pthread_key_t key, void (*destroy)(void *), const void *caller); /* a key was made */
void tl__pkeys_forget(pthread_key_t key);  /* a key was deleted */
void tl__pkeys_ready(void);                /* the option was read: the keys made before are judged */
uint32_t tl__pkeys_count(void);            /* per-task keys noted so far: their positions are 0 to this */
void tl__pkeys_save(void **vals, uint32_t n);                 /* the thread's values of the first n */
void tl__pkeys_load(void *const *vals, uint32_t nvals, uint32_t n); /* and back; NULL past nvals */
uint32_t tl__pkeys_destroy(uint32_t n);    /* one round of destructors over the thread's values */
void tl__pkeys_atfork_child(void);

#endif /* TL_PKEYS_H */
