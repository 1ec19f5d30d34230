# Shared by the tests of tests/real/, which run.sh sources in a subshell
# each. Every program runs twice, alone and under the shim, with the same
# arguments in directories of the same name, and the two runs must print
# the same (after the test's normalise, which takes away what changes from
# run to run: timings, pids) and exit with the same status.
#
# From run.sh: TL_LIB (the shim), TL_PROBE (tests/plugin/probe.c),
# TL_EXITDUMP (tests/real/exitdump.c), TL_PTH_PROG, TL_PCL_PROG,
# TL_BOOST_PROG, TL_D_PROG, and work, a directory of the test's own.

# What a test reports; fail() also marks it failed and goes on, so that
# one run shows every difference.
failed=0
say() { echo "  $name: $*"; }
fail() { echo "  $name: FAIL: $*"; failed=1; }

normalise() { cat; }

# run_side SIDE STEP DIR CMD...: runs CMD in $work/SIDE/DIR, SIDE being
# plain (alone) or shim: with the shim preloaded (then any plugins in
# $EXTRA_PRELOAD), TASKLOCAL_STATS=1 and the variables of $TL_ENV (NAME=VALUE
# words), the library's lines going to $work/STEP.tl. With $TL_TIMEOUT set,
# CMD is ended after that many seconds (timeout(1) runs outside the shim, so
# that its own process prints nothing). CMD's stdout, stderr and status are
# kept as $work/STEP.SIDE.{out,err,rc}.
run_side() {
  side=$1 step=$2 dir=$3
  shift 3
  mkdir -p "$work/$side/$dir"
  set +e
  # shellcheck disable=SC2086
  if [ "$side" = plain ]; then
    (cd "$work/plain/$dir" && exec ${TL_TIMEOUT:+timeout -k 5 $TL_TIMEOUT} env -u LD_PRELOAD "$@")
  else
    (cd "$work/shim/$dir" && exec ${TL_TIMEOUT:+timeout -k 5 $TL_TIMEOUT} \
      env LD_PRELOAD="$TL_LIB${EXTRA_PRELOAD:+ $EXTRA_PRELOAD}" \
      TASKLOCAL_STATS=1 TASKLOCAL_LOG="$work/$step.tl" ${TL_ENV:-} "$@")
  fi >"$work/$step.$side.out" 2>"$work/$step.$side.err"
  echo $? >"$work/$step.$side.rc"
  set -e
}

# run_pair STEP DIR CMD...: run_side of CMD alone, then under the shim.
run_pair() {
  step=$1 dir=$2
  shift 2
  run_side plain "$step" "$dir" "$@"
  run_side shim "$step" "$dir" "$@"
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

# leak_tasks STEP: the N of the "leak summary: N tasks" line that STEP's
# process wrote (TASKLOCAL_LEAKS=1 in $TL_ENV), empty when it wrote none.
leak_tasks() {
  sed -n 's/^tasklocal: leak summary: \([0-9]*\) tasks, [0-9]* locals$/\1/p' "$work/$1.tl" 2>/dev/null | head -n 1
}

# check_leaks STEP TASKS [LEAKED]: STEP's leak report names TASKS tasks in
# its summary (a number, or "any"); with LEAKED, its line "leak kinds: L
# leaked, P parked" names LEAKED leaked tasks (no such line fails).
check_leaks() {
  step=$1 want=$2 want_leaked=${3:-}
  got=$(leak_tasks "$step")
  if [ -z "$got" ]; then
    fail "$step: no leak summary line (TASKLOCAL_LEAKS=1)"
    return 0
  fi
  if [ "$want" != any ] && [ "$got" -ne "$want" ]; then
    fail "$step: the leak summary names $got tasks, expected $want:"
    grep -E '^tasklocal: (leak|task [0-9]+:)' "$work/$step.tl" | head -12 | sed 's/^/    /'
  fi
  kinds=$(sed -n 's/^tasklocal: leak kinds: \([0-9]*\) leaked, \([0-9]*\) parked$/\1 \2/p' "$work/$step.tl" | head -n 1)
  if [ -n "$want_leaked" ]; then
    if [ -z "$kinds" ]; then
      fail "$step: no 'leak kinds:' line in the leak report"
    elif [ "${kinds% *}" -ne "$want_leaked" ]; then
      fail "$step: the report calls ${kinds% *} tasks leaked, expected $want_leaked"
    fi
  fi
  say "$step: leak summary: $got tasks${kinds:+ (leaked, parked: $kinds)}"
}

# stat_of STEP FIELD: FIELD=N of STEP's own stats line (the one without
# "(pid N)"), empty when there is none.
stat_of() {
  grep '^tasklocal: stats: .*[0-9]$' "$work/$1.tl" 2>/dev/null | head -n 1 | sed -n "s/.* $2=\([0-9]*\).*/\1/p"
}
