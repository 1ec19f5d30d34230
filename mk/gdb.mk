# The gdb extension (issue 13): scripts/gdb/tasklocal-gdb.py, the tl
# commands for core files and live processes. make copies it next to the
# build tree's library as libtasklocal.so-gdb.py, where gdb loads it by
# itself once the path is allowed (add-auto-load-safe-path); make install
# puts it where gdb's auto-load looks for the installed library
# (mk/install.mk).
#
# make check-gdb runs tests/gdb/check_gdb.c: cores and live processes of
# the unmodified programs of tests/gdb/, read with gdb -batch (about 20
# seconds). gdb comes from scripts/install-deps.

GDB_DIR := $(BUILD)/tests/gdb
GDB_SCRIPT := scripts/gdb/tasklocal-gdb.py
GDB_BUILD_SCRIPT := $(BUILD)/libtasklocal.so-gdb.py

all: $(GDB_BUILD_SCRIPT)

$(GDB_BUILD_SCRIPT): $(GDB_SCRIPT) | $(BUILD)/obj
	cp $< $@

$(GDB_DIR): | deps
	mkdir -p $@

.PHONY: check-gdb gdb-deps

gdb-deps:
	@command -v gdb >/dev/null 2>&1 || scripts/install-deps

# Without debug information: the extension needs only the library's.
$(GDB_DIR)/tasks: tests/gdb/tasks.c | $(GDB_DIR)
	$(CC) $(CSTD) $(WARN) -O2 $< -o $@

# With it: backtraces then show files and lines.
$(GDB_DIR)/mn: tests/gdb/mn.c | $(GDB_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread $< -o $@

$(GDB_DIR)/libtlgdbplug.so: tests/gdb/gdbplug.c $(PUBLIC_HDR) $(LIB) | $(GDB_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -Iinclude $< -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal -pthread

$(GDB_DIR)/check_gdb: tests/gdb/check_gdb.c tests/testutil.h | $(GDB_DIR)
	$(CC) $(CSTD) $(WARN) -O2 -g -Itests $(CHECK_CFLAGS) -DTL_BUILD_DIR='"$(abspath $(BUILD))"' \
	  -DTL_GDB_DIR='"$(abspath $(GDB_DIR))"' -DTL_GDB_SCRIPT='"$(abspath $(GDB_SCRIPT))"' $< -o $@ $(CHECK_LIBS)

check-gdb: $(LIB) $(GDB_BUILD_SCRIPT) $(GDB_DIR)/tasks $(GDB_DIR)/mn $(GDB_DIR)/libtlgdbplug.so \
           $(GDB_DIR)/check_gdb $(BUILD)/tests/programs/leak_shared $(BUILD)/tests/programs/leak_demo $(BUILD)/tests/programs/leak_kinds \
           $(BUILD)/tests/libtlleakplug.so | gdb-deps
	$(GDB_DIR)/check_gdb

CHECK_EXTRA += check-gdb
