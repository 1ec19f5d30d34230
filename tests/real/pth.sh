# GNU Pth through tests/real/pth_prog.c: Pth makes each thread with
# makecontext, switches with swapcontext and setcontext. Under the shim,
# the probe plugin keeps a task-local record per Pth thread: each must keep
# one task and one record through all its yields.
if [ ! -x "$TL_PTH_PROG" ]; then
  say "SKIP: $TL_PTH_PROG was not built (GNU Pth, libpth-dev, is not installed)"
  exit 77
fi

EXTRA_PRELOAD=$TL_PROBE TLPROBE_LOG=$work/probe.log
export TLPROBE_LOG
run_pair pth . "$TL_PTH_PROG"
same pth err

# Per label: probes in order, always the same task and record, the record
# its own; no two labels share a task; the library is tracking.
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
    if (labels != 6) { print labels " labels probed, expected 6 (main, 4 workers, 1 child)"; bad = 1 }
    exit bad
  }' "$work/probe.log" >"$work/probe.check"; then
  fail "Pth threads did not keep their task-local records:"
  sed 's/^/    /' "$work/probe.check" | head -20
else
  say "6 Pth threads (with main) each kept one task and one record through $(grep -c '^probe ' "$work/probe.log") probes"
fi

# Pth's scheduler and the 5 threads it spawned: at least 6 tasks
# made with makecontext.
check_stats 6 pth
