/* message.c: the one output path (tl__message, tl__vline). */
#ifndef TL_MESSAGE_H
#define TL_MESSAGE_H

#include "internal.h"

void tl__message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tl__message_fd(int fd);               /* where tl__message lines go (TASKLOCAL_LOG) */
int tl__format(char *buf, size_t size, const char *fmt, va_list ap);
int tl__formatf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tl__vline(int fd, const char *suffix, const char *fmt, va_list ap); /* one line to fd: 0 or errno */

#endif /* TL_MESSAGE_H */
