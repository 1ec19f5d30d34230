# Fault injection (tests/check_faults.c): the library that counts the
# shim's allocations, preloaded before it so that the suite knows how many
# allocations to fail in turn.

ALLOCCOUNT := $(BUILD)/tests/libtlalloccount.so

$(ALLOCCOUNT): tests/faults/alloccount.c | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC $< -o $@ -ldl

$(BUILD)/tests/check_faults: $(ALLOCCOUNT)
check-unit: $(ALLOCCOUNT)
