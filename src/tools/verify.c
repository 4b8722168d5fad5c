/*
 * verify.c - `engram verify` and `engram stat` (see tools.h).
 *
 * verify walks every table inside one read transaction (a consistent
 * snapshot) and checks the cross-references the write transactions promise:
 *   - every record decodes (JSON records, chunk values, zstd frames);
 *   - each document's collection exists, its UUID maps back to it, its
 *     content hash entry and file exist; a completed document has exactly
 *     chunk_count chunks, each decoding, pointing back at it, with a BM25
 *     length entry (so does a processing one: the parts committed so far);
 *     a pending/failed document has none; a pending/processing one has a job;
 *   - every chunk belongs to an existing document and is listed by it;
 *   - every job names an existing document (or one deleted meanwhile);
 *   - each collection's document_count and chunk_count match, and its
 *     BM25 totals count exactly its indexed chunks;
 *   - bm25_verify: every posting names an indexed chunk of that collection,
 *     document frequencies match the postings;
 *   - hnsw_verify: the vector index's structure, and one vector per chunk;
 *   - graph_verify: mentions name existing chunks, no entity without
 *     mentions, relation ends exist (index/graph.h).
 * Each defect is printed as one line; the exit code says whether any was
 * found.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "index/bm25.h"
#include "index/graph.h"
#include "index/hnsw.h"
#include "store/idmap.h"
#include "store/record.h"
#include "store/store.h"
#include "tools/tools.h"
#include "util/common.h"

typedef struct vctx {
    store_t *st;
    MDB_txn *txn;
    unsigned long defects;
    unsigned long docs, chunks, colls, jobs;
    int verbose;
} vctx_t;

static void defect(vctx_t *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void defect(vctx_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("defect: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    v->defects++;
}

static int exists(vctx_t *v, store_db_t db, const void *key, size_t klen)
{
    MDB_val k = {klen, (void *)key}, d;
    return mdb_get(v->txn, store_dbi(v->st, db), &k, &d) == 0;
}

/* Counts the chunks listed for (ws, doc) and checks each one. */
static uint64_t check_doc_chunks(vctx_t *v, uint64_t ws, uint64_t coll, uint64_t doc, int indexed)
{
    unsigned char p[16];
    be64_put(p, ws);
    be64_put(p + 8, doc);
    MDB_cursor *c;
    uint64_t n = 0;
    buf_t text = BUF_INIT;
    if (mdb_cursor_open(v->txn, store_dbi(v->st, DB_DOC_CHUNKS), &c)) return 0;
    MDB_val k = {16, p}, d;
    int r = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
    while (r == 0 && k.mv_size >= 16 && memcmp(k.mv_data, p, 16) == 0) {
        uint32_t index = k.mv_size == 20 ? be32_get((const unsigned char *)k.mv_data + 16) : 0;
        if (k.mv_size != 20 || d.mv_size != 8) {
            defect(v, "document %llu: malformed chunk list entry", (unsigned long long)doc);
        } else {
            uint64_t chunk = be64_get(d.mv_data);
            chunk_rec_t cr;
            int rc = catalog_chunk_get(v->txn, v->st, ws, coll, chunk, &cr);
            if (rc) {
                defect(v, "document %llu: chunk %llu (index %u) is %s", (unsigned long long)doc,
                       (unsigned long long)chunk, index, engram_strerror(rc));
            } else {
                if (cr.doc != doc || cr.index != index)
                    defect(v, "chunk %llu: points at document %llu index %u, listed by %llu index %u",
                           (unsigned long long)chunk, (unsigned long long)cr.doc, cr.index,
                           (unsigned long long)doc, index);
                buf_reset(&text);
                rc = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, &text);
                if (rc) defect(v, "chunk %llu: text does not decompress", (unsigned long long)chunk);
                unsigned char lk[24];
                be64_put(lk, ws);
                be64_put(lk + 8, coll);
                be64_put(lk + 16, chunk);
                if (indexed && !exists(v, DB_BM25_DOCLEN, lk, 24))
                    defect(v, "chunk %llu: not in the BM25 index", (unsigned long long)chunk);
            }
        }
        n++;
        r = mdb_cursor_get(c, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(c);
    buf_free(&text);
    return n;
}

static int hex_to_bytes(const char *hex, unsigned char *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned x;
        if (sscanf(hex + 2 * i, "%2x", &x) != 1) return -1;
        out[i] = (unsigned char)x;
    }
    return 0;
}

typedef struct coll_count {
    uint64_t ws, coll, docs, chunks;
} coll_count_t;

