# The programs of tests/tasktls/, which the suite check_tasktls runs under
# the shim with TASKLOCAL_TASK_LOCAL (doc/task-local-tls.md): a library
# that keeps per-request state in thread-locals and a pthread key, the
# unmodified coroutine programs that use it, and a C++ program whose
# coroutines switch inside catch blocks. They are built by check-unit, and
# so with the sanitizer of check-asan; check-tasktls-tsan runs them built
# with ThreadSanitizer.

TASKTLS_DIR := $(BUILD)/tests/tasktls
TASKTLS_PROGS := $(TASKTLS_DIR)/libreqid.so $(TASKTLS_DIR)/interleave $(TASKTLS_DIR)/migrate \
                 $(TASKTLS_DIR)/sigjmp $(TASKTLS_DIR)/abandon $(TASKTLS_DIR)/latekey $(TASKTLS_DIR)/plugin $(TASKTLS_DIR)/keydelete $(TASKTLS_DIR)/eh

$(TASKTLS_DIR): | deps
	mkdir -p $@

$(TASKTLS_DIR)/libreqid.so: tests/tasktls/libreqid.c | $(TASKTLS_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -pthread $< -o $@

$(TASKTLS_DIR)/%: tests/tasktls/%.c tests/tasktls/reqid.h $(TASKTLS_DIR)/libreqid.so
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@ -L$(TASKTLS_DIR) -Wl,-rpath,'$$ORIGIN' -lreqid

# The plugin program dlopens the library next to it: not linked with it.
$(TASKTLS_DIR)/plugin: tests/tasktls/plugin.c $(TASKTLS_DIR)/libreqid.so
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@ -ldl

$(TASKTLS_DIR)/eh: tests/tasktls/eh.cpp | $(TASKTLS_DIR)
	$(CXX) -std=c++17 $(WARN) -O2 -g $< -o $@

# The C++ program built by clang++ too, when it is installed (the suite
# runs it when it is there): the same runtime, another compiler's code.
ifeq ($(ARCH),$(HOST_ARCH))
ifneq ($(shell command -v $(firstword $(CXX_CLANG)) 2>/dev/null),)
TASKTLS_PROGS += $(TASKTLS_DIR)/eh-clang
endif
endif

$(TASKTLS_DIR)/eh-clang: tests/tasktls/eh.cpp | $(TASKTLS_DIR)
	$(CXX_CLANG) -std=c++17 $(WARN) -O2 -g $< -o $@

$(BUILD)/tests/check_tasktls: $(TASKTLS_PROGS) $(ALLOCCOUNT)
check-unit: $(TASKTLS_PROGS)

# ASan and TSan builds of the same programs (the library, the C programs
# and the C++ one), run under the shim as built by make, through
# tasklocal-run (tests/tasktls/san.sh). TSan cannot follow the siglongjmp
# switches of sigjmp.c, with or without the shim (mk/sanitizers.mk).
TASKTLS_SAN := $(BUILD)/tests/tasktls-san
TASKTLS_SAN_C := interleave migrate

$(TASKTLS_SAN)/asan/libreqid.so $(TASKTLS_SAN)/tsan/libreqid.so: $(TASKTLS_SAN)/%/libreqid.so: tests/tasktls/libreqid.c | deps
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=$(if $(filter asan,$*),address,thread) -shared -fPIC -pthread $< -o $@

$(TASKTLS_SAN)/asan/%.asan: tests/tasktls/%.c tests/tasktls/reqid.h $(TASKTLS_SAN)/asan/libreqid.so
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=address -fno-omit-frame-pointer -pthread $< -o $@ \
	  -L$(@D) -Wl,-rpath,'$$ORIGIN' -lreqid

$(TASKTLS_SAN)/tsan/%.tsan: tests/tasktls/%.c tests/tasktls/reqid.h $(TASKTLS_SAN)/tsan/libreqid.so
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=thread -pthread $< -o $@ -L$(@D) -Wl,-rpath,'$$ORIGIN' -lreqid

$(TASKTLS_SAN)/asan/eh.asan: tests/tasktls/eh.cpp | deps
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(WARN) -O1 -g -fsanitize=address -fno-omit-frame-pointer $< -o $@

$(TASKTLS_SAN)/tsan/eh.tsan: tests/tasktls/eh.cpp | deps
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(WARN) -O1 -g -fsanitize=thread $< -o $@

.PHONY: check-tasktls-san
check-tasktls-san: $(LIB) $(patsubst %,$(TASKTLS_SAN)/asan/%.asan,$(TASKTLS_SAN_C) sigjmp eh) \
                   $(patsubst %,$(TASKTLS_SAN)/tsan/%.tsan,$(TASKTLS_SAN_C) eh)
	@ok=0; \
	tests/tasktls/san.sh address $(TASKTLS_SAN)/asan $(abspath $(LIB)) $(TASKTLS_SAN_C) sigjmp eh || ok=1; \
	tests/tasktls/san.sh thread $(TASKTLS_SAN)/tsan $(abspath $(LIB)) $(TASKTLS_SAN_C) eh || ok=1; \
	exit $$ok

ifeq ($(ARCH),$(HOST_ARCH))
CHECK_EXTRA += check-tasktls-san
endif
