# tel - anonymous, opt-out usage telemetry for command-line programs.
#
#   make                build libtel.a, libtel.so, tel, tel-sync, tel-collect
#   make check          every test, then again under ASan+UBSan
#   make demo           collector + example CLI + tel-sync, end to end
#   make bench          tel against its peers and the physical floor
#   make stress         the long crash and fault runs
#   make fuzz           libFuzzer harnesses for a set time
#   make install PREFIX=/usr/local DESTDIR=
#   make SANITIZE=address,undefined ...   any target, with sanitizers

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
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

SOVERSION = 0
SONAME = libtel.so.$(SOVERSION)

DEPS_CFLAGS := $(shell pkg-config --cflags lmdb msgpack 2>/dev/null)
WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) -fPIC \
	-fvisibility=hidden -Ilibqueue -Iformat $(DEPS_CFLAGS) \
	-DTEL_SYNC_BIN='"$(BINDIR)/tel-sync"' \
	-DTEL_DEFAULT_ENDPOINT='"$(DEFAULT_ENDPOINT)"'
LIB_LIBS = -llmdb -lmsgpackc
# tel and the example host link LMDB and msgpack-c statically: loading two
# more shared objects is most of what a one-event process would pay above
# the cost of its one fdatasync (bench/README.md).
HOST_LIBS = -Wl,-Bstatic -llmdb -lmsgpackc -Wl,-Bdynamic
SYNC_LIBS = -lcurl -lz
COLLECT_LIBS = -lmicrohttpd -lz

# libtel is every source of format/ and libqueue/ except the upload code,
# which needs libcurl and zlib and so belongs to tel-sync alone.
SYNC_ONLY = libqueue/upload.c
LIB_SRC = $(sort $(wildcard format/*.c) $(filter-out $(SYNC_ONLY),$(wildcard libqueue/*.c)))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
SYNC_OBJ = $(SYNC_ONLY:%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(sort $(wildcard tests/unit/*.c))
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
EXAMPLE_SRC = $(wildcard examples/*.c)
EXAMPLE_BIN = $(EXAMPLE_SRC:examples/%.c=$(BUILD)/bin/%)
TOOLS = $(BUILD)/bin/tel $(BUILD)/bin/tel-sync $(BUILD)/bin/tel-collect

.PHONY: all deps check check-plain demo bench stress fuzz install clean test-run

# Objects made through pattern rules are kept, not deleted as intermediates.
.SECONDARY:

all: deps $(BUILD)/libtel.a $(BUILD)/$(SONAME) $(TOOLS) $(EXAMPLE_BIN) $(UNIT_BIN) $(BUILD)/tel.pc

deps:
	@scripts/deps.sh build

$(BUILD)/obj/%.o: %.c $(wildcard libqueue/*.h format/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libtel.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/$(SONAME): $(LIB_OBJ) libqueue/tel.map
	$(CC) -shared $(SANFLAGS) -Wl,-soname,$(SONAME) -Wl,--version-script=libqueue/tel.map \
		-o $@ $(LIB_OBJ) $(LIB_LIBS)
	ln -sf $(SONAME) $(BUILD)/libtel.so

$(BUILD)/bin/tel: $(BUILD)/obj/cli/tel.o $(BUILD)/obj/cli/kv.o $(BUILD)/obj/cli/common.o $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(HOST_LIBS)

$(BUILD)/bin/tel-sync: $(BUILD)/obj/cli/tel-sync.o $(BUILD)/obj/cli/common.o $(SYNC_OBJ) $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIB_LIBS) $(SYNC_LIBS)

$(BUILD)/bin/tel-collect: $(BUILD)/obj/cli/tel-collect.o $(BUILD)/obj/cli/common.o $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIB_LIBS) $(COLLECT_LIBS)

$(BUILD)/bin/%: $(BUILD)/obj/examples/%.o $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(HOST_LIBS)

# Unit tests link the static library, so they can reach internal symbols,
# and the upload code, so tel-sync's pieces can be tested alone.
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(SYNC_OBJ) $(BUILD)/libtel.a
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -o $@ $^ $(LIB_LIBS) $(SYNC_LIBS)

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c tests/unit/check.h $(wildcard libqueue/*.h format/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -c $< -o $@

TEL_VERSION_STR := $(shell sed -n 's/^\#define TEL_VERSION "\(.*\)"/\1/p' libqueue/tel.h)
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(TEL_VERSION_STR)|'

$(BUILD)/tel.pc: libqueue/tel.pc.in Makefile
	$(PC_SED) $< > $@

# The suite runs twice: as built, then rebuilt and run under AddressSanitizer
# and UndefinedBehaviorSanitizer.  The last line sums both runs.
check:
	@scripts/deps.sh build test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory SANITIZE=address,undefined all
	@tests/run.sh --summary $(BUILD) build-san

check-plain: all
	@scripts/deps.sh test
	@tests/run.sh $(BUILD)

test-run: all
	@tests/run.sh $(BUILD) $(if $(T),--only $(T))

demo: all
	@scripts/deps.sh test
	@examples/demo.sh $(BUILD)

bench: all
	@scripts/deps.sh bench test
	@bench/run.sh $(BUILD)

stress: all
	@scripts/deps.sh test stress
	@TEL_STRESS=1 tests/run.sh $(BUILD)

fuzz:
	@scripts/deps.sh build fuzz
	@tests/fuzz/run.sh

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 0755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	install -m 0644 docs/man/tel.1 docs/man/tel-sync.1 docs/man/tel-collect.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 libqueue/tel.h $(DESTDIR)$(INCLUDEDIR)/tel.h
	install -m 0644 $(BUILD)/libtel.a $(DESTDIR)$(LIBDIR)/libtel.a
	install -m 0755 $(BUILD)/$(SONAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libtel.so
	$(PC_SED) libqueue/tel.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/tel.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/tel.pc

clean:
	rm -rf build build-san build-fuzz
