# robust.mk - reliability tiers (issue 9): fault injection helpers, crash
# loop, load and hostile clients, ThreadSanitizer, the LMDB durability facts
# and the report that gathers their figures (docs/RELIABILITY.md).
#
#   make crash-loop     >= 100 SIGKILLs during a mixed workload (CRASH_KILLS, CRASH_SEED)
#   make load           wrk at 64 and 256 connections + 500 slowloris (LOAD_SECONDS)
#   make tsan           build/tsan: concurrency tests under ThreadSanitizer
#   make lmdb-facts     LMDB alone on a tiny tmpfs: WRITEMAP + full disk, EIO, fsync
#   make full-disk      engram ingesting into a tiny tmpfs until ENOSPC (root)
#   make reliability    all of the above, then writes docs/RELIABILITY.md

CRASH_KILLS ?= 120
CRASH_SEED ?= $(shell date +%s)
LOAD_SECONDS ?= 60
TSAN_CFLAGS := $(CSTD) $(WARN) $(INC) -O1 -g -fno-omit-frame-pointer -fsanitize=thread -DENGRAM_TESTING
TSAN_OBJS := $(LIB_SRCS:src/%.c=build/tsan/%.o)
TSAN_TESTS := test_store test_http_server

.PHONY: crash-loop load tsan lmdb-facts full-disk reliability

build/tsan/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_CFLAGS) -c $< -o $@

build/tsan/engram: $(TSAN_OBJS) build/tsan/main.o
	$(CC) $(TSAN_CFLAGS) -o $@ $^ $(LIBS)

build/tsan/tests/%: tests/unit/%.c tests/unit/test.h $(TSAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_CFLAGS) -Itests/unit -o $@ $< $(TSAN_OBJS) $(LIBS)

build/robust/lmdb_facts: tests/robust/lmdb_facts.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g -o $@ $< -llmdb

tsan: build/tsan/engram $(TSAN_TESTS:%=build/tsan/tests/%)
	tests/robust/tsan.sh $(TSAN_TESTS)

crash-loop: build/engram
	python3 tests/robust/crash_loop.py --binary build/engram --kills $(CRASH_KILLS) --seed $(CRASH_SEED) \
		--report build/robust/crash.json

load: build/engram
	python3 tests/robust/load.py --binary build/engram --seconds $(LOAD_SECONDS) --report build/robust/load.json

lmdb-facts: build/robust/lmdb_facts
	tests/robust/lmdb_facts.sh build/robust/lmdb_facts build/robust/lmdb_facts.json

full-disk: build/engram
	python3 tests/robust/full_disk.py --binary build/engram --report build/robust/full_disk.json

reliability: build/engram
	tests/robust/reliability.sh
