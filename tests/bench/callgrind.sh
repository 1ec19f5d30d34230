#!/bin/sh
# make bench-callgrind: instructions per swapcontext in the shim, counted by
# callgrind, for the library as built and the one built without the trace
# hooks (TL_NO_TRACE), with tracing off, and as built with tracing on.
#
#   tests/bench/callgrind.sh CGSWITCH LIB NOTRACE_LIB
#
# Each library runs CGSWITCH with N and 2N round trips; the difference is
# the cost of N round trips (2N switches) without the start and the exit.
# Columns: the shim's assembly wrapper alone (the whole of the inline
# switch; with tracing on, only the way into the C bookkeeping, which the
# second column counts), and the whole program per switch (the shim,
# glibc's swapcontext and the loop).
set -eu
if [ $# -ne 3 ]; then
  echo "usage: tests/bench/callgrind.sh CGSWITCH LIB NOTRACE_LIB" >&2
  exit 2
fi
prog=$1
lib=$2
notrace=$3
n=100000
command -v valgrind >/dev/null 2>&1 || { echo "bench-callgrind: valgrind is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset TASKLOCAL_TRACE TASKLOCAL_TRACE_SIZE TASKLOCAL_STATS TASKLOCAL_LEAKS

# count LABEL LIB [VAR=VALUE...]: prints the two figures for one library.
count() {
  label=$1
  l=$2
  shift 2
  for k in 1 2; do
    env LD_PRELOAD="$l" "$@" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$k" \
      "$prog" $((n * k)) >/dev/null 2>"$tmp/err.$k" ||
      { cat "$tmp/err.$k" >&2; exit 1; }
  done
  # Inclusive cost of the shim's swapcontext (callgrind names the two
  # sides of the switch swapcontext and swapcontext'2), and the total.
  wrap1=$(callgrind_annotate --inclusive=no "$tmp/cg.1" 2>/dev/null |
    awk '/swapcontext.*libtasklocal|swapcontext.*notrace/ { gsub(",", "", $1); s += $1 } END { print s + 0 }')
  wrap2=$(callgrind_annotate --inclusive=no "$tmp/cg.2" 2>/dev/null |
    awk '/swapcontext.*libtasklocal|swapcontext.*notrace/ { gsub(",", "", $1); s += $1 } END { print s + 0 }')
  tot1=$(sed -n 's/^summary: //p' "$tmp/cg.1")
  tot2=$(sed -n 's/^summary: //p' "$tmp/cg.2")
  awk -v l="$label" -v w1="$wrap1" -v w2="$wrap2" -v t1="$tot1" -v t2="$tot2" -v n="$n" \
    'BEGIN { printf "%-44s %8.1f %10.1f\n", l, (w2 - w1) / (2 * n), (t2 - t1) / (2 * n) }'
}

printf 'instructions per switch (callgrind, %d round trips)\n' "$n"
printf '%-44s %8s %10s\n' "" "asm" "program"
count "built without tracing (TL_NO_TRACE)" "$notrace"
count "as built, tracing off" "$lib"
count "as built, tracing on (TASKLOCAL_TRACE)" "$lib" TASKLOCAL_TRACE="$tmp/trace.json" TASKLOCAL_TRACE_SIZE=4K
