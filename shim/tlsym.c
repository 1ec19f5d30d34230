/* A __thread variable of a loaded object, found by its name.
 *
 * The symbol tables come from the object's file, read with libelf: the
 * dynamic one holds the exported variables and .symtab (when the file is
 * not stripped) the static ones too. For a TLS symbol, st_value is the
 * offset of the variable in its object's TLS block, which the dynamic
 * linker numbers (the module id that dl_iterate_phdr reports). A thread's
 * copy is then where __tls_get_addr says, as for code compiled with the
 * general-dynamic model: the dynamic linker allocates the block of a
 * dlopened object in a thread that never used it. The initial image, what
 * a new thread's copy starts with, is the object's PT_TLS segment.
 */
#include "internal.h"
#include "tlsym.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <string.h>
#include <unistd.h>

/* glibc's argument of __tls_get_addr (sysdeps/<arch>/dl-tls.h). */
struct tls_index_arg {
  unsigned long module;
  unsigned long offset;
};
extern void *__tls_get_addr(struct tls_index_arg *ti);

int tl__object_matches(const char *path, const char *pattern)
{
  if (path == NULL || pattern == NULL || *pattern == '\0')
    return 0;
  if (strcmp(path, pattern) == 0)
    return 1;
  const char *base = strrchr(path, '/');
  base = base != NULL ? base + 1 : path;
  size_t n = strlen(pattern);
  return strncmp(base, pattern, n) == 0 && (base[n] == '\0' || base[n] == '.');
}

/* name in the symbol tables of the ELF file at path: TL__TLSYM_FOUND with
 * its value and size, TL__TLSYM_NOT_TLS, or TL__TLSYM_NONE. */
static enum tl__tlsym_result in_file(const char *path, const char *name, uint64_t *value, uint64_t *size)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return TL__TLSYM_NONE;
  enum tl__tlsym_result r = TL__TLSYM_NONE;
  Elf *e = elf_begin(fd, ELF_C_READ, NULL);
  Elf_Scn *scn = NULL;
  while (e != NULL && r != TL__TLSYM_FOUND && (scn = elf_nextscn(e, scn)) != NULL) {
    GElf_Shdr sh;
    if (gelf_getshdr(scn, &sh) == NULL || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
        sh.sh_entsize == 0)
      continue;
    Elf_Data *d = elf_getdata(scn, NULL);
    size_t n = sh.sh_size / sh.sh_entsize;
    for (size_t i = 1; d != NULL && i < n; i++) {
      GElf_Sym s;
      if (gelf_getsym(d, (int)i, &s) == NULL || s.st_shndx == SHN_UNDEF)
        continue;
      const char *sn = elf_strptr(e, sh.sh_link, s.st_name);
      if (sn == NULL || strcmp(sn, name) != 0)
        continue;
      if (GELF_ST_TYPE(s.st_info) != STT_TLS) {
        r = TL__TLSYM_NOT_TLS;
        continue;
      }
      *value = s.st_value;
      *size = s.st_size;
      r = TL__TLSYM_FOUND;
      break;
    }
  }
  if (e != NULL)
    elf_end(e);
  close(fd);
  return r;
}

struct search {
  uintptr_t self;                          /* our own object's base: its state is never the program's */
  const char *name, *object;
  struct tl__tlsym *out;
  enum tl__tlsym_result result;
  char exe[4096];                          /* the program's own path, for matching */
};

static int visit(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  struct search *s = arg;
  if (info->dlpi_addr == s->self)
    return 0;
  /* The program itself has no name here; its file is /proc/self/exe. */
  const char *name = info->dlpi_name, *path = name;
  if (name == NULL || *name == '\0') {
    name = s->exe;
    path = "/proc/self/exe";
  }
  if (s->object != NULL && !tl__object_matches(name, s->object))
    return 0;
  const ElfW(Phdr) *tls = NULL;
  for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_TLS)
      tls = &info->dlpi_phdr[i];
  uint64_t value = 0, sz = 0;
  enum tl__tlsym_result r = in_file(path, s->name, &value, &sz);
  if (r == TL__TLSYM_FOUND && (tls == NULL || info->dlpi_tls_modid == 0))
    r = TL__TLSYM_NOT_TLS;
  if (r == TL__TLSYM_NOT_TLS)
    s->result = r;                         /* a TLS definition in a later object still wins */
  if (r != TL__TLSYM_FOUND)
    return 0;
  s->out->module = info->dlpi_tls_modid;
  s->out->offset = value;
  s->out->size = sz;
  s->out->image = (const unsigned char *)(info->dlpi_addr + tls->p_vaddr);
  s->out->image_size = tls->p_filesz;
  s->result = r;
  return 1;
}

enum tl__tlsym_result tl__tlsym_find(const char *name, const char *object, struct tl__tlsym *out)
{
  static struct search s;                  /* large; callers hold the lock of tasktls.c */
  memset(&s, 0, sizeof s);
  s.name = name;
  s.object = object;
  s.out = out;
  s.result = TL__TLSYM_NONE;
  Dl_info self;
  if (dladdr((const void *)tl__tlsym_find, &self))
    s.self = (uintptr_t)self.dli_fbase;
  ssize_t n = readlink("/proc/self/exe", s.exe, sizeof s.exe - 1);
  s.exe[n > 0 ? n : 0] = '\0';
  if (elf_version(EV_CURRENT) == EV_NONE)
    return TL__TLSYM_NONE;
  dl_iterate_phdr(visit, &s);
  return s.result;
}

void *tl__tlsym_here(const struct tl__tlsym *s)
{
  struct tls_index_arg ti = {(unsigned long)s->module, (unsigned long)s->offset};
  return __tls_get_addr(&ti);
}
