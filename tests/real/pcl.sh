# The Portable Coroutine Library (libpcl1-dev) through tests/real/pcl_prog.c:
# PCL makes each coroutine with makecontext and switches with swapcontext.
# Under the shim, the probe plugin keeps a task-local record per coroutine:
# each must keep one task and one record through all its switches. The
# program then makes and deletes 200,000 coroutines that never run, on
# stacks that malloc hands out again: the shim releases each, and its
# memory stays flat.
TL_ENV="TASKLOCAL_LEAKS=1"
run_probed pcl "$TL_PCL_PROG" "PCL, libpcl1-dev,"
same pcl err

check_probes 5 'PCL coroutines (main, 3 generators, 1 nested)'

# 4 coroutines that run and 200,000 that never do: all made with
# makecontext, and the never-run ones released as co_delete frees their
# memory (peak stays small).
check_stats 200004 pcl
peak=$(stats pcl | sed -n 's/.* peak=\([0-9]*\) .*/\1/p' | sort -n | tail -n 1)
if [ -z "$peak" ] || [ "$peak" -gt 16 ]; then
  fail "peak live tasks ${peak:-unknown}: the never-run coroutines were not retired"
fi
# co_delete frees every coroutine's block, stack and all: each is released
# (the never-run ones too). The report names one task, parked: PCL's own
# helper that deletes an exiting coroutine (co_exit), made on a stack
# inside PCL's thread context, which keeps it for the next exit.
released=$(stat_of pcl released)
[ "${released:-0}" -ge 200003 ] || fail "pcl: ${released:-no} coroutines released, expected every one the program deletes"
check_leaks pcl 1 0
