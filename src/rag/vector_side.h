/*
 * vector_side.h - the semantic half of retrieval: a query embedded once per
 * embedder, searched in each collection's vector index.
 *
 * vector_query_new happens before any read transaction (a remote embedder
 * is a network call); vector_query_prepare picks (and if needed computes)
 * the embedding for the collection's embedder and checks its dimension
 * against the collection's index: ENGRAM_ENOTFOUND when the collection has
 * no vector index yet.
 */
#ifndef ENGRAM_VECTOR_SIDE_H
#define ENGRAM_VECTOR_SIDE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct embed_registry embed_registry_t;
typedef struct vector_query vector_query_t;

typedef struct vector_hit {
    uint64_t chunk;
    double score;   /* cosine similarity (or -L2 distance) */
} vector_hit_t;

typedef int (*vector_filter_fn)(uint64_t chunk, void *ud);

/* Embeds query once with each embedder named in names (the embedders of the
 * collections to search). ENGRAM_EINVAL: an embedder is not configured;
 * ENGRAM_EUPSTREAM: the service failed (err says how). */
int vector_query_new(embed_registry_t *reg, const char *query, const char *const *names,
                     size_t n_names, vector_query_t **out, char *err, size_t errsz);
void vector_query_free(vector_query_t *vq);
int vector_query_prepare(vector_query_t *vq, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                         char *err, size_t errsz);
/* cache (index/hnsw.h hnsw_cache_t, may be NULL) makes repeated searches
 * mostly pointer arithmetic. */
struct hnsw_cache;
int vector_side_search(vector_query_t *vq, struct hnsw_cache *cache, MDB_txn *txn, store_t *st,
                       uint64_t ws, uint64_t coll, size_t k, int ef, vector_filter_fn filter,
                       void *ud, vector_hit_t *out, size_t *n);

#endif
