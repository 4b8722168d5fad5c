/*
 * fuzz_multipart.c - libFuzzer target for the multipart/form-data parser.
 * The first byte chooses the boundary length; the rest is the body.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t blen = (size_t)(data[0] % 8) + 1;
    if (size < 1 + blen) return 0;
    char boundary[16];
    memcpy(boundary, data + 1, blen);
    boundary[blen] = '\0';
    if (strlen(boundary) != blen) return 0;
    multipart_part_t parts[MULTIPART_MAX_PARTS];
    size_t n;
    const char *err;
    const char *body = (const char *)data + 1 + blen;
    size_t len = size - 1 - blen;
    if (multipart_parse(body, len, boundary, parts, &n, &err) == 0) {
        for (size_t i = 0; i < n; i++) {
            /* every part must lie inside the body */
            if (parts[i].data < body || parts[i].data + parts[i].len > body + len) __builtin_trap();
        }
    }
    return 0;
}
