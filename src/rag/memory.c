/*
 * memory.c - memories: records, the weighted search, access counts (see
 * memory.h for the layout and the ranking).
 *
 * Search reads the caller's candidate memories out of one short read
 * transaction (text, reliability, counts, times, the record), scores them
 * with no transaction open, and then counts the returned ones as accessed
 * in one write. A memory deleted between the read and the write is simply
 * not counted. Records are rewritten whole (store/record.h), keeping any
 * member this version does not know.
 */
#include "rag/memory.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rag/extractive.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/timeutil.h"

static const char *const type_names[MEMORY__TYPES] = {"profile", "semantic", "episodic", "procedural"};
const char *const memory_signal_names[MSIG__COUNT] = {"keyword", "vector", "reliability", "recency",
                                                      "frequency"};
const double memory_default_weights[MSIG__COUNT] = {0.35, 0.25, 0.20, 0.15, 0.05};

int memory_type_parse(const char *s)
{
    for (int i = 0; s && i < MEMORY__TYPES; i++)
        if (!strcmp(s, type_names[i])) return i;
    return -1;
}

const char *memory_type_name(int type)
{
    return type >= 0 && type < MEMORY__TYPES ? type_names[type] : "semantic";
}

static store_key_t mem_key(uint64_t ws, uint64_t id)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, ws);
    skey_u64(&k, id);
    return k;
}

static const char *const internal_fields[] = {"mid", "user_id", "updated_ms", "accessed_ms", NULL};

/* The API object of a record. */
static int public_dom(const json_t *rec, json_t **out)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    record_copy_members(&w, rec, internal_fields);
    jw_obj_end(&w);
    int rc = record_dom(&b, out);
    buf_free(&b);
    return rc;
}

/* The caller's memory record in txn. */
static int find_in(MDB_txn *txn, store_t *st, uint64_t ws, const char *user_uuid, const char *uuid,
                   uint64_t *id, json_t **rec)
{
    idmap_entry_t e;
    *rec = NULL;
    int rc = idmap_get(txn, st, uuid, IDK_MEMORY, &e);
    if (rc) return rc;
    if (e.ws != ws) return ENGRAM_ENOTFOUND;
    store_key_t k = mem_key(ws, e.id);
    MDB_val kv = skey_val(&k);
    rc = record_get(txn, store_dbi(st, DB_MEMORIES), &kv, rec);
    if (rc) return rc;
    const char *owner = json_get_str(*rec, "user_id");
    if (!owner || strcmp(owner, user_uuid)) {
        rc = owner ? ENGRAM_ENOTFOUND : ENGRAM_ECORRUPT;
        json_free(*rec);
        *rec = NULL;
        return rc;
    }
    *id = e.id;
    return 0;
}

/* ---- create / patch / delete ---------------------------------------- */

struct mem_write {
    store_t *st;
    uint64_t ws;
    const char *user_uuid, *uuid;
    int type;
    const char *content;
    const double *reliability;
    double rel_value;
    const json_t *metadata;
    buf_t out;               /* the new record */
};

static int create_cb(MDB_txn *txn, void *arg)
{
    struct mem_write *a = arg;
    uint64_t id;
    char uuid[37], now[32];
    int64_t ms = time_now_ms();
    int rc = store_next_id(txn, a->st, "memory", &id);
    if (rc) return rc;
    rc = idmap_new(txn, a->st, IDK_MEMORY, a->ws, 0, id, uuid);
    if (rc) return rc;
    time_format_rfc3339(ms, now);
    buf_reset(&a->out);
    jw_t w;
    jw_init(&w, &a->out);
    jw_obj_begin(&w);
    jw_kstr(&w, "id", uuid);
    jw_kint(&w, "mid", (int64_t)id);
    jw_kstr(&w, "user_id", a->user_uuid);
    jw_kstr(&w, "type", memory_type_name(a->type));
    jw_kstr(&w, "content", a->content);
    jw_kdouble(&w, "reliability", a->rel_value);
    jw_kint(&w, "access_count", 0);
    jw_key(&w, "metadata");
    if (a->metadata) jw_json(&w, a->metadata); else jw_raw(&w, "{}", 2);
    jw_kstr(&w, "created_at", now);
    jw_kstr(&w, "updated_at", now);
    jw_knull(&w, "last_accessed_at");
    jw_kint(&w, "updated_ms", ms);
    jw_kint(&w, "accessed_ms", 0);
    jw_obj_end(&w);
    if (a->out.err) return a->out.err;
    store_key_t k = mem_key(a->ws, id);
    MDB_val kv = skey_val(&k);
    return record_put(txn, store_dbi(a->st, DB_MEMORIES), &kv, &a->out);
}

