/*
 * catalog_internal.h - helpers shared by the catalog's files only.
 */
#ifndef ENGRAM_CATALOG_INTERNAL_H
#define ENGRAM_CATALOG_INTERNAL_H

#include "catalog/catalog.h"
#include "store/idmap.h"

/* Keys of two and three big-endian u64s. */
static inline store_key_t catalog_key3(uint64_t a, uint64_t b, uint64_t c)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a);
    skey_u64(&k, b);
    skey_u64(&k, c);
    return k;
}

static inline store_key_t catalog_key2(uint64_t a, uint64_t b)
{
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, a);
    skey_u64(&k, b);
    return k;
}

/* UUID of kind in workspace ws, else ENGRAM_ENOTFOUND. */
int catalog_resolve(MDB_txn *txn, store_t *st, uint64_t ws, const char *uuid, int kind,
                    idmap_entry_t *e);
int catalog_coll_record(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, json_t **out);
void catalog_write_coll(jw_t *w, const json_t *rec);
/* Adds to the collection's document/chunk counts (inside a write txn). */
int catalog_coll_add_counts(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, int64_t docs,
                            int64_t chunks);
/* Deletes a document and everything of it inside txn; with unindex, its
 * chunks also leave the BM25 index (tok required then). */
int catalog_doc_delete_txn(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws,
                           uint64_t coll, uint64_t doc, int unindex);

/* Rewrites a document record with fields replaced: fn writes the
 * replacement members, skip names them; out (optional) gets the record. */
typedef void (*catalog_doc_edit_fn)(jw_t *w, void *ud);
int catalog_doc_rewrite(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t doc,
                        const char *const *skip, catalog_doc_edit_fn fn, void *ud, buf_t *out);
/* Stores chunk (document index index of doc) and its DB_DOC_CHUNKS entry. */
int catalog_chunk_put(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t doc,
                      uint64_t chunk, uint32_t index, const chunk_in_t *c);
/* Taking chunks of (ws, coll) out of the indexes: catalog_chunk_unindex
 * removes a chunk's graph entries at once and gathers it with its BM25
 * terms (postings and vectors go in batches); catalog_unindex_finish removes the
 * postings of those still gathered and frees u; catalog_unindex_free only
 * frees (a failed transaction). */
typedef struct catalog_unindex {
    tokenizer_t *tok;
    uint64_t ws, coll;
    buf_t text;             /* scratch */
    struct bm25_terms *terms;
    uint64_t *ids;
    size_t n;
} catalog_unindex_t;
int catalog_chunk_unindex(MDB_txn *txn, store_t *st, catalog_unindex_t *u, uint64_t chunk);
int catalog_unindex_finish(MDB_txn *txn, store_t *st, catalog_unindex_t *u);
void catalog_unindex_free(catalog_unindex_t *u);

#endif
