/* The scan's roots: the process's writable mappings, less the holes that
 * are not the program's, and the values the library keeps for it. */
#include "../internal.h"
#include "roots.h"
#include "scan.h"
#include "../heapblocks.h"
#include "../backtrace.h"
#include "../thread.h"

#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------------------
 * The roots
 * ------------------------------------------------------------------------ */

void tl__scan_hole(uintptr_t lo, uintptr_t hi)
{
  if (lo >= hi)
    return;
  if (tl__scan.nholes == tl__scan.cap_holes) {
    tl__scan_undecided("too many holes");
    return;
  }
  tl__scan.holes[tl__scan.nholes++] = (struct range){lo, hi};
}

void tl__scan_own_pages(uintptr_t lo, uintptr_t hi, void *arg)
{
  (void)arg;
  tl__scan_hole(lo, hi);
}

/* The library's own data: its writable segments, and those of libunwind,
 * whose caches keep what the last report's unwinding of suspended tasks
 * saw (addresses in their stacks) and nothing of the program's. */
int tl__scan_own_segments(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  uintptr_t self = (uintptr_t)arg;
  const char *base = info->dlpi_name != NULL ? strrchr(info->dlpi_name, '/') : NULL;
  base = base != NULL ? base + 1 : info->dlpi_name;
  int mine = base != NULL && strncmp(base, "libunwind.so", 12) == 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (ph->p_type == PT_LOAD && self >= a && self < a + ph->p_memsz)
      mine = 1;
  }
  if (!mine)
    return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W))
      continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    tl__scan_hole(a & ~(uintptr_t)4095, (a + ph->p_memsz + 4095) & ~(uintptr_t)4095);
  }
  return 0;
}

static int range_less(const struct range *a, const struct range *b)
{
  return a->lo < b->lo || (a->lo == b->lo && a->hi < b->hi);
}

DEFINE_SORT(sort_ranges, struct range, range_less)

void tl__scan_merge_holes(struct range *tmp)
{
  if (tmp == NULL) {
    tl__scan_undecided("out of memory");
    tl__scan.nholes = 0;
    return;
  }
  struct range *s = sort_ranges(tl__scan.holes, tmp, tl__scan.nholes);
  size_t n = 0;
  for (size_t i = 0; i < tl__scan.nholes; i++) {
    if (n > 0 && s[i].lo <= tl__scan.holes[n - 1].hi) {
      if (s[i].hi > tl__scan.holes[n - 1].hi)
        tl__scan.holes[n - 1].hi = s[i].hi;
    } else {
      tl__scan.holes[n++] = s[i];
    }
  }
  tl__scan.nholes = n;
}

