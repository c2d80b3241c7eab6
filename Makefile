# SPDX-License-Identifier: MIT
# tel - anonymous, opt-out usage telemetry for command-line programs.
#
#   make                build libtel.a, libtel.so, tel, tel-sync, tel-collect
#                       (installs nothing: it names a missing library)
#   make deps           install the Debian packages the build needs
#   make check          every test, then again under ASan+UBSan
#   make demo           collector + example CLI + tel-sync, end to end
#   make bench          tel against its peers and the physical floor, and
#                       the dashboard on a million events
#   make stress         the long crash and fault runs
#   make fuzz           libFuzzer harnesses for a set time
#   make install PREFIX=/usr/local DESTDIR=
#   make uninstall PREFIX=/usr/local DESTDIR=   (the same variables)
#   make SANITIZE=address,undefined ...   any target, with sanitizers

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
# Both are on systemd's unit search path for /usr and /usr/local.
SYSTEMDUSERUNITDIR ?= $(PREFIX)/lib/systemd/user
SYSTEMDSYSTEMUNITDIR ?= $(PREFIX)/lib/systemd/system
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
SANITIZE ?=
DEFAULT_ENDPOINT ?= http://127.0.0.1:8787/v1/batch

comma := ,

ifeq ($(SANITIZE),)
BUILD ?= build
SANFLAGS :=
else
ifneq ($(filter-out address undefined,$(subst $(comma), ,$(SANITIZE))),)
$(error SANITIZE takes address, undefined or address,undefined)
endif
BUILD ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

# The soname moves only when the ABI breaks (docs/ABI.md); the file name
# carries the whole version, so installed releases can be told apart.
SOVERSION = 0
SONAME = libtel.so.$(SOVERSION)
TEL_VERSION_STR := $(shell sed -n 's/^\#define TEL_VERSION "\(.*\)"/\1/p' include/tel.h)
REALNAME = $(SONAME).$(word 2,$(subst ., ,$(TEL_VERSION_STR))).$(word 3,$(subst ., ,$(TEL_VERSION_STR)))

# What the build links, as name:header:link flag:Debian package.  Checked
# once per build directory, before the first compile, so a missing library
# is named instead of surfacing as a compiler error (scripts/checklibs.sh).
BUILD_LIBS = lmdb:lmdb.h:-llmdb:liblmdb-dev msgpack:msgpack.h:-lmsgpackc:libmsgpack-dev \
	libcurl:curl/curl.h:-lcurl:libcurl4-openssl-dev zlib:zlib.h:-lz:zlib1g-dev \
	libmicrohttpd:microhttpd.h:-lmicrohttpd:libmicrohttpd-dev sqlite3:sqlite3.h:-lsqlite3:libsqlite3-dev \
	libpq:libpq-fe.h:-lpq:libpq-dev

DEPS_CFLAGS := $(shell pkg-config --cflags lmdb msgpack libpq sqlite3 2>/dev/null)
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
GEN = $(BUILD)/gen
# -MMD -MP: each object lists the headers it really read (build/obj/*.d),
# so touching one header rebuilds only what includes it.
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) -fPIC \
	-fvisibility=hidden -MMD -MP $(DEPS_CFLAGS)

# The floors of the house, each seeing only itself and the floors below:
#   util/     buffers, UTF-8, UUID text, JSON strings, the error setter
#   format/   the record and batch codecs, JSON view, Prometheus parser
#   libqueue/ the library proper (the public header is include/tel.h)
#   sync/     the sync engine: transport (libcurl, zlib), its state, drain
# A folder is compiled with the include paths of its own floor, so an
# include of a folder above does not compile (tests/t_build.sh checks the
# sources too).  Programs, tests and benchmarks see every floor.
INC_util = -Iinclude -Iutil
INC_format = $(INC_util) -Iformat
INC_libqueue = $(INC_format) -Ilibqueue -I$(GEN)
INC_sync = $(INC_libqueue) -Isync
INC_all = $(INC_sync) -Icli
inc_for = $(or $(INC_$(firstword $(subst /, ,$(1)))),$(INC_all))

