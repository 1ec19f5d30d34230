/* libreqid loaded as a plugin, with dlopen, and its state used by
 * coroutines of a thread that never touched the library before them: the
 * library's TLS block in that thread is the dynamic linker's to allocate
 * (dynamic TLS), at the first switch. As interleave.c otherwise. One line
 * on stdout:
 *   plugin: fresh_bad=N id_bad=N msg_bad=N root_fresh=N
 * root_fresh: the thread's own request is still a new thread's (0 and
 * "none") after its coroutines ran. The exit status is 0 when everything
 * is as per task. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#define NCO 3
#define ROUNDS 4
#define STACK_SIZE (256 * 1024)

static void (*set)(long);
static long (*get)(void);
static const char *(*message)(void);

static ucontext_t sched;
static ucontext_t co[NCO];
static int current, fresh_bad, id_bad, msg_bad, root_fresh;

static void body(void)
{
  int me = current;
  if (get() != 0 || strcmp(message(), "none") != 0)
    fresh_bad++;
  for (int r = 0; r < ROUNDS; r++) {
    long id = 10 * (me + 1) + r;
    char want[32];
    snprintf(want, sizeof want, "request %ld", id);
    set(id);
    swapcontext(&co[me], &sched);
    if (get() != id)
      id_bad++;
    if (strcmp(message(), want) != 0)
      msg_bad++;
  }
}

static void make(int i)
{
  getcontext(&co[i]);
  co[i].uc_stack.ss_sp = malloc(STACK_SIZE);
  co[i].uc_stack.ss_size = STACK_SIZE;
  co[i].uc_link = &sched;
  makecontext(&co[i], body, 0);
}

static void *run(void *arg)
{
  (void)arg;
  for (int i = 0; i < NCO; i++)
    make(i);
  for (int r = 0; r <= ROUNDS; r++)
    for (int i = 0; i < NCO; i++) {
      current = i;
      swapcontext(&sched, &co[i]);
    }
  root_fresh = get() == 0 && strcmp(message(), "none") == 0;
  for (int i = 0; i < NCO; i++)
    free(co[i].uc_stack.ss_sp);
  return NULL;
}

int main(void)
{
  /* By its path, next to the program: a sanitizer's dlopen interceptor
   * would make its own object the caller, whose search path is not ours. */
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
  if (n <= 0)
    return 2;
  path[n] = '\0';
  strcpy(strrchr(path, '/') + 1, "libreqid.so");
  void *lib = dlopen(path, RTLD_NOW);
  if (lib == NULL) {
    fprintf(stderr, "plugin: %s\n", dlerror());
    return 2;
  }
  set = (void (*)(long))dlsym(lib, "reqid_set");
  get = (long (*)(void))dlsym(lib, "reqid_get");
  message = (const char *(*)(void))dlsym(lib, "reqid_message");
  pthread_t t;
  if (set == NULL || get == NULL || message == NULL || pthread_create(&t, NULL, run, NULL) != 0)
    return 2;
  pthread_join(t, NULL);
  printf("plugin: fresh_bad=%d id_bad=%d msg_bad=%d root_fresh=%d\n", fresh_bad, id_bad, msg_bad, root_fresh);
  return fresh_bad == 0 && id_bad == 0 && msg_bad == 0 && root_fresh ? 0 : 1;
}
