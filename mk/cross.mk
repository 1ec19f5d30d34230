# The second architecture (doc/platforms.md): glibc on aarch64, cross-built with
# Debian's toolchain and tested under qemu-user (issue 17).
#
#   make cross          build/aarch64/libtasklocal.so
#   make check-cross    its Check suites, each pattern program among them,
#                       under emulation (part of make check)
#
# Both run make ARCH=aarch64 (the Makefile's cross build: toolchain,
# sysroot, BUILD=build/aarch64), whose check-unit runs every suite through
# tests/cross/emulated.sh: the suites, the programs they start and the
# scripts that start programs all run under qemu-aarch64-static. Not run
# for aarch64: the sanitizer and valgrind builds (valgrind does not run
# under qemu-user, and ASan's and TSan's shadow memory does not fit its
# address space), the real third-party programs (their arm64 builds are
# not installed), stress and the fuzz corpus, which test the same C code
# as the x86_64 runs. Nor are benchmarks measured: under emulation a
# timing says nothing about aarch64 hardware.

CROSS_ARCH := aarch64
# The cross make gets its compilers by name, whatever CC this make has.
CROSS_MAKE = $(MAKE) --no-print-directory ARCH=$(CROSS_ARCH) CC=$(CROSS_ARCH)-linux-gnu-gcc \
  CXX=$(CROSS_ARCH)-linux-gnu-g++ BUILD=$(BUILD)/$(CROSS_ARCH)

.PHONY: cross check-cross

ifneq ($(ARCH),$(CROSS_ARCH))
cross:
	$(CROSS_MAKE) all

check-cross:
	$(CROSS_MAKE) check-unit

CHECK_EXTRA += check-cross
endif

# Benchmarks of an emulated build are refused before anything runs; the
# demo runs its programs directly, which only a native build can.
ifneq ($(ARCH),$(HOST_ARCH))
ifneq ($(filter bench bench-backtrace,$(MAKECMDGOALS)),)
$(error make bench ARCH=$(ARCH): on this $(HOST_ARCH) machine $(ARCH) programs run under qemu-user, whose timings say nothing about $(ARCH) hardware, so no figures are printed. Run make bench on an $(ARCH) machine)
endif
ifneq ($(filter demo,$(MAKECMDGOALS)),)
$(error make demo ARCH=$(ARCH): the demo runs on the machine's own architecture; run make demo, or see doc/platforms.md for running an $(ARCH) program under qemu-user)
endif
endif
