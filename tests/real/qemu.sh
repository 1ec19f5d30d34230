# QEMU's block layer: qemu-img and qemu-io run every request in a
# coroutine. QEMU starts a coroutine with makecontext and swapcontext, and
# from then on switches with sigsetjmp/siglongjmp, which the shim never
# sees: it finds the task from the stack pointer (the "untracked" count).
need qemu-img qemu-io

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

# At least one coroutine per qemu-img/qemu-io process that did I/O.
check_stats 7 create io convert convert-raw check compare map bench
