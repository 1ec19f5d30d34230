# QEMU's block layer: qemu-img, qemu-io and qemu-nbd run every request in
# a coroutine. QEMU starts a coroutine with makecontext and swapcontext, and
# from then on switches with sigsetjmp/siglongjmp, which the shim never
# sees: it finds the task from the stack pointer (the "untracked" count).
need qemu-img qemu-io qemu-nbd
TL_ENV="TASKLOCAL_LEAKS=1"

# qemu-io prints the time and rate of each request; qemu-img bench the
# time of the run.
normalise() {
  sed -E -e 's/[0-9.]+ sec \([^)]*\)/T sec (RATE)/' -e 's/completed in [0-9.]+ seconds/completed in T seconds/'
}

run_pair create q qemu-img create -f qcow2 disk.qcow2 32M
same create
run_pair io q qemu-io -f qcow2 \
  -c 'write -P 0xa5 0 1M' -c 'write -P 0x5a 4M 256k' -c 'aio_write -P 0x11 8M 64k' -c 'aio_flush' \
  -c 'writev -P 0x22 16M 4k 4k 8k' -c 'read -P 0xa5 0 1M' -c 'read -P 0x5a 4M 256k' \
  -c 'readv -P 0x22 16M 16k' -c 'read -P 0x11 8M 64k' -c 'read -P 0 24M 64k' -c 'discard 4M 64k' \
  -c 'read -P 0 4M 64k' disk.qcow2
same io
run_pair convert q qemu-img convert -m 8 -W -c -O qcow2 disk.qcow2 copy.qcow2
same convert
run_pair convert-raw q qemu-img convert -m 4 -O raw copy.qcow2 copy.raw
same convert-raw
run_pair check q qemu-img check copy.qcow2
same check
run_pair compare q qemu-img compare disk.qcow2 copy.raw
same compare
run_pair map q qemu-img map --output=json copy.qcow2
same map
run_pair bench q qemu-img bench -c 2000 -d 16 -f qcow2 disk.qcow2
same bench

# qemu-nbd serves the image on a Unix socket, and qemu-io reads and
# writes it through NBD: the server's requests and the client's run in
# coroutines in both processes. The server leaves through exit once its
# one client is gone; the deadline kills it otherwise.
nbd() {
  side=$1 sock=$work/$1/q/nbd.sock
  TL_TIMEOUT=30 run_side "$side" nbd-server q qemu-nbd -k "$sock" -f qcow2 disk.qcow2 &
  server=$!
  tries=0
  while [ ! -S "$sock" ] && [ $tries -lt 200 ] && kill -0 $server 2>/dev/null; do
    sleep 0.1
    tries=$((tries + 1))
  done
  if [ ! -S "$sock" ]; then
    fail "nbd ($side): qemu-nbd made no socket:"
    sed 's/^/    /' "$work/nbd-server.$side.err" | head -10
    kill $server 2>/dev/null || true
  else
    TL_TIMEOUT=30 run_side "$side" nbd-client q qemu-io -f raw -c 'read -P 0xa5 0 1M' \
      -c 'write -P 0x77 2M 64k' -c 'read -P 0x77 2M 64k' -c 'read -P 0x22 16M 4k' "nbd+unix:///?socket=$sock"
  fi
  wait $server || true
}
nbd plain
nbd shim
same nbd-server err
same nbd-client

# At least one coroutine per qemu-img/qemu-io/qemu-nbd process that did
# I/O.
check_stats 9 create io convert convert-raw check compare map bench nbd-server nbd-client

# QEMU keeps terminated coroutines in a pool for reuse, and re-enters them
# with siglongjmp: they are still referenced at exit, so the report may
# name them, but calls none leaked.
for step in create io convert convert-raw check compare map bench nbd-server nbd-client; do
  check_leaks $step any 0
done
