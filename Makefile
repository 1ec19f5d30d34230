# tasklocal: task-local storage for ucontext coroutines.
#
#   make            build/libtasklocal.so
#   make check      every test: Check unit suites, the switch-pattern programs under
#                   LD_PRELOAD, the same under ASan+UBSan and under valgrind,
#                   and the aarch64 build's suites under qemu-user; each
#                   suite runs, is timed, and is counted on the last line
#                   (doc/testing.md)
#   make demo       an unmodified coroutine program under the shim
#
# Missing build dependencies (libunwind, libelf, libdw, Check, pkg-config)
# are installed by scripts/install-deps, which the deps target runs before
# the first rule that compiles (make deps runs it alone).
#
# Targets: glibc on x86_64 and on aarch64. ARCH names the target (the
# machine's own by default); another one is cross-built with Debian's
# $(ARCH)-linux-gnu- toolchain into build/$(ARCH) (mk/cross.mk):
#
#   make ARCH=aarch64               build/aarch64/libtasklocal.so
#   make ARCH=aarch64 check-unit    its suites, run under qemu-user

HOST_ARCH := $(shell uname -m)
ARCH ?= $(HOST_ARCH)
ifeq ($(ARCH),amd64)
override ARCH := x86_64
endif
ifeq ($(ARCH),arm64)
override ARCH := aarch64
endif
ifeq ($(filter x86_64 aarch64,$(ARCH)),)
$(error tasklocal builds for glibc on x86_64 and aarch64 only, not for ARCH=$(ARCH): 32-bit targets, other architectures, musl and other C libraries are not supported)
endif

# A cross build: Debian's toolchain for the target, and the target's
# libunwind, libdw and Check unpacked into $(BUILD)/sysroot (scripts/install-deps
# --cross, which explains why they are not installed as multiarch
# packages). The compiler finds their headers there, the linker their
# libraries, and every library and program built carries the sysroot's
# directories in its DT_RPATH, so that they load under qemu-user with
# nothing set (an RPATH, not a RUNPATH: the dynamic linker also searches
# it for libunwind's own liblzma). A build on an aarch64 machine is a
# native one and has none of this.
ifneq ($(ARCH),$(HOST_ARCH))
CROSS ?= $(ARCH)-linux-gnu-
BUILD ?= build/$(ARCH)
CROSS_SYSROOT ?= $(abspath $(BUILD))/sysroot
CROSS_LIBDIRS := $(CROSS_SYSROOT)/usr/lib/$(ARCH)-linux-gnu:$(CROSS_SYSROOT)/lib/$(ARCH)-linux-gnu
CROSS_FLAGS := -isystem $(CROSS_SYSROOT)/usr/include/$(ARCH)-linux-gnu -isystem $(CROSS_SYSROOT)/usr/include \
  -Wl,-rpath-link,$(CROSS_LIBDIRS) -Wl,--disable-new-dtags -Wl,-rpath,$(CROSS_LIBDIRS)
ifeq ($(origin CC),default)
CC := $(CROSS)gcc
endif
ifeq ($(origin CXX),default)
CXX := $(CROSS)g++
endif
override CC += $(CROSS_FLAGS)
override CXX += $(CROSS_FLAGS)
# clang, for the programs built by both compilers (mk/cxx.mk), finds the
# same toolchain by the target's name.
CC_CLANG ?= clang --target=$(ARCH)-linux-gnu $(CROSS_FLAGS)
CXX_CLANG ?= clang++ --target=$(ARCH)-linux-gnu $(CROSS_FLAGS)
PKG_CONFIG ?= PKG_CONFIG_LIBDIR=$(CROSS_SYSROOT)/usr/lib/$(ARCH)-linux-gnu/pkgconfig \
  PKG_CONFIG_SYSROOT_DIR=$(CROSS_SYSROOT) pkg-config
DEPS_FLAGS := --cross=$(CROSS_SYSROOT)
# The suites run under qemu-user (tests/cross/emulated.sh), and know it.
# Emulated, a program runs 4 to 8 times as slowly as natively (tl_get
# loops, allocation-heavy report paths): every timeout is scaled by 4 (see
# SLOWDOWN below), and the suites make fewer runs where they can
# (tests/check_faults.c samples its allocation points; doc/testing.md).
EMULATE := tests/cross/emulated.sh $(ARCH)
SLOWDOWN ?= 4
TEST_DEFS := -DTL_TEST_EMULATED=1 -DTL_TEST_CC='"$(CC)"'
endif

