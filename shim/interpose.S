/* The parts of the interposition that must be written in assembly.
 *
 * makecontext: see its definition below; it is here so that its variadic
 * arguments reach the real function as the program passed them.
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

/* makecontext(ucp, func, argc, ...): tl__before_make does the bookkeeping
 * and says which function the context is to start (tl__trampoline for a
 * tracked task), and the real makecontext gets the call exactly as the
 * program made it, with only that function replaced: the variadic
 * arguments stay in their registers and on the caller's stack, however
 * many there are, and glibc reads each as the 64-bit value it always
 * reads (sysdeps/unix/sysv/linux/x86_64/makecontext.c, va_arg of greg_t).
 * %rax is saved too: it holds the number of vector registers of the
 * variadic call, which the real function's va_start may read. */
        .globl  makecontext
        .type   makecontext, @function
        .p2align 4
makecontext:
        .cfi_startproc
        endbr64
        pushq   %rax
        .cfi_adjust_cfa_offset 8
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        pushq   %rdx
        .cfi_adjust_cfa_offset 8
        pushq   %rcx
        .cfi_adjust_cfa_offset 8
        pushq   %r8
        .cfi_adjust_cfa_offset 8
        pushq   %r9
        .cfi_adjust_cfa_offset 8
        call    tl__before_make
        movq    %rax, %r10
        popq    %r9
        .cfi_adjust_cfa_offset -8
        popq    %r8
        .cfi_adjust_cfa_offset -8
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        popq    %rsi
        .cfi_adjust_cfa_offset -8
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        popq    %rax
        .cfi_adjust_cfa_offset -8
        movq    %r10, %rsi
        movq    tl__real_makecontext(%rip), %r11
        testq   %r11, %r11
        jz      1f
        jmp     *%r11
        /* No libc makecontext was found (tl__init said so): the call does
         * nothing, as the only safe answer. */
1:      ret
        .cfi_endproc
        .size   makecontext, .-makecontext

        .globl  tl__own_makecontext
        .hidden tl__own_makecontext
        .set    tl__own_makecontext, makecontext

        .section .note.GNU-stack,"",@progbits
