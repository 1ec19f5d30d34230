/* When leak reports are off, the program's calls of malloc and the other
 * allocation functions that only give memory go straight to the real ones,
 * not through our wrappers (heapwatch.c).
 *
 * The wrappers of those functions are there for the leak report's scan
 * alone, which needs every heap block (heapblocks.c); without it they only
 * pass the call on, at the cost of a second indirect jump on the hottest
 * call of many programs (doc/performance.md measures it). free, realloc,
 * munmap and mremap stay ours: they are how a task's stack is seen to be
 * released.
 *
 * So, once, as the library starts, the slots through which each loaded
 * object calls or takes the address of those functions (its GOT: the
 * JUMP_SLOT and GLOB_DAT relocations, and a plain 64-bit one without
 * addend) are rewritten to hold the real function, where they hold ours.
 * That is what the dynamic linker would have written had we not come first
 * for these names. A lazily bound slot that has not been used yet still
 * points into its object's own PLT: it is bound now when the dynamic
 * linker would bind it to ours. An object's read-only-after-relocation
 * part (PT_GNU_RELRO) is made writable once for its stores and read-only
 * again; each store is one aligned word, which a thread calling through the
 * slot at the same time reads either before or after.
 *
 * Not rebound: objects loaded later with dlopen (their calls still pass
 * through our wrappers, which forward), a function pointer that a program
 * copied before we started, and the calls of an object whose slot another
 * interposer holds (a sanitizer's runtime, an allocator preloaded before
 * us): those never reached us anyway.
 */
#include "internal.h"
#include "heapbind.h"
#include "heapreal.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__x86_64__)
#define R_SLOT R_X86_64_JUMP_SLOT
#define R_DATA R_X86_64_GLOB_DAT
#define R_WORD R_X86_64_64
#elif defined(__aarch64__)
#define R_SLOT R_AARCH64_JUMP_SLOT
#define R_DATA R_AARCH64_GLOB_DAT
#define R_WORD R_AARCH64_ABS64
#else
#error "heapbind.c: relocation types for this architecture"
#endif

enum { NAMES = 7, RANGES = 8 };

struct range {
  uintptr_t lo, hi;
};

static struct {
  const char *name[NAMES];
  uintptr_t real[NAMES];                   /* what the slot should hold */
  int global_ours[NAMES];                  /* the dynamic linker binds the name to us */
  uintptr_t self_base;
  struct range self[RANGES];               /* our loaded segments */
  int nself;
  size_t rebound;                          /* slots rewritten */
} bind;

static int in_ranges(const struct range *r, int n, uintptr_t a)
{
  for (int i = 0; i < n; i++)
    if (a >= r[i].lo && a < r[i].hi)
      return 1;
  return 0;
}

static int loads_of(const struct dl_phdr_info *info, struct range *out)
{
  int n = 0;
  for (int i = 0; i < info->dlpi_phnum && n < RANGES; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD)
      out[n++] = (struct range){info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz};
  }
  return n;
}

/* A pointer of the dynamic section: glibc relocates them in place on these
 * architectures (elf/get-dynamic-info.h), but an address below the
 * object's base has not been. */
static uintptr_t dyn_ptr(const struct dl_phdr_info *info, ElfW(Addr) p)
{
  return p < info->dlpi_addr ? info->dlpi_addr + p : p;
}

static int self_of(struct dl_phdr_info *info, size_t size, void *data)
{
  (void)size;
  (void)data;
  if (info->dlpi_addr != bind.self_base)
    return 0;
  bind.nself = loads_of(info, bind.self);
  return 1;
}

/* An object's read-only-after-relocation part (PT_GNU_RELRO), made
 * writable once for all its slots that are rewritten, and read-only again
 * when the object is done. */
struct relro {
  uintptr_t lo, hi;                        /* page-aligned; lo == hi: none */
  int open;
};

/* Rewrites one slot, opening the object's read-only part first when the
 * slot lies in it. */
static void rebind(uintptr_t *slot, uintptr_t to, struct relro *ro)
{
  int in = (uintptr_t)slot >= ro->lo && (uintptr_t)slot < ro->hi;
  if (in && !ro->open) {
    if (mprotect((void *)ro->lo, ro->hi - ro->lo, PROT_READ | PROT_WRITE) != 0)
      return;
    ro->open = 1;
  }
  __atomic_store_n(slot, to, __ATOMIC_RELAXED);
  bind.rebound++;
}

