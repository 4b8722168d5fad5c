/*
 * test_hnsw.c - the HNSW index against exact search: recall on seeded random
 * data (cosine and L2), persistence across reopen, deletes with repair,
 * filters, corruption, parameter and dimension mismatches, isolation of
 * collections, the cache, and the distance kernels against the scalar ones.
 * Every random test prints its seed (TEST_SEED) when it fails.
 */
#include <math.h>

#include "index/distance.h"
#include "index/hnsw.h"
#include "store/store.h"
#include "util/common.h"
#include "test.h"

#define DIM 32

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
static float gauss(void)
{
    double u = ((rnd() >> 11) + 0.5) / 9007199254740992.0, w = ((rnd() >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * w));
}
static float *random_vectors(size_t n, size_t dim)
{
    float *v = malloc(n * dim * sizeof *v);
    for (size_t i = 0; i < n * dim; i++) v[i] = gauss();
    return v;
}

static store_t *open_store(char **dir)
{
    store_t *st = NULL;
    if (!*dir) *dir = strdup(test_tmpdir());
    if (store_open(*dir, NULL, &st) != 0) {
        fprintf(stderr, "  store_open: %s\n", store_last_error());
        return NULL;
    }
    return st;
}

typedef struct op {
    int kind;   /* 0 create, 1 insert batch, 2 insert one, 3 delete, 4 drop, 5 raw put,
                 * 6 delete batch */
    size_t deleted; /* out of 6 */
    uint64_t ws, coll;
    hnsw_params_t p;
    const uint64_t *ids;
    const float *vecs;
    size_t n;
    uint32_t dim;
    MDB_dbi dbi;
    const void *key, *val;
    size_t klen, vlen;
    store_t *st;
} op_t;

static int op_cb(MDB_txn *txn, void *arg)
{
    op_t *o = arg;
    switch (o->kind) {
    case 0: return hnsw_create(txn, o->st, o->ws, o->coll, &o->p);
    case 1: return hnsw_insert_batch(txn, o->st, o->ws, o->coll, o->ids, o->vecs, o->n, o->dim);
    case 2:
        for (size_t i = 0; i < o->n; i++) {
            int rc = hnsw_insert(txn, o->st, o->ws, o->coll, o->ids[i], o->vecs + i * o->dim);
            if (rc) return rc;
        }
        return 0;
    case 3:
        for (size_t i = 0; i < o->n; i++) {
            int rc = hnsw_delete(txn, o->st, o->ws, o->coll, o->ids[i]);
            if (rc) return rc;
        }
        return 0;
    case 4: return hnsw_drop(txn, o->st, o->ws, o->coll);
    case 6: return hnsw_delete_batch(txn, o->st, o->ws, o->coll, o->ids, o->n, &o->deleted);
    default: {
        MDB_val k = {o->klen, (void *)o->key}, v = {o->vlen, (void *)o->val};
        int rc = mdb_put(txn, o->dbi, &k, &v, 0);
        return rc ? store_status(rc) : 0;
    }
    }
}

/* ef_construction 64 rather than the default 200 keeps the ASan run short;
 * the recall checks use the default search ef. */
static int create_efc(store_t *st, uint64_t ws, uint64_t coll, uint32_t dim, int metric, uint32_t efc)
{
    op_t o = {.kind = 0, .ws = ws, .coll = coll, .st = st};
    o.p.dim = dim;
    o.p.metric = metric;
    o.p.ef_construction = efc;
    return store_write(st, op_cb, &o);
}

static int create(store_t *st, uint64_t ws, uint64_t coll, uint32_t dim, int metric)
{
    op_t o = {.kind = 0, .ws = ws, .coll = coll, .st = st};
    o.p.dim = dim;
    o.p.metric = metric;
    return store_write(st, op_cb, &o);
}

