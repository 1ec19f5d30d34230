# D fibers (Debian's gdc) through tests/real/d_prog.d: druntime's
# core.thread.Fiber makes each fiber with makecontext and switches with
# swapcontext (Debian builds druntime with CET, which takes it off its own
# assembly). Generators, fibers left suspended on purpose, Fiber.reset()
# reuse, a std.concurrency pipeline on a FiberScheduler and short-lived
# fibers that the GC finalizes: the output and status must be as without
# the shim, and the shim must see every fiber.
if [ ! -x "$TL_D_PROG" ]; then
  say "SKIP: $TL_D_PROG was not built (gdc is not installed)"
  exit 77
fi
TL_ENV="TASKLOCAL_LEAKS=1"
run_pair fibers . "$TL_D_PROG"
same fibers err

# The fibers the program makes, each with one makecontext: 2 generators,
# 8 round-robin fibers, 1 fiber and its 200 resets, the FiberScheduler's
# 4 fibers (the started one and three spawned), 300 short-lived ones.
# No fiber returns into the makecontext trampoline (an ended fiber
# switches away for the last time), so none is counted finished.
made=515
check_stats $made fibers
created=$(stat_of fibers created) finished=$(stat_of fibers finished)
abandoned=$(stat_of fibers abandoned) switches=$(stat_of fibers switches) released=$(stat_of fibers released)
[ "$created" = $made ] || fail "the shim counted ${created:-no} fibers made, the program makes $made"
[ "$finished" = 0 ] || fail "the shim counted ${finished:-no} fibers finished, expected 0"
# Round robin alone switches 2 x 7,000 times, the pipeline 2 x 6,000.
[ "${switches:-0}" -ge 26000 ] || fail "the shim saw ${switches:-no} switches, expected at least 26,000"
# Each reset() makes the same ucontext_t again on the same stack, which
# releases the fiber that ran there, and the fibers the GC finalized have
# their stacks unmapped, which releases them: none is abandoned, and about
# 500 are released (the GC is conservative: it may keep a dropped fiber
# alive, which then stays in the report).
[ "${abandoned:-1}" = 0 ] || fail "the shim counted ${abandoned:-no} fibers abandoned, expected none"
[ "${released:-0}" -ge 400 ] || fail "the shim counted ${released:-no} fibers released, expected about 500"

# The report names the fibers left: the 3 the program keeps suspended on
# purpose, and any the GC kept alive; all that was released is not there.
check_leaks fibers $((made - released))
