/* The parts of the interposition that must be written in assembly.
 *
 * makecontext: see its definition below; it is here so that its variadic
 * arguments reach the real function as the program passed them.
 *
 * swapcontext and setcontext: no frame of ours may stay on the
 * switching task's stack across the real switch (doc/tracking.md). Stack-copying coroutine
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

/* swapcontext's common case, the switch of every scheduler loop, is done
 * here without a call: the running task is the tracked one (its stack
 * holds the stack pointer), it saves itself where it did the last time,
 * and the thread's hints know the target (tl__predict_hint in internal.h,
 * which this follows step by step). Anything else goes to tl__before_swap
 * in C, and so does every switch while a trace is recorded (trace.c). The
 * offsets of struct tl__thread, struct tl__task, struct tl__rview, struct
 * tl__options and ucontext_t, and the flag and state values, come from
 * asm-offsets.h, which the build generates from the C structs
 * (arch/asm-offsets.c). */
#include "asm-offsets.h"

/* ThreadSanitizer's pending fiber switch (tools.c, tl__fibers_commit),
 * made once the C bookkeeping has returned, right before the real switch;
 * only when a sanitizer is in the process. The stack must be aligned for
 * a call here. */
        .macro  FIBERS_COMMIT
        cmpl    $0, tl__fibers_on(%rip)
        je      .Lno_commit\@
        call    tl__fibers_commit
.Lno_commit\@:
        .endm

/* Jumps to miss unless the stack pointer sp (a register or a memory
 * operand) lies in the stack of the task at t: sp - lo < hi - lo, as
 * tl__in_stack. a and b are scratch. */
        .macro  IN_STACK t, sp, a, b, miss
        movq    \sp, \a
        subq    T_LO(\t), \a
        movq    T_HI(\t), \b
        subq    T_LO(\t), \b
        cmpq    \b, \a
        jae     \miss
        .endm

/* tl__hint_slot: slot = the hint of thread th for the context ctx, in
 * either of its two ways (tl__hint_index), and task = its task, which
 * still has the hint's id and last saved itself at ctx; or a jump to
 * miss. idx is scratch. */
        .macro  HINT_SLOT th, ctx, idx, slot, task, miss
        movq    \ctx, \idx
        shrq    $4, \idx
        movabsq $0x9e3779b97f4a7c15, \slot
        imulq   \slot, \idx
        shrq    $61, \idx
        leaq    (\idx,\idx,2), \slot
        leaq    TH_HINT(\th,\slot,8), \slot
        cmpq    \ctx, HINT_CTX(\slot)
        je      .Lhint_way\@
        xorq    $1, \idx
        leaq    (\idx,\idx,2), \slot
        leaq    TH_HINT(\th,\slot,8), \slot
        cmpq    \ctx, HINT_CTX(\slot)
        jne     \miss
.Lhint_way\@:
        movq    HINT_TASK(\slot), \task
        testq   \task, \task
        jz      \miss
        movq    T_ID(\task), \idx
        cmpq    HINT_ID(\slot), \idx
        jne     \miss
        cmpq    \ctx, T_CTX(\task)
        jne     \miss
        .endm

        .globl  swapcontext
        .type   swapcontext, @function
        .p2align 4
swapcontext:
        .cfi_startproc
        endbr64
        movq    tl__tls@gottpoff(%rip), %rax
        movq    %fs:(%rax), %r8                 /* th */
        cmpq    $1, %r8                         /* no state yet, or TL__BUSY */
        jbe     .Lswap_slow
#ifndef TL_NO_TRACE
        cmpl    $0, tl__trace_on(%rip)          /* tracing: the C path records the switch */
        jne     .Lswap_slow
