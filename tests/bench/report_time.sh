#!/bin/sh
# The exit report's cost (doc/performance.md): the time to report 100,000 leaked tasks
# in 10 groups, for make bench (tests/bench/run.sh, row 11).
#
#   tests/bench/report_time.sh LIB LEAK_MANY
#
# LEAK_MANY is tests/programs/leak_many, which leaves 10 groups of 10,000
# alike coroutines suspended at exit. It runs under LIB twice, one right
# after the other: with TASKLOCAL_LEAKS=1, and with creation backtraces
# only (TASKLOCAL_BACKTRACE=1: the same capture, no report). Each side
# counts by the faster of two runs; the difference is the report's time:
# gathering, unwinding and grouping the tasks, and writing the 10 groups
# with their frames named (libdw reads the debug information then). Prints
# "seconds S".
set -eu

lib=$1
prog=$2
groups="10000 10000 10000 10000 10000 10000 10000 10000 10000 10000"
err=$(mktemp)
trap 'rm -f "$err"' EXIT

# ns LEAKS: the wall time of one run, in nanoseconds.
ns() {
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  env LD_PRELOAD="$lib" TASKLOCAL_LEAKS="$1" TASKLOCAL_BACKTRACE=1 "$prog" $groups >/dev/null 2>"$err"
  end=$(date +%s%N)
  if [ "$1" = 1 ] && ! grep -q '^tasklocal: leak summary: 100000 tasks, 0 locals$' "$err"; then
    echo "report_time: no report of the 100000 tasks:" >&2
    tail -n 3 "$err" >&2
    exit 1
  fi
  echo $((end - start))
}

best() {
  a=$(ns "$1")
  b=$(ns "$1")
  [ "$a" -lt "$b" ] && echo "$a" || echo "$b"
}

with=$(best 1)
without=$(best 0)
awk -v a="$with" -v b="$without" 'BEGIN { printf "seconds %.3f\n", (a - b) / 1e9 }'