static int finish_write(struct mem_write *a, int rc, json_t **out)
{
    json_t *rec = NULL;
    if (!rc) rc = record_dom(&a->out, &rec);
    if (!rc) rc = public_dom(rec, out);
    json_free(rec);
    buf_free(&a->out);
    return rc;
}

int memory_create(store_t *st, uint64_t ws, const char *user_uuid, int type, const char *content,
                  double reliability, const json_t *metadata, json_t **out)
{
    *out = NULL;
    if (type < 0 || type >= MEMORY__TYPES || !content || !(reliability >= 0 && reliability <= 1))
        return ENGRAM_EINVAL;
    struct mem_write a = {.st = st, .ws = ws, .user_uuid = user_uuid, .type = type,
                          .content = content, .rel_value = reliability, .metadata = metadata};
    return finish_write(&a, store_write(st, create_cb, &a), out);
}

static int patch_cb(MDB_txn *txn, void *arg)
{
    struct mem_write *a = arg;
    uint64_t id;
    json_t *rec = NULL;
    int rc = find_in(txn, a->st, a->ws, a->user_uuid, a->uuid, &id, &rec);
    if (rc) return rc;
    int64_t ms = time_now_ms();
    char now[32];
    time_format_rfc3339(ms, now);
    static const char *const skip[] = {"type", "content", "reliability", "metadata", "updated_at",
                                       "updated_ms", NULL};
    buf_reset(&a->out);
    jw_t w;
    jw_init(&w, &a->out);
    jw_obj_begin(&w);
    record_copy_members(&w, rec, skip);
    jw_kstr(&w, "type", a->type >= 0 ? memory_type_name(a->type) : json_get_str(rec, "type"));
    jw_kstr(&w, "content", a->content ? a->content : json_get_str(rec, "content"));
    double rel = MEMORY_RELIABILITY_DEFAULT;
    json_get_double(rec, "reliability", &rel);
    jw_kdouble(&w, "reliability", a->reliability ? *a->reliability : rel);
    jw_key(&w, "metadata");
    const json_t *meta = a->metadata ? a->metadata : json_get(rec, "metadata");
    if (meta) jw_json(&w, meta); else jw_raw(&w, "{}", 2);
    jw_kstr(&w, "updated_at", now);
    jw_kint(&w, "updated_ms", ms);
    jw_obj_end(&w);
    json_free(rec);
    if (a->out.err) return a->out.err;
    store_key_t k = mem_key(a->ws, id);
    MDB_val kv = skey_val(&k);
    return record_put(txn, store_dbi(a->st, DB_MEMORIES), &kv, &a->out);
}

int memory_patch(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid, int type,
                 const char *content, const double *reliability, const json_t *metadata,
                 json_t **out)
{
    *out = NULL;
    if (type >= MEMORY__TYPES || (reliability && !(*reliability >= 0 && *reliability <= 1)))
        return ENGRAM_EINVAL;
    struct mem_write a = {.st = st, .ws = ws, .user_uuid = user_uuid, .uuid = uuid, .type = type,
                          .content = content, .reliability = reliability, .metadata = metadata};
    return finish_write(&a, store_write(st, patch_cb, &a), out);
}

