# make bench: the benchmarks of doc/performance.md (tests/bench/), printed as one table of
# ratios measured side by side. Never part of make check: timings on a
# shared machine are figures to read, not tests to pass.
#
# GNU Pth (libpth-dev) is needed only here, for the pth_key_getdata
# comparison; it is installed by scripts/install-deps --bench when a
# program cannot be linked with it (Debian's Pth has no pkg-config file).
#
# After the table come the real-program rows (tests/bench/real.sh, about a
# minute): stress-ng, qemu-io and qemu-img, openssl speed, PCL's benchmark
# loop and the D program of make check-real, each alone and under the
# shim; doc/performance.md tells what they measure and why a row misses.

# make bench BENCH=real runs the real-program rows alone. The switch
# arrives in the variable that names the benchmarks' directory, so that
# is taken back here, with override, which wins over the command line
# (and over the same word in a sub-make's MAKEFLAGS).
BENCH_ONLY :=
ifeq ($(BENCH),real)
BENCH_ONLY := real
override BENCH := $(BUILD)/bench
endif
BENCH := $(BUILD)/bench
BENCH_CFLAGS := $(CSTD) $(WARN) -O2 -g -Iinclude
# Bound at start-up: a lazy PLT resolution inside a task would put the
# dynamic linker's register save area (kilobytes with AVX-512) on the small
# stacks of the memory benchmark, and into the first timed call.
BENCH_LDFLAGS := -Wl,-z,now
# Expanded when the recipe runs, after bench-deps: without Pth (no apt-get,
# no network) the program is built without it and its row says so.
PTH_CFLAGS = $(shell scripts/install-deps --have=pth && { pth-config --cflags 2>/dev/null || true; } || echo -DTLBENCH_NO_PTH)
PTH_LIBS = $(shell scripts/install-deps --have=pth && { pth-config --ldflags --libs 2>/dev/null || echo -lpth; })

# The header-only variant (TL_DYNAMIC) is measured once the header has it.
BENCH_DYNAMIC := $(if $(shell grep -q TL_DYNAMIC include/tasklocal.h 2>/dev/null && echo yes),yes,no)
BENCH_PROGS := $(BENCH)/tlget $(BENCH)/ucbench $(BENCH)/mtbench $(BENCH)/libtlbenchkeys.so $(BENCH)/tlsbench

.PHONY: bench bench-deps

# The TL_DYNAMIC variant is built apart: while header-only use is being
# written, a variant that does not build yet costs its row, not the table.
# The real-program rows (tests/bench/real.sh) follow the table.
ifneq ($(BENCH_ONLY),real)
bench: bench-micro
endif
bench: bench-real

.PHONY: bench-micro bench-real
bench-micro: $(LIB) $(BENCH_PROGS)
	@dyn=$(BENCH_DYNAMIC); \
	if [ $$dyn = yes ] && ! $(MAKE) --no-print-directory $(BENCH)/tlget-dyn; then \
	  echo "bench: the TL_DYNAMIC variant does not build; its row will say so" >&2; dyn=failed; \
	fi; \
	sh tests/bench/run.sh $(BENCH) $(abspath $(LIB)) $$dyn

bench-deps:
	@scripts/install-deps --bench || \
	  echo "bench: GNU Pth could not be installed; the table goes on without it" >&2

$(BENCH): | deps
	mkdir -p $@

# Linked with the library (which then tracks ucontext without LD_PRELOAD)
# and with Pth, for the read benchmarks.
$(BENCH)/tlget: tests/bench/tlget.c $(PUBLIC_HDR) $(LIB) | $(BENCH) bench-deps
	$(CC) $(BENCH_CFLAGS) -pthread $(PTH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS) \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal $(PTH_LIBS)

# The same reads through header-only detection: no -ltasklocal, run with
# the library preloaded.
$(BENCH)/tlget-dyn: tests/bench/tlget.c $(PUBLIC_HDR) | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -pthread -DTL_DYNAMIC -DTLBENCH_NO_PTH $< -o $@ $(BENCH_LDFLAGS) -ldl

# An unmodified ucontext program: no tasklocal header, no tasklocal library.
$(BENCH)/ucbench: tests/bench/ucbench.c tests/bench/timeloop.h | $(BENCH)
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS)

# The same, with __thread variables and a pthread key made per task
# (TASKLOCAL_TASK_LOCAL), linked with the C++ runtime for cxx-eh.
$(BENCH)/tlsbench: tests/bench/tlsbench.c tests/bench/timeloop.h | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -pthread $< -o $@ $(BENCH_LDFLAGS) -Wl,--no-as-needed -lstdc++

# The same, with threads.
$(BENCH)/mtbench: tests/bench/mtbench.c | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -pthread $< -o $@ $(BENCH_LDFLAGS)

$(BENCH)/libtlbenchkeys.so: tests/bench/keys_plugin.c $(PUBLIC_HDR) $(LIB) | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -shared -fPIC $< -o $@ $(BENCH_LDFLAGS) \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal

# The library built without the trace hooks (TL_NO_TRACE): what tracing
# costs when it is off, measured against the same sources without it.
BENCH_NOTRACE := $(BENCH)/notrace/libtasklocal.so
$(BENCH_NOTRACE): $(LIB_SRC) $(LIB_HDR) $(ASM_OFFSETS) shim/tasklocal.map | $(BENCH)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) -I$(dir $(ASM_OFFSETS)) -DTL_NO_TRACE -fcf-protection $(LIB_SRC) -o $@ $(LDFLAGS_LIB)

bench-micro: $(BENCH_NOTRACE)

# Instructions per switch under callgrind: the shim's swapcontext with
# tracing off, against the library built without the hooks. Deterministic,
# where timing is not: the honest measure of a cost of a few instructions.
$(BENCH)/cgswitch: tests/bench/cgswitch.c | $(BENCH)
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS)

# The real programs are those of make check-real (their Debian packages,
# installed by scripts/install-deps --real; a missing one costs its row)
# and a loop of PCL's benchmark. bench-micro comes first when both run.
BENCH_REAL_D := $(BUILD)/real/d_prog
BENCH_REAL_PCL := $(BENCH)/pclbench
bench-real: $(LIB) $(BENCH_REAL_D) $(BENCH_REAL_PCL) $(BENCH)/cputime | $(if $(filter real,$(BENCH_ONLY)),,bench-micro)
	@sh tests/bench/real.sh $(abspath $(LIB)) $(abspath $(BENCH_REAL_D)) $(abspath $(BENCH_REAL_PCL)) \
	  $(abspath $(BENCH)/cputime)

$(BENCH)/cputime: tests/bench/cputime.c | $(BENCH)
	$(CC) $(BENCH_CFLAGS) $< -o $@

# Without PCL (libpcl1-dev) the program is not built and its row says so.
$(BENCH_REAL_PCL): tests/bench/pclbench.c | $(BENCH) real-deps
	@if scripts/install-deps --have=pcl; then \
	  echo "$(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS) -lpcl"; \
	  $(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS) -lpcl; \
	else echo "bench: PCL is not installed; its row will say so" >&2; fi

.PHONY: bench-callgrind
bench-callgrind: $(LIB) $(BENCH_NOTRACE) $(BENCH)/cgswitch
	@sh tests/bench/callgrind.sh $(BENCH)/cgswitch $(abspath $(LIB)) $(abspath $(BENCH_NOTRACE))
