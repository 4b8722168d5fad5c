/*
 * documents.c - documents, their files, chunks and ingest jobs (see
 * catalog.h).
 *
 * Keys: DB_DOCUMENTS ws coll doc -> record; DB_DOC_HASH ws coll sha256 ->
 * doc; DB_FILES ws doc -> zstd(original); DB_JOBS job -> ws coll doc;
 * DB_CHUNKS ws coll chunk -> chunk value; DB_DOC_CHUNKS ws doc index ->
 * chunk. A chunk value is: version(1)=1, doc(8), index(4), start(4), end(4),
 * tokens(4), uuid(16), heading length(2), heading, then the zstd frame of the
 * text. Chunk ids come from one global counter, so they increase within
 * every collection as the BM25 appender requires.
 */
#include <stdio.h>
#include <stdlib.h>

#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"
#include "catalog/idempotency.h"
#include "index/bm25.h"
#include "index/graph.h"
#include "index/hnsw.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/timeutil.h"
#include "util/utf8.h"
#include "util/uuid.h"

#define CHUNK_HDR 47

static store_key_t key3(uint64_t a, uint64_t b, uint64_t c)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a);
    skey_u64(&k, b);
    skey_u64(&k, c);
    return k;
}

static store_key_t key2(uint64_t a, uint64_t b)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a);
    skey_u64(&k, b);
    return k;
}

/* ---- rendering ---------------------------------------------------------- */

void catalog_write_doc(jw_t *w, const json_t *r, int live)
{
    jw_obj_begin(w);
    jw_kstr(w, "id", json_get_str(r, "id"));
    jw_kstr(w, "collection_id", json_get_str(r, "collection_id"));
    jw_kstr(w, "user_id", json_get_str(r, "user_id"));
    jw_kstr(w, "title", json_get_str(r, "title"));
    jw_kstr(w, "filename", json_get_str(r, "filename"));
    jw_kstr(w, "content_type", json_get_str(r, "content_type"));
    jw_kint(w, "size_bytes", json_get_i64(r, "size_bytes", 0));
    jw_kstr(w, "content_hash", json_get_str(r, "content_hash"));
    jw_kstr(w, "status", live ? "processing" : json_get_str(r, "status"));
    jw_key(w, "metadata");
    jw_json(w, json_get(r, "metadata"));
    jw_key(w, "processing_info");
    jw_obj_begin(w);
    jw_kint(w, "chunk_count", json_get_i64(r, "chunk_count", 0));
    jw_kint(w, "total_tokens", json_get_i64(r, "total_tokens", 0));
    jw_obj_end(w);
    jw_key(w, "error_message");
    jw_json(w, json_get(r, "error_message"));
    jw_kstr(w, "created_at", json_get_str(r, "created_at"));
    jw_kstr(w, "updated_at", json_get_str(r, "updated_at"));
    jw_obj_end(w);
}

void catalog_write_doc_status(jw_t *w, const json_t *r, double live_progress)
{
    int live = live_progress >= 0;
    jw_obj_begin(w);
    jw_kstr(w, "document_id", json_get_str(r, "id"));
    jw_kstr(w, "status", live ? "processing" : json_get_str(r, "status"));
    jw_kint(w, "chunk_count", json_get_i64(r, "chunk_count", 0));
    jw_kint(w, "total_tokens", json_get_i64(r, "total_tokens", 0));
    jw_key(w, "error_message");
    jw_json(w, json_get(r, "error_message"));
    jw_key(w, "processing_info");
    jw_obj_begin(w);
    jw_kint(w, "chunk_count", json_get_i64(r, "chunk_count", 0));
    jw_kint(w, "total_tokens", json_get_i64(r, "total_tokens", 0));
    const json_t *p = json_get(r, "progress");
    jw_kdouble(w, "progress", live ? live_progress : p && p->type == JSON_NUMBER ? p->number : 0.0);
    jw_kstr(w, "content_type", json_get_str(r, "content_type"));
    jw_kint(w, "size_bytes", json_get_i64(r, "size_bytes", 0));
    jw_obj_end(w);
    jw_kstr(w, "created_at", json_get_str(r, "created_at"));
    jw_key(w, "processed_at");
    jw_json(w, json_get(r, "processed_at"));
    jw_obj_end(w);
}

/* ---- records ------------------------------------------------------------ */

int catalog_doc_get_internal(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t doc,
                             json_t **out)
{
    store_key_t k = key3(ws, coll, doc);
    MDB_val kv = skey_val(&k);
    return record_get(txn, store_dbi(st, DB_DOCUMENTS), &kv, out);
}

/* Rewrites a document record with fields replaced: the writer callback
 * fn writes the replacement members; skip names them. */
typedef void (*doc_edit_fn)(jw_t *w, void *ud);

static int doc_rewrite(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t doc,
                       const char *const *skip, doc_edit_fn fn, void *ud, buf_t *out)
{
    json_t *rec = NULL;
    int rc = catalog_doc_get_internal(txn, st, ws, coll, doc, &rec);
    if (rc) return rc;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    record_copy_members(&w, rec, skip);
    fn(&w, ud);
    jw_obj_end(&w);
    store_key_t k = key3(ws, coll, doc);
    MDB_val kv = skey_val(&k);
    rc = record_put(txn, store_dbi(st, DB_DOCUMENTS), &kv, &b);
    if (!rc && out) {
        buf_reset(out);
        buf_append(out, b.data, b.len);
    }
    buf_free(&b);
    json_free(rec);
    return rc;
}

/* ---- create ------------------------------------------------------------- */

struct doc_new_args {
    store_t *st;
    uint64_t ws;
    const doc_upload_t *up;
    const unsigned char *hash;
    const buf_t *zfile;
    buf_t out;
    int created;
    uint64_t job_id;
};