static int delete_cb(MDB_txn *txn, void *arg)
{
    struct mem_write *a = arg;
    uint64_t id;
    json_t *rec = NULL;
    int rc = find_in(txn, a->st, a->ws, a->user_uuid, a->uuid, &id, &rec);
    json_free(rec);
    if (rc) return rc;
    store_key_t k = mem_key(a->ws, id);
    MDB_val kv = skey_val(&k);
    rc = store_status(mdb_del(txn, store_dbi(a->st, DB_MEMORIES), &kv, NULL));
    return rc ? rc : idmap_del(txn, a->st, a->uuid);
}

int memory_delete(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid)
{
    struct mem_write a = {.st = st, .ws = ws, .user_uuid = user_uuid, .uuid = uuid};
    return store_write(st, delete_cb, &a);
}

int memory_get(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid, json_t **out)
{
    *out = NULL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    uint64_t id;
    json_t *rec = NULL;
    rc = find_in(txn, st, ws, user_uuid, uuid, &id, &rec);
    store_read_end(st, txn);
    if (!rc) rc = public_dom(rec, out);
    json_free(rec);
    return rc;
}

/* ---- scans ----------------------------------------------------------- */

typedef int (*scan_fn)(uint64_t id, json_t *rec, void *ud); /* takes rec */

/* Calls fn for each of the user's memories of the types (mask; 0 all), in
 * id order, inside one read transaction. */
struct scan_ctx {
    const char *user_uuid;
    unsigned types;
    scan_fn fn;
    void *ud;
};

static int scan_one(uint64_t id, json_t *rec, void *ud)
{
    struct scan_ctx *c = ud;
    const char *owner = json_get_str(rec, "user_id");
    int type = memory_type_parse(json_get_str(rec, "type"));
    if (!owner || type < 0 || !json_get_str(rec, "content")) {
        json_free(rec);
        return ENGRAM_ECORRUPT;
    }
    if (strcmp(owner, c->user_uuid) || (c->types && !(c->types & (1u << type)))) {
        json_free(rec);
        return 0;
    }
    return c->fn(id, rec, c->ud);
}

static int scan(store_t *st, uint64_t ws, const char *user_uuid, unsigned types, scan_fn fn, void *ud)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    struct scan_ctx c = {user_uuid, types, fn, ud};
    rc = record_scan_ws(txn, store_dbi(st, DB_MEMORIES), ws, scan_one, &c);
    store_read_end(st, txn);
    return rc;
}

struct list_ctx {
    size_t i, limit, offset;
    buf_t *b;
    jw_t *w;
};

static int list_one(uint64_t id, json_t *rec, void *ud)
{
    (void)id;
    struct list_ctx *c = ud;
    if (c->i >= c->offset && c->i - c->offset < c->limit) {
        jw_obj_begin(c->w);
        record_copy_members(c->w, rec, internal_fields);
        jw_obj_end(c->w);
    }
    c->i++;
    json_free(rec);
    return 0;
}

int memory_list(store_t *st, uint64_t ws, const char *user_uuid, int type, size_t limit,
                size_t offset, json_t **page, size_t *total)
{
    *page = NULL;
    *total = 0;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    struct list_ctx c = {0, limit, offset, &b, &w};
    int rc = scan(st, ws, user_uuid, type >= 0 ? 1u << type : 0, list_one, &c);
    jw_arr_end(&w);
    if (!rc) rc = record_dom(&b, page);
    buf_free(&b);
    if (!rc) *total = c.i;
    return rc;
}

/* ---- search ---------------------------------------------------------- */

typedef struct cand {
    uint64_t id;
    int type;
    json_t *rec;
    term_bag_t bag;
    double reliability, access, updated_ms;
    double score, sig[MSIG__COUNT];
} cand_t;

struct search_ctx {
    cand_t *v;
    size_t n, cap;
};

static int collect(uint64_t id, json_t *rec, void *ud)
{
    struct search_ctx *c = ud;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        cand_t *nv = eg_realloc(c->v, cap * sizeof *nv);
        if (!nv) {
            json_free(rec);
            return ENGRAM_ENOMEM;
        }
        c->v = nv;
        c->cap = cap;
    }
    cand_t *m = &c->v[c->n++];
    memset(m, 0, sizeof *m);
    m->id = id;
    m->rec = rec;
    m->type = memory_type_parse(json_get_str(rec, "type"));
    m->reliability = MEMORY_RELIABILITY_DEFAULT;
    json_get_double(rec, "reliability", &m->reliability);
    if (!(m->reliability >= 0)) m->reliability = 0;
    if (m->reliability > 1) m->reliability = 1;
    m->access = (double)json_get_i64(rec, "access_count", 0);
    if (m->access < 0) m->access = 0;
    m->updated_ms = (double)json_get_i64(rec, "updated_ms", 0);
    return 0;
}

