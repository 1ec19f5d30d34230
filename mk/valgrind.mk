# valgrind memcheck over the unmodified programs of tests/programs, each run
# under the shim with the probe plugin: any memcheck error fails make check,
# and so does a "client switching stacks?" warning (the shim registers every
# task's stack with valgrind, doc/sanitizers.md).
VALGRIND_PROGRAMS := $(filter-out $(BUILD)/tests/programs/leak_%,$(PROGRAMS))

#
# Each program takes a second or two under valgrind; one that runs past
# VALGRIND_TIMEOUT seconds (scaled as every timeout of make check is) has
# hung, and fails.
VALGRIND_TIMEOUT := 60

.PHONY: check-valgrind
check-valgrind: $(LIB) $(PLUGIN) $(VALGRIND_PROGRAMS)
	@fail=0; for p in $(VALGRIND_PROGRAMS); do \
	  LD_PRELOAD="$(abspath $(LIB)) $(abspath $(PLUGIN))" TLPROBE_LOG=/dev/null \
	    timeout -k 5 $$(( $(VALGRIND_TIMEOUT) * $(TIMEOUT_MULT) )) \
	    valgrind --error-exitcode=99 --leak-check=no $$p >/dev/null 2>$(BUILD)/valgrind.err; \
	  rc=$$?; \
	  if [ $$rc -eq 124 ] || [ $$rc -eq 137 ]; then echo "valgrind: $$p hung (killed after the timeout)"; fail=1; \
	  elif [ $$rc -eq 99 ]; then echo "valgrind: errors in $$p:"; cat $(BUILD)/valgrind.err; fail=1; \
	  elif grep -q "switching stacks" $(BUILD)/valgrind.err; then \
	    echo "valgrind: stack switch warnings in $$p:"; grep -A3 "switching stacks" $(BUILD)/valgrind.err; fail=1; \
	  else echo "valgrind: $$p clean"; fi; \
	done; \
	if [ $$fail -eq 0 ]; then echo "valgrind: $(words $(VALGRIND_PROGRAMS)) passed, 0 failed"; fi; \
	exit $$fail

CHECK_EXTRA += check-valgrind
