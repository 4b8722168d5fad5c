/*
 * retrieve.c - ranking across collections and modes (see retrieve.h).
 *
 * Each target collection is searched on its own (its own BM25 statistics,
 * its own embedder and vector index); per-collection ranked lists are fused
 * (hybrid) and then merged across collections by score. The metadata filter
 * is evaluated per candidate chunk inside the index searches (filter_cb), so
 * top_k fills with matching chunks whenever enough exist. Each distinct
 * document is read once per query through a small cache.
 */
#include "rag/retrieve.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "catalog/catalog.h"
#include "rag/graph_search.h"
#include "rag/rerank.h"
#include "rag/vector_side.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/log.h"

#define DOC_CACHE 64
#define RRF_K 60.0

typedef struct doc_cache_entry {
    uint64_t coll, doc;
    int match;
    json_t *rec;
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

static const char *const mode_names[] = {"keyword", "semantic", "hybrid", "hierarchical", "graph"};

int retrieve_mode_parse(const char *s)
{
    for (size_t i = 0; i < EG_ARRAY_LEN(mode_names); i++)
        if (s && !strcmp(s, mode_names[i])) return (int)i;
    return -1;
}

const char *retrieve_mode_name(rmode_t m)
{
    return (size_t)m < EG_ARRAY_LEN(mode_names) ? mode_names[m] : "?";
}

int retrieve_filter_match(const json_t *filter, const json_t *metadata)
{
    if (!filter || filter->type != JSON_OBJECT) return 1;
    for (size_t i = 0; i < filter->len; i++) {
        const json_t *v = json_get(metadata, filter->keys[i]);
        if (!v || !json_equal(filter->items[i], v)) return 0;
    }
    return 1;
}

static void cache_free(query_ctx_t *q)
{
    for (size_t i = 0; i < q->n_cache; i++) json_free(q->cache[i].rec);
    q->n_cache = 0;
}

static doc_cache_entry_t *doc_lookup(query_ctx_t *q, uint64_t coll, uint64_t doc)
{
    for (size_t i = 0; i < q->n_cache; i++)
        if (q->cache[i].doc == doc && q->cache[i].coll == coll) return &q->cache[i];
    json_t *rec = NULL;
    int rc = catalog_doc_get_internal(q->txn, q->st, q->ws, coll, doc, &rec);
    if (rc) {
        if (rc != ENGRAM_ENOTFOUND) q->err = rc;
        return NULL;
    }
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

/* Index filter: keeps chunks whose document matches the metadata filter. */
static int filter_cb(uint64_t chunk_id, void *ud)
{
    query_ctx_t *q = ud;
    chunk_rec_t cr;
    if (catalog_chunk_get(q->txn, q->st, q->ws, q->coll, chunk_id, &cr)) return 0;
    doc_cache_entry_t *e = doc_lookup(q, q->coll, cr.doc);
    return e ? e->match : 0;
}

static int cmp_score(const void *a, const void *b)
{
    const retrieve_hit_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* ---- fusion ------------------------------------------------------------- */

static int best_rank(const retrieve_hit_t *h)
{
    int a = h->bm25_rank ? h->bm25_rank : 1 << 30, b = h->vector_rank ? h->vector_rank : 1 << 30;
    return a < b ? a : b;
}

static int cmp_fused(const void *a, const void *b)
{
    const retrieve_hit_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    int rx = best_rank(x), ry = best_rank(y);
    if (rx != ry) return rx < ry ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

int retrieve_fuse_rrf(const retrieve_hit_t *a, size_t na, const retrieve_hit_t *b, size_t nb,
                      double k, size_t cap, retrieve_hit_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    retrieve_hit_t *f = eg_calloc(na + nb + 1, sizeof *f);
    if (!f) return ENGRAM_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < na; i++) {
        f[n] = a[i];
        f[n].score = 1.0 / (k + (double)(i + 1));
        n++;
    }
    for (size_t j = 0; j < nb; j++) {
        size_t i;
        for (i = 0; i < na; i++)
            if (f[i].coll == b[j].coll && f[i].chunk == b[j].chunk) break;
        if (i == na) {
            f[n] = b[j];
            f[n].score = 0;
            f[n].bm25 = 0;
            f[n].bm25_rank = 0;
            i = n++;
        }
        f[i].vector = b[j].vector;
        f[i].vector_rank = b[j].vector_rank;
        f[i].score += 1.0 / (k + (double)(j + 1));
    }
    qsort(f, n, sizeof *f, cmp_fused);
    *out = f;
    *n_out = n < cap ? n : cap;
    return 0;
}

/* ---- search ------------------------------------------------------------- */

static int keyword_side(query_ctx_t *q, tokenizer_t *tok, uint64_t coll, const retrieve_req_t *r,
                        size_t k, retrieve_hit_t *out, size_t *n)
{
    bm25_hit_t *bh = eg_malloc(k * sizeof *bh);
    if (!bh) return ENGRAM_ENOMEM;
    size_t nb = 0;
    q->coll = coll;
    int rc = bm25_search(q->txn, q->st, tok, q->ws, coll, r->query, strlen(r->query), &r->bm25,
                         r->metadata_filter ? filter_cb : NULL, q, k, bh, &nb);
    if (!rc && q->err) rc = q->err;
    if (rc == ENGRAM_ETOOBIG) rc = ENGRAM_EINVAL;
    for (size_t i = 0; !rc && i < nb; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].coll = coll;
        out[i].chunk = bh[i].chunk_id;
        out[i].score = out[i].bm25 = bh[i].score;
        out[i].bm25_rank = (int)i + 1;
    }
    *n = rc ? 0 : nb;
    eg_free(bh);
    return rc;
}

static int semantic_side(query_ctx_t *q, vector_query_t *vq, hnsw_cache_t *cache, uint64_t coll,
                         const retrieve_req_t *r, size_t k, retrieve_hit_t *out, size_t *n)
{
    vector_hit_t *vh = eg_malloc(k * sizeof *vh);
    if (!vh) return ENGRAM_ENOMEM;
    size_t nv = 0;
    q->coll = coll;
    int rc = vector_side_search(vq, cache, q->txn, q->st, q->ws, coll, k, r->ef_search,
                                r->metadata_filter ? filter_cb : NULL, q, vh, &nv);
    if (!rc && q->err) rc = q->err;
    for (size_t i = 0; !rc && i < nv; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].coll = coll;
        out[i].chunk = vh[i].chunk;
        out[i].score = out[i].vector = vh[i].score;
        out[i].vector_rank = (int)i + 1;
    }
    *n = rc ? 0 : nv;
    eg_free(vh);
    return rc;
}

/* Hierarchical: rank documents by their best fused chunk (plus a little for
 * every further matching chunk), then list each document's chunks best
 * first, at most HIER_PER_DOC each, until top_k. */
#define HIER_PER_DOC 3

typedef struct doc_rank {
    uint64_t coll, doc;
    double score;
    size_t first;   /* index of the best chunk in the fused list */
} doc_rank_t;

static int cmp_doc(const void *a, const void *b)
{
    const doc_rank_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

static int hierarchical(query_ctx_t *q, retrieve_hit_t *f, size_t nf, size_t top_k,
                        retrieve_hit_t *out, size_t *n_out)
{
    uint64_t *docs = eg_malloc((nf + 1) * sizeof *docs);
    doc_rank_t *dr = eg_calloc(nf + 1, sizeof *dr);
    int rc = 0;
    size_t nd = 0, n = 0;
    if (!docs || !dr) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = 0; i < nf; i++) {
        chunk_rec_t cr;
        rc = catalog_chunk_get(q->txn, q->st, q->ws, f[i].coll, f[i].chunk, &cr);
        if (rc == ENGRAM_ENOTFOUND) { docs[i] = UINT64_MAX; rc = 0; continue; }
        if (rc) goto done;
        docs[i] = cr.doc;
        size_t d;
        for (d = 0; d < nd; d++)
            if (dr[d].doc == cr.doc && dr[d].coll == f[i].coll) break;
        if (d == nd) {
            dr[nd].coll = f[i].coll;
            dr[nd].doc = cr.doc;
            dr[nd].score = f[i].score;
            dr[nd].first = i;
            nd++;
        } else {
            dr[d].score += 0.1 * f[i].score;
        }
    }
    qsort(dr, nd, sizeof *dr, cmp_doc);
    for (size_t d = 0; d < nd && n < top_k; d++) {
        int taken = 0;
        for (size_t i = dr[d].first; i < nf && n < top_k && taken < HIER_PER_DOC; i++) {
            if (docs[i] != dr[d].doc || f[i].coll != dr[d].coll) continue;
            out[n] = f[i];
            /* documents-first order: a decreasing score keeps the order visible */
            out[n].score = dr[d].score - 1e-6 * taken;
            n++;
            taken++;
        }
    }
done:
    eg_free(docs);
    eg_free(dr);
    *n_out = rc ? 0 : n;
    return rc;
}

/* ---- graph and rerank ---------------------------------------------------- */

/* The mode's list (fused: already reciprocal-rank scores) merged with the
 * graph's hits; see retrieve.h. */
static int merge_graph(const retrieve_hit_t *side, size_t ns, int fused, const graph_hit_t *g,
                       size_t ng, uint64_t coll, retrieve_hit_t **out, size_t *n_out)
{
    retrieve_hit_t *f = eg_calloc(ns + ng + 1, sizeof *f);
    if (!f) return ENGRAM_ENOMEM;
    size_t n = ns;
    memcpy(f, side, ns * sizeof *f);
    if (!fused)
        for (size_t i = 0; i < ns; i++) f[i].score = 1.0 / (RRF_K + (double)(i + 1));
    for (size_t j = 0; j < ng; j++) {
        double w = RETRIEVE_GRAPH_WEIGHT / (RRF_K + (double)(j + 1));
        size_t i;
        for (i = 0; i < ns; i++)
            if (f[i].chunk == g[j].chunk) break;
        if (i == ns) {
            i = n++;
            f[i].coll = coll;
            f[i].chunk = g[j].chunk;
        }
        f[i].score += w;
        f[i].graph_sourced = 1;
    }
    qsort(f, n, sizeof *f, cmp_fused);
    *out = f;
    *n_out = n;
    return 0;
}

typedef struct ranked {
    double score;
    size_t idx;
} ranked_t;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Re-orders hits[0..n) (best first on entry); see retrieve.h. Runs
 * outside any read transaction of the caller. */
static int rerank_hits(const retrieve_env_t *env, tokenizer_t *tok, uint64_t ws, const char *query,
                       retrieve_hit_t *hits, size_t n)
{
    if (n < 2) return 0;
    char **texts = eg_calloc(n, sizeof *texts);
    size_t *lens = eg_calloc(n, sizeof *lens);
    double *scores = eg_calloc(n, sizeof *scores);
    ranked_t *rk = eg_calloc(n, sizeof *rk);
    retrieve_hit_t *copy = eg_malloc(n * sizeof *copy);
    buf_t text = BUF_INIT;
    MDB_txn *txn = NULL;
    int rc = texts && lens && scores && rk && copy ? 0 : ENGRAM_ENOMEM;
    if (!rc) rc = store_read_begin(env->st, &txn);
    for (size_t i = 0; !rc && i < n; i++) {
        chunk_rec_t cr;
        rc = catalog_chunk_get(txn, env->st, ws, hits[i].coll, hits[i].chunk, &cr);
        buf_reset(&text);
        if (rc == ENGRAM_ENOTFOUND) { rc = 0; continue; } /* deleted meanwhile: empty text */
        if (!rc) rc = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, &text);
        if (!rc) {
            texts[i] = eg_strndup(text.data ? text.data : "", text.len);
            lens[i] = text.len;
            if (!texts[i]) rc = ENGRAM_ENOMEM;
        }
    }
    store_read_end(env->st, txn);
    if (rc) goto done;
    for (size_t i = 0; i < n; i++)
        if (!texts[i] && !(texts[i] = eg_strdup(""))) { rc = ENGRAM_ENOMEM; goto done; }
    int remote = 0;
    if (env->rerank_url && env->rerank_url[0]) {
        char err[256];
        int r2 = rerank_remote(env->rerank_url, query, (const char *const *)texts, lens, n, 0, scores,
                               err, sizeof err);
        if (r2 == ENGRAM_ENOMEM) { rc = r2; goto done; }
        if (r2) log_warn("rerank: %s; using the built-in reranker", err);
        remote = r2 == 0;
    }
    if (!remote) {
        rc = rerank_builtin(tok, query, (const char *const *)texts, lens, n, scores);
        if (rc) goto done;
        for (size_t i = 0; i < n; i++)
            scores[i] = (RRF_K + 1.0) / (RRF_K + (double)(i + 1)) + RETRIEVE_RERANK_WEIGHT * scores[i];
    }
    for (size_t i = 0; i < n; i++) rk[i] = (ranked_t){scores[i], i};
    qsort(rk, n, sizeof *rk, cmp_ranked);
    memcpy(copy, hits, n * sizeof *copy);
    for (size_t i = 0; i < n; i++) {
        hits[i] = copy[rk[i].idx];
        hits[i].score = rk[i].score;
    }
done:
    for (size_t i = 0; texts && i < n; i++) eg_free(texts[i]);
    eg_free(texts);
    eg_free(lens);
    eg_free(scores);
    eg_free(rk);
    eg_free(copy);
    buf_free(&text);
    return rc;
}

