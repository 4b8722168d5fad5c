/*
 * fuzz_zstd.c - libFuzzer target for store_decompress, the decoder of every
 * zstd value engram stores (original files, chunk text).
 *
 * Two modes, by the first byte's low bit:
 *   0: the rest is taken as a stored frame and decoded with a limit picked
 *      by the second byte. Success must stay within the limit and append
 *      exactly the declared bytes; failure must be ENGRAM_ECORRUPT (or
 *      ENOMEM) and leave the output buffer as it was.
 *   1: the rest is text: it is compressed with store_compress, one bit of
 *      the frame (chosen by the second and third bytes) is flipped, and the
 *      damaged frame decoded. The answer must be ENGRAM_ECORRUPT or the
 *      original text exactly - never different text passed off as right.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void decode_raw(const uint8_t *data, size_t size)
{
    static const size_t limits[] = {0, 1, 16, 1000, 65536, 1u << 20};
    size_t max_out = limits[data[0] % EG_ARRAY_LEN(limits)];
    buf_t out = BUF_INIT;
    buf_append(&out, "prefix", 6);
    if (out.err) return;
    int rc = store_decompress(data + 1, size - 1, max_out, &out);
    if (rc == 0) {
        if (out.len - 6 > max_out) abort();
    } else {
        if (rc != ENGRAM_ECORRUPT && rc != ENGRAM_ENOMEM) abort();
        if (out.len != 6) abort();
    }
    if (memcmp(out.data, "prefix", 6) != 0) abort();
    buf_free(&out);
}

static void flip_one_bit(const uint8_t *data, size_t size)
{
    if (size < 2) return;
    unsigned where = ((unsigned)data[0] << 8) | data[1];
    const uint8_t *text = data + 2;
    size_t len = size - 2;
    buf_t z = BUF_INIT, out = BUF_INIT;
    if (store_compress(text, len, &z) != 0) goto done;
    size_t bit = where % (z.len * 8);
    z.data[bit / 8] ^= (char)(1u << (bit % 8));
    int rc = store_decompress(z.data, z.len, len + 4096, &out);
    if (rc == 0 && (out.len != len || memcmp(out.data ? out.data : "", text, len) != 0)) abort();
    if (rc != 0 && rc != ENGRAM_ECORRUPT && rc != ENGRAM_ENOMEM) abort();
done:
    buf_free(&z);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    if (data[0] & 1) flip_one_bit(data + 1, size - 1);
    else decode_raw(data + 1, size - 1);
    return 0;
}
