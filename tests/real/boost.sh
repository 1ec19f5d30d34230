# Boost.Context (libboost-context-dev) through tests/real/boost_prog.cpp:
# boost::context::fiber on its ucontext backend makes each fiber with
# makecontext and switches with swapcontext. Under the shim, the probe
# plugin keeps a task-local record per fiber: each must keep one task and
# one record through all its switches, C++ exceptions included, and the
# program's output and status must be as without the shim.
TL_ENV="TASKLOCAL_LEAKS=1"
run_probed boost "$TL_BOOST_PROG" "Boost.Context, libboost-context-dev,"
same boost err

check_probes 8 'Boost fibers (main, 4 workers, ping, pong, victim)'

# 7 fibers that probe and 100 short-lived ones, each made once. An ended
# Boost fiber never returns into the makecontext trampoline: it switches
# away for good and the next fiber frees its stack, which ends it
# (released). Nothing is abandoned, and the peak stays small.
check_stats 107 boost
line=$(stats boost)
created=$(echo "$line" | stat_sum created)
abandoned=$(echo "$line" | stat_sum abandoned)
released=$(echo "$line" | stat_sum released)
peak=$(echo "$line" | sed -n 's/.* peak=\([0-9]*\) .*/\1/p')
[ "$created" -eq 107 ] || fail "the shim counted $created fibers made, the program makes 107"
[ "$abandoned" -eq 0 ] || fail "$abandoned fibers abandoned: an ended fiber's stack is freed, which releases it"
[ "$released" -eq 107 ] || fail "$released ended fibers released, expected all 107: each stack is taken by the next fiber of its kind or freed at the end"
# Nothing is left: the report names no task (and so has no kinds line).
check_leaks boost 0
if [ -z "$peak" ] || [ "$peak" -gt 10 ]; then
  fail "peak live tasks ${peak:-unknown}: ended fibers were not retired"
fi

# The records of the fibers the shim saw end went to the probe's
# destructor, each with the count of probes its fiber made: values stayed
# isolated to the end.
if ! awk '
  /^probe / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } n[f["label"]] = f["count"] }
  /^destroy / {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); d[kv[1]] = kv[2] }
    ends++
    if (n[d["label"]] != d["count"]) { print d["label"] " destroyed with count " d["count"] ", probed " n[d["label"]]; bad = 1 }
  }
  END { if (ends < 2) { print ends + 0 " records destroyed, expected the main one and at least one fiber'"'"'s"; bad = 1 }; exit bad }
' "$work/probe.log" >"$work/probe.ends"; then
  fail "task-local records at the fibers' ends:"
  sed 's/^/    /' "$work/probe.ends" | head -20
else
  say "$(grep -c '^destroy ' "$work/probe.log") records destroyed as their fibers ended, each with its own count"
fi
