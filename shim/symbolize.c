/* Names, source files and lines of the addresses in a report, as
 * LeakSanitizer gives them: elfutils' libdw reads each module's symbol
 * table (.symtab, so static functions are named right, where dladdr knows
 * only the exported ones) and its DWARF (file and line, and the frames of
 * inlined calls), from the module itself or from a separate debug file:
 * /usr/lib/debug/.build-id/xx/yyyy.debug, or one named by the module's
 * .gnu_debuglink (next to it, in .debug/ or under /usr/lib/debug).
 *
 * This runs at report time only; capture records raw addresses. libdw
 * allocates with malloc and reads files, so it is used only when a report
 * is written by a thread that may allocate: at exit, by tl_dump, and by
 * the dump signal's thread (the handler itself only wakes that thread).
 * tl__sym_begin(0) keeps to the names-only path, libunwind's and
 * dladdr's, which allocates nothing.
 *
 * Whatever libdw cannot read (a stripped module without debug file, a
 * missing or corrupt debug file, a binary deleted while it runs) falls
 * back to dladdr's exported names for its addresses, and the frame says
 * so (libunwind, which would read the same debug file without checking
 * it, is not asked then: see tl__bt_name).
 *
 * One Dwfl session per report, guarded by the writer's lock (one report
 * at a time): the modules loaded by then are all reported, and a module
 * is read only once its first address is looked up.
 *
 * Debug files are looked for on this machine only, never asked of a
 * debuginfod server (see find_debuginfo).
 */
#include "internal.h"
#include "symbolize.h"
#include "backtrace.h"
#include "message.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <fcntl.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
  Dwfl *dwfl;                              /* NULL: the names-only path */
  char *(*demangle)(const char *name, char *buf, size_t *len, int *status);
} S;

/* Whether the ELF file open on fd has the build ID of mod (or mod has
 * none to compare). */
static int same_build_id(Dwfl_Module *mod, int fd)
{
  const unsigned char *want;
  GElf_Addr vaddr;
  int n = dwfl_module_build_id(mod, &want, &vaddr);
  if (n <= 0)
    return 1;
  Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
  const void *have = NULL;
  ssize_t m = elf != NULL ? dwelf_elf_gnu_build_id(elf, &have) : -1;
  int same = m == n && memcmp(have, want, (size_t)n) == 0;
  if (elf != NULL)
    elf_end(elf);
  return same;
}

/* The debug file a module's .gnu_debuglink names, where GDB and libdw
 * look for it: next to the module, in .debug/ there, and under
 * /usr/lib/debug with the module's directory. */
static int find_debuglink(Dwfl_Module *mod, const char *file_name, const char *link, char **found)
{
  const char *slash = file_name != NULL ? strrchr(file_name, '/') : NULL;
  if (link == NULL || link[0] == '\0' || strchr(link, '/') != NULL || slash == NULL)
    return -1;
  char dir[4096];
  size_t dn = (size_t)(slash - file_name);
  if (dn >= sizeof dir)
    return -1;
  memcpy(dir, file_name, dn);
  dir[dn] = '\0';
  static const char *const forms[] = {"%s/%s", "%s/.debug/%s", "/usr/lib/debug%s/%s"};
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    char path[4096];
    if (tl__formatf(path, sizeof path, forms[i], dir, link) >= (int)sizeof path || strcmp(path, file_name) == 0)
      continue;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    if (same_build_id(mod, fd)) {
      *found = strdup(path);
      return fd;
    }
    close(fd);
  }
  return -1;
}

/* Separate debug files: by build ID, then by .gnu_debuglink. Not
 * dwfl_standard_find_debuginfo: libdw 0.188 then starts its debuginfod
 * client (libdebuginfod, curl and their TLS libraries loaded into the
 * program at exit) whether or not a server is configured, and a report
 * must not wait on the network. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
                          const char *file_name, const char *debuglink_file, GElf_Word debuglink_crc,
                          char **debuginfo_file_name)
{
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file, debuglink_crc,
                                        debuginfo_file_name);
  if (fd >= 0)
    return fd;
  return find_debuglink(mod, file_name, debuglink_file, debuginfo_file_name);
}

/* n without a " (deleted)" at its end. */
static size_t undeleted(const char *path, size_t n)
{
  static const char deleted[] = " (deleted)";
  size_t d = sizeof deleted - 1;
  return n > d && memcmp(path + n - d, deleted, d) == 0 ? n - d : n;
}

/* A program replaced or removed while it runs (a deployment) is listed
 * as "/path (deleted)": its file is gone, but /proc/self/exe still opens
 * it (qemu-user's too, whose link does not say "(deleted)"). Other
 * modules are found as libdw finds them. */
