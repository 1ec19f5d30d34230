# OpenSSL's ASYNC jobs (Debian's openssl and libssl3): libcrypto makes each
# pooled job with makecontext, enters it the first time with setcontext,
# and from then on switches with _setjmp/_longjmp, which the shim never
# sees. A job's function never returns: a finished job switches back to
# the dispatcher and waits in the pool for the next one, and
# ASYNC_cleanup_thread frees every job's stack at exit.
#
# Three steps, each alone and under the shim with the leak report on:
# - s_server -async -WWW serves a file over TLS to s_client -async, on
#   127.0.0.1 at a port the kernel chooses, with a certificate made here;
#   the server takes one connection (-naccept 1) and leaves through exit,
#   and is killed if it has not after the deadline;
# - openssl speed -async_jobs, briefly: the same exit status and the same
#   report, its rates aside.
need openssl

# Every request runs as an async job, but no engine here pauses one, so
# each job runs to its end in one go: the pool hands out the same job
# again, and only the first entry is a switch the shim sees.
TL_ENV="TASKLOCAL_LEAKS=1"
TL_TIMEOUT=30

# The key and certificate are made once, alone, for both runs.
mkdir -p "$work/plain/www" "$work/shim/www"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj /CN=localhost -days 2 -keyout "$work/key.pem" -out "$work/cert.pem" \
    >"$work/req.log" 2>&1; then
  fail "openssl req could not make the test's certificate:"
  sed 's/^/    /' "$work/req.log" | head -10
  exit 1
fi
for side in plain shim; do
  printf 'tasklocal under OpenSSL async jobs\n%s\n' "$(seq 1 200)" >"$work/$side/www/page.txt"
done

normalise() {
  sed -E -e 's/^ACCEPT 127\.0\.0\.1:[0-9]+$/ACCEPT 127.0.0.1:PORT/'
}

# tls SIDE: the server in the background, the client once the server has
# said which port it listens on, then the server's end (it leaves after
# one connection; the deadline kills it otherwise).
tls() {
  side=$1
  run_side "$side" server www openssl s_server -async -WWW -accept 127.0.0.1:0 -naccept 1 \
    -cert "$work/cert.pem" -key "$work/key.pem" &
  server=$!
  port=
  tries=0
  while [ -z "$port" ] && [ $tries -lt 200 ] && kill -0 $server 2>/dev/null; do
    sleep 0.1
    port=$(sed -n 's/^ACCEPT 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$work/server.$side.out" 2>/dev/null)
    tries=$((tries + 1))
  done
  if [ -z "$port" ]; then
    fail "tls ($side): s_server did not say which port it listens on:"
    sed 's/^/    /' "$work/server.$side.err" 2>/dev/null | head -10
    kill $server 2>/dev/null || true
    wait $server || true
    return 0
  fi
  printf 'GET /page.txt HTTP/1.0\r\n\r\n' >"$work/request"
  run_side "$side" client . sh -c 'exec "$@" <"$0"' "$work/request" \
    openssl s_client -async -connect "127.0.0.1:$port" -servername localhost -quiet
  wait $server || true
}

tls plain
tls shim
same server err
same client err
if ! grep -qx 200 "$work/client.shim.out"; then
  fail "the client under the shim did not receive the whole file"
fi

# A speed run of 1 second a figure, with 4 async jobs; its rates differ
# from run to run.
jobs=4
normalise() {
  sed -E -e 's/[0-9]+(\.[0-9]+)?[a-z]*/N/g'
}
run_pair speed . openssl speed -seconds 1 -async_jobs $jobs rsa2048
same speed err
# A sane output: the rates line under the shim gives two rates above 0.
if ! awk '/^rsa 2048 bits / { ok = ($6 > 0 && $7 > 0) } END { exit !ok }' "$work/speed.shim.out"; then
  fail "speed: no rsa 2048 rates above 0 under the shim:"
  tail -3 "$work/speed.shim.out" | sed 's/^/    /'
fi

# The stats lines: the server and client each make one job; speed makes
# the whole pool of $jobs at ASYNC_init_thread. Only the first entry
# into a job is a switch the shim sees (setcontext).
check_stats $((2 + jobs)) server client speed
for step in server client speed; do
  want=1
  [ $step != speed ] || want=$jobs
  created=$(stat_of $step created) switches=$(stat_of $step switches)
  [ "$created" = "$want" ] || fail "$step: the shim counted ${created:-no} jobs made, expected $want"
  [ "${switches:-0}" -ge 1 ] || fail "$step: the shim saw ${switches:-no} switches, expected at least 1"
done

# The leak reports name no task at all: ASYNC_cleanup_thread frees every
# job's stack, which releases it (the job that ran left with a _longjmp,
# unseen, and is found suspended from the stack pointer).
check_leaks server 0
check_leaks client 0
check_leaks speed 0
for step in server client speed; do
  want=1
  [ $step != speed ] || want=$jobs
  released=$(stat_of $step released)
  [ "$released" = "$want" ] || fail "$step: the shim counted ${released:-no} jobs released, expected $want"
done