static void check_documents(vctx_t *v, coll_count_t *cc, size_t ncc)
{
    MDB_cursor *c;
    if (mdb_cursor_open(v->txn, store_dbi(v->st, DB_DOCUMENTS), &c)) return;
    MDB_val k, d;
    int r = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        v->docs++;
        if (k.mv_size != 24) { defect(v, "documents: key of %zu bytes", k.mv_size); continue; }
        const unsigned char *kp = k.mv_data;
        uint64_t ws = be64_get(kp), coll = be64_get(kp + 8), doc = be64_get(kp + 16);
        json_t *rec = NULL;
        if (record_decode(d.mv_data, d.mv_size, &rec)) {
            defect(v, "document %llu: record does not decode", (unsigned long long)doc);
            continue;
        }
        coll_count_t *cnt = NULL;
        for (size_t i = 0; i < ncc; i++)
            if (cc[i].ws == ws && cc[i].coll == coll) cnt = &cc[i];
        if (!cnt) defect(v, "document %llu: its collection %llu does not exist",
                         (unsigned long long)doc, (unsigned long long)coll);
        idmap_entry_t e;
        const char *id = json_get_str(rec, "id");
        if (idmap_get(v->txn, v->st, id, IDK_DOCUMENT, &e) || e.ws != ws || e.coll != coll || e.id != doc)
            defect(v, "document %llu: its id %s does not map back to it", (unsigned long long)doc,
                   id ? id : "(none)");
        unsigned char hk[48];
        be64_put(hk, ws);
        be64_put(hk + 8, coll);
        if (hex_to_bytes(json_get_str(rec, "content_hash"), hk + 16, 32) || !exists(v, DB_DOC_HASH, hk, 48))
            defect(v, "document %llu: content hash entry missing", (unsigned long long)doc);
        unsigned char fk[16];
        be64_put(fk, ws);
        be64_put(fk + 8, doc);
        if (!exists(v, DB_FILES, fk, 16))
            defect(v, "document %llu: original file missing", (unsigned long long)doc);
        const char *status = json_get_str(rec, "status");
        int completed = status && !strcmp(status, "completed");
        /* A large document commits in parts: while processing, chunk_count
         * says how many are committed (and indexed). */
        int partial = status && !strcmp(status, "processing");
        uint64_t n = check_doc_chunks(v, ws, coll, doc, completed || partial);
        int64_t want = json_get_i64(rec, "chunk_count", 0);
        if ((completed || partial) && (int64_t)n != want)
            defect(v, "document %llu: %llu chunks stored, record says %lld", (unsigned long long)doc,
                   (unsigned long long)n, (long long)want);
        if (!completed && !partial && n)
            defect(v, "document %llu: status %s but has %llu chunks", (unsigned long long)doc,
                   status ? status : "?", (unsigned long long)n);
        if (!status || (strcmp(status, "completed") && strcmp(status, "failed") &&
                        strcmp(status, "pending") && strcmp(status, "processing")))
            defect(v, "document %llu: unknown status", (unsigned long long)doc);
        if (cnt) {
            cnt->docs++;
            cnt->chunks += n;
        }
        json_free(rec);
    }
    mdb_cursor_close(c);
}

/* Every chunk must be listed by its document. */
static void check_chunks(vctx_t *v)
{
    MDB_cursor *c;
    if (mdb_cursor_open(v->txn, store_dbi(v->st, DB_CHUNKS), &c)) return;
    MDB_val k, d;
    int r = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        v->chunks++;
        if (k.mv_size != 24) { defect(v, "chunks: key of %zu bytes", k.mv_size); continue; }
        const unsigned char *kp = k.mv_data;
        uint64_t ws = be64_get(kp), chunk = be64_get(kp + 16);
        chunk_rec_t cr;
        if (catalog_chunk_decode(d.mv_data, d.mv_size, &cr)) {
            defect(v, "chunk %llu: does not decode", (unsigned long long)chunk);
            continue;
        }
        unsigned char lk[20];
        be64_put(lk, ws);
        be64_put(lk + 8, cr.doc);
        be32_put(lk + 16, cr.index);
        MDB_val kk = {20, lk}, dd;
        if (mdb_get(v->txn, store_dbi(v->st, DB_DOC_CHUNKS), &kk, &dd) || dd.mv_size != 8 ||
            be64_get(dd.mv_data) != chunk)
            defect(v, "chunk %llu: orphan (document %llu does not list it)", (unsigned long long)chunk,
                   (unsigned long long)cr.doc);
    }
    mdb_cursor_close(c);
}