static int find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base, char **file_name,
                    Elf **elfp)
{
  size_t n = strlen(modname), m = undeleted(modname, n);
  char exe[4096];
  ssize_t len;
  if (m < n && (len = readlink("/proc/self/exe", exe, sizeof exe - 1)) > 0 &&
      undeleted(exe, (size_t)len) == m && memcmp(exe, modname, m) == 0) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    Elf *elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, NULL) : NULL;
    if (elf != NULL) {
      *elfp = elf;
      return fd;
    }
    if (fd >= 0)
      close(fd);
  }
  return dwfl_linux_proc_find_elf(mod, userdata, modname, base, file_name, elfp);
}

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
  .find_elf = find_elf,
  .find_debuginfo = find_debuginfo,
  .debuginfo_path = &debuginfo_path,
};

void tl__sym_begin(int full)
{
  S.dwfl = NULL;
  if (!full)
    return;
  /* C++ names are demangled when the program has the C++ runtime. */
  S.demangle = (char *(*)(const char *, char *, size_t *, int *))dlsym(RTLD_DEFAULT, "__cxa_demangle");
  Dwfl *d = dwfl_begin(&callbacks);
  if (d == NULL)
    return;
  if (dwfl_linux_proc_report(d, getpid()) != 0 || dwfl_report_end(d, NULL, NULL) != 0) {
    dwfl_end(d);
    return;
  }
  S.dwfl = d;
}

void tl__sym_end(void)
{
  if (S.dwfl != NULL)
    dwfl_end(S.dwfl);
  S.dwfl = NULL;
}

const char *tl__sym_source_name(enum tl__sym_source s)
{
  switch (s) {
  case TL__SYM_DWARF:
    return "dwarf";
  case TL__SYM_SYMTAB:
    return "symtab";
  case TL__SYM_UNWIND:
    return "libunwind";
  default:
    return "none";
  }
}

static void copy(char *dst, size_t size, const char *src)
{
  size_t n = src != NULL ? strlen(src) : 0;
  if (n >= size)
    n = size - 1;
  memcpy(dst, src != NULL ? src : "", n);
  dst[n] = '\0';
}

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

/* A C++ name demangled, when it is one and the runtime is there. */
static void set_func(struct tl__sym *f, const char *name)
{
  if (name != NULL && name[0] == '_' && name[1] == 'Z' && S.demangle != NULL) {
    int status = -1;
    char *plain = S.demangle(name, NULL, NULL, &status);
    if (plain != NULL && status == 0) {
      copy(f->func, sizeof f->func, plain);
      free(plain);
      return;
    }
    free(plain);
  }
  copy(f->func, sizeof f->func, name);
}

/* The name of a subprogram or inlined call, following
 * DW_AT_abstract_origin to the function's declaration: a C++ linkage name
 * when the C++ runtime can demangle it (the full, qualified name), else
 * DW_AT_name (a D or Rust linkage name would stay mangled), else the
 * linkage name. */
static const char *die_name(Dwarf_Die *die)
{
  Dwarf_Attribute a;
  const char *linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
  if (linkage == NULL)
    linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
  if (linkage != NULL && linkage[0] == '_' && linkage[1] == 'Z' && S.demangle != NULL)
    return linkage;
  const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
  return name != NULL ? name : linkage;
}

/* A source path as the compiler was given it: relative to the directory
 * of the compilation when it lies under it (tests/programs/leak_demo.c,
 * not /home/me/tasklocal/tests/programs/leak_demo.c). */
static void set_file(struct tl__sym *f, const char *path, const char *comp_dir)
{
  size_t n = comp_dir != NULL ? strlen(comp_dir) : 0;
  if (path != NULL && n > 0 && strncmp(path, comp_dir, n) == 0 && path[n] == '/')
    path += n + 1;
  copy(f->file, sizeof f->file, path);
}

/* The frames of at with libdw, innermost (inlined) first; 0 when libdw
 * knows nothing of it. */
