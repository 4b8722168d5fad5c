/*
 * test_faults.c - fault injection over the store and index write paths.
 *
 * Allocation failure: each write path (collection create, document upload,
 * document complete with chunks and postings, document delete, bm25_add /
 * bm25_remove inside a write callback) is run with the n-th allocation
 * failing, for n = 1, 2, ... until the call succeeds without reaching the
 * failure. Every failing run must answer ENGRAM_ENOMEM and leave nothing
 * visible (the object absent / unchanged); LeakSanitizer fails the case on
 * any leak; at the end the store passes bm25_verify and `engram verify`
 * (tools_verify_main on the closed directory).
 *
 * Batches: a document refused in its own nested transaction, or one that
 * makes the batch's shared indexing pass fail, fails alone; the others
 * commit with their postings and vectors.
 *
 * Map full: a store capped at a small max_map_bytes takes uploads until
 * ENGRAM_EFULL; everything acknowledged before is still readable and
 * searchable, later writes keep failing cleanly, a delete frees nothing it
 * should not, and the directory reopens with a larger cap and verifies.
 *
 * Durability is not under test here: the environment runs MDB_NOSYNC so the
 * hundreds of commits stay fast.
 */
#include "test.h"

#include <stdint.h>

#include "catalog/catalog.h"
#include "index/bm25.h"
#include "index/hnsw.h"
#include "rag/retrieve.h"
#include "store/record.h"
#include "store/store.h"
#include "tools/tools.h"
#include "util/common.h"
#include "util/json.h"

#define WS 3

typedef struct fx {
    char *dir;
    store_t *st;
    tokenizer_t *tok;
    char coll[40];
} fx_t;

static int fx_open(fx_t *f, const store_options_t *opt)
{
    if (store_open(f->dir, opt, &f->st)) return -1;
    mdb_env_set_flags(store_env(f->st), MDB_NOSYNC, 1);
    return 0;
}

static int fx_init(fx_t *f, const store_options_t *opt)
{
    memset(f, 0, sizeof *f);
    f->dir = test_tmpdir();
    if (!f->dir || fx_open(f, opt) || tokenizer_new(&f->tok)) return -1;
    json_t *c = NULL;
    coll_config_t cfg = COLL_CONFIG_DEFAULT;
    if (catalog_coll_create(f->st, WS, "user", "main", NULL, NULL, &cfg, &c)) return -1;
    snprintf(f->coll, sizeof f->coll, "%s", json_get_str(c, "id"));
    json_free(c);
    return 0;
}

/* Closes the store and runs `engram verify` on the directory: 0 when clean. */
static int fx_close_verify(fx_t *f)
{
    store_close(f->st);
    f->st = NULL;
    char *argv[] = {"verify", "--data", f->dir, NULL};
    int rc = tools_verify_main(3, argv);
    tokenizer_free(f->tok);
    test_rmdir(f->dir);
    return rc;
}

static size_t doc_total(fx_t *f)
{
    json_t *page = NULL;
    size_t total = 999999;
    if (catalog_doc_list(f->st, WS, NULL, NULL, 1, 0, &page, &total)) return 999999;
    json_free(page);
    return total;
}

static int upload_meta(fx_t *f, const char *text, const json_t *meta, json_t **rec, int *created,
                       uint64_t *job)
{
    doc_upload_t up = {.coll_uuid = f->coll, .user_uuid = "user", .title = "t",
                       .content_type = "text/plain", .metadata = meta, .bytes = text,
                       .len = strlen(text)};
    return catalog_doc_create(f->st, WS, &up, rec, created, job);
}

static int upload(fx_t *f, const char *text, json_t **rec, int *created, uint64_t *job)
{
    return upload_meta(f, text, NULL, rec, created, job);
}

static ingest_job_t job_of(const json_t *rec, uint64_t job)
{
    ingest_job_t j = {job, WS, (uint64_t)json_get_i64(rec, "cid", 0),
                      (uint64_t)json_get_i64(rec, "did", 0)};
    return j;
}

