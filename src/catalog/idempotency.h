/*
 * idempotency.h - the Idempotency-Key of POST /documents.
 *
 * A client that sends `Idempotency-Key: K` with an upload and retries it
 * (its connection broke before the answer, the server was killed after the
 * commit but before the 202, ...) gets the document the first attempt
 * created, with 200, instead of a second document - even when the retried
 * bytes differ. The key is scoped to the workspace and remembered for
 * IDEM_RETENTION_MS (24 h) after the upload that recorded it. Once it has
 * expired, or when its document was deleted meanwhile, the key is free
 * again: the next upload with it is a new upload and takes it over.
 *
 * The key is recorded in the same write transaction as the document (see
 * catalog_doc_create), so "the document exists" and "the key names it" are
 * never seen apart: a crash cannot leave one without the other.
 *
 * Layout: DB_IDEMPOTENCY  ws(8) sha256(key)(32) -> coll(8) doc(8) time_ms(8).
 * Expired entries are removed a few at a time by later puts of the same
 * workspace (idem_put sweeps up to IDEM_SWEEP entries after its own key), so
 * the table stays about as large as one day of keyed uploads.
 */
#ifndef ENGRAM_IDEMPOTENCY_H
#define ENGRAM_IDEMPOTENCY_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define IDEM_KEY_MAX 255
#define IDEM_RETENTION_MS (24LL * 3600 * 1000)
#define IDEM_SWEEP 16

/* 0 when key is 1..IDEM_KEY_MAX visible ASCII characters (0x21..0x7E),
 * else ENGRAM_EINVAL. */
int idem_key_valid(const char *key);

/* The document recorded under key in ws at most IDEM_RETENTION_MS before
 * now_ms: 0 with *coll and *doc set, ENGRAM_ENOTFOUND when there is none (or
 * it expired), ENGRAM_ECORRUPT for a malformed entry. Any txn. */
int idem_get(MDB_txn *txn, store_t *st, uint64_t ws, const char *key, int64_t now_ms,
             uint64_t *coll, uint64_t *doc);

/* Records key -> (coll, doc) at now_ms (replacing any older entry) and sweeps
 * expired entries of ws. Only inside a write callback. */
int idem_put(MDB_txn *txn, store_t *st, uint64_t ws, const char *key, uint64_t coll, uint64_t doc,
             int64_t now_ms);

#endif
