/*
 * fuzz_chunk.c - libFuzzer target for the stored chunk value
 * (catalog_chunk_decode) and the zstd text inside it.
 *
 * A chunk value is a 43-byte header (version, document id, index, start,
 * end, token count, uuid, heading length), the heading, then a zstd frame
 * of the text. Decoding must either fail with ENGRAM_ECORRUPT or return
 * pointers that stay inside the value with end >= start; the text frame
 * must then decode or be ENGRAM_ECORRUPT, within CHUNK_MAX_TEXT. With the
 * first byte's top bit set the input is turned into a valid value first
 * (text compressed by store_compress) and one byte of it replaced: the
 * text must then come back exactly or the value be refused.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes v; returns 0 with the text in *text, or a status. */
static int decode(const unsigned char *v, size_t len, buf_t *text)
{
    chunk_rec_t cr;
    int rc = catalog_chunk_decode(v, len, &cr);
    if (rc) {
        if (rc != ENGRAM_ECORRUPT) abort();
        return rc;
    }
    const unsigned char *end = v + len;
    const unsigned char *h = (const unsigned char *)cr.heading, *z = cr.ztext;
    if (h < v || h + cr.heading_len > end || z < v || z + cr.ztext_len > end) abort();
    if (cr.end < cr.start || strlen(cr.uuid) != 36) abort();
    rc = store_decompress(cr.ztext, cr.ztext_len, CHUNK_MAX_TEXT, text);
    if (rc && rc != ENGRAM_ECORRUPT && rc != ENGRAM_ENOMEM) abort();
    if (!rc && text->len > CHUNK_MAX_TEXT) abort();
    return rc;
}

static void damaged_valid(const uint8_t *data, size_t size)
{
    if (size < 3) return;
    size_t pos = ((size_t)data[0] << 8) | data[1];
    unsigned char repl = data[2];
    const uint8_t *txt = data + 3;
    size_t tl = size - 3;
    buf_t v = BUF_INIT, text = BUF_INIT;
    unsigned char hdr[43] = {1};
    hdr[16] = 7;       /* start 7 */
    hdr[20] = 9;       /* end 9 */
    hdr[42] = 3;       /* heading "Sec" */
    buf_append(&v, hdr, sizeof hdr);
    buf_append(&v, "Sec", 3);
    if (v.err || store_compress(txt, tl, &v) != 0) goto done;
    pos %= v.len;
    /* header fields other than the lengths are data, not checkable: damage
     * only the heading length, the heading and the frame */
    if (pos < 41) pos = 41 + pos % (v.len - 41);
    if ((unsigned char)v.data[pos] == repl) goto done;
    v.data[pos] = (char)repl;
    if (decode((const unsigned char *)v.data, v.len, &text) == 0 && pos >= 46) {
        if (text.len != tl || memcmp(text.data ? text.data : "", txt, tl) != 0) abort();
    }
done:
    buf_free(&v);
    buf_free(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    if (data[0] & 0x80) {
        damaged_valid(data + 1, size - 1);
        return 0;
    }
    buf_t text = BUF_INIT;
    decode(data + 1, size - 1, &text);
    buf_free(&text);
    return 0;
}
