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

#define TL__ARCH "x86_64"

/* The stack pointer saved in a context. */
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

#define TL__ARCH "aarch64"

/* The stack pointer saved in a context. */
#define TL__UC_SP(ucp) ((uintptr_t)(ucp)->uc_mcontext.sp)

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

/* A copy of a saved context needs no fixing: the floating-point state is
 * inside the context (uc_mcontext.__reserved), not pointed to. */
static inline void tl__uc_copied(ucontext_t *uc)
{
  (void)uc;
}

/* The instruction of tl__sp (internal.h). */
#define TL__SP_ASM "mov %0, sp"

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