static int doc_new_cb(MDB_txn *txn, void *arg)
{
    struct doc_new_args *a = arg;
    const doc_upload_t *up = a->up;
    store_t *st = a->st;
    idmap_entry_t ce;
    a->created = 0;
    buf_reset(&a->out);
    int rc = catalog_resolve(txn, st, a->ws, up->coll_uuid, IDK_COLLECTION, &ce);
    if (rc) return rc;
    uint64_t coll = ce.coll;
    int64_t now_ms = time_now_ms();

    if (up->idempotency_key) { /* a retry: the document the key names, if it still exists */
        uint64_t icoll, idoc;
        rc = idem_get(txn, st, a->ws, up->idempotency_key, now_ms, &icoll, &idoc);
        if (rc == 0) {
            json_t *rec = NULL;
            rc = catalog_doc_get_internal(txn, st, a->ws, icoll, idoc, &rec);
            if (rc == 0) {
                json_write(&a->out, rec);
                json_free(rec);
                return a->out.err;
            }
        }
        if (rc != ENGRAM_ENOTFOUND) return rc;
    }

    store_key_t hk;
    skey_init(&hk);
    skey_u64(&hk, a->ws);
    skey_u64(&hk, coll);
    skey_bytes(&hk, a->hash, 32);
    MDB_val hkv = skey_val(&hk), v;
    rc = mdb_get(txn, store_dbi(st, DB_DOC_HASH), &hkv, &v);
    if (rc == 0 && v.mv_size == 8) {
        json_t *rec = NULL;
        rc = catalog_doc_get_internal(txn, st, a->ws, coll, be64_get(v.mv_data), &rec);
        if (rc) return rc;
        json_write(&a->out, rec);
        json_free(rec);
        if (!a->out.err && up->idempotency_key)
            return idem_put(txn, st, a->ws, up->idempotency_key, coll, be64_get(v.mv_data), now_ms);
        return a->out.err;
    }
    if (rc && rc != MDB_NOTFOUND) return store_status(rc);

    uint64_t doc, job;
    char uuid[37], now[32], hex[65];
    if ((rc = store_next_id(txn, st, "document", &doc))) return rc;
    if ((rc = store_next_id(txn, st, "job", &job))) return rc;
    if ((rc = idmap_new(txn, st, IDK_DOCUMENT, a->ws, coll, doc, uuid))) return rc;
    time_format_rfc3339(time_now_ms(), now);
    hash_hex(a->hash, 32, hex);

    jw_t w;
    jw_init(&w, &a->out);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", uuid);
    jw_kint(&w, "did", (int64_t)doc);
    jw_kstr(&w, "collection_id", up->coll_uuid);
    jw_kint(&w, "cid", (int64_t)coll);
    jw_kstr(&w, "user_id", up->user_uuid);
    jw_kstr(&w, "title", up->title);
    jw_key(&w, "filename");
    jw_str(&w, up->filename);
    jw_kstr(&w, "content_type", up->content_type);
    jw_kint(&w, "size_bytes", (int64_t)up->len);
    jw_kstr(&w, "content_hash", hex);
    jw_kstr(&w, "status", "pending");
    jw_key(&w, "metadata");
    if (up->metadata) jw_json(&w, up->metadata); else jw_raw(&w, "{}", 2);
    jw_kint(&w, "chunk_count", 0);
    jw_kint(&w, "total_tokens", 0);
    jw_knull(&w, "error_message");
    jw_kdouble(&w, "progress", 0);
    jw_kstr(&w, "created_at", now);
    jw_kstr(&w, "updated_at", now);
    jw_knull(&w, "processed_at");
    jw_obj_end(&w);

    store_key_t dk = key3(a->ws, coll, doc);
    MDB_val dkv = skey_val(&dk);
    if ((rc = record_put(txn, store_dbi(st, DB_DOCUMENTS), &dkv, &a->out))) return rc;
    unsigned char idb[8];
    be64_put(idb, doc);
    MDB_val iv = {8, idb};
    if ((rc = store_status(mdb_put(txn, store_dbi(st, DB_DOC_HASH), &hkv, &iv, 0)))) return rc;
    store_key_t fk = key2(a->ws, doc);
    MDB_val fkv = skey_val(&fk), fv = {a->zfile->len, a->zfile->data};
    if ((rc = store_status(mdb_put(txn, store_dbi(st, DB_FILES), &fkv, &fv, 0)))) return rc;
    unsigned char jk[8], jv[24];
    be64_put(jk, job);
    be64_put(jv, a->ws);
    be64_put(jv + 8, coll);
    be64_put(jv + 16, doc);
    MDB_val jkv = {8, jk}, jvv = {24, jv};
    if ((rc = store_status(mdb_put(txn, store_dbi(st, DB_JOBS), &jkv, &jvv, 0)))) return rc;
    if ((rc = catalog_coll_add_counts(txn, st, a->ws, coll, 1, 0))) return rc;
    if (up->idempotency_key && (rc = idem_put(txn, st, a->ws, up->idempotency_key, coll, doc, now_ms)))
        return rc;
    a->created = 1;
    a->job_id = job;
    return 0;
}

int catalog_doc_create(store_t *st, uint64_t ws, const doc_upload_t *up, json_t **out,
                       int *created, uint64_t *job_id)
{
    unsigned char hash[32];
    *out = NULL;
    hash_sha256(up->bytes, up->len, hash);
    buf_t z = BUF_INIT;
    int rc = store_compress(up->bytes, up->len, &z);
    if (rc) { buf_free(&z); return rc; }
    struct doc_new_args a = {.st = st, .ws = ws, .up = up, .hash = hash, .zfile = &z};
    rc = store_write(st, doc_new_cb, &a);
    buf_free(&z);
    if (!rc) rc = catalog_to_dom(&a.out, out);
    buf_free(&a.out);
    if (rc) return rc;
    /* After the commit: caches (generation.c). */
    if (a.created) catalog_generation_bump(ws, (uint64_t)json_get_i64(*out, "cid", 0));
    *created = a.created;
    *job_id = a.job_id;
    return 0;
}

/* ---- read --------------------------------------------------------------- */

int catalog_doc_get(store_t *st, uint64_t ws, const char *doc_uuid, json_t **out)
{
    MDB_txn *txn;
    *out = NULL;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    rc = catalog_resolve(txn, st, ws, doc_uuid, IDK_DOCUMENT, &e);
    if (!rc) rc = catalog_doc_get_internal(txn, st, ws, e.coll, e.id, out);
    store_read_end(st, txn);
    return rc;
}