static size_t side_k(const retrieve_req_t *r)
{
    size_t k = (size_t)r->top_k;
    if ((r->mode == RMODE_KEYWORD || r->mode == RMODE_SEMANTIC) && !r->enable_graph && !r->rerank)
        return k;
    size_t more = k * 4 < 50 ? 50 : k * 4;  /* fusion needs candidates beyond top_k */
    return more > 400 ? 400 : more;
}

int retrieve_search(const retrieve_env_t *env, tokenizer_t *tok, uint64_t ws,
                    const retrieve_req_t *r, retrieve_hit_t **hits, size_t *n, char *err,
                    size_t errsz)
{
    *hits = NULL;
    *n = 0;
    if (err && errsz) err[0] = '\0';
    int graph_mode = r->mode == RMODE_GRAPH, use_graph = graph_mode || r->enable_graph;
    int need_vec = r->mode != RMODE_KEYWORD && !graph_mode;
    int need_kw = r->mode != RMODE_SEMANTIC && !graph_mode;
    size_t k = side_k(r), top_k = (size_t)r->top_k;
    /* candidates kept per collection: top_k, or the rerank pool */
    size_t per = r->rerank ? EG_MAX(top_k, EG_MIN(k, (size_t)RERANK_MAX)) : top_k;
    store_t *st = env->st;
    if (need_vec && !env->embedders) return ENGRAM_EUNSUPPORTED;

    vector_query_t *vq = NULL;
    MDB_txn *txn;
    uint64_t *colls = NULL, one;
    size_t n_colls = 0, n_all = 0;
    retrieve_hit_t *all = NULL, *kw = NULL, *vec = NULL, *fused = NULL, *merged = NULL;
    graph_hit_t *gh = NULL;
    query_ctx_t q = {.st = st, .ws = ws, .filter = r->metadata_filter};
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    if (r->coll_uuid) {
        idmap_entry_t e = {0};
        rc = idmap_get(txn, st, r->coll_uuid, IDK_COLLECTION, &e);
        if (!rc && e.ws != ws) rc = ENGRAM_ENOTFOUND;
        one = e.coll;
        colls = &one;
        n_colls = rc ? 0 : 1;
    } else {
        rc = catalog_coll_ids(txn, st, ws, &colls, &n_colls);
    }
    if (!rc && need_vec) {
        /* The query is embedded once per embedder the collections use, before
         * the search transaction: a remote embedder is a network call. */
        const char **names = eg_calloc(n_colls + 1, sizeof *names);
        coll_config_t *cfgs = eg_calloc(n_colls + 1, sizeof *cfgs);
        if (!names || !cfgs) rc = ENGRAM_ENOMEM;
        for (size_t i = 0; !rc && i < n_colls; i++) {
            rc = catalog_coll_config(txn, st, ws, colls[i], &cfgs[i]);
            names[i] = cfgs[i].embedder;
        }
        store_read_end(st, txn);
        if (!rc && !env->embedders) rc = ENGRAM_EUNSUPPORTED;
        if (!rc) rc = vector_query_new(env->embedders, r->query, names, n_colls, &vq, err, errsz);
        eg_free(names);
        eg_free(cfgs);
        int rc2 = store_read_begin(st, &txn);
        if (rc2) {
            if (colls != &one) eg_free(colls);
            vector_query_free(vq);
            return rc2;
        }
    }
    q.txn = txn;
    if (rc) goto done;
    all = eg_malloc((n_colls ? n_colls : 1) * per * sizeof *all);
    kw = eg_malloc(k * sizeof *kw);
    vec = eg_malloc(k * sizeof *vec);
    gh = eg_malloc(k * sizeof *gh);
    if (!all || !kw || !vec || !gh) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t c = 0; c < n_colls; c++) {
        size_t nk = 0, nv = 0, nf = 0, ng = 0, nm = 0;
        if (use_graph) {
            q.coll = colls[c];
            rc = graph_search(txn, st, ws, colls[c], r->query, k, r->metadata_filter ? filter_cb : NULL,
                              &q, gh, &ng, NULL, NULL);
            if (!rc && q.err) rc = q.err;
            if (rc) goto done;
        }
        if (graph_mode) {
            for (size_t i = 0; i < ng && i < per; i++) {
                memset(&all[n_all], 0, sizeof *all);
                all[n_all].coll = colls[c];
                all[n_all].chunk = gh[i].chunk;
                all[n_all].score = gh[i].score;
                all[n_all].graph_sourced = 1;
                n_all++;
            }
            continue;
        }
        if (need_kw && (rc = keyword_side(&q, tok, colls[c], r, k, kw, &nk))) goto done;
        if (need_vec) {
            /* Vectors are embedded with the collection's own embedder. */
            rc = vector_query_prepare(vq, txn, st, ws, colls[c], err, errsz);
            if (rc == ENGRAM_ENOTFOUND) rc = 0; /* no vector index yet: no vector hits */
            else if (rc) goto done;
            else if ((rc = semantic_side(&q, vq, env->vcache, colls[c], r, k, vec, &nv))) goto done;
        }
        if (r->mode == RMODE_KEYWORD || r->mode == RMODE_SEMANTIC) {
            const retrieve_hit_t *side = r->mode == RMODE_KEYWORD ? kw : vec;
            size_t ns = r->mode == RMODE_KEYWORD ? nk : nv;
            if (use_graph) {
                if ((rc = merge_graph(side, ns, 0, gh, ng, colls[c], &merged, &nm))) goto done;
                side = merged;
                ns = nm;
            }
            ns = EG_MIN(ns, per);
            memcpy(all + n_all, side, ns * sizeof *side);
            n_all += ns;
            eg_free(merged);
            merged = NULL;
            continue;
        }
        rc = retrieve_fuse_rrf(kw, nk, vec, nv, RRF_K, k, &fused, &nf);
        if (rc) goto done;
        if (use_graph) {
            rc = merge_graph(fused, nf, 1, gh, ng, colls[c], &merged, &nm);
            if (rc) goto done;
            eg_free(fused);
            fused = merged;
            merged = NULL;
            nf = EG_MIN(nm, k);
        }
        if (r->mode == RMODE_HIERARCHICAL) {
            size_t nh = 0;
            rc = hierarchical(&q, fused, nf, per, all + n_all, &nh);
            n_all += nh;
        } else {
            size_t m = nf < per ? nf : per;
            memcpy(all + n_all, fused, m * sizeof *fused);
            n_all += m;
        }
        eg_free(fused);
        fused = NULL;
        if (rc) goto done;
    }
    qsort(all, n_all, sizeof *all, cmp_score);
    if (n_all > per) n_all = per;
    *hits = all;
    *n = n_all;
    all = NULL;
