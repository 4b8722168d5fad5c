# mk/ann.mk - the vector index benchmark (issue 3): make bench-ann
#
# engram's driver links the release objects (portable flags, run-time SIMD
# dispatch); hnswlib's driver is compiled here only, with -O3 -march=native.
# ANN_ARGS=--quick uses a 50,000-point clustered set instead of 200,000;
# ANN_ROUNDS=N sets the number of alternating query rounds (default 5).
.PHONY: bench-ann

ANN_BINS := build/bench/ann_data build/bench/ann_engram build/bench/ann_hnswlib

build/bench/ann_data: bench/ann/ann_data.c bench/ann/ann_common.h $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -Ibench/ann -o $@ $< $(REL_OBJS) $(LIBS)

build/bench/ann_engram: bench/ann/ann_engram.c bench/ann/ann_common.h $(REL_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(REL_CFLAGS) -Ibench/ann -o $@ $< $(REL_OBJS) $(LIBS)

build/bench/ann_hnswlib: bench/ann/ann_hnswlib.cpp bench/ann/ann_common.h
	@mkdir -p $(dir $@)
	g++ -O3 -march=native -std=c++17 -Ibench/ann -o $@ $<

bench-ann: $(ANN_BINS)
	bench/ann/run.sh $(ANN_ARGS)
