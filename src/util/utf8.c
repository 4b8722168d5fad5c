/*
 * utf8.c - strict UTF-8 decoding, validation, repair and sniffing (utf8.h).
 *
 * Everything rests on utf8_decode(), a table-free decoder that follows the
 * well-formed byte sequence table of the Unicode standard (Table 3-7): the
 * second byte's allowed range depends on the lead byte, which is how overlong
 * forms, surrogates and code points above U+10FFFF are refused without any
 * arithmetic on the decoded value. On an ill-formed sequence it reports the
 * length of the "maximal subpart" (the longest prefix that could still have
 * begun a valid sequence, at least 1 byte), so utf8_sanitize() replaces
 * exactly what the standard recommends with U+FFFD.
 *
 * The scanning loops skip runs of ASCII eight bytes at a time, which is what
 * makes validating megabytes of mostly-ASCII text cheap.
 */
#include "util/utf8.h"

#include <string.h>

#include "util/common.h"

/* Continuation byte test. */
#define IS_CONT(c) (((c) & 0xC0u) == 0x80u)

int utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    uint32_t v;
    int need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c < 0x80) {
        if (cp) *cp = c;
        return 1;
    }
    if (c < 0xC2) return -1; /* stray continuation or overlong 2-byte lead */
    if (c < 0xE0) {
        need = 1;
        v = c & 0x1F;
    } else if (c < 0xF0) {
        need = 2;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c < 0xF5) {
        need = 3;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        return -1;
    }
    /* Second byte has the lead-dependent range; the rest are plain
     * continuation bytes. */
    if (n < 2 || p[1] < lo || p[1] > hi) return -1;
    v = (v << 6) | (p[1] & 0x3Fu);
    for (int i = 2; i <= need; i++) {
        if ((size_t)i >= n || !IS_CONT(p[i])) return -i;
        v = (v << 6) | (p[i] & 0x3Fu);
    }
    if (cp) *cp = v;
    return need + 1;
}

int utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF) return 0;
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Length of the all-ASCII prefix of s[0..n). */
static size_t ascii_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL) break;
        i += 8;
    }
    while (i < n && !((unsigned char)s[i] & 0x80)) i++;
    return i;
}

int utf8_valid(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        i += ascii_prefix(s + i, n - i);
        if (i >= n) break;
        int k = utf8_decode(s + i, n - i, NULL);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

size_t utf8_sanitize(const char *s, size_t n, buf_t *out)
{
    static const char repl[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, done = 0, count = 0;
    /* Copy valid runs in one append each; only bad spots cost extra work. */
    while (i < n) {
        i += ascii_prefix(s + i, n - i);
        if (i >= n) break;
        int k = utf8_decode(s + i, n - i, NULL);
        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        buf_append(out, s + done, i - done);
        buf_append(out, repl, sizeof repl);
        count++;
        i += (size_t)(-k);
        done = i;
    }
    buf_append(out, s + done, n - done);
    return count;
}

int utf8_looks_binary(const char *s, size_t n)
{
    if (n == 0) return 0;
    if (memchr(s, 0, n)) return 1;
    size_t suspicious = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7F)
                suspicious++;
            i++;
            continue;
        }
        int k = utf8_decode(s + i, n - i, NULL);
        if (k > 0) {
            i += (size_t)k;
        } else {
            suspicious += (size_t)(-k);
            i += (size_t)(-k);
        }
    }
    return suspicious > n / 10;
}

size_t utf8_truncate(const char *s, size_t n, size_t max)
{
    if (max >= n) return n;
    size_t end = max;
    /* Back off over continuation bytes: s[end] must begin a code point. */
    for (int back = 0; back < 3 && end > 0 && IS_CONT((unsigned char)s[end]); back++) end--;
    if (end > 0 && IS_CONT((unsigned char)s[end])) return max; /* ill-formed: cut as asked */
    return end;
}