CC ?= cc
BUILD ?= build
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
DESTDIR ?=

VERSION := 0.3.0
SONAME := libtasklocal.so.0

WARN := -Wall -Wextra -Werror
CSTD := -std=c11
# Control-flow protection: CET's indirect-branch tracking on x86_64 (the
# wrappers are not shadow-stack aware: see doc/limits.md), BTI landing
# pads on aarch64 (shim/arch/aarch64.S has them, and marks its object so).
# Not aarch64's signed return addresses (pac-ret, part of
# -mbranch-protection=standard): libunwind 1.6 does not strip the
# signatures, so a backtrace through the library's own frames would stop
# at once (unw_backtrace) or crash (unw_step).
HARDEN_x86_64 := -fcf-protection
HARDEN_aarch64 := -mbranch-protection=bti
HARDEN := $(HARDEN_$(ARCH))
# The assembly has the landing pads (endbr64, bti c) but is not
# shadow-stack aware: on x86_64 it is assembled for IBT only, so that its
# object's CET note does not claim SHSTK, and no library linked from it
# does (the linker keeps a feature only when every object has it).
HARDEN_S_x86_64 := -fcf-protection=branch
HARDEN_S_aarch64 := $(HARDEN_aarch64)
HARDEN_S := $(HARDEN_S_$(ARCH))
# Link-time optimization: shim/ keeps one concern per file, and the linker
# then compiles the files as one unit, so a call from one concern into
# another (a task's life into the registry, tl_set into the key table)
# costs what it did within one file. The sanitizer builds set OPT
# themselves and do without.
OPT ?= -O2 -g -flto=auto
CFLAGS_LIB := $(CSTD) $(WARN) $(OPT) $(HARDEN) -fPIC -fvisibility=hidden -fno-plt -Iinclude
# The interposed functions carry glibc's base version of the target
# (GLIBC_2.2.5 on x86_64, GLIBC_2.17 on aarch64), so each has its map.
LIB_MAP_x86_64 := shim/tasklocal.map
LIB_MAP_aarch64 := shim/arch/aarch64.map
LIB_MAP := $(LIB_MAP_$(ARCH))
LDFLAGS_LIB = -shared -Wl,-soname,$(SONAME) -Wl,--version-script=$(LIB_MAP) \
              -Wl,-z,now -Wl,-z,noexecstack -Wl,--no-undefined $(LIB_LIBS) -ldl -pthread

LIB_LIBS = $(shell $(PKG_CONFIG) --libs libunwind libdw libelf)
CHECK_CFLAGS = $(shell $(PKG_CONFIG) --cflags check)
CHECK_LIBS = $(shell $(PKG_CONFIG) --libs check)

