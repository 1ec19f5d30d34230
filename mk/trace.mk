# The trace of task switches (TASKLOCAL_TRACE, shim/trace.c): the programs
# that tests/check_trace.c runs traced, and the checks of
# scripts/tasklocal-trace (its summary, and its SVG picture as headless
# Chromium draws it).

TRACE_DIR := $(BUILD)/tests/trace
TRACE_TEST_PROGS := $(TRACE_DIR)/trace_prog $(TRACE_DIR)/trace_linked $(TRACE_DIR)/verify.py

$(TRACE_DIR):
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
