# The leak report's kinds (doc/reports.md): the benchmark of the scan at
# exit, which make bench prints before its table, as a time (there is no
# target to meet: the scan reads all of the heap that is reachable).

$(BUILD)/tests/bench/bench_scan: tests/bench/bench_scan.c
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@

.PHONY: bench-scan
bench-scan: $(LIB) $(BUILD)/tests/bench/bench_scan
	@$(BUILD)/tests/bench/bench_scan $(abspath $(LIB))

bench: bench-scan
