/* The one output path of the library.
 *
 * Reports may be written at exit, after a crash of the host's own state, or
 * from a signal, so nothing here uses stdio or malloc: tl__format is a small
 * printf of its own (no locale, no allocation, async-signal-safe) and every
 * line goes out in one write(2), prefixed "tasklocal: ". */
#include "internal.h"
#include "message.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int message_fd = 2;

void tl__message_fd(int fd)
{
  message_fd = fd;
}

struct out {
  char *buf;
  size_t size, len;                        /* len counts what would have been written */
};

static void put(struct out *o, char c)
{
  if (o->len + 1 < o->size)
    o->buf[o->len] = c;
  o->len++;
}

static void put_str(struct out *o, const char *s, int width, int left)
{
  size_t n = strlen(s);
  for (int pad = width - (int)n; !left && pad > 0; pad--)
    put(o, ' ');
  for (size_t i = 0; i < n; i++)
    put(o, s[i]);
  for (int pad = width - (int)n; left && pad > 0; pad--)
    put(o, ' ');
}

static void put_num(struct out *o, unsigned long long v, int neg, unsigned base, int width, char padc)
{
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v != 0);
  if (neg)
    tmp[n++] = '-';
  for (int pad = width - n; pad > 0; pad--)
    put(o, padc);
  while (n > 0)
    put(o, tmp[--n]);
}

/* Supports %s %c %d %i %u %x %p %% with the length modifiers l, ll, z and
 * a field width (with 0 and - flags). Returns the length it would write. */
int tl__format(char *buf, size_t size, const char *fmt, va_list ap)
{
  struct out o = {buf, size, 0};
  for (const char *p = fmt; *p; p++) {
    if (*p != '%') {
      put(&o, *p);
      continue;
    }
    p++;
    int left = 0, width = 0;
    char padc = ' ';
    for (; *p == '-' || *p == '0'; p++) {
      if (*p == '-')
        left = 1;
      else
        padc = '0';
    }
    for (; *p >= '0' && *p <= '9'; p++)
      width = width * 10 + (*p - '0');
    int lng = 0;
    for (; *p == 'l' || *p == 'z'; p++)
      lng++;
    switch (*p) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      put_str(&o, s ? s : "(null)", width, left);
      break;
    }
    case 'c':
      put(&o, (char)va_arg(ap, int));
      break;
    case 'd':
    case 'i': {
      long long v = lng ? va_arg(ap, long long) : va_arg(ap, int);
      put_num(&o, v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v, v < 0, 10, width, padc);
      break;
    }
    case 'u':
    case 'x': {
      unsigned long long v = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
      put_num(&o, v, 0, *p == 'u' ? 10 : 16, width, padc);
      break;
    }
    case 'p':
      put(&o, '0');
      put(&o, 'x');
      put_num(&o, (uintptr_t)va_arg(ap, void *), 0, 16, width, padc);
      break;
    case '%':
      put(&o, '%');
      break;
    case '\0':
      p--;
      break;
    default:
      put(&o, '%');
      put(&o, *p);
      break;
    }
  }
  if (size > 0)
    buf[o.len < size ? o.len : size - 1] = '\0';
  return (int)o.len;
}

int tl__formatf(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = tl__format(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

/* "tasklocal: ", the text, suffix and a newline, in one write(2) to fd;
 * a long text is cut so that the suffix still fits. errno is kept. */
int tl__vline(int fd, const char *suffix, const char *fmt, va_list ap)
{
  static const char prefix[] = "tasklocal: ";
  char buf[1024];
  size_t len = sizeof prefix - 1, slen = strlen(suffix);
  if (slen > 64)
    slen = 64;
  size_t room = sizeof buf - len - slen - 1;
  memcpy(buf, prefix, len);
  int n = tl__format(buf + len, room, fmt, ap);
  len += (size_t)n < room ? (size_t)n : room - 1;
  memcpy(buf + len, suffix, slen);
  len += slen;
  buf[len++] = '\n';
  int saved = errno, err = 0;
  for (size_t off = 0; off < len;) {
    ssize_t w = write(fd, buf + off, len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      break;
    }
    off += (size_t)w;
  }
  errno = saved;
  return err;
}

void tl__message(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  tl__vline(message_fd, "", fmt, ap);
  va_end(ap);
}