/* /proc/self/maps, whole, into memory of the scan. */
int tl__scan_read_maps(void)
{
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t cap = 1u << 20, len = 0;
  char *buf = tl__scan_scratch(cap);
  for (; buf != NULL;) {
    if (len + 4096 > cap) {
      /* Larger: the old copy stays until the end of the report. */
      char *bigger = tl__scan_scratch(cap * 4);
      if (bigger == NULL) {
        buf = NULL;
        break;
      }
      memcpy(bigger, buf, len);
      buf = bigger;
      cap *= 4;
    }
    ssize_t n = syscall(SYS_read, fd, buf + len, cap - len - 1);
    if (n < 0) {
      buf = NULL;
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  syscall(SYS_close, fd);
  if (buf == NULL)
    return -1;
  buf[len] = '\0';
  tl__scan.maps = buf;
  tl__scan.maps_len = len;
  return 0;
}

/* The address of the first heap block at or above p, or UINTPTR_MAX. */
static uintptr_t first_block_at(uintptr_t p)
{
  size_t l = 0, h = tl__scan.heap.n;
  while (l < h) {
    size_t mid = l + (h - l) / 2;
    if (tl__scan.heap.blocks[mid].addr < p)
      l = mid + 1;
    else
      h = mid;
  }
  return l < tl__scan.heap.n ? tl__scan.heap.blocks[l].addr : UINTPTR_MAX;
}

/* Whether /proc/self/maps names the heap. */
static int named_heap(void)
{
  return strstr(tl__scan.maps, " [heap]\n") != NULL;
}

/* Whether [lo, hi) holds a heap block. */
static int holds_block(uintptr_t lo, uintptr_t hi)
{
  size_t l = 0, h = tl__scan.heap.n;
  while (l < h) {
    size_t mid = l + (h - l) / 2;
    if (tl__scan.heap.blocks[mid].addr < lo)
      l = mid + 1;
    else
      h = mid;
  }
  return l < tl__scan.heap.n && tl__scan.heap.blocks[l].addr < hi;
}

/* Whether [lo, hi) is one of glibc's other arenas (malloc/arena.c): a
 * heap of HEAP_MAX_SIZE bytes, aligned to that size, whose readable part
 * begins with its heap_info: the arena it belongs to (right after the
 * heap_info in an arena's first heap), the previous heap (aligned too), the
 * readable size, the size made readable so far. A mapping of the program's
 * that happens to share its bounds is still a root: these must all agree,
 * and failing to see an arena only makes the scan read its free chunks. */
static int glibc_arena(uintptr_t lo, uintptr_t hi)
{
  struct {
    uintptr_t ar_ptr, prev;
    size_t size, mprotect_size;
  } h;
  if ((lo & (ARENA_SIZE - 1)) != 0 || hi - lo > ARENA_SIZE || tl__safe_read(&h, (const void *)lo, sizeof h) != 0)
    return 0;
  if (h.size != hi - lo || h.mprotect_size < h.size || h.mprotect_size > ARENA_SIZE)
    return 0;
  if (h.prev == 0)
    return h.ar_ptr > lo && h.ar_ptr < lo + 128;
  return (h.prev & (ARENA_SIZE - 1)) == 0 && h.ar_ptr - lo >= ARENA_SIZE;
}

/* Each writable mapping, less what is not the program's. malloc's arenas
 * are not roots: a free chunk there holds what its block held, and a
 * context freed with its block must not keep its task reachable. They are
 * glibc's main heap ([heap], when it holds a block) and its other arenas
 * (glibc_arena); a block the program holds there is read when something
 * reached points into it. */
void tl__scan_push_mappings(struct shadow sh)
{
  uintptr_t brk = named_heap() ? 0 : (uintptr_t)sbrk(0);
  for (const char *p = tl__scan.maps; *p;) {
    const char *line = p;
    const char *nl = strchr(p, '\n');
    p = nl != NULL ? nl + 1 : p + strlen(p);
    uintptr_t lo = tl__maps_hex(&line);
    if (*line != '-')
      continue;
    line++;
    uintptr_t hi = tl__maps_hex(&line);
    if (*line != ' ' || line[1] != 'r' || line[2] != 'w')
      continue;
    const char *path = line;
    for (int fields = 0; fields < 4 && path < p; fields++) {
      while (path < p && *path == ' ')
        path++;
      while (path < p && *path != ' ' && *path != '\n')
        path++;
    }
    while (path < p && *path == ' ')
      path++;
    int anon = path >= p || *path == '\n';
    if (!anon && strncmp(path, "[heap]", 6) == 0 && holds_block(lo, hi))
      continue;
    /* Where the kernel does not name the heap (qemu-user), it is the part
     * of the mapping that ends at the program break from the page of its
     * lowest block on; what lies below (the program's zero-initialised
     * data, with which it may share the mapping) stays a root. */
    if (anon && brk > lo && brk <= hi && holds_block(lo, brk)) {
      uintptr_t first = first_block_at(lo) & ~(uintptr_t)4095;
      if (first > lo)
        tl__scan_push(W_ROOT, 0, lo, first);
      lo = brk;
      if (lo >= hi)
        continue;
    }
    /* Device memory (a GPU's, a frame buffer) is not the program's data,
     * and reading it may have effects. */
    if (!anon && strncmp(path, "/dev/", 5) == 0 && strncmp(path, "/dev/zero", 9) != 0 &&
        strncmp(path, "/dev/shm/", 9) != 0)
      continue;
    if (sh.hi > sh.lo && lo >= sh.lo && hi <= sh.hi)
      continue;
    if (anon && glibc_arena(lo, hi))
      continue;
    if (hi - lo > HUGE_MAPPING) {
      tl__scan_undecided("a mapping is too large to read");
      continue;
    }
    tl__scan_push(W_ROOT, 0, lo, hi);
  }
}

/* The mapping that holds p. */
struct range tl__scan_mapping_of(uintptr_t p)
{
  for (const char *s = tl__scan.maps; *s;) {
    const char *line = s;
    const char *nl = strchr(s, '\n');
    s = nl != NULL ? nl + 1 : s + strlen(s);
    uintptr_t lo = tl__maps_hex(&line);
    if (*line != '-')
      continue;
    line++;
    uintptr_t hi = tl__maps_hex(&line);
    if (p >= lo && p < hi)
      return (struct range){lo, hi};
  }
  return (struct range){p, p};
}

/* Roots the library keeps: thread-scope values and deferred calls, custom
 * owners and their values, keys' attributes. */
void tl__scan_library_roots(void)
{
  for (const struct tl__thread *th = tl__thread_list(); th != NULL; th = th->next) {
    tl__scan_vtab(atomic_load_explicit(&th->tvt, memory_order_acquire));
    tl__scan_defers(th->defers);
  }
  /* Custom owners: a chained hash table (scope.c publishes its layout). */
  const struct tl__debug_owners *o = &tl__debug_owners;
  void *const *buckets = NULL;
  uint32_t nb = 0;
  if (tl__safe_read(&buckets, o->buckets, sizeof buckets) == 0 && tl__safe_read(&nb, o->nbuckets, sizeof nb) == 0 &&
      buckets != NULL && nb < (1u << 26)) {
    for (uint32_t i = 0; i < nb; i++) {
      const char *rec = NULL;
      if (tl__safe_read(&rec, &buckets[i], sizeof rec) != 0)
        break;
      for (int guard = 0; rec != NULL && guard < (1 << 20); guard++) {
        uintptr_t f[2];
        const struct tl__vtab *vt = NULL;
        const char *next = NULL;
        if (tl__safe_read(&f[0], rec + o->disc, sizeof f[0]) != 0 || tl__safe_read(&f[1], rec + o->owner, sizeof f[1]) != 0 ||
            tl__safe_read(&vt, rec + o->vt, sizeof vt) != 0 || tl__safe_read(&next, rec + o->next, sizeof next) != 0)
          break;
        tl__scan_check_word(f[0]);
        tl__scan_check_word(f[1]);
        tl__scan_vtab(vt);
        rec = next;
      }
    }
  }
  /* Keys' attributes: init_arg and disc are the program's. */
  const struct tl__debug_keys *k = &tl__debug_keys;
  uint32_t nslots = 0;
  if (tl__safe_read(&nslots, k->nslots, sizeof nslots) == 0) {
    uint32_t per = 1u << k->chunk_bits;
    for (uint32_t c = 0; c * per < nslots; c++) {
      const char *chunk = NULL;
      if (tl__safe_read(&chunk, (const char *const *)k->chunks + c, sizeof chunk) != 0 || chunk == NULL)
        break;
      for (uint32_t s = 0; s < per && c * per + s < nslots; s++) {
        const char *a = chunk + (size_t)s * k->rec_size + k->rec_attr;
        tl__scan_words((uintptr_t)a, (uintptr_t)(a + sizeof(tl_key_attr_t)));
      }
    }
  }
}
