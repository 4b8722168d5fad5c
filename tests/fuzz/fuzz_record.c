/*
 * fuzz_record.c - libFuzzer target for record_decode, the decoder of every
 * JSON record engram stores (users, keys, workspaces, collections,
 * documents) and for the renderers that show a document record.
 *
 * A record is a version byte and a JSON object: anything else must be
 * ENGRAM_ECORRUPT with no tree returned. An accepted record must be an
 * object that survives a write/decode round trip unchanged, and rendering it
 * as the API shows documents (catalog_write_doc / _status, which read
 * fields by name and must tolerate any types) must give valid JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "store/record.h"
#include "util/buf.h"
#include "util/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void render_ok(const json_t *rec, void (*fn)(jw_t *, const json_t *))
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    fn(&w, rec);
    if (!b.err) {
        json_t *j = NULL;
        if (json_parse(b.data, b.len, &j, NULL) != 0) abort();
        json_free(j);
    }
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *rec = (json_t *)1, *again = NULL;
    int rc = record_decode(data, size, &rec);
    if (rc != 0) {
        if (rec != NULL) abort();
        if (rc != ENGRAM_ECORRUPT && rc != ENGRAM_ENOMEM) abort();
        return 0;
    }
    if (!rec || rec->type != JSON_OBJECT || size < 1 || data[0] != RECORD_VERSION) abort();
    buf_t b = BUF_INIT;
    buf_append(&b, "\x01", 1);
    json_write(&b, rec);
    if (!b.err) {
        if (record_decode(b.data, b.len, &again) != 0) abort();
        if (!json_equal(rec, again)) abort();
    }
    render_ok(rec, catalog_write_doc);
    render_ok(rec, catalog_write_doc_status);
    (void)json_get_i64(rec, "did", 0);
    (void)json_get_bool(rec, "admin", 0);
    json_free(again);
    json_free(rec);
    buf_free(&b);
    return 0;
}
