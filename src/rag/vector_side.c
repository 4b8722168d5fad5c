/*
 * vector_side.c - the semantic half of retrieval (see vector_side.h).
 *
 * A query is embedded once per distinct embedder before any read
 * transaction; each collection then picks its embedder's vector, checked
 * against the dimension recorded in its HNSW meta record.
 */
#include "rag/vector_side.h"

#include <stdio.h>

#include "catalog/catalog.h"
#include "index/hnsw.h"
#include "model/registry.h"
#include "util/common.h"

#define VQ_MAX 4

struct vector_query {
    struct {
        char name[32];
        uint32_t dim;
        float *vec;
    } e[VQ_MAX];
    size_t n;
    const float *cur;
    uint32_t cur_dim;
};

void vector_query_free(vector_query_t *vq)
{
    if (!vq) return;
    for (size_t i = 0; i < vq->n; i++) eg_free(vq->e[i].vec);
    eg_free(vq);
}

int vector_query_new(embed_registry_t *reg, const char *query, const char *const *names,
                     size_t n_names, vector_query_t **out, char *err, size_t errsz)
{
    *out = NULL;
    vector_query_t *vq = eg_calloc(1, sizeof *vq);
    if (!vq) return ENGRAM_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n_names && !rc; i++) {
        size_t j;
        for (j = 0; j < vq->n; j++)
            if (!strcmp(vq->e[j].name, names[i])) break;
        if (j < vq->n) continue;
        if (vq->n == VQ_MAX) { rc = ENGRAM_EINVAL; snprintf(err, errsz, "too many embedders"); break; }
        embedder_t *e = registry_get(reg, names[i]);
        if (!e) {
            snprintf(err, errsz, "embedder \"%s\" is not configured on this server", names[i]);
            rc = ENGRAM_EINVAL;
            break;
        }
        if ((rc = embedder_resolve_dim(e, err, errsz))) break;
        uint32_t dim = embedder_dim(e);
        float *v = eg_malloc((size_t)dim * sizeof *v);
        if (!v) { rc = ENGRAM_ENOMEM; break; }
        size_t len = strlen(query);
        rc = embedder_embed(e, NULL, &query, &len, 1, v, err, errsz);
        if (rc) { eg_free(v); break; }
        snprintf(vq->e[vq->n].name, sizeof vq->e[vq->n].name, "%s", names[i]);
        vq->e[vq->n].dim = dim;
        vq->e[vq->n].vec = v;
        vq->n++;
    }
    if (rc) { vector_query_free(vq); return rc; }
    *out = vq;
    return 0;
}

int vector_query_prepare(vector_query_t *vq, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                         char *err, size_t errsz)
{
    coll_config_t cfg;
    int rc = catalog_coll_config(txn, st, ws, coll, &cfg);
    if (rc) return rc;
    hnsw_params_t p;
    rc = hnsw_params_get(txn, st, ws, coll, &p);
    if (rc) return rc; /* ENGRAM_ENOTFOUND: no vectors yet */
    for (size_t i = 0; i < vq->n; i++) {
        if (strcmp(vq->e[i].name, cfg.embedder)) continue;
        if (vq->e[i].dim != p.dim) {
            snprintf(err, errsz,
                     "the collection's vectors have %u dimensions but embedder \"%s\" gives %u",
                     p.dim, cfg.embedder, vq->e[i].dim);
            return ENGRAM_EINVAL;
        }
        vq->cur = vq->e[i].vec;
        vq->cur_dim = vq->e[i].dim;
        return 0;
    }
    snprintf(err, errsz, "no query embedding for embedder \"%s\"", cfg.embedder);
    return ENGRAM_EINVAL;
}

int vector_side_search(vector_query_t *vq, struct hnsw_cache *cache, MDB_txn *txn, store_t *st,
                       uint64_t ws, uint64_t coll, size_t k, int ef, vector_filter_fn filter,
                       void *ud, vector_hit_t *out, size_t *n)
{
    *n = 0;
    if (!vq->cur) return ENGRAM_EINVAL;
    hnsw_hit_t *h = eg_malloc((k ? k : 1) * sizeof *h);
    if (!h) return ENGRAM_ENOMEM;
    size_t nh = 0;
    size_t e = ef > 0 ? (size_t)ef : 0;
    int rc = cache ? hnsw_search_cached(cache, txn, ws, coll, vq->cur, vq->cur_dim, k, e, filter, ud, h, &nh)
                   : hnsw_search(txn, st, ws, coll, vq->cur, k, e, filter, ud, h, &nh);
    for (size_t i = 0; !rc && i < nh; i++) {
        out[i].chunk = h[i].id;
        out[i].score = h[i].score;
    }
    if (!rc) *n = nh;
    eg_free(h);
    return rc;
}
