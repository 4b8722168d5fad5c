// ann_hnswlib.cpp - the hnswlib side of `make bench-ann`: builds
// HierarchicalNSW (L2, M=16, ef_construction=200) from DIR/base.bin in
// insertion order on one thread, then runs the queries once untimed (the
// warm-up both drivers do), then for each ef runs every query of
// DIR/query.bin on one thread, ANN_REPS passes keeping the fastest, and
// prints
//   build <seconds> <index bytes>
//   <ef> <recall@10> <QPS>
// Compiled only for the benchmark, with -O3 -march=native (Debian's
// libhnswlib-dev headers).
#include <hnswlib/hnswlib.h>

#include <vector>

extern "C" {
#include "ann_common.h"
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: ann_hnswlib DIR\n"); return 2; }
    uint32_t nb, dim, nq, qd, gn, gk;
    float *base = (float *)ann_read(argv[1], "base.bin", &nb, &dim);
    float *query = (float *)ann_read(argv[1], "query.bin", &nq, &qd);
    uint32_t *gt = (uint32_t *)ann_read(argv[1], "gt.bin", &gn, &gk);
    if (!base || !query || !gt || qd != dim || gn != nq || gk != ANN_K) return 1;
    hnswlib::L2Space space(dim);
    hnswlib::HierarchicalNSW<float> index(&space, nb, ANN_M, ANN_EFC, 100);
    double t0 = ann_now();
    for (uint32_t i = 0; i < nb; i++) index.addPoint(base + (size_t)i * dim, i);
    double build = ann_now() - t0;
    size_t bytes = (size_t)nb * index.size_data_per_element_ + index.maxlevel_ * 0;
    for (uint32_t i = 0; i < nb; i++)
        if (index.element_levels_[i] > 0) bytes += index.size_links_per_element_ * index.element_levels_[i];
    printf("build %.3f %zu\n", build, bytes);
    /* The same untimed warm-up pass as the engram driver's. */
    index.setEf(ann_efs[0]);
    for (uint32_t q = 0; q < nq; q++) index.searchKnn(query + (size_t)q * dim, ANN_K);
    for (int ef : ann_efs) {
        index.setEf(ef);
        size_t hits = 0;
        double qps = 0;
        std::vector<uint64_t> got;
        for (int rep = 0; rep < ANN_REPS; rep++) {
            hits = 0;
            t0 = ann_now();
            for (uint32_t q = 0; q < nq; q++) {
                auto r = index.searchKnn(query + (size_t)q * dim, ANN_K);
                got.clear();
                while (!r.empty()) { got.push_back(r.top().second); r.pop(); }
                hits += ann_hits(gt + (size_t)q * ANN_K, ANN_K, got.data(), got.size());
            }
            double t = ann_now() - t0;
            if (nq / t > qps) qps = nq / t;
        }
        printf("%d %.4f %.0f\n", ef, (double)hits / ((double)nq * ANN_K), qps);
    }
    return 0;
}
