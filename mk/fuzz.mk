# Fuzzing the API and the tracker (tests/fuzz/fuzz_api.c).
#
#   make fuzz FUZZ_SECONDS=60   libFuzzer with ASan and UBSan for that long,
#                               starting from the committed seed corpus
#   make fuzz-replay            every corpus file once, no libFuzzer needed
#                               (part of make check)
#
# The fuzzer links a copy of the library built with clang's coverage and
# sanitizers (in $(BUILD)/fuzz); the library is a shared object so that
# ASan's swapcontext interceptor, in the executable, comes before ours, as
# it does for a preloaded program. New inputs go to $(BUILD)/fuzz/corpus,
# never into the committed corpus.

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := $(CSTD) $(WARN) -O1 -g $(FUZZ_SAN) -Iinclude
# The library's -Werror build is gcc's; clang warns about a GNU extension
# it uses on purpose (a struct with a flexible array inside another), so
# its copy here is built with warnings shown but not fatal.
FUZZ_LIB_CFLAGS := $(CSTD) -Wall -Wextra -Wno-gnu-variable-sized-type-not-at-end -Wno-unknown-warning-option \
  -O1 -g $(FUZZ_SAN) -Iinclude
FUZZ_CORPUS := tests/fuzz/corpus

.PHONY: fuzz fuzz-deps fuzz-replay

fuzz-deps:
	@scripts/install-deps --fuzz

$(FUZZ_DIR): | deps
	mkdir -p $@ $@/corpus

$(FUZZ_DIR)/libtasklocal.so: $(LIB_SRC) $(LIB_HDR) $(ASM_OFFSETS) shim/tasklocal.map | $(FUZZ_DIR) fuzz-deps
	$(FUZZ_CC) $(FUZZ_LIB_CFLAGS) -I$(dir $(ASM_OFFSETS)) -fsanitize=fuzzer-no-link -fPIC -fvisibility=hidden -shared \
	  -Wl,-soname,$(SONAME) -Wl,--version-script=shim/tasklocal.map $(LIB_SRC) -o $@ $(LIB_LIBS) -ldl -pthread
	ln -sf libtasklocal.so $(FUZZ_DIR)/$(SONAME)

$(FUZZ_DIR)/fuzz_api: tests/fuzz/fuzz_api.c $(PUBLIC_HDR) $(FUZZ_DIR)/libtasklocal.so
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< -o $@ \
	  -L$(FUZZ_DIR) -Wl,-rpath,$(abspath $(FUZZ_DIR)) -ltasklocal

# Inputs are capped at 4 KiB: the harness reads at most a few hundred
# operations anyway. The final stats line gives the number of executions.
# libFuzzer's leak check between inputs is off by default: the library
# keeps its task records in mmap'd pools, which LeakSanitizer does not scan,
# so a value bound in a live task looks leaked to a check made while the
# program runs. FUZZ_LEAKS=1 turns it on.
FUZZ_LEAKS ?= 0

fuzz: $(FUZZ_DIR)/fuzz_api
	ASAN_OPTIONS=detect_leaks=$(FUZZ_LEAKS) $(FUZZ_DIR)/fuzz_api -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -detect_leaks=$(FUZZ_LEAKS) \
	  -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus $(FUZZ_CORPUS)

$(FUZZ_DIR)/replay: tests/fuzz/fuzz_api.c tests/fuzz/replay.c $(PUBLIC_HDR) $(LIB) | $(FUZZ_DIR)
	$(CC) $(CSTD) $(WARN) -O1 -g -Iinclude tests/fuzz/fuzz_api.c tests/fuzz/replay.c -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal

fuzz-replay: $(FUZZ_DIR)/replay
	$(FUZZ_DIR)/replay $(FUZZ_CORPUS)

CHECK_EXTRA += fuzz-replay
