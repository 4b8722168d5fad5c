/*
 * catalog_internal.h - helpers shared by the catalog's files only.
 */
#ifndef ENGRAM_CATALOG_INTERNAL_H
#define ENGRAM_CATALOG_INTERNAL_H

#include "catalog/catalog.h"
#include "store/idmap.h"

/* Parses the JSON text in b into a DOM. */
int catalog_to_dom(const buf_t *b, json_t **out);
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

#endif
