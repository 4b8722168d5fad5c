# engram - build, test and benchmark targets. See README.md.
#
#   make            release build: build/engram
#   make test       ASan+UBSan build, unit + integration tests ("N passed, N failed")
#   make bench-bm25 SciFact BM25 quality and latency beside SQLite FTS5
#   make run        build and serve on the embedded defaults

CC      ?= cc
VERSION := 0.1.0
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
CSTD    := -std=c11 -D_GNU_SOURCE -DENGRAM_VERSION='"$(VERSION)"'
INC     := -Isrc
LIBS    := -llmdb -lzstd -lutf8proc -lstemmer -lsodium -lpthread -lm

REL_CFLAGS  := $(CSTD) $(WARN) $(INC) -O2 -g -fno-strict-aliasing
ASAN_CFLAGS := $(CSTD) $(WARN) $(INC) -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined -DENGRAM_TESTING

SRCS     := $(sort $(shell find src -name '*.c'))
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
HDRS     := $(shell find src -name '*.h')
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

REL_OBJS  := $(LIB_SRCS:src/%.c=build/rel/%.o)
ASAN_OBJS := $(LIB_SRCS:src/%.c=build/asan/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)
REPLAY_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/asan/fuzz/%)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: all run test unit integration bench-bm25 bench-http fuzz clean print-libs

# Each module adds its libraries, flags and targets in a fragment of its own
# (mk/NAME.mk: LIBS += ..., extra targets), so modules never edit this file
# at the same time. Fragments are read in name order.
-include $(sort $(wildcard mk/*.mk))

all: build/engram

build/rel/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -c $< -o $@

build/asan/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c $< -o $@

build/engram: $(REL_OBJS) build/rel/main.o
	$(CC) $(REL_CFLAGS) -o $@ $^ $(LIBS)

build/asan/engram: $(ASAN_OBJS) build/asan/main.o
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS)

build/asan/tests/%: tests/unit/%.c tests/unit/test.h $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -Itests/unit -o $@ $< $(ASAN_OBJS) $(LIBS)

# Fuzz targets replayed over their checked-in corpora (no libFuzzer needed).
build/asan/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $< tests/fuzz/replay.c $(ASAN_OBJS) $(LIBS)

# Real coverage-guided fuzzers (clang + libFuzzer), each run FUZZ_SECONDS.
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS) $(HDRS)
	@mkdir -p $(dir $@)
	clang $(CSTD) $(INC) -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRCS) $(LIBS)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		name=$$(basename $$f); corpus=tests/fuzz/corpus/$${name#fuzz_}; \
		mkdir -p build/fuzz/work/$$name; \
		echo "== $$name for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -max_len=65536 build/fuzz/work/$$name $$corpus || exit 1; \
	done

run: build/engram
	./build/engram serve

unit: $(UNIT_BINS)
integration: build/asan/engram

test: $(UNIT_BINS) $(REPLAY_BINS) build/asan/engram build/engram
	@tests/run.sh

bench-bm25: build/engram
	bench/bm25_scifact.sh

# The link libraries of every module (scripts that link against build/rel).
print-libs:
	@echo $(LIBS)

bench-http: build/engram
	python3 bench/http_scifact.py

clean:
	rm -rf build
