# make check-real: real third-party ucontext programs under the shim
# (issue 7, tests/real/): stress-ng --context, qemu-img and qemu-io on a
# qcow2 image, a GNU Pth program, a PCL (Portable Coroutine Library)
# program, a C++ Boost.Context program of ours, OpenSSL's async jobs
# (s_server and s_client over loopback, speed) and a D program of ours on
# druntime's fibers. Each runs alone and
# under the shim and must print the same and exit alike; the stats line
# (or, for stress-ng's workers, a live-task report) shows the tasks the
# shim saw.
#
# Their Debian packages (stress-ng, qemu-utils, libpth-dev, libpcl1-dev,
# libboost-context-dev, openssl, gdc) are installed by scripts/install-deps --real when
# absent; a program that is still missing makes its test skip, not fail.
# Part of make check (about 20 seconds).

REAL := $(BUILD)/real
# Expanded when the recipe runs, after real-deps has installed Pth. Debian's
# Pth has no pkg-config file, only pth-config.
REAL_PTH_FLAGS = $(shell pth-config --cflags --ldflags --libs 2>/dev/null || echo -lpth)

.PHONY: check-real real-deps

real-deps:
	@scripts/install-deps --real || \
	  echo "check-real: scripts/install-deps --real failed; tests whose programs are missing will skip" >&2

$(REAL): | deps
	mkdir -p $@

# Without Pth the program is not built and its test skips. Whether a
# library is there is asked of scripts/install-deps --have, which links a
# program with it as the rule does.
$(REAL)/pth_prog: tests/real/pth_prog.c | real-deps $(REAL)
	@if scripts/install-deps --have=pth; then \
	  echo "$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@ $(REAL_PTH_FLAGS)"; \
	  $(CC) $(CSTD) $(WARN) -O2 -g $< -o $@ $(REAL_PTH_FLAGS); \
	else echo "check-real: GNU Pth is not installed; the Pth test will skip" >&2; fi

# Without PCL (libpcl1-dev) the program is not built and its test skips.
$(REAL)/pcl_prog: tests/real/pcl_prog.c | real-deps $(REAL)
	@if scripts/install-deps --have=pcl; then \
	  echo "$(CC) $(CSTD) $(WARN) -O2 -g $< -o $@ -lpcl"; \
	  $(CC) $(CSTD) $(WARN) -O2 -g $< -o $@ -lpcl; \
	else echo "check-real: PCL is not installed; the PCL test will skip" >&2; fi

# Boost.Context's fibers on its ucontext backend, from C++. Without the
# library (libboost-context-dev: Boost's headers alone, which other
# packages bring, are not enough to link) the program is not built and its
# test skips. Debian's libboost_context is the fcontext build; the program
# defines the one function the ucontext backend needs from the library
# (see the program).
$(REAL)/boost_prog: tests/real/boost_prog.cpp | real-deps $(REAL)
	@if scripts/install-deps --have=boost-context; then \
	  echo "$(CXX) -std=c++17 $(WARN) -O2 -g $< -o $@ -lboost_context"; \
	  $(CXX) -std=c++17 $(WARN) -O2 -g $< -o $@ -lboost_context; \
	else echo "check-real: Boost.Context is not installed; the Boost test will skip" >&2; fi

# D fibers on druntime, built with gdc (which brings libgphobos). Without
# gdc the program is not built and its test skips.
$(REAL)/d_prog: tests/real/d_prog.d | real-deps $(REAL)
	@if scripts/install-deps --have=gdc; then \
	  echo "gdc -O2 -g -Wall -Werror $< -o $@"; \
	  gdc -O2 -g -Wall -Werror $< -o $@; \
	else echo "check-real: gdc is not installed; the D test will skip" >&2; fi

$(REAL)/libexitdump.so: tests/real/exitdump.c $(PUBLIC_HDR) $(LIB) | $(REAL)
	$(CC) $(CSTD) $(WARN) -O2 -g -shared -fPIC -Iinclude $< -o $@ -L$(BUILD) -ltasklocal -ldl

check-real: $(LIB) $(PLUGIN) $(REAL)/libexitdump.so $(REAL)/pth_prog $(REAL)/pcl_prog $(REAL)/boost_prog \
	  $(REAL)/d_prog
	@sh tests/real/run.sh $(abspath $(LIB)) $(abspath $(PLUGIN)) $(abspath $(REAL)/libexitdump.so) \
	  $(abspath $(REAL)/pth_prog) $(abspath $(REAL)/pcl_prog) $(abspath $(REAL)/boost_prog) \
	  $(abspath $(REAL)/d_prog)

CHECK_EXTRA += check-real
