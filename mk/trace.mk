# The trace of task switches (TASKLOCAL_TRACE, shim/trace.c): the programs
# that tests/check_trace.c runs traced, and the checks of
# scripts/tasklocal-trace (its summary, and its SVG picture as headless
# Chromium draws it).

TRACE_DIR := $(BUILD)/tests/trace
TRACE_TEST_PROGS := $(TRACE_DIR)/trace_prog $(TRACE_DIR)/trace_linked $(TRACE_DIR)/verify.py

$(TRACE_DIR): | deps
	mkdir -p $@

# An unmodified ucontext program: no tasklocal header, no tasklocal library.
$(TRACE_DIR)/trace_prog: tests/trace/trace_prog.c | $(TRACE_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@

# The same, linked with the library: a set-user-ID program ignores LD_PRELOAD.
$(TRACE_DIR)/trace_linked: tests/trace/trace_prog.c $(LIB) | $(TRACE_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread -DTRACE_LINKED $< -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -Wl,--no-as-needed -ltasklocal

$(TRACE_DIR)/verify.py: tests/trace/verify.py | $(TRACE_DIR)
	cp $< $@

$(BUILD)/tests/check_trace: $(TRACE_TEST_PROGS)
check-unit: $(TRACE_TEST_PROGS)

# The demo of doc/trace.md's picture, and of make trace-demo.
$(TRACE_DIR)/trace_demo: tests/trace/trace_demo.c | $(TRACE_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@

# Headless Chromium draws the SVG for the tool's test; scripts/install-deps
# --chromium installs it (without its recommended packages, about 120 MB)
# when apt-get can; without it the screenshot is skipped, and says so.
.PHONY: trace-deps check-trace-tool trace-demo
trace-deps:
	@scripts/install-deps --chromium || \
	  echo "check-trace-tool: Chromium could not be installed; the screenshot will be skipped" >&2

check-trace-tool: $(LIB) $(TRACE_DIR)/trace_demo | trace-deps
	python3 tests/trace/check_tool.py $(CURDIR) $(abspath $(BUILD))

CHECK_EXTRA += check-trace-tool

# An unmodified M:N coroutine server under tasklocal-run --trace, its
# summary, and its timeline drawn into $(BUILD)/trace-demo.svg.
trace-demo: $(LIB) $(TRACE_DIR)/trace_demo
	@TASKLOCAL_LIB="$(abspath $(LIB))" scripts/tasklocal-run --trace $(BUILD)/trace-demo.json $(TRACE_DIR)/trace_demo
	@scripts/tasklocal-trace $(BUILD)/trace-demo.json summary
	@scripts/tasklocal-trace $(BUILD)/trace-demo.json svg $(BUILD)/trace-demo.svg
	@echo "the timeline: $(BUILD)/trace-demo.svg (open it in a browser); the trace: $(BUILD)/trace-demo.json (ui.perfetto.dev)"
