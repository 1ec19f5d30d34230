# The Portable Coroutine Library (libpcl1-dev) through tests/real/pcl_prog.c:
# PCL makes each coroutine with makecontext and switches with swapcontext.
# Under the shim, the probe plugin keeps a task-local record per coroutine:
# each must keep one task and one record through all its switches. The
# program then makes and deletes 200,000 coroutines that never run, on
# stacks that malloc hands out again: the shim retires each, and its memory
# stays flat.
run_probed pcl "$TL_PCL_PROG" "PCL, libpcl1-dev,"
same pcl err

check_probes 5 'PCL coroutines (main, 3 generators, 1 nested)'

# 4 coroutines that run and 200,000 that never do: all made with
# makecontext, and the never-run ones retired as malloc hands their
# memory to the next (peak stays small).
check_stats 200004 pcl
peak=$(stats pcl | sed -n 's/.* peak=\([0-9]*\) .*/\1/p' | sort -n | tail -n 1)
if [ -z "$peak" ] || [ "$peak" -gt 16 ]; then
  fail "peak live tasks ${peak:-unknown}: the never-run coroutines were not retired"
fi