done:
    store_read_end(st, txn);
    eg_free(merged);
    eg_free(gh);
    if (!rc && r->rerank && *n) {
        /* outside the read transaction: a rerank service is a network call */
        rc = rerank_hits(env, tok, ws, r->query, *hits, *n);
        if (rc) { eg_free(*hits); *hits = NULL; *n = 0; }
    }
    if (!rc && *n > top_k) *n = top_k;
    cache_free(&q);
    if (colls != &one) eg_free(colls);
    eg_free(all);
    eg_free(kw);
    eg_free(vec);
    eg_free(fused);
    vector_query_free(vq);
    return rc;
}

int retrieve_graph_context(const retrieve_env_t *env, uint64_t ws, const retrieve_req_t *r,
                           buf_t *out)
{
    store_t *st = env->st;
    MDB_txn *txn;
    uint64_t *colls = NULL, one = 0;
    size_t n_colls = 0;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    if (r->coll_uuid) {
        idmap_entry_t e = {0};
        rc = idmap_get(txn, st, r->coll_uuid, IDK_COLLECTION, &e);
        if (!rc && e.ws != ws) rc = ENGRAM_ENOTFOUND;
        one = e.coll;
        colls = &one;
        n_colls = rc ? 0 : 1;
    } else {
        rc = catalog_coll_ids(txn, st, ws, &colls, &n_colls);
    }
    for (size_t c = 0; !rc && c < n_colls; c++) {
        size_t before = out->len, n = 0;
        if (before) buf_puts(out, "\n");
        size_t mark = out->len;
        rc = graph_search(txn, st, ws, colls[c], r->query, 0, NULL, NULL, NULL, &n, out, NULL);
        if (!rc && out->len == mark) out->len = before; /* nothing found there */
    }
    store_read_end(st, txn);
    if (colls != &one) eg_free(colls);
    return rc;
}

