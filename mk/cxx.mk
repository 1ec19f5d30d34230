# make check-cxx: include/tasklocal.h in C and C++, and its C++ API
# (tests/cxx/, run by tests/cxx/check_cxx.c). The suite compiles the
# header's matrix itself (gcc and clang as C99/C11/C17, g++ and clang++ as
# C++11/17/20, linked, TL_DYNAMIC and TL_NO_INLINE, all with -Werror), and
# runs the C++ programs built here: tl::with and TL_WITH (guard.cpp) and
# callbacks that throw (throw.cpp). The four compilers are installed by
# scripts/install-deps --cxx when absent. Part of make check (about a
# minute).

CC_GNU ?= gcc
CXX_GNU ?= g++
CC_CLANG ?= clang
CXX_CLANG ?= clang++

CXXT := $(BUILD)/tests/cxx
CXXT_WARN := -Wall -Wextra -Wpedantic -Werror -Wold-style-cast -Wzero-as-null-pointer-constant
CXXT_LINK = -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltasklocal -pthread
CXXT_PROGS := $(CXXT)/guard-g++-c++11 $(CXXT)/guard-clang++-c++17-dynamic $(CXXT)/guard-g++-c++20-noinline \
  $(CXXT)/throw-g++ $(CXXT)/throw-clang++

.PHONY: check-cxx cxx-deps

cxx-deps:
	@scripts/install-deps --cxx

$(CXXT): | deps
	mkdir -p $@

$(CXXT)/guard-g++-c++11: tests/cxx/guard.cpp $(PUBLIC_HDR) $(LIB) | $(CXXT) cxx-deps
	$(CXX_GNU) -std=c++11 $(CXXT_WARN) -Wuseless-cast -O2 -g -Iinclude $< -o $@ $(CXXT_LINK)

# Header-only: no tasklocal library on the link line.
$(CXXT)/guard-clang++-c++17-dynamic: tests/cxx/guard.cpp $(PUBLIC_HDR) | $(CXXT) cxx-deps
	$(CXX_CLANG) -std=c++17 $(CXXT_WARN) -DTL_DYNAMIC -O2 -g -Iinclude $< -o $@ -ldl -pthread

$(CXXT)/guard-g++-c++20-noinline: tests/cxx/guard.cpp $(PUBLIC_HDR) $(LIB) | $(CXXT) cxx-deps
	$(CXX_GNU) -std=c++20 $(CXXT_WARN) -Wuseless-cast -DTL_NO_INLINE -O2 -g -Iinclude $< -o $@ $(CXXT_LINK)

$(CXXT)/throw-g++: tests/cxx/throw.cpp $(PUBLIC_HDR) $(LIB) | $(CXXT) cxx-deps
	$(CXX_GNU) -std=c++17 $(CXXT_WARN) -Wuseless-cast -O2 -g -Iinclude $< -o $@ $(CXXT_LINK)

$(CXXT)/throw-clang++: tests/cxx/throw.cpp $(PUBLIC_HDR) $(LIB) | $(CXXT) cxx-deps
	$(CXX_CLANG) -std=c++17 $(CXXT_WARN) -O2 -g -Iinclude $< -o $@ $(CXXT_LINK)

# The suite is not one of check-unit's: the sanitizer build has nothing to
# add to compilers run as child processes.
$(CXXT)/check_cxx: tests/cxx/check_cxx.c tests/testutil.h | $(CXXT)
	$(CC) $(CSTD) $(WARN) -O2 -g -Itests $(CHECK_CFLAGS) -DTL_BUILD_DIR='"$(abspath $(BUILD))"' \
	  -DTL_SOURCE_DIR='"$(abspath .)"' -DTL_CC_GNU='"$(CC_GNU)"' -DTL_CXX_GNU='"$(CXX_GNU)"' \
	  -DTL_CC_CLANG='"$(CC_CLANG)"' -DTL_CXX_CLANG='"$(CXX_CLANG)"' $< -o $@ $(CHECK_LIBS)

check-cxx: $(LIB) $(CXXT)/check_cxx $(CXXT_PROGS) | cxx-deps
	$(CXXT)/check_cxx

CHECK_EXTRA += check-cxx
