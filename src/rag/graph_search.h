/*
 * graph_search.h - retrieval through a collection's knowledge graph.
 *
 * graph_search finds the query's entities (index/graph.h): every run of 1..4
 * query words is normalised and looked up exactly (longest run first, words
 * already covered skipped); a word of five or more letters left unmatched is
 * matched fuzzily (edit distance 1, or 2 for words of nine or more, against
 * names sharing its first two letters). Found entities are seeds, weighted
 * by how specific they are (1 / (1 + ln(1 + chunks mentioning them))). The
 * walk then adds each seed's strongest neighbours (1 hop, at most 6 per
 * seed, weight 0.5 x seed x relative edge weight) and, when there are few
 * seeds, their neighbours (2 hops, 0.25). Chunks mentioning any found
 * entity are scored by the sum of entity weight x (1 + ln mentions) and the
 * best k returned. Hubs are bounded: at most GRAPH_MENTIONS_MAX chunks are
 * read per entity.
 *
 * The context (optional) is a short text of the entities and relations
 * used, for the API's graph_context. Runs inside the caller's read
 * transaction; no allocation survives the call except what it writes to
 * out and context.
 */
#ifndef ENGRAM_GRAPH_SEARCH_H
#define ENGRAM_GRAPH_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"

#define GRAPH_MENTIONS_MAX 400
#define GRAPH_CONTEXT_MAX 1200  /* bytes of context per collection */

typedef struct graph_hit {
    uint64_t chunk;
    double score;
} graph_hit_t;

typedef int (*graph_filter_fn)(uint64_t chunk, void *ud);

/* Best k chunks for query in (ws, coll), into out (room for k); *n = how
 * many. filter (may be NULL) keeps a chunk when it returns non-zero.
 * context (may be NULL) gets the context text appended. *n_entities (may be
 * NULL) = query entities found. Statuses: 0, ENGRAM_ENOMEM,
 * ENGRAM_ECORRUPT, store errors. */
int graph_search(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const char *query,
                 size_t k, graph_filter_fn filter, void *filter_ud, graph_hit_t *out, size_t *n,
                 buf_t *context, size_t *n_entities);

/* Bounded Levenshtein distance between a and b: the distance, or max + 1
 * when it is larger than max. */
int graph_edit_distance(const char *a, size_t la, const char *b, size_t lb, int max);

#endif
