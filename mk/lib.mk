# mk/lib.mk — libprepage for C users (included by the Makefile's `-include mk/*.mk`).
#
#   make lib                  build/lib/libprepage.so.1 (soname libprepage.so.MAJOR), libprepage.so,
#                             libprepage.a, build/lib/pkgconfig/prepage.pc, build/include/prepage.h
#   make install              header, libraries and prepage.pc: PREFIX (/usr/local), LIBDIR
#                             ($PREFIX/lib), INCLUDEDIR ($PREFIX/include), PKGCONFIGDIR
#                             ($LIBDIR/pkgconfig); DESTDIR stages the tree (packagers) and never
#                             appears in prepage.pc
#   make example              Examples/agent.c built through pkg-config, as a C user builds it:
#                             against the built tree, or an installed one with
#                             PP_PKG_CONFIG_PATH=$LIBDIR/pkgconfig
#
# prepage.pc for dynamic linking needs nothing but itself: libcurl and jansson
# are Libs.private (-lcurl -ljansson, for `pkg-config --static` only), not
# Requires.private, so neither libcurl's nor jansson's -dev package (nor their
# .pc files) is needed to build an agent against the shared library; their
# runtime packages are, as the library's own DT_NEEDED entries.
#
# Run-time search path: `cc agent.c $(pkg-config --cflags --libs prepage)`
# must give a binary that runs. For a LIBDIR the dynamic loader searches by
# itself (/lib, /usr/lib and their multiarch directories) Libs is plain
# `-L${libdir} -lprepage`; for any other LIBDIR — /usr/local/lib included,
# which Debian's loader finds only after `ldconfig` — Libs carries
# `-Wl,-rpath,${libdir}`, so the agent runs at once, without ldconfig, root,
# or LD_LIBRARY_PATH. PP_RPATH=yes|no forces either.
#   make test-c               scripts/test-c.sh: example + C tests under AddressSanitizer, real prepaged
#   make bench-client         scripts/bench-client.sh: 100,000 sequential faults beside wrk -c1
#
# Works alone too: make -f mk/lib.mk lib. Every variable is prefixed PP_ so
# the including Makefile keeps its own names. PP_FIRST names a target made
# before any object (the Makefile's `deps`, which installs the headers the C
# code needs); alone, nothing.
PP_FIRST ?=

