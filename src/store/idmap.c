/*
 * idmap.c - UUID <-> internal id table (see idmap.h).
 */
#include "store/idmap.h"

#include "util/common.h"
#include "util/uuid.h"

int idmap_new(MDB_txn *txn, store_t *st, int kind, uint64_t ws, uint64_t coll, uint64_t id,
              char out[37])
{
    unsigned char u[16], v[25];
    MDB_val key = {16, u}, val = {sizeof v, v};
    v[0] = (unsigned char)kind;
    be64_put(v + 1, ws);
    be64_put(v + 9, coll);
    be64_put(v + 17, id);
    for (int tries = 0; tries < 4; tries++) {
        uuid_new(u);
        int rc = mdb_put(txn, store_dbi(st, DB_UUIDS), &key, &val, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) continue; /* astronomically unlikely */
        if (rc) return store_status(rc);
        uuid_format(u, out);
        return 0;
    }
    return ENGRAM_EIO;
}

int idmap_get(MDB_txn *txn, store_t *st, const char *uuid_text, int kind, idmap_entry_t *out)
{
    unsigned char u[16];
    if (!uuid_text || uuid_parse(uuid_text, u)) return ENGRAM_ENOTFOUND;
    MDB_val key = {16, u}, val;
    int rc = mdb_get(txn, store_dbi(st, DB_UUIDS), &key, &val);
    if (rc) return store_status(rc);
    if (val.mv_size != 25) return ENGRAM_ECORRUPT;
    const unsigned char *v = val.mv_data;
    if (v[0] != kind) return ENGRAM_ENOTFOUND;
    out->kind = v[0];
    out->ws = be64_get(v + 1);
    out->coll = be64_get(v + 9);
    out->id = be64_get(v + 17);
    return 0;
}

int idmap_del(MDB_txn *txn, store_t *st, const char *uuid_text)
{
    unsigned char u[16];
    if (!uuid_text || uuid_parse(uuid_text, u)) return ENGRAM_ENOTFOUND;
    MDB_val key = {16, u};
    int rc = mdb_del(txn, store_dbi(st, DB_UUIDS), &key, NULL);
    if (rc == MDB_NOTFOUND) return 0;
    return store_status(rc);
}
