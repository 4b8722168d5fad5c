/*
 * test_util.c - the small helpers of src/util: uuid, time, hash, buf and the
 * status strings.
 */
#include <errno.h>
#include <pthread.h>

#include "test.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/timeutil.h"
#include "util/uuid.h"

/* ---- uuid ---------------------------------------------------------------- */

TEST(uuid_new_is_v4_and_unique)
{
    unsigned char a[16], b[16];
    char s[37];
    uuid_new(a);
    uuid_new(b);
    CHECK(memcmp(a, b, 16) != 0);
    CHECK_EQ_INT(a[6] >> 4, 4);
    CHECK_EQ_INT(a[8] >> 6, 2);
    uuid_format(a, s);
    CHECK_EQ_INT(strlen(s), 36);
    CHECK(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
    CHECK(s[14] == '4');
    for (int i = 0; i < 36; i++) CHECK(s[i] == '-' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'));
    unsigned char back[16];
    CHECK_EQ_INT(uuid_parse(s, back), 0);
    CHECK(memcmp(a, back, 16) == 0);
}

TEST(uuid_format_parse)
{
    const unsigned char u[16] = {0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3,
                                 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00};
    char s[37];
    uuid_format(u, s);
    CHECK_STR(s, "123e4567-e89b-12d3-a456-426614174000");
    unsigned char out[16];
    CHECK_EQ_INT(uuid_parse("123E4567-E89B-12D3-A456-426614174000", out), 0);
    CHECK(memcmp(out, u, 16) == 0);
    static const char *bad[] = {
        "", "123e4567e89b12d3a456426614174000", "{123e4567-e89b-12d3-a456-426614174000}",
        "123e4567-e89b-12d3-a456-42661417400", "123e4567-e89b-12d3-a456-4266141740000",
        "123e4567-e89b-12d3-a456_426614174000", "123e4567-e89b-12d3-a456-42661417400g",
        "urn:uuid:123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a4564-26614174000",
        " 123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000 ",
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++) {
        memset(out, 0xAA, 16);
        CHECK_EQ_INT(uuid_parse(bad[i], out), ENGRAM_EINVAL);
        CHECK(out[0] == 0xAA); /* untouched */
    }
    CHECK_EQ_INT(uuid_parse(NULL, out), ENGRAM_EINVAL);
}

static void *uuid_thread(void *arg)
{
    unsigned char (*ids)[16] = arg;
    for (int i = 0; i < 256; i++) uuid_new(ids[i]);
    return NULL;
}

TEST(uuid_threads_no_duplicates)
{
    static unsigned char ids[4][256][16];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, uuid_thread, ids[i]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    unsigned char(*all)[16] = (unsigned char(*)[16])ids;
    int dups = 0;
    for (int i = 0; i < 1024; i++)
        for (int j = i + 1; j < 1024; j++) dups += memcmp(all[i], all[j], 16) == 0;
    CHECK_EQ_INT(dups, 0);
}

/* ---- time ---------------------------------------------------------------- */

TEST(time_clocks)
{
    uint64_t a = time_mono_ns();
    uint64_t b = time_mono_ns();
    CHECK(b >= a);
    int64_t now = time_now_ms();
    CHECK(now > 1600000000000LL); /* after 2020 */
    CHECK(now < 4102444800000LL); /* before 2100 */
}

TEST(time_format)
{
    char out[32];
    time_format_rfc3339(0, out);
    CHECK_STR(out, "1970-01-01T00:00:00Z");
    time_format_rfc3339(1795262400000LL, out);
    CHECK_STR(out, "2026-11-21T12:00:00Z");
    time_format_rfc3339(951782400999LL, out); /* leap day, fraction dropped */
    CHECK_STR(out, "2000-02-29T00:00:00Z");
    time_format_rfc3339(-1, out);
    CHECK_STR(out, "1969-12-31T23:59:59Z");
    time_format_rfc3339(-86400000LL * 365, out);
    CHECK_STR(out, "1969-01-01T00:00:00Z");
    time_format_rfc3339(253402300799000LL, out);
    CHECK_STR(out, "9999-12-31T23:59:59Z");
    time_format_rfc3339(INT64_MAX, out);
    CHECK_STR(out, "9999-12-31T23:59:59Z");
    time_format_rfc3339(INT64_MIN, out);
    CHECK_STR(out, "0000-01-01T00:00:00Z");
}

TEST(time_parse)
{
    int64_t ms = 0;
    CHECK_EQ_INT(time_parse_rfc3339("2026-11-21T12:00:00Z", &ms), 0);
    CHECK_EQ_INT(ms, 1795262400000LL);
    CHECK_EQ_INT(time_parse_rfc3339("1970-01-01T00:00:00.5Z", &ms), 0);
    CHECK_EQ_INT(ms, 500);
    CHECK_EQ_INT(time_parse_rfc3339("1970-01-01T00:00:00.123456789z", &ms), 0);
    CHECK_EQ_INT(ms, 123);
    CHECK_EQ_INT(time_parse_rfc3339("1970-01-01t01:00:00+01:00", &ms), 0);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(time_parse_rfc3339("1969-12-31 23:30:00-00:30", &ms), 0);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(time_parse_rfc3339("2000-02-29T00:00:00Z", &ms), 0);
    CHECK_EQ_INT(ms, 951782400000LL);
    CHECK_EQ_INT(time_parse_rfc3339("2016-12-31T23:59:60Z", &ms), 0);
    static const char *bad[] = {
        "", "2026-11-21", "2026-11-21T12:00:00", "2026-11-21T12:00Z", "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-11-21T24:00:00Z", "2026-11-21T12:60:00Z",
        "2026-11-21T12:00:61Z", "2026-11-21T12:00:00.Z", "2026-11-21T12:00:00+1:00",
        "2026-11-21T12:00:00+24:00", "2026-11-21T12:00:00Zx", "2026-11-21X12:00:00Z",
        "26-11-21T12:00:00Z", "2026-1-21T12:00:00Z", "+2026-11-21T12:00:00Z",
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++) {
        if (time_parse_rfc3339(bad[i], &ms) != ENGRAM_EINVAL) {
            fprintf(stderr, "  accepted %s\n", bad[i]);
            CHECK(0);
        }
    }
    CHECK_EQ_INT(time_parse_rfc3339(NULL, &ms), ENGRAM_EINVAL);
}

TEST(time_round_trip)
{
    unsigned long long seed = test_seed();
    char out[32];
    for (int i = 0; i < 100000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        /* seconds in years 0000..9999 */
        int64_t secs = (int64_t)((seed >> 11) % 315537897600ULL) - 62167219200LL;
        time_format_rfc3339(secs * 1000, out);
        int64_t back = 0;
        if (time_parse_rfc3339(out, &back) != 0 || back != secs * 1000) {
            fprintf(stderr, "  %lld -> %s -> %lld\n", (long long)secs, out, (long long)back);
            CHECK(0);
            break;
        }
    }
}

/* ---- hash ---------------------------------------------------------------- */

TEST(hash_sha256_vectors)
{
    unsigned char h[32];
    char hex[65];
    hash_sha256("", 0, h);
    hash_hex(h, 32, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hash_sha256("abc", 3, h);
    hash_hex(h, 32, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hash_hex((const unsigned char *)"\x00\xff\x10", 3, hex);
    CHECK_STR(hex, "00ff10");
    hash_hex(NULL, 0, hex);
    CHECK_STR(hex, "");
}

TEST(hmac_sha256_rfc4231)
{
    unsigned char mac[32];
    char hex[65];
    unsigned char key[20];
    memset(key, 0x0b, sizeof key);
    hmac_sha256(key, sizeof key, "Hi There", 8, mac);
    hash_hex(mac, 32, hex);
    CHECK_STR(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
    hash_hex(mac, 32, hex);
    CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* Test case 6: a key longer than the block size. */
    unsigned char big[131];
    memset(big, 0xaa, sizeof big);
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    hmac_sha256(big, sizeof big, msg, strlen(msg), mac);
    hash_hex(mac, 32, hex);
    CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(hash_equal_and_random)
{
    CHECK_EQ_INT(hash_equal_ct("abcd", "abcd", 4), 1);
    CHECK_EQ_INT(hash_equal_ct("abcd", "abce", 4), 0);
    CHECK_EQ_INT(hash_equal_ct("x", "y", 0), 1);
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    hash_random(a, sizeof a);
    hash_random(b, sizeof b);
    CHECK(memcmp(a, b, 32) != 0);
    CHECK(memcmp(a, zero, 32) != 0);
}

/* ---- buf and common -------------------------------------------------------- */

TEST(buf_basics)
{
    buf_t b = BUF_INIT;
    CHECK_STR(buf_cstr(&b), "");
    buf_puts(&b, "hello");
    buf_putc(&b, ' ');
    buf_printf(&b, "%d-%s", 42, "x");
    CHECK_STR(buf_cstr(&b), "hello 42-x");
    CHECK_EQ_INT(b.len, 10);
    /* A long printf takes the slow path. */
    char big[600];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    buf_printf(&b, "[%s]", big);
    CHECK_EQ_INT(b.len, 10 + 601);
    CHECK(b.data[b.len] == '\0');
    buf_reset(&b);
    CHECK_EQ_INT(b.len, 0);
    CHECK_STR(buf_cstr(&b), "");
    buf_append(&b, "a\0b", 3);
    size_t n = 0;
    char *d = buf_detach(&b, &n);
    CHECK_EQ_INT(n, 3);
    CHECK(d && memcmp(d, "a\0b", 4) == 0);
    eg_free(d);
    CHECK(b.data == NULL);
    buf_free(&b);
}

TEST(buf_sticky_error)
{
    buf_t b = BUF_INIT;
    eg_alloc_fail_after(1);
    buf_puts(&b, "x");
    eg_alloc_fail_after(-1);
    CHECK_EQ_INT(b.err, ENGRAM_ENOMEM);
    buf_puts(&b, "more"); /* ignored */
    CHECK_EQ_INT(b.len, 0);
    buf_reset(&b);
    buf_puts(&b, "ok");
    CHECK_STR(buf_cstr(&b), "ok");
    buf_free(&b);
}

TEST(strerror_names)
{
    CHECK_STR(engram_strerror(0), "ok");
    CHECK(strlen(engram_strerror(ENGRAM_ENOMEM)) > 0);
    CHECK(strlen(engram_strerror(ENGRAM_EINVAL)) > 0);
    CHECK(strlen(engram_strerror(-ENOENT)) > 0);
    CHECK(eg_strdup(NULL) == NULL);
}
