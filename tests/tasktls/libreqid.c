/* A library that keeps per-request state the way legacy code does, in the
 * thread: an exported __thread request id, a static __thread message
 * buffer (in .symtab only, with an initial value), and a context struct
 * in a pthread key with a destructor. It knows nothing of coroutines; the
 * programs of this directory run it in interleaved ones, under the shim
 * with TASKLOCAL_TASK_LOCAL naming these (tests/check_tasktls.c). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__thread long request_id;
static __thread char last_message[32] = "none";
/* Not thread-local: a name that sym: must refuse. */
long request_count;
/* Thread-local, but larger than a variable made per task may be. */
__thread char request_body[8192];

struct reqctx {
  long id;
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_made, ctx_destroyed;

static void ctx_destroy(void *p)
{
  __atomic_add_fetch(&ctx_destroyed, 1, __ATOMIC_RELAXED);
  free(p);
}

static void ctx_key_make(void)
{
  if (pthread_key_create(&ctx_key, ctx_destroy) != 0)
    abort();
}

/* The key is made when the library loads, as many libraries make theirs:
 * before the shim has read its options (its constructor runs after this
 * one), so the key waits to be judged. */
__attribute__((constructor)) static void ctx_key_early(void)
{
  pthread_once(&ctx_once, ctx_key_make);
}

static struct reqctx *ctx(void)
{
  pthread_once(&ctx_once, ctx_key_make);
  struct reqctx *c = pthread_getspecific(ctx_key);
  if (c == NULL) {
    c = calloc(1, sizeof *c);
    if (c == NULL || pthread_setspecific(ctx_key, c) != 0)
      abort();
    __atomic_add_fetch(&ctx_made, 1, __ATOMIC_RELAXED);
  }
  return c;
}

void reqid_set(long id)
{
  request_id = id;
  __atomic_add_fetch(&request_count, 1, __ATOMIC_RELAXED);
  request_body[0] = (char)id;
  snprintf(last_message, sizeof last_message, "request %ld", id);
  ctx()->id = id;
}

long reqid_get(void)
{
  return request_id;
}

const char *reqid_message(void)
{
  return last_message;
}

long reqid_ctx(void)
{
  return ctx()->id;
}

/* Whether this thread (or task) has a context yet, without making one. */
int reqid_has_ctx(void)
{
  pthread_once(&ctx_once, ctx_key_make);
  return pthread_getspecific(ctx_key) != NULL;
}

int reqid_ctx_made(void)
{
  return __atomic_load_n(&ctx_made, __ATOMIC_RELAXED);
}

int reqid_ctx_destroyed(void)
{
  return __atomic_load_n(&ctx_destroyed, __ATOMIC_RELAXED);
}
