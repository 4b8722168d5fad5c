/*
 * test_utf8.c - strict UTF-8 decoding, validation, repair, sniffing and
 * truncation (src/util/utf8.c), checked against a naive reference decoder
 * over every 1-, 2- and 3-byte sequence and random 4-byte ones.
 */
#include "test.h"
#include "util/common.h"
#include "util/utf8.h"

/* Reference: decode by arithmetic, then reject by value. Returns the length
 * of a valid sequence or 0. */
static int ref_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0) return 0;
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) { *cp = c; return 1; }
    else if ((c & 0xE0) == 0xC0) { len = 2; v = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; v = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static void compare_with_ref(const unsigned char *s, size_t n)
{
    uint32_t a = 0, b = 0;
    int k = utf8_decode((const char *)s, n, &a);
    int r = ref_decode(s, n, &b);
    if (r > 0) {
        if (k != r || a != b) {
            fprintf(stderr, "  %02x %02x %02x %02x: decode %d/%x, ref %d/%x\n", s[0],
                    n > 1 ? s[1] : 0, n > 2 ? s[2] : 0, n > 3 ? s[3] : 0, k, a, r, b);
            CHECK(0);
        }
    } else {
        CHECK(k < 0 && k >= -3);
    }
    /* utf8_valid agrees on a sequence of exactly the decoded length. */
    if (r > 0) CHECK(utf8_valid((const char *)s, (size_t)r));
}

TEST(decode_matches_reference)
{
    unsigned char s[4];
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (unsigned char)a;
        compare_with_ref(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (unsigned char)b;
            compare_with_ref(s, 2);
            if (a >= 0xE0) {
                for (unsigned c = 0; c < 256; c++) {
                    s[2] = (unsigned char)c;
                    compare_with_ref(s, 3);
                }
            }
        }
    }
    unsigned long long seed = test_seed();
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        s[0] = (unsigned char)(0xF0 | ((seed >> 60) & 7));
        s[1] = (unsigned char)(seed >> 20);
        s[2] = (unsigned char)(seed >> 28);
        s[3] = (unsigned char)(seed >> 36);
        if (i & 1) { s[1] = (unsigned char)(0x80 | (s[1] & 0x3F)); s[2] = (unsigned char)(0x80 | (s[2] & 0x3F)); s[3] = (unsigned char)(0x80 | (s[3] & 0x3F)); }
        compare_with_ref(s, 4);
    }
}

TEST(encode_round_trip)
{
    char out[4];
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        int n = utf8_encode(cp, out);
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            CHECK_EQ_INT(n, 0);
            continue;
        }
        uint32_t back = 0;
        int k = utf8_decode(out, (size_t)n, &back);
        if (k != n || back != cp) { CHECK(0); break; }
    }
    CHECK_EQ_INT(utf8_encode(0x110000, out), 0);
}

TEST(valid_table)
{
    static const struct { const char *s; int ok; } cases[] = {
        {"", 1}, {"hello", 1}, {"\xc3\xa9t\xc3\xa9", 1}, {"\xe2\x82\xac", 1},
        {"\xf0\x9f\x98\x80", 1}, {"\xf4\x8f\xbf\xbf", 1}, {"\xef\xbf\xbf", 1},
        {"\xed\x9f\xbf", 1}, {"\xee\x80\x80", 1},
        {"\x80", 0}, {"\xbf", 0}, {"\xc0\x80", 0}, {"\xc1\xbf", 0}, {"\xc2", 0},
        {"\xe0\x80\x80", 0}, {"\xe0\x9f\xbf", 0}, {"\xed\xa0\x80", 0}, {"\xed\xbf\xbf", 0},
        {"\xf0\x80\x80\x80", 0}, {"\xf0\x8f\xbf\xbf", 0}, {"\xf4\x90\x80\x80", 0},
        {"\xf5\x80\x80\x80", 0}, {"\xff", 0}, {"\xfe", 0}, {"abc\xe2\x82", 0},
        {"0123456789abcdef\x80", 0}, {"0123456789abcdef\xc3\xa9", 1},
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(cases); i++) {
        int got = utf8_valid(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok) fprintf(stderr, "  case %zu\n", i);
        CHECK_EQ_INT(got, cases[i].ok);
    }
    CHECK(utf8_valid("a\0b", 3)); /* NUL is valid UTF-8 */
}

