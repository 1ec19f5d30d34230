# Interposition traps (tests/traps/, run by tests/check_traps.c): programs
# and libraries that set the traps other preload shims fell into. None of
# them knows tasklocal.

TRAPS_DIR := $(BUILD)/tests/traps
TRAP_CTOR_LIB := $(TRAPS_DIR)/libtltrapctor.so
TRAP_MALLOC_LIB := $(TRAPS_DIR)/libtltrapmalloc.so
TRAPS := $(TRAP_CTOR_LIB) $(TRAP_MALLOC_LIB) $(TRAPS_DIR)/trap_ctor $(TRAPS_DIR)/trap_exit \
  $(TRAPS_DIR)/trap_freed $(TRAPS_DIR)/trap_switches $(TRAPS_DIR)/trap_cxx $(TRAPS_DIR)/trap_cxx_clang

$(TRAPS_DIR): | deps
	mkdir -p $@

$(TRAP_CTOR_LIB): tests/traps/trap_ctor_lib.c | $(TRAPS_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC $< -o $@

$(TRAP_MALLOC_LIB): tests/traps/trap_malloc_lib.c | $(TRAPS_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC $< -o $@ -ldl

$(TRAPS_DIR)/trap_ctor: tests/traps/trap_ctor.c $(TRAP_CTOR_LIB)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@ -L$(TRAPS_DIR) -Wl,-rpath,$(abspath $(TRAPS_DIR)) -ltltrapctor

$(TRAPS_DIR)/trap_%: tests/traps/trap_%.c | $(TRAPS_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@

# The C++ trap by both compilers: their exception tables and unwinding
# code differ. clang++ is installed by scripts/install-deps --cxx
# (cxx-deps, mk/cxx.mk).
$(TRAPS_DIR)/trap_cxx: tests/traps/trap_cxx.cpp | $(TRAPS_DIR) cxx-deps
	$(CXX) -std=c++17 $(WARN) -O2 -g $< -o $@

$(TRAPS_DIR)/trap_cxx_clang: tests/traps/trap_cxx.cpp | $(TRAPS_DIR) cxx-deps
	$(CXX_CLANG) -std=c++17 $(WARN) -O2 -g $< -o $@

$(BUILD)/tests/check_traps: $(TRAPS)
check-unit: $(TRAPS)
