/*
 * collections.c - collection records and their name index (see catalog.h).
 *
 * DB_COLLECTIONS ws(8) coll(8) -> record; DB_COLL_NAMES ws(8) name -> coll(8).
 * A record: {"id","cid","user_id","name","description","metadata","config",
 * "document_count","chunk_count","created_at","updated_at"}; the counts are
 * kept current by the document transactions (catalog_coll_add_counts).
 */
#include <stdio.h>

#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"
#include "index/bm25.h"
#include "index/graph.h"
#include "index/hnsw.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/timeutil.h"

static store_key_t coll_key(uint64_t ws, uint64_t coll)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    skey_u64(&k, coll);
    return k;
}

int catalog_coll_record(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, json_t **out)
{
    store_key_t k = coll_key(ws, coll);
    MDB_val kv = skey_val(&k);
    return record_get(txn, store_dbi(st, DB_COLLECTIONS), &kv, out);
}

/* Writes the record public fields (everything but "cid"). */
void catalog_write_coll(jw_t *w, const json_t *rec)
{
    static const char *const skip[] = {"cid", NULL};
    jw_obj_begin(w);
    record_copy_members(w, rec, skip);
    jw_obj_end(w);
}

static void write_config(jw_t *w, const coll_config_t *c)
{
    jw_obj_begin(w);
    jw_kint(w, "chunk_size", c->chunk_size);
    jw_kint(w, "chunk_overlap", c->chunk_overlap);
    jw_kstr(w, "embedder", c->embedder);
    jw_kstr(w, "embedding_model", c->embedder_id);
    jw_kbool(w, "graph", c->graph);
    jw_obj_end(w);
}

int catalog_coll_config(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, coll_config_t *cfg)
{
    json_t *rec = NULL;
    int rc = catalog_coll_record(txn, st, ws, coll, &rec);
    if (rc) return rc;
    const json_t *c = json_get(rec, "config");
    *cfg = COLL_CONFIG_DEFAULT;
    cfg->chunk_size = (uint32_t)json_get_i64(c, "chunk_size", 512);
    cfg->chunk_overlap = (uint32_t)json_get_i64(c, "chunk_overlap", 128);
    const char *e = json_get_str(c, "embedder");
    if (e) snprintf(cfg->embedder, sizeof cfg->embedder, "%s", e);
    const char *id = json_get_str(c, "embedding_model");
    if (id) snprintf(cfg->embedder_id, sizeof cfg->embedder_id, "%s", id);
    cfg->graph = json_get_bool(c, "graph", 1);
    json_free(rec);
    if (cfg->chunk_size == 0 || cfg->chunk_overlap >= cfg->chunk_size) return ENGRAM_ECORRUPT;
    return 0;
}

struct coll_new_args {
    store_t *st;
    uint64_t ws;
    const char *user_uuid, *name, *description;
    const json_t *metadata;
    const coll_config_t *cfg;
    buf_t out;
};

static int coll_new_cb(MDB_txn *txn, void *arg)
{
    struct coll_new_args *a = arg;
    store_key_t nk;
    skey_init(&nk);
    skey_u64(&nk, a->ws);
    skey_bytes(&nk, a->name, strlen(a->name));
    if (nk.overflow) return ENGRAM_EINVAL;
    MDB_val nkv = skey_val(&nk), v;
    int rc = mdb_get(txn, store_dbi(a->st, DB_COLL_NAMES), &nkv, &v);
    if (rc == 0) return ENGRAM_EEXIST;
    if (rc != MDB_NOTFOUND) return store_status(rc);
    uint64_t coll;
    char uuid[37], now[32];
    rc = store_next_id(txn, a->st, "collection", &coll);
    if (rc) return rc;
    rc = idmap_new(txn, a->st, IDK_COLLECTION, a->ws, coll, coll, uuid);
    if (rc) return rc;
    time_format_rfc3339(time_now_ms(), now);
    buf_reset(&a->out);
    jw_t w;
    jw_init(&w, &a->out);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", uuid);
    jw_kint(&w, "cid", (int64_t)coll);
    jw_kstr(&w, "user_id", a->user_uuid);
    jw_kstr(&w, "name", a->name);
    jw_kstr(&w, "description", a->description);
    jw_key(&w, "metadata");
    if (a->metadata) jw_json(&w, a->metadata); else jw_raw(&w, "{}", 2);
    jw_key(&w, "config");
    write_config(&w, a->cfg);
    jw_kint(&w, "document_count", 0);
    jw_kint(&w, "chunk_count", 0);
    jw_kstr(&w, "created_at", now);
    jw_kstr(&w, "updated_at", now);
    jw_obj_end(&w);
    store_key_t k = coll_key(a->ws, coll);
    MDB_val kv = skey_val(&k);
    rc = record_put(txn, store_dbi(a->st, DB_COLLECTIONS), &kv, &a->out);
    if (rc) return rc;
    unsigned char idb[8];
    be64_put(idb, coll);
    MDB_val iv = {8, idb};
    return store_status(mdb_put(txn, store_dbi(a->st, DB_COLL_NAMES), &nkv, &iv, 0));
}

