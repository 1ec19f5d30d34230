#!/bin/sh
# The programs of tests/tasktls/ built with a sanitizer, run under the shim
# with TASKLOCAL_TASK_LOCAL through tasklocal-run, as a user's would be:
# each must say that every value was its task's, exit 0, and draw no
# report from the sanitizer.
#
#   tests/tasktls/san.sh SANITIZER DIR LIB PROGRAM...
#
# SANITIZER is address or thread; DIR holds PROGRAM.asan or PROGRAM.tsan
# (and the library they use); LIB is libtasklocal.so.
set -u

if [ $# -lt 4 ]; then
  echo "usage: tests/tasktls/san.sh SANITIZER DIR LIB PROGRAM..." >&2
  exit 2
fi
san=$1 dir=$2 lib=$3
shift 3
case $san in
  address) sfx=asan ;;
  thread) sfx=tsan ;;
  *) echo "tests/tasktls/san.sh: unknown sanitizer $san" >&2; exit 2 ;;
esac
run=$(dirname "$0")/../../scripts/tasklocal-run
reports='ERROR: AddressSanitizer|WARNING: ThreadSanitizer|ThreadSanitizer:|CHECK failed|runtime does not come first'

unset LD_PRELOAD TASKLOCAL_LEAKS TASKLOCAL_BACKTRACE TASKLOCAL_DUMP_SIGNAL TASKLOCAL_LOG TASKLOCAL_TASK_LOCAL
fail=0
for p in "$@"; do
  b=$dir/$p.$sfx
  # migrate takes every key but the C library's and the sanitizer's own.
  case $p in
    eh) items=cxx-eh ;;
    migrate) items=sym:request_id,sym:last_message@libreqid,pthread-keys:all ;;
    *) items=sym:request_id,sym:last_message@libreqid,pthread-keys:libreqid ;;
  esac
  # sigjmp.c's switches are unseen: the root task's values, saved at its
  # first seen switch, are never put back, and its context stays only in
  # the library's record of the root task, which LeakSanitizer does not
  # scan (the records are mmap'd). That is the documented limit, not a
  # leak to report here: the test is that nothing breaks.
  leaks=1
  [ "$p" = sigjmp ] && leaks=0
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=$leaks \
    TASKLOCAL_LIB=$lib "$run" --task-local "$items" "$b" >"$b.out" 2>"$b.err"
  got=$?
  why=
  if [ "$got" -ne 0 ]; then
    why="exit status $got"
  elif grep -Eq "$reports" "$b.err"; then
    why="the sanitizer reported"
  elif grep -q "^tasklocal: " "$b.err"; then
    why="the library warned"
  fi
  if [ -n "$why" ]; then
    echo "FAIL $p ($san): $why; stdout: $(cat "$b.out")"
    sed -n '1,40p' "$b.err"
    fail=1
  else
    echo "ok   $p ($san): $(cat "$b.out")"
  fi
done
exit $fail
