/*
 * retrieve.h - retrieval over a workspace's collections.
 *
 * retrieve_search ranks chunks: keyword (BM25 of each target collection),
 * semantic (the collection's embedder + its HNSW index), hybrid (both,
 * fused by reciprocal rank fusion, k = 60, each side fetching more
 * candidates than top_k) and hierarchical (documents ranked first by their
 * best fused chunks, then each document's best chunks). The metadata filter
 * is applied inside both indexes, before a candidate is ranked. Results
 * across collections merge by score. Everything runs in one short read
 * transaction (a query embedding through a remote service happens before it).
 *
 * graph (mode) ranks the chunks that mention the query's entities and their
 * neighbourhood (rag/graph_search.h). enable_graph with another mode runs
 * the graph search beside it per collection and merges: the mode's list
 * becomes reciprocal-rank scores (hybrid and hierarchical already are) and
 * each graph-found chunk adds RETRIEVE_GRAPH_WEIGHT / (60 + its graph rank),
 * joining as a new candidate when the mode did not find it; every chunk the
 * graph found is marked graph_sourced. A modest weight makes the graph a
 * tie-breaker and a source of extra candidates rather than an override, so
 * it does not lower the mode's quality (measured: docs/GRAPH.md).
 * rerank takes the best RERANK_MAX merged candidates after the read
 * transaction ended (a remote reranker is a network call): with a rerank
 * service its scores order them (falling back to the built-in reranker on
 * any failure); the built-in score is added to the candidate's rank prior
 * ((61) / (60 + rank)) with weight RETRIEVE_RERANK_WEIGHT. Then the list is
 * cut to top_k.
 *
 * retrieve_render writes the API's results array for hits; retrieve_fetch
 * gives the chunks' text and documents as plain data (for chat). Both open
 * their own read transaction: hits stay valid across transactions (they are
 * ids), a hit whose chunk was deleted meanwhile is skipped.
 */
#ifndef ENGRAM_RETRIEVE_H
#define ENGRAM_RETRIEVE_H

#include <stddef.h>
#include <stdint.h>

#include "index/bm25.h"
#include "index/tokenizer.h"
#include "store/store.h"
#include "util/json.h"

typedef struct embed_registry embed_registry_t;

/* Long-lived services retrieval needs. embedders may be NULL (then
 * semantic modes answer ENGRAM_EUNSUPPORTED). */
typedef struct hnsw_cache hnsw_cache_t;

typedef struct retrieve_env {
    store_t *st;
    embed_registry_t *embedders;
    const char *rerank_url;         /* NULL/"": the built-in reranker (rag/rerank.h) */
    hnsw_cache_t *vcache;           /* vector search cache (index/hnsw.h), may be NULL */
} retrieve_env_t;

typedef enum { RMODE_KEYWORD, RMODE_SEMANTIC, RMODE_HYBRID, RMODE_HIERARCHICAL, RMODE_GRAPH } rmode_t;

typedef struct retrieve_req {
    const char *query;
    rmode_t mode;
    int top_k;                      /* 1..100 */
    const char *coll_uuid;          /* NULL: every collection of ws */
    const json_t *metadata_filter;  /* object or NULL */
    bm25_params_t bm25;
    int ef_search;                  /* 0: adaptive */
    int enable_graph;               /* also search the knowledge graph and merge */
    int rerank;                     /* re-order the candidates (rag/rerank.h) */
} retrieve_req_t;

typedef struct retrieve_hit {
    uint64_t coll, chunk;
    double score;          /* the ranking score of the mode */
    double bm25;           /* side scores and 1-based ranks; rank 0 = not found by that side */
    int bm25_rank;
    double vector;
    int vector_rank;
    int graph_sourced;
} retrieve_hit_t;

#define RETRIEVE_GRAPH_WEIGHT 0.1
#define RETRIEVE_RERANK_WEIGHT 0.15

/* Parses a mode name; -1 when unknown. */
int retrieve_mode_parse(const char *s);
const char *retrieve_mode_name(rmode_t m);

/* Ranks chunks. *hits (caller frees with eg_free) holds at most top_k.
 * ENGRAM_ENOTFOUND: coll_uuid is not the workspace's. ENGRAM_EUNSUPPORTED:
 * the mode is not available. ENGRAM_EUPSTREAM: the embedding service
 * failed (err says how). */
int retrieve_search(const retrieve_env_t *env, tokenizer_t *tok, uint64_t ws,
                    const retrieve_req_t *r, retrieve_hit_t **hits, size_t *n, char *err,
                    size_t errsz);

/* The graph_context text for a request that used the graph: the query's
 * entities and the relations walked, per collection searched, appended to
 * out (nothing when the query names no known entity).
 * ENGRAM_ENOTFOUND: coll_uuid is not the workspace's. */
int retrieve_graph_context(const retrieve_env_t *env, uint64_t ws, const retrieve_req_t *r,
                           buf_t *out);

/* Appends the API's JSON results array for hits to w; *n_out = results
 * written (deleted chunks are skipped). */
int retrieve_render(const retrieve_env_t *env, uint64_t ws, const retrieve_hit_t *hits, size_t n,
                    int explain, jw_t *w, size_t *n_out);

typedef struct retrieved_chunk {
    char chunk_id[37], document_id[37], collection_id[37];
    char *title;          /* document title */
    char *text;           /* chunk text */
    size_t text_len;
    uint32_t chunk_index;
    double score;
    int graph_sourced;
} retrieved_chunk_t;

/* The chunks of hits as data, in order (deleted ones skipped). */
int retrieve_fetch(const retrieve_env_t *env, uint64_t ws, const retrieve_hit_t *hits, size_t n,
                   retrieved_chunk_t **out, size_t *n_out);
void retrieve_fetch_free(retrieved_chunk_t *c, size_t n);

/* Reciprocal rank fusion of two ranked lists of (coll, chunk) (either may be
 * empty): score = sum of 1 / (k + rank). Writes at most cap results sorted
 * by fused score (ties: better best rank, then lower ids) with both sides'
 * scores and ranks filled. Pure; exposed for the evaluator and tests. */
int retrieve_fuse_rrf(const retrieve_hit_t *a, size_t na, const retrieve_hit_t *b, size_t nb,
                      double k, size_t cap, retrieve_hit_t **out, size_t *n_out);

/* 1 if metadata (an object) matches every member of filter exactly. */
int retrieve_filter_match(const json_t *filter, const json_t *metadata);

#endif