static void check_jobs(vctx_t *v)
{
    MDB_cursor *c;
    if (mdb_cursor_open(v->txn, store_dbi(v->st, DB_JOBS), &c)) return;
    MDB_val k, d;
    int r = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        v->jobs++;
        if (k.mv_size != 8 || d.mv_size != 24) defect(v, "jobs: malformed entry");
        /* A job may outlive its document (deleted while queued): the worker
         * drops it. Nothing else to check. */
    }
    mdb_cursor_close(c);
}

/* Pending/processing documents need a job, or they would never finish. */
static void check_unfinished_have_jobs(vctx_t *v)
{
    MDB_cursor *c;
    if (mdb_cursor_open(v->txn, store_dbi(v->st, DB_DOCUMENTS), &c)) return;
    MDB_val k, d;
    int r = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        json_t *rec = NULL;
        if (k.mv_size != 24 || record_decode(d.mv_data, d.mv_size, &rec)) continue;
        const char *s = json_get_str(rec, "status");
        if (s && (!strcmp(s, "pending") || !strcmp(s, "processing"))) {
            int found = 0;
            MDB_cursor *j;
            if (!mdb_cursor_open(v->txn, store_dbi(v->st, DB_JOBS), &j)) {
                MDB_val jk, jd;
                int jr = mdb_cursor_get(j, &jk, &jd, MDB_FIRST);
                for (; jr == 0 && !found; jr = mdb_cursor_get(j, &jk, &jd, MDB_NEXT))
                    found = jd.mv_size == 24 && memcmp(jd.mv_data, k.mv_data, 24) == 0;
                mdb_cursor_close(j);
            }
            if (!found)
                defect(v, "document %llu: %s with no ingest job: it would never finish",
                       (unsigned long long)be64_get((const unsigned char *)k.mv_data + 16), s);
        }
        json_free(rec);
    }
    mdb_cursor_close(c);
}

static void check_collections(vctx_t *v, coll_count_t *cc, size_t ncc)
{
    for (size_t i = 0; i < ncc; i++) {
        json_t *rec = NULL;
        store_key_t k;
        skey_init(&k);
        skey_u64(&k, cc[i].ws);
        skey_u64(&k, cc[i].coll);
        MDB_val kv = skey_val(&k);
        if (record_get(v->txn, store_dbi(v->st, DB_COLLECTIONS), &kv, &rec)) continue;
        int64_t d = json_get_i64(rec, "document_count", -1), c = json_get_i64(rec, "chunk_count", -1);
        if (d != (int64_t)cc[i].docs)
            defect(v, "collection %llu: document_count %lld, actual %llu",
                   (unsigned long long)cc[i].coll, (long long)d, (unsigned long long)cc[i].docs);
        if (c != (int64_t)cc[i].chunks)
            defect(v, "collection %llu: chunk_count %lld, actual %llu",
                   (unsigned long long)cc[i].coll, (long long)c, (unsigned long long)cc[i].chunks);
        uint64_t n = 0, total = 0;
        bm25_stats(v->txn, v->st, cc[i].ws, cc[i].coll, &n, &total);
        if (n != cc[i].chunks)
            defect(v, "collection %llu: BM25 index holds %llu chunks, the collection %llu",
                   (unsigned long long)cc[i].coll, (unsigned long long)n,
                   (unsigned long long)cc[i].chunks);
        json_free(rec);
    }
}

static int collect_collections(vctx_t *v, coll_count_t **out, size_t *n)
{
    MDB_cursor *c;
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (mdb_cursor_open(v->txn, store_dbi(v->st, DB_COLLECTIONS), &c)) return ENGRAM_EIO;
    MDB_val k, d;
    int r = mdb_cursor_get(c, &k, &d, MDB_FIRST);
    for (; r == 0; r = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
        v->colls++;
        json_t *rec = NULL;
        if (k.mv_size != 16 || record_decode(d.mv_data, d.mv_size, &rec)) {
            defect(v, "collections: malformed entry");
            continue;
        }
        json_free(rec);
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            coll_count_t *nc = eg_realloc(*out, cap * sizeof *nc);
            if (!nc) { mdb_cursor_close(c); return ENGRAM_ENOMEM; }
            *out = nc;
        }
        coll_count_t *e = &(*out)[(*n)++];
        memset(e, 0, sizeof *e);
        e->ws = be64_get(k.mv_data);
        e->coll = be64_get((const unsigned char *)k.mv_data + 8);
    }
    mdb_cursor_close(c);
    return 0;
}

static const char *data_arg(int argc, char **argv)
{
    const char *data = getenv("ENGRAM_DATA");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (argv[i][0] != '-') data = argv[i];
    }
    return data ? data : "./engram-data";
}

