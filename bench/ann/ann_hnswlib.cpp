// ann_hnswlib.cpp - the hnswlib side of `make bench-ann`, in two steps that
// run.sh calls as separate processes:
//   ann_hnswlib DIR build   builds HierarchicalNSW (L2, M=16,
//                           ef_construction=200) from DIR/base.bin in
//                           insertion order on one thread, saves it to
//                           DIR/hnswlib.idx; prints "build <CPU seconds>
//                           <index bytes>"
//   ann_hnswlib DIR query   one round: loads the index (not timed), runs the
//                           queries once untimed, then once per ef on one
//                           thread; prints "<ef> <recall@10> <QPS>"
// Compiled only for the benchmark, with -O3 -march=native (Debian's
// libhnswlib-dev headers).
#include <hnswlib/hnswlib.h>

#include <string>
#include <vector>

extern "C" {
#include "ann_common.h"
}

static int build(const char *data, const std::string &path)
{
    uint32_t nb, dim;
    float *base = (float *)ann_read(data, "base.bin", &nb, &dim);
    if (!base) return 1;
    hnswlib::L2Space space(dim);
    hnswlib::HierarchicalNSW<float> index(&space, nb, ANN_M, ANN_EFC, 100);
    double t0 = ann_now();
    for (uint32_t i = 0; i < nb; i++) index.addPoint(base + (size_t)i * dim, i);
    double secs = ann_now() - t0;
    size_t bytes = (size_t)nb * index.size_data_per_element_;
    for (uint32_t i = 0; i < nb; i++)
        if (index.element_levels_[i] > 0) bytes += index.size_links_per_element_ * index.element_levels_[i];
    printf("build %.3f %zu\n", secs, bytes);
    index.saveIndex(path);
    free(base);
    return 0;
}

static double run(hnswlib::HierarchicalNSW<float> &index, const float *query, uint32_t nq, uint32_t dim,
                  const uint32_t *gt, int ef, double *recall)
{
    index.setEf(ef);
    size_t hits = 0;
    std::vector<uint64_t> got;
    double t0 = ann_now();
    for (uint32_t q = 0; q < nq; q++) {
        auto r = index.searchKnn(query + (size_t)q * dim, ANN_K);
        got.clear();
        while (!r.empty()) { got.push_back(r.top().second); r.pop(); }
        hits += ann_hits(gt + (size_t)q * ANN_K, ANN_K, got.data(), got.size());
    }
    double t = ann_now() - t0;
    *recall = (double)hits / ((double)nq * ANN_K);
    return nq / t;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "build") && strcmp(argv[2], "query"))) {
        fprintf(stderr, "usage: ann_hnswlib DIR build|query\n");
        return 2;
    }
    std::string path = std::string(argv[1]) + "/hnswlib.idx";
    if (strcmp(argv[2], "build") == 0) return build(argv[1], path);
    uint32_t nq, dim, gn, gk;
    float *query = (float *)ann_read(argv[1], "query.bin", &nq, &dim);
    uint32_t *gt = (uint32_t *)ann_read(argv[1], "gt.bin", &gn, &gk);
    if (!query || !gt || gn != nq || gk != ANN_K) return 1;
    hnswlib::L2Space space(dim);
    hnswlib::HierarchicalNSW<float> index(&space, path);
    double recall;
    run(index, query, nq, dim, gt, ann_efs[0], &recall);   // untimed, as engram's driver does
    for (int ef : ann_efs) {
        double qps = run(index, query, nq, dim, gt, ef, &recall);
        printf("%d %.4f %.0f\n", ef, recall, qps);
    }
    free(query);
    free(gt);
    return 0;
}
