/* What the C code of the shim knows about the processor, in one place: the
 * registers of a saved ucontext_t it reads or sets, the stack pointer, and
 * the stack pointer that a jmp_buf restores. The assembly of each
 * architecture (the wrappers and the trampoline) is shim/arch/<arch>.S,
 * which reads the registers set here. Included by internal.h only.
 *
 * Supported: glibc on x86_64 and on aarch64, both LP64. Anything else is
 * refused here, at compile time (and by the Makefile before it). */
#ifndef TL_ARCH_H
#define TL_ARCH_H

#if !defined(__linux__) || !defined(__GLIBC__)
#error "tasklocal tracks glibc's ucontext implementation on Linux: other systems and C libraries (musl, bionic...) are not supported"
#endif

#if defined(__x86_64__) && defined(__LP64__)

#include <cpuid.h>

#define TL__ARCH "x86_64"

/* An address in the stack that a saved context resumes on, to find its
 * task by: the stack pointer saved in it (a new context's points at the
 * return address that glibc's makecontext pushed, inside the stack). */
#define TL__UC_SP(ucp) ((uintptr_t)(ucp)->uc_mcontext.gregs[REG_RSP])

/* A new context carries its task, the task's id and the program's function
 * to the trampoline (arch/x86_64.S) in %r12, %r13 and %r14: callee-saved
 * registers that glibc's makecontext leaves alone (it sets RIP, RSP, RBX
 * and the argument registers; sysdeps/unix/sysv/linux/x86_64/makecontext.c)
 * and that setcontext and swapcontext restore. */
static inline void tl__uc_set_task(ucontext_t *ucp, const void *t, uint64_t id, void (*entry)(void))
{
  ucp->uc_mcontext.gregs[REG_R12] = (greg_t)(uintptr_t)t;
  ucp->uc_mcontext.gregs[REG_R13] = (greg_t)id;
  ucp->uc_mcontext.gregs[REG_R14] = (greg_t)(uintptr_t)entry;
}

/* A copy of a saved context, made for unwinding it: the copy's pointer to
 * the floating-point state still points into the original. */
static inline void tl__uc_copied(ucontext_t *uc)
{
  uc->uc_mcontext.fpregs = &uc->__fpregs_mem;
}

/* The instruction of tl__sp (internal.h). */
#define TL__SP_ASM "mov %%rsp, %0"

/* The pause of a spinning wait. */
static inline void tl__cpu_relax(void)
{
  __builtin_ia32_pause();
}

/* Other threads see this thread's earlier stores before its later ones.
 * x86 keeps stores in program order, so only the compiler must be stopped
 * (a thread fence would be the portable spelling, which ThreadSanitizer
 * rejects). */