PP_SRC_DIR      := Sources/CPrepageClient
PP_HEADER       := $(PP_SRC_DIR)/include/prepage.h
PP_SRCS         := $(wildcard $(PP_SRC_DIR)/*.c)
PP_BUILD        := build
PP_LIBDIR       := $(PP_BUILD)/lib
PP_INCDIR       := $(PP_BUILD)/include
PP_OBJDIR       := $(PP_BUILD)/obj/prepage
PP_VERSION      := $(shell sed -n 's/^\#define PP_VERSION_STRING  *"\(.*\)"/\1/p' $(PP_HEADER))
PP_MAJOR        := $(firstword $(subst ., ,$(PP_VERSION)))
PP_SONAME       := libprepage.so.$(PP_MAJOR)
PP_REALNAME     := libprepage.so.$(PP_VERSION)

PP_CC           ?= $(CC)
PP_CFLAGS       ?= -O2 -g
PP_WARN         := -std=c11 -Wall -Wextra -Wshadow -Wformat=2 -Wno-format-truncation
PP_DEPS_CFLAGS   = $(shell pkg-config --cflags libcurl jansson 2>/dev/null)
PP_DEPS_LIBS     = $(shell pkg-config --libs libcurl jansson 2>/dev/null)
PP_ALL_CFLAGS    = $(PP_WARN) $(PP_CFLAGS) -fvisibility=hidden -I$(PP_SRC_DIR)/include $(PP_DEPS_CFLAGS)

PP_SHARED_OBJS  := $(patsubst $(PP_SRC_DIR)/%.c,$(PP_OBJDIR)/shared/%.o,$(PP_SRCS))
PP_STATIC_OBJS  := $(patsubst $(PP_SRC_DIR)/%.c,$(PP_OBJDIR)/static/%.o,$(PP_SRCS))

PREFIX          ?= /usr/local
LIBDIR          ?= $(PREFIX)/lib
INCLUDEDIR      ?= $(PREFIX)/include
PKGCONFIGDIR    ?= $(LIBDIR)/pkgconfig
PP_PKG_CONFIG_PATH ?= $(abspath $(PP_LIBDIR)/pkgconfig)
# Directories the dynamic loader searches without a cache or an rpath.
PP_MULTIARCH    := $(shell $(PP_CC) -print-multiarch 2>/dev/null)
PP_LOADER_DIRS  := /lib /usr/lib /lib64 /usr/lib64 $(addprefix /lib/,$(PP_MULTIARCH)) $(addprefix /usr/lib/,$(PP_MULTIARCH))
PP_RPATH        ?= auto

.PHONY: lib install example test-c bench-client

lib: $(PP_LIBDIR)/$(PP_REALNAME) $(PP_LIBDIR)/libprepage.a $(PP_LIBDIR)/pkgconfig/prepage.pc \
     $(PP_INCDIR)/prepage.h

$(PP_OBJDIR)/shared/%.o: $(PP_SRC_DIR)/%.c $(PP_HEADER) $(PP_SRC_DIR)/internal.h | $(PP_FIRST)
	@mkdir -p $(@D)
	$(PP_CC) $(PP_ALL_CFLAGS) -fPIC -c $< -o $@

$(PP_OBJDIR)/static/%.o: $(PP_SRC_DIR)/%.c $(PP_HEADER) $(PP_SRC_DIR)/internal.h | $(PP_FIRST)
	@mkdir -p $(@D)
	$(PP_CC) $(PP_ALL_CFLAGS) -c $< -o $@

$(PP_LIBDIR)/$(PP_REALNAME): $(PP_SHARED_OBJS)
	@mkdir -p $(@D)
	$(PP_CC) -shared -Wl,-soname,$(PP_SONAME) -o $@ $^ $(PP_DEPS_LIBS) -lpthread
	ln -sf $(PP_REALNAME) $(PP_LIBDIR)/$(PP_SONAME)
	ln -sf $(PP_SONAME) $(PP_LIBDIR)/libprepage.so

$(PP_LIBDIR)/libprepage.a: $(PP_STATIC_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(PP_INCDIR)/prepage.h: $(PP_HEADER)
	@mkdir -p $(@D)
	cp $< $@

# pp_write_pc(prefix,libdir,includedir,file): writes prepage.pc for an install there.
pp_want_rpath = $(if $(filter yes,$(PP_RPATH)),yes,$(if $(filter no,$(PP_RPATH)),,$(if $(filter $(patsubst %/,%,$(1)),$(PP_LOADER_DIRS)),,yes)))
pp_write_pc = printf '%s\n' \
    'prefix=$(1)' \
    'libdir=$(2)' \
    'includedir=$(3)' \
    '' \
    'Name: prepage' \
    'Description: C client of prepaged, the Dynamic Prepage oracle for post-copy migration' \
    'Version: $(PP_VERSION)' \
    'Libs: -L$${libdir}$(if $(call pp_want_rpath,$(2)), -Wl$(,)-rpath$(,)$${libdir}) -lprepage' \
    'Libs.private: -lcurl -ljansson -lpthread' \
    'Cflags: -I$${includedir}' > $(4)
, := ,

$(PP_LIBDIR)/pkgconfig/prepage.pc: $(PP_HEADER) mk/lib.mk
	@mkdir -p $(@D)
	$(call pp_write_pc,$(abspath $(PP_BUILD)),$(abspath $(PP_LIBDIR)),$(abspath $(PP_INCDIR)),$@)

install: lib
	install -d $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 $(PP_HEADER) $(DESTDIR)$(INCLUDEDIR)/prepage.h
	install -m 755 $(PP_LIBDIR)/$(PP_REALNAME) $(DESTDIR)$(LIBDIR)/$(PP_REALNAME)
	ln -sf $(PP_REALNAME) $(DESTDIR)$(LIBDIR)/$(PP_SONAME)
	ln -sf $(PP_SONAME) $(DESTDIR)$(LIBDIR)/libprepage.so
	install -m 644 $(PP_LIBDIR)/libprepage.a $(DESTDIR)$(LIBDIR)/libprepage.a
	$(call pp_write_pc,$(PREFIX),$(LIBDIR),$(INCLUDEDIR),$(DESTDIR)$(PKGCONFIGDIR)/prepage.pc)
	@echo "installed libprepage $(PP_VERSION) under $(DESTDIR)$(PREFIX) (libraries in $(DESTDIR)$(LIBDIR))"

# A C agent builds exactly as the README says: cc agent.c $(pkg-config --cflags --libs prepage)
example: lib
	@mkdir -p $(PP_BUILD)/examples
	PKG_CONFIG_PATH=$(PP_PKG_CONFIG_PATH) sh -c '$(PP_CC) -std=c11 -Wall -Wextra -O2 \
	    -o $(PP_BUILD)/examples/agent Examples/agent.c $$(pkg-config --cflags --libs prepage)'

## test-c: libprepage as C users get it, its example against prepaged, every C call under ASan + UBSan.
test-c:
	bash scripts/test-c.sh


## bench-client: 100,000 sequential faults through libprepage beside a bare libcurl handle and wrk -c1.
bench-client:
	bash scripts/bench-client.sh
