/* A coroutine program that leaks in every way doc/reports.md names, for the leak
 * report tests. It knows nothing of tasklocal: values are bound through
 * weak hooks that the test plugin (tests/plugin/leakplug.c) defines.
 *
 * Under the shim with TASKLOCAL_LEAKS=1 and the plugin, the report must
 * say 3 tasks and 5 locals:
 * - task never_run: made, never started;
 * - task wait_forever: suspended in park(), holding "session" (no
 *   destructor) and "buffer" (with one): 2 locals;
 * - task abandoned_worker: suspended, then its ucontext_t made again on
 *   another stack while its own is still held: abandoned, holding "conn":
 *   1 local;
 * - task drops_value: finishes with "request" bound, a key without a
 *   destructor: 1 dropped value;
 * - a thread binds "thread.state" (no destructor) in its own root task
 *   and exits: 1 dropped value.
 * Values bound in the main thread's root ("config") are still reachable at
 * exit and do not count. The task that finishes cleanly (replacement: the
 * value it binds has a destructor) does not count either.
 */
#include "prog.h"
#include <pthread.h>
#include <stdint.h>

extern void leakplug_set(const char *key, void *value, int destructor) __attribute__((weak));
extern void leakplug_name(const char *name) __attribute__((weak));

#define STACK (256 * 1024)

static ucontext_t main_ctx, ctx_never, ctx_wait, ctx_aband, ctx_drop;
static char *stacks[5];

static void set(const char *key, uintptr_t value, int destructor)
{
  if (leakplug_set)
    leakplug_set(key, (void *)value, destructor);
}

static void name(const char *n)
{
  if (leakplug_name)
    leakplug_name(n);
}

__attribute__((noinline)) void park(ucontext_t *self)
{
  swapcontext(self, &main_ctx);
  __asm__ volatile("");
}

__attribute__((noinline)) void never_run(void)
{
  puts("never_run: this is never printed");
}

__attribute__((noinline)) void wait_forever(void)
{
  name("waiter");
  set("session", 0x5e5510, 0);
  set("buffer", 0xb0ff, 1);
  puts("wait_forever: parked");
  park(&ctx_wait);
  puts("wait_forever: resumed, which never happens");
}

__attribute__((noinline)) void abandoned_worker(void)
{
  set("conn", 0xc022, 0);
  puts("abandoned_worker: parked");
  park(&ctx_aband);
  puts("abandoned_worker: resumed, which never happens");
}

__attribute__((noinline)) void replacement(void)
{
  set("conn.ok", 0xc023, 1);
  puts("replacement: finished");
}

__attribute__((noinline)) void drops_value(void)
{
  set("request", 0x4e01, 0);
  puts("drops_value: finished");
}

static void make(ucontext_t *ctx, char *stack, void (*fn)(void))
{
  getcontext(ctx);
  ctx->uc_stack.ss_sp = stack;
  ctx->uc_stack.ss_size = STACK;
  ctx->uc_link = &main_ctx;
  makecontext(ctx, fn, 0);
}

static void *thread_main(void *arg)
{
  (void)arg;
  set("thread.state", 0x7a7e, 0);
  return NULL;
}

int main(void)
{
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int i = 0; i < 5; i++)
    stacks[i] = malloc(STACK);
  set("config", 0xc0f1, 0);

  make(&ctx_never, stacks[0], never_run);
  make(&ctx_wait, stacks[1], wait_forever);
  swapcontext(&main_ctx, &ctx_wait);
  make(&ctx_aband, stacks[2], abandoned_worker);
  swapcontext(&main_ctx, &ctx_aband);
  make(&ctx_aband, stacks[4], replacement);
  swapcontext(&main_ctx, &ctx_aband);
  make(&ctx_drop, stacks[3], drops_value);
  swapcontext(&main_ctx, &ctx_drop);

  pthread_t th;
  if (pthread_create(&th, NULL, thread_main, NULL) != 0 || pthread_join(th, NULL) != 0)
    return 1;
  puts("main: done");
  return 0;
}
