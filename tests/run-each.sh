#!/bin/sh
# run-each.sh NAME 'RUNNER' ITEM...: runs RUNNER ITEM for each ITEM in
# turn (RUNNER may be empty, or several words), goes on after one fails,
# and ends with the failed ones and a plain count:
#
#   == ITEM
#   ...its output...
#   == ITEM: passed in 12.3 s
#   ...
#   NAME: failed: ITEM ITEM
#   NAME: 12 passed, 2 failed
#
# It exits 1 if any failed. make check runs each of its suites (make
# targets) through it, and check-unit each Check program, so that one
# failing suite never hides the others, and each one's time is in the log
# next to its result: a suite that grows close to its timeouts shows there
# before it fails (see doc/testing.md).
set -u

[ $# -ge 2 ] || { echo "usage: run-each.sh NAME 'RUNNER' ITEM..." >&2; exit 2; }
name=$1
runner=$2
shift 2

now() { date +%s.%N; }
passed=0
failed=0
failures=""
times=""
for item in "$@"; do
  echo "== $item"
  start=$(now)
  # shellcheck disable=SC2086
  if $runner "$item"; then
    status=passed
    passed=$((passed + 1))
  else
    status=FAILED
    failed=$((failed + 1))
    failures="$failures $item"
  fi
  took=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  times="$times $(basename "$item") ${took}s,"
  echo "== $item: $status in $took s"
done
echo "$name: times:${times%,}"
[ "$failed" -eq 0 ] || echo "$name: failed:$failures"
echo "$name: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
