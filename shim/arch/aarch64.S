/* The parts of the interposition that must be written in assembly: aarch64
 * (AAPCS64, glibc). The x86_64 version, arch/x86_64.S, explains the
 * design; this file does the same steps with aarch64's registers.
 *
 * swapcontext and setcontext: no frame of ours may stay on the
 * switching task's stack across the real switch (doc/tracking.md). The wrappers call the
 * bookkeeping in C, restore sp, x29 and x30 as the program passed them
 * and branch (b, br: never bl) to the real function, which then saves the
 * program's own return address (x30) and stack pointer, exactly as if the
 * program had called it directly. The common swapcontext is done inline,
 * without touching the stack at all.
 *
 * The trampoline: every made context starts here. glibc's makecontext
 * (sysdeps/unix/sysv/linux/aarch64/makecontext.c) puts the first 8
 * arguments in x0-x7 and the others on the new stack at sp, uc_link in
 * x19, 0 in x29 and the address of __startcontext in x30; setcontext
 * (setcontext.S) restores x18-x30 and sp from the context and branches to
 * pc with br x16. tl__task_make stored the task in x20, its id in x21 and
 * the program's function in x22 of the context (arch.h, tl__uc_set_task).
 * The trampoline keeps glibc's x30 in x23, tells the tracker the task
 * started, and calls the program's function with the arguments untouched
 * (blr: x0-x7 and the stack as glibc left them). The function preserves
 * x19-x23, as the ABI demands, so when it returns we still know which
 * task finished, where glibc keeps uc_link, and where glibc wanted to go
 * next: __startcontext, which calls setcontext(uc_link), or exit(0) when
 * it is NULL. makecontext passes any number of arguments this way: the
 * ninth and later ones are on the stack where an AAPCS64 callee looks for
 * them, since the trampoline's stack pointer at the call is glibc's.
 *
 * Branch protection: built with -mbranch-protection (BTI, return-address
 * signing), every function here that is reached by an indirect branch
 * starts with a BTI landing pad (the wrappers through the program's PLT
 * with br x16/x17; the trampoline from glibc's br x16), every branch into
 * the program or into glibc is bl/blr or br x16, which BTI's "c" pads
 * accept, and a saved x30 is signed while it is on the stack; the object
 * then carries the GNU property note that says so, or the linker would
 * drop the library's BTI marking. The same source builds without it.
 */

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT == 1
#define BTI_C hint #34                          /* bti c */
#define PROPERTY_BTI 1
#else
#define BTI_C
#define PROPERTY_BTI 0
#endif

/* Return-address signing of the x30 saved by the slow paths, with the
 * key the compiler uses (bit 1 of __ARM_FEATURE_PAC_DEFAULT: the B key). */
#if defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 2)
#define SIGN_LR hint #27; .cfi_negate_ra_state  /* pacibsp */
#define AUTH_LR hint #31; .cfi_negate_ra_state  /* autibsp */
#define PROPERTY_PAC 2
#elif defined(__ARM_FEATURE_PAC_DEFAULT) && (__ARM_FEATURE_PAC_DEFAULT & 1)
#define SIGN_LR hint #25; .cfi_negate_ra_state  /* paciasp */
#define AUTH_LR hint #29; .cfi_negate_ra_state  /* autiasp */
#define PROPERTY_PAC 2
#else
#define SIGN_LR
#define AUTH_LR
#define PROPERTY_PAC 0
#endif

        .text

/* The offsets of struct tl__thread, struct tl__task, struct tl__rview
 * and ucontext_t that the inline switch uses, and the flag and state
 * values, come from asm-offsets.h, which the build generates from the C
 * structs (arch/asm-offsets.c). */
#include "asm-offsets.h"

/* reg = the value of the hidden variable sym of this library. */
        .macro  LOAD_LOCAL reg, sym
        adrp    \reg, \sym
        ldr     \reg, [\reg, :lo12:\sym]
        .endm

