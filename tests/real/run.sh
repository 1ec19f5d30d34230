#!/bin/sh
# make check-real: third-party ucontext programs from Debian, each run
# alone and under the shim (issue 7). Every NAME.sh here but lib.sh is a
# test; it runs in a subshell of its own with lib.sh, and passes, fails or
# skips (exit 77, when its program is not installed).
#
# Usage: run.sh LIB PROBE_PLUGIN EXITDUMP_PLUGIN PTH_PROG PCL_PROG BOOST_PROG D_PROG
set -eu

[ $# -eq 7 ] || { echo "usage: $0 LIB PROBE_PLUGIN EXITDUMP_PLUGIN PTH_PROG PCL_PROG BOOST_PROG D_PROG" >&2; exit 2; }
TL_LIB=$1 TL_PROBE=$2 TL_EXITDUMP=$3 TL_PTH_PROG=$4 TL_PCL_PROG=$5 TL_BOOST_PROG=$6 TL_D_PROG=$7
here=$(cd "$(dirname "$0")" && pwd)

# A test that takes longer has hung under the shim; the whole run must
# stay well under two minutes.
deadline=60

top=$(mktemp -d "${TMPDIR:-/tmp}/tlreal.XXXXXX")
trap 'rm -rf "$top"' EXIT

passed=0 failed=0 skipped=0
for test in "$here"/*.sh; do
  name=$(basename "$test" .sh)
  case $name in lib|run) continue ;; esac
  work=$top/$name
  mkdir -p "$work"
  echo "== real: $name"
  set +e
  timeout -k 5 $deadline env TL_LIB="$TL_LIB" TL_PROBE="$TL_PROBE" TL_EXITDUMP="$TL_EXITDUMP" \
    TL_PTH_PROG="$TL_PTH_PROG" TL_PCL_PROG="$TL_PCL_PROG" TL_BOOST_PROG="$TL_BOOST_PROG" \
    TL_D_PROG="$TL_D_PROG" work="$work" name="$name" \
    sh -c 'set -eu; . "$1"; . "$2"; exit $failed' sh "$here/lib.sh" "$test"
  rc=$?
  set -e
  case $rc in
    0) passed=$((passed + 1)); echo "  $name: ok" ;;
    77) skipped=$((skipped + 1)) ;;
    124|137) failed=$((failed + 1)); echo "  $name: FAIL: still running after ${deadline}s (a hang under the shim?)" ;;
    *) failed=$((failed + 1)) ;;
  esac
done

echo "real: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
