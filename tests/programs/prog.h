/* The preamble that the unmodified ucontext programs of this directory
 * share. It is theirs, not tasklocal's: the programs include no tasklocal
 * header and link no tasklocal library, and run the same alone as under the
 * shim. Each program includes this header first, so that _GNU_SOURCE comes
 * before any system header, and includes what else it needs after it. */
#ifndef TL_PROG_H
#define TL_PROG_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

/* A logging hook that the test plugins define (tests/plugin/probe.c keeps
 * one record per coroutine in a task-local key), reached through a weak
 * symbol: without a plugin preloaded it is absent and probe() does nothing,
 * so the program behaves the same whether or not one is. */
extern void tlprobe(const char *label) __attribute__((weak));

static inline void probe(const char *label)
{
  if (tlprobe)
    tlprobe(label);
}

#endif
