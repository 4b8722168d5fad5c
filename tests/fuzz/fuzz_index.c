/*
 * fuzz_index.c - libFuzzer target for the decoders of the stored index and
 * catalog records, driven through the real read paths.
 *
 * A store is seeded once (a temporary directory, MDB_NOSYNC for speed): one
 * collection, three documents, 140 chunks from a small vocabulary so common
 * terms span two postings blocks. Each input then damages ONE stored value
 * and commits it:
 *   byte 0: which table (BM25 terms, postings, chunk lengths, totals,
 *           chunks, documents) and how: replace the value with the rest of
 *           the input, or (top bit) overwrite one byte of the real value
 *   byte 1: which record of that table (index modulo the count)
 *   byte 2,3: for the overwrite: the position and the new byte
 * then runs bm25_verify, retrieval (keyword, with and without a metadata
 * filter, over the collection and over the workspace: retrieve_search then
 * retrieve_render), and the document reads. Every call must answer 0,
 * ENGRAM_ECORRUPT or ENGRAM_ENOTFOUND - never crash, never another status -
 * and a successful retrieval must give at most top_k finite scores in
 * descending order, rendered as valid JSON. The
 * original value is then put back, so every input starts from the same
 * store.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "index/bm25.h"
#include "rag/retrieve.h"
#include "store/record.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WS 7
#define N_DOCS 3

static store_t *st;
static tokenizer_t *tok;
static char dir[256];
static char coll_uuid[40];
static char doc_uuids[N_DOCS][40];

static void cleanup(void)
{
    if (tok) tokenizer_free(tok);
    if (st) store_close(st);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (dir[0] && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_index setup: %s: %s\n", what, engram_strerror(rc));
    exit(1);
}

static void seed(void)
{
    static const char *const vocab[] = {"river", "bank", "money", "fox", "dog", "quick",
                                        "lazy", "signal", "copper", "harbor", "meadow", "alpha"};
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/engram-fuzz-index-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(dir)) die("mkdtemp", -1);
    atexit(cleanup);
    int rc = store_open(dir, NULL, &st);
    if (rc) die("store_open", rc);
    mdb_env_set_flags(store_env(st), MDB_NOSYNC, 1);
    if ((rc = tokenizer_new(&tok))) die("tokenizer", rc);
    json_t *coll = NULL;
    coll_config_t cfg = COLL_CONFIG_DEFAULT;
    rc = catalog_coll_create(st, WS, "user-uuid", "fuzz", NULL, NULL, &cfg, &coll);
    if (rc) die("collection", rc);
    snprintf(coll_uuid, sizeof coll_uuid, "%s", json_get_str(coll, "id"));
    json_free(coll);
    unsigned x = 12345;
    for (int d = 0; d < N_DOCS; d++) {
        char body[64], metasrc[64];
        snprintf(body, sizeof body, "document %d", d);
        snprintf(metasrc, sizeof metasrc, "{\"lang\":\"%s\",\"n\":%d}", d == 1 ? "de" : "en", d);
        json_t *meta = NULL, *rec = NULL;
        if (json_parse(metasrc, strlen(metasrc), &meta, NULL)) die("meta", -1);
        doc_upload_t up = {.coll_uuid = coll_uuid, .user_uuid = "user-uuid", .title = body,
                           .content_type = "text/plain", .metadata = meta, .bytes = body,
                           .len = strlen(body)};
        int created = 0;
        uint64_t job_id = 0;
        if ((rc = catalog_doc_create(st, WS, &up, &rec, &created, &job_id))) die("doc", rc);
        snprintf(doc_uuids[d], sizeof doc_uuids[d], "%s", json_get_str(rec, "id"));
        ingest_job_t job = {job_id, WS, (uint64_t)json_get_i64(rec, "cid", 0),
                            (uint64_t)json_get_i64(rec, "did", 0)};
        json_free(rec);
        json_free(meta);
        enum { PER_DOC = 47 };
        static char texts[PER_DOC][128];
        chunk_in_t chunks[PER_DOC];
        for (int c = 0; c < PER_DOC; c++) {
            size_t n = 0;
            for (int wi = 0; wi < 8; wi++) {
                x = x * 1103515245u + 12345u;
                n += (size_t)snprintf(texts[c] + n, sizeof texts[c] - n, "%s ",
                                      vocab[(x >> 16) % EG_ARRAY_LEN(vocab)]);
            }
            chunks[c] = (chunk_in_t){.text = texts[c], .len = n, .start = (uint32_t)(c * 10),
                                     .end = (uint32_t)(c * 10 + n), .token_count = 8,
                                     .heading = c % 2 ? "Section" : NULL};
        }
        if ((rc = catalog_doc_complete(st, tok, &job, chunks, PER_DOC, 0, 8 * PER_DOC)))
            die("complete", rc);
    }
}

static const store_db_t targets[] = {DB_BM25_TERMS, DB_BM25_POSTINGS, DB_BM25_DOCLEN,
                                     DB_BM25_STATS, DB_CHUNKS, DB_DOCUMENTS};

/* Copies the key and value of record idx (mod count) of db. */
static int pick(store_db_t db, unsigned idx, buf_t *key, buf_t *val)
{
    MDB_txn *txn;
    if (store_read_begin(st, &txn)) return -1;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t count = 0;
    int rc = mdb_cursor_open(txn, store_dbi(st, db), &cur);
    if (rc) { store_read_end(st, txn); return -1; }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        count++;
    rc = -1;
    if (count) {
        size_t want = idx % count, i = 0;
        for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT), i++) {
            if (i != want) continue;
            buf_append(key, k.mv_data, k.mv_size);
            buf_append(val, v.mv_data, v.mv_size);
            rc = key->err || val->err ? -1 : 0;
            break;
        }
    }
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    return rc;
}

