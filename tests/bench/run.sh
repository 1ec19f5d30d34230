#!/bin/sh
# make bench: runs the benchmark programs of tests/bench/ and prints one
# table of ratios (doc/performance.md).
#
#   tests/bench/run.sh BENCHDIR LIB DYNAMIC
#
# BENCHDIR holds the programs (tlget, ucbench, libtlbenchkeys.so, and
# tlget-dyn when DYNAMIC is "yes") and notrace/libtasklocal.so, the
# library built without the trace hooks; LIB is libtasklocal.so. DYNAMIC
# is "no" while the header has no TL_DYNAMIC, "failed" when the variant
# did not build.
#
# Every figure is a ratio of two measurements made in the same repetition,
# one right after the other, so that whatever else loads the machine at
# that moment weighs on both. Inside a repetition the order of the variants
# is reversed every other time. The table gives the smallest and the median
# ratio over the repetitions; a target is met when the median meets it.
#
# Knobs (environment): BENCH_REPS (11), BENCH_MEM_REPS (3: memory is
# deterministic), BENCH_THREAD_REPS (5), BENCH_REPORT_REPS (3: each takes
# some 10 s and 1 GB), BENCH_TASKS (1000000), BENCH_KEYS (100000).
set -eu

if [ $# -ne 3 ]; then
  echo "usage: tests/bench/run.sh BENCHDIR LIB DYNAMIC" >&2
  exit 2
fi
bench=$1
lib=$2
dynamic=$3
plugin=$bench/libtlbenchkeys.so
reps=${BENCH_REPS:-11}
mem_reps=${BENCH_MEM_REPS:-3}
thread_reps=${BENCH_THREAD_REPS:-5}
report_reps=${BENCH_REPORT_REPS:-3}
tasks=${BENCH_TASKS:-1000000}
nkeys=${BENCH_KEYS:-100000}

# The options of the library would change what is measured (backtraces,
# leak checking); each run below sets the ones it wants.
unset LD_PRELOAD TASKLOCAL_LEAKS TASKLOCAL_BACKTRACE TASKLOCAL_DUMP_SIGNAL \
  TASKLOCAL_STATS TASKLOCAL_LOG TASKLOCAL_VERBOSE TLBENCH_KEYS TASKLOCAL_TRACE TASKLOCAL_TRACE_SIZE

data=$(mktemp)
trap 'rm -f "$data" "$data.out" "$data.err" "$data.err2"' EXIT

# run REP LABEL COMMAND...: runs one measurement and files each "name value"
# line it prints as "REP LABEL.name value".
run() {
  rep=$1
  label=$2
  shift 2
  if ! "$@" >"$data.out" 2>"$data.err"; then
    echo >&2
    echo "bench: this run failed: $*" >&2
    cat "$data.err" >&2
    exit 1
  fi
  # A traced run's ring wraps, as it is meant to: its line about the
  # dropped events is expected.
  grep -v '^tasklocal: trace: [0-9]* events dropped in /dev/null ' "$data.err" >"$data.err2" || true
  mv "$data.err2" "$data.err"
  if [ -s "$data.err" ]; then
    echo >&2
    echo "bench: $label said on stderr:" >&2
    cat "$data.err" >&2
  fi
  while read -r name value; do
    echo "$rep $label.$name $value"
  done <"$data.out" >>"$data"
}

# try REP LABEL COMMAND...: the same for the TL_DYNAMIC variant, whose
# failure (header-only use is being written) costs its row, not the table.
try() {
  if [ "$dynamic" = yes ] && ! (run "$@"); then
    echo "bench: the TL_DYNAMIC variant failed; its row will say so" >&2
    dynamic=failed
  fi
}

plain() { env -u LD_PRELOAD "$@"; }
shim() { env LD_PRELOAD="$lib" "$@"; }
keys() { env LD_PRELOAD="$lib $plugin" "$@"; }
# Tracing on: the file goes to /dev/null (its writing, at exit, is not
# timed); a ring of 64K events a thread wraps during the run, as a long
# run's does, after its pages were first touched.
traced() { env LD_PRELOAD="$lib" TASKLOCAL_TRACE=/dev/null TASKLOCAL_TRACE_SIZE=64K "$@"; }
notrace_lib=$bench/notrace/libtasklocal.so
notrace() { env LD_PRELOAD="$notrace_lib" "$@"; }

# One repetition of the read benchmarks (rows 1, 2 and 6). Row 1 is
# measured inside one process; rows 2 and 6 compare processes, so the base
# run sits between the runs it is compared with.
reads() {
  r=$1
  if [ $((r % 2)) = 1 ]; then
    run "$r" tasks plain "$bench/tlget" "$tasks" 1
    run "$r" base plain "$bench/tlget" 10 1
    run "$r" keys plain "$bench/tlget" 10 "$nkeys"
    try "$r" dyn shim "$bench/tlget-dyn" 10 1
  else
    try "$r" dyn shim "$bench/tlget-dyn" 10 1
    run "$r" keys plain "$bench/tlget" 10 "$nkeys"
    run "$r" base plain "$bench/tlget" 10 1
    run "$r" tasks plain "$bench/tlget" "$tasks" 1
  fi
}

# One repetition of the switch, task-life and creation benchmarks (rows 3
# and 5): the same binary, with and without the shim. These processes are
# short, so each variant runs five times, alternating, and the table takes
# its fastest run in the repetition. Two reasons: a state of the machine
# that lasts longer than one process then rarely weighs on one side only,
# and the address-space layout, which differs from process to process,
# moves a switch by up to 17% here (glibc's switch with ASLR off measures
# 561 ns in every run, with it 560 to 680 ns: the stacks' offsets within a
# page decide whether their stores and loads alias): the fastest of five
# compares the two sides at their good layouts, not at random ones.
switches() {
  r=$1
  for k in 1 2 3 4 5; do
    if [ $(((r + k) % 2)) = 1 ]; then
      run "$r" plain plain "$bench/ucbench" switch
      run "$r" shim shim "$bench/ucbench" switch
      run "$r" trace traced "$bench/ucbench" switch
      run "$r" notrace notrace "$bench/ucbench" switch
      run "$r" plain plain "$bench/ucbench" life
      run "$r" shim shim "$bench/ucbench" life
      run "$r" trace traced "$bench/ucbench" life
      run "$r" notrace notrace "$bench/ucbench" life
      run "$r" keys4 keys env TLBENCH_KEYS=4 "$bench/ucbench" life
      run "$r" plain plain "$bench/ucbench" make
      run "$r" shim shim "$bench/ucbench" make
      run "$r" bt shim env TASKLOCAL_BACKTRACE=1 "$bench/ucbench" make
    else
      run "$r" bt shim env TASKLOCAL_BACKTRACE=1 "$bench/ucbench" make
      run "$r" shim shim "$bench/ucbench" make
      run "$r" plain plain "$bench/ucbench" make
      run "$r" keys4 keys env TLBENCH_KEYS=4 "$bench/ucbench" life
      run "$r" notrace notrace "$bench/ucbench" life
      run "$r" trace traced "$bench/ucbench" life
      run "$r" shim shim "$bench/ucbench" life
      run "$r" plain plain "$bench/ucbench" life
      run "$r" notrace notrace "$bench/ucbench" switch
      run "$r" trace traced "$bench/ucbench" switch
      run "$r" shim shim "$bench/ucbench" switch
      run "$r" plain plain "$bench/ucbench" switch
    fi
  done
}

# One repetition of the task-local state benchmarks (row 10): the switch
# with two __thread variables and the C++ exception state per task, and
# pthread_getspecific of a key that is per task and of one that is not (a
# pthread-keys item names another object), against glibc's alone. The
# fastest of 3 runs of each, for the reason given above switches().
tls_vars=TASKLOCAL_TASK_LOCAL=sym:bench_a,sym:bench_b,cxx-eh
tasktls() {
  r=$1
  for k in 1 2 3; do
    if [ $(((r + k) % 2)) = 1 ]; then
      run "$r" shim shim "$bench/tlsbench" switch
      run "$r" tls shim env "$tls_vars" "$bench/tlsbench" switch
      run "$r" plain plain "$bench/tlsbench" getspecific
      run "$r" keyother shim env TASKLOCAL_TASK_LOCAL=pthread-keys:libother "$bench/tlsbench" getspecific
      run "$r" keytask shim env TASKLOCAL_TASK_LOCAL=pthread-keys:tlsbench "$bench/tlsbench" getspecific
    else
      run "$r" keytask shim env TASKLOCAL_TASK_LOCAL=pthread-keys:tlsbench "$bench/tlsbench" getspecific
      run "$r" keyother shim env TASKLOCAL_TASK_LOCAL=pthread-keys:libother "$bench/tlsbench" getspecific
      run "$r" plain plain "$bench/tlsbench" getspecific
      run "$r" tls shim env "$tls_vars" "$bench/tlsbench" switch
      run "$r" shim shim "$bench/tlsbench" switch
    fi
  done
}

# One repetition of the thread benchmarks (row 8): each figure is ns per
# operation of the whole process (N threads that scale halve it), with and
# without the shim, order alternating; the fastest of 3 runs of each, for
# the reason given above switches().
threads() {
  r=$1
  for k in 1 2 3; do
    threads_once "$r" "$k"
  done
}

threads_once() {
  r=$1
  for t in 1 2 8; do
    if [ $(((r + t + $2) % 2)) = 1 ]; then
      run "$r" plain plain "$bench/mtbench" life "$t"
      run "$r" shim shim "$bench/mtbench" life "$t"
      run "$r" plain plain "$bench/mtbench" switch "$t"
      run "$r" shim shim "$bench/mtbench" switch "$t"
    else
      run "$r" shim shim "$bench/mtbench" switch "$t"
      run "$r" plain plain "$bench/mtbench" switch "$t"
      run "$r" shim shim "$bench/mtbench" life "$t"
      run "$r" plain plain "$bench/mtbench" life "$t"
    fi
  done
  run "$r" plain plain "$bench/mtbench" handoff
  run "$r" shim shim "$bench/mtbench" handoff
}

# One repetition of the allocation benchmarks (row 9): malloc + free of a
# small and of a large block, with the shim watching for released stacks
# (64 tasks suspended on malloc'd stacks) and without it; fastest of three
# runs of each side, alternating.
allocs() {
  r=$1
  for k in 1 2 3; do
    for size in 32 65536; do
      if [ $(((r + k) % 2)) = 1 ]; then
        run "$r" plain plain "$bench/ucbench" malloc "$size"
        run "$r" shim shim "$bench/ucbench" malloc "$size"
      else
        run "$r" shim shim "$bench/ucbench" malloc "$size"
        run "$r" plain plain "$bench/ucbench" malloc "$size"
      fi
    done
  done
}

# One repetition of the memory benchmarks (row 4).
memory() {
  r=$1
  run "$r" plain plain "$bench/ucbench" mem-new "$tasks"
  run "$r" shim shim "$bench/ucbench" mem-new "$tasks"
  run "$r" plain plain "$bench/ucbench" mem-started "$tasks"
  run "$r" keys0 keys env TLBENCH_KEYS=0 "$bench/ucbench" mem-started "$tasks"
  run "$r" keys4 keys env TLBENCH_KEYS=4 "$bench/ucbench" mem-started "$tasks"
}

# One repetition of the exit report's benchmark (row 11): 100,000 leaked
# tasks in 10 groups (tests/bench/report_time.sh, with leak_many built
# into BENCHDIR).
report() {
  r=$1
  run "$r" report sh "${0%/*}/report_time.sh" "$lib" "$bench/leak_many"
}

printf 'bench: %s repetitions (%s with memory) ' "$reps" "$mem_reps" >&2
i=1
while [ "$i" -le "$reps" ]; do
  reads "$i"
  switches "$i"
  allocs "$i"
  tasktls "$i"
  [ "$i" -gt "$thread_reps" ] || threads "$i"
  [ "$i" -gt "$mem_reps" ] || memory "$i"
  [ "$i" -gt "$report_reps" ] || report "$i"
  printf '.' >&2
  i=$((i + 1))
done
echo >&2

cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)

