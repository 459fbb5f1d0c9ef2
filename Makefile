#   bulkhead: one hand-written GNU Makefile.
#
#   make            release build in build/release
#   make check      ASan+UBSan build in build/asan, every test, "N passed, N failed"
#   make demo       the whole flow with the example policy and agents
#   make bench      bus vs. raw ZeroMQ, NATS and Redis; the fleet, blast radius, queries (not in check)
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (60); check runs them briefly
#   make memcheck   unit tests under valgrind (plain build)
#   make install    bin, lib, headers and bulkhead.pc under $(DESTDIR)$(PREFIX)
#   make deps       install missing Debian packages (idempotent)
#   make fresh-check  the README's commands in fresh Debian 12 roots (root; minutes)
#
#   Two passes. What a person types runs in the outer pass: it installs the
#   missing packages (scripts/install-deps), then runs the same goals again in
#   an inner make (BULKHEAD_INNER=1), which is the first to read pkg-config.
#   Flags read before the packages exist would be empty, and the first build
#   on a fresh machine would fail to link.

PREFIX  ?= /usr/local
DESTDIR ?=
VERSION ?= 0.1.0
BUILD   ?= build/release
SAN     ?= 0

.DEFAULT_GOAL := all

deps:
	@scripts/install-deps

#   What `make bench` needs on top (NATS, its C client, gnuplot, Redis, hiredis).
deps-bench:
	@scripts/install-deps bench

clean:
	rm -rf build

#   Needs root; see scripts/fresh-machine for its options.
fresh-check:
	@scripts/fresh-machine $(FRESH_ARGS)

.PHONY: deps deps-bench clean fresh-check

ifndef BULKHEAD_INNER

OUTER_GOALS := $(filter-out deps deps-bench clean fresh-check,$(or $(MAKECMDGOALS),all))

#   One after the other, even under -j: apt takes one lock.
.PHONY: outer $(OUTER_GOALS)
$(OUTER_GOALS): outer ;
outer: deps
	$(if $(filter bench,$(OUTER_GOALS)),@scripts/install-deps bench)
	@$(MAKE) --no-print-directory BULKHEAD_INNER=1 $(OUTER_GOALS)

else   #   the inner pass: the packages are there

PKGS    := libzmq libczmq libprotobuf-c lmdb libsodium jansson libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_STATUS := $(.SHELLSTATUS)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
ifneq ($(PKG_STATUS)$(.SHELLSTATUS),00)
$(error pkg-config cannot give the flags for $(PKGS) (its message is above); \
    `make deps` or scripts/install-deps installs the Debian packages)
endif

CC      ?= cc
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -g -MMD -MP \
           -Ibus -Imediators -Itests/support -I$(BUILD)/gen $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(EXTRA_LDFLAGS)
LDLIBS  := $(PKG_LIBS) -lpthread

ifeq ($(SAN),1)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else
CFLAGS  += -O2
endif

#   SAN=fuzz: the fuzz build (build/fuzz, see `fuzz` below). clang, with
#   the library instrumented for libFuzzer too, not only the targets.
FUZZ_CC ?= clang
ifeq ($(SAN),fuzz)
CC      := $(FUZZ_CC)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
           -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

