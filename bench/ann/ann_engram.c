/*
 * ann_engram.c - engram's side of `make bench-ann`, in three steps that
 * run.sh calls as separate processes:
 *   ann_engram DIR build    builds the HNSW index of DIR/base.bin (L2, M=16,
 *                           ef_construction=200) in DIR/engram-data through
 *                           store_open/store_write, in batches of BATCH
 *                           inserts a write (each one group commit, fsynced);
 *                           prints "build <CPU seconds> <index bytes>"
 *   ann_engram DIR query    one round: opens the store, runs the queries once
 *                           untimed, then once per ef on one thread, each in
 *                           its own short read txn through a hnsw_cache_t (as
 *                           a server thread would); prints "cold <ef> <QPS of
 *                           the untimed pass>" and "<ef> <recall@10> <QPS>"
 *   ann_engram DIR restart  times store_open + cache creation + the first
 *                           query (wall): "restart <ms> <ms in store_open>
 *                           <ms in the query>"; no index load, blocks are
 *                           read in place through the map.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "ann_common.h"
#include "index/distance.h"
#include "index/hnsw.h"
#include "store/store.h"
#include "util/common.h"

#define BATCH 10000

typedef struct build_arg {
    store_t *st;
    const uint64_t *ids;
    const float *vecs;
    size_t n;
    uint32_t dim;
    int create;
} build_arg_t;

static int build_cb(MDB_txn *txn, void *arg)
{
    build_arg_t *a = arg;
    if (a->create) {
        hnsw_params_t p = {a->dim, HNSW_L2, ANN_M, ANN_EFC};
        return hnsw_create(txn, a->st, 1, 1, &p);
    }
    return hnsw_insert_batch(txn, a->st, 1, 1, a->ids, a->vecs, a->n, a->dim);
}

static int run_queries(store_t *st, hnsw_cache_t *c, const float *query, uint32_t nq, uint32_t dim,
                       const uint32_t *gt, int ef, double *recall, double *qps)
{
    hnsw_hit_t hits[ANN_K];
    uint64_t ids[ANN_K];
    size_t found = 0;
    double t0 = ann_now();
    for (uint32_t q = 0; q < nq; q++) {
        MDB_txn *txn;
        size_t n;
        if (store_read_begin(st, &txn) != 0) return -1;
        int rc = hnsw_search_cached(c, txn, 1, 1, query + (size_t)q * dim, dim, ANN_K, (size_t)ef,
                                    NULL, NULL, hits, &n);
        store_read_end(st, txn);
        if (rc != 0) { fprintf(stderr, "search: %s\n", engram_strerror(rc)); return -1; }
        for (size_t i = 0; i < n; i++) ids[i] = hits[i].id - 1;   /* ids are row + 1 */
        found += ann_hits(gt + (size_t)q * ANN_K, ANN_K, ids, n);
    }
    *qps = nq / (ann_now() - t0);
    *recall = (double)found / ((double)nq * ANN_K);
    return 0;
}

static int build(const char *data, const char *dir)
{
    uint32_t nb, dim;
    float *base = ann_read(data, "base.bin", &nb, &dim);
    if (!base) return 1;
    store_options_t opt = {0};
    opt.initial_map_bytes = (size_t)8 << 30;   /* no map growth (and batch rerun) mid-build */
    store_t *st = NULL;
    if (store_open(dir, &opt, &st) != 0) { fprintf(stderr, "store_open: %s\n", store_last_error()); return 1; }
    uint64_t *ids = malloc((size_t)nb * sizeof *ids);
    for (uint32_t i = 0; i < nb; i++) ids[i] = (uint64_t)i + 1;
    build_arg_t a = {st, NULL, NULL, 0, dim, 1};
    double t0 = ann_now();
    int rc = store_write(st, build_cb, &a);
    a.create = 0;
    for (uint32_t i = 0; rc == 0 && i < nb; i += BATCH) {
        a.ids = ids + i;
        a.vecs = base + (size_t)i * dim;
        a.n = nb - i < BATCH ? nb - i : BATCH;
        rc = store_write(st, build_cb, &a);
    }
    double secs = ann_now() - t0;
    if (rc != 0) { fprintf(stderr, "build: %s\n", engram_strerror(rc)); return 1; }
    /* Index size: the pages of the two HNSW databases (the file itself also
     * holds pages freed by the batches' rewrites, reused by later writes). */
    size_t bytes = 0;
    MDB_txn *txn;
    if (store_read_begin(st, &txn) != 0) return 1;
    for (int d = DB_HNSW_META; d <= DB_HNSW_NODES; d++) {
        MDB_stat ms;
        if (mdb_stat(txn, store_dbi(st, (store_db_t)d), &ms) != 0) return 1;
        bytes += (ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages) * (size_t)ms.ms_psize;
    }
    store_read_end(st, txn);
    printf("build %.3f %zu\n", secs, bytes);
    store_close(st);
    free(ids);
    free(base);
    return 0;
}

/* One round: a fresh process opens the store, runs the queries once
 * untimed at the first ef (as the hnswlib driver does; this process has
 * not mapped the index's pages yet, so that rate is printed as the cold
 * one), then one timed pass per ef. */
static int query_round(const char *dir, const float *query, uint32_t nq, uint32_t dim, const uint32_t *gt)
{
    store_t *st = NULL;
    hnsw_cache_t *c;
    double recall, qps;
    if (store_open(dir, NULL, &st) != 0 || hnsw_cache_new(st, &c) != 0) return 1;
    if (run_queries(st, c, query, nq, dim, gt, ann_efs[0], &recall, &qps) != 0) return 1;
    printf("cold %d %.0f\n", ann_efs[0], qps);
    for (size_t e = 0; e < sizeof ann_efs / sizeof ann_efs[0]; e++) {
        if (run_queries(st, c, query, nq, dim, gt, ann_efs[e], &recall, &qps) != 0) return 1;
        printf("%d %.4f %.0f\n", ann_efs[e], recall, qps);
    }
    hnsw_cache_free(c);
    store_close(st);
    return 0;
}

/* Restart: open, first query (wall time: this one is latency). */
static int restart(const char *dir, const float *query, uint32_t dim, const uint32_t *gt)
{
    store_t *st = NULL;
    hnsw_cache_t *c;
    double recall, qps;
    double t0 = ann_wall();
    if (store_open(dir, NULL, &st) != 0) return 1;
    double t1 = ann_wall();
    if (hnsw_cache_new(st, &c) != 0) return 1;
    if (run_queries(st, c, query, 1, dim, gt, 40, &recall, &qps) != 0) return 1;
    double t2 = ann_wall();
    printf("restart %.2f %.2f %.2f\n", (t2 - t0) * 1e3, (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    hnsw_cache_free(c);
    store_close(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[2], "build") && strcmp(argv[2], "query") && strcmp(argv[2], "restart"))) {
        fprintf(stderr, "usage: ann_engram DIR build|query|restart\n");
        return 2;
    }
    char dir[512];
    snprintf(dir, sizeof dir, "%s/engram-data", argv[1]);
    if (strcmp(argv[2], "build") == 0) return build(argv[1], dir);
    uint32_t nq, dim, gn, gk;
    float *query = ann_read(argv[1], "query.bin", &nq, &dim);
    uint32_t *gt = ann_read(argv[1], "gt.bin", &gn, &gk);
    if (!query || !gt || gn != nq || gk != ANN_K) return 1;
    int rc = strcmp(argv[2], "query") == 0 ? query_round(dir, query, nq, dim, gt)
                                           : restart(dir, query, dim, gt);
    free(query);
    free(gt);
    return rc;
}