static void check_sanitize(const char *in, size_t n, const char *want, size_t want_count)
{
    buf_t b = BUF_INIT;
    size_t count = utf8_sanitize(in, n, &b);
    CHECK_EQ_INT(count, want_count);
    CHECK_STR(buf_cstr(&b), want);
    CHECK(utf8_valid(b.data ? b.data : "", b.len));
    buf_free(&b);
}

#define FFFD "\xef\xbf\xbd"

TEST(sanitize_maximal_subparts)
{
    check_sanitize("plain", 5, "plain", 0);
    check_sanitize("", 0, "", 0);
    check_sanitize("a\xff" "b", 3, "a" FFFD "b", 1);
    /* A truncated 3-byte sequence is one replacement, not two. */
    check_sanitize("a\xe2\x82" "b", 4, "a" FFFD "b", 1);
    check_sanitize("\xf0\x9f\x98", 3, FFFD, 1);
    /* Overlong and surrogate leads: each byte separately (Unicode 3.9). */
    check_sanitize("\xc0\xaf", 2, FFFD FFFD, 2);
    check_sanitize("\xed\xa0\x80", 3, FFFD FFFD FFFD, 3);
    check_sanitize("\xf4\x90\x80\x80", 4, FFFD FFFD FFFD FFFD, 4);
    check_sanitize("\xc3\xa9\x80\xc3\xa9", 5, "\xc3\xa9" FFFD "\xc3\xa9", 1);
}

TEST(looks_binary)
{
    CHECK_EQ_INT(utf8_looks_binary("", 0), 0);
    const char *text = "Hello world.\n\tIndented line\r\n\fpage two, caf\xc3\xa9 \xe2\x82\xac 5\n";
    CHECK_EQ_INT(utf8_looks_binary(text, strlen(text)), 0);
    CHECK_EQ_INT(utf8_looks_binary("abc\0def", 7), 1);
    /* Latin-1 prose: a few invalid bytes, still text. */
    const char *latin1 = "Le caf\xe9 est tr\xe8s bon et la cr\xe8me br\xfbl\xe9" "e aussi, merci beaucoup.";
    CHECK_EQ_INT(utf8_looks_binary(latin1, strlen(latin1)), 0);
    /* Random high bytes and controls without NUL: binary. */
    char blob[4096];
    unsigned long long seed = test_seed();
    for (size_t i = 0; i < sizeof blob; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned char c = (unsigned char)(seed >> 56);
        blob[i] = (char)(c ? c : 1);
    }
    CHECK_EQ_INT(utf8_looks_binary(blob, sizeof blob), 1);
    /* Mostly control characters. */
    char ctl[100];
    memset(ctl, 'a', sizeof ctl);
    for (int i = 0; i < 20; i++) ctl[i * 5] = 0x1b;
    CHECK_EQ_INT(utf8_looks_binary(ctl, sizeof ctl), 1);
}

TEST(truncate)
{
    const char *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z"; /* 1+2+3+4+1 = 11 bytes */
    size_t n = strlen(s);
    CHECK_EQ_INT(utf8_truncate(s, n, 100), n);
    CHECK_EQ_INT(utf8_truncate(s, n, n), n);
    CHECK_EQ_INT(utf8_truncate(s, n, 0), 0);
    CHECK_EQ_INT(utf8_truncate(s, n, 1), 1);
    CHECK_EQ_INT(utf8_truncate(s, n, 2), 1);
    CHECK_EQ_INT(utf8_truncate(s, n, 3), 3);
    CHECK_EQ_INT(utf8_truncate(s, n, 4), 3);
    CHECK_EQ_INT(utf8_truncate(s, n, 5), 3);
    CHECK_EQ_INT(utf8_truncate(s, n, 6), 6);
    CHECK_EQ_INT(utf8_truncate(s, n, 9), 6);
    CHECK_EQ_INT(utf8_truncate(s, n, 10), 10);
    for (size_t m = 0; m <= n; m++) {
        size_t t = utf8_truncate(s, n, m);
        CHECK(t <= m);
        CHECK(utf8_valid(s, t));
    }
    /* Ill-formed: a run of continuation bytes is cut at most 3 bytes back. */
    const char *bad = "\x80\x80\x80\x80\x80\x80";
    CHECK(utf8_truncate(bad, 6, 5) >= 2);
}
