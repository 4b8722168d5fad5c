/*
 * record.c - version byte + JSON records (see record.h).
 */
#include "store/record.h"

#include "store/store.h"
#include "util/common.h"

int record_decode(const void *data, size_t len, json_t **out)
{
    const unsigned char *p = data;
    *out = NULL;
    if (len < 3 || p[0] != RECORD_VERSION) return ENGRAM_ECORRUPT;
    json_t *j = NULL;
    int rc = json_parse((const char *)p + 1, len - 1, &j, NULL);
    if (rc == ENGRAM_ENOMEM) return rc;
    if (rc || j->type != JSON_OBJECT) {
        json_free(j);
        return ENGRAM_ECORRUPT;
    }
    *out = j;
    return 0;
}

int record_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, json_t **out)
{
    MDB_val v;
    *out = NULL;
    int rc = mdb_get(txn, dbi, key, &v);
    if (rc) return store_status(rc);
    return record_decode(v.mv_data, v.mv_size, out);
}

int record_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, const buf_t *json)
{
    if (json->err) return json->err;
    MDB_val v;
    v.mv_size = json->len + 1;
    int rc = mdb_put(txn, dbi, key, &v, MDB_RESERVE);
    if (rc) return store_status(rc);
    unsigned char *p = v.mv_data;
    p[0] = RECORD_VERSION;
    memcpy(p + 1, json->data, json->len);
    return 0;
}

int record_put_json(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, const json_t *j)
{
    buf_t b = BUF_INIT;
    json_write(&b, j);
    int rc = record_put(txn, dbi, key, &b);
    buf_free(&b);
    return rc;
}

void record_copy_members(jw_t *w, const json_t *obj, const char *const *skip)
{
    if (!obj || obj->type != JSON_OBJECT) return;
    for (size_t i = 0; i < obj->len; i++) {
        int skipped = 0;
        for (const char *const *s = skip; s && *s; s++) {
            if (strcmp(*s, obj->keys[i]) == 0) { skipped = 1; break; }
        }
        if (skipped) continue;
        jw_key(w, obj->keys[i]);
        jw_json(w, obj->items[i]);
    }
}
int64_t json_get_i64(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER) return def;
    return v->is_int ? v->integer : (int64_t)v->number;
}

int json_get_bool(const json_t *obj, const char *key, int def)
{
    const json_t *v = json_get(obj, key);
    if (!v || v->type != JSON_BOOL) return def;
    return v->boolean;
}

int record_scan_ws(MDB_txn *txn, MDB_dbi dbi, uint64_t ws, record_scan_fn fn, void *ud)
{
    MDB_cursor *cur;
    int rc = store_status(mdb_cursor_open(txn, dbi, &cur));
    if (rc) return rc;
    unsigned char pre[8];
    be64_put(pre, ws);
    MDB_val kv = {8, pre}, dv;
    int mrc = mdb_cursor_get(cur, &kv, &dv, MDB_SET_RANGE);
    while (mrc == 0 && kv.mv_size == 16 && memcmp(kv.mv_data, pre, 8) == 0) {
        json_t *rec = NULL;
        rc = record_decode(dv.mv_data, dv.mv_size, &rec);
        if (!rc) rc = fn(be64_get((const unsigned char *)kv.mv_data + 8), rec, ud);
        if (rc) break;
        mrc = mdb_cursor_get(cur, &kv, &dv, MDB_NEXT);
    }
    if (!rc && mrc != 0 && mrc != MDB_NOTFOUND) rc = store_status(mrc);
    mdb_cursor_close(cur);
    return rc;
}

int record_dom(const buf_t *b, json_t **out)
{
    if (b->err) return b->err;
    int rc = json_parse(b->data, b->len, out, NULL);
    return rc == ENGRAM_EINVAL ? ENGRAM_ECORRUPT : rc;
}
