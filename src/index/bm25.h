/*
 * bm25.h - the BM25 inverted index of a collection, stored in LMDB.
 *
 * Per collection (keys start ws(8) coll(8)): term stats (document frequency),
 * postings in blocks of up to BM25_BLOCK entries (chunk id delta, term
 * frequency and chunk length as varints; each block carrying its max tf and
 * min chunk length for Block-Max WAND upper bounds), chunk lengths, and the
 * collection totals (N chunks, sum of lengths). The exact byte layout is
 * described at the top of bm25.c. Chunk ids are allocated increasingly, so
 * adding a chunk appends to the last block of each of its terms.
 *
 * Scoring is Lucene's BM25 (idf = ln(1 + (N - df + 0.5) / (df + 0.5)),
 * idf * tf / (tf + k1 * (1 - b + b * len / avglen)), a query term repeated r
 * times weighing r times), exact chunk lengths.
 *
 * Writes take a write txn (from a store_write callback); searches a read txn.
 * The same tokenizer options must be used for add, remove and search.
 * Search is an exact top-k by Block-Max WAND: the same top-k as scoring every
 * posting, without doing so. Any stored record that fails validation makes
 * the call return ENGRAM_ECORRUPT (never a crash); LMDB errors come back
 * through store_status(). All functions are thread-safe as far as LMDB
 * transactions are (one txn per thread) given one tokenizer_t per thread.
 */
#ifndef ENGRAM_BM25_H
#define ENGRAM_BM25_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "index/tokenizer.h"
#include "store/store.h"
#include "util/buf.h"

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

/* A chunk's distinct terms, sorted bytewise, with their frequencies: made by
 * bm25_terms_build outside any transaction (an ingest worker), indexed by
 * bm25_add_batch in the writer. */
typedef struct bm25_tref {
    uint32_t off, len;      /* the term: text.data + off, len bytes */
    uint32_t tf;
} bm25_tref_t;

typedef struct bm25_terms {
    buf_t text;             /* the terms, back to back */
    bm25_tref_t *v;
    size_t n, cap;
    uint32_t ntok;          /* tokens kept: the chunk's length */
} bm25_terms_t;

/* Tokenises text into t (zeroed first; bm25_terms_free it even on error). */
int bm25_terms_build(bm25_terms_t *t, tokenizer_t *tok, const char *text, size_t len);
void bm25_terms_free(bm25_terms_t *t);

typedef struct bm25_chunk {
    uint64_t chunk_id;
    const bm25_terms_t *terms;
} bm25_chunk_t;

/* Indexes chunks[0..n) of (ws, coll), ids strictly increasing and greater
 * than every chunk id already indexed in the collection - the same result as
 * bm25_add on each in turn, but each term's last postings block, its df and
 * the collection totals are read and written once for the whole batch.
 * ENGRAM_EEXIST if a chunk is indexed, ENGRAM_EINVAL if a term already has a
 * greater or equal id or the ids do not increase. */
int bm25_add_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const bm25_chunk_t *chunks,
                   size_t n);
/* Indexes text as chunk chunk_id of (ws, coll). chunk_id must be greater than
 * every chunk id already indexed in the collection: ENGRAM_EEXIST if the chunk
 * is indexed, ENGRAM_EINVAL if a term already has a greater or equal id. A
 * text without tokens still counts as a chunk of length 0. */
int bm25_add(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
             uint64_t chunk_id, const char *text, size_t len);
/* Removes chunks[0..n) of (ws, coll), ids strictly increasing, each with
 * the terms it was indexed with - the same result as bm25_remove on each,
 * but every postings block holding some of them is rewritten once, and each
 * term's df and the totals written once. Missing postings are not an error. */
int bm25_remove_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                      const bm25_chunk_t *chunks, size_t n);
/* Removes chunk chunk_id, whose text was text (re-tokenised to find its
 * terms). Missing postings are not an error. */
int bm25_remove(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                uint64_t chunk_id, const char *text, size_t len);
/* Removes every key of the collection. */
int bm25_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll);

/* Filter callback: return 1 to keep chunk_id. NULL keeps all. */
typedef int (*bm25_filter_fn)(uint64_t chunk_id, void *ud);

/* Exact top-k of query over (ws, coll), best first, ties by lower chunk id.
 * out (caller's memory) must hold k hits; *n_out gets the number found (0 on
 * error). p NULL means BM25_PARAMS_DEFAULT. filter is called only for chunks
 * that would enter the current top-k, in increasing chunk id order. More than
 * BM25_MAX_QUERY_TERMS distinct query terms: ENGRAM_ETOOBIG. */
int bm25_search(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                const char *query, size_t qlen, const bm25_params_t *p,
                bm25_filter_fn filter, void *filter_ud,
                size_t k, bm25_hit_t *out, size_t *n_out);

/* Collection totals (for stats and tests). */
int bm25_stats(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n_chunks,
               uint64_t *total_len);

/* Checks the collection's index for consistency (tools: engram verify):
 * every postings block decodes and names an indexed chunk with its stored
 * length, blocks of a term do not overlap, each term's df counts its
 * postings, no term record lacks postings, and the totals match the length
 * records. Returns 0, ENGRAM_ECORRUPT with a one-line description of the
 * first defect in msg (msglen bytes, may be 0), or an LMDB status. */
int bm25_verify(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, char *msg, size_t msglen);

#endif
