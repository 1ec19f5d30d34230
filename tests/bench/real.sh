#!/bin/sh
# make bench: what a user of a real program pays for the shim. Each row
# runs one third-party ucontext program (or a program of ours on a
# third-party coroutine library) alone and with the shim preloaded, runs
# alternating (plain, shim, then shim, plain, ...), and prints the ratio
# shim / plain of each pair's figures: their median, and their smallest
# and largest as the spread. A row's figure is the CPU time of the whole
# run (tests/bench/cputime.c), or, for openssl speed, the program's own
# rate (plain rate / shim rate, so that above 1 is slower under the shim
# too); the median ratio of wall times is printed beside it.
#
#   tests/bench/real.sh LIB D_PROG PCLBENCH CPUTIME
#
# LIB is libtasklocal.so; D_PROG is tests/real/d_prog.d built with gdc and
# PCLBENCH tests/bench/pclbench.c, either absent when its library is not
# installed (its row then says so, as does the row of a missing program);
# CPUTIME is tests/bench/cputime.c built.
#
# Knobs (environment): BENCH_REAL_REPS (5 pairs a row).
set -eu

if [ $# -ne 4 ]; then
  echo "usage: tests/bench/real.sh LIB D_PROG PCLBENCH CPUTIME" >&2
  exit 2
fi
lib=$1
d_prog=$2
pclbench=$3
cputime=$4
reps=${BENCH_REAL_REPS:-5}

unset LD_PRELOAD TASKLOCAL_LEAKS TASKLOCAL_BACKTRACE TASKLOCAL_DUMP_SIGNAL \
  TASKLOCAL_STATS TASKLOCAL_LOG TASKLOCAL_VERBOSE TASKLOCAL_TRACE TASKLOCAL_TRACE_SIZE

# The images live in memory (/dev/shm when it is there): a disk shared
# with other users would time its own queue, not the program.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
top=$(mktemp -d "$shm/tlbench-real.XXXXXX")
trap 'rm -rf "$top"' EXIT
data=$top/data
: >"$data"

# cost MODE COMMAND...: COMMAND alone (plain) or under the shim, through
# cputime, which appends its wall and CPU seconds to $top/cost.
cost() {
  mode=$1
  shift
  if [ "$mode" = shim ]; then
    "$cputime" "$top/cost" env LD_PRELOAD="$lib" "$@"
  else
    "$cputime" "$top/cost" env -u LD_PRELOAD "$@"
  fi
}

# file ROW MODE REP: files the sums of the wall and CPU seconds in
# $top/cost (the runs of one side of one pair) as "ROW MODE REP WALL CPU".
file() {
  awk -v k="$1 $2 $3" '{ w += $1; c += $2 } END { print k, w, c }' "$top/cost" >>"$data"
  : >"$top/cost"
}

# timed ROW MODE REP COMMAND...: one run of COMMAND, its output in
# $top/ROW.*. A failed run stops the table: a program that fails under the
# shim is a bug, not a figure.
timed() {
  row=$1 mode=$2 rep=$3
  shift 3
  if ! cost "$mode" "$@" >"$top/$row.out" 2>"$top/$row.err"; then
    echo >&2
    echo "bench: this run failed ($mode): $*" >&2
    tail -5 "$top/$row.err" >&2
    exit 1
  fi
  file "$row" "$mode" "$rep"
}

# pairs ROW FUNCTION: REPS pairs of FUNCTION MODE REP, the order within a
# pair alternating, so that a drift of the machine's speed weighs on both.
pairs() {
  r=1
  while [ $r -le "$reps" ]; do
    if [ $((r % 2)) = 1 ]; then
      "$2" plain $r
      "$2" shim $r
    else
      "$2" shim $r
      "$2" plain $r
    fi
    r=$((r + 1))
  done
  printf '.' >&2
}

missing() { echo "$1 - - missing $2" >>"$data"; }

# stress-ng's context stressor: one worker, a fixed number of operations
# (each one swapcontext loop among its three coroutines).
stress_ops=3000
stress() { timed stress-ng "$1" "$2" stress-ng --context 1 --context-ops $stress_ops -q; }

# qemu-io writes 4,000 clusters of a qcow2 image, 4 KiB each (one
# coroutine per request, its metadata updated as clusters are allocated),
# then qemu-img convert copies the image to a new qcow2 with 8 coroutines
# writing out of order. Caches are "unsafe" (no flushes) and the images
# live in memory, so that the figure is the programs', not the disk's.
qemu_writes=4000
qemu_prep() {
  set --
  i=0
  while [ $i -lt $qemu_writes ]; do
    set -- "$@" -c "write -P $((i % 250 + 1)) $((i * 65536)) 4k"
    i=$((i + 1))
  done
  printf '%s\n' "$@" >"$top/qemu.args"
}
qemu() {
  rm -f "$top/disk.qcow2" "$top/copy.qcow2"
  qemu-img create -q -f qcow2 "$top/disk.qcow2" 512M
  # The 8,000 words of the command line, read back one a line.
  # shellcheck disable=SC2046
  if ! (IFS='
'; cost "$1" qemu-io -t unsafe -f qcow2 $(cat "$top/qemu.args") "$top/disk.qcow2") >/dev/null 2>"$top/qemu.err" ||
     ! cost "$1" qemu-img convert -t unsafe -T unsafe -m 8 -W -O qcow2 "$top/disk.qcow2" "$top/copy.qcow2" \
       2>>"$top/qemu.err"; then
    echo >&2
    echo "bench: qemu-io or qemu-img failed ($1):" >&2
    tail -5 "$top/qemu.err" >&2
    exit 1
  fi
  file qemu "$1" "$2"
}

# openssl speed with 8 async jobs: RSA 2048 signatures for 1 second; the
# figure is its own rate, turned into seconds per signature.
openssl_speed() {
  if ! cost "$1" openssl speed -seconds 1 -async_jobs 8 -mr rsa2048 >"$top/openssl.out" 2>"$top/openssl.err"; then
    echo >&2
    echo "bench: openssl speed failed ($1):" >&2
    tail -5 "$top/openssl.err" >&2
    exit 1
  fi
  rate=$(sed -n 's/^+F2:[0-9]*:2048:\([0-9.]*\):.*/\1/p' "$top/openssl.out")
  if [ -z "$rate" ]; then
    echo "bench: openssl speed printed no RSA 2048 rate ($1)" >&2
    exit 1
  fi
  : >"$top/cost"
  echo "openssl $1 $2 - $(awk -v r="$rate" 'BEGIN { printf "%.9f", 1 / r }')" >>"$data"
}

# PCL's benchmark loop: 1,000,000 coroutines made and deleted without
# running, then 1,000,000 switches to a coroutine and back.
pcl() { timed pcl "$1" "$2" "$pclbench" 1000000 1000000; }

# The D program of make check-real, 60 rounds: about 30,000 fibers and
# 1.4 million switches.
dfibers() { timed d "$1" "$2" "$d_prog" 60; }

printf 'bench: real programs, %s pairs a row ' "$reps" >&2
if command -v stress-ng >/dev/null 2>&1; then pairs stress-ng stress; else missing stress-ng stress-ng; fi
if command -v qemu-img >/dev/null 2>&1 && command -v qemu-io >/dev/null 2>&1; then
  qemu_prep
  pairs qemu qemu
else
  missing qemu qemu-utils
fi
if command -v openssl >/dev/null 2>&1; then pairs openssl openssl_speed; else missing openssl openssl; fi
if [ -x "$pclbench" ]; then pairs pcl pcl; else missing pcl libpcl1-dev; fi
if [ -x "$d_prog" ]; then pairs d dfibers; else missing d gdc; fi
echo >&2

awk -v reps="$reps" '
$3 == "missing" { miss[$1] = $4; next }
{ wall[$1, $2, $3] = $4; cpu[$1, $2, $3] = $5 + 0 }

function sort(a, n,    i, j, t) {
  for (i = 2; i <= n; i++)
    for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
}
function median(a, n) {
  sort(a, n)
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# UNIT "s": CPU seconds a run; "/s": a rate, filed as its inverse and
# shown as a rate again.
function row(name, what, unit,    r, n, nw, a, w, p, s, fig, wfig) {
  if (name in miss) { printf "%-44s n/a (%s is not installed)\n", what, miss[name]; return }
  n = nw = 0
  for (r = 1; r <= reps; r++)
    if ((name, "plain", r) in cpu && (name, "shim", r) in cpu && cpu[name, "plain", r] > 0) {
      a[++n] = cpu[name, "shim", r] / cpu[name, "plain", r]
      p[n] = cpu[name, "plain", r]; s[n] = cpu[name, "shim", r]
      if (wall[name, "plain", r] != "-" && wall[name, "plain", r] > 0)
        w[++nw] = wall[name, "shim", r] / wall[name, "plain", r]
    }
  if (n == 0) { printf "%-44s n/a (not measured)\n", what; return }
  med = median(a, n)
  if (unit == "s")
    fig = sprintf("%.3f / %.3f s", median(s, n), median(p, n))
  else
    fig = sprintf("%.0f / %.0f %s", 1 / median(s, n), 1 / median(p, n), unit)
  wfig = nw ? sprintf("%.3fx", median(w, nw)) : "-"
  printf "%-44s %6.3fx %6.3fx %6.3fx  %-21s %-7s %-9s %s\n", what, a[1], med, a[n], fig, wfig,
         "<= 1.03x", med <= 1.03 ? "yes" : "no"
}
END {
  printf "\nreal programs, shim / plain: %d pairs a row, runs alternating; the ratio of each\n", reps
  printf "pair, min, median and max over the pairs (min to max is the spread). The figure\n"
  printf "is CPU time (user + system, the program and its children), except for openssl:\n"
  printf "its own rate (plain / shim, so that above 1 is slower too). \"wall\" is the\n"
  printf "median ratio of wall times, which waiting for a core on a loaded machine blurs.\n\n"
  printf "%-44s %7s %7s %7s  %-21s %-7s %-9s %s\n", "program", "min", "median", "max", "shim / plain", "wall",
         "target", "met"
  row("stress-ng", "stress-ng --context, 3000 ops (1 worker)", "s")
  row("qemu", "qemu-io 4000 writes + qemu-img convert", "s")
  row("openssl", "openssl speed -async_jobs 8 rsa2048 sign", "/s")
  row("pcl", "PCL cobench loop, 1M creates + 1M switches", "s")
  row("d", "D fibers (tests/real/d_prog.d, 60 rounds)", "s")
}
' "$data"
