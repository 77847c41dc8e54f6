# mk/lib.mk — libprepage for C users (included by the Makefile's `-include mk/*.mk`).
#
#   make lib                  build/lib/libprepage.so.0 (soname libprepage.so.0), libprepage.so,
#                             libprepage.a, build/lib/pkgconfig/prepage.pc, build/include/prepage.h
#   make install PREFIX=/usr/local   header, libraries and prepage.pc under PREFIX (DESTDIR honoured)
#   make example              Examples/agent.c built through pkg-config, as a C user builds it:
#                             against the built tree, or an installed one with
#                             PP_PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
#   make test-c               scripts/test-c.sh: example + C tests under AddressSanitizer, real prepaged
#   make bench-client         scripts/bench-client.sh: 100,000 sequential faults beside wrk -c1
#
# Works alone too: make -f mk/lib.mk lib. Every variable is prefixed PP_ so
# the including Makefile keeps its own names.

PP_SRC_DIR      := Sources/CPrepageClient
PP_HEADER       := $(PP_SRC_DIR)/include/prepage.h
PP_SRCS         := $(wildcard $(PP_SRC_DIR)/*.c)
PP_BUILD        := build
PP_LIBDIR       := $(PP_BUILD)/lib
PP_INCDIR       := $(PP_BUILD)/include
PP_OBJDIR       := $(PP_BUILD)/obj/prepage
PP_VERSION      := $(shell sed -n 's/^\#define PP_VERSION_STRING "\(.*\)"/\1/p' $(PP_HEADER))
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
PP_PKG_CONFIG_PATH ?= $(abspath $(PP_LIBDIR)/pkgconfig)

.PHONY: lib install example test-c bench-client

lib: $(PP_LIBDIR)/$(PP_REALNAME) $(PP_LIBDIR)/libprepage.a $(PP_LIBDIR)/pkgconfig/prepage.pc \
     $(PP_INCDIR)/prepage.h

$(PP_OBJDIR)/shared/%.o: $(PP_SRC_DIR)/%.c $(PP_HEADER) $(PP_SRC_DIR)/internal.h
	@mkdir -p $(@D)
	$(PP_CC) $(PP_ALL_CFLAGS) -fPIC -c $< -o $@

$(PP_OBJDIR)/static/%.o: $(PP_SRC_DIR)/%.c $(PP_HEADER) $(PP_SRC_DIR)/internal.h
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

# pp_write_pc(prefix,file): writes prepage.pc for an install under prefix.
pp_write_pc = printf '%s\n' \
    'prefix=$(1)' \
    'libdir=$${prefix}/lib' \
    'includedir=$${prefix}/include' \
    '' \
    'Name: prepage' \
    'Description: C client of prepaged, the Dynamic Prepage oracle for post-copy migration' \
    'Version: $(PP_VERSION)' \
    'Requires.private: libcurl jansson' \
    'Libs: -L$${libdir} -lprepage' \
    'Libs.private: -lpthread' \
    'Cflags: -I$${includedir}' > $(2)

$(PP_LIBDIR)/pkgconfig/prepage.pc: $(PP_HEADER) mk/lib.mk
	@mkdir -p $(@D)
	$(call pp_write_pc,$(abspath $(PP_BUILD)),$@)

install: lib
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(PP_HEADER) $(DESTDIR)$(PREFIX)/include/prepage.h
	install -m 755 $(PP_LIBDIR)/$(PP_REALNAME) $(DESTDIR)$(PREFIX)/lib/$(PP_REALNAME)
	ln -sf $(PP_REALNAME) $(DESTDIR)$(PREFIX)/lib/$(PP_SONAME)
	ln -sf $(PP_SONAME) $(DESTDIR)$(PREFIX)/lib/libprepage.so
	install -m 644 $(PP_LIBDIR)/libprepage.a $(DESTDIR)$(PREFIX)/lib/libprepage.a
	$(call pp_write_pc,$(PREFIX),$(DESTDIR)$(PREFIX)/lib/pkgconfig/prepage.pc)
	@echo "installed libprepage $(PP_VERSION) under $(DESTDIR)$(PREFIX)"

# A C agent builds exactly as the README says: cc agent.c $(pkg-config --cflags --libs prepage)
example: lib
	@mkdir -p $(PP_BUILD)/examples
	PKG_CONFIG_PATH=$(PP_PKG_CONFIG_PATH) sh -c '$(PP_CC) -std=c11 -Wall -Wextra -O2 \
	    -o $(PP_BUILD)/examples/agent Examples/agent.c \
	    $$(pkg-config --cflags --libs prepage) -Wl,-rpath,$$(pkg-config --variable=libdir prepage)'

## test-c: libprepage as C users get it, its example against prepaged, every C call under ASan + UBSan.
test-c:
	bash scripts/test-c.sh


## bench-client: 100,000 sequential faults through libprepage beside a bare libcurl handle and wrk -c1.
bench-client:
	bash scripts/bench-client.sh
