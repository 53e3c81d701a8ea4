# anvil - one Makefile for the server, worker, SDK, CLI, tests and demo.
#
#   make            the optimised build (-O2 -g) into build/release and bin/
#   make FLAVOR=debug   the debug build (-O1) into build/debug/bin
#   make test       unit, integration and install tests on the debug build
#                   (installs missing packages)
#   make test-pg    the store, engine and integration tests on PostgreSQL
#   make test-failover  three anvild on PostgreSQL, the leader killed often
#   make check-asan the same tests under AddressSanitizer + UBSan
#   make demo       start anvild and a worker, run the Sleep job, stop
#   make install    PREFIX (/usr/local) and DESTDIR; make uninstall

# The test targets build the debug flavour unless FLAVOR is given; anything
# else builds the release flavour, the one users run.
TEST_GOALS := test tests test-unit test-integration test-crash test-install \
              test-browser test-pg test-failover
ifneq ($(filter $(TEST_GOALS),$(MAKECMDGOALS)),)
FLAVOR ?= debug
endif
FLAVOR ?= release
B      := build/$(FLAVOR)
ifeq ($(FLAVOR),release)
BIN    := bin
else
BIN    := $(B)/bin
endif

# One version: VERSION feeds ANVIL_VERSION, the soname and anvil.pc.
VERSION       := $(shell cat VERSION)
VERSION_MAJOR := $(word 1,$(subst ., ,$(VERSION)))
VERSION_MINOR := $(word 2,$(subst ., ,$(VERSION)))
SONAME        := libanvil.so.$(VERSION_MAJOR)
SHLIB         := $(SONAME).$(VERSION_MINOR)

CC     ?= cc
WARN   := -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough \
          -Wundef -Wpointer-arith
# AV_ASSERT (sdk/util/error.h) does not depend on NDEBUG: every flavour
# keeps the assertions that guard invariants.
OPT_debug   := -O1
OPT_release := -O2
OPT_asan    := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
OPT_fuzz    := -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT    := $(OPT_$(FLAVOR))
ifeq ($(FLAVOR),fuzz)
CC     := clang
endif
# Lazily expanded: pkg-config runs only once the packages are installed.
# libpq: the PostgreSQL backend (server/store_pg*.c), Debian's libpq-dev.
PKG_CFLAGS = $(shell pkg-config --cflags libprotobuf-c sqlite3 jansson libmicrohttpd gnutls libpq)
PKG_LIBS   = $(shell pkg-config --libs libprotobuf-c sqlite3 jansson libmicrohttpd gnutls libpq)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka)
# libcurl: the HTTP client of the integration tests only (test_http).
CURL_LIBS   = $(shell pkg-config --libs libcurl)
CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
             -g $(OPT) $(PIC) -MMD -MP -fvisibility=hidden \
             -DANVIL_VERSION='"$(VERSION)"' \
             -Isdk/include -Isdk -I$(B)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lnng -lmbedcrypto -lpthread $(LDLIBS)
LDFLAGS_ALL = $(filter -fsanitize%,$(OPT)) $(LDFLAGS)

DEPS_STAMP := build/.deps-ok
TEST_DEPS_STAMP := build/.test-deps-ok
# Rewritten only when the flags that make does not see as prerequisites
# change (optimisation, the binary directory, the version), so that every
# object depending on it is rebuilt then.
FLAGS_STAMP := $(B)/.flags
FLAGS_NOW   := $(OPT) $(abspath $(BIN)) $(VERSION)
$(shell mkdir -p $(B) && { [ "$$(cat $(FLAGS_STAMP) 2>/dev/null)" = \
    '$(FLAGS_NOW)' ] || echo '$(FLAGS_NOW)' >$(FLAGS_STAMP); })
PROTO      := proto/anvil/v1/anvil.proto
PB_C       := $(B)/gen/anvil/v1/anvil.pb-c.c
PB_H       := $(B)/gen/anvil/v1/anvil.pb-c.h

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

