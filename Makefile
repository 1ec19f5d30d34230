# tasklocal: task-local storage for ucontext coroutines.
#
#   make            build/libtasklocal.so
#   make check      every test: Check unit suites, the switch-pattern programs under
#                   LD_PRELOAD, the same under ASan+UBSan and under valgrind,
#                   and the aarch64 build's suites under qemu-user
#   make demo       an unmodified coroutine program under the shim
#
# Missing build dependencies (libunwind, libelf, libdw, Check, pkg-config) are installed by
# scripts/install-deps, which runs by itself the first time they are absent.
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
DEPS_CC = command -v $(firstword $(CC)) >/dev/null && command -v qemu-$(ARCH)-static >/dev/null &&
# The suites run under qemu-user (tests/cross/emulated.sh), and know it.
EMULATE := tests/cross/emulated.sh $(ARCH)
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

# The dependency check runs once per make invocation, before anything else.
DEPS_OK := $(shell $(DEPS_CC) $(PKG_CONFIG) --exists check libunwind libelf libdw 2>/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(info tasklocal: installing build dependencies with scripts/install-deps $(DEPS_FLAGS))
DEPS_RC := $(shell scripts/install-deps $(DEPS_FLAGS) >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error scripts/install-deps $(DEPS_FLAGS) failed; install libunwind-dev, libelf-dev, libdw-dev, check and pkg-config (for $(ARCH)) by hand)
endif
endif
endif

# What the compiler builds for, asked of its preprocessor: glibc, Linux,
# 64-bit, and the architecture ARCH names. A compiler for musl, for a
# 32-bit target (-m32, -mx32) or for another machine is refused here,
# before anything is built.
TARGET_PROBE := '\043include <features.h>\n\043if !defined(__GLIBC__) || !defined(__linux__) || !defined(__LP64__)\n \
  unsupported\n\043elif defined(__x86_64__)\nx86_64\n\043elif defined(__aarch64__)\naarch64\n\043else\nunsupported\n\043endif\n'
TARGET_ARCH_SEEN := $(if $(filter clean,$(MAKECMDGOALS)),$(ARCH),$(shell printf $(TARGET_PROBE) | \
  $(CC) -E -P -x c - 2>/dev/null | tr -d ' '))
ifneq ($(TARGET_ARCH_SEEN),$(ARCH))
$(error $(firstword $(CC)) does not build for glibc on $(ARCH) (its preprocessor says: $(or $(TARGET_ARCH_SEEN),nothing: no such compiler, or no glibc headers for it)): tasklocal supports glibc on x86_64 and aarch64, 64-bit only; musl, 32-bit targets and other C libraries are refused)
endif

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

$(BUILD)/obj $(BUILD)/tests/programs:
	mkdir -p $@

# Unmodified ucontext programs: no tasklocal header, no tasklocal library.
$(BUILD)/tests/programs/%: tests/programs/%.c | $(BUILD)/tests/programs
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

check-unit: $(LIB) $(PROGRAMS) $(PLUGIN) $(SUITES)
	@fail=0; for t in $(SUITES); do \
	  echo "== $$t"; $(EMULATE) $$t || fail=1; \
	done; exit $$fail

# The same suites against a library and tests built with AddressSanitizer
# and UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/asan \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  CC="$(CC) -fsanitize=address,undefined" check-unit

# Fragments in mk/ add their own targets and append to CHECK_EXTRA the ones
# that make check must run.
CHECK_EXTRA :=
-include $(sort $(wildcard mk/*.mk))

ifeq ($(ARCH),$(HOST_ARCH))
check: check-unit check-asan $(CHECK_EXTRA)
else
# A cross build is tested under emulation: its suites (mk/cross.mk).
check: check-unit
endif

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
