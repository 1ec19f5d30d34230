# tasklocal: task-local storage for ucontext coroutines.
#
#   make            build/libtasklocal.so
#   make check      every test: Check unit suites, the SPEC 2.3 programs under
#                   LD_PRELOAD, the same under ASan+UBSan and under valgrind
#   make demo       an unmodified coroutine program under the shim
#
# Missing build dependencies (libunwind, Check, pkg-config) are installed by
# scripts/install-deps, which runs by itself the first time they are absent.

CC ?= cc
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=

VERSION := 0.2.0
SONAME := libtasklocal.so.0

WARN := -Wall -Wextra -Werror
CSTD := -std=c11
HARDEN := -fcf-protection
# Link-time optimization: shim/ keeps one concern per file, and the linker
# then compiles the files as one unit, so a call from one concern into
# another (a task's life into the registry, tl_set into the key table)
# costs what it did within one file. The sanitizer builds set OPT
# themselves and do without.
OPT ?= -O2 -g -flto=auto
CFLAGS_LIB := $(CSTD) $(WARN) $(OPT) $(HARDEN) -fPIC -fvisibility=hidden -fno-plt -Iinclude
LDFLAGS_LIB = -shared -Wl,-soname,$(SONAME) -Wl,--version-script=shim/tasklocal.map \
              -Wl,-z,now -Wl,-z,noexecstack -Wl,--no-undefined $(LIB_LIBS) -ldl -pthread

# The dependency check runs once per make invocation, before anything else.
DEPS_OK := $(shell pkg-config --exists check libunwind 2>/dev/null && echo yes)
ifneq ($(DEPS_OK),yes)
ifeq ($(filter clean,$(MAKECMDGOALS)),)
$(info tasklocal: installing build dependencies with scripts/install-deps)
DEPS_RC := $(shell scripts/install-deps >&2; echo $$?)
ifneq ($(DEPS_RC),0)
$(error scripts/install-deps failed; install libunwind-dev, check and pkg-config by hand)
endif
endif
endif

LIB_LIBS = $(shell pkg-config --libs libunwind)
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS = $(shell pkg-config --libs check)

LIB_SRC := $(wildcard shim/*.c) shim/interpose.S
LIB_HDR := $(wildcard shim/*.h) include/tasklocal.h
LIB := $(BUILD)/libtasklocal.so

PROGRAMS := $(patsubst tests/programs/%.c,$(BUILD)/tests/programs/%,$(wildcard tests/programs/*.c))
SUITES := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/check_*.c))
PLUGIN := $(BUILD)/tests/libtlprobe.so

.PHONY: all check check-unit check-asan check-valgrind demo clean install uninstall
all: $(LIB)

$(BUILD)/obj/%.o: shim/%.c $(LIB_HDR) | $(BUILD)/obj
	$(CC) $(CFLAGS_LIB) -c $< -o $@

$(BUILD)/obj/interpose_s.o: shim/interpose.S | $(BUILD)/obj
	$(CC) $(HARDEN) -fPIC -c $< -o $@

LIB_OBJ := $(patsubst shim/%.c,$(BUILD)/obj/%.o,$(wildcard shim/*.c)) $(BUILD)/obj/interpose_s.o

$(LIB): $(LIB_OBJ) shim/tasklocal.map
	$(CC) $(LIB_OBJ) -o $@ $(LDFLAGS_LIB)
	ln -sf libtasklocal.so $(BUILD)/$(SONAME)

$(BUILD)/obj $(BUILD)/tests/programs:
	mkdir -p $@

# Unmodified ucontext programs: no tasklocal header, no tasklocal library.
$(BUILD)/tests/programs/%: tests/programs/%.c | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@

$(PLUGIN): tests/plugin/probe.c include/tasklocal.h $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -Iinclude $< -o $@ -L$(BUILD) -ltasklocal

$(BUILD)/tests/check_%: tests/check_%.c tests/testutil.h include/tasklocal.h $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread -Iinclude -Itests $(CHECK_CFLAGS) \
	  -DTL_BUILD_DIR='"$(abspath $(BUILD))"' $< -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal $(CHECK_LIBS) -ldl

# The header-only suite links no tasklocal library: it finds it at run time.
$(BUILD)/tests/check_dynamic: tests/check_dynamic.c tests/dynamic_tu2.c tests/testutil.h include/tasklocal.h $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread -Iinclude -Itests $(CHECK_CFLAGS) \
	  -DTL_BUILD_DIR='"$(abspath $(BUILD))"' tests/check_dynamic.c tests/dynamic_tu2.c -o $@ \
	  $(CHECK_LIBS) -ldl

check-unit: $(LIB) $(PROGRAMS) $(PLUGIN) $(SUITES)
	@fail=0; for t in $(SUITES); do \
	  echo "== $$t"; $$t || fail=1; \
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

check: check-unit check-asan $(CHECK_EXTRA)

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
