/*
 * retrieve.c - keyword retrieval across collections (see retrieve.h).
 *
 * The metadata filter is evaluated per candidate chunk inside the BM25
 * search (bm25_filter_fn), so top_k fills with matching chunks whenever
 * enough exist. Each distinct document is looked up once per query: a small
 * cache maps document id -> match and its record.
 */
#include "rag/retrieve.h"

#include <math.h>
#include <stdlib.h>

#include "catalog/catalog.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"

#define DOC_CACHE 64

typedef struct doc_cache_entry {
    uint64_t coll, doc;
    int match;       /* filter result */
    json_t *rec;     /* document record, owned */
} doc_cache_entry_t;

typedef struct query_ctx {
    MDB_txn *txn;
    store_t *st;
    uint64_t ws, coll;
    const json_t *filter;
    doc_cache_entry_t cache[DOC_CACHE];
    size_t n_cache, next_evict;
    int err;
} query_ctx_t;

typedef struct hit {
    uint64_t coll, chunk;
    double score;
    int rank;        /* 1-based BM25 rank in its collection */
} hit_t;

int retrieve_filter_match(const json_t *filter, const json_t *metadata)
{
    if (!filter || filter->type != JSON_OBJECT) return 1;
    for (size_t i = 0; i < filter->len; i++) {
        const json_t *v = json_get(metadata, filter->keys[i]);
        if (!v || !json_equal(filter->items[i], v)) return 0;
    }
    return 1;
}

/* The cached entry of (coll, doc), loading it if needed; NULL on error. */
static doc_cache_entry_t *doc_lookup(query_ctx_t *q, uint64_t coll, uint64_t doc)
{
    for (size_t i = 0; i < q->n_cache; i++)
        if (q->cache[i].doc == doc && q->cache[i].coll == coll) return &q->cache[i];
    json_t *rec = NULL;
    int rc = catalog_doc_get_internal(q->txn, q->st, q->ws, coll, doc, &rec);
    if (rc) { q->err = rc; return NULL; }
    doc_cache_entry_t *e;
    if (q->n_cache < DOC_CACHE) {
        e = &q->cache[q->n_cache++];
    } else {
        e = &q->cache[q->next_evict];
        q->next_evict = (q->next_evict + 1) % DOC_CACHE;
        json_free(e->rec);
    }
    e->coll = coll;
    e->doc = doc;
    e->rec = rec;
    e->match = retrieve_filter_match(q->filter, json_get(rec, "metadata"));
    return e;
}

static int filter_cb(uint64_t chunk_id, void *ud)
{
    query_ctx_t *q = ud;
    chunk_rec_t cr;
    if (catalog_chunk_get(q->txn, q->st, q->ws, q->coll, chunk_id, &cr)) return 0;
    doc_cache_entry_t *e = doc_lookup(q, q->coll, cr.doc);
    return e ? e->match : 0;
}

