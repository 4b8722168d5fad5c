/*
 * bm25.h - the BM25 inverted index of a collection, stored in LMDB.
 *
 * Per collection (keys start ws(8) coll(8)): term stats (document frequency),
 * postings in blocks of up to BM25_BLOCK chunk ids (delta varints + term
 * frequencies, each block carrying its max tf and min chunk length for
 * Block-Max WAND upper bounds), chunk lengths, and the collection totals
 * (N chunks, sum of lengths). Chunk ids are allocated increasingly, so
 * adding a chunk appends to the last block of each of its terms.
 *
 * Writes take a write txn (from a store_write callback); searches a read txn.
 * Search is an exact top-k by Block-Max WAND: the same top-k as scoring every
 * posting, without doing so.
 */
#ifndef ENGRAM_BM25_H
#define ENGRAM_BM25_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "index/tokenizer.h"
#include "store/store.h"

#define BM25_BLOCK 128
#define BM25_MAX_QUERY_TERMS 1024 /* distinct query terms; more is ENGRAM_ETOOBIG */

typedef struct bm25_params {
    double k1;  /* default 0.9 */
    double b;   /* default 0.4 */
} bm25_params_t;

#define BM25_PARAMS_DEFAULT ((bm25_params_t){0.9, 0.4})

typedef struct bm25_hit {
    uint64_t chunk_id;
    double score;
} bm25_hit_t;

/* Indexes text as chunk chunk_id of (ws, coll). chunk_id must be greater than
 * every chunk id already indexed in the collection. */
int bm25_add(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
             uint64_t chunk_id, const char *text, size_t len);
/* Removes chunk chunk_id, whose text was text (re-tokenised to find its
 * terms). Missing postings are not an error. */
int bm25_remove(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                uint64_t chunk_id, const char *text, size_t len);
/* Removes every key of the collection. */
int bm25_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll);

/* Filter callback: return 1 to keep chunk_id. NULL keeps all. */
typedef int (*bm25_filter_fn)(uint64_t chunk_id, void *ud);

/* Exact top-k of query over (ws, coll), best first, ties by lower chunk id.
 * out must hold k hits; *n_out gets the number found. */
int bm25_search(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                const char *query, size_t qlen, const bm25_params_t *p,
                bm25_filter_fn filter, void *filter_ud,
                size_t k, bm25_hit_t *out, size_t *n_out);

/* Collection totals (for stats and tests). */
int bm25_stats(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n_chunks,
               uint64_t *total_len);

#endif
