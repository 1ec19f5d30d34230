# The Portable Coroutine Library (libpcl1-dev) through tests/real/pcl_prog.c:
# PCL makes each coroutine with makecontext and switches with swapcontext.
# Under the shim, the probe plugin keeps a task-local record per coroutine:
# each must keep one task and one record through all its switches. The
# program then makes and deletes 200,000 coroutines that never run, on
# stacks that malloc hands out again: the shim retires each, and its memory
# stays flat.
if [ ! -x "$TL_PCL_PROG" ]; then
  say "SKIP: $TL_PCL_PROG was not built (PCL, libpcl1-dev, is not installed)"
  exit 77
fi

EXTRA_PRELOAD=$TL_PROBE TLPROBE_LOG=$work/probe.log
export TLPROBE_LOG
run_pair pcl . "$TL_PCL_PROG"
same pcl err

if ! awk '
  /^probe / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    l = f["label"]; n[l]++
    if (f["avail"] != 1) { print "tl_available() is " f["avail"] " in " l; bad = 1 }
    if (!(l in task)) {
      task[l] = f["task"]; rec[l] = f["rec"]
      if (f["task"] in owner) { print l " and " owner[f["task"]] " share task " f["task"]; bad = 1 }
      owner[f["task"]] = l
    } else if (task[l] != f["task"] || rec[l] != f["rec"]) {
      print l ": task " f["task"] " record " f["rec"] ", was task " task[l] " record " rec[l]; bad = 1
    }
    if (f["count"] != n[l]) { print l ": probe " n[l] " found count " f["count"]; bad = 1 }
  }
  /^error/ { print; bad = 1 }
  END {
    labels = 0
    for (l in n) labels++
    if (labels != 5) { print labels " labels probed, expected 5 (main, 3 generators, 1 nested)"; bad = 1 }
    exit bad
  }' "$work/probe.log" >"$work/probe.check"; then
  fail "PCL coroutines did not keep their task-local records:"
  sed 's/^/    /' "$work/probe.check" | head -20
else
  say "5 PCL coroutines (with main) each kept one task and one record through $(grep -c '^probe ' "$work/probe.log") probes"
fi

# 4 coroutines that run and 200,000 that never do: all made with
# makecontext, and the never-run ones retired as malloc hands their
# memory to the next (peak stays small).
check_stats 200004 pcl
peak=$(stats pcl | sed -n 's/.* peak=\([0-9]*\) .*/\1/p' | sort -n | tail -n 1)
if [ -z "$peak" ] || [ "$peak" -gt 16 ]; then
  fail "peak live tasks ${peak:-unknown}: the never-run coroutines were not retired"
fi