/* Inserts rows [0, n) with ids id0 + i: batches of 700, the first 50 one by one. */
static int insert_all(store_t *st, uint64_t ws, uint64_t coll, const float *v, size_t n, uint32_t dim,
                      uint64_t id0)
{
    uint64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = id0 + i;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t m = i < 50 ? EG_MIN((size_t)50, n) - i : EG_MIN((size_t)700, n - i);
        op_t o = {.kind = i < 50 ? 2 : 1, .ws = ws, .coll = coll, .st = st, .ids = ids + i,
                  .vecs = v + i * dim, .n = m, .dim = dim};
        rc = store_write(st, op_cb, &o);
        i += m;
    }
    free(ids);
    return rc;
}

static int verify_clean(store_t *st, uint64_t ws, uint64_t coll)
{
    MDB_txn *txn;
    char msg[256];
    if (store_read_begin(st, &txn) != 0) return -1;
    int rc = hnsw_verify(txn, st, ws, coll, msg, sizeof msg);
    store_read_end(st, txn);
    if (rc) fprintf(stderr, "  verify: %s\n", msg);
    return rc;
}

static int keep_all(uint64_t id, void *ud) { (void)id; (void)ud; return 1; }
static int keep_tenth(uint64_t id, void *ud) { (void)ud; return id % 10 == 3; }
static int keep_few(uint64_t id, void *ud) { (void)ud; return id == 17 || id == 1234 || id == 2999; }

/* Mean recall@10 of hnsw_search (ef 0) against the exact top-10 over nq
 * random queries; checks no hit is rejected by deleted[] / the filter. */
static double measure_recall(store_t *st, uint64_t ws, uint64_t coll, size_t nq, uint32_t dim,
                             hnsw_filter_fn filter, const unsigned char *deleted, int *bad)
{
    MDB_txn *txn;
    hnsw_hit_t a[10], e[10];
    size_t na, ne, found = 0, total = 0;
    *bad = 0;
    float *q = random_vectors(nq, dim);
    if (store_read_begin(st, &txn) != 0) { free(q); return 0; }
    for (size_t i = 0; i < nq; i++) {
        if (hnsw_search(txn, st, ws, coll, q + i * dim, 10, 0, filter, NULL, a, &na) != 0 ||
            hnsw_search_exact(txn, st, ws, coll, q + i * dim, 10, filter, NULL, e, &ne) != 0) {
            *bad = 1;
            break;
        }
        if (na != ne) *bad = 1;
        for (size_t j = 0; j < na; j++) {
            if (deleted && deleted[a[j].id]) *bad = 1;
            if (filter && !filter(a[j].id, NULL)) *bad = 1;
            if (j && a[j].distance < a[j - 1].distance) *bad = 1;
            for (size_t l = 0; l < ne; l++)
                if (a[j].id == e[l].id) { found++; break; }
        }
        total += ne;
    }
    store_read_end(st, txn);
    free(q);
    return total ? (double)found / total : 0;
}

