/*
 * hnsw.h - the persistent HNSW vector index of a collection, stored in LMDB
 * and searched in place through the memory map.
 *
 * One index per (ws, coll). Nodes get dense internal slots 0, 1, 2, ... in
 * insertion order (a map chunk id -> slot finds them); vectors and neighbour
 * lists live in large fixed-size blocks of many slots each, vectors apart
 * from the (mutable) link lists, so a search turns a slot into an address by
 * shifts and masks over a table of block pointers into the map, and an
 * insert rewrites a few link blocks and one vector block.
 *
 * Layout (keys start ws(8) coll(8), big-endian; see hnsw_store.c):
 *   DB_HNSW_META   ws coll                    -> meta record (64 bytes: magic
 *                  "HNSW", format version, byte-order mark, dim, metric, M,
 *                  ef_construction, block shifts, max level, entry slot, slot
 *                  count, live count, generation)
 *   DB_HNSW_NODES  ws coll 'V' block(4)       -> vectors of 2^vshift slots
 *                  ws coll 'L' level(1) block(4) -> link records of 2^lshift
 *                  slots at that level (level 0 records also carry the
 *                  node's id, level and deleted flag)
 *                  ws coll 'I' id(8)          -> slot(4)
 * Block contents are in host byte order (floats, u32): the meta's
 * byte-order mark refuses a file moved to a machine of the other order.
 *
 * Algorithm: Malkov & Yashunin's HNSW with the neighbour-selection heuristic;
 * levels drawn from a hash of the id (deterministic runs). A search descends
 * greedily to level 2, searches level 1 with a beam of 3 and starts level 0
 * from all of its results (docs/VECTORS.md: it recovers the recall a greedy
 * level 1 loses to unlucky level draws, for about 5 % more distances at
 * ef 10). Deleted nodes stay
 * in the graph as tombstones (traversed, never returned) after their
 * neighbours' lists are repaired; filtered search explores the graph with the
 * filter applied to results only and falls back to an exact scan when the
 * graph search finds fewer than k matches, so it returns k hits whenever k
 * live nodes match.
 *
 * Transactions: writes (create, insert, delete, drop) take the caller's write
 * txn (a store_write callback); they keep their work in memory and write it
 * at the end of the call, so a rerun of the callback is safe. Searches take a
 * read txn. Pointers into the map are never kept beyond the txn, except in a
 * hnsw_cache_t, which keys its block tables by the index generation (the id
 * of the last write txn, stored in the meta) and the map address.
 *
 * Errors: ENGRAM_EINVAL bad arguments (wrong dimension, non-finite values,
 * params out of range), ENGRAM_ENOTFOUND no index or no such id,
 * ENGRAM_EEXIST index or id already present, ENGRAM_ECORRUPT a stored record
 * failed validation (never a crash), ENGRAM_EVERSION another format version
 * or byte order; LMDB errors through store_status(). Thread-safe as LMDB is
 * (one txn per thread); a hnsw_cache_t may be shared by threads.
 */
#ifndef ENGRAM_HNSW_H
#define ENGRAM_HNSW_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define HNSW_FORMAT_VERSION 1
#define HNSW_MAX_DIM 16384
#define HNSW_MAX_M 64
#define HNSW_MAX_LEVEL 15
#define HNSW_MAX_EF 100000

typedef enum { HNSW_COSINE = 1, HNSW_L2 = 2 } hnsw_metric_t;

typedef struct hnsw_params {
    uint32_t dim;             /* 1..HNSW_MAX_DIM */
    int metric;               /* hnsw_metric_t */
    uint32_t M;               /* 2..HNSW_MAX_M; 0 = default 16 */
    uint32_t ef_construction; /* 0 = default 200; at least M */
} hnsw_params_t;

typedef struct hnsw_hit {
    uint64_t id;
    float distance;  /* COSINE: 1 - cosine similarity; L2: Euclidean distance */
    float score;     /* COSINE: cosine similarity; L2: -distance */
} hnsw_hit_t;

/* Creates an empty index. Zero M / ef_construction take the defaults, which
 * is also what is stored. When an index exists: ENGRAM_EEXIST if its params
 * are the same (a caller may treat that as done), ENGRAM_EINVAL if they
 * differ (never rebuilt: drop it first). */
