/*
 * vector_side.c - the semantic half of retrieval (see vector_side.h).
 *
 * Until the vector index and embedders are wired in, every entry point says
 * ENGRAM_EUNSUPPORTED, which the API answers as "not available yet".
 */
#include "rag/vector_side.h"

#include "util/common.h"

int vector_query_new(embed_registry_t *reg, const char *query, vector_query_t **out)
{
    (void)reg;
    (void)query;
    *out = NULL;
    return ENGRAM_EUNSUPPORTED;
}

void vector_query_free(vector_query_t *vq) { (void)vq; }

int vector_query_prepare(vector_query_t *vq, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                         char *err, size_t errsz)
{
    (void)vq; (void)txn; (void)st; (void)ws; (void)coll; (void)err; (void)errsz;
    return ENGRAM_EUNSUPPORTED;
}

int vector_side_search(vector_query_t *vq, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                       size_t k, int ef, vector_filter_fn filter, void *ud, vector_hit_t *out,
                       size_t *n)
{
    (void)vq; (void)txn; (void)st; (void)ws; (void)coll; (void)k; (void)ef; (void)filter;
    (void)ud; (void)out;
    *n = 0;
    return ENGRAM_EUNSUPPORTED;
}
