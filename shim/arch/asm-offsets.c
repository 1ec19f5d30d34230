/* The numbers that arch/<arch>.S uses, taken from the C structs.
 *
 * The build compiles this file to assembly (-S) and never links it: each
 * DEFINE leaves a line "->NAME value" in the output, which the Makefile
 * turns into "#define NAME value" in asm-offsets.h, the header the .S file
 * includes. This is how Linux (arch/x86/kernel/asm-offsets.c) and glibc
 * (tcb-offsets.sym) keep their assembly in step with their structs: a field
 * that moves changes the header, and a field whose width or neighbour the
 * assembly relies on stops the build here, with the reason.
 *
 * The assembly follows C functions step by step (see doc/tracking.md):
 * swapcontext's inline switch follows tl__before_swap and announce
 * (interpose.c), and x86_64's makecontext loop follows tl__task_remake
 * (task/make.c). check_tracking's fast_path_agrees test drives both with the
 * same inputs and compares what they decide.
 */
#include "../internal.h"
#include "../keys.h"
#include "../options.h"
#include "../thread.h"
#include "../tools.h"
#include "../trace.h"
#include "../tasktls.h"

#include <stddef.h>
#include <ucontext.h>

#define DEFINE(name, value) __asm__ volatile("\n.ascii \"->" #name " %0\"" : : "n"((long)(value)))
#define FIELD_SIZE(type, field) sizeof(((type *)0)->field)

/* Widths the assembly loads and stores with: 32-bit for the ints, 8-bit for
 * the task's state bytes, 64-bit for the rest. */
_Static_assert(FIELD_SIZE(struct tl__thread, in_switch) == 4, "the assembly stores in_switch as 32 bits");
_Static_assert(FIELD_SIZE(struct tl__task, ran_on) == 4, "the assembly stores ran_on as 32 bits");
_Static_assert(FIELD_SIZE(struct tl__task, state) == 1 && FIELD_SIZE(struct tl__task, flags) == 1 &&
                   FIELD_SIZE(struct tl__task, mapped) == 1 && FIELD_SIZE(struct tl__task, in_tree) == 1,
               "the assembly reads state, flags, mapped and in_tree as bytes");
_Static_assert(FIELD_SIZE(struct tl__options, leaks) == 4 && FIELD_SIZE(struct tl__options, backtrace) == 4 &&
                   sizeof tl__inheriting == 4 && sizeof tl__fibers_on == 4 && sizeof tl__trace_on == 4 &&
                   sizeof tl__tasktls_on == 4,
               "the assembly reads the options and the switches as 32-bit ints");
/* Neighbours the assembly reads as one: the stack bounds as a pair
 * (aarch64's ldp), a hint's task and id as a pair, and on x86_64 the four
 * state bytes as one word and nended and uncounted as one word. */
_Static_assert(offsetof(struct tl__task, hi) == offsetof(struct tl__task, lo) + 8, "lo and hi are a pair");
_Static_assert(offsetof(struct tl__hint, id) == offsetof(struct tl__hint, task) + 8, "a hint's task and id are a pair");
_Static_assert(sizeof(struct tl__hint) == 24, "the assembly indexes the hints by 3 * 8 bytes");
_Static_assert(offsetof(struct tl__task, flags) == offsetof(struct tl__task, state) + 1 &&
                   offsetof(struct tl__task, mapped) == offsetof(struct tl__task, state) + 2 &&
                   offsetof(struct tl__task, in_tree) == offsetof(struct tl__task, state) + 3,
               "state, flags, mapped and in_tree are one word");
_Static_assert(FIELD_SIZE(struct tl__thread, nended) == 4 && FIELD_SIZE(struct tl__thread, uncounted) == 4 &&
                   offsetof(struct tl__thread, uncounted) == offsetof(struct tl__thread, nended) + 4,
               "nended and uncounted are one word");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the words above are little-endian");
_Static_assert((TL__F_MADE & (TL__F_MADE - 1)) == 0, "TL__F_MADE is one bit");