static void relocs(const struct dl_phdr_info *info, const ElfW(Rela) *r, size_t bytes, const ElfW(Sym) *symtab,
                   const char *strtab, const struct range *own, int nown, struct relro *relro)
{
  for (size_t i = 0; i < bytes / sizeof *r; i++) {
    unsigned type = (unsigned)ELF64_R_TYPE(r[i].r_info);
    if (type != R_SLOT && type != R_DATA && !(type == R_WORD && r[i].r_addend == 0))
      continue;
    const ElfW(Sym) *sym = &symtab[ELF64_R_SYM(r[i].r_info)];
    if (sym->st_shndx != SHN_UNDEF || sym->st_name == 0)
      continue;                            /* defined here: bound to itself, never to us */
    const char *name = strtab + sym->st_name;
    for (int k = 0; k < NAMES; k++) {
      if (strcmp(name, bind.name[k]) != 0)
        continue;
      uintptr_t *slot = (uintptr_t *)(info->dlpi_addr + r[i].r_offset);
      uintptr_t now = __atomic_load_n(slot, __ATOMIC_RELAXED);
      int ours = in_ranges(bind.self, bind.nself, now);
      int lazy = type == R_SLOT && in_ranges(own, nown, now) && bind.global_ours[k];
      if ((ours || lazy) && bind.real[k] != 0)
        rebind(slot, bind.real[k], relro);
      break;
    }
  }
}

static int object(struct dl_phdr_info *info, size_t size, void *data)
{
  (void)size;
  (void)data;
  if (info->dlpi_addr == bind.self_base)
    return 0;
  const ElfW(Dyn) *dyn = NULL;
  struct range own[RANGES];
  struct relro relro = {0, 0, 0};
  int nown = loads_of(info, own);
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  for (int i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_DYNAMIC)
      dyn = (const ElfW(Dyn) *)(info->dlpi_addr + ph->p_vaddr);
    else if (ph->p_type == PT_GNU_RELRO) {
      /* The dynamic linker protects the pages the segment covers
       * (elf/dl-reloc.c, _dl_protect_relro). */
      relro.lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
      relro.hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(page - 1);
    }
  }
  if (dyn == NULL)
    return 0;
  const ElfW(Sym) *symtab = NULL;
  const char *strtab = NULL;
  const ElfW(Rela) *rela = NULL, *jmprel = NULL;
  size_t relasz = 0, pltsz = 0;
  int pltrela = 0;
  for (; dyn->d_tag != DT_NULL; dyn++) {
    switch (dyn->d_tag) {
    case DT_SYMTAB: symtab = (const ElfW(Sym) *)dyn_ptr(info, dyn->d_un.d_ptr); break;
    case DT_STRTAB: strtab = (const char *)dyn_ptr(info, dyn->d_un.d_ptr); break;
    case DT_RELA: rela = (const ElfW(Rela) *)dyn_ptr(info, dyn->d_un.d_ptr); break;
    case DT_RELASZ: relasz = dyn->d_un.d_val; break;
    case DT_JMPREL: jmprel = (const ElfW(Rela) *)dyn_ptr(info, dyn->d_un.d_ptr); break;
    case DT_PLTRELSZ: pltsz = dyn->d_un.d_val; break;
    case DT_PLTREL: pltrela = dyn->d_un.d_val == DT_RELA; break;
    default: break;
    }
  }
  if (symtab == NULL || strtab == NULL)
    return 0;
  if (rela != NULL)
    relocs(info, rela, relasz, symtab, strtab, own, nown, &relro);
  if (jmprel != NULL && pltrela)
    relocs(info, jmprel, pltsz, symtab, strtab, own, nown, &relro);
  if (relro.open)
    mprotect((void *)relro.lo, relro.hi - relro.lo, PROT_READ);
  return 0;
}

size_t tl__heap_bind_direct(void)
{
  if (tl__heap_lookup() != 0 || tl__heap_tracking)
    return 0;
  Dl_info self;
  if (!dladdr((void *)tl__heap_bind_direct, &self))
    return 0;
  bind.self_base = (uintptr_t)self.dli_fbase;
  dl_iterate_phdr(self_of, NULL);
  if (bind.nself == 0)
    return 0;
  static const char *const names[NAMES] = {"malloc", "calloc", "posix_memalign", "aligned_alloc",
                                           "memalign", "valloc", "pvalloc"};
  const void *real[NAMES] = {
    (const void *)tl__heap_real.malloc_fn,        (const void *)tl__heap_real.calloc_fn,
    (const void *)tl__heap_real.posix_memalign_fn, (const void *)tl__heap_real.aligned_alloc_fn,
    (const void *)tl__heap_real.memalign_fn,      (const void *)tl__heap_real.valloc_fn,
    (const void *)tl__heap_real.pvalloc_fn,
  };
  /* Looked up before the walk: dlsym and dladdr take the dynamic linker's
   * load lock, which a dlopen on another thread holds while it waits for
   * the lock that dl_iterate_phdr holds. */
  for (int k = 0; k < NAMES; k++) {
    bind.name[k] = names[k];
    bind.real[k] = (uintptr_t)real[k];
    bind.global_ours[k] = in_ranges(bind.self, bind.nself, (uintptr_t)dlsym(RTLD_DEFAULT, names[k]));
  }
  dl_iterate_phdr(object, NULL);
  return bind.rebound;
}
