/*
 * fuzz_http.c - libFuzzer target for the request-head parser and the chunked
 * decoder (src/http/parse.c).
 *
 *   clang -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
 *         tests/fuzz/fuzz_http.c src/http/parse.c src/util/(all .c) -lsodium -o fh
 *   ./fh tests/fuzz/corpus/http
 *
 * The first byte picks a small head limit and a body limit; the rest is a
 * request. Each input is parsed whole and incrementally (in pieces of a
 * size taken from the input), and the two answers must agree; a complete
 * head is materialised into an http_request_t and its accessors exercised;
 * the bytes after the head go through the chunked decoder whole and one byte
 * at a time, which must agree too. Inputs are copied to exact-size heap
 * blocks so ASan catches any overread.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.h"
#include "util/common.h"

static int chunked_run(const char *in, size_t n, uint64_t max, size_t piece, uint64_t *total,
                       size_t *end)
{
    http_chunked_t c;
    http_chunked_init(&c, max);
    size_t pos = 0;
    int rc = HTTP_CHUNK_MORE;
    *total = 0;
    while (pos < n) {
        size_t len = piece ? (n - pos < piece ? n - pos : piece) : n - pos;
        char *p = malloc(len);
        memcpy(p, in + pos, len);
        size_t off = 0;
        for (;;) {
            size_t used, doff, dlen;
            rc = http_chunked_feed(&c, p + off, len - off, &used, &doff, &dlen);
            if (used > len - off) abort();
            if (rc == HTTP_CHUNK_DATA) {
                if (doff + dlen > len - off || dlen == 0) abort();
                *total += dlen;
            }
            off += used;
            if (rc != HTTP_CHUNK_DATA) break;
        }
        free(p);
        pos += off;
        if (rc < 0 || rc == HTTP_CHUNK_DONE) break;
        if (off != len) abort(); /* MORE consumes everything */
    }
    *end = pos;
    if (*total > max) abort();
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t max_head = 64 + (size_t)(data[0] & 0x7f) * 64;
    uint64_t max_body = (data[0] & 0x80) ? 16 : (1u << 20);
    size_t piece = (data[1] & 7) + 1;
    const char *in = (const char *)data + 2;
    size_t n = size - 2;

    char *whole = malloc(n ? n : 1);
    memcpy(whole, in, n);
    http_head_t h1, h2;
    int a = http_parse_head(whole, n, max_head, &h1);

    /* Incremental, in pieces, each time from a fresh exact-size copy. */
    http_head_parser_t p;
    http_head_parser_init(&p);
    int b = 0;
    for (size_t k = piece < n ? piece : n; ; k = k + piece < n ? k + piece : n) {
        char *pre = malloc(k ? k : 1);
        memcpy(pre, in, k);
        b = http_head_scan(&p, pre, k, max_head, &h2);
        free(pre);
        if (b != 0 || k == n) break;
    }
    /* Errors may be found earlier by the incremental scan only when the
     * whole parse fails too; completes must be identical. */
    if ((a > 0) != (b > 0)) abort();
    if (a > 0 && a != b) abort();
    if (a < 0 && b == 0) abort();
    if (a > 0) {
        if ((size_t)a > n || (size_t)a > max_head) abort();
        http_request_t req;
        memset(&req, 0, sizeof req);
        char *store = NULL;
        if (http_request_from_head(&req, whole, &h1, &store) == 0) {
            if (!req.path || req.path[0] == '\0') abort();
            (void)http_header(&req, "host");
            char out[32];
            (void)http_query_param(&req, "q", out, sizeof out);
            (void)http_query_param(&req, "a b", out, 1);
            (void)http_request_id_ok(req.target);
            eg_free(store);
        }
        /* The body, whatever the head said. */
        uint64_t t1, t2;
        size_t e1, e2;
        int c1 = chunked_run(in + a, n - (size_t)a, max_body, 0, &t1, &e1);
        int c2 = chunked_run(in + a, n - (size_t)a, max_body, 1, &t2, &e2);
        if (c1 != c2 || (c1 >= 0 && (t1 != t2 || e1 != e2))) abort();
    } else {
        uint64_t t1, t2;
        size_t e1, e2;
        int c1 = chunked_run(in, n, max_body, 0, &t1, &e1);
        int c2 = chunked_run(in, n, max_body, piece, &t2, &e2);
        if (c1 != c2 || (c1 >= 0 && (t1 != t2 || e1 != e2))) abort();
    }
    free(whole);
    return 0;
}
