/*
 * idempotency.c - Idempotency-Key records (see idempotency.h).
 *
 * The stored key is sha256 of the client's key, so the table never holds
 * the client's string and every key has the same length. Expiry is checked
 * on read (an expired entry is "not found" even before it is swept); the
 * sweep in idem_put walks forward from the key it just wrote, inside the
 * same workspace, deleting expired entries among the next IDEM_SWEEP.
 * Because sha256 spreads keys uniformly, successive puts sweep different
 * parts of the workspace's range.
 */
#include "catalog/idempotency.h"

#include "util/common.h"
#include "util/hash.h"

#define VAL_LEN 24

int idem_key_valid(const char *key)
{
    if (!key) return ENGRAM_EINVAL;
    size_t n = strlen(key);
    if (n == 0 || n > IDEM_KEY_MAX) return ENGRAM_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7E) return ENGRAM_EINVAL;
    return 0;
}

static void idem_key(store_key_t *k, uint64_t ws, const char *key)
{
    unsigned char h[32];
    hash_sha256(key, strlen(key), h);
    skey_init(k);
    skey_u64(k, ws);
    skey_bytes(k, h, sizeof h);
}

static int expired(int64_t at, int64_t now_ms)
{
    return now_ms - at > IDEM_RETENTION_MS;
}

int idem_get(MDB_txn *txn, store_t *st, uint64_t ws, const char *key, int64_t now_ms,
             uint64_t *coll, uint64_t *doc)
{
    if (idem_key_valid(key)) return ENGRAM_EINVAL;
    store_key_t k;
    idem_key(&k, ws, key);
    MDB_val kv = skey_val(&k), v;
    int rc = mdb_get(txn, store_dbi(st, DB_IDEMPOTENCY), &kv, &v);
    if (rc) return store_status(rc);
    if (v.mv_size != VAL_LEN) return ENGRAM_ECORRUPT;
    const unsigned char *p = v.mv_data;
    if (expired((int64_t)be64_get(p + 16), now_ms)) return ENGRAM_ENOTFOUND;
    *coll = be64_get(p);
    *doc = be64_get(p + 8);
    return 0;
}

/* Deletes expired entries of ws among the IDEM_SWEEP after k. */
static int sweep(MDB_txn *txn, store_t *st, uint64_t ws, store_key_t *k, int64_t now_ms)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, store_dbi(st, DB_IDEMPOTENCY), &cur);
    if (rc) return store_status(rc);
    MDB_val kv = skey_val(k), v;
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    for (int i = 0; rc == 0 && i < IDEM_SWEEP; i++) {
        rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
        if (rc) break;
        if (kv.mv_size < 8 || be64_get(kv.mv_data) != ws) break;
        if (v.mv_size == VAL_LEN && expired((int64_t)be64_get((unsigned char *)v.mv_data + 16), now_ms))
            rc = mdb_cursor_del(cur, 0);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : store_status(rc);
}

int idem_put(MDB_txn *txn, store_t *st, uint64_t ws, const char *key, uint64_t coll, uint64_t doc,
             int64_t now_ms)
{
    if (idem_key_valid(key)) return ENGRAM_EINVAL;
    store_key_t k;
    idem_key(&k, ws, key);
    unsigned char val[VAL_LEN];
    be64_put(val, coll);
    be64_put(val + 8, doc);
    be64_put(val + 16, (uint64_t)now_ms);
    MDB_val kv = skey_val(&k), v = {VAL_LEN, val};
    int rc = store_status(mdb_put(txn, store_dbi(st, DB_IDEMPOTENCY), &kv, &v, 0));
    if (rc) return rc;
    return sweep(txn, st, ws, &k, now_ms);
}