static void recall_case(int metric)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    const size_t n = 5000;
    float *v = random_vectors(n, DIM);
    REQUIRE(create_efc(st, 1, 1, DIM, metric, 64) == 0);
    REQUIRE(insert_all(st, 1, 1, v, n, DIM, 1) == 0);
    int bad;
    double r = measure_recall(st, 1, 1, 100, DIM, NULL, NULL, &bad);
    if (r < 0.95 || bad || getenv("HNSW_TEST_VERBOSE")) fprintf(stderr, "  seed %llu: recall %.4f bad %d\n", seed, r, bad);
    CHECK(r >= 0.95);
    CHECK(!bad);
    /* An indexed vector finds itself first; scores follow the metric. */
    MDB_txn *txn;
    hnsw_hit_t h[3];
    size_t nh;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search(txn, st, 1, 1, v + 123 * DIM, 3, 0, NULL, NULL, h, &nh), 0);
    uint64_t cnt;
    CHECK_EQ_INT(hnsw_count(txn, st, 1, 1, &cnt), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(cnt, n);
    CHECK_EQ_INT(nh, 3);
    CHECK_EQ_INT(h[0].id, 124);
    CHECK_NEAR(h[0].distance, 0, 1e-4);
    CHECK_NEAR(h[0].score, metric == HNSW_COSINE ? 1.0 : 0.0, 1e-4);
    CHECK(h[1].score <= h[0].score);
    CHECK_EQ_INT(verify_clean(st, 1, 1), 0);
    free(v);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

TEST(recall_cosine) { recall_case(HNSW_COSINE); }
TEST(recall_l2) { recall_case(HNSW_L2); }

TEST(persistence_and_cache)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    const size_t n = 1000, nq = 20;
    float *v = random_vectors(n, DIM), *q = random_vectors(nq, DIM);
    REQUIRE(create(st, 7, 3, DIM, HNSW_L2) == 0);
    REQUIRE(insert_all(st, 7, 3, v, n, DIM, 100) == 0);
    hnsw_hit_t before[nq][10], after[10], cached[10];
    size_t nb[nq], na, nc;
    MDB_txn *txn;
    REQUIRE(store_read_begin(st, &txn) == 0);
    for (size_t i = 0; i < nq; i++)
        CHECK_EQ_INT(hnsw_search(txn, st, 7, 3, q + i * DIM, 10, 0, NULL, NULL, before[i], &nb[i]), 0);
    store_read_end(st, txn);
    store_close(st);

    st = open_store(&dir);
    REQUIRE(st);
    hnsw_cache_t *c;
    REQUIRE(hnsw_cache_new(st, &c) == 0);
    hnsw_params_t p;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_params_get(txn, st, 7, 3, &p), 0);
    CHECK_EQ_INT(p.dim, DIM);
    CHECK_EQ_INT(p.metric, HNSW_L2);
    CHECK_EQ_INT(p.M, 16);
    CHECK_EQ_INT(p.ef_construction, 200);
    for (size_t i = 0; i < nq; i++) {
        CHECK_EQ_INT(hnsw_search(txn, st, 7, 3, q + i * DIM, 10, 0, NULL, NULL, after, &na), 0);
        CHECK_EQ_INT(hnsw_search_cached(c, txn, 7, 3, q + i * DIM, DIM, 10, 0, NULL, NULL, cached, &nc), 0);
        CHECK_EQ_INT(na, nb[i]);
        CHECK_EQ_INT(nc, nb[i]);
        for (size_t j = 0; j < na && j < nb[i]; j++) {
            CHECK_EQ_INT(after[j].id, before[i][j].id);
            CHECK_EQ_INT(cached[j].id, before[i][j].id);
            CHECK(after[j].distance == before[i][j].distance);
        }
    }
    store_read_end(st, txn);
    /* A write makes the cache see the new node (new generation). */
    float extra[DIM];
    memcpy(extra, q, sizeof extra);
    REQUIRE(insert_all(st, 7, 3, extra, 1, DIM, 99999) == 0);
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search_cached(c, txn, 7, 3, q, DIM, 1, 0, NULL, NULL, cached, &nc), 0);
    CHECK_EQ_INT(nc, 1);
    CHECK_EQ_INT(cached[0].id, 99999);
    /* The dimension is checked where it is given. */
    CHECK_EQ_INT(hnsw_search_cached(c, txn, 7, 3, q, DIM + 1, 1, 0, NULL, NULL, cached, &nc), ENGRAM_EINVAL);
    CHECK_EQ_INT(nc, 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(verify_clean(st, 7, 3), 0);
    hnsw_cache_free(c);
    free(v);
    free(q);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

/* One cache serves collections of other dimensions and metrics in turn: its
 * pooled scratch (visited set, heaps, query buffer) is reused across them,
 * and every cached answer equals the uncached one, nearest first. */
TEST(cache_shared_across_dimensions)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    const uint32_t dims[2] = {8, 200};
    const int metrics[2] = {HNSW_L2, HNSW_COSINE};
    const size_t n = 600;
    float *v[2];
    for (int c = 0; c < 2; c++) {
        v[c] = random_vectors(n, dims[c]);
        REQUIRE(create_efc(st, 5, (uint64_t)c + 1, dims[c], metrics[c], 64) == 0);
        REQUIRE(insert_all(st, 5, (uint64_t)c + 1, v[c], n, dims[c], 1) == 0);
    }
    hnsw_cache_t *cache;
    REQUIRE(hnsw_cache_new(st, &cache) == 0);
    hnsw_hit_t a[150], b[150];
    size_t na, nb;
    const size_t ks[3] = {1, 10, 150}, efs[3] = {0, 300, 10};
    MDB_txn *txn;
    REQUIRE(store_read_begin(st, &txn) == 0);
    for (int round = 0; round < 6; round++) {
        int c = round % 2;
        size_t k = ks[round % 3], ef = efs[round % 3];
        const float *q = v[c] + (size_t)(37 * round % n) * dims[c];
        CHECK_EQ_INT(hnsw_search_cached(cache, txn, 5, (uint64_t)c + 1, q, dims[c], k, ef, NULL, NULL, a, &na), 0);
        CHECK_EQ_INT(hnsw_search(txn, st, 5, (uint64_t)c + 1, q, k, ef, NULL, NULL, b, &nb), 0);
        CHECK_EQ_INT(na, k);
        CHECK_EQ_INT(nb, k);
        CHECK_EQ_INT(a[0].id, (uint64_t)(37 * round % n) + 1);   /* an indexed vector finds itself */
        for (size_t j = 0; j < na && j < nb; j++) {
            CHECK_EQ_INT(a[j].id, b[j].id);
            CHECK(a[j].distance == b[j].distance);
            if (j) CHECK(a[j].distance >= a[j - 1].distance);
        }
    }
    store_read_end(st, txn);
    hnsw_cache_free(cache);
    free(v[0]);
    free(v[1]);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

/* After deletes: recall@10 over the survivors of at least 0.95 with no
 * deleted id (measure_recall), a search near q returns only live ids,
 * live nodes counted, and the index verifies. */
static void check_survivors(store_t *st, uint64_t ws, uint64_t coll, const float *q,
                            const unsigned char *deleted, uint64_t live)
{
    int bad;
    double r = measure_recall(st, ws, coll, 100, DIM, NULL, deleted, &bad);
    if (r < 0.95 || bad || getenv("HNSW_TEST_VERBOSE"))
        fprintf(stderr, "  seed %llu: recall %.4f bad %d\n", test_seed(), r, bad);
    CHECK(r >= 0.95);
    CHECK(!bad);
    MDB_txn *txn;
    hnsw_hit_t h[10];
    size_t nh;
    uint64_t cnt;
    if (store_read_begin(st, &txn) != 0) { CHECK(0); return; }
    CHECK_EQ_INT(hnsw_search(txn, st, ws, coll, q, 10, 0, NULL, NULL, h, &nh), 0);
    CHECK_EQ_INT(nh, 10);
    for (size_t i = 0; i < nh; i++) CHECK(!deleted[h[i].id]);
    CHECK_EQ_INT(hnsw_count(txn, st, ws, coll, &cnt), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(cnt, live);
    CHECK_EQ_INT(verify_clean(st, ws, coll), 0);
}

TEST(delete_twenty_percent)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    const size_t n = 3000;
    float *v = random_vectors(n, DIM);
    REQUIRE(create_efc(st, 2, 2, DIM, HNSW_COSINE, 64) == 0);
    REQUIRE(insert_all(st, 2, 2, v, n, DIM, 0) == 0);
    unsigned char *deleted = calloc(n, 1);
    uint64_t *del = malloc(n * sizeof *del);
    size_t nd = 0;
    while (nd < n / 5) {
        uint64_t id = rnd() % n;
        if (!deleted[id]) { deleted[id] = 1; del[nd++] = id; }
    }
    /* Half one by one (each its own call), half in one callback. */
    for (size_t i = 0; i < nd / 2; i++) {
        op_t o = {.kind = 3, .ws = 2, .coll = 2, .st = st, .ids = del + i, .n = 1};
        REQUIRE(store_write(st, op_cb, &o) == 0);
    }
    op_t o = {.kind = 3, .ws = 2, .coll = 2, .st = st, .ids = del + nd / 2, .n = nd - nd / 2};
    REQUIRE(store_write(st, op_cb, &o) == 0);
    op_t again = {.kind = 3, .ws = 2, .coll = 2, .st = st, .ids = del, .n = 1};
    CHECK_EQ_INT(store_write(st, op_cb, &again), ENGRAM_ENOTFOUND);
    /* A deleted vector's own query does not return it. */
    check_survivors(st, 2, 2, v + del[0] * DIM, deleted, n - nd);
    /* A deleted id can come back as a new node. */
    MDB_txn *txn;
    hnsw_hit_t h[1];
    size_t nh;
    REQUIRE(insert_all(st, 2, 2, v + del[0] * DIM, 1, DIM, del[0]) == 0);
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search(txn, st, 2, 2, v + del[0] * DIM, 1, 0, NULL, NULL, h, &nh), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(nh, 1);
    CHECK_EQ_INT(h[0].id, del[0]);
    CHECK_EQ_INT(verify_clean(st, 2, 2), 0);
    free(del);
    free(deleted);
    free(v);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

/* Half the index in one hnsw_delete_batch - a tight cluster (the 300
 * nearest of one point: nodes whose neighbours are deleted with them) and
 * random others - then all but five: recall over the survivors holds, no
 * deleted id comes back, the entry point moves to a live node, verify is
 * clean, and ids already gone are skipped. */
TEST(delete_batch_cluster_and_most)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    const size_t n = 3000;
    float *v = random_vectors(n, DIM);
    REQUIRE(create_efc(st, 3, 3, DIM, HNSW_COSINE, 64) == 0);
    REQUIRE(insert_all(st, 3, 3, v, n, DIM, 0) == 0);
    unsigned char *deleted = calloc(n, 1);
    uint64_t *del = malloc(n * sizeof *del);
    size_t nd = 0;
    MDB_txn *txn;
    hnsw_hit_t *h = malloc(300 * sizeof *h);
    size_t nh;
    REQUIRE(store_read_begin(st, &txn) == 0);
    REQUIRE(hnsw_search_exact(txn, st, 3, 3, v, 300, NULL, NULL, h, &nh) == 0);
    store_read_end(st, txn);
    REQUIRE(nh == 300);
    for (size_t i = 0; i < nh; i++) { deleted[h[i].id] = 1; del[nd++] = h[i].id; }
    while (nd < n / 2) {
        uint64_t id = rnd() % n;
        if (!deleted[id]) { deleted[id] = 1; del[nd++] = id; }
    }
    op_t o = {.kind = 6, .ws = 3, .coll = 3, .st = st, .ids = del, .n = nd};
    REQUIRE(store_write(st, op_cb, &o) == 0);
    CHECK_EQ_INT(o.deleted, nd);
    check_survivors(st, 3, 3, v, deleted, n - nd);
    uint64_t cnt = n - nd;
    /* Again: nothing left to delete, nothing changes. */
    op_t again = {.kind = 6, .ws = 3, .coll = 3, .st = st, .ids = del, .n = nd};
    REQUIRE(store_write(st, op_cb, &again) == 0);
    CHECK_EQ_INT(again.deleted, 0);
    /* All but five. */
    size_t nd2 = 0;
    for (uint64_t id = 0; id < n; id++)
        if (!deleted[id] && cnt - nd2 > 5) { deleted[id] = 1; del[nd2++] = id; }
    op_t most = {.kind = 6, .ws = 3, .coll = 3, .st = st, .ids = del, .n = nd2};
    REQUIRE(store_write(st, op_cb, &most) == 0);
    CHECK_EQ_INT(most.deleted, nd2);
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search(txn, st, 3, 3, v + 7 * DIM, 10, 0, NULL, NULL, h, &nh), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(nh, 5);
    for (size_t i = 0; i < nh; i++) CHECK(!deleted[h[i].id]);
    CHECK_EQ_INT(verify_clean(st, 3, 3), 0);
    free(h);
    free(del);
    free(deleted);
    free(v);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

TEST(filtered_search_fills_k)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    const size_t n = 3000;
    float *v = random_vectors(n, DIM);
    REQUIRE(create_efc(st, 3, 3, DIM, HNSW_L2, 64) == 0);
    REQUIRE(insert_all(st, 3, 3, v, n, DIM, 0) == 0);
    int bad;
    double r = measure_recall(st, 3, 3, 50, DIM, keep_tenth, NULL, &bad);
    if (r < 0.9 || bad) fprintf(stderr, "  seed %llu: filtered recall %.4f bad %d\n", seed, r, bad);
    CHECK(r >= 0.9);
    CHECK(!bad);
    MDB_txn *txn;
    hnsw_hit_t h[10];
    size_t nh;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search(txn, st, 3, 3, v, 10, 0, keep_tenth, NULL, h, &nh), 0);
    CHECK_EQ_INT(nh, 10);
    for (size_t i = 0; i < nh; i++) CHECK_EQ_INT(h[i].id % 10, 3);
    /* Fewer matches than k: all of them, nothing else. */
    CHECK_EQ_INT(hnsw_search(txn, st, 3, 3, v, 10, 0, keep_few, NULL, h, &nh), 0);
    CHECK_EQ_INT(nh, 3);
    for (size_t i = 0; i < nh; i++) CHECK(keep_few(h[i].id, NULL));
    /* k larger than the index: every node. */
    hnsw_hit_t *all = malloc(4000 * sizeof *all);
    CHECK_EQ_INT(hnsw_search(txn, st, 3, 3, v, 4000, 0, keep_all, NULL, all, &nh), 0);
    CHECK_EQ_INT(nh, n);
    free(all);
    store_read_end(st, txn);
    free(v);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

TEST(params_and_dimension_mismatch)
{
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    CHECK_EQ_INT(create(st, 1, 1, 8, HNSW_L2), 0);
    CHECK_EQ_INT(create(st, 1, 1, 8, HNSW_L2), ENGRAM_EEXIST);
    CHECK_EQ_INT(create(st, 1, 1, 16, HNSW_L2), ENGRAM_EINVAL);
    CHECK_EQ_INT(create(st, 1, 1, 8, HNSW_COSINE), ENGRAM_EINVAL);
    CHECK_EQ_INT(create(st, 1, 2, 0, HNSW_L2), ENGRAM_EINVAL);
    CHECK_EQ_INT(create(st, 1, 2, 8, 7), ENGRAM_EINVAL);
    float x[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint64_t id = 5;
    op_t o = {.kind = 1, .ws = 1, .coll = 1, .st = st, .ids = &id, .vecs = x, .n = 1, .dim = 16};
    CHECK_EQ_INT(store_write(st, op_cb, &o), ENGRAM_EINVAL);
    o.dim = 8;
    CHECK_EQ_INT(store_write(st, op_cb, &o), 0);
    CHECK_EQ_INT(store_write(st, op_cb, &o), ENGRAM_EEXIST);
    x[3] = NAN;
    id = 6;
    CHECK_EQ_INT(store_write(st, op_cb, &o), ENGRAM_EINVAL);
    op_t none = {.kind = 1, .ws = 1, .coll = 9, .st = st, .ids = &id, .vecs = x, .n = 1, .dim = 8};
    CHECK_EQ_INT(store_write(st, op_cb, &none), ENGRAM_ENOTFOUND);
    MDB_txn *txn;
    hnsw_hit_t h[2];
    size_t nh = 99;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search(txn, st, 1, 9, x, 2, 0, NULL, NULL, h, &nh), ENGRAM_ENOTFOUND);
    CHECK_EQ_INT(nh, 0);
    x[3] = 4;
    CHECK_EQ_INT(hnsw_search(txn, st, 1, 1, x, 2, 0, NULL, NULL, h, &nh), 0);
    CHECK_EQ_INT(nh, 1);
    store_read_end(st, txn);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

TEST(collections_isolated)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    float *v = random_vectors(600, DIM);
    REQUIRE(create(st, 1, 1, DIM, HNSW_L2) == 0);
    REQUIRE(create(st, 1, 2, DIM, HNSW_L2) == 0);
    REQUIRE(create(st, 2, 1, DIM, HNSW_L2) == 0);
    REQUIRE(insert_all(st, 1, 1, v, 200, DIM, 0) == 0);
    REQUIRE(insert_all(st, 1, 2, v + 200 * DIM, 200, DIM, 1000) == 0);
    REQUIRE(insert_all(st, 2, 1, v + 400 * DIM, 200, DIM, 2000) == 0);
    MDB_txn *txn;
    hnsw_hit_t h[300];
    size_t nh;
    const uint64_t cs[3][2] = {{1, 1}, {1, 2}, {2, 1}};
    REQUIRE(store_read_begin(st, &txn) == 0);
    for (int c = 0; c < 3; c++) {
        CHECK_EQ_INT(hnsw_search(txn, st, cs[c][0], cs[c][1], v, 300, 0, NULL, NULL, h, &nh), 0);
        CHECK_EQ_INT(nh, 200);
        for (size_t i = 0; i < nh; i++) CHECK(h[i].id >= (uint64_t)c * 1000 && h[i].id < (uint64_t)c * 1000 + 200);
    }
    store_read_end(st, txn);
    op_t d = {.kind = 4, .ws = 1, .coll = 2, .st = st};
    CHECK_EQ_INT(store_write(st, op_cb, &d), 0);
    CHECK_EQ_INT(store_write(st, op_cb, &d), ENGRAM_ENOTFOUND);
    uint64_t cnt = 0;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_count(txn, st, 1, 2, &cnt), ENGRAM_ENOTFOUND);
    CHECK_EQ_INT(hnsw_count(txn, st, 1, 1, &cnt), 0);
    CHECK_EQ_INT(cnt, 200);
    CHECK_EQ_INT(hnsw_count(txn, st, 2, 1, &cnt), 0);
    CHECK_EQ_INT(cnt, 200);
    store_read_end(st, txn);
    CHECK_EQ_INT(verify_clean(st, 1, 1), 0);
    CHECK_EQ_INT(verify_clean(st, 2, 1), 0);
    /* Re-created after the drop: empty, and usable. */
    REQUIRE(create(st, 1, 2, DIM, HNSW_L2) == 0);
    REQUIRE(insert_all(st, 1, 2, v, 10, DIM, 5) == 0);
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(hnsw_search(txn, st, 1, 2, v, 300, 0, NULL, NULL, h, &nh), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(nh, 10);
    CHECK_EQ_INT(verify_clean(st, 1, 2), 0);
    free(v);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

/* Raw access to the stored blocks for the corruption test. */
static void node_key(unsigned char *k, uint64_t ws, uint64_t coll, char kind, int level, uint32_t b,
                     size_t *klen)
{
    be64_put(k, ws);
    be64_put(k + 8, coll);
    k[16] = (unsigned char)kind;
    if (kind == 'V') { be32_put(k + 17, b); *klen = 21; }
    else { k[17] = (unsigned char)level; be32_put(k + 18, b); *klen = 22; }
}

static int corrupt_and_search(store_t *st, const void *key, size_t klen, const void *val, size_t vlen,
                              MDB_dbi dbi, const float *q, hnsw_filter_fn filter)
{
    op_t o = {.kind = 5, .st = st, .dbi = dbi, .key = key, .klen = klen, .val = val, .vlen = vlen};
    if (store_write(st, op_cb, &o) != 0) return -1;
    MDB_txn *txn;
    hnsw_hit_t h[10];
    size_t nh;
    if (store_read_begin(st, &txn) != 0) return -1;
    int rc = hnsw_search(txn, st, 4, 4, q, 10, 0, filter, NULL, h, &nh);
    store_read_end(st, txn);
    return rc;
}

TEST(corrupt_blocks)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    char *dir = NULL;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    float *v = random_vectors(300, DIM);
    REQUIRE(create(st, 4, 4, DIM, HNSW_L2) == 0);
    REQUIRE(insert_all(st, 4, 4, v, 300, DIM, 0) == 0);
    MDB_dbi nodes = store_dbi(st, DB_HNSW_NODES), meta = store_dbi(st, DB_HNSW_META);
    unsigned char key[32];
    size_t klen;
    MDB_txn *txn;
    MDB_val k, val;
    /* Save the good level-0 block to restore between cases. */
    node_key(key, 4, 4, 'L', 0, 0, &klen);
    REQUIRE(store_read_begin(st, &txn) == 0);
    k.mv_size = klen;
    k.mv_data = key;
    REQUIRE(mdb_get(txn, nodes, &k, &val) == 0);
    size_t blen = val.mv_size;
    unsigned char *good = malloc(blen), *bad = malloc(blen);
    memcpy(good, val.mv_data, blen);
    store_read_end(st, txn);

    /* A link count beyond 2M, a link to a slot that does not exist, a
     * truncated block, a node without its "used" flag (seen by a filtered
     * search): ECORRUPT from search and verify, no crash. */
    for (int c = 0; c < 4; c++) {
        memcpy(bad, good, blen);
        size_t len = blen;
        uint32_t x;
        for (size_t r = 0; r < 128 && r * (16 + 8 * 16) < blen; r++) {
            unsigned char *rec = bad + r * (16 + 8 * 16);
            if (c == 0) { x = 1000; memcpy(rec + 12, &x, 4); }
            if (c == 1) { x = 4000000; memcpy(rec + 16, &x, 4); x = 1; memcpy(rec + 12, &x, 4); }
            if (c == 3) { rec[9] = 0; }
        }
        if (c == 2) len = blen - 100;
        CHECK_EQ_INT(corrupt_and_search(st, key, klen, bad, len, nodes, v, c == 3 ? keep_all : NULL), ENGRAM_ECORRUPT);
        CHECK_EQ_INT(verify_clean(st, 4, 4), ENGRAM_ECORRUPT);
        CHECK_EQ_INT(corrupt_and_search(st, key, klen, good, blen, nodes, v, NULL), 0);
    }
    CHECK_EQ_INT(verify_clean(st, 4, 4), 0);
    /* A meta record that is not one, and one of a future version. */
    unsigned char mk[16], mbad[64];
    be64_put(mk, 4);
    be64_put(mk + 8, 4);
    memset(mbad, 0x5a, sizeof mbad);
    CHECK_EQ_INT(corrupt_and_search(st, mk, 16, mbad, 64, meta, v, NULL), ENGRAM_ECORRUPT);
    CHECK_EQ_INT(corrupt_and_search(st, mk, 16, mbad, 10, meta, v, NULL), ENGRAM_ECORRUPT);
    memcpy(mbad, "HNSW\0\0\0\x09", 8);
    CHECK_EQ_INT(corrupt_and_search(st, mk, 16, mbad, 64, meta, v, NULL), ENGRAM_EVERSION);
    free(good);
    free(bad);
    free(v);
    store_close(st);
    test_rmdir(dir);
    free(dir);
}

TEST(kernels_match_scalar)
{
    unsigned long long seed = test_seed();
    rng_state = seed;
    const distance_kernels_t *s = distance_kernels_named("scalar");
    REQUIRE(s);
    CHECK(distance_kernels() != NULL);
    CHECK(distance_kernels_named("nonsense") == NULL);
    const char *names[] = {"avx2", "avx512"};
    float *a = random_vectors(1, 300), *b = random_vectors(1, 300);
    for (size_t i = 0; i < 2; i++) {
        const distance_kernels_t *k = distance_kernels_named(names[i]);
        if (!k) { fprintf(stderr, "  (%s not supported here)\n", names[i]); continue; }
        for (size_t n = 0; n <= 300; n += (n < 40 ? 1 : 37)) {
            double l = s->l2sq(a, b, n), d = s->dot(a, b, n);
            CHECK_NEAR(k->l2sq(a, b, n), l, 1e-4 * (1 + fabs(l)));
            CHECK_NEAR(k->dot(a, b, n), d, 1e-4 * (1 + fabs(d)));
            /* Unaligned inputs. */
            if (n < 300) CHECK_NEAR(k->l2sq(a + 1, b + 1, n - (n > 0)), s->l2sq(a + 1, b + 1, n - (n > 0)), 1e-3 * (1 + fabs(l)));
        }
    }
    free(a);
    free(b);
}
