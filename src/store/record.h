/*
 * record.h - JSON-encoded records for the low-traffic tables (users, keys,
 * workspaces, collections, documents).
 *
 * A record value is one version byte (RECORD_VERSION) followed by a compact
 * JSON object. Hot structures (postings, chunk text) use binary codecs
 * instead. Decoding validates the version byte and the JSON: anything else is
 * ENGRAM_ECORRUPT, never a crash.
 */
#ifndef ENGRAM_RECORD_H
#define ENGRAM_RECORD_H

#include <lmdb.h>

#include "util/buf.h"
#include "util/json.h"

#define RECORD_VERSION 1

/* Reads key from dbi and parses it. *out is owned by the caller (json_free).
 * ENGRAM_ENOTFOUND when absent, ENGRAM_ECORRUPT when malformed. */
int record_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, json_t **out);
/* Parses a raw record value. */
int record_decode(const void *data, size_t len, json_t **out);
/* Parses JSON text our own code wrote (b) into a DOM: b's error if it has
 * one; text that does not parse is ENGRAM_ECORRUPT. */
int record_dom(const buf_t *b, json_t **out);
/* Calls fn(id, rec, ud) for every record of dbi whose key is ws(8) id(8)
 * (big-endian), in id order; fn owns rec (json_free it). fn's non-zero
 * return ends the scan and is returned; a record that does not decode is
 * ENGRAM_ECORRUPT. */
typedef int (*record_scan_fn)(uint64_t id, json_t *rec, void *ud);
int record_scan_ws(MDB_txn *txn, MDB_dbi dbi, uint64_t ws, record_scan_fn fn, void *ud);
/* Writes the JSON text in b (without the version byte) as key's record. */
int record_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, const buf_t *json);
/* Serialises j and writes it. */
int record_put_json(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, const json_t *j);

/* Writes the members of object obj except those named in skip (a
 * NULL-terminated list) into the object being written by w: used to
 * rewrite a record with some fields replaced. */
void record_copy_members(jw_t *w, const json_t *obj, const char *const *skip);
/* Integer member or def when missing / not a number. */
int64_t json_get_i64(const json_t *obj, const char *key, int64_t def);
int json_get_bool(const json_t *obj, const char *key, int def);

#endif