LIB_SRC := $(wildcard shim/*.c shim/task/*.c shim/reach/*.c shim/report/*.c) shim/arch/$(ARCH).S
# The public headers: the API, header-only use (TL_DYNAMIC) and C++.
PUBLIC_HDR := include/tasklocal.h include/tasklocal_dynamic.h include/tasklocal.hpp
LIB_HDR := $(wildcard shim/*.h shim/task/*.h shim/reach/*.h shim/report/*.h) $(PUBLIC_HDR)
LIB := $(BUILD)/libtasklocal.so

PROGRAMS := $(patsubst tests/programs/%.c,$(BUILD)/tests/programs/%,$(wildcard tests/programs/*.c))
SUITES := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
PLUGIN := $(BUILD)/tests/libtlprobe.so

.PHONY: all check check-unit check-asan check-valgrind demo clean install uninstall
all: $(LIB)

# Dependencies are installed by the deps target, which every build
# directory below has as an order-only prerequisite, and every rule that
# compiles has its directory as one: so deps runs once per make, before the
# first compiler, and only when something is built. scripts/install-deps
# tests each dependency as the build uses it and is quiet when nothing is
# missing. It then checks what the compiler builds for, asked of its
# preprocessor: glibc, Linux, 64-bit, and the architecture ARCH names. A
# compiler for musl, for a 32-bit target (-m32, -mx32) or for another
# machine is refused there, before anything is built. (Neither runs while
# make reads this file: a cross compiler that deps installs is not there
# yet at that time.)
TARGET_PROBE := '\043include <features.h>\n\043if !defined(__GLIBC__) || !defined(__linux__) || !defined(__LP64__)\n \
  unsupported\n\043elif defined(__x86_64__)\nx86_64\n\043elif defined(__aarch64__)\naarch64\n\043else\nunsupported\n\043endif\n'

.PHONY: deps
deps:
	@scripts/install-deps $(DEPS_FLAGS) || { echo "make: scripts/install-deps $(DEPS_FLAGS) failed; install libunwind-dev, libelf-dev, libdw-dev, check and pkg-config (for $(ARCH)) by hand" >&2; exit 1; }
	@seen=$$(printf $(TARGET_PROBE) | $(CC) -E -P -x c - 2>/dev/null | tr -d ' '); \
	if [ "$$seen" != "$(ARCH)" ]; then \
	  echo "make: $(firstword $(CC)) does not build for glibc on $(ARCH) (its preprocessor says: $${seen:-nothing: no such compiler, or no glibc headers for it}): tasklocal supports glibc on x86_64 and aarch64, 64-bit only; musl, 32-bit targets and other C libraries are refused" >&2; \
	  exit 1; \
	fi

$(BUILD)/obj/%.o: shim/%.c $(LIB_HDR) | $(BUILD)/obj
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_LIB) -c $< -o $@

# The offsets and constants of the assembly, generated from the C structs
# as Linux's asm-offsets.h is: shim/arch/asm-offsets.c compiled to
# assembly, each of its "->NAME value" lines made a #define.
ASM_OFFSETS := $(BUILD)/obj/asm-offsets.h
$(BUILD)/obj/asm-offsets.s: shim/arch/asm-offsets.c $(LIB_HDR) | $(BUILD)/obj
	$(CC) $(CSTD) $(WARN) -O2 -fPIC -Iinclude -S $< -o $@

$(ASM_OFFSETS): $(BUILD)/obj/asm-offsets.s
	{ echo '/* Generated from shim/arch/asm-offsets.c by the Makefile: do not edit. */'; \
	  sed -n 's/^[[:space:]]*\.ascii[[:space:]]*"->\([A-Z0-9_]*\) [$$#]\{0,1\}\(-\{0,1\}[0-9]*\)"$$/#define \1 \2/p' $<; } >$@.tmp
	@grep -q '^#define TH_CURRENT ' $@.tmp || { echo "$@: no offsets found in $<" >&2; rm -f $@.tmp; exit 1; }
	mv $@.tmp $@

$(BUILD)/obj/arch_s.o: shim/arch/$(ARCH).S $(ASM_OFFSETS) | $(BUILD)/obj
	$(CC) $(HARDEN_S) -fPIC -I$(BUILD)/obj -c $< -o $@

LIB_OBJ := $(patsubst shim/%.c,$(BUILD)/obj/%.o,$(wildcard shim/*.c shim/task/*.c shim/reach/*.c shim/report/*.c)) $(BUILD)/obj/arch_s.o

$(LIB): $(LIB_OBJ) $(LIB_MAP)
	$(CC) $(LIB_OBJ) -o $@ $(LDFLAGS_LIB)
	ln -sf libtasklocal.so $(BUILD)/$(SONAME)

$(BUILD)/obj $(BUILD)/tests/programs: | deps
	mkdir -p $@

# Unmodified ucontext programs: no tasklocal header, no tasklocal library.
$(BUILD)/tests/programs/%: tests/programs/%.c tests/programs/prog.h | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@

$(PLUGIN): tests/plugin/probe.c $(PUBLIC_HDR) $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -Iinclude $< -o $@ -L$(BUILD) -ltasklocal

$(BUILD)/tests/check_%: tests/check_%.c tests/testutil.h $(PUBLIC_HDR) $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread -Iinclude -Itests $(CHECK_CFLAGS) \
	  -DTL_BUILD_DIR='"$(abspath $(BUILD))"' $(TEST_DEFS) $< -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal $(CHECK_LIBS) -ldl

# The header-only suite links no tasklocal library: it finds it at run time.
$(BUILD)/tests/check_dynamic: tests/check_dynamic.c tests/dynamic_tu2.c tests/testutil.h $(PUBLIC_HDR) $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread -Iinclude -Itests $(CHECK_CFLAGS) \
	  -DTL_BUILD_DIR='"$(abspath $(BUILD))"' $(TEST_DEFS) tests/check_dynamic.c tests/dynamic_tu2.c -o $@ \
	  $(CHECK_LIBS) -ldl

# The fast-path suite is linked with the library's sources, not with the
# library: it calls the C halves of the wrappers itself, and counts the
# calls that the assembly makes into them (--wrap). Without link-time
# optimization, which would resolve those calls before --wrap sees them.
$(BUILD)/tests/check_fastpath: tests/check_fastpath.c tests/testutil.h $(LIB_SRC) $(LIB_HDR) $(ASM_OFFSETS) \
  | $(BUILD)/tests/programs
	$(CC) $(filter-out -flto%,$(CFLAGS_LIB)) -pthread -Ishim -Itests -I$(dir $(ASM_OFFSETS)) $(CHECK_CFLAGS) \
	  -DTL_BUILD_DIR='"$(abspath $(BUILD))"' $(TEST_DEFS) $(LIB_SRC) $< -o $@ \
	  -Wl,--wrap=tl__before_swap -Wl,--wrap=tl__before_make $(LIB_LIBS) $(CHECK_LIBS) -ldl

# Timeouts (doc/testing.md). Check multiplies each test case's timeout by
# CK_TIMEOUT_MULTIPLIER, and tests/testutil.h scales the deadlines the
# suites put on their child processes by the same factor: SLOWDOWN times
# TIMEOUT_SCALE. SLOWDOWN is how much slower than the plain native build
# the build under test runs, set where it is built: 1 here, more under
# emulation (the cross build above) and with sanitizers (check-asan,
# check-tsan), where every instruction costs several. TIMEOUT_SCALE is
# the user's, for a machine slower than the busy 2 cores the timeouts are
# sized for: make check TIMEOUT_SCALE=2.
SLOWDOWN ?= 1
TIMEOUT_SCALE ?= 1
TIMEOUT_MULT = $$(( $(SLOWDOWN) * $(TIMEOUT_SCALE) ))

# Each suite runs even when one before it failed; each one's time and its
# slowest test's share of that test's timeout are printed (tests/run-each.sh,
# tl_test_run in tests/testutil.h).
check-unit: $(LIB) $(PROGRAMS) $(PLUGIN) $(SUITES)
	@CK_TIMEOUT_MULTIPLIER=$(TIMEOUT_MULT) sh tests/run-each.sh check-unit '$(EMULATE)' $(SUITES)

# The same suites against a library and tests built with AddressSanitizer
# and UndefinedBehaviorSanitizer, which run them about twice as slowly.
check-asan:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SLOWDOWN=$(ASAN_SLOWDOWN) \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  CC="$(CC) -fsanitize=address,undefined" check-unit
ASAN_SLOWDOWN := 2

# Fragments in mk/ add their own targets and append to CHECK_EXTRA the ones
# that make check must run.
CHECK_EXTRA :=
-include $(sort $(wildcard mk/*.mk))

# make check runs its suites one after the other, each with its own make
# (which builds what it needs, with the -j given), through
# tests/run-each.sh: every suite runs even when one fails, each one's time
# is printed, the failed ones are named at the end, a last line counts
# them ("check: 14 passed, 0 failed"), and make check fails if any did.
# One at a time, so that no suite's timeouts have to allow for another
# suite running beside it.
ifeq ($(ARCH),$(HOST_ARCH))
CHECK_SUITES := check-unit check-asan $(CHECK_EXTRA)
else
# A cross build is tested under emulation: its suites (mk/cross.mk).
CHECK_SUITES := check-unit
endif
check:
	@sh tests/run-each.sh check '$(MAKE) --no-print-directory' $(CHECK_SUITES)

demo: $(LIB) $(BUILD)/tests/programs/demo $(PLUGIN) $(BUILD)/tests/programs/leak_demo $(LEAKPLUG)
	@echo "== an unmodified coroutine program, run alone:"
	@$(BUILD)/tests/programs/demo
	@echo
	@echo "== the same binary under the shim, with a plugin that keeps one record per coroutine:"
	@LD_PRELOAD="$(abspath $(LIB)) $(abspath $(PLUGIN))" $(BUILD)/tests/programs/demo
	@echo
	@echo "== a variant with three bugs, under scripts/tasklocal-run --leaks --stats (report on stderr):"
	@LD_PRELOAD="$(abspath $(LEAKPLUG))" TASKLOCAL_LIB="$(abspath $(LIB))" \
	  scripts/tasklocal-run --leaks --stats $(BUILD)/tests/programs/leak_demo

clean:
	rm -rf $(BUILD)
