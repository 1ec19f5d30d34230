# stress-ng --context: each worker is a forked process that switches among
# three ucontext coroutines with swapcontext as fast as it can, with
# --verify checking their state at every switch.
#
# Workers leave with _exit, past the exit handlers: the shim writes their
# stats lines from its _exit wrapper, and they must count the three
# coroutines of each worker (the parent's line counts none). A worker frees
# its coroutines' stacks before it leaves, which ends them (released): the
# exitdump plugin's live-task report, written at _exit, must show none of
# them left.
need stress-ng

normalise() {
  sed -E -e 's/\[[0-9]+\]/[PID]/g' -e 's/[0-9]+\.[0-9]+s/N.NNs/g'
}

workers=2
EXTRA_PRELOAD=$TL_EXITDUMP TLREAL_DUMP=$work/dump.log
export TLREAL_DUMP
run_pair context . stress-ng --context $workers --timeout 3s --verify
same context err

check_stats $((3 * workers)) context
reports=$(grep -c '^tasklocal: dump report of process' "$work/dump.log" 2>/dev/null || true)
if [ "${reports:-0}" -lt $workers ]; then
  fail "expected a live-task report from each of the $workers workers at _exit, got ${reports:-0}"
fi
released=$(stats context | stat_sum released)
[ "$released" -eq $((3 * workers)) ] ||
  fail "$released coroutines released, expected the 3 of each of the $workers workers (their stacks are freed)"
# Each worker's report: no live task left.
grep -E '^tasklocal: dump report of process [0-9]+: 0 live tasks' "$work/dump.log" >"$work/dump.workers" || true
if [ "$(wc -l <"$work/dump.workers")" -lt $workers ]; then
  fail "not every worker's report at _exit is empty:"
  grep -E '^tasklocal: (dump report|task)' "$work/dump.log" | head -20 | sed 's/^/    /'
else
  say "$workers workers, each with its 3 coroutines released before _exit"
fi