# The dashboard (web/*): tools/embed.c, a host tool built first, turns the
# files into one generated C table (never committed) that the server
# library links; server/dashboard.c serves it. The list of files is kept in
# a stamp, so adding or removing a file regenerates the table too.
WEB_FILES  := $(sort $(wildcard web/*.*))
EMBED      := $(B)/tools/embed
DASH_C     := $(B)/gen/dashboard_files.c
DASH_O     := $(B)/obj/gen/dashboard_files.o
WEB_STAMP  := $(B)/.web-files
$(shell mkdir -p $(B) && { [ "$$(cat $(WEB_STAMP) 2>/dev/null)" = \
    '$(WEB_FILES)' ] || echo '$(WEB_FILES)' >$(WEB_STAMP); })

SDK_SRCS    := $(wildcard sdk/*.c sdk/util/*.c sdk/runtime/*.c)
SERVER_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
WORKERD_SRCS := $(filter-out worker/main.c,$(wildcard worker/*.c))
CLI_SRCS    := $(filter-out cli/main.c,$(wildcard cli/*.c))
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
INTEG_SRCS  := $(wildcard tests/integration/test_*.c)
CRASH_SRCS  := $(wildcard tests/crash/*.c)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
EXAMPLE_SRCS := $(wildcard examples/*.c)
BENCH_SRCS  := $(wildcard bench/*.c)

LIBANVIL  := $(B)/libanvil.a
LIBANVIL_SO := $(B)/$(SHLIB)
LIBANVIL_OBJS = $(call obj,$(SDK_SRCS)) $(B)/obj/gen/anvil.pb-c.o
# What the shared library links against (the SDK needs no SQLite).
SDK_LIBS   = $(shell pkg-config --libs libprotobuf-c jansson) -lnng -lmbedcrypto -lpthread
LIBSERVER := $(B)/libanvild.a
LIBWORKERD := $(B)/libanvil-workerd.a
LIBCLI    := $(B)/libanvil-cli.a
LIBS_ALL  := $(LIBSERVER) $(LIBWORKERD) $(LIBCLI) $(LIBANVIL)

MAN_SRCS  := $(wildcard man/*.in)
MAN_PAGES := $(patsubst man/%.in,build/man/%,$(MAN_SRCS))
# The dashboard's browser test (headless Chromium, Selenium), one counted
# test; like the install tests, not under the sanitizer flavours.
BROWSER_TESTS := $(if $(filter debug release,$(FLAVOR)),\
                   $(wildcard tests/browser/test_*.py))
# Shell tests of the installed tree, the man pages, the units and the
# completion; each counts as one test in run-tests.sh. Not under the
# sanitizer flavours (an ASan libanvil.so cannot load into a plain program).
INSTALL_TESTS := $(if $(filter debug release,$(FLAVOR)),\
                   $(wildcard tests/install/test_*.sh))

PROGS := $(BIN)/anvild $(BIN)/anvil $(BIN)/anvil-worker \
         $(if $(BENCH_SRCS),$(BIN)/anvil-bench)
EXAMPLES := $(patsubst examples/%.c,$(BIN)/examples/%,$(EXAMPLE_SRCS))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))
INTEG_BINS := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(INTEG_SRCS))
CRASH_BINS := $(patsubst tests/crash/%.c,$(B)/tests/crash/%,$(CRASH_SRCS))
# What make test runs of them: the fail-over test (three anvild and a
# PostgreSQL cluster, timed leases of 2 s) only in the plain flavours, as
# the browser test; the sanitizer build runs the crash test alone.
TEST_CRASH_BINS := $(if $(filter debug release,$(FLAVOR)),$(CRASH_BINS),\
                     $(filter-out %/failover_test,$(CRASH_BINS)))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all deps test test-unit test-integration test-crash check-asan bench \
        test-pg test-failover \
        test-browser \
        bench-http bench-wrk bench-events \
        fuzz fuzz-run \
        demo run install uninstall test-install \
        format format-check clean tests
.DEFAULT_GOAL := all
# Keep the objects of tests and examples (pattern-rule intermediates).
.SECONDARY:

all: $(PROGS) $(EXAMPLES) $(LIBANVIL_SO) $(MAN_PAGES)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh
	@mkdir -p $(@D) && touch $@

# What only the tests need (promtool), installed by the test targets.
$(TEST_DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh test
	@mkdir -p $(@D) && touch $@

$(PB_C) $(PB_H): $(PROTO) | $(DEPS_STAMP)
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen -Iproto $(PROTO)

# Generated code is compiled without -Wpedantic extras it was not written for.
$(B)/obj/gen/anvil.pb-c.o: $(PB_C) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) -std=c11 -g $(OPT) $(PIC) -fvisibility=hidden -I$(B)/gen \
	    $(PKG_CFLAGS) -c $< -o $@

# libanvil's objects go into the shared library too: position independent.
$(LIBANVIL_OBJS): PIC := -fPIC

$(B)/obj/%.o: %.c $(PB_H) $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -DANVIL_BIN_DIR='"$(abspath $(BIN))"' -c $< -o $@

$(LIBANVIL): $(LIBANVIL_OBJS)
	@rm -f $@
	ar rcs $@ $^
# Only the ANVIL_API functions are exported (-fvisibility=hidden); -z defs
# refuses a library with an unresolved symbol.
$(LIBANVIL_SO): $(LIBANVIL_OBJS)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,-z,defs -Wl,--as-needed \
	    $(LDFLAGS_ALL) -o $@ $^ $(SDK_LIBS)
	ln -sf $(SHLIB) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libanvil.so
$(EMBED): tools/embed.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_POSIX_C_SOURCE=200809L $(WARN) -O1 -g -o $@ $<

$(DASH_C): $(EMBED) $(WEB_FILES) $(WEB_STAMP)
	@mkdir -p $(@D)
	$(EMBED) $@ web $(WEB_FILES)

$(DASH_O): $(DASH_C) $(FLAGS_STAMP) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -Iserver -c $< -o $@

$(LIBSERVER): $(call obj,$(SERVER_SRCS)) $(DASH_O)
	@rm -f $@
	ar rcs $@ $^
$(LIBWORKERD): $(call obj,$(WORKERD_SRCS))
	@rm -f $@
	ar rcs $@ $^
$(LIBCLI): $(call obj,$(CLI_SRCS))
	@rm -f $@
	ar rcs $@ $^

$(BIN)/anvild: $(call obj,server/main.c) $(LIBSERVER) $(LIBANVIL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)
$(BIN)/anvil-worker: $(call obj,worker/main.c) $(LIBWORKERD) $(LIBANVIL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)
$(BIN)/anvil: $(call obj,cli/main.c) $(LIBCLI) $(LIBANVIL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)
$(BIN)/anvil-bench: $(call obj,$(BENCH_SRCS)) $(LIBANVIL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)
$(BIN)/examples/%: $(B)/obj/examples/%.o $(LIBANVIL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(call obj,tests/harness.c tests/pg_harness.c) $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) $(CMOCKA_LIBS)
$(B)/tests/integration/%: $(B)/obj/tests/integration/%.o $(call obj,tests/harness.c tests/pg_harness.c) $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) $(CMOCKA_LIBS) $(CURL_LIBS)

$(B)/tests/crash/%: $(B)/obj/tests/crash/%.o $(call obj,tests/harness.c tests/pg_harness.c) $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) $(CMOCKA_LIBS)

$(B)/fuzz/%: $(B)/obj/tests/fuzz/%.o $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS_ALL)

# libFuzzer targets (clang): each runs FUZZ_SECONDS on its corpus in
# tests/fuzz/corpus/<target>/, whose files are kept as regression inputs.
FUZZ_SECONDS ?= 60
fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory FLAVOR=fuzz fuzz-run

fuzz-run: $(FUZZ_BINS)
	@for t in $(FUZZ_BINS); do \
	    name=$$(basename $$t); dir=$(B)/corpus/$$name; \
	    mkdir -p $$dir; cp tests/fuzz/corpus/$$name/* $$dir/ 2>/dev/null; \
	    echo "== $$name ($(FUZZ_SECONDS) s)"; \
	    $$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	        -print_final_stats=1 $$dir tests/fuzz/corpus/$$name \
	        2>$(B)/fuzz/$$name.log || { tail -40 $(B)/fuzz/$$name.log; exit 1; }; \
	    grep -E "stat::number_of_executed_units|Done" $(B)/fuzz/$$name.log | tail -2; \
	done

tests: all $(UNIT_BINS) $(INTEG_BINS) $(CRASH_BINS) $(TEST_DEPS_STAMP)

# make test runs the crash test small (2,000 jobs, for CI); make test-crash
# runs it with 20,000 jobs. It also runs test_store again on the PostgreSQL
# backend (a private cluster, tests/pg_harness.c; a few seconds);
# make test-pg runs the store, engine and integration tests there.
PG_QUICK_BINS := $(B)/tests/unit/test_store
PG_BINS := $(addprefix $(B)/tests/unit/,test_store test_store_events \
               test_engine test_engine_tx test_workflow_sdk) $(INTEG_BINS)
test: tests
	@$(TEST_ENV) sh scripts/run-tests.sh $(UNIT_BINS) $(INTEG_BINS) \
	    $(TEST_CRASH_BINS) $(INSTALL_TESTS) $(BROWSER_TESTS)
	@echo "== again on PostgreSQL (ANVIL_TEST_STORE=postgresql)"
	@ANVIL_TEST_STORE=postgresql sh scripts/run-tests.sh $(PG_QUICK_BINS)

test-pg: tests
	@ANVIL_TEST_STORE=postgresql sh scripts/run-tests.sh $(PG_BINS)

# The browser test alone: make test-browser (screenshots in
# $(B)/screenshots/).
test-browser: all $(TEST_DEPS_STAMP)
	@$(TEST_ENV) sh scripts/run-tests.sh $(BROWSER_TESTS)

# What the shell tests in tests/install/ are told about the build.
TEST_ENV = ANVIL_FLAVOR=$(FLAVOR) ANVIL_BIN_DIR=$(abspath $(BIN)) \
           ANVIL_BUILD_DIR=$(abspath $(B)) ANVIL_SRC_DIR=$(CURDIR) \
           MAKE="$(MAKE)"

test-install: all
	@$(TEST_ENV) sh scripts/run-tests.sh $(INSTALL_TESTS)

test-crash: tests
	@ANVIL_CRASH_JOBS=20000 ANVIL_CRASH_KILLS=12 ANVIL_TEST_TIMEOUT=3000 \
	    sh scripts/run-tests.sh $(CRASH_BINS)

# make test runs the fail-over test short (300 jobs, 3 leader kills, 1
# SIGSTOP); make test-failover runs it long: 5,000 jobs, 12 kills, 2
# stops and a PostgreSQL restart.
test-failover: tests
	@ANVIL_FAILOVER_JOBS=5000 ANVIL_FAILOVER_KILLS=12 \
	    ANVIL_FAILOVER_STOPS=2 ANVIL_FAILOVER_PG_RESTART=1 \
	    ANVIL_TEST_TIMEOUT=3000 sh scripts/run-tests.sh \
	    $(B)/tests/crash/failover_test

test-unit: all $(UNIT_BINS) $(TEST_DEPS_STAMP)
	@sh scripts/run-tests.sh $(UNIT_BINS)

test-integration: all $(INTEG_BINS)
	@sh scripts/run-tests.sh $(INTEG_BINS)

check-asan:
	@$(MAKE) --no-print-directory FLAVOR=asan test

# The benchmark: an optimised build, then every workload (never run by
# make test). BENCH_ARGS adds flags, e.g. BENCH_ARGS="--json".
# bench-http runs the http workload alone: single submits over nng and over
# HTTP, their latency, and nng with metrics on and off, on two anvilds
# (docs/performance.md, "The HTTP path"); bench-wrk cross-checks the HTTP
# submit rate with wrk (bench/wrk.sh); bench-events measures what writing
# the event stream costs (events on and --no-events, two anvilds per run).
bench:
	@$(MAKE) --no-print-directory FLAVOR=release all
	bin/anvil-bench --workload all $(BENCH_ARGS)
	bin/anvil-bench --workload http $(BENCH_ARGS)

bench-http:
	@$(MAKE) --no-print-directory FLAVOR=release all
	bin/anvil-bench --workload http $(BENCH_ARGS)

bench-events:
	@$(MAKE) --no-print-directory FLAVOR=release all
	bin/anvil-bench --workload events --runs 3 $(BENCH_ARGS)

bench-wrk:
	@$(MAKE) --no-print-directory FLAVOR=release all
	BIN=bin sh bench/wrk.sh

demo: all
	@sh scripts/demo.sh $(BIN)

run: all
	$(BIN)/anvild --db ./anvil.db --http http://127.0.0.1:8000

# Man pages: mdoc sources in man/, with @VERSION@ filled in.
build/man/%: man/%.in VERSION
	@mkdir -p $(@D)
	sed 's/@VERSION@/$(VERSION)/g' $< >$@

# make install: PREFIX (default /usr/local) and DESTDIR (a staging root).
# The programs link libanvil statically; the shared library, the headers
# and anvil.pc are there for programs built on the SDK.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
DOCDIR      ?= $(DATADIR)/doc/anvil
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
UNITDIR     ?= $(PREFIX)/lib/systemd/system
INSTALL     ?= install
D           := $(DESTDIR)
HEADERS     := $(wildcard sdk/include/anvil/*.h)
UNITS       := $(wildcard dist/systemd/*.service)
DOC_EXAMPLES := examples/README.md examples/chain.c examples/chain.json \
                examples/fanout.c examples/fanout.json \
                examples/worker-config.json examples/thumb.sh \
                dist/anvild.default
# Paths filled into anvil.pc and the units.
SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@PREFIX@|$(PREFIX)|g' \
            -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
            -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g'

install: all
	$(INSTALL) -d $(D)$(BINDIR) $(D)$(SBINDIR) $(D)$(LIBDIR)/pkgconfig \
	    $(D)$(INCLUDEDIR)/anvil $(D)$(DATADIR)/anvil/anvil/v1 \
	    $(D)$(DOCDIR)/examples $(D)$(BASHCOMPDIR) $(D)$(UNITDIR) \
	    $(D)$(MANDIR)/man1 $(D)$(MANDIR)/man3 $(D)$(MANDIR)/man5 \
	    $(D)$(MANDIR)/man8
	$(INSTALL) -m 755 $(BIN)/anvild $(D)$(SBINDIR)/anvild
	$(INSTALL) -m 755 $(BIN)/anvil $(BIN)/anvil-worker $(D)$(BINDIR)/
	$(INSTALL) -m 644 $(LIBANVIL_SO) $(D)$(LIBDIR)/$(SHLIB)
	ln -sf $(SHLIB) $(D)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(D)$(LIBDIR)/libanvil.so
	$(INSTALL) -m 644 $(LIBANVIL) $(D)$(LIBDIR)/libanvil.a
	$(INSTALL) -m 644 $(HEADERS) $(D)$(INCLUDEDIR)/anvil/
	sed 's/^\([[:space:]]*#[[:space:]]*define ANVIL_VERSION\) .*/\1 "$(VERSION)"/' \
	    sdk/include/anvil/anvil.h >$(D)$(INCLUDEDIR)/anvil/anvil.h
	$(SUBST) dist/pkgconfig/anvil.pc.in >$(D)$(LIBDIR)/pkgconfig/anvil.pc
	$(INSTALL) -m 644 $(PROTO) $(D)$(DATADIR)/anvil/anvil/v1/
	for m in $(MAN_PAGES); do \
	    $(INSTALL) -m 644 $$m $(D)$(MANDIR)/man$${m##*.}/; done
	$(INSTALL) -m 644 dist/bash-completion/anvil $(D)$(BASHCOMPDIR)/anvil
	ln -sf anvil $(D)$(BASHCOMPDIR)/anvild
	ln -sf anvil $(D)$(BASHCOMPDIR)/anvil-worker
	for u in $(UNITS); do \
	    $(SUBST) $$u >$(D)$(UNITDIR)/$${u##*/}; done
	$(INSTALL) -m 644 README.md CHANGELOG.md $(D)$(DOCDIR)/
	$(INSTALL) -m 644 $(DOC_EXAMPLES) $(D)$(DOCDIR)/examples/
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ]; then \
	    ldconfig 2>/dev/null || true; fi

uninstall:
	rm -f $(D)$(SBINDIR)/anvild $(D)$(BINDIR)/anvil $(D)$(BINDIR)/anvil-worker
	rm -f $(D)$(LIBDIR)/libanvil.so* $(D)$(LIBDIR)/libanvil.a \
	    $(D)$(LIBDIR)/pkgconfig/anvil.pc $(D)$(BASHCOMPDIR)/anvil \
	    $(D)$(BASHCOMPDIR)/anvild $(D)$(BASHCOMPDIR)/anvil-worker
	rm -rf $(D)$(INCLUDEDIR)/anvil $(D)$(DATADIR)/anvil $(D)$(DOCDIR)
	for m in $(MAN_PAGES); do \
	    rm -f $(D)$(MANDIR)/man$${m##*.}/$${m##*/}; done
	for u in $(UNITS); do rm -f $(D)$(UNITDIR)/$${u##*/}; done

CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)
format-check:
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