int catalog_doc_list(store_t *st, uint64_t ws, const char *coll_uuid, const char *status,
                     size_t limit, size_t offset, json_t **out, size_t *total)
{
    MDB_txn *txn;
    *out = NULL;
    *total = 0;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    unsigned char p[16];
    size_t plen = 8;
    be64_put(p, ws);
    if (coll_uuid) {
        idmap_entry_t e;
        rc = catalog_resolve(txn, st, ws, coll_uuid, IDK_COLLECTION, &e);
        if (rc) { store_read_end(st, txn); return rc; }
        be64_put(p + 8, e.coll);
        plen = 16;
    }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    MDB_cursor *c;
    size_t i = 0;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_DOCUMENTS), &c));
    if (!rc) {
        MDB_val k = {plen, p}, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (r == 0 && k.mv_size == 24 && memcmp(k.mv_data, p, plen) == 0) {
            json_t *rec = NULL;
            r = record_decode(v.mv_data, v.mv_size, &rec);
            if (r) break;
            const char *s = json_get_str(rec, "status");
            if (!status || (s && strcmp(s, status) == 0)) {
                if (i >= offset && i < offset + limit) catalog_write_doc(&w, rec, 0);
                i++;
            }
            json_free(rec);
            r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    }
    store_read_end(st, txn);
    jw_arr_end(&w);
    *total = i;
    if (!rc) rc = catalog_to_dom(&b, out);
    buf_free(&b);
    return rc;
}

/* ---- patch -------------------------------------------------------------- */

struct doc_patch_args {
    store_t *st;
    idmap_entry_t e;
    const char *title;
    const json_t *metadata;
    const json_t *old;  /* filled by the callback for the edit function */
    char now[32];
    buf_t out;
};

static void doc_patch_edit(jw_t *w, void *ud)
{
    struct doc_patch_args *a = ud;
    jw_kstr(w, "title", a->title ? a->title : json_get_str(a->old, "title"));
    jw_key(w, "metadata");
    jw_json(w, a->metadata ? a->metadata : json_get(a->old, "metadata"));
    jw_kstr(w, "updated_at", a->now);
}

static int doc_patch_cb(MDB_txn *txn, void *arg)
{
    struct doc_patch_args *a = arg;
    json_t *old = NULL;
    int rc = catalog_doc_get_internal(txn, a->st, a->e.ws, a->e.coll, a->e.id, &old);
    if (rc) return rc;
    a->old = old;
    static const char *const skip[] = {"title", "metadata", "updated_at", NULL};
    time_format_rfc3339(time_now_ms(), a->now);
    rc = doc_rewrite(txn, a->st, a->e.ws, a->e.coll, a->e.id, skip, doc_patch_edit, a, &a->out);
    a->old = NULL;
    json_free(old);
    return rc;
}

int catalog_doc_patch(store_t *st, uint64_t ws, const char *doc_uuid, const char *title,
                      const json_t *metadata, json_t **out)
{
    *out = NULL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    struct doc_patch_args a = {.st = st, .title = title, .metadata = metadata};
    rc = catalog_resolve(txn, st, ws, doc_uuid, IDK_DOCUMENT, &a.e);
    store_read_end(st, txn);
    if (rc) return rc;
    rc = store_write(st, doc_patch_cb, &a);
    if (!rc) catalog_generation_bump(ws, a.e.coll); /* after the commit: caches */
    if (!rc) rc = catalog_to_dom(&a.out, out);
    buf_free(&a.out);
    return rc;
}

/* ---- chunks ------------------------------------------------------------- */

int catalog_chunk_decode(const void *val, size_t len, chunk_rec_t *out)
{
    const unsigned char *p = val;
    /* Version 1 has no page; version 2 adds page(4) before the heading. */
    if (len < CHUNK_HDR || (p[0] != 1 && p[0] != 2)) return ENGRAM_ECORRUPT;
    size_t h = p[0] == 2 ? 45 : 41;
    out->doc = be64_get(p + 1);
    out->index = be32_get(p + 9);
    out->start = be32_get(p + 13);
    out->end = be32_get(p + 17);
    out->tokens = be32_get(p + 21);
    uuid_format(p + 25, out->uuid);
    out->page = p[0] == 2 ? be32_get(p + 41) : 0;
    if (len < h + 2) return ENGRAM_ECORRUPT;
    size_t hl = ((size_t)p[h] << 8) | p[h + 1];
    if (h + 2 + hl + 4 > len) return ENGRAM_ECORRUPT;
    out->heading = (const char *)p + h + 2;
    out->heading_len = hl;
    out->ztext = p + h + 2 + hl;
    out->ztext_len = len - h - 2 - hl;
    if (out->ztext_len < 4 || out->end < out->start) return ENGRAM_ECORRUPT;
    return 0;
}

int catalog_chunk_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk,
                      chunk_rec_t *out)
{
    store_key_t k = key3(ws, coll, chunk);
    MDB_val kv = skey_val(&k), v;
    int rc = mdb_get(txn, store_dbi(st, DB_CHUNKS), &kv, &v);
    if (rc) return store_status(rc);
    return catalog_chunk_decode(v.mv_data, v.mv_size, out);
}

static int put_chunk(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t doc,
                     uint64_t chunk, uint32_t index, const chunk_in_t *c)
{
    buf_t b = BUF_INIT;
    unsigned char hdr[47];
    size_t hl = c->heading ? utf8_truncate(c->heading, strlen(c->heading), 1000) : 0;
    hdr[0] = 2;
    be64_put(hdr + 1, doc);
    be32_put(hdr + 9, index);
    be32_put(hdr + 13, c->start);
    be32_put(hdr + 17, c->end);
    be32_put(hdr + 21, c->token_count);
    uuid_new(hdr + 25);
    be32_put(hdr + 41, c->page);
    hdr[45] = (unsigned char)(hl >> 8);
    hdr[46] = (unsigned char)hl;
    buf_append(&b, hdr, sizeof hdr);
    if (hl) buf_append(&b, c->heading, hl);
    int rc = store_compress(c->text, c->len, &b);
    if (!rc && b.err) rc = b.err;
    if (!rc) {
        store_key_t k = key3(ws, coll, chunk);
        MDB_val kv = skey_val(&k), v = {b.len, b.data};
        rc = store_status(mdb_put(txn, store_dbi(st, DB_CHUNKS), &kv, &v, 0));
    }
    buf_free(&b);
    if (rc) return rc;
    store_key_t dk;
    skey_init(&dk);
    skey_u64(&dk, ws);
    skey_u64(&dk, doc);
    skey_u32(&dk, index);
    unsigned char cb[8];
    be64_put(cb, chunk);
    MDB_val dkv = skey_val(&dk), cv = {8, cb};
    return store_status(mdb_put(txn, store_dbi(st, DB_DOC_CHUNKS), &dkv, &cv, 0));
}

