/* Counts the allocations that libtasklocal makes, for the fault-injection
 * suite (tests/check_faults.c).
 *
 * TASKLOCAL_TEST_FAIL_ALLOC=N fails the library's Nth allocation, but the
 * library does not say how many allocations a run makes. Preloaded before
 * the shim, this library defines malloc, calloc, realloc and mmap, forwards them to
 * glibc, and counts the calls whose caller lies in libtasklocal: every
 * allocation of the library goes through shim/alloc.c, which calls exactly
 * one of these per allocation (mmap for its record pools), or, for a small
 * block that needs no new pages, tlcount_alloc below, which the library
 * looks up at load. The count is
 * rewritten at the start of the file named by TLCOUNT_FILE after every
 * counted call, so that it survives a process that ends with _exit, exit
 * from a coroutine, or a crash.
 *
 * glibc's own entry points (__libc_malloc, __libc_calloc, __libc_realloc) are used rather
 * than dlsym(RTLD_NEXT, ...): dlsym may call malloc, which would recurse.
 * mmap goes straight to the system call. Stack mappings (MAP_STACK) are not
 * allocations in the sense of alloc.c: the report code maps a stack for its
 * own use without going through the allocation hook. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);

static long count;
static int lock;
static int count_fd = -2;                  /* -2: not opened yet; -1: no file */

/* The file name is read from /proc/self/environ rather than with getenv:
 * malloc may be called before libc has set up environ for us. */
static int open_count_file(void)
{
  static char buf[16384];
  int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/environ", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  ssize_t n = 0, r;
  while (n < (ssize_t)sizeof buf - 1 && (r = syscall(SYS_read, fd, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
    n += r;
  syscall(SYS_close, fd);
  buf[n] = '\0';
  static const char name[] = "TLCOUNT_FILE=";
  for (char *p = buf; p < buf + n; p += strlen(p) + 1) {
    if (strncmp(p, name, sizeof name - 1) == 0)
      return (int)syscall(SYS_openat, AT_FDCWD, p + sizeof name - 1, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                          0644);
  }
  return -1;
}

static void put_count(long v)
{
  char text[24];
  int i = (int)sizeof text;
  text[--i] = '\n';
  do {
    text[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  syscall(SYS_pwrite64, count_fd, text + i, sizeof text - (size_t)i, 0);
}

static void note(const void *caller)
{
  Dl_info info;
  if (dladdr(caller, &info) == 0 || info.dli_fname == NULL || strstr(info.dli_fname, "libtasklocal") == NULL)
    return;
  /* Counted calls may come from several threads at once: the lock keeps
   * a smaller count from overwriting a larger one. */
  while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
    ;
  count++;
  if (count_fd == -2)
    count_fd = open_count_file();
  if (count_fd >= 0)
    put_count(count);
  __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

__attribute__((visibility("default"))) void *malloc(size_t size)
{
  void *p = __libc_malloc(size);
  note(__builtin_return_address(0));
  return p;
}

__attribute__((visibility("default"))) void *calloc(size_t n, size_t size)
{
  void *p = __libc_calloc(n, size);
  note(__builtin_return_address(0));
  return p;
}

__attribute__((visibility("default"))) void *realloc(void *old, size_t size)
{
  void *p = __libc_realloc(old, size);
  note(__builtin_return_address(0));
  return p;
}

__attribute__((visibility("default"))) void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
  long r = syscall(SYS_mmap, addr, len, prot, flags, fd, off);
  if (!(flags & MAP_STACK))
    note(__builtin_return_address(0));
  return r == -1 ? MAP_FAILED : (void *)r;
}

/* A small block handed out from pages the library already has. */
__attribute__((visibility("default"))) void tlcount_alloc(void)
{
  note(__builtin_return_address(0));
}
