# Unmodified programs built with AddressSanitizer and with ThreadSanitizer,
# run under the shim, which annotates their switches (doc/sanitizers.md, shim/tools.c):
# the same stdout and exit status as the plain build alone, and no report.
# unwind.c fails without the annotations (tests/sanitizers/run.sh checks
# that too); annotated.c annotates its own switches, as QEMU does, and the
# shim must stay out of its way. sigjmp.c switches coroutines with
# siglongjmp, which the shim follows for ASan (shim/interpose.c); TSan
# cannot run a program that jumps between stacks, with or without the shim.
SAN_PROGRAMS := asymmetric symmetric uclink uclink_null nested migrate getcontext_loop \
                shared_stack unwind annotated
ASAN_ONLY := sigjmp
SAN_DIR := $(BUILD)/tests/san-programs

$(SAN_DIR)/%.asan: tests/programs/%.c tests/programs/prog.h | deps
	@mkdir -p $(SAN_DIR)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=address -fno-omit-frame-pointer -pthread $< -o $@

$(SAN_DIR)/%.tsan: tests/programs/%.c tests/programs/prog.h | deps
	@mkdir -p $(SAN_DIR)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=thread -pthread $< -o $@

.PHONY: check-san-programs
check-san-programs: $(LIB) $(addprefix $(BUILD)/tests/programs/,$(SAN_PROGRAMS) $(ASAN_ONLY)) \
                    $(addprefix $(SAN_DIR)/,$(addsuffix .asan,$(SAN_PROGRAMS) $(ASAN_ONLY)) \
                      $(addsuffix .tsan,$(SAN_PROGRAMS)))
	@ok=0; \
	tests/sanitizers/run.sh address $(SAN_DIR) $(BUILD)/tests/programs $(abspath $(LIB)) \
	  $(SAN_PROGRAMS) $(ASAN_ONLY) || ok=1; \
	tests/sanitizers/run.sh thread $(SAN_DIR) $(BUILD)/tests/programs $(abspath $(LIB)) \
	  $(SAN_PROGRAMS) || ok=1; \
	exit $$ok

CHECK_EXTRA += check-san-programs
