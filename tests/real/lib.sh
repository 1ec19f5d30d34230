# Shared by the tests of tests/real/, which run.sh sources in a subshell
# each. Every program runs twice, alone and under the shim, with the same
# arguments in directories of the same name, and the two runs must print
# the same (after the test's normalise, which takes away what changes from
# run to run: timings, pids) and exit with the same status.
#
# From run.sh: TL_LIB (the shim), TL_PROBE (tests/plugin/probe.c),
# TL_EXITDUMP (tests/real/exitdump.c), TL_PTH_PROG, TL_PCL_PROG,
# TL_BOOST_PROG, and work, a directory of the test's own.

# What a test reports; fail() also marks it failed and goes on, so that
# one run shows every difference.
failed=0
say() { echo "  $name: $*"; }
fail() { echo "  $name: FAIL: $*"; failed=1; }

normalise() { cat; }

# run_pair STEP DIR CMD...: runs CMD in $work/plain/DIR and in
# $work/shim/DIR, the second with the shim preloaded (then any plugins in
# $EXTRA_PRELOAD) and TASKLOCAL_STATS=1, the library's lines going to
# $work/STEP.tl. Each run's stdout, stderr and status are kept as
# $work/STEP.{plain,shim}.{out,err,rc}.
run_pair() {
  step=$1 dir=$2
  shift 2
  mkdir -p "$work/plain/$dir" "$work/shim/$dir"
  set +e
  (cd "$work/plain/$dir" && exec env -u LD_PRELOAD "$@") \
    >"$work/$step.plain.out" 2>"$work/$step.plain.err"
  echo $? >"$work/$step.plain.rc"
  (cd "$work/shim/$dir" && exec env LD_PRELOAD="$TL_LIB${EXTRA_PRELOAD:+ $EXTRA_PRELOAD}" \
    TASKLOCAL_STATS=1 TASKLOCAL_LOG="$work/$step.tl" "$@") \
    >"$work/$step.shim.out" 2>"$work/$step.shim.err"
  echo $? >"$work/$step.shim.rc"
  set -e
}

# same STEP [err]: the two runs of STEP exited alike and printed the same
# stdout (and stderr, with "err"), after normalise.
same() {
  step=$1
  rc_plain=$(cat "$work/$step.plain.rc") rc_shim=$(cat "$work/$step.shim.rc")
  if [ "$rc_plain" != "$rc_shim" ]; then
    fail "$step: exit status $rc_plain alone, $rc_shim under the shim"
    sed 's/^/    stderr under the shim: /' "$work/$step.shim.err" | head -20
  fi
  for stream in out ${2:-}; do
    normalise <"$work/$step.plain.$stream" >"$work/$step.plain.$stream.n"
    normalise <"$work/$step.shim.$stream" >"$work/$step.shim.$stream.n"
    if ! cmp -s "$work/$step.plain.$stream.n" "$work/$step.shim.$stream.n"; then
      fail "$step: std$stream differs under the shim (normalised, alone then under the shim):"
      diff "$work/$step.plain.$stream.n" "$work/$step.shim.$stream.n" | head -20 | sed 's/^/    /'
    fi
  done
}

# stats STEP...: the stats lines the shim printed in those steps (one per
# process that left through exit), without the " (pid N)" that follows
# them once a process has forked.
stats() {
  for step in "$@"; do
    [ -f "$work/$step.tl" ] && grep '^tasklocal: stats: ' "$work/$step.tl" || true
  done | sed 's/ (pid [0-9]*)$//'
}

# stat_sum FIELD: the sum of FIELD=N over the stats lines on stdin.
stat_sum() {
  sed -n "s/.* $1=\([0-9]*\).*/\1/p" | awk '{ s += $1 } END { print s + 0 }'
}

# check_stats MIN STEP...: the stats lines of the steps are well formed
# and count at least MIN tasks made. A shim that prints no stats line at
# all (TASKLOCAL_STATS not implemented) makes this part skip, loudly.
check_stats() {
  min=$1
  shift
  lines=$(stats "$@")
  if [ -z "$lines" ]; then
    say "SKIP stats: the shim printed no 'tasklocal: stats:' line with TASKLOCAL_STATS=1"
    return 0
  fi
  bad=$(echo "$lines" | grep -Ev '^tasklocal: stats: created=[0-9]+ finished=[0-9]+ abandoned=[0-9]+ released=[0-9]+ switches=[0-9]+ untracked=[0-9]+ peak=[0-9]+ keys=[0-9]+$' || true)
  [ -z "$bad" ] || fail "malformed stats line: $bad"
  created=$(echo "$lines" | stat_sum created)
  if [ "$created" -lt "$min" ]; then
    fail "the shim counted $created tasks made, expected at least $min"
  fi
  say "stats: $(echo "$lines" | wc -l) processes, $created tasks made," \
    "$(echo "$lines" | stat_sum switches) switches," \
    "$(echo "$lines" | stat_sum untracked) untracked," \
    "$(echo "$lines" | stat_sum abandoned) abandoned," \
    "$(echo "$lines" | stat_sum released) released"
}

# Every test needs its programs; without them (no Debian package manager,
# no network) it skips rather than fails.
need() {
  for prog in "$@"; do
    if ! command -v "$prog" >/dev/null 2>&1; then
      say "SKIP: $prog is not installed (scripts/install-deps --real)"
      exit 77
    fi
  done
}

# run_probed STEP PROG PACKAGE: run_pair of PROG, a program of ours on a
# third-party coroutine library, with the probe plugin after the shim
# (its log in $work/probe.log); the test skips when PROG was not built
# because PACKAGE is not installed.
run_probed() {
  if [ ! -x "$2" ]; then
    say "SKIP: $2 was not built ($3 is not installed)"
    exit 77
  fi
  EXTRA_PRELOAD=$TL_PROBE TLPROBE_LOG=$work/probe.log
  export TLPROBE_LOG
  run_pair "$1" . "$2"
}

# check_probes N WHAT: the probe plugin's log ($work/probe.log) shows N
# labels, each keeping one task and one task-local record through all its
# probes, its record its own, no two labels sharing a task, and the
# library tracking. WHAT names the labels in messages.
check_probes() {
  want=$1 what=$2
  if ! awk -v want="$want" '
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
      if (labels != want) { print labels " labels probed, expected " want; bad = 1 }
      exit bad
    }' "$work/probe.log" >"$work/probe.check"; then
    fail "$what did not keep their task-local records:"
    sed 's/^/    /' "$work/probe.check" | head -20
  else
    say "$want $what each kept one task and one record through $(grep -c '^probe ' "$work/probe.log") probes"
  fi
}
