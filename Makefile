# anvil - one Makefile for the server, worker, SDK, CLI, tests and demo.
#
#   make            build everything into build/$(FLAVOR) and bin/
#   make test       unit + integration tests (installs missing packages)
#   make check-asan the same tests under AddressSanitizer + UBSan
#   make demo       start anvild and a worker, run the Sleep job, stop

FLAVOR ?= debug
B      := build/$(FLAVOR)
ifeq ($(FLAVOR),debug)
BIN    := bin
else
BIN    := $(B)/bin
endif

CC     ?= cc
WARN   := -Wall -Wextra -Werror -Wpedantic -Wshadow -Wstrict-prototypes \
          -Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough \
          -Wundef -Wpointer-arith
OPT_debug   := -O1
OPT_release := -O2 -DNDEBUG
OPT_asan    := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
OPT_fuzz    := -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT    := $(OPT_$(FLAVOR))
ifeq ($(FLAVOR),fuzz)
CC     := clang
endif
# Lazily expanded: pkg-config runs only once the packages are installed.
PKG_CFLAGS = $(shell pkg-config --cflags libprotobuf-c sqlite3 jansson)
PKG_LIBS   = $(shell pkg-config --libs libprotobuf-c sqlite3 jansson)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka)
CFLAGS_ALL = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
             -g $(OPT) -MMD -MP -fvisibility=hidden \
             -Isdk/include -Isdk -I$(B)/gen $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lnng -lmbedcrypto -lpthread $(LDLIBS)
LDFLAGS_ALL = $(filter -fsanitize%,$(OPT)) $(LDFLAGS)

DEPS_STAMP := build/.deps-ok
PROTO      := proto/anvil/v1/anvil.proto
PB_C       := $(B)/gen/anvil/v1/anvil.pb-c.c
PB_H       := $(B)/gen/anvil/v1/anvil.pb-c.h

obj = $(patsubst %.c,$(B)/obj/%.o,$(1))

SDK_SRCS    := $(wildcard sdk/*.c sdk/util/*.c worker/runtime*.c)
SERVER_SRCS := $(filter-out server/main.c,$(wildcard server/*.c))
WORKERD_SRCS := $(filter-out worker/main.c worker/runtime%,$(wildcard worker/*.c))
CLI_SRCS    := $(filter-out cli/main.c,$(wildcard cli/*.c))
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
INTEG_SRCS  := $(wildcard tests/integration/test_*.c)
CRASH_SRCS  := $(wildcard tests/crash/*.c)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz_*.c)
EXAMPLE_SRCS := $(wildcard examples/*.c)
BENCH_SRCS  := $(wildcard bench/*.c)

LIBANVIL  := $(B)/libanvil.a
LIBSERVER := $(B)/libanvild.a
LIBWORKERD := $(B)/libanvil-workerd.a
LIBCLI    := $(B)/libanvil-cli.a
LIBS_ALL  := $(LIBSERVER) $(LIBWORKERD) $(LIBCLI) $(LIBANVIL)

PROGS := $(BIN)/anvild $(BIN)/anvil $(BIN)/anvil-worker \
         $(if $(BENCH_SRCS),$(BIN)/anvil-bench)
EXAMPLES := $(patsubst examples/%.c,$(BIN)/examples/%,$(EXAMPLE_SRCS))
UNIT_BINS  := $(patsubst tests/unit/%.c,$(B)/tests/unit/%,$(UNIT_SRCS))
INTEG_BINS := $(patsubst tests/integration/%.c,$(B)/tests/integration/%,$(INTEG_SRCS))
CRASH_BINS := $(patsubst tests/crash/%.c,$(B)/tests/crash/%,$(CRASH_SRCS))
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZ_SRCS))

.PHONY: all deps test test-unit test-integration test-crash check-asan bench \
        fuzz fuzz-run \
        demo run \
        format format-check clean tests
.DEFAULT_GOAL := all
# Keep the objects of tests and examples (pattern-rule intermediates).
.SECONDARY:

all: $(PROGS) $(EXAMPLES)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	@sh scripts/deps.sh
	@mkdir -p $(@D) && touch $@

$(PB_C) $(PB_H): $(PROTO) | $(DEPS_STAMP)
	@mkdir -p $(B)/gen
	protoc-c --c_out=$(B)/gen -Iproto $(PROTO)

# Generated code is compiled without -Wpedantic extras it was not written for.
$(B)/obj/gen/anvil.pb-c.o: $(PB_C)
	@mkdir -p $(@D)
	$(CC) -std=c11 -g $(OPT) -fvisibility=hidden -I$(B)/gen $(PKG_CFLAGS) \
	    -c $< -o $@

$(B)/obj/%.o: %.c $(PB_H) | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_ALL) -DANVIL_BIN_DIR='"$(abspath $(BIN))"' -c $< -o $@

$(LIBANVIL): $(call obj,$(SDK_SRCS)) $(B)/obj/gen/anvil.pb-c.o
	@rm -f $@
	ar rcs $@ $^
$(LIBSERVER): $(call obj,$(SERVER_SRCS))
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

$(B)/tests/unit/%: $(B)/obj/tests/unit/%.o $(call obj,tests/harness.c) $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) $(CMOCKA_LIBS)
$(B)/tests/integration/%: $(B)/obj/tests/integration/%.o $(call obj,tests/harness.c) $(LIBS_ALL)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL) $(CMOCKA_LIBS)

$(B)/tests/crash/%: $(B)/obj/tests/crash/%.o $(call obj,tests/harness.c) $(LIBS_ALL)
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

tests: all $(UNIT_BINS) $(INTEG_BINS) $(CRASH_BINS)

# make test runs the crash test small (2,000 jobs, for CI); make test-crash
# runs it with 20,000 jobs.
test: tests
	@sh scripts/run-tests.sh $(UNIT_BINS) $(INTEG_BINS) $(CRASH_BINS)

test-crash: tests
	@ANVIL_CRASH_JOBS=20000 ANVIL_CRASH_KILLS=12 ANVIL_TEST_TIMEOUT=3000 \
	    sh scripts/run-tests.sh $(CRASH_BINS)

test-unit: all $(UNIT_BINS)
	@sh scripts/run-tests.sh $(UNIT_BINS)

test-integration: all $(INTEG_BINS)
	@sh scripts/run-tests.sh $(INTEG_BINS)

check-asan:
	@$(MAKE) --no-print-directory FLAVOR=asan test

# The benchmark: an optimised build, then every workload (never run by
# make test). BENCH_ARGS adds flags, e.g. BENCH_ARGS="--json".
bench:
	@$(MAKE) --no-print-directory FLAVOR=release all
	build/release/bin/anvil-bench --workload all $(BENCH_ARGS)

demo: all
	@sh scripts/demo.sh $(BIN)

run: all
	$(BIN)/anvild --db ./anvil.db

CLANG_FORMAT ?= clang-format
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)
format-check:
	$(CLANG_FORMAT) --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