static inline void tl__store_order(void)
{
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* The trace's cycle counter (traceclock.c): the TSC, usable when it is
 * invariant (CPUID 0x80000007, EDX bit 8) and the kernel keeps time with
 * it (the clock source of that name), so that all cores agree. */
#define TL__COUNTER_CLOCKSOURCE "tsc"

static inline uint64_t tl__counter_read(void)
{
  return __builtin_ia32_rdtsc();
}

static inline int tl__counter_invariant(void)
{
  unsigned a, b, c, d;
  return __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
}

/* The stack pointer a jmp_buf restores. glibc keeps it mangled
 * (sysdeps/unix/sysv/linux/x86_64/sysdep.h, PTR_MANGLE: xor with the
 * thread's pointer guard at %fs:0x30, then rotate left by 17 bits) in slot
 * JB_RSP, 6, of __jmpbuf (sysdeps/x86_64/jmpbuf-offsets.h). The guard is
 * in the thread's TCB: there is no TL__JMP_GUARD_SYMBOL to look up, and
 * guard is unused. */

static inline uintptr_t tl__jmp_sp(const struct __jmp_buf_tag *env, const uintptr_t *guard)
{
  (void)guard;
  uintptr_t v = (uintptr_t)env->__jmpbuf[6], g;
  __asm__("movq %%fs:0x30, %0" : "=r"(g));
  return ((v >> 17) | (v << 47)) ^ g;
}

#elif defined(__aarch64__) && defined(__LP64__)

#include <dlfcn.h>
#include <string.h>

#define TL__ARCH "aarch64"

/* An address in the stack that a saved context resumes on, to find its
 * task by: the byte below the stack pointer saved in it. glibc's
 * makecontext leaves a new context's sp at the very top of its stack (one
 * past its last byte) when all the arguments fit in registers, which no
 * stack range holds; a context saved by a switch has its caller's frame
 * at sp, so the byte below is in the same stack. arch/aarch64.S's inline
 * switch subtracts the same 1. */
#define TL__UC_SP(ucp) ((uintptr_t)(ucp)->uc_mcontext.sp - 1)

/* A new context carries its task, the task's id and the program's function
 * to the trampoline (arch/aarch64.S) in x20, x21 and x22: callee-saved
 * registers that glibc's makecontext leaves alone (it sets x0-x7, x19 to
 * uc_link, x29, x30, sp and pc; sysdeps/unix/sysv/linux/aarch64/
 * makecontext.c) and that setcontext restores with x18-x30. */
static inline void tl__uc_set_task(ucontext_t *ucp, const void *t, uint64_t id, void (*entry)(void))
{
  ucp->uc_mcontext.regs[20] = (uintptr_t)t;
  ucp->uc_mcontext.regs[21] = id;
  ucp->uc_mcontext.regs[22] = (uintptr_t)entry;
}

/* A copy of a saved context, made for unwinding it. The floating-point
 * state is inside the context (uc_mcontext.__reserved), not pointed to;
 * but glibc's swapcontext (sysdeps/unix/sysv/linux/aarch64/swapcontext.S,
 * since 2.34) saves as pc and x30 a stub of its own, which returns to the
 * caller's address it saved in x1, so that a resumed context goes back by
 * RET: the caller's address is put back where an unwinder looks for it.
 * The stub is known by its function (getcontext saves the caller's own
 * address as pc and x30). */
static inline void tl__uc_copied(ucontext_t *uc)
{
  Dl_info info;
  mcontext_t *m = &uc->uc_mcontext;
  if (m->pc == m->regs[30] && dladdr((void *)(uintptr_t)m->pc, &info) != 0 && info.dli_sname != NULL &&
      (strcmp(info.dli_sname, "swapcontext") == 0 || strcmp(info.dli_sname, "__swapcontext") == 0))
    m->pc = m->regs[30] = m->regs[1];
}

/* The instruction of tl__sp (internal.h). */
#define TL__SP_ASM "mov %0, sp"

/* The pause of a spinning wait (what Linux's cpu_relax does on arm64). */
static inline void tl__cpu_relax(void)
{
  __asm__ volatile("yield" ::: "memory");
}

/* Other threads see this thread's earlier stores before its later ones:
 * aarch64 may reorder stores, so this is a barrier (a release fence). */
static inline void tl__store_order(void)
{
  __atomic_thread_fence(__ATOMIC_RELEASE);
}

/* The trace's cycle counter (traceclock.c): the generic timer's virtual
 * count, which the architecture makes constant-rate and common to all
 * cores; the kernel's clock source that uses it is arch_sys_counter. */
#define TL__COUNTER_CLOCKSOURCE "arch_sys_counter"

static inline uint64_t tl__counter_read(void)
{
  uint64_t v;
  __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
  return v;
}

static inline int tl__counter_invariant(void)
{
  return 1;
}

/* The stack pointer a jmp_buf restores. glibc keeps it mangled in slot
 * JB_SP, 13, of __jmpbuf (sysdeps/aarch64/jmpbuf-offsets.h): PTR_MANGLE is
 * an xor with the pointer guard, no rotation, and the guard is not in the
 * TCB but in ld.so's variable __pointer_chk_guard, which libc reads
 * (sysdeps/unix/sysv/linux/aarch64/pointer_guard.h; sysdep.h before glibc
 * 2.37). It is a GLIBC_PRIVATE symbol, so tools.c looks it up with dlsym
 * once, at load, rather than linking to it; guard is NULL when it is not
 * found, and the answer is then 0 (no task's stack). */
#define TL__JMP_GUARD_SYMBOL "__pointer_chk_guard"

static inline uintptr_t tl__jmp_sp(const struct __jmp_buf_tag *env, const uintptr_t *guard)
{
  return guard != NULL ? (uintptr_t)env->__jmpbuf[13] ^ *guard : 0;
}

#else
#error "tasklocal supports glibc on x86_64 and aarch64 (64-bit) only: 32-bit targets (i386, x32, arm, aarch64 ILP32) and other architectures are refused"
#endif

#endif /* TL_ARCH_H */