#endif
        cmpl    $0, tl__tasktls_on(%rip)        /* thread-local state per task: the C path swaps it */
        jne     .Lswap_slow
        testq   %rdi, %rdi
        jz      .Lswap_slow
        testq   %rsi, %rsi
        jz      .Lswap_slow
        /* c = th->current, running here. */
        movq    TH_CURRENT(%r8), %r9
        IN_STACK %r9, %rsp, %rax, %rcx, .Lswap_slow
        /* It saves itself at oucp again: c->ctx == oucp, mapped, not MADE. */
        cmpq    %rdi, T_CTX(%r9)
        jne     .Lswap_slow
        testb   $F_MADE, T_FLAGS(%r9)
        jnz     .Lswap_slow
        cmpb    $0, T_MAPPED(%r9)
        je      .Lswap_slow
        /* t = the task of ucp's hint, mapped, unfinished, and its stack
         * holds the stack pointer saved in ucp. */
        HINT_SLOT %r8, %rsi, %rax, %rcx, %r10, .Lswap_slow
        cmpb    $0, T_MAPPED(%r10)
        je      .Lswap_slow
        cmpb    $S_FINISHED, T_STATE(%r10)
        je      .Lswap_slow
        IN_STACK %r10, UC_SP(%rsi), %rax, %rcx, .Lswap_slow
        /* The announcement, in the order of announce_to (interpose.c). */
        cmpq    %r9, %r10
        je      2f
        cmpl    $0, tl__fibers_on(%rip)
        jne     .Lswap_slow
        movb    $S_SUSPENDED, T_STATE(%r9)
        movl    %r8d, T_RAN_ON(%r9)
        movb    $S_RUNNING, T_STATE(%r10)
2:      movq    %r9, TH_PREV(%r8)
        movl    $1, TH_IN_SWITCH(%r8)
        movq    %r10, TH_CURRENT(%r8)
        movq    tl__view@gottpoff(%rip), %rax
        movq    $0, %fs:VIEW_SPAN(%rax)
        addq    $1, TH_SWITCHES(%r8)
        jmp     *tl__real_swapcontext(%rip)
.Lswap_slow:
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        pushq   %rsi
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        call    tl__before_swap
        FIBERS_COMMIT
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %rsi
        .cfi_adjust_cfa_offset -8
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        jmp     *tl__real_swapcontext(%rip)
        .cfi_endproc
        .size   swapcontext, .-swapcontext

        .globl  setcontext
        .type   setcontext, @function
        .p2align 4
setcontext:
        .cfi_startproc
        endbr64
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        call    tl__before_set
        FIBERS_COMMIT
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        jmp     *tl__real_setcontext(%rip)
        .cfi_endproc
        .size   setcontext, .-setcontext


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
        FIBERS_COMMIT
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
        /* The padding up to tl__trampoline_return belongs to this
         * function and its unwinding rules: the program's function
         * returns to tl__trampoline_return, and an unwinder looks its
         * caller's rules up at the return address minus one, here. With
         * the return address undefined it ends the backtrace, as at
         * glibc's __start_context; outside any FDE, libunwind would guess
         * on from the frame pointer. */
        .p2align 4
        .cfi_endproc
        .size   tl__trampoline, .-tl__trampoline

/* Reached by the return of the program's function. The stack is 16-byte
 * aligned here (glibc aligned the entry stack to 8 mod 16). */
        .type   tl__trampoline_return, @function
tl__trampoline_return:
        .cfi_startproc
        .cfi_undefined rip
        endbr64
        movq    %r12, %rdi
        movq    %r13, %rsi
        movq    %rbx, %rdx
        call    tl__task_end
        FIBERS_COMMIT
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
        /* The loop of programs that make contexts and never run them: a
         * never-started task, holding nothing, abandoned in its own context
         * by a new one on the same stack. Done here without a call, as
         * tl__task_remake and unstarted_bare (task/make.c) do it, step by step;
         * anything else goes to C, with nothing changed. Only %r10 and
         * %r11 are free: %rax, %rcx and %rdx wait below the stack pointer
         * (the red zone: nothing is called on this way). */
        movq    tl__tls@gottpoff(%rip), %r10
        movq    %fs:(%r10), %r10                /* th */
        cmpq    $1, %r10                        /* no state yet, or TL__BUSY */
        jbe     .Lmake_slow
        /* The task-life loop (one task finished here and waiting: remake
         * in task/make.c) is C's: nended and uncounted, both 1, as one word. */
        movabsq $0x100000001, %r11
        cmpq    %r11, TH_NENDED(%r10)
        je      .Lmake_slow
        testq   %rdi, %rdi
        jz      .Lmake_slow
        testq   %rsi, %rsi
        jz      .Lmake_slow
        cmpq    $0, tl__real_makecontext(%rip)
        je      .Lmake_slow
        movl    tl__opt+OPT_LEAKS(%rip), %r11d
        orl     tl__opt+OPT_BACKTRACE(%rip), %r11d
        orl     tl__inheriting(%rip), %r11d
