/* The trace file's text, without stdio or malloc: pieces formatted by
 * tl__format (message.c) into a buffer on the writer's stack and written
 * with write(2), and JSON strings, escaped, that stay valid whatever bytes
 * a task's name holds.
 */
#include "internal.h"
#include "traceout.h"
#include "message.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void tl__out_flush(struct tl__out *o)
{
  for (size_t off = 0; off < o->len && o->err == 0;) {
    ssize_t w = write(o->fd, o->buf + off, o->len - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      o->err = w < 0 ? errno : EIO;
    else
      off += (size_t)w;
  }
  o->len = 0;
}

/* Appends one formatted piece (at most 1 KiB). */
void tl__outf(struct tl__out *o, const char *f, ...)
{
  if (sizeof o->buf - o->len < 1024)
    tl__out_flush(o);
  va_list ap;
  va_start(ap, f);
  int n = tl__format(o->buf + o->len, sizeof o->buf - o->len, f, ap);
  va_end(ap);
  size_t room = sizeof o->buf - o->len - 1;
  o->len += (size_t)n < room ? (size_t)n : room;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s)
{
  unsigned c = s[0], lo = 0x80, hi = 0xbf;
  size_t n;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    lo = c == 0xe0 ? 0xa0 : 0x80;
    hi = c == 0xed ? 0x9f : 0xbf;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    lo = c == 0xf0 ? 0x90 : 0x80;
    hi = c == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return n;
}

/* A JSON string, quoted and escaped: at most 256 bytes of s, each of which
 * may take 6 in the file, so the room is checked as it goes. Bytes that are
 * not UTF-8 (a task name is whatever the program gave) become '?', which
 * keeps the file valid JSON. */
void tl__out_str(struct tl__out *o, const char *s)
{
  if (sizeof o->buf - o->len < 8)
    tl__out_flush(o);
  o->buf[o->len++] = '"';
  for (size_t i = 0; s[i] != '\0' && i < 256; i++) {
    unsigned char c = (unsigned char)s[i];
    if (sizeof o->buf - o->len < 8)
      tl__out_flush(o);
    if (c == '"' || c == '\\') {
      o->buf[o->len++] = '\\';
      o->buf[o->len++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      memcpy(o->buf + o->len, "\\u00", 4);
      o->buf[o->len + 4] = hex[c >> 4];
      o->buf[o->len + 5] = hex[c & 0xf];
      o->len += 6;
    } else if (c < 0x80) {
      o->buf[o->len++] = (char)c;
    } else {
      size_t n = utf8_len((const unsigned char *)s + i);
      if (n == 0 || i + n > 256) {
        o->buf[o->len++] = '?';
      } else {
        memcpy(o->buf + o->len, s + i, n);
        o->len += n;
        i += n - 1;
      }
    }
  }
  o->buf[o->len++] = '"';
}
