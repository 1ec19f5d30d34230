# Unmodified programs built with ThreadSanitizer, run alone and under the
# (plain) shim: same stdout and exit status, and no TSan report in either
# run. The shim makes no TSan fiber annotations (shim/tools.c says why);
# this shows it adds no false report either. sigjmp.c is left out: TSan
# cannot run a program that switches stacks by siglongjmp, with or
# without the shim.
TSAN_PROGRAMS := asymmetric symmetric uclink nested migrate getcontext_loop
TSAN_DIR := $(BUILD)/tests/tsan-programs

$(TSAN_DIR)/%: tests/programs/%.c
	@mkdir -p $(TSAN_DIR)
	$(CC) $(CSTD) $(WARN) -O1 -g -fsanitize=thread -pthread $< -o $@

.PHONY: check-tsan-programs
check-tsan-programs: $(LIB) $(addprefix $(TSAN_DIR)/,$(TSAN_PROGRAMS))
	@pass=0; fail=0; for p in $(TSAN_PROGRAMS); do \
	  b=$(TSAN_DIR)/$$p; \
	  $$b >$(TSAN_DIR)/$$p.alone 2>$(TSAN_DIR)/$$p.alone.err; a=$$?; \
	  LD_PRELOAD=$(abspath $(LIB)) $$b >$(TSAN_DIR)/$$p.shim 2>$(TSAN_DIR)/$$p.shim.err; s=$$?; \
	  if [ $$a -ne $$s ] || ! cmp -s $(TSAN_DIR)/$$p.alone $(TSAN_DIR)/$$p.shim || \
	     grep -q "ThreadSanitizer" $(TSAN_DIR)/$$p.alone.err $(TSAN_DIR)/$$p.shim.err; then \
	    echo "tsan: $$p differs or reports (status $$a alone, $$s under the shim)"; \
	    cat $(TSAN_DIR)/$$p.shim.err; fail=$$((fail+1)); \
	  else pass=$$((pass+1)); fi; \
	done; echo "tsan programs: $$pass passed, $$fail failed"; [ $$fail -eq 0 ]

CHECK_EXTRA += check-tsan-programs