int hnsw_create(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const hnsw_params_t *p);
/* The stored params. ENGRAM_ENOTFOUND when there is no index. */
int hnsw_params_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, hnsw_params_t *out);

/* Adds vec (params.dim floats, all finite) as node id. ENGRAM_EEXIST when id
 * is indexed. COSINE vectors are normalised by the index (a zero vector
 * stays zero: distance 1 to all). The functions taking a vector without its
 * length trust it to have the index's dimension: callers that cannot be
 * sure use hnsw_insert_batch / hnsw_search_cached, which check it. */
int hnsw_insert(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id, const float *vec);
/* n inserts in one call: vecs holds n rows of dim floats; dim must be the
 * index's (else ENGRAM_EINVAL). Much cheaper than n calls (blocks are
 * fetched and written once per call). All or nothing: on error nothing was
 * written (the caller's txn is untouched). ids must be distinct. */
int hnsw_insert_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                      const uint64_t *ids, const float *vecs, size_t n, uint32_t dim);
/* Removes id from results and repairs its neighbours' lists (the node stays
 * as a routing tombstone; the id may be inserted again later, as a new
 * node). ENGRAM_ENOTFOUND when id is not indexed or already deleted. */
int hnsw_delete(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id);
/* Deletes ids[0..n) in one pass: all are marked first, then the live
 * neighbours of each are repaired, and the blocks written once. Ids not
 * indexed are skipped; *deleted (optional) counts the others. All or
 * nothing on error, like hnsw_insert_batch. ENGRAM_ENOTFOUND: no index. */
int hnsw_delete_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const uint64_t *ids,
                      size_t n, size_t *deleted);

/* Filter: return nonzero to keep id. Called from the searching thread. */
typedef int (*hnsw_filter_fn)(uint64_t id, void *ud);

/* The k nearest live nodes to q (dim floats, finite), nearest first, into
 * out (caller's memory, k entries); *n_out gets the count (0 on error).
 * ef = size of the dynamic candidate list, 0 = adaptive (max(64, 2k)),
 * raised to k when smaller. filter NULL keeps all; with a filter, k hits
 * come back whenever at least k live nodes match. An empty index gives 0
 * hits. Dimension mismatch: ENGRAM_EINVAL. */
int hnsw_search(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const float *q, size_t k,
                size_t ef, hnsw_filter_fn filter, void *ud, hnsw_hit_t *out, size_t *n_out);

/* Removes the index and all its nodes. ENGRAM_ENOTFOUND when none. */
int hnsw_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll);
/* Number of live (not deleted) nodes. ENGRAM_ENOTFOUND when no index. */
int hnsw_count(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n);
/* Structure checks for `engram verify`: meta, every block's presence and
 * size, link counts and targets, levels, the id map both ways, counts, the
 * entry point. 0 when clean; else ENGRAM_ECORRUPT with a description of the
 * first problem in msg (always NUL-terminated when msglen > 0). */
int hnsw_verify(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, char *msg, size_t msglen);

/*
 * Search cache. hnsw_search fetches each block it touches with an LMDB
 * lookup; a cache keeps, per collection, the table of block addresses in
 * the map and a pool of visited-sets across read txns, so a search does no
 * lookup but the meta record. Entries are valid while the collection's
 * generation and the map address are unchanged and are rebuilt otherwise
 * (a cursor walk over the collection's blocks). One cache per store, shared
 * by any number of threads; free it before store_close.
 */
typedef struct hnsw_cache hnsw_cache_t;
int hnsw_cache_new(store_t *st, hnsw_cache_t **out);
void hnsw_cache_free(hnsw_cache_t *c);
/* hnsw_search through the cache c, with the query's dimension checked
 * (dim differing from the index's: ENGRAM_EINVAL). txn must be a read txn
 * of c's store. */
int hnsw_search_cached(hnsw_cache_t *c, MDB_txn *txn, uint64_t ws, uint64_t coll, const float *q,
                       uint32_t dim, size_t k, size_t ef, hnsw_filter_fn filter, void *ud,
                       hnsw_hit_t *out, size_t *n_out);

/* The exact top-k by scanning every live node (the reference for tests and
 * benchmarks, and the filtered-search fallback). Same contract as
 * hnsw_search. */
int hnsw_search_exact(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const float *q,
                      size_t k, hnsw_filter_fn filter, void *ud, hnsw_hit_t *out, size_t *n_out);

#endif