/* Writes val under key directly (no other writer runs in this process). */
static void put_raw(store_db_t db, const buf_t *key, const void *val, size_t len)
{
    MDB_txn *txn;
    if (mdb_txn_begin(store_env(st), NULL, 0, &txn)) abort();
    MDB_val k = {key->len, key->data}, v = {len, (void *)val};
    if (mdb_put(txn, store_dbi(st, db), &k, &v, 0)) abort();
    if (mdb_txn_commit(txn)) abort();
}

static void ok_status(int rc)
{
    if (rc != 0 && rc != ENGRAM_ECORRUPT && rc != ENGRAM_ENOTFOUND) {
        fprintf(stderr, "unexpected status %d %s\n", rc, engram_strerror(rc));
        abort();
    }
}

static void run_retrieval(const char *query, const char *coll, const char *filter_src)
{
    json_t *filter = NULL;
    if (filter_src && json_parse(filter_src, strlen(filter_src), &filter, NULL)) abort();
    retrieve_req_t r = {.query = query, .mode = RMODE_KEYWORD, .top_k = 7, .coll_uuid = coll,
                        .metadata_filter = filter, .bm25 = BM25_PARAMS_DEFAULT};
    retrieve_env_t env = {.st = st};
    retrieve_hit_t *hits = NULL;
    size_t nh = 0, n = 0;
    char err[128];
    buf_t b = BUF_INIT;
    int rc = retrieve_search(&env, tok, WS, &r, &hits, &nh, err, sizeof err);
    ok_status(rc);
    if (rc == 0) {
        if (nh > 7) abort();
        for (size_t i = 0; i < nh; i++)
            if (!isfinite(hits[i].score) || (i && hits[i].score > hits[i - 1].score)) abort();
        jw_t w;
        jw_init(&w, &b);
        rc = retrieve_render(&env, WS, hits, nh, 1, &w, &n);
        ok_status(rc);
    }
    if (rc == 0 && !b.err) {
        json_t *arr = NULL;
        if (json_parse(b.data, b.len, &arr, NULL) || arr->type != JSON_ARRAY || arr->len != n ||
            n > nh)
            abort();
        json_free(arr);
    }
    eg_free(hits);
    buf_free(&b);
    json_free(filter);
}

static void exercise(unsigned which_doc)
{
    MDB_txn *txn;
    if (store_read_begin(st, &txn) == 0) {
        char msg[256];
        ok_status(bm25_verify(txn, st, WS, 1, msg, sizeof msg));
        uint64_t n, total;
        ok_status(bm25_stats(txn, st, WS, 1, &n, &total));
        store_read_end(st, txn);
    }
    run_retrieval("river bank money", coll_uuid, NULL);
    run_retrieval("quick fox lazy dog signal", NULL, "{\"lang\":\"en\"}");
    for (int d = 0; d < N_DOCS; d++) {
        json_t *out = NULL;
        ok_status(catalog_doc_get(st, WS, doc_uuids[d], &out));
        json_free(out);
    }
    json_t *page = NULL;
    size_t total;
    ok_status(catalog_doc_chunks(st, WS, doc_uuids[which_doc % N_DOCS], 20, 0, &page, &total));
    json_free(page);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st) seed();
    if (size < 2) return 0;
    store_db_t db = targets[(data[0] & 0x7F) % EG_ARRAY_LEN(targets)];
    buf_t key = BUF_INIT, orig = BUF_INIT, val = BUF_INIT;
    if (pick(db, data[1], &key, &orig)) goto done;
    if (data[0] & 0x80) {
        if (size < 4 || orig.len == 0) goto done;
        buf_append(&val, orig.data, orig.len);
        if (val.err) goto done;
        val.data[data[2] % val.len] = (char)data[3];
    } else {
        buf_append(&val, data + 2, size - 2);
        if (val.err) goto done;
    }
    put_raw(db, &key, val.data ? val.data : "", val.len);
    exercise(data[1] / 16u);
    put_raw(db, &key, orig.data, orig.len);
done:
    buf_free(&key);
    buf_free(&orig);
    buf_free(&val);
    return 0;
}
