# The leak report's kinds (doc/reports.md): the benchmark of the scan at
# exit, which make bench prints before its table, as a time (there is no
# target to meet: the scan reads all of the heap that is reachable).

$(BUILD)/tests/bench/bench_scan: tests/bench/bench_scan.c | deps
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@

.PHONY: bench-scan
bench-scan: $(LIB) $(BUILD)/tests/bench/bench_scan
	@$(BUILD)/tests/bench/bench_scan $(abspath $(LIB))

bench-micro: bench-scan

# LeakSanitizer and suspended tasks (doc/reports.md): tests/programs/lsan_roots
# built with AddressSanitizer keeps a block only on a parked coroutine's
# mmap'd stack; under the shim, which makes that stack a root region while
# the coroutine is suspended, LeakSanitizer must not report the block (it
# does, with its 1234 bytes, when the stack is not registered).
.PHONY: check-lsan-roots
check-lsan-roots: $(LIB) $(BUILD)/tests/san-programs/lsan_roots.asan
	@out=$$(ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1 LD_PRELOAD=$(abspath $(LIB)) \
	  $(BUILD)/tests/san-programs/lsan_roots.asan 2>&1); rc=$$?; \
	if [ $$rc -ne 0 ] || ! printf '%s\n' "$$out" | grep -q '^done$$' || \
	   printf '%s\n' "$$out" | grep -q '1234 byte'; then \
	  echo "check-lsan-roots: LeakSanitizer reported a parked task's block (status $$rc):"; \
	  printf '%s\n' "$$out" | head -30; exit 1; \
	fi; echo "check-lsan-roots: a parked task's block is not reported"

CHECK_EXTRA += check-lsan-roots