awk -v reps="$reps" -v tasks="$tasks" -v nkeys="$nkeys" -v dynamic="$dynamic" \
    -v cores="$cores" -v cpu="$cpu" '
# A measurement made several times in one repetition counts by its
# fastest (smallest) run.
{ if (!(($1, $2) in v) || $3 + 0 < v[$1, $2] + 0) v[$1, $2] = $3 }

function sort(a, n,    i, j, t) {
  for (i = 2; i <= n; i++)
    for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
}
function median(a, n) {
  sort(a, n)
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# The median over the repetitions of one measurement.
function med(name,    r, n, a) {
  n = 0
  for (r = 1; r <= reps; r++)
    if ((r, name) in v) a[++n] = v[r, name]
  return n ? median(a, n) : -1
}
# Fills RMIN and RMED with the smallest and the median of num/den, each
# ratio taken within one repetition; returns how many there were.
function ratio(num, den,    r, n, a) {
  n = 0
  for (r = 1; r <= reps; r++)
    if ((r, num) in v && (r, den) in v && v[r, den] > 0) a[++n] = v[r, num] / v[r, den]
  if (n == 0) return 0
  RMED = median(a, n)
  RMIN = a[1]
  return n
}
# The same for a difference in bytes divided by count.
function per(num, den, count,    r, n, a) {
  n = 0
  for (r = 1; r <= reps; r++)
    if ((r, num) in v && (r, den) in v) a[++n] = (v[r, num] - v[r, den]) / count
  if (n == 0) return 0
  RMED = median(a, n)
  RMIN = a[1]
  return n
}
function verdict(value, limit) { return value <= limit ? "yes" : "no" }
# Thread scaling: what N threads gain over one (t1 / tN, ns per operation of
# the process), with the shim divided by without, each taken inside one
# repetition. A target is met when the median is at least the limit.
function scaling(op, n,    r, k, a, s1, sn, p1, pn) {
  k = 0
  for (r = 1; r <= reps; r++) {
    s1 = "shim." op "1"; sn = "shim." op n; p1 = "plain." op "1"; pn = "plain." op n
    if ((r, s1) in v && (r, sn) in v && (r, p1) in v && (r, pn) in v && v[r, sn] > 0 && v[r, pn] > 0)
      a[++k] = (v[r, s1] / v[r, sn]) / (v[r, p1] / v[r, pn])
  }
  if (k == 0) return 0
  RMED = median(a, k)
  RMIN = a[1]
  return k
}
function srow(id, what, op, n, limit,    gs, gp) {
  if (!scaling(op, n)) { printf "%-3s %-44s %s\n", id, what, "n/a (not measured)"; return }
  gs = med("shim." op "1") / med("shim." op n)
  gp = med("plain." op "1") / med("plain." op n)
  printf "%-3s %-44s %7.2fx %7.2fx  %-19s %-16s %s\n", id, what, RMIN, RMED,
         sprintf("gain %.2f / %.2f", gs, gp), sprintf(">= %.2fx", limit), (RMED >= limit ? "yes" : "no")
}
function row(id, what, num, den, limit, target,    ns) {
  if (!ratio(num, den)) { printf "%-3s %-44s %s\n", id, what, "n/a (not measured)"; return }
  ns = sprintf("%.2f / %.2f", med(num), med(den))
  printf "%-3s %-44s %7.2fx %7.2fx  %-19s %-16s %s\n", id, what, RMIN, RMED, ns, target,
         limit == "" ? "-" : verdict(RMED, limit)
}
# A time in seconds, with an absolute target: min and median over the
# repetitions that measured it.
function secs(id, what, name, limit, target,    r, n, a) {
  n = 0
  for (r = 1; r <= reps; r++)
    if ((r, name) in v) a[++n] = v[r, name]
  if (n == 0) { printf "%-3s %-44s %s\n", id, what, "n/a (not measured)"; return }
  RMED = median(a, n)
  RMIN = a[1]
  printf "%-3s %-44s %6.2f s %6.2f s  %-19s %-16s %s\n", id, what, RMIN, RMED, "", target, verdict(RMED, limit)
}
function bytes(id, what, num, den, count, limit, target) {
  if (!per(num, den, count)) { printf "%-3s %-44s %s\n", id, what, "n/a (not measured)"; return }
  printf "%-3s %-44s %6.1f B %6.1f B  %-19s %-16s %s\n", id, what, RMIN, RMED, "", target,
         verdict(RMED, limit)
}

END {
  printf "tasklocal benchmarks, %d repetitions\n", reps
  printf "machine: %d cores, shared and noisy; compare ratios, not absolute times\n", cores
  if (cpu != "") printf "cpu: %s\n", cpu
  printf "Each ratio is taken inside one repetition (variants run back to back, order\n"
  printf "alternating; rows 3 and 5: fastest of 5 runs of each side, row 8: of 3); min and median\n"
  printf "are over the repetitions; a target is met when the median meets it.\n"
  printf "ns columns: medians of each side, ns per operation.\n\n"
  printf "%-3s %-44s %8s %8s  %-19s %-16s %s\n", "", "figure", "min", "median", "ns/op (a / b)", "target", "met"

  row("1", "tl_get / pthread_getspecific", "base.tl_get", "base.pthread", 1.0, "<= 1.0x")
  row("", "tl_get / __thread read", "base.tl_get", "base.thread", 2.0, "<= 2x")
  row("", "tl_get / pth_key_getdata (GNU Pth)", "base.tl_get", "base.pth", 1.0, "<= 1.0x (<= pth)")
  row("2", sprintf("tl_get, %d tasks / 10 tasks", tasks), "tasks.tl_get", "base.tl_get", 1.10, "flat (<= 1.10x)")
  row("", sprintf("tl_get, %d keys / 1 key", nkeys), "keys.tl_get", "base.tl_get", 1.10, "flat (<= 1.10x)")
  row("3", "swapcontext round trip, shim / none", "shim.switch", "plain.switch", 1.03, "<= 1.03x")
  row("", "task life, shim / none", "shim.life", "plain.life", 1.10, "<= 1.10x")
  row("", "task life, 4 keys + destructors / none", "keys4.life", "plain.life", 1.25, "<= 1.25x")
  bytes("4", sprintf("shim memory per never-started task (%d)", tasks), "shim.mem-new", "plain.mem-new",
        tasks, 128, "<= 128 B")
  bytes("", sprintf("shim memory per suspended task (%d)", tasks), "keys0.mem-started",
        "plain.mem-started", tasks, 128, "<= 128 B")
  bytes("", sprintf("shim memory per bound value (%d x 4)", tasks), "keys4.mem-started",
        "keys0.mem-started", tasks * 4, 16, "<= 16 B")
  row("5", "makecontext, backtraces on / off (shim)", "bt.make", "shim.make", "", "(none)")
  row("", "never-started makecontext, shim / none", "shim.make", "plain.make", 3.0, "<= 3x")
  if (dynamic == "yes")
    row("6", "tl_get, TL_DYNAMIC / linked", "dyn.tl_get", "base.tl_get", "", "(none)")
  else if (dynamic == "failed")
    printf "%-3s %-44s %s\n", "6", "tl_get, TL_DYNAMIC / linked", "n/a (the TL_DYNAMIC variant failed to build or run)"
  else
    printf "%-3s %-44s %s\n", "6", "tl_get, TL_DYNAMIC / linked", "n/a (TL_DYNAMIC not implemented yet)"
  row("7", "swapcontext round trip, tracing on / off", "trace.switch", "shim.switch", 1.25, "<= 1.25x")
  row("", "task life, tracing on / off", "trace.life", "shim.life", 1.25, "<= 1.25x")
  row("", "swapcontext, tracing off / no trace hooks", "shim.switch", "notrace.switch", 1.01, "<= 1.01x")
  row("", "task life, tracing off / no trace hooks", "shim.life", "notrace.life", 1.01, "<= 1.01x")
  srow("8", "task life scaling, 2 threads, shim / none", "life", 2, 0.95)
  srow("", "task life scaling, 8 threads, shim / none", "life", 8, 0.90)
  srow("", "switch scaling, 2 threads, shim / none", "switch", 2, 0.95)
  srow("", "switch scaling, 8 threads, shim / none", "switch", 8, 0.90)
  row("", "hand-off (made on one thread, run on another)", "shim.handoff", "plain.handoff", "", "(none)")
  row("9", "malloc + free, 32 B, shim / none", "shim.malloc32", "plain.malloc32", 1.02, "<= 1.02x")
  row("", "malloc + free, 64 KiB, shim / none", "shim.malloc65536", "plain.malloc65536", 1.05, "<= 1.05x")
  row("10", "switch, 2 __thread + cxx-eh per task / none", "tls.switch", "shim.switch", 1.10, "<= 1.10x")
  row("", "pthread_getspecific, key not per task / glibc", "keyother.getspecific", "plain.getspecific", 1.05,
      "<= 1.05x")
  row("", "pthread_getspecific, key per task / glibc", "keytask.getspecific", "plain.getspecific", 2.0, "<= 2x")
  secs("11", "exit report, 100000 leaked tasks in 10 groups", "report.seconds", 2.0, "< 2 s")

  printf "\nnotes:\n"
  printf "- row 11: leak_many leaves 10 groups of 10000 alike suspended coroutines; the\n"
  printf "  time is that of a run with TASKLOCAL_LEAKS=1 less one with backtraces only\n"
  printf "  (fastest of 2 each): gathering, unwinding, grouping, and naming 10 groups.\n"
  printf "- reads are timed inside a running task with the key bound; one empty loop\n"
  printf "  iteration (included in every read figure) takes %.2f ns.\n", med("base.loop")
  printf "- task life: makecontext on a reused context and stack, swapcontext in, return\n"
  printf "  through uc_link; 4 keys: a preloaded plugin binds 4 keys in each task.\n"
  d = med("keys4.destroyed_per_task")
  if (d != 4)
    printf "- WARNING: destructors ran %.3f times per task, not 4: tasks went untracked.\n", d
  printf "- memory: anonymous RSS growth of the same program making %d tasks (own 4 KiB\n", tasks
  printf "  slice each), with the shim minus without; per value: 4 values bound minus none.\n"
  if (!(("1", "base.pth") in v))
    printf "- GNU Pth is not installed (scripts/install-deps --bench): no Pth figure.\n"
  printf "- row 5: a never-started makecontext on a reused context and stack releases\n"
  printf "  the task made there before (it takes its stack), as PCL'"'"'s benchmark does.\n"
  printf "- row 7: tracing on writes a 64K-event ring a thread (the file, at exit, is\n"
  printf "  not timed); \"no trace hooks\" is the same sources built with TL_NO_TRACE.\n"
  printf "  Off, tracing costs the inline switch 2 instructions, far below what timing\n"
  printf "  resolves here: make bench-callgrind counts them.\n"
  printf "- row 8: each thread runs its own loop (tests/bench/mtbench.c); gain = what\n"
  printf "  N threads do over one, shim / none (%d cores: 8 threads oversubscribe, which\n", cores
  printf "  shows lock convoys); the hand-off makes tasks on one thread, runs them on another.\n"
  printf "- row 9: what watching for released stacks costs malloc and free (heapwatch.c),\n"
  printf "  with 64 tasks suspended on malloc'"'"'d stacks in the process.\n"
  printf "- row 10 (TASKLOCAL_TASK_LOCAL, tests/bench/tlsbench.c): both switch sides run under\n"
  printf "  the shim; the per-task state is swapped in C at every switch, so the switch\n"
  printf "  leaves the inline path. pthread_getspecific is not interposed: a per-task\n"
  printf "  key holds the running task'"'"'s value in the thread'"'"'s slot.\n"
}
' "$data"