static int cmp_score(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->updated_ms != b->updated_ms) return a->updated_ms > b->updated_ms ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

struct touch_args {
    store_t *st;
    uint64_t ws;
    const uint64_t *ids;
    size_t n;
    int64_t now_ms;
};

static int touch_cb(MDB_txn *txn, void *arg)
{
    struct touch_args *a = arg;
    char now[32];
    time_format_rfc3339(a->now_ms, now);
    MDB_dbi dbi = store_dbi(a->st, DB_MEMORIES);
    for (size_t i = 0; i < a->n; i++) {
        store_key_t k = mem_key(a->ws, a->ids[i]);
        MDB_val kv = skey_val(&k);
        json_t *rec = NULL;
        int rc = record_get(txn, dbi, &kv, &rec);
        if (rc == ENGRAM_ENOTFOUND) continue; /* deleted meanwhile */
        if (rc) return rc;
        static const char *const skip[] = {"access_count", "last_accessed_at", "accessed_ms", NULL};
        buf_t b = BUF_INIT;
        jw_t w;
        jw_init(&w, &b);
        jw_obj_begin(&w);
        record_copy_members(&w, rec, skip);
        jw_kint(&w, "access_count", json_get_i64(rec, "access_count", 0) + 1);
        jw_kstr(&w, "last_accessed_at", now);
        jw_kint(&w, "accessed_ms", a->now_ms);
        jw_obj_end(&w);
        json_free(rec);
        rc = b.err ? b.err : record_put(txn, dbi, &kv, &b);
        buf_free(&b);
        if (rc) return rc;
    }
    return 0;
}

int memory_touch(store_t *st, uint64_t ws, const uint64_t *ids, size_t n)
{
    if (n == 0) return 0;
    struct touch_args a = {st, ws, ids, n, time_now_ms()};
    return store_write(st, touch_cb, &a);
}

/* The API object of a search hit, with the access just counted. */
static int hit_object(const cand_t *m, int counted, int64_t now_ms, json_t **out)
{
    if (!counted) return public_dom(m->rec, out);
    char now[32];
    time_format_rfc3339(now_ms, now);
    static const char *const skip[] = {"mid", "user_id", "updated_ms", "accessed_ms", "access_count",
                                       "last_accessed_at", NULL};
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    record_copy_members(&w, m->rec, skip);
    jw_kint(&w, "access_count", (int64_t)m->access + 1);
    jw_kstr(&w, "last_accessed_at", now);
    jw_obj_end(&w);
    int rc = record_dom(&b, out);
    buf_free(&b);
    return rc;
}