int tools_verify_main(int argc, char **argv)
{
    const char *data = data_arg(argc, argv);
    store_options_t opt = {.read_only = 1};
    vctx_t v = {0};
    int rc = store_open(data, &opt, &v.st);
    if (rc) {
        fprintf(stderr, "engram verify: %s\n", store_last_error());
        return 2;
    }
    rc = store_read_begin(v.st, &v.txn);
    if (rc) {
        fprintf(stderr, "engram verify: %s\n", engram_strerror(rc));
        store_close(v.st);
        return 2;
    }
    coll_count_t *cc = NULL;
    size_t ncc = 0;
    rc = collect_collections(&v, &cc, &ncc);
    if (!rc) {
        check_documents(&v, cc, ncc);
        check_chunks(&v);
        check_jobs(&v);
        check_unfinished_have_jobs(&v);
        check_collections(&v, cc, ncc);
        for (size_t i = 0; i < ncc; i++) {
            char msg[256];
            int br = bm25_verify(v.txn, v.st, cc[i].ws, cc[i].coll, msg, sizeof msg);
            if (br) defect(&v, "collection %llu: BM25 index: %s", (unsigned long long)cc[i].coll, msg);
            if (graph_verify(v.txn, v.st, cc[i].ws, cc[i].coll, msg, sizeof msg))
                defect(&v, "collection %llu: knowledge graph: %s", (unsigned long long)cc[i].coll, msg);
            hnsw_params_t hp;
            if (hnsw_params_get(v.txn, v.st, cc[i].ws, cc[i].coll, &hp) == 0) {
                int hr = hnsw_verify(v.txn, v.st, cc[i].ws, cc[i].coll, msg, sizeof msg);
                if (hr) defect(&v, "collection %llu: vector index: %s", (unsigned long long)cc[i].coll, msg);
                uint64_t nv = 0;
                if (!hr && hnsw_count(v.txn, v.st, cc[i].ws, cc[i].coll, &nv) == 0 && nv != cc[i].chunks)
                    defect(&v, "collection %llu: vector index holds %llu vectors, the collection %llu chunks",
                           (unsigned long long)cc[i].coll, (unsigned long long)nv,
                           (unsigned long long)cc[i].chunks);
            }
        }
    }
    eg_free(cc);
    store_read_end(v.st, v.txn);
    store_close(v.st);
    if (rc) {
        fprintf(stderr, "engram verify: %s\n", engram_strerror(rc));
        return 2;
    }
    printf("%s: %lu collections, %lu documents, %lu chunks, %lu jobs: %lu defect%s\n", data, v.colls,
           v.docs, v.chunks, v.jobs, v.defects, v.defects == 1 ? "" : "s");
    return v.defects ? 1 : 0;
}

int tools_stat_main(int argc, char **argv)
{
    const char *data = data_arg(argc, argv);
    store_options_t opt = {.read_only = 1};
    store_t *st;
    if (store_open(data, &opt, &st)) {
        fprintf(stderr, "engram stat: %s\n", store_last_error());
        return 2;
    }
    static const char *names[DB__COUNT] = {
        "meta", "users", "user_email", "keys", "user_keys", "sessions", "workspaces", "members",
        "user_ws", "uuids", "collections", "coll_names", "documents", "doc_hash", "files", "jobs",
        "chunks", "doc_chunks", "bm25_terms", "bm25_postings", "bm25_doclen", "bm25_stats",
        "hnsw_meta", "hnsw_nodes", "embed_cache", "chat_sessions", "chat_messages", "memories",
        "graph_entities", "graph_names", "graph_edges", "graph_mentions", "quotas", "idempotency"};
    store_info_t info;
    MDB_txn *txn;
    int rc = store_get_info(st, &info);
    if (!rc) rc = store_read_begin(st, &txn);
    if (rc) {
        fprintf(stderr, "engram stat: %s\n", engram_strerror(rc));
        store_close(st);
        return 2;
    }
    printf("data directory: %s\nfile: %zu bytes, map: %zu bytes, used: %zu bytes (format version %d)\n\n",
           data, info.file_bytes, info.map_bytes, info.used_bytes, STORE_FORMAT_VERSION);
    printf("%-16s %12s %10s %8s\n", "database", "entries", "pages", "depth");
    for (int i = 0; i < DB__COUNT; i++) {
        MDB_stat ms;
        if (mdb_stat(txn, store_dbi(st, (store_db_t)i), &ms)) continue;
        size_t pages = ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
        printf("%-16s %12zu %10zu %8u\n", names[i] ? names[i] : "?", ms.ms_entries, pages, ms.ms_depth);
    }
    store_read_end(st, txn);
    store_close(st);
    return 0;
}