static size_t search_count(fx_t *f, const char *q)
{
    retrieve_req_t r = {.query = q, .mode = RMODE_KEYWORD, .top_k = 50, .bm25 = BM25_PARAMS_DEFAULT};
    retrieve_env_t env = {.st = f->st};
    retrieve_hit_t *hits = NULL;
    size_t n = 0;
    char err[64];
    if (retrieve_search(&env, f->tok, WS, &r, &hits, &n, err, sizeof err)) n = 999999;
    eg_free(hits);
    return n;
}

/* ---- allocation failure --------------------------------------------------- */

TEST(alloc_fail_collection_create)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    long n;
    int rc = -1, late = 0;
    for (n = 1; n < 5000; n++) {
        json_t *c = NULL;
        coll_config_t cfg = COLL_CONFIG_DEFAULT;
        eg_alloc_fail_after(n);
        rc = catalog_coll_create(f.st, WS, "user", "second", "d", NULL, &cfg, &c);
        eg_alloc_fail_after(-1);
        json_free(c);
        if (rc == 0) break;
        CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
        json_t *page = NULL;
        size_t total = 0;
        CHECK_EQ_INT(catalog_coll_list(f.st, WS, 10, 0, &page, &total), 0);
        json_free(page);
        /* Either nothing happened, or (failure while building the answer
         * after the commit) the whole collection exists: a retry then gets
         * 409. Never anything in between - verify below. */
        CHECK(total == 1 || total == 2);
        if (total == 2) {  /* remove it so the next round starts the same */
            late++;
            page = NULL;
            CHECK_EQ_INT(catalog_coll_list(f.st, WS, 10, 1, &page, &total), 0);
            const char *id = json_get_str(json_at(page, 0), "id");
            CHECK(id != NULL);
            if (id) CHECK_EQ_INT(catalog_coll_delete(f.st, f.tok, WS, id), 0);
            json_free(page);
        }
        if (test_failures) break;
    }
    CHECK_EQ_INT(rc, 0);
    printf("collection create: %ld allocation points, %d failed after the commit\n", n - 1, late);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

