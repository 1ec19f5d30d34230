/* A coroutine program for the gdb extension's tests (tests/gdb/check_gdb.c).
 * It knows nothing of tasklocal and is built without debug information; it
 * names its coroutines and binds values through the weak hooks of
 * tests/gdb/gdbplug.c, as a plugin of a real server would, and then
 * crashes in one of them, leaving a task in each state:
 * - "disk-reader" suspended in wait_for_disk (called by read_block),
 *   "net-writer" suspended in wait_for_net, both holding values;
 * - "idle-1" and a second unnamed one never started;
 * - "given-up" abandoned: its ucontext_t is made again while it waits in
 *   give_up (kept for the report with TASKLOCAL_LEAKS=1);
 * - "short-lived" finished, its record waiting for reuse;
 * - "crasher" running: it calls abort() in explode.
 * The main thread's root task is suspended in main, and holds a value of
 * its own; the thread holds a thread-scope value and a session a
 * custom-scope one. With the argument "exit", explode returns instead of
 * aborting, and the program exits normally after the crasher finishes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

extern void gdbplug_name(const char *name) __attribute__((weak));
extern void gdbplug_set(const char *key, int scope, void *value) __attribute__((weak));
extern void gdbplug_session(void *owner) __attribute__((weak));

#define STACK (64 * 1024)
enum { SCOPE_TASK, SCOPE_THREAD, SCOPE_CUSTOM };

static ucontext_t sched;
static volatile int resumed;
static int session_a;

static void name(const char *n)
{
  if (gdbplug_name)
    gdbplug_name(n);
}

static void set(const char *key, int scope, uintptr_t value)
{
  if (gdbplug_set)
    gdbplug_set(key, scope, (void *)value);
}

/* Each waits in a function of its own, which the test expects to find at
 * the top of the task's backtrace; the store after each call keeps it
 * from being a tail call, whose caller's frame would be gone. */
__attribute__((noinline)) void wait_for_disk(ucontext_t *self)
{
  swapcontext(self, &sched);
  resumed++;
}

__attribute__((noinline)) void read_block(ucontext_t *self)
{
  wait_for_disk(self);
  resumed++;
}

__attribute__((noinline)) void wait_for_net(ucontext_t *self)
{
  swapcontext(self, &sched);
  resumed++;
}

__attribute__((noinline)) void give_up(ucontext_t *self)
{
  swapcontext(self, &sched);
  resumed++;
}

/* abort() only when armed, which the compiler cannot know: otherwise it
 * would take explode for a function that never returns and move the call
 * to it out of crash_task, into a "crash_task.cold" part. */
static volatile int armed = 1;

__attribute__((noinline)) void explode(void)
{
  if (armed)
    abort();
}

static ucontext_t disk_ctx, net_ctx, idle_ctx, gone_ctx, short_ctx, crash_ctx;

__attribute__((noinline)) void disk_reader(void)
{
  name("disk-reader");
  set("request.id", SCOPE_TASK, 0x101);
  set("request.user", SCOPE_TASK, 0xabc);
  read_block(&disk_ctx);
  resumed++;
}

__attribute__((noinline)) void net_writer(void)
{
  name("net-writer");
  set("request.id", SCOPE_TASK, 0x102);
  wait_for_net(&net_ctx);
  resumed++;
}

__attribute__((noinline)) void idle_worker(void)
{
  resumed++;
}

__attribute__((noinline)) void given_up(void)
{
  name("given-up");
  set("request.id", SCOPE_TASK, 0x104);
  give_up(&gone_ctx);
  resumed++;
}

__attribute__((noinline)) void short_task(void)
{
  name("short-lived");
  resumed++;
}

__attribute__((noinline)) void crash_task(void)
{
  name("crasher");
  set("request.id", SCOPE_TASK, 0x103);
  explode();
  resumed++;
}

static void make(ucontext_t *uc, void (*fn)(void))
{
  getcontext(uc);
  uc->uc_stack.ss_sp = malloc(STACK);
  uc->uc_stack.ss_size = STACK;
  uc->uc_link = &sched;
  makecontext(uc, fn, 0);
}

int main(int argc, char **argv)
{
  armed = !(argc > 1 && strcmp(argv[1], "exit") == 0);
  setvbuf(stdout, NULL, _IOLBF, 0);
  name("main");
  set("main.config", SCOPE_TASK, 0x900);
  set("loop.pool", SCOPE_THREAD, 0x1001);
  if (gdbplug_session)
    gdbplug_session(&session_a);
  set("session.user", SCOPE_CUSTOM, 0x5e55);

  make(&disk_ctx, disk_reader);
  make(&net_ctx, net_writer);
  make(&idle_ctx, idle_worker);
  make(&gone_ctx, given_up);
  make(&short_ctx, short_task);
  make(&crash_ctx, crash_task);
  swapcontext(&sched, &disk_ctx);
  swapcontext(&sched, &net_ctx);
  swapcontext(&sched, &gone_ctx);
  /* The same ucontext_t made again on another stack: the task waiting in
   * it, whose stack is still held, is abandoned, and a new one that never
   * starts takes its place. */
  gone_ctx.uc_stack.ss_sp = malloc(STACK);
  makecontext(&gone_ctx, idle_worker, 0);
  swapcontext(&sched, &short_ctx);
  printf(armed ? "crashing\n" : "not crashing\n");
  swapcontext(&sched, &crash_ctx);
  printf("done\n");
  return 0;
}
