# Stress (tests/stress/stress.c): 10,000 tasks migrating between 8 threads,
# key churn, a profiling timer reading locals from its handler, and fork.
#
#   make check-stress                  a few seconds (part of make check)
#   make stress STRESS_SECONDS=300     as long as asked
#   make check-tsan                    the same few seconds with the library
#                                      and the program built with
#                                      ThreadSanitizer, in $(BUILD)/tsan

STRESS_SECONDS ?= 300
STRESS_CHECK_SECONDS ?= 4
STRESS := $(BUILD)/tests/stress

.PHONY: stress check-stress check-tsan

$(STRESS): tests/stress/stress.c $(PUBLIC_HDR) $(LIB) | $(BUILD)/tests/programs
	$(CC) $(CSTD) $(WARN) -O2 -g -pthread -Iinclude $< -o $@ \
	  -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal

# The time limit catches a hang (a lost wake-up or a lock left held): two
# minutes beyond the run's own length, scaled as every timeout of make
# check is (TIMEOUT_MULT, in the Makefile), since the end of the run (every
# task finished, every value checked) takes longer under TSan.
check-stress: $(STRESS)
	timeout -k 5 $$(( $(STRESS_CHECK_SECONDS) + 120 * $(TIMEOUT_MULT) )) $(STRESS) $(STRESS_CHECK_SECONDS)

stress: $(STRESS)
	$(STRESS) $(STRESS_SECONDS)

# The library's lock-free readers use relaxed atomics for every field a
# writer may change, so TSan has nothing to report: make check runs it. The
# program does not annotate its switches for TSan: the library does (its
# tasks migrate between the 8 threads, the hardest case for TSan's fibers).
check-tsan:
	$(MAKE) --no-print-directory BUILD=$(BUILD)/tsan SLOWDOWN=$(TSAN_SLOWDOWN) \
	  OPT="-O1 -g -fsanitize=thread -fno-omit-frame-pointer" \
	  CC="$(CC) -fsanitize=thread" check-stress

# TSan makes the program 5 to 15 times slower.
TSAN_SLOWDOWN := 4

CHECK_EXTRA += check-stress check-tsan
