#!/bin/sh
# Unmodified ucontext programs built with a sanitizer, run under the shim
# (doc/sanitizers.md): the shim must tell the sanitizer of every switch, so that
# it reports nothing false, and the program must do exactly what the plain
# build does alone (same stdout, same exit status).
#
#   tests/sanitizers/run.sh SANITIZER DIR PLAIN_DIR LIB PROGRAM...
#
# SANITIZER is address or thread; DIR holds the sanitizer builds (PROGRAM.asan
# or PROGRAM.tsan), PLAIN_DIR the plain builds of the same programs; LIB is libtasklocal.so. The runs
# go through scripts/tasklocal-run, as a user's would (it puts gcc's
# libasan.so first in LD_PRELOAD, where ASan insists on being).
#
# unwind.c needs the annotations, and so does sigjmp.c under ASan: they
# must also be seen to fail under the shim with TASKLOCAL_FIBERS=0 (ASan
# warns that it ignores a no-return call, TSan aborts on a longjmp), or
# this test would not show that the annotations are what makes them pass.
set -u

if [ $# -lt 5 ]; then
  echo "usage: tests/sanitizers/run.sh SANITIZER DIR PLAIN_DIR LIB PROGRAM..." >&2
  exit 2
fi
san=$1 dir=$2 plain=$3 lib=$4
shift 4
case $san in
  address) sfx=asan ;;
  thread) sfx=tsan ;;
  *) echo "tests/sanitizers/run.sh: unknown sanitizer $san" >&2; exit 2 ;;
esac
run=$(dirname "$0")/../../scripts/tasklocal-run

# What a sanitizer says when it reports or gives up. ASan's one-line
# warning that it "doesn't fully support makecontext/swapcontext" comes
# from its swapcontext interceptor on every run and is not a report.
reports='ERROR: AddressSanitizer|WARNING: ThreadSanitizer|ThreadSanitizer:|ignoring requested __asan_handle_no_return|False positive error reports|CHECK failed|runtime does not come first'

unset LD_PRELOAD TASKLOCAL_LEAKS TASKLOCAL_BACKTRACE TASKLOCAL_DUMP_SIGNAL TASKLOCAL_LOG TASKLOCAL_FIBERS
pass=0 fail=0
for p in "$@"; do
  b=$dir/$p.$sfx
  "$plain/$p" >"$b.plain" 2>/dev/null
  want=$?
  TASKLOCAL_LIB=$lib TASKLOCAL_STATS=1 "$run" "$b" >"$b.out" 2>"$b.err"
  got=$?
  why=
  if [ "$got" -ne "$want" ]; then
    why="exit status $got, alone (plain build) $want"
  elif ! cmp -s "$b.plain" "$b.out"; then
    why="stdout differs from the plain build's"
  elif grep -Eq "$reports" "$b.err"; then
    why="the sanitizer reported"
  elif ! grep -q "^tasklocal: stats: created=[1-9]" "$b.err"; then
    why="the stats line shows no task made"
  fi
  if [ -z "$why" ] && { [ "$p" = unwind ] || { [ "$p" = sigjmp ] && [ "$san" = address ]; }; }; then
    TASKLOCAL_LIB=$lib TASKLOCAL_FIBERS=0 "$run" "$b" >/dev/null 2>"$b.nofibers.err"
    if [ $? -eq 0 ] && ! grep -Eq "$reports" "$b.nofibers.err"; then
      why="it also runs clean with TASKLOCAL_FIBERS=0: the test shows nothing"
    fi
  fi
  if [ -n "$why" ]; then
    echo "$san: $p under the shim: $why"
    sed 's/^/  | /' "$b.err" | head -n 40
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
done
echo "$san-built programs under the shim: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