/* ThreadSanitizer's pending fiber switch (tools.c, tl__fibers_commit),
 * made once the C bookkeeping has returned, right before the real switch;
 * only when a sanitizer is in the process. Clobbers x16 and the
 * registers a call may clobber. */
        .macro  FIBERS_COMMIT
        adrp    x16, tl__fibers_on
        ldr     w16, [x16, :lo12:tl__fibers_on]
        cbz     w16, .Lno_commit\@
        bl      tl__fibers_commit
.Lno_commit\@:
        .endm

/* swapcontext's common case, the switch of every scheduler loop, is done
 * here without a call, in the scratch registers x9-x17 only: the running
 * task is the tracked one (its stack holds the stack pointer), it saves
 * itself where it did the last time, and the thread's hints know the
 * target (tl__predict_hint in internal.h, which this follows step by
 * step). Anything else goes to tl__before_swap in C, and so does every
 * switch while a trace is recorded (trace.c). x0 (oucp), x1 (ucp),
 * x30 and sp reach the real swapcontext as the program passed them. */
        .globl  swapcontext
        .type   swapcontext, %function
        .p2align 4
swapcontext:
        .cfi_startproc
        BTI_C
        adrp    x9, :gottprel:tl__tls
        ldr     x9, [x9, #:gottprel_lo12:tl__tls]
        mrs     x10, tpidr_el0
        ldr     x9, [x10, x9]                   /* th */
        cmp     x9, #1                          /* no state yet, or TL__BUSY */
        b.ls    .Lswap_slow
#ifndef TL_NO_TRACE
        adrp    x11, tl__trace_on               /* tracing: the C path records the switch */
        ldr     w11, [x11, :lo12:tl__trace_on]
        cbnz    w11, .Lswap_slow
#endif
        adrp    x11, tl__tasktls_on             /* thread-local state per task: the C path swaps it */
        ldr     w11, [x11, :lo12:tl__tasktls_on]
        cbnz    w11, .Lswap_slow
        cbz     x0, .Lswap_slow
        cbz     x1, .Lswap_slow
        /* c = th->current, running here: sp - lo < hi - lo. */
        ldr     x11, [x9, #TH_CURRENT]
        ldp     x12, x13, [x11, #T_LO]
        mov     x14, sp
        sub     x14, x14, x12
        sub     x13, x13, x12
        cmp     x14, x13
        b.hs    .Lswap_slow
        /* It saves itself at oucp again: c->ctx == oucp, mapped, not MADE. */
        ldr     x12, [x11, #T_CTX]
        cmp     x12, x0
        b.ne    .Lswap_slow
        ldrb    w12, [x11, #T_FLAGS]
        tbnz    w12, #F_MADE_BIT, .Lswap_slow
        ldrb    w12, [x11, #T_MAPPED]
        cbz     w12, .Lswap_slow
        /* The hint for ucp, in either of its two ways (tl__hint_index):
         * entry = th + TH_HINT + 24 * (((ucp >> 4) * K) >> 61). */
        lsr     x12, x1, #4
        movz    x13, #0x7c15
        movk    x13, #0x7f4a, lsl #16
        movk    x13, #0x79b9, lsl #32
        movk    x13, #0x9e37, lsl #48
        mul     x12, x12, x13
        lsr     x12, x12, #61
        add     x13, x12, x12, lsl #1
        add     x13, x9, x13, lsl #3
        ldr     x14, [x13, #TH_HINT + HINT_CTX]
        cmp     x14, x1
        b.eq    1f
        eor     x12, x12, #1
        add     x13, x12, x12, lsl #1
        add     x13, x9, x13, lsl #3
        ldr     x14, [x13, #TH_HINT + HINT_CTX]
        cmp     x14, x1
        b.ne    .Lswap_slow
        /* t = the hint's task: same id, still at ucp, mapped, unfinished,
         * and its stack holds the stack pointer saved in ucp. */
1:      ldp     x15, x14, [x13, #TH_HINT + HINT_TASK] /* task, id */
        cbz     x15, .Lswap_slow
        ldr     x12, [x15, #T_ID]
        cmp     x12, x14
        b.ne    .Lswap_slow
        ldr     x12, [x15, #T_CTX]
        cmp     x12, x1
        b.ne    .Lswap_slow
        ldrb    w12, [x15, #T_MAPPED]
        cbz     w12, .Lswap_slow
        ldrb    w12, [x15, #T_STATE]
        cmp     w12, #S_FINISHED
        b.eq    .Lswap_slow
        ldr     x14, [x1, #UC_SP]
        sub     x14, x14, #1                    /* the byte below it (TL__UC_SP, arch.h) */
        ldp     x12, x13, [x15, #T_LO]
        sub     x14, x14, x12
        sub     x13, x13, x12
        cmp     x14, x13
        b.hs    .Lswap_slow
        /* The announcement, in the order of announce (interpose.c). */
        cmp     x11, x15
        b.eq    2f
        adrp    x12, tl__fibers_on
        ldr     w12, [x12, :lo12:tl__fibers_on]
        cbnz    w12, .Lswap_slow
        mov     w12, #S_SUSPENDED
        strb    w12, [x11, #T_STATE]
        str     w9, [x11, #T_RAN_ON]
        mov     w12, #S_RUNNING
        strb    w12, [x15, #T_STATE]
2:      str     x11, [x9, #TH_PREV]
        mov     w12, #1
        str     w12, [x9, #TH_IN_SWITCH]
        str     x15, [x9, #TH_CURRENT]
        adrp    x12, :gottprel:tl__view
        ldr     x12, [x12, #:gottprel_lo12:tl__view]
        add     x12, x12, x10
        str     xzr, [x12, #VIEW_SPAN]
        ldr     x12, [x9, #TH_SWITCHES]
        add     x12, x12, #1
        str     x12, [x9, #TH_SWITCHES]
        LOAD_LOCAL x16, tl__real_swapcontext
        br      x16
.Lswap_slow:
        SIGN_LR
        stp     x29, x30, [sp, #-32]!
        .cfi_adjust_cfa_offset 32
        .cfi_rel_offset x29, 0
        .cfi_rel_offset x30, 8
        mov     x29, sp
        stp     x0, x1, [sp, #16]
        bl      tl__before_swap
        FIBERS_COMMIT
        ldp     x0, x1, [sp, #16]
        ldp     x29, x30, [sp], #32
        .cfi_adjust_cfa_offset -32
        .cfi_restore x29
        .cfi_restore x30
        AUTH_LR
        LOAD_LOCAL x16, tl__real_swapcontext
        br      x16
        .cfi_endproc
        .size   swapcontext, .-swapcontext

        .globl  setcontext
        .type   setcontext, %function
        .p2align 4
setcontext:
        .cfi_startproc
        BTI_C
        SIGN_LR
        stp     x29, x30, [sp, #-32]!
        .cfi_adjust_cfa_offset 32
        .cfi_rel_offset x29, 0
        .cfi_rel_offset x30, 8
        mov     x29, sp
        str     x0, [sp, #16]
        bl      tl__before_set
        FIBERS_COMMIT
        ldr     x0, [sp, #16]
        ldp     x29, x30, [sp], #32
        .cfi_adjust_cfa_offset -32
        .cfi_restore x29
        .cfi_restore x30
        AUTH_LR
        LOAD_LOCAL x16, tl__real_setcontext
        br      x16
        .cfi_endproc
        .size   setcontext, .-setcontext


/* x30 is undefined in the unwinding rules: a backtrace ends here, as at
 * the bottom of a thread (backtrace.c also stops at these addresses). */
        .globl  tl__trampoline
        .hidden tl__trampoline
        .type   tl__trampoline, %function
        .p2align 4
tl__trampoline:
        .cfi_startproc
        .cfi_undefined x30
        BTI_C
        mov     x23, x30                        /* __startcontext */
        sub     sp, sp, #64
        .cfi_adjust_cfa_offset 64
        stp     x0, x1, [sp]
        stp     x2, x3, [sp, #16]
        stp     x4, x5, [sp, #32]
        stp     x6, x7, [sp, #48]
        mov     x0, x20
        mov     x1, x21
        bl      tl__task_begin
        FIBERS_COMMIT
        ldp     x0, x1, [sp]
        ldp     x2, x3, [sp, #16]
        ldp     x4, x5, [sp, #32]
        ldp     x6, x7, [sp, #48]
        add     sp, sp, #64
        .cfi_adjust_cfa_offset -64
        blr     x22
        /* The program's function returned. tl__task_end reads uc_link
         * through a pointer to where glibc keeps it: x19, stored here. */
        str     x19, [sp, #-16]!
        .cfi_adjust_cfa_offset 16
        mov     x0, x20
        mov     x1, x21
        mov     x2, sp
        bl      tl__task_end
        FIBERS_COMMIT
        add     sp, sp, #16
        .cfi_adjust_cfa_offset -16
        mov     x30, x23
        ret
        .cfi_endproc
        .size   tl__trampoline, .-tl__trampoline

/* The end of the trampoline's code: backtraces stop at addresses between
 * tl__trampoline and here. */
        .globl  tl__trampoline_end
        .hidden tl__trampoline_end
tl__trampoline_end:

/* makecontext(ucp, func, argc, ...): tl__before_make does the bookkeeping
 * and says which function the context is to start (tl__trampoline for a
 * tracked task), and the real makecontext gets the call exactly as the
 * program made it, with only that function replaced: the variadic
 * arguments stay in x3-x7 and on the caller's stack, however many there
 * are, and glibc reads each as a 64-bit value (va_arg of uint64_t). The
 * vector registers are not kept: glibc's makecontext reads no floating
 * point argument. */
        .globl  makecontext
        .type   makecontext, %function
        .p2align 4
makecontext:
        .cfi_startproc
        BTI_C
        SIGN_LR
        stp     x29, x30, [sp, #-80]!
        .cfi_adjust_cfa_offset 80
        .cfi_rel_offset x29, 0
        .cfi_rel_offset x30, 8
        mov     x29, sp
        stp     x0, x1, [sp, #16]
        stp     x2, x3, [sp, #32]
        stp     x4, x5, [sp, #48]
        stp     x6, x7, [sp, #64]
        bl      tl__before_make
        mov     x1, x0
        ldr     x0, [sp, #16]
        ldp     x2, x3, [sp, #32]
        ldp     x4, x5, [sp, #48]
        ldp     x6, x7, [sp, #64]
        ldp     x29, x30, [sp], #80
        .cfi_adjust_cfa_offset -80
        .cfi_restore x29
        .cfi_restore x30
        AUTH_LR
        LOAD_LOCAL x16, tl__real_makecontext
        cbz     x16, 1f
        br      x16
        /* No libc makecontext was found (tl__init said so): the call does
         * nothing, as the only safe answer. */
1:      ret
        .cfi_endproc
        .size   makecontext, .-makecontext


        .section .note.GNU-stack,"",%progbits

/* GNU_PROPERTY_AARCH64_FEATURE_1_AND: this object has BTI landing pads
 * (bit 0) and signs return addresses (bit 1), as the compiler marks its
 * objects under -mbranch-protection; the linker keeps a property only
 * when every object has it. */
#if PROPERTY_BTI || PROPERTY_PAC
        .pushsection .note.gnu.property, "a"
        .p2align 3
        .word   4                               /* name size: "GNU\0" */
        .word   16                              /* descriptor size */
        .word   5                               /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .word   0xc0000000                      /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
        .word   4                               /* its size */
        .word   PROPERTY_BTI | PROPERTY_PAC
        .word   0                               /* padding to 8 bytes */
        .popsection
#endif
