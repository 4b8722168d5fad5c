/*
 * files.c - a document's original bytes (see catalog.h, catalog_doc_file).
 *
 * DB_FILES holds ws(8) doc(8) -> one zstd frame of the uploaded bytes. The
 * frame is decoded after the read transaction has ended only in the sense
 * that its bytes are copied out first: the caller gets its own buffer and
 * may stream it freely.
 */
#include <stdio.h>

#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"

/* Largest original we hand out: the upload limit's maximum (4 GiB). */
#define FILE_MAX_BYTES ((size_t)4 << 30)

int catalog_doc_file(store_t *st, uint64_t ws, const char *doc_uuid, buf_t *bytes, json_t **rec)
{
    if (!st || !doc_uuid || !bytes || !rec) return ENGRAM_EINVAL;
    *rec = NULL;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    buf_t z = BUF_INIT;
    idmap_entry_t e;
    rc = idmap_get(txn, st, doc_uuid, IDK_DOCUMENT, &e);
    if (!rc && ws && e.ws != ws) rc = ENGRAM_ENOTFOUND;
    if (!rc) rc = catalog_doc_get_internal(txn, st, e.ws, e.coll, e.id, rec);
    if (!rc) {
        store_key_t k;
        skey_init(&k);
        skey_u64(&k, e.ws);
        skey_u64(&k, e.id);
        MDB_val kv = skey_val(&k), v;
        rc = store_status(mdb_get(txn, store_dbi(st, DB_FILES), &kv, &v));
        if (!rc) {
            buf_append(&z, v.mv_data, v.mv_size);
            if (z.err) rc = z.err;
        }
    }
    store_read_end(st, txn);
    if (!rc) rc = store_decompress(z.data, z.len, FILE_MAX_BYTES, bytes);
    buf_free(&z);
    if (rc) {
        json_free(*rec);
        *rec = NULL;
    }
    return rc;
}