LIB_LIBS = -llmdb -lmsgpackc
# tel and the example host link LMDB and msgpack-c statically: loading two
# more shared objects is most of what a one-event process would pay above
# the cost of its one fdatasync (bench/README.md).
HOST_LIBS = -Wl,-Bstatic -llmdb -lmsgpackc -Wl,-Bdynamic
SYNC_LIBS = -lcurl -lz
COLLECT_LIBS = -lmicrohttpd -lz $(STORE_LIBS)
STORE_LIBS = -lsqlite3 -lpq -lpthread

# libtel is util/, format/ and libqueue/.  The sync engine (sync/) needs
# libcurl and zlib and so is a library of its own, libtelsync.a, linked by
# tel-sync and the unit tests and never by a host program.
LIB_SRC = $(sort $(wildcard util/*.c format/*.c libqueue/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SYNC_SRC = $(sort $(wildcard sync/*.c))
SYNC_OBJ = $(SYNC_SRC:%.c=$(BUILD)/obj/%.o)
# tel-collect is collector/ (with cli/common.c).  Its store (store.h and
# the engines) is listed apart so that the store tests can link it
# without the HTTP front.
COLLECT_OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard collector/*.c)))
STORE_SRC = collector/store.c collector/store_sqlite.c collector/store_pg.c util/text.c util/buf.c
STORE_OBJ = $(STORE_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
EXAMPLE_SRC = $(wildcard examples/*.c)
# The hosts of examples/<product>/: each a small program keeping every
# knob its product's telemetry page documents, built as $(BUILD)/bin/<product>.
SEED_EXAMPLES = atmos astro cloudquery werf cozystack
EXAMPLE_BIN = $(EXAMPLE_SRC:examples/%.c=$(BUILD)/bin/%) $(SEED_EXAMPLES:%=$(BUILD)/bin/%)
TOOLS = $(BUILD)/bin/tel $(BUILD)/bin/tel-sync $(BUILD)/bin/tel-collect
CONFIG_H = $(GEN)/tel_config.h
FLAGS_FILE = $(GEN)/cflags

# The Node-API addon of bindings/node, built from this tree alone (no
# header download) when Node's headers are installed; not under the
# sanitizers, which node itself is not built with.
NODE_INCLUDE ?= /usr/include/node
NODE_ADDON = $(if $(SANFLAGS),,$(if $(wildcard $(NODE_INCLUDE)/node_api.h),$(BUILD)/tel.node))

.PHONY: all programs deps check check-plain demo bench stress fuzz install install-units uninstall clean \
	test-run FORCE

# Objects made through pattern rules are kept, not deleted as intermediates.
.SECONDARY:

all: programs $(BUILD)/libtelsync.a $(EXAMPLE_BIN) $(UNIT_BIN) $(BUILD)/tel.pc $(NODE_ADDON)

# What install copies: the library and the tools, not the tests.
programs: $(BUILD)/libtel.a $(BUILD)/$(REALNAME) $(TOOLS)

deps:
	@scripts/deps.sh build

$(BUILD)/libs.ok: Makefile scripts/checklibs.sh
	@CC="$(CC)" scripts/checklibs.sh $(BUILD_LIBS)
	@mkdir -p $(dir $@) && touch $@

# The paths and the default endpoint chosen at build time.  Rewritten only
# when a value changed, so that an unchanged make rebuilds nothing and a
# changed PREFIX or DEFAULT_ENDPOINT rebuilds what includes it.
$(CONFIG_H): FORCE
	@mkdir -p $(dir $@)
	@{ echo '/* Generated by the Makefile from BINDIR and DEFAULT_ENDPOINT. */'; \
	   echo '#define TEL_SYNC_BIN "$(BINDIR)/tel-sync"'; \
	   echo '#define TEL_DEFAULT_ENDPOINT "$(DEFAULT_ENDPOINT)"'; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# The compiler and its flags, so that changing them rebuilds every object.
$(FLAGS_FILE): FORCE
	@mkdir -p $(dir $@)
	@echo '$(CC) $(ALL_CFLAGS)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/obj/%.o: %.c $(FLAGS_FILE) | $(CONFIG_H) $(BUILD)/libs.ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(call inc_for,$<) -c $< -o $@

$(BUILD)/libtel.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libtelsync.a: $(SYNC_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/$(REALNAME): $(LIB_OBJ) libqueue/tel.map
	$(CC) -shared $(SANFLAGS) $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script=libqueue/tel.map \
		-o $@ $(LIB_OBJ) $(LIB_LIBS)
	ln -sf $(REALNAME) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libtel.so

$(BUILD)/bin/tel: $(BUILD)/obj/cli/tel.o $(BUILD)/obj/cli/kv.o $(BUILD)/obj/cli/common.o $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/bin/tel-sync: $(BUILD)/obj/cli/tel-sync.o $(BUILD)/obj/cli/common.o $(BUILD)/libtelsync.a $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(SYNC_LIBS)

$(BUILD)/bin/tel-collect: $(COLLECT_OBJ) $(BUILD)/obj/cli/common.o $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(COLLECT_LIBS)

$(BUILD)/bin/%: $(BUILD)/obj/examples/%.o $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(HOST_LIBS)

define seed_example
$(BUILD)/bin/$(1): $(BUILD)/obj/examples/$(1)/$(1).o $(BUILD)/libtel.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(SANFLAGS) -o $$@ $$^ $$(HOST_LIBS)
endef
$(foreach e,$(SEED_EXAMPLES),$(eval $(call seed_example,$(e))))

# The addon takes libtel.a whole; LMDB and msgpack-c stay shared, as
# Debian's static LMDB is not position-independent.  The napi_ symbols
# come from the node process that loads it.
$(BUILD)/tel.node: bindings/node/src/tel_node.c $(BUILD)/libtel.a
	$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -Iinclude -I$(NODE_INCLUDE) -DNODE_GYP_MODULE_NAME=tel \
		-shared -o $@ $< $(BUILD)/libtel.a $(LIB_LIBS)

# Unit tests link the static libraries, so they can reach internal symbols
# and drive the sync engine's pieces alone.
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/libtelsync.a $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $^ $(LIB_LIBS) $(SYNC_LIBS)

# test_corpus replays the fuzz corpora through the harnesses themselves,
# each built with its libFuzzer entry point renamed, and the kv parser
# that tel links beside libtel.
FUZZ_NAMES = record batch config kv prom json
CORPUS_OBJ = $(FUZZ_NAMES:%=$(BUILD)/obj/tests/fuzz/fuzz_%.o) $(BUILD)/obj/cli/kv.o

$(BUILD)/obj/tests/fuzz/fuzz_%.o: tests/fuzz/fuzz_%.c $(FLAGS_FILE) | $(CONFIG_H) $(BUILD)/libs.ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(INC_all) -DLLVMFuzzerTestOneInput=fuzz_$*_one -c $< -o $@

$(BUILD)/tests/test_corpus: $(BUILD)/obj/tests/unit/test_corpus.o $(CORPUS_OBJ) $(BUILD)/libtelsync.a $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIB_LIBS) $(SYNC_LIBS)

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(FLAGS_FILE) | $(CONFIG_H) $(BUILD)/libs.ok
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(INC_all) -Icollector -Itests/unit -c $< -o $@

# The store test needs the store and its engines' client libraries.
$(BUILD)/tests/test_store: $(BUILD)/obj/tests/unit/test_store.o $(STORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(STORE_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Each library tel links is named once in tel.pc: as a pkg-config module
# when this machine has its .pc file, else as a plain -l flag.
PC_DEPS = lmdb:-llmdb msgpack:-lmsgpackc
PC_REQUIRES := $(shell for d in $(PC_DEPS); do pkg-config --exists $${d%%:*} 2>/dev/null && printf '%s ' $${d%%:*}; done)
PC_LIBS := $(shell for d in $(PC_DEPS); do pkg-config --exists $${d%%:*} 2>/dev/null || printf '%s ' $${d\#*:}; done)
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(TEL_VERSION_STR)|' \
	    -e 's|@REQUIRES_PRIVATE@|$(strip $(PC_REQUIRES))|' -e 's|@LIBS_PRIVATE@|$(strip $(PC_LIBS))|'

$(BUILD)/tel.pc: libqueue/tel.pc.in Makefile
	@mkdir -p $(dir $@)
	$(PC_SED) $< > $@

# The suite runs twice: as built, then rebuilt and run under AddressSanitizer
# and UndefinedBehaviorSanitizer.  The last line sums both runs.
check:
	@scripts/deps.sh build test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SANITIZE=address,undefined all
	@tests/run.sh --summary $(BUILD) build-san

check-plain:
	@scripts/deps.sh build test
	@$(MAKE) --no-print-directory all
	@tests/run.sh $(BUILD)

test-run: all
	@tests/run.sh $(BUILD) $(if $(T),--only $(T))

demo:
	@scripts/deps.sh build test
	@$(MAKE) --no-print-directory all
	@examples/demo.sh $(BUILD)

bench:
	@scripts/deps.sh build bench test
	@$(MAKE) --no-print-directory all
	@bench/run.sh $(BUILD)
	@bench/dash.sh $(BUILD)

stress:
	@scripts/deps.sh build test stress
	@$(MAKE) --no-print-directory all
	@TEL_STRESS=1 tests/run.sh $(BUILD)

fuzz:
	@scripts/deps.sh build fuzz
	@tests/fuzz/run.sh

MAN1 = $(sort $(wildcard docs/man/*.1))
MAN3 = $(sort $(wildcard docs/man/*.3))
USER_UNITS = tel-sync.service tel-sync.timer
SYSTEM_UNITS = tel-collect.service
# Every path install writes, so that uninstall removes exactly these.
INSTALLED = $(addprefix $(BINDIR)/,$(notdir $(TOOLS))) $(INCLUDEDIR)/tel.h \
	$(addprefix $(LIBDIR)/,libtel.a libtel.so $(SONAME) $(REALNAME) pkgconfig/tel.pc) \
	$(addprefix $(MANDIR)/man1/,$(notdir $(MAN1))) $(addprefix $(MANDIR)/man3/,$(notdir $(MAN3))) \
	$(addprefix $(SYSTEMDUSERUNITDIR)/,$(USER_UNITS)) $(addprefix $(SYSTEMDSYSTEMUNITDIR)/,$(SYSTEM_UNITS))

# The systemd units, written from docs/*.in for the prefix they go under.
# A target of their own, built from no object, so they can be written for
# any prefix without rebuilding the library.
UNIT_SED = sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@USERUNITDIR@|$(SYSTEMDUSERUNITDIR)|g' \
	-e 's|@SYSTEMUNITDIR@|$(SYSTEMDSYSTEMUNITDIR)|g'
install-units:
	install -d $(DESTDIR)$(SYSTEMDUSERUNITDIR) $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)
	for u in $(USER_UNITS); do $(UNIT_SED) docs/$$u.in >$(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$u || exit 1; \
		chmod 0644 $(DESTDIR)$(SYSTEMDUSERUNITDIR)/$$u; done
	for u in $(SYSTEM_UNITS); do $(UNIT_SED) docs/$$u.in >$(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/$$u || exit 1; \
		chmod 0644 $(DESTDIR)$(SYSTEMDSYSTEMUNITDIR)/$$u; done

install: programs install-units
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	install -m 0755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN3) $(DESTDIR)$(MANDIR)/man3/
	install -m 0644 include/tel.h $(DESTDIR)$(INCLUDEDIR)/tel.h
	install -m 0644 $(BUILD)/libtel.a $(DESTDIR)$(LIBDIR)/libtel.a
	install -m 0755 $(BUILD)/$(REALNAME) $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libtel.so
	$(PC_SED) libqueue/tel.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tel.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/tel.pc
	@scripts/ldconfig.sh "$(DESTDIR)" "$(LIBDIR)"

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@scripts/ldconfig.sh "$(DESTDIR)" "$(LIBDIR)" quiet

clean:
	rm -rf build build-san build-fuzz
