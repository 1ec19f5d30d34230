/* The trace's rings read back when the file is written, under the
 * recording's lock (tl__trace_lock), so that no ring is recycled
 * meanwhile. The rings and their heads are taken once; an event is read
 * only when it is whole (its seq before and after the copy: trace.c
 * explains). The tables of the tasks the file names (their makers, entry
 * functions and names, which their records may not have outlived) are
 * filled from the rings, in memory mapped with mmap for the write and
 * unmapped after. Entry functions are named then, and only then, by
 * backtrace.c's tl__bt_symbol.
 */
#include "internal.h"
#include "heapreal.h"
#include "traceread.h"
#include "trace.h"
#include "backtrace.h"

#include <string.h>
#include <sys/mman.h>

#define SYM_CACHE 1024                     /* entry functions named per write, at most */

static struct {
  struct tl__ring *top;                    /* the newest ring when the writer took the heads */
} reading;

/* The rings and their heads, once: rings that threads starting now add
 * (at the front of the list) are not part of this file. */
int tl__rings_take(void)
{
  int n = 0;
  reading.top = tl__trace_rings();
  for (struct tl__ring *r = reading.top; r != NULL; r = r->next, n++) {
    r->snap = atomic_load_explicit(&r->head, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
  }
  return n;
}

struct tl__ring *tl__rings_taken(void)
{
  return reading.top;
}

/* Reads event i of r into *e when it is whole and still there. */
int tl__ring_read(const struct tl__ring *r, uint64_t i, struct tl__tev *e)
{
  const struct tl__tev *s = &r->ev[i & r->mask];
  uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
  if (seq != (uint32_t)i)
    return 0;
  e->ts = __atomic_load_n(&s->ts, __ATOMIC_RELAXED);
  e->a = __atomic_load_n(&s->a, __ATOMIC_RELAXED);
  e->b = __atomic_load_n(&s->b, __ATOMIC_RELAXED);
  e->type = __atomic_load_n(&s->type, __ATOMIC_RELAXED);
  e->aux = __atomic_load_n(&s->aux, __ATOMIC_RELAXED);
  atomic_thread_fence(memory_order_acquire);
  return atomic_load_explicit(&s->seq, memory_order_relaxed) == seq;
}

uint64_t tl__ring_first(const struct tl__ring *r)
{
  return r->snap > r->mask + 1 ? r->snap - (r->mask + 1) : 0;
}

struct tl__tinfo *tl__ttab_task(struct tl__ttab *tb, uint64_t id, int add)
{
  if (id == 0 || tb->t == NULL)
    return NULL;
  uint64_t i = (id * 0x9e3779b97f4a7c15ull) >> 20;
  for (uint64_t n = 0; n <= tb->tmask; n++, i++) {
    struct tl__tinfo *ti = &tb->t[i & tb->tmask];
    if (ti->id == id)
      return ti;
    if (ti->id == 0) {
      if (!add)
        return NULL;
      ti->id = id;
      return ti;
    }
  }
  return NULL;
}

/* Counts what the tables must hold, maps them, and fills them from every
 * ring's make, entry, name and thread events. */
void tl__ttab_make(struct tl__ttab *tb)
{
  memset(tb, 0, sizeof *tb);
  uint64_t ntasks = 16, nnames = 0;
  for (struct tl__ring *r = reading.top; r != NULL; r = r->next) {
    struct tl__tev e;
    for (uint64_t i = tl__ring_first(r); i < r->snap; i++) {
      if (!tl__ring_read(r, i, &e))
        continue;
      ntasks += e.type == TL__TEV_MAKE || e.type == TL__TEV_THREAD;
      nnames += e.type == TL__TEV_NAME && (e.aux & 0xf) == 0;
    }
  }
  uint64_t cap = 64;
  while (cap < 2 * ntasks)
    cap <<= 1;
  /* Each part starts on a 64-byte boundary: names are 65 bytes each. */
  size_t tbytes = cap * sizeof(struct tl__tinfo), nbytes = (nnames * sizeof *tb->names + 63) & ~(size_t)63;
  size_t sbytes = SYM_CACHE * sizeof(struct tl__tsym);
  size_t bytes = (tbytes + nbytes + sbytes + 4095) & ~(size_t)4095;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return;                                /* tasks are then named by their ids */
  tb->map = p;
  tb->bytes = bytes;
  tb->t = p;
  tb->tmask = cap - 1;
  tb->names = (void *)((char *)p + tbytes);
  tb->capnames = (uint32_t)nnames;
  tb->syms = (void *)((char *)p + tbytes + nbytes);

  for (struct tl__ring *r = reading.top; r != NULL; r = r->next) {
    struct tl__tev e;
    for (uint64_t i = tl__ring_first(r); i < r->snap; i++) {
      if (!tl__ring_read(r, i, &e))
        continue;
      struct tl__tinfo *ti;
      switch (e.type) {
      case TL__TEV_THREAD:
        if ((ti = tl__ttab_task(tb, e.a, 1)) != NULL)
          ti->flags |= TL__TI_ROOT;
        break;
      case TL__TEV_MAKE:
        if ((ti = tl__ttab_task(tb, e.a, 1)) != NULL) {
          ti->parent = e.b;
          ti->flags |= TL__TI_MADE;
        }
        break;
      case TL__TEV_ENTRY:
        if ((ti = tl__ttab_task(tb, e.a, 1)) != NULL)
          ti->entry = (uintptr_t)e.b;
        break;
      case TL__TEV_NAME: {
        unsigned part = e.aux & 0xf, len = e.aux >> 4;
        if ((ti = tl__ttab_task(tb, e.a, 1)) == NULL || part * 8 >= TL__TRACE_NAME_MAX)
          break;
        if (ti->name == 0) {
          if (tb->nnames == tb->capnames)
            break;
          ti->name = ++tb->nnames;
        }
        char *name = tb->names[ti->name - 1];
        if (part == 0) {
          memset(name, 0, TL__TRACE_NAME_MAX + 1);
          name[TL__TRACE_NAME_MAX] = (char)len;  /* the length, until the name is complete */
        }
        memcpy(name + part * 8, &e.b, 8);
        break;
      }
      default:
        break;
      }
    }
  }
  /* The length byte goes: the name is what its parts hold, NUL-ended. */
  for (uint32_t i = 0; i < tb->nnames; i++) {
    unsigned len = (unsigned char)tb->names[i][TL__TRACE_NAME_MAX];
    tb->names[i][len < TL__TRACE_NAME_MAX ? len : TL__TRACE_NAME_MAX] = '\0';
  }
}

void tl__ttab_free(struct tl__ttab *tb)
{
  if (tb->map != NULL)
    tl__unmap(tb->map, tb->bytes);
}

const struct tl__tsym *tl__ttab_sym(struct tl__ttab *tb, uintptr_t entry)
{
  if (tb->syms == NULL || entry == 0)
    return NULL;
  uint64_t i = ((uint64_t)entry * 0x9e3779b97f4a7c15ull) >> 40;
  for (int n = 0; n < SYM_CACHE; n++, i++) {
    struct tl__tsym *s = &tb->syms[i % SYM_CACHE];
    if (s->entry == entry)
      return s;
    if (s->entry != 0)
      continue;
    s->entry = entry;
    tl__bt_symbol(entry, 0, s->text, sizeof s->text);
    /* "fn+0x0 (module)" names the function itself: the slice says "fn". */
    char *plus = strstr(s->text, "+0x0 (");
    if (plus == NULL && strlen(s->text) > 4 && strcmp(s->text + strlen(s->text) - 4, "+0x0") == 0)
      plus = s->text + strlen(s->text) - 4;
    size_t n0 = plus != NULL ? (size_t)(plus - s->text) : strlen(s->text);
    memcpy(s->shorter, s->text, n0);
    s->shorter[n0] = '\0';
    return s;
  }
  return NULL;
}

/* Whether anything but thread starts and exits was recorded. */
int tl__rings_any(void)
{
  for (struct tl__ring *r = reading.top; r != NULL; r = r->next) {
    struct tl__tev e;
    for (uint64_t i = tl__ring_first(r); i < r->snap; i++)
      if (tl__ring_read(r, i, &e) && e.type != TL__TEV_THREAD && e.type != TL__TEV_EXIT)
        return 1;
  }
  return 0;
}
