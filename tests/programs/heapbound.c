/* Where this program's calls of the allocation functions lead, as the
 * object that their slots hold: for malloc and free, the function pointer
 * that the program takes (a GLOB_DAT slot, through which its calls go
 * too), as "malloc pointer=libc.so.6"; for calloc, posix_memalign and
 * realloc, whose address it never takes, the call slot of its PLT (a
 * JUMP_SLOT, read from its own relocations), as "calloc call=libc.so.6".
 *
 * It is built with the default lazy binding and calls none of them before
 * it looks, so a call slot still points into this program's own PLT unless
 * somebody bound it meanwhile: it then says "call=unbound". */
#include "prog.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#if defined(__x86_64__)
#define R_SLOT R_X86_64_JUMP_SLOT
#elif defined(__aarch64__)
#define R_SLOT R_AARCH64_JUMP_SLOT
#endif

struct want {
  const char *name;
  void *slot;                              /* the call slot's value, NULL if none */
};

static struct want wants[] = {{"calloc", NULL}, {"posix_memalign", NULL}, {"realloc", NULL}};
#define NWANT (sizeof wants / sizeof wants[0])
static uintptr_t program_base;

static uintptr_t fix(const struct dl_phdr_info *info, ElfW(Addr) p)
{
  return p < info->dlpi_addr ? info->dlpi_addr + p : p;
}

/* The first object is the program itself. */
static int slots(struct dl_phdr_info *info, size_t size, void *data)
{
  (void)size;
  (void)data;
  program_base = info->dlpi_addr;
  const ElfW(Dyn) *dyn = NULL;
  for (int i = 0; i < info->dlpi_phnum; i++)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  const ElfW(Sym) *symtab = NULL;
  const char *strtab = NULL;
  const ElfW(Rela) *jmprel = NULL;
  size_t pltsz = 0;
  for (; dyn != NULL && dyn->d_tag != DT_NULL; dyn++) {
    if (dyn->d_tag == DT_SYMTAB)
      symtab = (const ElfW(Sym) *)fix(info, dyn->d_un.d_ptr);
    else if (dyn->d_tag == DT_STRTAB)
      strtab = (const char *)fix(info, dyn->d_un.d_ptr);
    else if (dyn->d_tag == DT_JMPREL)
      jmprel = (const ElfW(Rela) *)fix(info, dyn->d_un.d_ptr);
    else if (dyn->d_tag == DT_PLTRELSZ)
      pltsz = dyn->d_un.d_val;
  }
  for (size_t i = 0; jmprel != NULL && symtab != NULL && i < pltsz / sizeof *jmprel; i++) {
    if (ELF64_R_TYPE(jmprel[i].r_info) != R_SLOT)
      continue;
    const char *name = strtab + symtab[ELF64_R_SYM(jmprel[i].r_info)].st_name;
    for (size_t k = 0; k < NWANT; k++)
      if (strcmp(name, wants[k].name) == 0)
        wants[k].slot = *(void **)(info->dlpi_addr + jmprel[i].r_offset);
  }
  return 1;
}

static const char *object_of(void *p)
{
  Dl_info info;
  if (p == NULL || !dladdr(p, &info) || info.dli_fname == NULL)
    return "none";
  if ((uintptr_t)info.dli_fbase == program_base)
    return "unbound";
  const char *slash = strrchr(info.dli_fname, '/');
  return slash != NULL ? slash + 1 : info.dli_fname;
}

int main(void)
{
  /* Taken through the program's GOT; volatile, so that the compiler keeps
   * the loads. */
  void *volatile pointers[2] = {(void *)malloc, (void *)free};
  dl_iterate_phdr(slots, NULL);
  printf("malloc pointer=%s\nfree pointer=%s\n", object_of(pointers[0]), object_of(pointers[1]));
  for (size_t k = 0; k < NWANT; k++)
    printf("%s call=%s\n", wants[k].name, object_of(wants[k].slot));
  /* Called at last, so that each has a call slot to look at; the blocks
   * are used, so that the compiler keeps the calls. */
  char *p = malloc(16), *q = calloc(1, 16);
  void *r = NULL;
  if (p == NULL || q == NULL || posix_memalign(&r, 64, 16) != 0)
    return 1;
  p = realloc(p, 32);
  snprintf(p, 32, "%d", q[3]);
  printf("%s\n", p);
  free(p);
  free(q);
  free(r);
  return 0;
}
