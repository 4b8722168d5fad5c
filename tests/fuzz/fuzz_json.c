/*
 * fuzz_json.c - libFuzzer target for the JSON parser and writer.
 *
 * Parses the input; when it is accepted, writes it back, parses that and
 * requires the two DOMs to be equal and the second write to be identical to
 * the first (writing is a fixpoint). Anything else - a crash, a sanitizer
 * report, a leak, a mismatch - is a finding. Also checks that an accepted
 * input is valid UTF-8 and that a rejected one left no tree behind.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *     tests/fuzz/fuzz_json.c src/util/json.c src/util/utf8.c \
 *     src/util/buf.c src/util/common.c -o /tmp/fj
 *   /tmp/fj -max_total_time=30 tests/fuzz/corpus/json
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/json.h"
#include "util/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *a = NULL, *b = NULL;
    json_error_t err;
    buf_t w1 = BUF_INIT, w2 = BUF_INIT;
    int rc = json_parse((const char *)data, size, &a, &err);
    if (rc != 0) {
        if (a != NULL || err.offset > size) abort();
        return 0;
    }
    if (!utf8_valid((const char *)data, size)) abort();
    json_write(&w1, a);
    if (w1.err) goto done; /* out of memory only */
    if (json_parse(w1.data, w1.len, &b, &err) != 0) abort();
    if (!json_equal(a, b)) abort();
    json_write(&w2, b);
    if (w2.err == 0 && (w1.len != w2.len || memcmp(w1.data, w2.data, w1.len) != 0)) abort();
    json_t *c = json_clone(a);
    if (c && !json_equal(a, c)) abort();
    json_free(c);
done:
    json_free(a);
    json_free(b);
    buf_free(&w1);
    buf_free(&w2);
    return 0;
}