int catalog_doc_chunks(store_t *st, uint64_t ws, const char *doc_uuid, size_t limit,
                       size_t offset, json_t **out, size_t *total)
{
    MDB_txn *txn;
    *out = NULL;
    *total = 0;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    rc = catalog_resolve(txn, st, ws, doc_uuid, IDK_DOCUMENT, &e);
    if (rc) { store_read_end(st, txn); return rc; }
    buf_t b = BUF_INIT, text = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    unsigned char p[16];
    be64_put(p, ws);
    be64_put(p + 8, e.id);
    MDB_cursor *c;
    size_t i = 0;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_DOC_CHUNKS), &c));
    if (!rc) {
        MDB_val k = {16, p}, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (r == 0 && k.mv_size == 20 && memcmp(k.mv_data, p, 16) == 0) {
            if (i >= offset && i < offset + limit) {
                chunk_rec_t cr;
                if (v.mv_size != 8) { r = ENGRAM_ECORRUPT; break; }
                r = catalog_chunk_get(txn, st, ws, e.coll, be64_get(v.mv_data), &cr);
                if (!r) {
                    buf_reset(&text);
                    r = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, &text);
                }
                if (r) break;
                jw_obj_begin(&w);
                jw_kstr(&w, "id", cr.uuid);
                jw_kstr(&w, "document_id", doc_uuid);
                jw_kint(&w, "chunk_index", cr.index);
                jw_key(&w, "content");
                jw_strn(&w, text.data ? text.data : "", text.len);
                jw_kint(&w, "token_count", cr.tokens);
                jw_key(&w, "metadata");
                jw_obj_begin(&w);
                jw_kint(&w, "start", cr.start);
                jw_kint(&w, "end", cr.end);
                if (cr.heading_len) {
                    jw_key(&w, "section");
                    jw_strn(&w, cr.heading, cr.heading_len);
                }
                if (cr.page) jw_kint(&w, "page", cr.page);
                jw_obj_end(&w);
                jw_obj_end(&w);
            }
            i++;
            r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    }
    store_read_end(st, txn);
    jw_arr_end(&w);
    *total = i;
    if (!rc) rc = catalog_to_dom(&b, out);
    buf_free(&b);
    buf_free(&text);
    return rc;
}

/* ---- delete ------------------------------------------------------------- */

/* Takes chunk out of the BM25, vector and graph indexes (text is scratch). */
static int unindex_chunk(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                         uint64_t chunk, buf_t *text)
{
    chunk_rec_t cr;
    int r = catalog_chunk_get(txn, st, ws, coll, chunk, &cr);
    if (r == ENGRAM_ENOTFOUND) return 0;
    if (r) return r;
    buf_reset(text);
    r = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, text);
    if (!r) r = bm25_remove(txn, st, tok, ws, coll, chunk, text->data ? text->data : "", text->len);
    if (!r) {
        r = hnsw_delete(txn, st, ws, coll, chunk);
        if (r == ENGRAM_ENOTFOUND) r = 0; /* no vector for it */
    }
    if (!r) r = graph_remove_chunk(txn, st, ws, coll, chunk);
    return r;
}

int catalog_doc_delete_txn(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws,
                           uint64_t coll, uint64_t doc, int unindex)
{
    json_t *rec = NULL;
    buf_t text = BUF_INIT;
    int rc = catalog_doc_get_internal(txn, st, ws, coll, doc, &rec);
    if (rc) return rc;
    int64_t n_chunks = 0;

    unsigned char p[16];
    be64_put(p, ws);
    be64_put(p + 8, doc);
    MDB_cursor *c;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_DOC_CHUNKS), &c));
    if (rc) goto done;
    MDB_val k = {16, p}, v;
    int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size == 20 && memcmp(k.mv_data, p, 16) == 0) {
        if (v.mv_size != 8) { r = ENGRAM_ECORRUPT; break; }
        uint64_t chunk = be64_get(v.mv_data);
        if (unindex && (r = unindex_chunk(txn, st, tok, ws, coll, chunk, &text))) break;
        store_key_t ck = key3(ws, coll, chunk);
        MDB_val ckv = skey_val(&ck);
        r = mdb_del(txn, store_dbi(st, DB_CHUNKS), &ckv, NULL);
        if (r && r != MDB_NOTFOUND) { r = store_status(r); break; }
        n_chunks++;
        r = mdb_cursor_del(c, 0);
        if (r) { r = store_status(r); break; }
        /* Deleted entries are gone: the first one at the prefix is the next. */
        k.mv_size = 16;
        k.mv_data = p;
        r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    if (r && r != MDB_NOTFOUND) { rc = r < 0 ? r : store_status(r); goto done; }

    store_key_t fk = key2(ws, doc);
    MDB_val fkv = skey_val(&fk);
    r = mdb_del(txn, store_dbi(st, DB_FILES), &fkv, NULL);
    if (r && r != MDB_NOTFOUND) { rc = store_status(r); goto done; }
    const char *hex = json_get_str(rec, "content_hash");
    if (hex && strlen(hex) == 64) {
        unsigned char h[32];
        for (int i = 0; i < 32; i++) {
            unsigned x;
            sscanf(hex + 2 * i, "%2x", &x);
            h[i] = (unsigned char)x;
        }
        store_key_t hk;
        skey_init(&hk);
        skey_u64(&hk, ws);
        skey_u64(&hk, coll);
        skey_bytes(&hk, h, 32);
        MDB_val hkv = skey_val(&hk);
        mdb_del(txn, store_dbi(st, DB_DOC_HASH), &hkv, NULL);
    }
    const char *id = json_get_str(rec, "id");
    if (id) idmap_del(txn, st, id);
    store_key_t dk = key3(ws, coll, doc);
    MDB_val dkv = skey_val(&dk);
    rc = store_status(mdb_del(txn, store_dbi(st, DB_DOCUMENTS), &dkv, NULL));
    if (rc) goto done;
    /* A pending job for it is dropped when the worker finds the document gone. */
    rc = catalog_coll_add_counts(txn, st, ws, coll, -1, -n_chunks);
done:
    buf_free(&text);
    json_free(rec);
    return rc;
}

struct doc_del_args {
    store_t *st;
    tokenizer_t *tok;
    idmap_entry_t e;
};

static int doc_del_cb(MDB_txn *txn, void *arg)
{
    struct doc_del_args *a = arg;
    return catalog_doc_delete_txn(txn, a->st, a->tok, a->e.ws, a->e.coll, a->e.id, 1);
}