/* ---- output ------------------------------------------------------------- */

static void write_side(jw_t *w, const char *name, const char *rank_name, double v, int rank)
{
    jw_key(w, name);
    if (rank) jw_double(w, v); else jw_null(w);
    jw_key(w, rank_name);
    if (rank) jw_int(w, rank); else jw_null(w);
}

int retrieve_render(const retrieve_env_t *env, uint64_t ws, const retrieve_hit_t *hits, size_t n,
                    int explain, jw_t *w, size_t *n_out)
{
    *n_out = 0;
    MDB_txn *txn;
    int rc = store_read_begin(env->st, &txn);
    if (rc) return rc;
    query_ctx_t q = {.txn = txn, .st = env->st, .ws = ws};
    buf_t text = BUF_INIT;
    jw_arr_begin(w);
    for (size_t i = 0; i < n && !rc; i++) {
        const retrieve_hit_t *h = &hits[i];
        chunk_rec_t cr;
        rc = catalog_chunk_get(txn, env->st, ws, h->coll, h->chunk, &cr);
        if (rc == ENGRAM_ENOTFOUND) { rc = 0; continue; }
        if (rc) break;
        buf_reset(&text);
        if ((rc = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, &text))) break;
        doc_cache_entry_t *e = doc_lookup(&q, h->coll, cr.doc);
        if (!e) { rc = q.err; continue; }
        const json_t *d = e->rec;
        jw_obj_begin(w);
        jw_kstr(w, "chunk_id", cr.uuid);
        jw_key(w, "content");
        jw_strn(w, text.data ? text.data : "", text.len);
        jw_kint(w, "chunk_index", cr.index);
        jw_kdouble(w, "score", h->score);
        jw_key(w, "metadata");
        if (h->graph_sourced) {
            jw_obj_begin(w);
            record_copy_members(w, json_get(d, "metadata"), NULL);
            jw_kbool(w, "graph_sourced", 1);
            jw_obj_end(w);
        } else {
            jw_json(w, json_get(d, "metadata"));
        }
        jw_key(w, "chunk_metadata");
        jw_obj_begin(w);
        jw_kint(w, "start", cr.start);
        jw_kint(w, "end", cr.end);
        jw_kint(w, "token_count", cr.tokens);
        if (cr.heading_len) {
            jw_key(w, "section");
            jw_strn(w, cr.heading, cr.heading_len);
        }
        if (cr.page) jw_kint(w, "page", cr.page);
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
            write_side(w, "bm25", "bm25_rank", h->bm25, h->bm25_rank);
            write_side(w, "vector", "vector_rank", h->vector, h->vector_rank);
            jw_obj_end(w);
        }
        jw_obj_end(w);
        (*n_out)++;
    }
    jw_arr_end(w);
    store_read_end(env->st, txn);
    cache_free(&q);
    buf_free(&text);
    return rc;
}