#ifndef TL_NO_TRACE
        orl     tl__trace_on(%rip), %r11d
#endif
        jnz     .Lmake_slow
        movq    %rax, -8(%rsp)
        movq    %rcx, -16(%rsp)
        movq    %rdx, -24(%rsp)
        /* c = th->current, running here; t = the task of ucp's hint, in
         * %rdx, the hint in %rcx. */
        movq    TH_CURRENT(%r10), %r11
        IN_STACK %r11, %rsp, %rax, %rcx, .Lmake_back
        HINT_SLOT %r10, %rdi, %rax, %rcx, %rdx, .Lmake_back
        /* unstarted_bare: not c, no extension, the same stack, the state
         * word, never ran on a thread, no values. */
        cmpq    %r11, %rdx
        je      .Lmake_back
        cmpq    $0, T_X(%rdx)
        jne     .Lmake_back
        movq    UC_SS_SP(%rdi), %rax
        cmpq    %rax, T_LO(%rdx)
        jne     .Lmake_back
        addq    UC_SS_SIZE(%rdi), %rax
        cmpq    %rax, T_HI(%rdx)
        jne     .Lmake_back
        movl    T_STATE(%rdx), %eax
        andl    $T_STATE_WORD_MASK, %eax
        cmpl    $T_STATE_WORD_BARE, %eax
        jne     .Lmake_back
        cmpl    $0, T_RAN_ON(%rdx)
        jne     .Lmake_back
        leaq    tl__empty_ent(%rip), %rax
        cmpq    %rax, T_VT(%rdx)
        jne     .Lmake_back
        /* The new id, from th's block and above t's (tl__registry_id_after;
         * a block to take is C's work). */
        movq    TH_ID_NEXT(%r10), %rax
        cmpq    TH_ID_END(%r10), %rax
        jae     .Lmake_back
        cmpq    T_ID(%rdx), %rax
        jbe     .Lmake_back
        /* Everything holds: the record is the new task's. */
        movq    T_ID(%r11), %r11                /* c's id, the parent */
        movq    %r11, T_PARENT(%rdx)
        leaq    1(%rax), %r11
        movq    %r11, TH_ID_NEXT(%r10)
        movq    %rax, T_ID(%rdx)
        movq    %rsi, T_ENTRY(%rdx)
        addq    $1, TH_RELEASED_HERE(%r10)
        addq    $1, TH_MADE_HERE(%r10)
        movq    %rax, HINT_ID(%rcx)             /* the hint names the record with its new id */
        movl    $0, TH_IN_SWITCH(%r10)          /* as tl__task_now: a switch is done */
        movq    %rdx, UC_R12(%rdi)              /* tl__uc_set_task */
        movq    %rax, UC_R13(%rdi)
        movq    %rsi, UC_R14(%rdi)
        movq    -8(%rsp), %rax
        movq    -16(%rsp), %rcx
        movq    -24(%rsp), %rdx
        leaq    tl__trampoline(%rip), %rsi
        jmp     *tl__real_makecontext(%rip)
.Lmake_back:
        movq    -8(%rsp), %rax
        movq    -16(%rsp), %rcx
        movq    -24(%rsp), %rdx
.Lmake_slow:
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


        .section .note.GNU-stack,"",@progbits
