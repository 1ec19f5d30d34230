/* The clock of the trace's events. When the CPU has an invariant TSC and
 * the kernel itself keeps time with it (clocksource "tsc"), so that all
 * cores agree, timestamps are raw rdtsc, converted to nanoseconds when the
 * file is written from two calibration points (load time and write time,
 * each a clock_gettime between two rdtsc). Otherwise they come from
 * clock_gettime (CLOCK_MONOTONIC), which the vDSO answers without a system
 * call for the tsc, kvm-clock and Hyper-V clock sources. On aarch64 the
 * counter is the generic timer's virtual count (arch.h), the clock source
 * that uses it "arch_sys_counter".
 *
 * trace.c stamps every event with tl__tclock_now, on the switch path: the
 * link-time optimization inlines it there, as when both were one file.
 */
#include "internal.h"
#include "traceclock.h"

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
  int tsc;                                 /* timestamps are TSC ticks, else ns */
  uint64_t raw0, ns0;                      /* the calibration point taken at load */
} calibration;

uint64_t tl__tclock_now(void)
{
  if (TL__LIKELY(calibration.tsc))
    return tl__counter_read();
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One calibration point: the TSC at the middle of a clock_gettime, the
 * tightest of three tries (a preemption between the reads spoils one). */
static void clock_point(uint64_t *raw, uint64_t *ns)
{
  uint64_t best = UINT64_MAX;
  for (int i = 0; i < 3; i++) {
    uint64_t t1 = tl__counter_read(), n = mono_ns(), t2 = tl__counter_read();
    if (t2 - t1 < best) {
      best = t2 - t1;
      *raw = t1 + (t2 - t1) / 2;
      *ns = n;
    }
  }
}

/* Whether the kernel keeps time with the TSC: then every core's TSC runs
 * at one rate and agrees with the others (the kernel checks both). */
static int kernel_uses_tsc(void)
{
  if (!tl__counter_invariant())
    return 0;                              /* no invariant TSC */
  int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  char buf[32] = {0};                     /* "arch_sys_counter" and a newline */
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  size_t k = sizeof TL__COUNTER_CLOCKSOURCE - 1;
  return n >= (ssize_t)k && memcmp(buf, TL__COUNTER_CLOCKSOURCE, k) == 0 && (buf[k] == '\n' || buf[k] == '\0');
}

void tl__tclock_setup(void)
{
  calibration.tsc = kernel_uses_tsc();
  if (calibration.tsc)
    clock_point(&calibration.raw0, &calibration.ns0);
  else
    calibration.raw0 = calibration.ns0 = mono_ns();
}

int tl__tclock_tsc(void)
{
  return calibration.tsc;
}

struct tl__tconv tl__tclock_conv(void)
{
  struct tl__tconv cv = {calibration.raw0, 0, 0};
  uint64_t raw1, ns1;
  if (calibration.tsc) {
    clock_point(&raw1, &ns1);
  } else {
    raw1 = ns1 = mono_ns();
  }
  cv.raw1 = raw1 > calibration.raw0 ? raw1 : calibration.raw0 + 1;
  cv.ns1 = ns1 > calibration.ns0 ? ns1 - calibration.ns0 : 1;
  return cv;
}

uint64_t tl__tclock_ns(const struct tl__tconv *cv, uint64_t raw)
{
  if (raw <= cv->raw0)
    return 0;
  if (!calibration.tsc)
    return raw - cv->raw0;
  return (uint64_t)((unsigned __int128)(raw - cv->raw0) * cv->ns1 / (cv->raw1 - cv->raw0));
}