int catalog_doc_delete(store_t *st, tokenizer_t *tok, uint64_t ws, const char *doc_uuid)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    struct doc_del_args a = {.st = st, .tok = tok};
    rc = catalog_resolve(txn, st, ws, doc_uuid, IDK_DOCUMENT, &a.e);
    store_read_end(st, txn);
    if (rc) return rc;
    rc = store_write(st, doc_del_cb, &a);
    if (!rc) catalog_generation_bump(ws, a.e.coll); /* after the commit: caches */
    return rc;
}

/* ---- jobs --------------------------------------------------------------- */

int catalog_jobs_pending(store_t *st, ingest_job_t **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_cursor *c;
    size_t cap = 0;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_JOBS), &c));
    if (!rc) {
        MDB_val k, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (r == 0) {
            if (k.mv_size != 8 || v.mv_size != 24) { r = ENGRAM_ECORRUPT; break; }
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                ingest_job_t *nj = eg_realloc(*jobs, cap * sizeof *nj);
                if (!nj) { r = ENGRAM_ENOMEM; break; }
                *jobs = nj;
            }
            const unsigned char *vp = v.mv_data;
            ingest_job_t *j = &(*jobs)[(*n)++];
            j->job_id = be64_get(k.mv_data);
            j->ws = be64_get(vp);
            j->coll = be64_get(vp + 8);
            j->doc = be64_get(vp + 16);
            r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    }
    store_read_end(st, txn);
    if (rc) { eg_free(*jobs); *jobs = NULL; *n = 0; }
    return rc;
}

int catalog_job_load(store_t *st, const ingest_job_t *job, char **bytes, size_t *len,
                     char content_type[128], coll_config_t *cfg)
{
    *bytes = NULL;
    *len = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *rec = NULL;
    buf_t b = BUF_INIT;
    rc = catalog_doc_get_internal(txn, st, job->ws, job->coll, job->doc, &rec);
    if (!rc) rc = catalog_coll_config(txn, st, job->ws, job->coll, cfg);
    if (!rc) {
        store_key_t fk = key2(job->ws, job->doc);
        MDB_val fkv = skey_val(&fk), v;
        rc = store_status(mdb_get(txn, store_dbi(st, DB_FILES), &fkv, &v));
        if (!rc) rc = store_decompress(v.mv_data, v.mv_size, (size_t)1 << 32, &b);
    }
    store_read_end(st, txn);
    if (!rc) {
        const char *ct = json_get_str(rec, "content_type");
        snprintf(content_type, 128, "%s", ct ? ct : "text/plain");
        *len = b.len;
        *bytes = buf_detach(&b, NULL);
        if (!*bytes) rc = ENGRAM_ENOMEM;
    }
    buf_free(&b);
    json_free(rec);
    return rc;
}

int catalog_job_info(store_t *st, const ingest_job_t *job, char content_type[128],
                     coll_config_t *cfg, uint32_t *committed, size_t *zlen)
{
    *committed = 0;
    *zlen = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *rec = NULL;
    rc = catalog_doc_get_internal(txn, st, job->ws, job->coll, job->doc, &rec);
    if (!rc) rc = catalog_coll_config(txn, st, job->ws, job->coll, cfg);
    if (!rc) {
        store_key_t fk = key2(job->ws, job->doc);
        MDB_val fkv = skey_val(&fk), v;
        rc = store_status(mdb_get(txn, store_dbi(st, DB_FILES), &fkv, &v));
        if (!rc) *zlen = v.mv_size;
    }
    store_read_end(st, txn);
    if (!rc) {
        const char *ct = json_get_str(rec, "content_type");
        const char *status = json_get_str(rec, "status");
        int64_t n = json_get_i64(rec, "chunk_count", 0);
        snprintf(content_type, 128, "%s", ct ? ct : "text/plain");
        if (status && strcmp(status, "completed") && n > 0 && n <= UINT32_MAX)
            *committed = (uint32_t)n;
    }
    json_free(rec);
    return rc;
}

int catalog_job_file_read(store_t *st, const ingest_job_t *job, size_t off, void *dst, size_t cap,
                          size_t *got)
{
    *got = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    store_key_t fk = key2(job->ws, job->doc);
    MDB_val fkv = skey_val(&fk), v;
    rc = store_status(mdb_get(txn, store_dbi(st, DB_FILES), &fkv, &v));
    if (!rc && off < v.mv_size) {
        size_t n = v.mv_size - off < cap ? v.mv_size - off : cap;
        memcpy(dst, (const char *)v.mv_data + off, n);
        *got = n;
    }
    store_read_end(st, txn);
    return rc;
}

struct rollback_args {
    store_t *st;
    tokenizer_t *tok;
    const ingest_job_t *job;
    size_t max;
    char now[32];
    uint32_t left;
};

static void rollback_edit(jw_t *w, void *ud)
{
    struct rollback_args *a = ud;
    jw_kint(w, "chunk_count", (int64_t)a->left);
    jw_kstr(w, "updated_at", a->now);
}

static int rollback_cb(MDB_txn *txn, void *arg)
{
    struct rollback_args *a = arg;
    const ingest_job_t *j = a->job;
    json_t *rec = NULL;
    int rc = catalog_doc_get_internal(txn, a->st, j->ws, j->coll, j->doc, &rec);
    if (rc) return rc;
    const char *status = json_get_str(rec, "status");
    int64_t n = json_get_i64(rec, "chunk_count", 0);
    int completed = status && !strcmp(status, "completed");
    json_free(rec);
    if (completed || n < 0 || n > UINT32_MAX) return ENGRAM_EINVAL;
    uint32_t have = (uint32_t)n, stop = have > a->max ? have - (uint32_t)a->max : 0;
    buf_t text = BUF_INIT;
    for (uint32_t i = have; i > stop && !rc; i--) {
        store_key_t dk;
        skey_init(&dk);
        skey_u64(&dk, j->ws);
        skey_u64(&dk, j->doc);
        skey_u32(&dk, i - 1);
        MDB_val dkv = skey_val(&dk), v;
        rc = mdb_get(txn, store_dbi(a->st, DB_DOC_CHUNKS), &dkv, &v);
        if (rc) { rc = store_status(rc); break; }
        if (v.mv_size != 8) { rc = ENGRAM_ECORRUPT; break; }
        uint64_t chunk = be64_get(v.mv_data);
        if ((rc = unindex_chunk(txn, a->st, a->tok, j->ws, j->coll, chunk, &text))) break;
        store_key_t ck = key3(j->ws, j->coll, chunk);
        MDB_val ckv = skey_val(&ck);
        int r = mdb_del(txn, store_dbi(a->st, DB_CHUNKS), &ckv, NULL);
        if (r && r != MDB_NOTFOUND) { rc = store_status(r); break; }
        rc = store_status(mdb_del(txn, store_dbi(a->st, DB_DOC_CHUNKS), &dkv, NULL));
    }
    buf_free(&text);
    if (rc) return rc;
    a->left = stop;
    static const char *const skip[] = {"chunk_count", "updated_at", NULL};
    rc = doc_rewrite(txn, a->st, j->ws, j->coll, j->doc, skip, rollback_edit, a, NULL);
    if (!rc) rc = catalog_coll_add_counts(txn, a->st, j->ws, j->coll, 0, -(int64_t)(have - stop));
    return rc;
}