void retrieve_fetch_free(retrieved_chunk_t *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) {
        eg_free(c[i].title);
        eg_free(c[i].text);
    }
    eg_free(c);
}

int retrieve_fetch(const retrieve_env_t *env, uint64_t ws, const retrieve_hit_t *hits, size_t n,
                   retrieved_chunk_t **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    retrieved_chunk_t *res = eg_calloc(n + 1, sizeof *res);
    if (!res) return ENGRAM_ENOMEM;
    MDB_txn *txn;
    int rc = store_read_begin(env->st, &txn);
    if (rc) { eg_free(res); return rc; }
    query_ctx_t q = {.txn = txn, .st = env->st, .ws = ws};
    buf_t text = BUF_INIT;
    size_t m = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        chunk_rec_t cr;
        rc = catalog_chunk_get(txn, env->st, ws, hits[i].coll, hits[i].chunk, &cr);
        if (rc == ENGRAM_ENOTFOUND) { rc = 0; continue; }
        if (rc) break;
        buf_reset(&text);
        if ((rc = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, &text))) break;
        doc_cache_entry_t *e = doc_lookup(&q, hits[i].coll, cr.doc);
        if (!e) { rc = q.err; continue; }
        retrieved_chunk_t *c = &res[m];
        snprintf(c->chunk_id, sizeof c->chunk_id, "%s", cr.uuid);
        snprintf(c->document_id, sizeof c->document_id, "%s", json_get_str(e->rec, "id") ? json_get_str(e->rec, "id") : "");
        snprintf(c->collection_id, sizeof c->collection_id, "%s",
                 json_get_str(e->rec, "collection_id") ? json_get_str(e->rec, "collection_id") : "");
        c->title = eg_strdup(json_get_str(e->rec, "title") ? json_get_str(e->rec, "title") : "");
        c->text = eg_strndup(text.data ? text.data : "", text.len);
        c->text_len = text.len;
        c->chunk_index = cr.index;
        c->score = hits[i].score;
        c->graph_sourced = hits[i].graph_sourced;
        m++;
        if (!c->title || !c->text) rc = ENGRAM_ENOMEM;
    }
    store_read_end(env->st, txn);
    cache_free(&q);
    buf_free(&text);
    if (rc) { retrieve_fetch_free(res, m); return rc; }
    *out = res;
    *n_out = m;
    return 0;
}
