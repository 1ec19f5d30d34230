#!/bin/sh
# emulated.sh ARCH COMMAND [ARGS...]: runs COMMAND (make check-unit of a
# cross build, usually) where every program built for ARCH runs under
# qemu-user, as if the machine were one: the Check suites, the unmodified
# programs they start, the shell scripts that start programs in turn
# (tasklocal-run), and a suite that runs itself again by /proc/self/exe.
#
# qemu runs them through binfmt_misc, which hands every exec of an ARCH
# ELF file to qemu-ARCH-static. Wrapping only the execs the test suites
# make themselves would miss the ones made by the scripts and programs
# they start. The handler is registered in a binfmt_misc of our own, in a
# new user and mount namespace (Linux 6.7 and later give each user
# namespace its own binfmt_misc), so nothing outside this command sees it
# and no privilege is needed; where that cannot be done (an older kernel),
# a handler the system already has is used (Debian's qemu-user-static with
# binfmt-support registers one); failing both, the script says what is
# missing and fails.
#
# The emulator is the static build: a dynamically linked qemu would itself
# load the LD_PRELOAD meant for the program (an ARCH library, which the
# host's dynamic linker refuses with an error message on stderr), while a
# static one leaves the whole environment to the emulated program. The
# emulated dynamic linker and libc are those of the cross toolchain
# (QEMU_LD_PREFIX, qemu's -L: /usr/ARCH-linux-gnu); the target's
# libunwind and Check are its Debian multiarch packages in
# /usr/lib/ARCH-linux-gnu, where that dynamic linker looks too.
set -eu

me=emulated.sh
[ $# -ge 2 ] || { echo "usage: $me ARCH COMMAND [ARGS...]" >&2; exit 2; }
arch=$1
shift

# The ELF header of an executable or shared object of the architecture:
# 64-bit, little-endian, current version, ET_EXEC or ET_DYN (the mask
# clears the low bit of e_type), and e_machine.
case $arch in
  aarch64)
    magic='\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
    mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff' ;;
  *) echo "$me: no emulation known for $arch" >&2; exit 2 ;;
esac

qemu=$(command -v "qemu-$arch-static" || true)
if [ -z "$qemu" ]; then
  echo "$me: qemu-$arch-static is missing (Debian: qemu-user-static; scripts/install-deps --cross installs it)" >&2
  exit 1
fi
QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/usr/$arch-linux-gnu}
export QEMU_LD_PREFIX
binfmt=/proc/sys/fs/binfmt_misc

if [ "${TL_EMULATED_INNER:-}" = "$arch" ]; then
  # In the new namespaces, once the parent has mapped our user ids (a new
  # user namespace has none until then): a binfmt_misc of our own, and
  # our handler in it. F: qemu is opened now, so that it runs whatever
  # the mount namespace becomes; P: the program's own argv[0] is kept;
  # C: a set-user-ID program runs with its owner's rights and the kernel
  # tells qemu (AT_SECURE), which tells the program.
  unset TL_EMULATED_INNER
  until read -r map < /proc/self/uid_map && [ -n "$map" ]; do sleep 0.01; done
  mount -t binfmt_misc tasklocal-binfmt "$binfmt"
  printf '%s' ":tasklocal-$arch:M::$magic:$mask:$qemu:PFC" > "$binfmt/register"
  exec "$@"
fi

# Linux 6.7 and later: a private binfmt_misc in a new user namespace. Run
# as root, every user and group id keeps its own number there (the tests
# make set-user-ID copies owned by nobody); run as a user, that user is
# root there and the only id there is.
if unshare --user --map-root-user --mount sh -c "mount -t binfmt_misc probe $binfmt" 2>/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    TL_EMULATED_INNER=$arch exec unshare --user --map-root-user --mount --fork -- "$0" "$arch" "$@"
  fi
  TL_EMULATED_INNER=$arch unshare --user --mount --fork -- "$0" "$arch" "$@" &
  ns=$!
  # Forwarded to the command, so that a caller's timeout reaches it.
  trap 'kill -TERM $ns 2>/dev/null' HUP INT TERM
  until [ -e "/proc/$ns/uid_map" ] && [ "$(readlink "/proc/$ns/ns/user")" != "$(readlink /proc/self/ns/user)" ]; do
    sleep 0.01
  done
  echo "0 0 4294967295" > "/proc/$ns/uid_map"
  echo "0 0 4294967295" > "/proc/$ns/gid_map"
  status=0
  wait $ns || status=$?
  # A trapped signal ends the first wait early: wait for the command itself.
  while kill -0 $ns 2>/dev/null; do wait $ns || status=$?; done
  exit $status
fi

# Otherwise a handler the system has registered, if it runs a static qemu.
for h in "$binfmt/qemu-$arch" "$binfmt/tasklocal-$arch"; do
  if [ -r "$h" ] && grep -qx enabled "$h"; then
    interp=$(sed -n 's/^interpreter //p' "$h")
    case $(readlink -f "$interp") in
      *-static) exec "$@" ;;
    esac
  fi
done

echo "$me: cannot run $arch programs here: this kernel gives no user namespace its own binfmt_misc" >&2
echo "$me: (Linux 6.7 or later), and no binfmt_misc handler runs qemu-$arch-static. On Debian," >&2
echo "$me: apt-get install binfmt-support qemu-user-static registers one for the whole system." >&2
exit 1
