/* The parts of the interposition that must be written in assembly.
 *
 * swapcontext and setcontext: SPEC 2.2 forbids any frame of ours on the
 * switching task's stack across the real switch. Stack-copying coroutine
 * libraries save only the stack above the frame that yields; a wrapper frame
 * below it would be overwritten by the next coroutine on the shared stack.
 * So the wrappers call the bookkeeping in C, pop everything they pushed and
 * jump (not call) to the real function: the real switch runs exactly as if
 * the program had called it directly.
 *
 * The trampoline: every made context starts here. glibc's makecontext
 * (sysdeps/unix/sysv/linux/x86_64/makecontext.c) leaves the arguments in
 * registers and on the new stack, the address of __start_context at (%rsp),
 * and %rbx pointing at the saved uc_link. tl__task_make stored the task in
 * %r12, its id in %r13 and the program's function in %r14 of the context,
 * and setcontext/swapcontext restore those callee-saved registers. The
 * trampoline keeps glibc's return address in %r15, tells the tracker the
 * task started, and jumps to the program's function with the arguments
 * untouched, having replaced the return address by tl__trampoline_return.
 * The program's function preserves %r12-%r15 and %rbx, as the ABI demands,
 * so when it returns we still know which task finished and where glibc
 * wanted to go next (__start_context, which switches to uc_link or exits).
 */

#ifdef __CET__
#include <cet.h>
#endif

        .text

        .globl  swapcontext
        .type   swapcontext, @function
        .p2align 4
swapcontext:
        .cfi_startproc
        endbr64
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        call    tl__before_swap
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %rsi
        .cfi_adjust_cfa_offset -8
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        jmp     *tl__real_swapcontext(%rip)
        .cfi_endproc
        .size   swapcontext, .-swapcontext

/* Our own addresses, whatever definition the program's references bind to
 * (when the library is dlopened locally, "swapcontext" means libc's). */
        .globl  tl__own_swapcontext
        .hidden tl__own_swapcontext
        .set    tl__own_swapcontext, swapcontext

        .globl  setcontext
        .type   setcontext, @function
        .p2align 4
setcontext:
        .cfi_startproc
        endbr64
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        call    tl__before_set
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        jmp     *tl__real_setcontext(%rip)
        .cfi_endproc
        .size   setcontext, .-setcontext

        .globl  tl__own_setcontext
        .hidden tl__own_setcontext
        .set    tl__own_setcontext, setcontext

        .globl  tl__trampoline
        .hidden tl__trampoline
        .type   tl__trampoline, @function
        .p2align 4
tl__trampoline:
        .cfi_startproc
        .cfi_undefined rip
        endbr64
        movq    (%rsp), %r15
        pushq   %rdi
        pushq   %rsi
        pushq   %rdx
        pushq   %rcx
        pushq   %r8
        pushq   %r9
        subq    $8, %rsp
        movq    %r12, %rdi
        movq    %r13, %rsi
        call    tl__task_begin
        addq    $8, %rsp
        popq    %r9
        popq    %r8
        popq    %rcx
        popq    %rdx
        popq    %rsi
        popq    %rdi
        leaq    tl__trampoline_return(%rip), %rax
        movq    %rax, (%rsp)
        jmp     *%r14
        .cfi_endproc
        .size   tl__trampoline, .-tl__trampoline

/* Reached by the return of the program's function. The stack is 16-byte
 * aligned here (glibc aligned the entry stack to 8 mod 16). */
        .type   tl__trampoline_return, @function
        .p2align 4
tl__trampoline_return:
        .cfi_startproc
        .cfi_undefined rip
        endbr64
        movq    %r12, %rdi
        movq    %r13, %rsi
        movq    %rbx, %rdx
        call    tl__task_end
        jmp     *%r15
        .cfi_endproc
        .size   tl__trampoline_return, .-tl__trampoline_return

/* The end of the trampoline's code: backtraces stop at addresses between
 * tl__trampoline and here. */
        .globl  tl__trampoline_end
        .hidden tl__trampoline_end
tl__trampoline_end:

/* void tl__forward_makecontext(void *real, ucontext_t *ucp, void (*fn)(void),
 *                              int argc, const uint64_t *args)
 * Calls the variadic real makecontext(ucp, fn, argc, args[0..argc-1]) with
 * any number of arguments, each passed as the 64-bit value glibc reads. */
        .globl  tl__forward_makecontext
        .hidden tl__forward_makecontext
        .type   tl__forward_makecontext, @function
        .p2align 4
tl__forward_makecontext:
        .cfi_startproc
        endbr64
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_offset rbp, -16
        movq    %rsp, %rbp
        .cfi_def_cfa_register rbp
        pushq   %rbx
        pushq   %r12
        .cfi_offset rbx, -24
        .cfi_offset r12, -32
        movq    %rdi, %r11              /* real */
        movq    %r8, %r12               /* args */
        movslq  %ecx, %rbx              /* argc */
        /* Arguments 3 and up (args[3..argc-1]) go on the stack, the first
         * one lowest; keep %rsp 16-byte aligned at the call. */
        movq    %rbx, %rax
        subq    $3, %rax
        jle     2f
        leaq    8(,%rax,8), %r10
        andq    $-16, %r10
        subq    %r10, %rsp
        xorq    %r10, %r10
1:      movq    24(%r12,%r10,8), %r9
        movq    %r9, (%rsp,%r10,8)
        incq    %r10
        cmpq    %rax, %r10
        jl      1b
2:      movq    %rsi, %rdi              /* ucp */
        movq    %rdx, %rsi              /* fn */
        movq    %rbx, %rdx              /* argc */
        xorl    %ecx, %ecx
        xorl    %r8d, %r8d
        xorl    %r9d, %r9d
        testq   %rbx, %rbx
        jle     3f
        movq    0(%r12), %rcx
        cmpq    $1, %rbx
        je      3f
        movq    8(%r12), %r8
        cmpq    $2, %rbx
        je      3f
        movq    16(%r12), %r9
3:      xorl    %eax, %eax
        call    *%r11
        leaq    -16(%rbp), %rsp
        popq    %r12
        popq    %rbx
        popq    %rbp
        .cfi_def_cfa rsp, 8
        ret
        .cfi_endproc
        .size   tl__forward_makecontext, .-tl__forward_makecontext

        .section .note.GNU-stack,"",@progbits
