/* A per-task pthread key deleted while a suspended task holds a value in
 * it, and a new key made (glibc reuses the number): the task finds no
 * value in the new key, the old value goes to no destructor (as
 * pthread_key_delete says), and the new key's value goes to the new
 * destructor when the task ends. The program makes the keys itself: run
 * with pthread-keys:keydelete. One line on stdout:
 *   keydelete: same_number=N stale=N dtor1=N dtor2=N
 * and the exit status is 0 when the keys are per task. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#define STACK_SIZE (256 * 1024)

static ucontext_t sched, co;
static pthread_key_t k1, k2;
static int stale, dtor1, dtor2;
static int a1, a2;

static void destroy1(void *p)
{
  (void)p;
  dtor1++;
}

static void destroy2(void *p)
{
  if (p == &a2)
    dtor2++;
}

static void task(void)
{
  pthread_setspecific(k1, &a1);
  swapcontext(&co, &sched);
  stale = pthread_getspecific(k2) != NULL;
  pthread_setspecific(k2, &a2);
}

int main(void)
{
  if (pthread_key_create(&k1, destroy1) != 0)
    return 2;
  getcontext(&co);
  co.uc_stack.ss_sp = malloc(STACK_SIZE);
  co.uc_stack.ss_size = STACK_SIZE;
  co.uc_link = &sched;
  makecontext(&co, task, 0);
  swapcontext(&sched, &co);
  pthread_key_delete(k1);
  if (pthread_key_create(&k2, destroy2) != 0)
    return 2;
  swapcontext(&sched, &co);
  printf("keydelete: same_number=%d stale=%d dtor1=%d dtor2=%d\n", k1 == k2, stale, dtor1, dtor2);
  free(co.uc_stack.ss_sp);
  return !stale && dtor1 == 0 && dtor2 == 1 ? 0 : 1;
}
