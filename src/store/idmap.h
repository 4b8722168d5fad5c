/*
 * idmap.h - public UUIDs to internal ids.
 *
 * The API names objects by random UUIDs; inside, everything is keyed by
 * small big-endian integers that sort and compress well. DB_UUIDS maps
 * uuid(16) -> kind(1) ws(8) coll(8) id(8). A lookup checks the kind, so a
 * document id passed where a collection id is expected is simply not found.
 */
#ifndef ENGRAM_IDMAP_H
#define ENGRAM_IDMAP_H

#include <lmdb.h>
#include <stdint.h>

#include "store/store.h"

enum { IDK_USER = 'u', IDK_WORKSPACE = 'w', IDK_KEY = 'k', IDK_COLLECTION = 'c',
       IDK_DOCUMENT = 'd', IDK_SESSION = 's' /* chat session (rag/sessions.h) */,
       IDK_MEMORY = 'm' /* memory (rag/memory.h) */ };

typedef struct idmap_entry {
    int kind;
    uint64_t ws, coll, id;
} idmap_entry_t;

/* New random UUID for (kind, ws, coll, id), recorded in txn; its text form
 * (37 bytes) in out. */
int idmap_new(MDB_txn *txn, store_t *st, int kind, uint64_t ws, uint64_t coll, uint64_t id,
              char out[37]);
/* Looks up a UUID given as text. Malformed text, an unknown UUID or another
 * kind: ENGRAM_ENOTFOUND. */
int idmap_get(MDB_txn *txn, store_t *st, const char *uuid_text, int kind, idmap_entry_t *out);
int idmap_del(MDB_txn *txn, store_t *st, const char *uuid_text);

#endif
