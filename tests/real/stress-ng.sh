# stress-ng --context: each worker is a forked process that switches among
# three ucontext coroutines with swapcontext as fast as it can, with
# --verify checking their state at every switch.
#
# Workers leave with _exit, past the exit handlers: the shim writes their
# stats lines from its _exit wrapper, and they must count the three
# coroutines of each worker (the parent's line counts none). The exitdump
# plugin also writes each worker's live-task report at _exit: every worker
# must show its three coroutines, suspended.
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
# The task lines of each worker's report: 3 coroutines, all suspended.
grep -E '^tasklocal: dump report of process [0-9]+: 3 live tasks' "$work/dump.log" >"$work/dump.workers" || true
if [ "$(wc -l <"$work/dump.workers")" -lt $workers ]; then
  fail "not every worker's report shows its 3 coroutines:"
  grep -E '^tasklocal: (dump report|task)' "$work/dump.log" | head -20 | sed 's/^/    /'
else
  say "$workers workers, each with 3 tracked coroutines at _exit"
fi
