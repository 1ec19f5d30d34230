# make bench: the SPEC 6 benchmarks (tests/bench/), printed as one table of
# ratios measured side by side. Never part of make check: timings on a
# shared machine are figures to read, not tests to pass.
#
# GNU Pth (libpth-dev) is needed only here, for the pth_key_getdata
# comparison; it is installed by scripts/install-deps --bench when a
# program cannot be linked with it (Debian's Pth has no pkg-config file).

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

# The header-only variant (SPEC 3.10) is measured once the header has it.
BENCH_DYNAMIC := $(if $(shell grep -q TL_DYNAMIC include/tasklocal.h 2>/dev/null && echo yes),yes,no)
BENCH_PROGS := $(BENCH)/tlget $(BENCH)/ucbench $(BENCH)/mtbench $(BENCH)/libtlbenchkeys.so

.PHONY: bench bench-deps

# The TL_DYNAMIC variant is built apart: while header-only use is being
# written, a variant that does not build yet costs its row, not the table.
bench: $(LIB) $(BENCH_PROGS)
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
$(BENCH)/tlget: tests/bench/tlget.c include/tasklocal.h $(LIB) | $(BENCH) bench-deps
	$(CC) $(BENCH_CFLAGS) -pthread $(PTH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS) \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal $(PTH_LIBS)

# The same reads through header-only detection: no -ltasklocal, run with
# the library preloaded.
$(BENCH)/tlget-dyn: tests/bench/tlget.c include/tasklocal.h | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -pthread -DTL_DYNAMIC -DTLBENCH_NO_PTH $< -o $@ $(BENCH_LDFLAGS) -ldl

# An unmodified ucontext program: no tasklocal header, no tasklocal library.
$(BENCH)/ucbench: tests/bench/ucbench.c | $(BENCH)
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS)

# The same, with threads.
$(BENCH)/mtbench: tests/bench/mtbench.c | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -pthread $< -o $@ $(BENCH_LDFLAGS)

$(BENCH)/libtlbenchkeys.so: tests/bench/keys_plugin.c include/tasklocal.h $(LIB) | $(BENCH)
	$(CC) $(BENCH_CFLAGS) -shared -fPIC $< -o $@ $(BENCH_LDFLAGS) \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal

# The library built without the trace hooks (TL_NO_TRACE): what tracing
# costs when it is off, measured against the same sources without it.
BENCH_NOTRACE := $(BENCH)/notrace/libtasklocal.so
$(BENCH_NOTRACE): $(LIB_SRC) $(LIB_HDR) shim/tasklocal.map | $(BENCH)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_LIB) -DTL_NO_TRACE -fcf-protection $(LIB_SRC) -o $@ $(LDFLAGS_LIB)

bench: $(BENCH_NOTRACE)

# Instructions per switch under callgrind: the shim's swapcontext with
# tracing off, against the library built without the hooks. Deterministic,
# where timing is not: the honest measure of a cost of a few instructions.
$(BENCH)/cgswitch: tests/bench/cgswitch.c | $(BENCH)
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(BENCH_LDFLAGS)

.PHONY: bench-callgrind
bench-callgrind: $(LIB) $(BENCH_NOTRACE) $(BENCH)/cgswitch
	@sh tests/bench/callgrind.sh $(BENCH)/cgswitch $(abspath $(LIB)) $(abspath $(BENCH_NOTRACE))
