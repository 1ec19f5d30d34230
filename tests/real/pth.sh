# GNU Pth through tests/real/pth_prog.c: Pth makes each thread with
# makecontext, switches with swapcontext and setcontext. Under the shim,
# the probe plugin keeps a task-local record per Pth thread: each must keep
# one task and one record through all its yields.
TL_ENV="TASKLOCAL_LEAKS=1"
run_probed pth "$TL_PTH_PROG" "GNU Pth, libpth-dev,"
same pth err

check_probes 6 'Pth threads (main, 4 workers, 1 child)'

# Pth's scheduler and the 5 threads it spawned: at least 6 tasks
# made with makecontext.
check_stats 6 pth
# A Pth thread ends by switching to the scheduler for the last time, and
# its stack is freed when it is joined: every one is released, and the
# report names no task.
released=$(stat_of pth released)
[ "${released:-0}" -ge 5 ] || fail "pth: ${released:-no} threads released, expected the 5 the program joins"
check_leaks pth 0
