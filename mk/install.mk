# make install / make uninstall: the library with its soname and
# development symlinks, the headers (tasklocal.h, tasklocal_dynamic.h,
# tasklocal.hpp), tasklocal.pc, tasklocal-run,
# tasklocal-trace, the man pages and the gdb extension, under
# $(DESTDIR)$(PREFIX).
#
#   make install PREFIX=/usr/local DESTDIR=
#   make uninstall PREFIX=/usr/local DESTDIR=
#
# The directories are plain recursive variables, so they can be changed on
# the command line. tasklocal-run looks for the library in ../lib next to
# itself: keep libdir at $(bindir)/../lib or set TASKLOCAL_LIB at run time.
#
# The library is installed as built, with its debug information: the gdb
# extension reads the library's structures from it. The extension goes
# where gdb's auto-load looks for a script of an objfile: the directory
# $(gdbautoloaddir) followed by the library's absolute path, with -gdb.py
# after its file name (which is the full version, as gdb looks for the
# real path of a symbolic link).

bindir = $(PREFIX)/bin
libdir = $(PREFIX)/lib
includedir = $(PREFIX)/include
pkgconfigdir = $(libdir)/pkgconfig
mandir = $(PREFIX)/share/man
gdbautoloaddir = $(PREFIX)/share/gdb/auto-load

LIB_REAL := libtasklocal.so.$(VERSION)
MAN_PAGES := man/tasklocal.3 man/tasklocal-run.1 man/tasklocal-trace.1 man/tasklocal.7
PC := $(BUILD)/tasklocal.pc

# Every file and link that install makes, as uninstall removes them.
INSTALLED = $(libdir)/$(LIB_REAL) $(libdir)/$(SONAME) $(libdir)/libtasklocal.so \
            $(addprefix $(includedir)/,$(notdir $(PUBLIC_HDR))) $(pkgconfigdir)/tasklocal.pc $(bindir)/tasklocal-run \
            $(bindir)/tasklocal-trace \
            $(mandir)/man3/tasklocal.3 $(mandir)/man1/tasklocal-run.1 $(mandir)/man1/tasklocal-trace.1 \
            $(mandir)/man7/tasklocal.7 \
            $(gdbautoloaddir)$(libdir)/$(LIB_REAL)-gdb.py

# The paths in tasklocal.pc are written relative to ${prefix} where they lie
# under it, as pkg-config files usually are. The file is made again on every
# install: its content depends on PREFIX, which make cannot see change.
.PHONY: $(PC)
$(PC): tasklocal.pc.in | $(BUILD)/obj
	sed -e 's|@PREFIX@|$(PREFIX)|' \
	    -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(libdir))|' \
	    -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(includedir))|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@.tmp
	mv $@.tmp $@

# The build tree's library is named libtasklocal.so; installed, it gets the
# full version in its name, the soname link that the dynamic linker loads
# and the unversioned link that -ltasklocal finds, as shared libraries on
# Debian have them.
install: $(LIB) $(PC) $(PUBLIC_HDR) scripts/tasklocal-run scripts/tasklocal-trace $(MAN_PAGES) \
         scripts/gdb/tasklocal-gdb.py
	@case '$(libdir)' in /*) ;; *) echo "install: libdir must be an absolute path, not '$(libdir)'" >&2; exit 2 ;; esac
	install -d -m 755 $(DESTDIR)$(libdir) $(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(includedir) \
	  $(DESTDIR)$(bindir) $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man3 $(DESTDIR)$(mandir)/man7 \
	  $(DESTDIR)$(gdbautoloaddir)$(libdir)
	install -m 755 $(LIB) $(DESTDIR)$(libdir)/$(LIB_REAL)
	ln -sf $(LIB_REAL) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf $(LIB_REAL) $(DESTDIR)$(libdir)/libtasklocal.so
	install -m 644 $(PUBLIC_HDR) $(DESTDIR)$(includedir)
	install -m 644 $(PC) $(DESTDIR)$(pkgconfigdir)/tasklocal.pc
	install -m 755 scripts/tasklocal-run $(DESTDIR)$(bindir)/tasklocal-run
	install -m 755 scripts/tasklocal-trace $(DESTDIR)$(bindir)/tasklocal-trace
	install -m 644 man/tasklocal.3 $(DESTDIR)$(mandir)/man3/tasklocal.3
	install -m 644 man/tasklocal-run.1 $(DESTDIR)$(mandir)/man1/tasklocal-run.1
	install -m 644 man/tasklocal-trace.1 $(DESTDIR)$(mandir)/man1/tasklocal-trace.1
	install -m 644 man/tasklocal.7 $(DESTDIR)$(mandir)/man7/tasklocal.7
	install -m 644 scripts/gdb/tasklocal-gdb.py $(DESTDIR)$(gdbautoloaddir)$(libdir)/$(LIB_REAL)-gdb.py

# Only what install made: the directories may hold other packages' files.
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