static int coll_public(const buf_t *b, json_t **out)
{
    json_t *rec = NULL;
    int rc = record_dom(b, &rec);
    if (rc) return rc;
    buf_t o = BUF_INIT;
    jw_t w;
    jw_init(&w, &o);
    catalog_write_coll(&w, rec);
    json_free(rec);
    rc = record_dom(&o, out);
    buf_free(&o);
    return rc;
}

int catalog_coll_create(store_t *st, uint64_t ws, const char *user_uuid, const char *name,
                        const char *description, const json_t *metadata,
                        const coll_config_t *cfg, json_t **out)
{
    struct coll_new_args a = {.st = st, .ws = ws, .user_uuid = user_uuid, .name = name,
                              .description = description, .metadata = metadata, .cfg = cfg};
    *out = NULL;
    int rc = store_write(st, coll_new_cb, &a);
    if (!rc) catalog_generation_bump(ws, 0); /* after the commit: caches (generation.c) */
    if (!rc) rc = coll_public(&a.out, out);
    buf_free(&a.out);
    return rc;
}

int catalog_resolve(MDB_txn *txn, store_t *st, uint64_t ws, const char *uuid, int kind,
                    idmap_entry_t *e)
{
    int rc = idmap_get(txn, st, uuid, kind, e);
    if (rc) return rc;
    return e->ws == ws ? 0 : ENGRAM_ENOTFOUND;
}

int catalog_coll_get(store_t *st, uint64_t ws, const char *coll_uuid, json_t **out, uint64_t *coll_id)
{
    MDB_txn *txn;
    *out = NULL;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    json_t *rec = NULL;
    rc = catalog_resolve(txn, st, ws, coll_uuid, IDK_COLLECTION, &e);
    if (!rc) rc = catalog_coll_record(txn, st, ws, e.coll, &rec);
    store_read_end(st, txn);
    if (rc) return rc;
    if (coll_id) *coll_id = e.coll;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    catalog_write_coll(&w, rec);
    json_free(rec);
    rc = record_dom(&b, out);
    buf_free(&b);
    return rc;
}

int catalog_coll_ids(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t **ids, size_t *n)
{
    MDB_cursor *c;
    *ids = NULL;
    *n = 0;
    size_t cap = 0;
    int rc = mdb_cursor_open(txn, store_dbi(st, DB_COLLECTIONS), &c);
    if (rc) return store_status(rc);
    unsigned char p[8];
    be64_put(p, ws);
    MDB_val k = {8, p}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 16 && memcmp(k.mv_data, p, 8) == 0) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *ni = eg_realloc(*ids, cap * sizeof *ni);
            if (!ni) { mdb_cursor_close(c); eg_free(*ids); *ids = NULL; return ENGRAM_ENOMEM; }
            *ids = ni;
        }
        (*ids)[(*n)++] = be64_get((const unsigned char *)k.mv_data + 8);
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_status(rc);
}

