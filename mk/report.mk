# Leak reports, dumps and options (doc/reports.md): the test plugin of the leaky
# programs, and the benchmark of backtrace capture.

LEAKPLUG := $(BUILD)/tests/libtlleakplug.so

$(LEAKPLUG): tests/plugin/leakplug.c $(PUBLIC_HDR) $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -Iinclude $< -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal -pthread

# The report suite runs the leaky programs with this plugin preloaded.
$(BUILD)/tests/check_report: $(LEAKPLUG)
check-unit: $(LEAKPLUG)

FAKEBT := $(BUILD)/tests/libtlfakebt.so

$(FAKEBT): tests/plugin/fakebt.c | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC $< -o $@

$(BUILD)/tests/check_report: $(FAKEBT)
check-unit: $(FAKEBT)

# The cost of capturing creation backtraces: task life with
# TASKLOCAL_BACKTRACE=1 against =0, printed as a ratio.
$(BUILD)/tests/bench/bench_backtrace: tests/bench/bench_backtrace.c | deps
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@

.PHONY: bench-backtrace
bench-backtrace: $(LIB) $(BUILD)/tests/bench/bench_backtrace
	@$(BUILD)/tests/bench/bench_backtrace $(abspath $(LIB))

# make bench prints this measurement too, before its table.
bench-micro: bench-backtrace

# The released-task suite runs tests/programs/ends with the same plugin.
$(BUILD)/tests/check_release: $(LEAKPLUG)

# make bench's row 10: the exit report of 100,000 leaked tasks in 10 groups
# (tests/bench/report_time.sh), with the leaky program built into the
# benchmarks' directory.
$(BENCH)/leak_many: tests/programs/leak_many.c | $(BENCH)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@

bench-micro: $(BENCH)/leak_many

# The report suite counts the library's allocations to make the report's
# own fail (tests/faults/alloccount.c, mk/faults.mk).
$(BUILD)/tests/check_report: $(ALLOCCOUNT)
