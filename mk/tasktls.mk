# The programs of tests/tasktls/, which the suite check_tasktls runs under
# the shim with TASKLOCAL_TASK_LOCAL (doc/task-local-tls.md): a library
# that keeps per-request state in thread-locals and a pthread key, the
# unmodified coroutine programs that use it, and a C++ program whose
# coroutines switch inside catch blocks. They are built by check-unit, and
# so with the sanitizer of check-asan; check-tasktls-tsan runs them built
# with ThreadSanitizer.

TASKTLS_DIR := $(BUILD)/tests/tasktls
TASKTLS_PROGS := $(TASKTLS_DIR)/libreqid.so $(TASKTLS_DIR)/interleave $(TASKTLS_DIR)/migrate \
                 $(TASKTLS_DIR)/sigjmp $(TASKTLS_DIR)/eh

$(TASKTLS_DIR):
	mkdir -p $@

$(TASKTLS_DIR)/libreqid.so: tests/tasktls/libreqid.c | $(TASKTLS_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -pthread $< -o $@

$(TASKTLS_DIR)/%: tests/tasktls/%.c tests/tasktls/reqid.h $(TASKTLS_DIR)/libreqid.so
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@ -L$(TASKTLS_DIR) -Wl,-rpath,'$$ORIGIN' -lreqid

$(TASKTLS_DIR)/eh: tests/tasktls/eh.cpp | $(TASKTLS_DIR)
	$(CXX) -std=c++17 $(WARN) -O2 -g $< -o $@

$(BUILD)/tests/check_tasktls: $(TASKTLS_PROGS)
check-unit: $(TASKTLS_PROGS)