static int dw_lookup(uintptr_t pc, uintptr_t at, struct tl__sym *out, int max)
{
  Dwfl_Module *mod = dwfl_addrmodule(S.dwfl, at);
  if (mod == NULL)
    return 0;
  Dwarf_Addr start = 0;
  const char *modname = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
  GElf_Off off = 0;
  GElf_Sym sym;
  const char *symname = dwfl_module_addrinfo(mod, at, &off, &sym, NULL, NULL, NULL);
  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = dwfl_module_addrdie(mod, at, &bias);
  if (symname == NULL && cu == NULL) {
    /* Nothing names it: the fallback, with the module as libdw saw it. */
    out[0].module_offset = (unsigned long)(at - start + (at != pc));
    copy(out[0].module, sizeof out[0].module, modname != NULL ? base_name(modname) : "");
    return 0;
  }

  const char *file = NULL, *comp_dir = NULL;
  int line = 0;
  Dwfl_Line *l = dwfl_module_getsrc(mod, at);
  if (l != NULL)
    file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
  if (file == NULL)
    line = 0;
  Dwarf_Files *files = NULL;
  size_t nfiles = 0;
  if (cu != NULL) {
    Dwarf_Attribute a;
    comp_dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a));
    if (dwarf_getsrcfiles(cu, &files, &nfiles) != 0)
      files = NULL;
  }

  int n = 0;
  const char *physical = NULL;
  Dwarf_Die *scopes = NULL;
  int nscopes = cu != NULL ? dwarf_getscopes(cu, at - bias, &scopes) : 0;
  for (int i = 0; i < nscopes; i++) {
    int tag = dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_subprogram) {
      physical = die_name(&scopes[i]);
      break;
    }
    if (tag != DW_TAG_inlined_subroutine || n >= max - 1)
      continue;
    struct tl__sym *f = &out[n++];
    memset(f, 0, offsetof(struct tl__sym, func));
    f->pc = pc;
    f->inlined = 1;
    f->source = line > 0 ? TL__SYM_DWARF : TL__SYM_SYMTAB;
    f->line = line;
    f->module_offset = (unsigned long)(at - start + (at != pc));
    set_func(f, die_name(&scopes[i]));
    set_file(f, line > 0 ? file : NULL, comp_dir);
    copy(f->module, sizeof f->module, modname != NULL ? base_name(modname) : "");
    /* The call's place is where the next frame out is. */
    Dwarf_Attribute a;
    Dwarf_Word w;
    file = NULL;
    line = 0;
    if (files != NULL && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &w) == 0 && w < nfiles)
      file = dwarf_filesrc(files, w, NULL, NULL);
    if (file != NULL && dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &w) == 0)
      line = (int)w;
    if (file == NULL)
      line = 0;
  }
  free(scopes);

  struct tl__sym *f = &out[n++];
  memset(f, 0, offsetof(struct tl__sym, func));
  f->pc = pc;
  f->line = line;
  f->source = line > 0 ? TL__SYM_DWARF : TL__SYM_SYMTAB;
  f->offset = (unsigned long)(off + (at != pc));
  f->module_offset = (unsigned long)(at - start + (at != pc));
  /* DWARF's name first: the symbol of a part GCC split off is
   * "name.cold" or "name.part.0". */
  set_func(f, physical != NULL ? physical : symname);
  set_file(f, line > 0 ? file : NULL, comp_dir);
  copy(f->module, sizeof f->module, modname != NULL ? base_name(modname) : "");
  return n;
}

int tl__sym_lookup(uintptr_t pc, int ret, struct tl__sym *out, int max)
{
  if (max <= 0)
    return 0;
  uintptr_t at = ret && pc > 0 ? pc - 1 : pc;
  struct tl__sym *f = &out[0];
  f->module[0] = '\0';
  if (S.dwfl != NULL) {
    int n = dw_lookup(pc, at, out, max);
    if (n > 0)
      return n;
  }
  char module[sizeof f->module];
  unsigned long module_offset = f->module_offset;
  copy(module, sizeof module, f->module);
  memset(f, 0, offsetof(struct tl__sym, func));
  f->pc = pc;
  int have = tl__bt_name(pc, ret, S.dwfl == NULL, f->func, sizeof f->func, &f->offset, f->module, sizeof f->module,
                         &f->module_offset);
  if (module[0] != '\0') {
    copy(f->module, sizeof f->module, module);
    f->module_offset = module_offset;
    have = have < 0 ? 0 : have;
  }
  f->file[0] = '\0';
  f->source = have >= 0 ? TL__SYM_UNWIND : TL__SYM_NONE;
  return 1;
}

/* A frame as sanitizers print it, after "#N 0xPC in ":
 *   wait_for_lock tests/programs/leak_demo.c:40 (leak_demo)
 *   helper tests/programs/x.c:12 (x, inlined)     an inlined call
 *   __libc_start_main+0x85 (libc.so.6+0x271c5)    no line: an offset
 *   park+0x10 (x+0x1234) [names only]             libdw not used, or it
 *                                                 could not read the module
 */
void tl__sym_text(const struct tl__sym *f, char *buf, size_t size)
{
  char where[320] = "", mod[96];
  const char *inl = f->inlined ? ", inlined" : "";
  const char *mark = f->source == TL__SYM_UNWIND ? " [names only]" : "";
  if (f->line > 0 && f->file[0] != '\0')
    tl__formatf(where, sizeof where, " %s:%d", f->file, f->line);
  if (f->line > 0)
    tl__formatf(mod, sizeof mod, "%s", f->module);
  else
    tl__formatf(mod, sizeof mod, "%s+0x%lx", f->module, f->module_offset);
  if (f->source == TL__SYM_NONE)
    tl__formatf(buf, size, "??");
  else if (f->func[0] != '\0' && f->line > 0)
    tl__formatf(buf, size, "%s%s (%s%s)%s", f->func, where, mod, inl, mark);
  else if (f->func[0] != '\0')
    tl__formatf(buf, size, "%s+0x%lx (%s%s)%s", f->func, f->offset, mod, inl, mark);
  else
    tl__formatf(buf, size, "?? (%s%s)%s", mod, inl, mark);
}