static int cmp_hits(const void *a, const void *b)
{
    const hit_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int render(query_ctx_t *q, const hit_t *h, int explain, jw_t *w, buf_t *text)
{
    chunk_rec_t cr;
    int rc = catalog_chunk_get(q->txn, q->st, q->ws, h->coll, h->chunk, &cr);
    if (rc) return rc;
    buf_reset(text);
    rc = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, text);
    if (rc) return rc;
    doc_cache_entry_t *e = doc_lookup(q, h->coll, cr.doc);
    if (!e) return q->err ? q->err : ENGRAM_ECORRUPT;
    const json_t *d = e->rec;
    jw_obj_begin(w);
    jw_kstr(w, "chunk_id", cr.uuid);
    jw_key(w, "content");
    jw_strn(w, text->data ? text->data : "", text->len);
    jw_kint(w, "chunk_index", cr.index);
    jw_kdouble(w, "score", h->score);
    jw_key(w, "metadata");
    jw_json(w, json_get(d, "metadata"));
    jw_key(w, "chunk_metadata");
    jw_obj_begin(w);
    jw_kint(w, "start", cr.start);
    jw_kint(w, "end", cr.end);
    jw_kint(w, "token_count", cr.tokens);
    if (cr.heading_len) {
        jw_key(w, "section");
        jw_strn(w, cr.heading, cr.heading_len);
    }
    jw_obj_end(w);
    jw_key(w, "document");
    jw_obj_begin(w);
    jw_kstr(w, "id", json_get_str(d, "id"));
    jw_kstr(w, "title", json_get_str(d, "title"));
    jw_key(w, "filename");
    jw_json(w, json_get(d, "filename"));
    jw_key(w, "metadata");
    jw_json(w, json_get(d, "metadata"));
    jw_obj_end(w);
    jw_kstr(w, "collection_id", json_get_str(d, "collection_id"));
    if (explain) {
        jw_key(w, "explain");
        jw_obj_begin(w);
        jw_kdouble(w, "bm25", h->score);
        jw_kint(w, "bm25_rank", h->rank);
        jw_knull(w, "vector");
        jw_knull(w, "vector_rank");
        jw_obj_end(w);
    }
    jw_obj_end(w);
    return 0;
}

int retrieve_run(store_t *st, tokenizer_t *tok, uint64_t ws, const retrieve_req_t *r, jw_t *w,
                 size_t *n_results)
{
    *n_results = 0;
    if (strcmp(r->mode, "keyword") != 0) return ENGRAM_EUNSUPPORTED;
    size_t k = (size_t)r->top_k;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    query_ctx_t q = {.txn = txn, .st = st, .ws = ws, .filter = r->metadata_filter};
    uint64_t *colls = NULL, one;
    size_t n_colls = 0;
    hit_t *hits = NULL;
    size_t n_hits = 0;
    bm25_hit_t *bh = eg_malloc(k * sizeof *bh);
    buf_t text = BUF_INIT;
    if (!bh) { rc = ENGRAM_ENOMEM; goto done; }
    if (r->coll_uuid) {
        idmap_entry_t e;
        rc = idmap_get(txn, st, r->coll_uuid, IDK_COLLECTION, &e);
        if (!rc && e.ws != ws) rc = ENGRAM_ENOTFOUND;
        if (rc) goto done;
        one = e.coll;
        colls = &one;
        n_colls = 1;
    } else {
        rc = catalog_coll_ids(txn, st, ws, &colls, &n_colls);
        if (rc) goto done;
    }
    hits = eg_malloc((n_colls ? n_colls : 1) * k * sizeof *hits);
    if (!hits) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t c = 0; c < n_colls; c++) {
        size_t n = 0;
        q.coll = colls[c];
        rc = bm25_search(txn, st, tok, ws, colls[c], r->query, strlen(r->query), &r->bm25,
                         r->metadata_filter ? filter_cb : NULL, &q, k, bh, &n);
        if (!rc && q.err) rc = q.err;
        if (rc) goto done;
        for (size_t i = 0; i < n; i++) {
            hits[n_hits].coll = colls[c];
            hits[n_hits].chunk = bh[i].chunk_id;
            hits[n_hits].score = bh[i].score;
            hits[n_hits].rank = (int)i + 1;
            n_hits++;
        }
    }
    qsort(hits, n_hits, sizeof *hits, cmp_hits);
    if (n_hits > k) n_hits = k;
    jw_arr_begin(w);
    for (size_t i = 0; i < n_hits; i++) {
        rc = render(&q, &hits[i], r->explain, w, &text);
        if (rc) break;
    }
    jw_arr_end(w);
    if (!rc) *n_results = n_hits;
done:
    store_read_end(st, txn);
    for (size_t i = 0; i < q.n_cache; i++) json_free(q.cache[i].rec);
    if (colls != &one) eg_free(colls);
    eg_free(hits);
    eg_free(bh);
    buf_free(&text);
    return rc;
}