int catalog_doc_rollback(store_t *st, tokenizer_t *tok, const ingest_job_t *job, size_t max,
                         uint32_t *left)
{
    struct rollback_args a = {.st = st, .tok = tok, .job = job, .max = max ? max : 1};
    time_format_rfc3339(time_now_ms(), a.now);
    int rc = store_write(st, rollback_cb, &a);
    if (!rc) catalog_generation_bump(job->ws, job->coll); /* after the commit: caches */
    *left = rc ? 0 : a.left;
    return rc;
}

struct progress_args {
    store_t *st;
    const ingest_job_t *job;
    const char *status, *message;
    double progress;
    char now[32];
    int done;
    int keep_job;
};

static void progress_edit(jw_t *w, void *ud)
{
    struct progress_args *a = ud;
    jw_kstr(w, "status", a->status);
    jw_kdouble(w, "progress", a->progress);
    jw_kstr(w, "updated_at", a->now);
    if (a->message) jw_kstr(w, "error_message", a->message);
    if (a->done) jw_kstr(w, "processed_at", a->now);
}

static int delete_job(MDB_txn *txn, store_t *st, uint64_t job)
{
    unsigned char jk[8];
    be64_put(jk, job);
    MDB_val jkv = {8, jk};
    int rc = mdb_del(txn, store_dbi(st, DB_JOBS), &jkv, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_status(rc);
}

static int progress_cb(MDB_txn *txn, void *arg)
{
    struct progress_args *a = arg;
    static const char *const skip[] = {"status", "progress", "updated_at", NULL};
    static const char *const skip_done[] = {"status", "progress", "updated_at", "error_message",
                                            "processed_at", NULL};
    int rc = doc_rewrite(txn, a->st, a->job->ws, a->job->coll, a->job->doc,
                         a->done ? skip_done : skip, progress_edit, a, NULL);
    if (rc == ENGRAM_ENOTFOUND && a->done) rc = 0;
    if (rc) return rc;
    return a->done && !a->keep_job ? delete_job(txn, a->st, a->job->job_id) : 0;
}

int catalog_doc_progress(store_t *st, const ingest_job_t *job, const char *status, double progress)
{
    struct progress_args a = {.st = st, .job = job, .status = status, .progress = progress};
    time_format_rfc3339(time_now_ms(), a.now);
    return store_write(st, progress_cb, &a);
}

int catalog_doc_fail_retry(store_t *st, const ingest_job_t *job, const char *message)
{
    struct progress_args a = {.st = st, .job = job, .status = "failed", .message = message,
                              .progress = 1.0, .done = 1, .keep_job = 1};
    time_format_rfc3339(time_now_ms(), a.now);
    return store_write(st, progress_cb, &a);
}

int catalog_doc_fail(store_t *st, const ingest_job_t *job, const char *message)
{
    struct progress_args a = {.st = st, .job = job, .status = "failed", .message = message,
                              .progress = 1.0, .done = 1};
    time_format_rfc3339(time_now_ms(), a.now);
    return store_write(st, progress_cb, &a);
}

/* ---- index work deferred to the end of a batch ----------------------------
 *
 * In catalog_doc_complete_batch each part commits its chunks, graph entries
 * and document record in a nested transaction of its own, but its BM25
 * postings and vectors are only noted here. Once every part has been tried,
 * those of the parts that committed are indexed in one pass per collection
 * (bm25_add_batch, hnsw_insert_batch), in the batch's transaction: each
 * term's last postings block and each vector block is then written once per
 * batch instead of once per document, which is most of a commit's cost
 * under a stream of small documents. Entries noted by a part whose nested
 * transaction is then aborted are dropped (deferred_truncate). */
typedef struct def_text {
    uint64_t ws, coll, chunk;
    const bm25_terms_t *terms;
} def_text_t;

typedef struct def_vec {
    uint64_t ws, coll, chunk;
    const float *vec;
    uint32_t dim;
} def_vec_t;

typedef struct deferred {
    def_text_t *t;
    size_t nt, capt;
    def_vec_t *v;
    size_t nv, capv;
    bm25_terms_t **owned;   /* term lists built here (chunks that came without) */
    size_t nown, capown;
} deferred_t;

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *q = eg_realloc(*p, c * size);
    if (!q) return ENGRAM_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int defer_text(deferred_t *d, tokenizer_t *tok, uint64_t ws, uint64_t coll, uint64_t chunk,
                      const chunk_in_t *c)
{
    const bm25_terms_t *terms = c->terms;
    if (!terms) {
        if (grow((void **)&d->owned, &d->capown, d->nown + 1, sizeof *d->owned)) return ENGRAM_ENOMEM;
        bm25_terms_t *own = eg_malloc(sizeof *own);
        if (!own) return ENGRAM_ENOMEM;
        int rc = bm25_terms_build(own, tok, c->text, c->len);
        if (rc) { bm25_terms_free(own); eg_free(own); return rc; }
        d->owned[d->nown++] = own;
        terms = own;
    }
    if (grow((void **)&d->t, &d->capt, d->nt + 1, sizeof *d->t)) return ENGRAM_ENOMEM;
    d->t[d->nt++] = (def_text_t){ws, coll, chunk, terms};
    return 0;
}

static int defer_vec(deferred_t *d, uint64_t ws, uint64_t coll, uint64_t chunk, const float *vec,
                     uint32_t dim)
{
    if (grow((void **)&d->v, &d->capv, d->nv + 1, sizeof *d->v)) return ENGRAM_ENOMEM;
    d->v[d->nv++] = (def_vec_t){ws, coll, chunk, vec, dim};
    return 0;
}

static void deferred_truncate(deferred_t *d, size_t nt, size_t nv)
{
    d->nt = nt;
    d->nv = nv;
}

static void deferred_free(deferred_t *d)
{
    for (size_t i = 0; i < d->nown; i++) {
        bm25_terms_free(d->owned[i]);
        eg_free(d->owned[i]);
    }
    eg_free(d->owned);
    eg_free(d->t);
    eg_free(d->v);
    memset(d, 0, sizeof *d);
}

/* Entries are noted in increasing chunk order; sorting by collection keeps
 * that order within each (chunk ids are global and unique). */
static int def_text_cmp(const void *a, const void *b)
{
    const def_text_t *x = a, *y = b;
    if (x->ws != y->ws) return x->ws < y->ws ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int def_vec_cmp(const void *a, const void *b)
{
    const def_vec_t *x = a, *y = b;
    if (x->ws != y->ws) return x->ws < y->ws ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int deferred_run_text(MDB_txn *txn, store_t *st, deferred_t *d)
{
    if (d->nt == 0) return 0;
    qsort(d->t, d->nt, sizeof *d->t, def_text_cmp);
    bm25_chunk_t *c = eg_malloc(d->nt * sizeof *c);
    if (!c) return ENGRAM_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < d->nt && !rc;) {
        size_t j = i;
        for (; j < d->nt && d->t[j].ws == d->t[i].ws && d->t[j].coll == d->t[i].coll; j++)
            c[j - i] = (bm25_chunk_t){d->t[j].chunk, d->t[j].terms};
        rc = bm25_add_batch(txn, st, d->t[i].ws, d->t[i].coll, c, j - i);
        i = j;
    }
    eg_free(c);
    return rc;
}

static int deferred_run_vectors(MDB_txn *txn, store_t *st, deferred_t *d)
{
    if (d->nv == 0) return 0;
    qsort(d->v, d->nv, sizeof *d->v, def_vec_cmp);
    int rc = 0;
    for (size_t i = 0; i < d->nv && !rc;) {
        size_t j = i;
        uint32_t dim = d->v[i].dim;
        while (j < d->nv && d->v[j].ws == d->v[i].ws && d->v[j].coll == d->v[i].coll) {
            if (d->v[j].dim != dim) return ENGRAM_EINVAL; /* ensure_vector_index refused it */
            j++;
        }
        size_t n = j - i;
        uint64_t *ids = eg_malloc(n * sizeof *ids);
        float *vecs = eg_malloc(n * (size_t)dim * sizeof *vecs);
        if (!ids || !vecs) rc = ENGRAM_ENOMEM;
        for (size_t k = 0; !rc && k < n; k++) {
            ids[k] = d->v[i + k].chunk;
            memcpy(vecs + k * dim, d->v[i + k].vec, dim * sizeof *vecs);
        }
        if (!rc) rc = hnsw_insert_batch(txn, st, d->v[i].ws, d->v[i].coll, ids, vecs, n, dim);
        eg_free(ids);
        eg_free(vecs);
        i = j;
    }
    return rc;
}

struct complete_args {
    store_t *st;
    tokenizer_t *tok;
    deferred_t *defer;  /* NULL: index at once (catalog_doc_complete) */
    const ingest_job_t *job;
    const chunk_in_t *chunks;
    size_t n;
    uint32_t first;   /* document index of chunks[0] */
    int last;         /* the document's last part */
    uint32_t dim;
    uint64_t total_tokens;
    char now[32];
    int gone;         /* out: the document was deleted or is already complete */
};

/* The collection's vector index, created with the first vectors. */
static int ensure_vector_index(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint32_t dim)
{
    hnsw_params_t p;
    int rc = hnsw_params_get(txn, st, ws, coll, &p);
    if (rc == ENGRAM_ENOTFOUND) {
        hnsw_params_t np = {.dim = dim, .metric = HNSW_COSINE, .M = 16, .ef_construction = 200};
        return hnsw_create(txn, st, ws, coll, &np);
    }
    if (rc) return rc;
    return p.dim == dim ? 0 : ENGRAM_EINVAL;
}

static void complete_edit(jw_t *w, void *ud)
{
    struct complete_args *a = ud;
    jw_kstr(w, "status", "completed");
    jw_kdouble(w, "progress", 1.0);
    jw_kint(w, "chunk_count", (int64_t)a->first + (int64_t)a->n);
    jw_kint(w, "total_tokens", (int64_t)a->total_tokens);
    jw_knull(w, "error_message");
    jw_kstr(w, "updated_at", a->now);
    jw_kstr(w, "processed_at", a->now);
}

/* A part that is not the last: still processing, chunk_count = the chunks
 * committed so far (the cursor a restart resumes from). */
static void part_edit(jw_t *w, void *ud)
{
    struct complete_args *a = ud;
    jw_kstr(w, "status", "processing");
    jw_kint(w, "chunk_count", (int64_t)a->first + (int64_t)a->n);
    jw_kstr(w, "updated_at", a->now);
}

static int complete_cb(MDB_txn *txn, void *arg)
{
    struct complete_args *a = arg;
    const ingest_job_t *j = a->job;
    json_t *rec = NULL;
    a->gone = 0;
    int rc = catalog_doc_get_internal(txn, a->st, j->ws, j->coll, j->doc, &rec);
    if (rc == ENGRAM_ENOTFOUND) {
        a->gone = 1;
        return delete_job(txn, a->st, j->job_id);
    }
    if (rc) return rc;
    const char *status = json_get_str(rec, "status");
    int already = status && strcmp(status, "completed") == 0;
    int64_t committed = json_get_i64(rec, "chunk_count", 0);
    json_free(rec);
    if (already) {
        a->gone = 1;
        return delete_job(txn, a->st, j->job_id);
    }
    /* Parts commit in order: this one must continue exactly where the
     * committed ones end. */
    if (committed != (int64_t)a->first) return ENGRAM_EEXIST;
    int vectors = a->n && a->chunks[0].vec && a->dim;
    if (vectors && (rc = ensure_vector_index(txn, a->st, j->ws, j->coll, a->dim))) return rc;
    /* Vectors go into the index in one batch after the loop; they must be
     * one contiguous array (the pipeline's are: copy otherwise). */
    uint64_t *ids = vectors ? eg_malloc(a->n * sizeof *ids) : NULL;
    float *packed = NULL;
    const float *vecs = vectors ? a->chunks[0].vec : NULL;
    if (vectors && !ids) return ENGRAM_ENOMEM;
    for (size_t i = 0; vectors && i < a->n; i++) {
        if (a->chunks[i].vec == a->chunks[0].vec + i * a->dim) continue;
        packed = eg_malloc(a->n * (size_t)a->dim * sizeof *packed);
        if (!packed) { eg_free(ids); return ENGRAM_ENOMEM; }
        for (size_t r = 0; r < a->n; r++)
            memcpy(packed + r * a->dim, a->chunks[r].vec, a->dim * sizeof *packed);
        vecs = packed;
        break;
    }
    for (size_t i = 0; i < a->n; i++) {
        uint64_t chunk;
        if ((rc = store_next_id(txn, a->st, "chunk", &chunk))) break;
        if ((rc = put_chunk(txn, a->st, j->ws, j->coll, j->doc, chunk, a->first + (uint32_t)i,
                            &a->chunks[i])))
            break;
        if (a->defer) rc = defer_text(a->defer, a->tok, j->ws, j->coll, chunk, &a->chunks[i]);
        else rc = bm25_add(txn, a->st, a->tok, j->ws, j->coll, chunk, a->chunks[i].text, a->chunks[i].len);
        if (rc) break;
        if (ids) ids[i] = chunk;
        if (vectors && a->defer &&
            (rc = defer_vec(a->defer, j->ws, j->coll, chunk, a->chunks[i].vec, a->dim)))
            break;
        if (a->chunks[i].graph &&
            (rc = graph_add_chunk(txn, a->st, j->ws, j->coll, chunk, a->chunks[i].graph)))
            break;
    }
    if (!rc && vectors && !a->defer) rc = hnsw_insert_batch(txn, a->st, j->ws, j->coll, ids, vecs, a->n, a->dim);
    eg_free(ids);
    eg_free(packed);
    if (rc) return rc;
    static const char *const skip[] = {"status", "progress", "chunk_count", "total_tokens",
                                       "error_message", "updated_at", "processed_at", NULL};
    static const char *const skip_part[] = {"status", "chunk_count", "updated_at", NULL};
    rc = doc_rewrite(txn, a->st, j->ws, j->coll, j->doc, a->last ? skip : skip_part,
                     a->last ? complete_edit : part_edit, a, NULL);
    if (rc) return rc;
    rc = catalog_coll_add_counts(txn, a->st, j->ws, j->coll, 0, (int64_t)a->n);
    if (rc) return rc;
    return a->last ? delete_job(txn, a->st, j->job_id) : 0;
}

struct complete_batch_args {
    store_t *st;
    tokenizer_t *tok;
    doc_done_t *docs;
    size_t n;
    char now[32];
};

/* Each document in a nested transaction of its own: one that fails is
 * rolled back alone; the rest commit together (one fsync for all), their
 * postings and vectors indexed at the end in one pass (deferred_t). If that
 * pass fails the whole batch fails; catalog_doc_complete_batch then tries
 * each document alone. */
static int complete_batch_cb(MDB_txn *txn, void *arg)
{
    struct complete_batch_args *b = arg;
    deferred_t def = {0};
    int rc = 0;
    for (size_t i = 0; i < b->n; i++) {
        doc_done_t *d = &b->docs[i];
        struct complete_args a = {.st = b->st, .tok = b->tok, .defer = &def, .job = &d->job,
                                  .chunks = d->chunks, .n = d->n, .first = d->first,
                                  .last = !d->more, .dim = d->dim, .total_tokens = d->total_tokens};
        memcpy(a.now, b->now, sizeof a.now);
        size_t nt = def.nt, nv = def.nv;
        MDB_txn *child;
        rc = mdb_txn_begin(store_env(b->st), txn, 0, &child);
        if (rc) { rc = store_status(rc); goto out; }
        rc = complete_cb(child, &a);
        if (rc == MDB_MAP_FULL || rc == ENGRAM_EFULL) {
            mdb_txn_abort(child);
            goto out; /* the writer grows the map and runs the whole batch again */
        }
        if (rc) {
            mdb_txn_abort(child);
        } else {
            rc = store_status(mdb_txn_commit(child));
        }
        if (rc) deferred_truncate(&def, nt, nv);
        d->status = rc;
        d->gone = !rc && a.gone;
    }
    rc = deferred_run_text(txn, b->st, &def);
    if (!rc) rc = deferred_run_vectors(txn, b->st, &def);
out:
    deferred_free(&def);
    return rc;
}

int catalog_doc_complete_batch(store_t *st, tokenizer_t *tok, doc_done_t *docs, size_t n)
{
    struct complete_batch_args b = {.st = st, .tok = tok, .docs = docs, .n = n};
    time_format_rfc3339(time_now_ms(), b.now);
    for (size_t i = 0; i < n; i++) docs[i].status = ENGRAM_EAGAIN;
    int rc = store_write(st, complete_batch_cb, &b);
    if (rc && n > 1 && rc != ENGRAM_EFULL && rc != ENGRAM_ECLOSED) {
        /* The shared indexing pass failed: each document alone, so one
         * that cannot be indexed does not fail the others. */
        int all = 0;
        for (size_t i = 0; i < n; i++) {
            int one = catalog_doc_complete_batch(st, tok, &docs[i], 1);
            if (one) all = one;
        }
        return all;
    }
    for (size_t i = 0; i < n; i++) {
        if (rc) docs[i].status = rc;
        else if (!docs[i].status) catalog_generation_bump(docs[i].job.ws, docs[i].job.coll);
    }
    return rc;
}

int catalog_doc_complete(store_t *st, tokenizer_t *tok, const ingest_job_t *job,
                         const chunk_in_t *chunks, size_t n, uint32_t dim, uint64_t total_tokens)
{
    struct complete_args a = {.st = st, .tok = tok, .job = job, .chunks = chunks, .n = n,
                              .last = 1, .dim = dim, .total_tokens = total_tokens};
    time_format_rfc3339(time_now_ms(), a.now);
    int rc = store_write(st, complete_cb, &a);
    if (!rc) catalog_generation_bump(job->ws, job->coll); /* after the commit: caches */
    return rc;
}