int memory_search(store_t *st, tokenizer_t *tok, uint64_t ws, const char *user_uuid,
                  const memory_query_t *q, memory_hit_t **hits, size_t *n_hits)
{
    *hits = NULL;
    *n_hits = 0;
    struct search_ctx c = {0};
    term_bag_t qb = {0};
    uint64_t *ids = NULL;
    memory_hit_t *out = NULL;
    size_t n_out = 0;
    double *idf = NULL;
    int rc = scan(st, ws, user_uuid, q->types, collect, &c);
    if (rc) goto done;
    rc = term_bag_build(tok, q->query, strlen(q->query), 1, &qb);
    if (rc) goto done;
    /* BM25 statistics over the candidates. */
    double avgdl = 0;
    for (size_t i = 0; i < c.n; i++) {
        const char *text = json_get_str(c.v[i].rec, "content");
        rc = term_bag_build(tok, text, strlen(text), 1, &c.v[i].bag);
        if (rc) goto done;
        avgdl += (double)c.v[i].bag.total;
    }
    avgdl = c.n ? avgdl / (double)c.n : 1;
    if (avgdl <= 0) avgdl = 1;
    idf = eg_calloc(qb.n ? qb.n : 1, sizeof *idf);
    if (!idf) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t t = 0; t < qb.n; t++) {
        size_t df = 0;
        for (size_t i = 0; i < c.n; i++) df += term_bag_find(&c.v[i].bag, qb.h[t]) >= 0;
        idf[t] = log(1.0 + ((double)c.n - (double)df + 0.5) / ((double)df + 0.5));
    }
    const double k1 = 1.2, b = 0.75;
    double best_bm25 = 0;
    double now = (double)time_now_ms();
    size_t kept = 0;
    for (size_t i = 0; i < c.n; i++) {
        cand_t *m = &c.v[i];
        double s = 0;
        for (size_t t = 0; t < qb.n; t++) {
            long j = term_bag_find(&m->bag, qb.h[t]);
            if (j < 0) continue;
            double tf = m->bag.tf[j], dl = (double)m->bag.total;
            s += idf[t] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl));
        }
        m->sig[MSIG_KEYWORD] = s;
        if (s > best_bm25) best_bm25 = s;
        m->sig[MSIG_VECTOR] = term_bag_cosine(&qb, &m->bag);
        m->sig[MSIG_RELIABILITY] = m->reliability;
        double age_days = (now - m->updated_ms) / 86400000.0;
        if (age_days < 0) age_days = 0;
        m->sig[MSIG_RECENCY] = pow(0.5, age_days / MEMORY_HALF_LIFE_DAYS);
        double f = log1p(m->access) / log(101.0);
        m->sig[MSIG_FREQUENCY] = f > 1 ? 1 : f;
    }
    for (size_t i = 0; i < c.n; i++) {
        cand_t *m = &c.v[i];
        int matched = m->sig[MSIG_KEYWORD] > 0 || m->sig[MSIG_VECTOR] > 0;
        if (best_bm25 > 0) m->sig[MSIG_KEYWORD] /= best_bm25;
        if (!matched && !(q->keep_profile && m->type == MEMORY_PROFILE)) {
            m->score = -1;
            continue;
        }
        m->score = 0;
        for (int s = 0; s < MSIG__COUNT; s++) m->score += q->weights[s] * m->sig[s];
        kept++;
    }
    if (c.n) qsort(c.v, c.n, sizeof *c.v, cmp_score);
    n_out = kept < q->top_k ? kept : q->top_k;
    if (n_out == 0) goto done;
    out = eg_calloc(n_out, sizeof *out);
    ids = eg_calloc(n_out, sizeof *ids);
    if (!out || !ids) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = 0; i < n_out; i++) ids[i] = c.v[i].id;
    int counted = 0;
    if (q->count_access) {
        rc = memory_touch(st, ws, ids, n_out);
        if (rc) goto done;
        counted = 1;
    }
    int64_t now_ms = time_now_ms();
    for (size_t i = 0; i < n_out; i++) {
        cand_t *m = &c.v[i];
        memory_hit_t *h = &out[i];
        h->id = m->id;
        h->type = m->type;
        h->score = m->score;
        memcpy(h->signals, m->sig, sizeof h->signals);
        h->content = eg_strdup(json_get_str(m->rec, "content"));
        if (!h->content) { rc = ENGRAM_ENOMEM; goto done; }
        rc = hit_object(m, counted, now_ms, &h->object);
        if (rc) goto done;
    }
done:
    for (size_t i = 0; i < c.n; i++) {
        json_free(c.v[i].rec);
        term_bag_free(&c.v[i].bag);
    }
    eg_free(c.v);
    eg_free(idf);
    eg_free(ids);
    term_bag_free(&qb);
    if (rc) {
        memory_hits_free(out, n_out);
        return rc;
    }
    *hits = out;
    *n_hits = out ? n_out : 0;
    return 0;
}

void memory_hits_free(memory_hit_t *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        eg_free(h[i].content);
        json_free(h[i].object);
    }
    eg_free(h);
}