int catalog_coll_list(store_t *st, uint64_t ws, size_t limit, size_t offset, json_t **out,
                      size_t *total)
{
    MDB_txn *txn;
    *out = NULL;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    MDB_cursor *c;
    size_t i = 0;
    rc = mdb_cursor_open(txn, store_dbi(st, DB_COLLECTIONS), &c);
    if (!rc) {
        unsigned char p[8];
        be64_put(p, ws);
        MDB_val k = {8, p}, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (r == 0 && k.mv_size == 16 && memcmp(k.mv_data, p, 8) == 0) {
            if (i >= offset && i < offset + limit) {
                json_t *rec = NULL;
                r = record_decode(v.mv_data, v.mv_size, &rec);
                if (r) break;
                catalog_write_coll(&w, rec);
                json_free(rec);
            }
            i++;
            r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    } else {
        rc = store_status(rc);
    }
    store_read_end(st, txn);
    jw_arr_end(&w);
    *total = i;
    if (!rc) rc = record_dom(&b, out);
    buf_free(&b);
    return rc;
}

struct coll_patch_args {
    store_t *st;
    uint64_t ws, coll;
    const char *name, *description;
    const json_t *metadata;
    buf_t out;
};

static int coll_patch_cb(MDB_txn *txn, void *arg)
{
    struct coll_patch_args *a = arg;
    json_t *rec = NULL;
    int rc = catalog_coll_record(txn, a->st, a->ws, a->coll, &rec);
    if (rc) return rc;
    const char *old_name = json_get_str(rec, "name");
    if (a->name && old_name && strcmp(a->name, old_name) != 0) {
        store_key_t nk;
        skey_init(&nk);
        skey_u64(&nk, a->ws);
        skey_bytes(&nk, a->name, strlen(a->name));
        MDB_val nkv = skey_val(&nk), v;
        if (nk.overflow) { rc = ENGRAM_EINVAL; goto done; }
        rc = mdb_get(txn, store_dbi(a->st, DB_COLL_NAMES), &nkv, &v);
        if (rc == 0) { rc = ENGRAM_EEXIST; goto done; }
        unsigned char idb[8];
        be64_put(idb, a->coll);
        MDB_val iv = {8, idb};
        rc = store_status(mdb_put(txn, store_dbi(a->st, DB_COLL_NAMES), &nkv, &iv, 0));
        if (rc) goto done;
        store_key_t ok;
        skey_init(&ok);
        skey_u64(&ok, a->ws);
        skey_bytes(&ok, old_name, strlen(old_name));
        MDB_val okv = skey_val(&ok);
        mdb_del(txn, store_dbi(a->st, DB_COLL_NAMES), &okv, NULL);
    }
    char now[32];
    time_format_rfc3339(time_now_ms(), now);
    static const char *const skip[] = {"name", "description", "metadata", "updated_at", NULL};
    buf_reset(&a->out);
    jw_t w;
    jw_init(&w, &a->out);
    jw_obj_begin(&w);
    record_copy_members(&w, rec, skip);
    jw_kstr(&w, "name", a->name ? a->name : old_name);
    jw_key(&w, "description");
    if (a->description) jw_str(&w, a->description); else jw_json(&w, json_get(rec, "description"));
    jw_key(&w, "metadata");
    jw_json(&w, a->metadata ? a->metadata : json_get(rec, "metadata"));
    jw_kstr(&w, "updated_at", now);
    jw_obj_end(&w);
    store_key_t k = coll_key(a->ws, a->coll);
    MDB_val kv = skey_val(&k);
    rc = record_put(txn, store_dbi(a->st, DB_COLLECTIONS), &kv, &a->out);
done:
    json_free(rec);
    return rc;
}

int catalog_coll_patch(store_t *st, uint64_t ws, const char *coll_uuid, const char *name,
                       const char *description, const json_t *metadata, json_t **out)
{
    *out = NULL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    rc = catalog_resolve(txn, st, ws, coll_uuid, IDK_COLLECTION, &e);
    store_read_end(st, txn);
    if (rc) return rc;
    struct coll_patch_args a = {.st = st, .ws = ws, .coll = e.coll, .name = name,
                                .description = description, .metadata = metadata};
    rc = store_write(st, coll_patch_cb, &a);
    if (!rc) catalog_generation_bump(ws, e.coll); /* after the commit: caches */
    if (!rc) rc = coll_public(&a.out, out);
    buf_free(&a.out);
    return rc;
}

int catalog_coll_add_counts(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, int64_t docs,
                            int64_t chunks)
{
    json_t *rec = NULL;
    int rc = catalog_coll_record(txn, st, ws, coll, &rec);
    if (rc) return rc;
    int64_t d = json_get_i64(rec, "document_count", 0) + docs;
    int64_t c = json_get_i64(rec, "chunk_count", 0) + chunks;
    static const char *const skip[] = {"document_count", "chunk_count", NULL};
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    record_copy_members(&w, rec, skip);
    jw_kint(&w, "document_count", d < 0 ? 0 : d);
    jw_kint(&w, "chunk_count", c < 0 ? 0 : c);
    jw_obj_end(&w);
    store_key_t k = coll_key(ws, coll);
    MDB_val kv = skey_val(&k);
    rc = record_put(txn, store_dbi(st, DB_COLLECTIONS), &kv, &b);
    buf_free(&b);
    json_free(rec);
    return rc;
}

struct coll_del_args {
    store_t *st;
    tokenizer_t *tok;
    uint64_t ws, coll;
};

static int coll_del_cb(MDB_txn *txn, void *arg)
{
    struct coll_del_args *a = arg;
    json_t *rec = NULL;
    int rc = catalog_coll_record(txn, a->st, a->ws, a->coll, &rec);
    if (rc) return rc;
    /* Every document first (files, chunks, hashes, ids, jobs)... */
    unsigned char p[16];
    be64_put(p, a->ws);
    be64_put(p + 8, a->coll);
    for (;;) {
        MDB_cursor *c;
        rc = mdb_cursor_open(txn, store_dbi(a->st, DB_DOCUMENTS), &c);
        if (rc) { rc = store_status(rc); goto done; }
        MDB_val k = {16, p}, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        uint64_t doc = 0;
        int found = r == 0 && k.mv_size == 24 && memcmp(k.mv_data, p, 16) == 0;
        if (found) doc = be64_get((const unsigned char *)k.mv_data + 16);
        mdb_cursor_close(c);
        if (r && r != MDB_NOTFOUND) { rc = store_status(r); goto done; }
        if (!found) break;
        /* Postings go with bm25_drop below: skip per-chunk removal. */
        rc = catalog_doc_delete_txn(txn, a->st, NULL, a->ws, a->coll, doc, 0);
        if (rc) goto done;
    }
    /* ...then the whole BM25 and vector indexes, the name and the record. */
    rc = bm25_drop(txn, a->st, a->ws, a->coll);
    if (rc) goto done;
    rc = hnsw_drop(txn, a->st, a->ws, a->coll);
    if (rc == ENGRAM_ENOTFOUND) rc = 0;
    if (!rc) rc = graph_drop(txn, a->st, a->ws, a->coll);
    if (rc) goto done;
    const char *name = json_get_str(rec, "name");
    if (name) {
        store_key_t nk;
        skey_init(&nk);
        skey_u64(&nk, a->ws);
        skey_bytes(&nk, name, strlen(name));
        MDB_val nkv = skey_val(&nk);
        mdb_del(txn, store_dbi(a->st, DB_COLL_NAMES), &nkv, NULL);
    }
    const char *id = json_get_str(rec, "id");
    if (id) idmap_del(txn, a->st, id);
    store_key_t k = coll_key(a->ws, a->coll);
    MDB_val kv = skey_val(&k);
    rc = store_status(mdb_del(txn, store_dbi(a->st, DB_COLLECTIONS), &kv, NULL));
done:
    json_free(rec);
    return rc;
}

int catalog_coll_delete(store_t *st, tokenizer_t *tok, uint64_t ws, const char *coll_uuid)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    idmap_entry_t e;
    rc = catalog_resolve(txn, st, ws, coll_uuid, IDK_COLLECTION, &e);
    store_read_end(st, txn);
    if (rc) return rc;
    struct coll_del_args a = {st, tok, ws, e.coll};
    rc = store_write(st, coll_del_cb, &a);
    if (!rc) catalog_generation_bump(ws, e.coll); /* after the commit: caches */
    return rc;
}