TEST(alloc_fail_document_upload)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    json_t *meta = NULL;
    { const char *m = "{\"lang\":\"en\",\"tags\":[1,2]}"; REQUIRE(json_parse(m, strlen(m), &meta, NULL) == 0); }
    long n;
    int rc = -1, late = 0;
    for (n = 1; n < 5000; n++) {
        json_t *rec = NULL;
        int created = 0;
        uint64_t job = 0;
        eg_alloc_fail_after(n);
        rc = upload_meta(&f, "A document about copper harbors.", meta, &rec, &created, &job);
        eg_alloc_fail_after(-1);
        json_free(rec);
        if (rc == 0) { CHECK_EQ_INT(created, 1); break; }
        CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
        /* Nothing stored, or (the answer failed after the commit) the
         * document AND its job: a client's retry of the same bytes then
         * gets the existing document (200). */
        size_t nd = doc_total(&f);
        ingest_job_t *jobs = NULL;
        size_t nj = 9;
        CHECK_EQ_INT(catalog_jobs_pending(f.st, &jobs, &nj), 0);
        CHECK(nd <= 1 && nj == nd);
        if (nd == 1 && nj == 1) {  /* reset for the next round */
            late++;
            json_t *page = NULL;
            size_t total;
            CHECK_EQ_INT(catalog_doc_list(f.st, WS, NULL, NULL, 1, 0, &page, &total), 0);
            const char *id = json_get_str(json_at(page, 0), "id");
            CHECK(id != NULL);
            if (id) CHECK_EQ_INT(catalog_doc_delete(f.st, f.tok, WS, id), 0);
            json_free(page);
            ingest_job_t j = jobs[0];
            CHECK_EQ_INT(catalog_doc_fail(f.st, &j, "reset"), 0); /* drops the orphan job */
        }
        eg_free(jobs);
        if (test_failures) break;
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(doc_total(&f), 1);
    printf("document upload: %ld allocation points, %d failed after the commit\n", n - 1, late);
    json_free(meta);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

static const char *const chunk_texts[] = {
    "Copper harbors shelter the quick fishing boats.",
    "A lazy dog sleeps by the river bank at noon.",
    "Signals from the meadow reach the copper mine.",
};

TEST(alloc_fail_document_complete)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    json_t *rec = NULL;
    int created = 0;
    uint64_t jid = 0;
    REQUIRE(upload(&f, "three chunks", &rec, &created, &jid) == 0);
    ingest_job_t job = job_of(rec, jid);
    char doc_uuid[40];
    snprintf(doc_uuid, sizeof doc_uuid, "%s", json_get_str(rec, "id"));
    json_free(rec);
    chunk_in_t chunks[3];
    for (int i = 0; i < 3; i++)
        chunks[i] = (chunk_in_t){.text = chunk_texts[i], .len = strlen(chunk_texts[i]),
                                 .start = (uint32_t)i * 50, .end = (uint32_t)i * 50 + 40,
                                 .token_count = 8, .heading = i ? "Part" : NULL};
    long n;
    int rc = -1;
    for (n = 1; n < 20000; n++) {
        eg_alloc_fail_after(n);
        rc = catalog_doc_complete(f.st, f.tok, &job, chunks, 3, 0, 24);
        eg_alloc_fail_after(-1);
        if (rc == 0) break;
        CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
        json_t *d = NULL;
        CHECK_EQ_INT(catalog_doc_get(f.st, WS, doc_uuid, &d), 0);
        CHECK_STR(json_get_str(d, "status"), "pending");
        json_free(d);
        CHECK_EQ_INT(search_count(&f, "copper"), 0);
        if (test_failures) break;
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(search_count(&f, "copper"), 2);
    printf("document complete: %ld allocation points\n", n - 1);
    /* and the delete of it, through every allocation */
    for (n = 1; n < 20000; n++) {
        eg_alloc_fail_after(n);
        rc = catalog_doc_delete(f.st, f.tok, WS, doc_uuid);
        eg_alloc_fail_after(-1);
        if (rc == 0) break;
        CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
        CHECK_EQ_INT(doc_total(&f), 1);
        CHECK_EQ_INT(search_count(&f, "copper"), 2);
        if (test_failures) break;
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(doc_total(&f), 0);
    CHECK_EQ_INT(search_count(&f, "copper"), 0);
    printf("document delete: %ld allocation points\n", n - 1);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

struct bm25_op {
    fx_t *f;
    uint64_t chunk;
    const char *text;
    int remove;
    long fail_at;
};

static int bm25_cb(MDB_txn *txn, void *arg)
{
    struct bm25_op *o = arg;
    /* armed here, on the writer thread, so only the index code is hit */
    eg_alloc_fail_after(o->fail_at);
    int rc = o->remove
        ? bm25_remove(txn, o->f->st, o->f->tok, WS, 1000, o->chunk, o->text, strlen(o->text))
        : bm25_add(txn, o->f->st, o->f->tok, WS, 1000, o->chunk, o->text, strlen(o->text));
    eg_alloc_fail_after(-1);
    return rc;
}

static int bm25_check(fx_t *f, uint64_t want_chunks)
{
    MDB_txn *txn;
    if (store_read_begin(f->st, &txn)) return -1;
    char msg[200] = "";
    uint64_t n = 0, total = 0;
    int rc = bm25_verify(txn, f->st, WS, 1000, msg, sizeof msg);
    if (!rc) rc = bm25_stats(txn, f->st, WS, 1000, &n, &total);
    store_read_end(f->st, txn);
    if (rc == ENGRAM_ENOTFOUND && want_chunks == 0) return 0;
    if (rc) fprintf(stderr, "  bm25: %s %s\n", engram_strerror(rc), msg);
    return rc ? rc : (n == want_chunks ? 0 : -2);
}

TEST(alloc_fail_bm25_add_remove)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    char text[2000];
    size_t len = 0;
    for (int i = 0; i < 150; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "w%d ", i % 37);
    long points[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        struct bm25_op o = {&f, 5, text, pass, 0};
        int rc = -1;
        for (o.fail_at = 1; o.fail_at < 20000; o.fail_at++) {
            rc = store_write(f.st, bm25_cb, &o);
            if (rc == 0) break;
            CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
            CHECK_EQ_INT(bm25_check(&f, pass ? 1 : 0), 0);
            if (test_failures) break;
        }
        CHECK_EQ_INT(rc, 0);
        CHECK_EQ_INT(bm25_check(&f, pass ? 0 : 1), 0);
        points[pass] = o.fail_at - 1;
    }
    printf("bm25_add: %ld, bm25_remove: %ld allocation points\n", points[0], points[1]);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

TEST(alloc_fail_search_is_clean)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    json_t *rec = NULL;
    int created;
    uint64_t jid;
    json_t *meta = NULL;
    REQUIRE(json_parse("{\"lang\":\"en\"}", 13, &meta, NULL) == 0);
    REQUIRE(upload_meta(&f, "x", meta, &rec, &created, &jid) == 0);
    json_free(meta);
    ingest_job_t job = job_of(rec, jid);
    json_free(rec);
    chunk_in_t c = {.text = chunk_texts[0], .len = strlen(chunk_texts[0]), .token_count = 7};
    REQUIRE(catalog_doc_complete(f.st, f.tok, &job, &c, 1, 0, 7) == 0);
    json_t *filter = NULL;
    REQUIRE(json_parse("{\"lang\":\"en\"}", 13, &filter, NULL) == 0);
    retrieve_req_t r = {.query = "copper harbors", .mode = RMODE_KEYWORD, .top_k = 5,
                        .metadata_filter = filter, .bm25 = BM25_PARAMS_DEFAULT};
    retrieve_env_t env = {.st = f.st};
    long n;
    int rc = -1;
    for (n = 1; n < 5000; n++) {
        retrieve_hit_t *hits = NULL;
        size_t nh = 0, nr = 0;
        char err[64];
        buf_t b = BUF_INIT;
        jw_t w;
        jw_init(&w, &b);
        eg_alloc_fail_after(n);
        rc = retrieve_search(&env, f.tok, WS, &r, &hits, &nh, err, sizeof err);
        if (!rc) rc = retrieve_render(&env, WS, hits, nh, 1, &w, &nr);
        if (!rc && b.err) rc = b.err;
        eg_alloc_fail_after(-1);
        eg_free(hits);
        buf_free(&b);
        if (rc == 0) { CHECK_EQ_INT(nr, 1); break; }
        CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
        if (test_failures) break;
    }
    CHECK_EQ_INT(rc, 0);
    printf("retrieval: %ld allocation points\n", n - 1);
    json_free(filter);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* ---- map full ----------------------------------------------------------- */

TEST(map_full_keeps_acknowledged_data)
{
    unsigned long long seed = test_seed();
    fx_t f;
    store_options_t opt = {.initial_map_bytes = 1u << 20, .max_map_bytes = 8u << 20};
    REQUIRE(fx_init(&f, &opt) == 0);
    char text[8192];
    unsigned long long x = seed;
    int acked = 0, rc = 0;
    char first_uuid[40] = "";
    for (int d = 0; d < 5000; d++) {
        size_t len = (size_t)snprintf(text, sizeof text, "unique%d marker ", d);
        while (len < sizeof text - 16) {   /* random words: compress badly */
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            len += (size_t)snprintf(text + len, sizeof text - len, "%llx ", x >> 20);
        }
        json_t *rec = NULL;
        int created;
        uint64_t jid;
        rc = upload(&f, text, &rec, &created, &jid);
        if (rc) break;
        ingest_job_t job = job_of(rec, jid);
        if (!first_uuid[0]) snprintf(first_uuid, sizeof first_uuid, "%s", json_get_str(rec, "id"));
        json_free(rec);
        chunk_in_t c = {.text = text, .len = len, .token_count = 100};
        rc = catalog_doc_complete(f.st, f.tok, &job, &c, 1, 0, 100);
        if (rc) break;
        acked++;
    }
    printf("seed %llu: %d documents acknowledged before the map (8 MiB) was full\n", seed, acked);
    CHECK_EQ_INT(rc, ENGRAM_EFULL);
    CHECK(acked > 10);
    /* reads still served, everything acknowledged is there */
    CHECK(doc_total(&f) >= (size_t)acked);
    CHECK_EQ_INT(search_count(&f, "marker"), acked < 50 ? acked : 50);
    CHECK_EQ_INT(search_count(&f, "unique0"), 1);
    json_t *d = NULL;
    CHECK_EQ_INT(catalog_doc_get(f.st, WS, first_uuid, &d), 0);
    CHECK_STR(json_get_str(d, "status"), "completed");
    json_free(d);
    /* further writes fail cleanly, again and again */
    for (int i = 0; i < 3; i++) {
        json_t *rec = NULL;
        int created;
        uint64_t jid;
        snprintf(text, sizeof text, "another %d %s", i, "x");
        int r = upload(&f, text, &rec, &created, &jid);
        json_free(rec);
        CHECK(r == ENGRAM_EFULL || r == 0);
    }
    /* reopen with room: the same data, writable again */
    store_close(f.st);
    store_options_t big = {.max_map_bytes = 64u << 20};
    REQUIRE(fx_open(&f, &big) == 0);
    CHECK_EQ_INT(search_count(&f, "unique0"), 1);
    json_t *rec = NULL;
    int created;
    uint64_t jid;
    CHECK_EQ_INT(upload(&f, "after the reopen", &rec, &created, &jid), 0);
    json_free(rec);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* A large document commits in parts: between parts it is processing with
 * its committed chunks indexed (verify accepts that), a part that does not
 * continue the committed ones is refused, and a rollback takes the parts
 * back so the document can end failed without chunks. */
TEST(parts_commit_in_order_and_roll_back)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    json_t *rec = NULL;
    int created = 0;
    uint64_t jid = 0;
    REQUIRE(upload(&f, "a document in parts", &rec, &created, &jid) == 0);
    ingest_job_t job = job_of(rec, jid);
    char doc_uuid[40];
    snprintf(doc_uuid, sizeof doc_uuid, "%s", json_get_str(rec, "id"));
    json_free(rec);
    chunk_in_t chunks[3];
    for (int i = 0; i < 3; i++)
        chunks[i] = (chunk_in_t){.text = chunk_texts[i], .len = strlen(chunk_texts[i]),
                                 .start = (uint32_t)i * 50, .end = (uint32_t)i * 50 + 40,
                                 .token_count = 8};
    doc_done_t d = {.job = job, .chunks = chunks, .n = 2, .first = 0, .more = 1};
    CHECK_EQ_INT(catalog_doc_complete_batch(f.st, f.tok, &d, 1), 0);
    CHECK_EQ_INT(d.status, 0);
    json_t *doc = NULL;
    CHECK_EQ_INT(catalog_doc_get(f.st, WS, doc_uuid, &doc), 0);
    CHECK_STR(json_get_str(doc, "status"), "processing");
    CHECK_EQ_INT(json_get_i64(doc, "chunk_count", -1), 2);
    json_free(doc);
    CHECK_EQ_INT(search_count(&f, "copper"), 1);
    /* A part that skips or repeats chunks is refused. */
    doc_done_t bad = {.job = job, .chunks = chunks + 2, .n = 1, .first = 1, .more = 0};
    catalog_doc_complete_batch(f.st, f.tok, &bad, 1);
    CHECK_EQ_INT(bad.status, ENGRAM_EEXIST);
    /* Roll back one chunk at a time, then fail. */
    uint32_t left = 99;
    CHECK_EQ_INT(catalog_doc_rollback(f.st, f.tok, &job, 1, &left), 0);
    CHECK_EQ_INT(left, 1);
    CHECK_EQ_INT(catalog_doc_rollback(f.st, f.tok, &job, 1, &left), 0);
    CHECK_EQ_INT(left, 0);
    CHECK_EQ_INT(search_count(&f, "copper"), 0);
    CHECK_EQ_INT(catalog_doc_fail(f.st, &job, "test"), 0);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* Parts then the last part: completed with every chunk, indexes in order. */
TEST(parts_complete)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    json_t *rec = NULL;
    int created = 0;
    uint64_t jid = 0;
    REQUIRE(upload(&f, "another document in parts", &rec, &created, &jid) == 0);
    ingest_job_t job = job_of(rec, jid);
    char doc_uuid[40];
    snprintf(doc_uuid, sizeof doc_uuid, "%s", json_get_str(rec, "id"));
    json_free(rec);
    chunk_in_t chunks[3];
    for (int i = 0; i < 3; i++)
        chunks[i] = (chunk_in_t){.text = chunk_texts[i], .len = strlen(chunk_texts[i]),
                                 .start = (uint32_t)i * 50, .end = (uint32_t)i * 50 + 40,
                                 .token_count = 8};
    doc_done_t d[2] = {{.job = job, .chunks = chunks, .n = 1, .first = 0, .more = 1},
                       {.job = job, .chunks = chunks + 1, .n = 2, .first = 1, .total_tokens = 24}};
    CHECK_EQ_INT(catalog_doc_complete_batch(f.st, f.tok, d, 2), 0);
    CHECK_EQ_INT(d[0].status, 0);
    CHECK_EQ_INT(d[1].status, 0);
    json_t *doc = NULL;
    CHECK_EQ_INT(catalog_doc_get(f.st, WS, doc_uuid, &doc), 0);
    CHECK_STR(json_get_str(doc, "status"), "completed");
    CHECK_EQ_INT(json_get_i64(doc, "chunk_count", -1), 3);
    json_free(doc);
    CHECK_EQ_INT(search_count(&f, "copper"), 2);
    ingest_job_t *jobs = NULL;
    size_t nj = 0;
    CHECK_EQ_INT(catalog_jobs_pending(f.st, &jobs, &nj), 0);
    CHECK_EQ_INT((int)nj, 0);
    eg_free(jobs);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* ---- a batch whose documents do not all commit ------------------------------ */

typedef struct raw_put {
    store_t *st;
    store_db_t db;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
    int del;
} raw_put_t;

static int raw_put_cb(MDB_txn *txn, void *arg)
{
    raw_put_t *r = arg;
    MDB_val k = {r->klen, (void *)r->key}, v = {r->vlen, (void *)r->val};
    MDB_dbi dbi = store_dbi(r->st, r->db);
    return store_status(r->del ? mdb_del(txn, dbi, &k, NULL) : mdb_put(txn, dbi, &k, &v, 0));
}

typedef struct batch_doc {
    ingest_job_t job;
    char uuid[40];
    chunk_in_t chunk;
    float vec[8];
} batch_doc_t;

static int batch_docs_upload(fx_t *f, batch_doc_t *bd, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *rec = NULL;
        int created = 0;
        uint64_t jid = 0;
        if (upload(f, texts[i], &rec, &created, &jid) || !created) return -1;
        bd[i].job = job_of(rec, jid);
        snprintf(bd[i].uuid, sizeof bd[i].uuid, "%s", json_get_str(rec, "id"));
        json_free(rec);
        for (int k = 0; k < 8; k++) bd[i].vec[k] = (float)((i + 1) * (k + 1) % 7) + 0.5f;
        bd[i].chunk = (chunk_in_t){.text = texts[i], .len = strlen(texts[i]), .end = 20,
                                   .token_count = 3, .vec = bd[i].vec};
    }
    return 0;
}

static uint64_t vector_count(fx_t *f, const batch_doc_t *d)
{
    MDB_txn *txn;
    uint64_t n = 999;
    if (store_read_begin(f->st, &txn)) return n;
    if (hnsw_count(txn, f->st, WS, d->job.coll, &n)) n = 999;
    store_read_end(f->st, txn);
    return n;
}

/* One document of a batch is refused in its own nested transaction (its
 * vectors do not fit the collection's index): the others commit with their
 * postings and vectors; the refused one leaves none. */
TEST(batch_document_refused_alone)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    static const char *const texts[] = {"basalt granite obsidian", "quartz feldspar mica",
                                        "basalt pumice scoria"};
    batch_doc_t bd[3];
    REQUIRE(batch_docs_upload(&f, bd, texts, 3) == 0);
    doc_done_t d[3];
    for (int i = 0; i < 3; i++)
        d[i] = (doc_done_t){.job = bd[i].job, .chunks = &bd[i].chunk, .n = 1,
                            .dim = i == 1 ? 8 : 4, .total_tokens = 3};
    CHECK_EQ_INT(catalog_doc_complete_batch(f.st, f.tok, d, 3), 0);
    CHECK_EQ_INT(d[0].status, 0);
    CHECK_EQ_INT(d[1].status, ENGRAM_EINVAL);
    CHECK_EQ_INT(d[2].status, 0);
    CHECK_EQ_INT(search_count(&f, "basalt"), 2);
    CHECK_EQ_INT(search_count(&f, "quartz"), 0);
    CHECK_EQ_INT(vector_count(&f, &bd[0]), 2);
    json_t *doc = NULL;
    CHECK_EQ_INT(catalog_doc_get(f.st, WS, bd[1].uuid, &doc), 0);
    CHECK_EQ_INT(json_get_i64(doc, "chunk_count", -1), 0);
    json_free(doc);
    CHECK_EQ_INT(catalog_doc_fail(f.st, &bd[1].job, "test"), 0);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* The batch's shared indexing pass fails because of one document (a
 * corrupt postings block of a term only it has): every document is then
 * tried alone, so only that one fails. */
TEST(batch_shared_pass_failure_falls_back_to_each_alone)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    static const char *const texts[] = {"copper tin bronze", "zircon copper", "copper iron steel"};
    batch_doc_t bd[3];
    REQUIRE(batch_docs_upload(&f, bd, texts, 3) == 0);
    /* A corrupt block for "zircon" as stored (the tokenizer's form). */
    bm25_terms_t t;
    REQUIRE(bm25_terms_build(&t, f.tok, "zircon", 6) == 0);
    REQUIRE(t.n == 1);
    unsigned char key[16 + 64 + 9], junk[3] = {9, 9, 9};
    size_t tl = t.v[0].len;
    be64_put(key, WS);
    be64_put(key + 8, bd[1].job.coll);
    memcpy(key + 16, t.text.data + t.v[0].off, tl);
    key[16 + tl] = 0;
    be64_put(key + 17 + tl, 1);
    bm25_terms_free(&t);
    raw_put_t rp = {f.st, DB_BM25_POSTINGS, key, 25 + tl, junk, sizeof junk, 0};
    REQUIRE(store_write(f.st, raw_put_cb, &rp) == 0);
    doc_done_t d[3];
    for (int i = 0; i < 3; i++)
        d[i] = (doc_done_t){.job = bd[i].job, .chunks = &bd[i].chunk, .n = 1, .dim = 4,
                            .total_tokens = 3};
    catalog_doc_complete_batch(f.st, f.tok, d, 3);
    CHECK_EQ_INT(d[0].status, 0);
    CHECK_EQ_INT(d[1].status, ENGRAM_ECORRUPT);
    CHECK_EQ_INT(d[2].status, 0);
    CHECK_EQ_INT(search_count(&f, "copper"), 2);
    CHECK_EQ_INT(search_count(&f, "steel"), 1);
    CHECK_EQ_INT(vector_count(&f, &bd[0]), 2);
    rp.del = 1;
    REQUIRE(store_write(f.st, raw_put_cb, &rp) == 0);
    CHECK_EQ_INT(catalog_doc_fail(f.st, &bd[1].job, "test"), 0);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* Deleting a document of more chunks than one unindex batch (1,024): its
 * postings go in several batches and every one of them is gone; another
 * document's postings of the same terms stay. Likewise a rollback. */
TEST(delete_and_rollback_beyond_one_unindex_batch)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    enum { BIG = 2500 };
    static const char *const vocab[] = {"copper", "tin", "zinc", "lead", "iron", "nickel"};
    char (*texts)[64] = calloc(BIG, sizeof *texts);
    chunk_in_t *chunks = calloc(BIG, sizeof *chunks);
    REQUIRE(texts && chunks);
    for (int i = 0; i < BIG; i++) {
        snprintf(texts[i], sizeof texts[i], "copper %s %s alloy%d", vocab[i % 6], vocab[(i / 6) % 6], i % 50);
        chunks[i] = (chunk_in_t){.text = texts[i], .len = strlen(texts[i]), .start = (uint32_t)i * 64,
                                 .end = (uint32_t)i * 64 + 40, .token_count = 4};
    }
    json_t *rec = NULL;
    int created = 0;
    uint64_t jid = 0;
    REQUIRE(upload(&f, "the small one", &rec, &created, &jid) == 0);
    ingest_job_t small = job_of(rec, jid);
    json_free(rec);
    chunk_in_t one = {.text = "copper kettle", .len = 13, .end = 13, .token_count = 2};
    REQUIRE(catalog_doc_complete(f.st, f.tok, &small, &one, 1, 0, 2) == 0);
    /* A big document completed, then deleted. */
    REQUIRE(upload(&f, "the big one", &rec, &created, &jid) == 0);
    ingest_job_t big = job_of(rec, jid);
    char big_uuid[40];
    snprintf(big_uuid, sizeof big_uuid, "%s", json_get_str(rec, "id"));
    json_free(rec);
    REQUIRE(catalog_doc_complete(f.st, f.tok, &big, chunks, BIG, 0, 4 * BIG) == 0);
    CHECK_EQ_INT(search_count(&f, "alloy7"), 50);
    CHECK_EQ_INT(catalog_doc_delete(f.st, f.tok, WS, big_uuid), 0);
    CHECK_EQ_INT(search_count(&f, "alloy7"), 0);
    CHECK_EQ_INT(search_count(&f, "zinc"), 0);
    CHECK_EQ_INT(search_count(&f, "copper"), 1);
    /* A big document committed as a part, then rolled back 2,048 at a time. */
    REQUIRE(upload(&f, "the third one", &rec, &created, &jid) == 0);
    ingest_job_t third = job_of(rec, jid);
    json_free(rec);
    doc_done_t d = {.job = third, .chunks = chunks, .n = BIG, .first = 0, .more = 1};
    CHECK_EQ_INT(catalog_doc_complete_batch(f.st, f.tok, &d, 1), 0);
    CHECK_EQ_INT(d.status, 0);
    CHECK_EQ_INT(search_count(&f, "alloy7"), 50);
    uint32_t left = 1;
    int rounds = 0;
    while (left && rounds++ < 10) CHECK_EQ_INT(catalog_doc_rollback(f.st, f.tok, &third, 2048, &left), 0);
    CHECK_EQ_INT(rounds, 2);
    CHECK_EQ_INT(search_count(&f, "alloy7"), 0);
    CHECK_EQ_INT(search_count(&f, "copper"), 1);
    CHECK_EQ_INT(catalog_doc_fail(f.st, &third, "test"), 0);
    free(texts);
    free(chunks);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}

/* A batch of three documents (postings and vectors indexed in the shared
 * pass, and the one-by-one fallback) with the n-th allocation failing, for
 * every n: a document is either completed with all its postings and its
 * vector, or still pending with none; in the end all complete and the
 * store verifies. */
TEST(alloc_fail_batch_complete)
{
    fx_t f;
    REQUIRE(fx_init(&f, NULL) == 0);
    static const char *const texts[] = {"basalt granite", "basalt pumice", "quartz mica"};
    batch_doc_t bd[3];
    REQUIRE(batch_docs_upload(&f, bd, texts, 3) == 0);
    long n;
    int all = 0;
    for (n = 1; n < 50000 && !all; n++) {
        doc_done_t d[3];
        for (int i = 0; i < 3; i++)
            d[i] = (doc_done_t){.job = bd[i].job, .chunks = &bd[i].chunk, .n = 1, .dim = 4,
                                .total_tokens = 2};
        eg_alloc_fail_after(n);
        catalog_doc_complete_batch(f.st, f.tok, d, 3);
        eg_alloc_fail_after(-1);
        int done[3], ndone = 0;
        for (int i = 0; i < 3; i++) {
            json_t *doc = NULL;
            CHECK_EQ_INT(catalog_doc_get(f.st, WS, bd[i].uuid, &doc), 0);
            const char *stt = json_get_str(doc, "status");
            done[i] = stt && !strcmp(stt, "completed");
            if (!done[i]) {
                CHECK_STR(stt, "pending");
                CHECK_EQ_INT(d[i].status, ENGRAM_ENOMEM);
            }
            ndone += done[i];
            json_free(doc);
        }
        CHECK_EQ_INT(search_count(&f, "basalt"), (size_t)(done[0] + done[1]));
        CHECK_EQ_INT(search_count(&f, "quartz"), (size_t)done[2]);
        CHECK_EQ_INT(vector_count(&f, &bd[0]), ndone ? (uint64_t)ndone : 999);
        all = ndone == 3;
        if (test_failures) break;
    }
    CHECK(all);
    printf("batch complete: %ld allocation points\n", n - 1);
    CHECK_EQ_INT(fx_close_verify(&f), 0);
}