void tl__asm_offsets(void);
void tl__asm_offsets(void)
{
  /* struct tl__thread */
  DEFINE(TH_CURRENT, offsetof(struct tl__thread, current));
  DEFINE(TH_PREV, offsetof(struct tl__thread, prev));
  DEFINE(TH_IN_SWITCH, offsetof(struct tl__thread, in_switch));
  DEFINE(TH_SWITCHES, offsetof(struct tl__thread, switches));
  DEFINE(TH_HINT, offsetof(struct tl__thread, hint));
  DEFINE(TH_NENDED, offsetof(struct tl__thread, nended));
  DEFINE(TH_MADE_HERE, offsetof(struct tl__thread, made_here));
  DEFINE(TH_RELEASED_HERE, offsetof(struct tl__thread, released_here));
  DEFINE(TH_ID_NEXT, offsetof(struct tl__thread, id_next));
  DEFINE(TH_ID_END, offsetof(struct tl__thread, id_end));
  DEFINE(HINT_CTX, offsetof(struct tl__hint, ctx));
  DEFINE(HINT_TASK, offsetof(struct tl__hint, task));
  DEFINE(HINT_ID, offsetof(struct tl__hint, id));

  /* struct tl__task */
  DEFINE(T_LO, offsetof(struct tl__task, lo));
  DEFINE(T_HI, offsetof(struct tl__task, hi));
  DEFINE(T_VT, offsetof(struct tl__task, vt));
  DEFINE(T_ID, offsetof(struct tl__task, id));
  DEFINE(T_CTX, offsetof(struct tl__task, ctx));
  DEFINE(T_ENTRY, offsetof(struct tl__task, entry));
  DEFINE(T_PARENT, offsetof(struct tl__task, parent));
  DEFINE(T_STATE, offsetof(struct tl__task, state));
  DEFINE(T_FLAGS, offsetof(struct tl__task, flags));
  DEFINE(T_MAPPED, offsetof(struct tl__task, mapped));
  DEFINE(T_RAN_ON, offsetof(struct tl__task, ran_on));
  DEFINE(T_X, offsetof(struct tl__task, x));
  DEFINE(F_MADE, TL__F_MADE);
  DEFINE(F_MADE_BIT, __builtin_ctz(TL__F_MADE));
  DEFINE(S_RUNNING, TL__RUNNING);
  DEFINE(S_SUSPENDED, TL__SUSPENDED);
  DEFINE(S_FINISHED, TL__FINISHED);
  /* state, flags, mapped and in_tree read as one word: a never-started
   * task (TL__NEW), made where it is (MADE, without STARTED, ROOT or VG),
   * mapped, and in the stack tree unshadowed (TL__TREE_IN). */
  DEFINE(T_STATE_WORD_MASK, 0xffu | (unsigned)(TL__F_MADE | TL__F_STARTED | TL__F_ROOT | TL__F_VG) << 8 |
                                0xffu << 16 | 0xffu << 24);
  DEFINE(T_STATE_WORD_BARE, (unsigned)TL__NEW | (unsigned)TL__F_MADE << 8 | 1u << 16 | TL__TREE_IN << 24);

  /* struct tl__rview, struct tl__options */
  DEFINE(VIEW_SPAN, offsetof(struct tl__rview, span));
  DEFINE(OPT_LEAKS, offsetof(struct tl__options, leaks));
  DEFINE(OPT_BACKTRACE, offsetof(struct tl__options, backtrace));

  /* ucontext_t: the saved stack pointer, the stack, and the registers
   * that carry a new task to the trampoline (arch.h, tl__uc_set_task). */
  DEFINE(UC_SS_SP, offsetof(ucontext_t, uc_stack.ss_sp));
  DEFINE(UC_SS_SIZE, offsetof(ucontext_t, uc_stack.ss_size));
#if defined(__x86_64__)
  DEFINE(UC_SP, offsetof(ucontext_t, uc_mcontext.gregs[REG_RSP]));
  DEFINE(UC_R12, offsetof(ucontext_t, uc_mcontext.gregs[REG_R12]));
  DEFINE(UC_R13, offsetof(ucontext_t, uc_mcontext.gregs[REG_R13]));
  DEFINE(UC_R14, offsetof(ucontext_t, uc_mcontext.gregs[REG_R14]));
#elif defined(__aarch64__)
  DEFINE(UC_SP, offsetof(ucontext_t, uc_mcontext.sp));
#endif
}