PROTOS   := $(wildcard schemas/*.proto)
GEN_C    := $(PROTOS:schemas/%.proto=$(BUILD)/gen/%.pb-c.c)
GEN_H    := $(GEN_C:.c=.h)
GEN_PY   := $(PROTOS:schemas/%.proto=$(BUILD)/py/%_pb2.py)

LIB_SRC  := $(sort $(wildcard bus/bus_*.c) $(wildcard mediators/med_*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(GEN_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)
LIB      := $(BUILD)/libbulkhead.a

BIN      := $(BUILD)/bulkhead
BIN_SRC  := bus/main.c $(sort $(wildcard bus/cmd_*.c))
BIN_OBJ  := $(BIN_SRC:%.c=$(BUILD)/obj/%.o)

SUPPORT_SRC := $(sort $(wildcard tests/support/*.c))
SUPPORT_OBJ := $(SUPPORT_SRC:%.c=$(BUILD)/obj/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c tests/e2e_*.c))
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLES := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/examples/%)

BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCHES  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all check demo bench memcheck install tests
#   Generated code and test objects are not intermediate: keep them, or
#   every build would regenerate and recompile everything. Only ever this
#   one bare .SECONDARY: one with prerequisites anywhere in this file would
#   limit it to those, and make would delete the rest after each build.
.SECONDARY:

all: $(BIN) $(LIB) $(EXAMPLES) $(GEN_PY)

tests: all $(TESTS)

#   Generated code goes to $(BUILD)/gen, never into the tree.
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: schemas/%.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen -Ischemas $<

#   The same .proto files through Debian's protoc: proves any language can be
#   an agent, and gives the Python example its module.
$(BUILD)/py/%_pb2.py: schemas/%.proto
	@mkdir -p $(BUILD)/py
	protoc --python_out=$(BUILD)/py -Ischemas $<

#   The approval console's page, embedded: bus/console/* as C strings.
CONSOLE_ASSETS := bus/console/console.html bus/console/console.css bus/console/console.js
$(BUILD)/gen/console_assets.h: $(CONSOLE_ASSETS) scripts/embed
	@mkdir -p $(BUILD)/gen
	scripts/embed $@ $(CONSOLE_ASSETS)
$(BUILD)/obj/bus/cmd_console.o: $(BUILD)/gen/console_assets.h

$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror -Wshadow,$(CFLAGS)) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(BIN_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(BIN_OBJ) $(LIB) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(SUPPORT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(SUPPORT_OBJ) $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

#   The drivers share bench/bench_util.h.
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) $(if $(findstring nats,$*),-lnats)$(if $(findstring redis,$*),-lhiredis)

check:
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 tests
	@BUILD=build/asan scripts/run-tests

memcheck:
	@$(MAKE) --no-print-directory BUILD=build/release tests
	@BUILD=build/release VALGRIND=1 scripts/run-tests

demo: all
	@BUILD=$(BUILD) examples/demo.sh

#   Not part of check: minutes long, and its figures are ratios for people.
#   BENCH_FULL=1 for 1M messages / 60 s per run (see bench/run.sh).
bench:
	@$(MAKE) --no-print-directory BUILD=build/release all \
	    $(BENCH_SRC:bench/%.c=build/release/bench/%)
	@BUILD=build/release bench/run.sh
	@echo "== the detectors on against off (bench/monitor.sh; BENCH_FULL: 11 rounds of 100,000)"
	@BUILD=build/release $(if $(BENCH_FULL),,MONITOR_ROUNDS=7 MONITOR_COUNT=30000 MONITOR_SECONDS=8) \
	    bench/monitor.sh
	@echo "== blast radius at scale (bench/blast.sh)"
	@BUILD=build/release bench/blast.sh
	@echo "== queries on a large log (bench/query.sh; BENCH_FULL: 10M records)"
	@BUILD=build/release $(if $(BENCH_FULL),BENCH_QUERY_RECORDS=10000000) bench/query.sh

#   Fuzzing: libFuzzer targets tests/fuzz/fuzz_NAME.c, seed corpora in
#   tests/fuzz/NAME/ (tests/fuzz/run.sh runs one). Their own build,
#   build/fuzz (SAN=fuzz: clang, the library instrumented too), after the
#   packages `scripts/install-deps fuzz` adds. `make fuzz` runs each for
#   FUZZ_SECONDS, one after the other (new inputs in build/fuzz/corpus);
#   `make check` runs each for seconds (tests/fuzz.test.sh). Whatever
#   crashes is saved in tests/fuzz/NAME/, so every later run replays it.
#   `make fuzz-seeds` writes the generated seeds again (tests/fuzz/seeds.c).
FUZZ_BUILD   := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES   := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZERS      := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz_%) $(BUILD)/fuzz/seeds

.PHONY: deps-fuzz fuzz-build fuzzers fuzz fuzz-seeds

deps-fuzz:
	@scripts/install-deps fuzz

fuzzers: $(FUZZERS)

$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/fuzz/seeds: $(BUILD)/obj/tests/fuzz/seeds.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

fuzz-build: deps-fuzz
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) SAN=fuzz fuzzers

#   Every target runs, even after one found something; then the status.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_BUILD)/logs; status=0; for t in $(FUZZ_NAMES); do \
	    log=$(FUZZ_BUILD)/logs/$$t.log; \
	    echo "fuzz $$t: $(FUZZ_SECONDS) s (log: $$log)"; \
	    if FUZZ_BUILD=$(FUZZ_BUILD) tests/fuzz/run.sh $$t $(FUZZ_SECONDS) >$$log 2>&1; then \
	        grep -aE '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' $$log; \
	    else \
	        status=1; tail -40 $$log; \
	    fi; \
	done; exit $$status

fuzz-seeds: fuzz-build
	$(FUZZ_BUILD)/fuzz/seeds tests/fuzz/wire tests/fuzz/record

#   make check runs the targets briefly: they must exist first.
check: fuzz-build

#   ...and drives promtool and a real browser: those packages first.
.PHONY: deps-test
deps-test:
	@scripts/install-deps test
check: deps-test

#   Headers: bus_client.h includes bus_error.h and the generated
#   bulkhead.pb-c.h by quoted name, so they go side by side; bulkhead.pc
#   names the directory (see bulkhead.pc.in).
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include/bulkhead
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/bulkhead
	install -m 0644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libbulkhead.a
	install -m 0644 bus/bus_client.h bus/bus_error.h $(GEN_H) $(DESTDIR)$(PREFIX)/include/bulkhead/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' bulkhead.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/bulkhead.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/bulkhead.pc

-include $(shell find build -name '*.d' 2>/dev/null)

endif
