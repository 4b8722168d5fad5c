/*
 * test_json.c - the JSON parser and writer (src/util/json.c).
 *
 * Table tests of valid and invalid documents, each parsed from a copy that
 * ends exactly at a guard page (so any read past the end faults), every
 * proper prefix of container documents (must fail cleanly), nesting limits,
 * escapes, numbers, writer commas and number formatting, round trips, and
 * an out-of-memory loop that fails each allocation in turn.
 */
#include <math.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "util/common.h"
#include "util/json.h"

/* ---- input against a guard page ---------------------------------------- */

static char *guard_base;
static size_t guard_page;

/* Copies s[0..n) so that its last byte is the last byte before a PROT_NONE
 * page. The copy stays valid until the next call. */
static const char *guarded(const char *s, size_t n)
{
    if (!guard_base) {
        guard_page = (size_t)sysconf(_SC_PAGESIZE);
        size_t total = 64 * guard_page;
        guard_base = mmap(NULL, total + guard_page, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_base == MAP_FAILED) { guard_base = NULL; return NULL; }
        mprotect(guard_base + total, guard_page, PROT_NONE);
    }
    size_t total = 64 * guard_page;
    if (n > total) return NULL;
    char *p = guard_base + total - n;
    memcpy(p, s, n);
    return p;
}

static int parse_n(const char *s, size_t n, json_t **out, json_error_t *err)
{
    const char *g = guarded(s, n);
    if (!g) return -1;
    return json_parse(g, n, out, err);
}

static int parse_ok(const char *s)
{
    json_t *j = NULL;
    json_error_t e;
    int rc = parse_n(s, strlen(s), &j, &e);
    if (rc) fprintf(stderr, "  unexpected error for %s: %s at %zu\n", s, e.message, e.offset);
    json_free(j);
    return rc == 0;
}

static int parse_bad(const char *s, size_t n)
{
    json_t *j = (json_t *)1;
    json_error_t e;
    int rc = parse_n(s, n, &j, &e);
    if (rc == 0) {
        fprintf(stderr, "  accepted invalid input: %.*s\n", (int)n, s);
        json_free(j);
        return 0;
    }
    return rc == ENGRAM_EINVAL && j == NULL && e.offset <= n && e.message[0];
}

static const char *valid_docs[] = {
    "null", "true", "false", "0", "-0", "1", "-1", "1.5", "-1.5e10", "1E+2", "1e-2", "0.0",
    "123456789012345678901234567890", "\"\"", "\"abc\"", "[]", "{}", " [ ] ", "\t\n\r{ }\n",
    "[1,2,3]", "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
    "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\u0000\"", "\"\\uFFFF\"", "\"\\ud83d\\ude00\"",
    "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\"\xef\xbf\xbf\"", "\"\xf4\x8f\xbf\xbf\"",
    "\"\x7f\"", "[[[[[]]]]]", "{\"\":\"\"}", "{\"a\":1,\"a\":2}", "[1e308]", "[-1e-400]",
    "\"\xed\x9f\xbf\"", "\"\xee\x80\x80\"",
};

/* Invalid documents, with explicit lengths (some contain NUL bytes). */
#define BAD(s) {s, sizeof(s) - 1}
static const struct { const char *s; size_t n; } invalid_docs[] = {
    BAD(""), BAD(" "), BAD("nul"), BAD("nulll"), BAD("True"), BAD("tru"), BAD("[1,]"),
    BAD("[,1]"), BAD("{\"a\":1,}"), BAD("{,}"), BAD("{\"a\"}"), BAD("{\"a\" 1}"), BAD("{a:1}"),
    BAD("{'a':1}"), BAD("['a']"), BAD("[1 2]"), BAD("1 2"), BAD("[1]]"), BAD("[1"), BAD("{"),
    BAD("\"abc"), BAD("\"\\\""), BAD("// c\n1"), BAD("/* c */1"), BAD("[1]x"), BAD("{\"a\":1}}"),
    /* numbers */
    BAD("01"), BAD("-01"), BAD("00"), BAD("+1"), BAD(".5"), BAD("1."), BAD("1.e2"), BAD("-"),
    BAD("--1"), BAD("1e"), BAD("1e+"), BAD("1E-"), BAD("NaN"), BAD("Infinity"), BAD("-Infinity"),
    BAD("0x10"), BAD("1e400"), BAD("-1e400"), BAD("[1.0.0]"), BAD("- 1"), BAD("1_000"),
    /* strings and escapes */
    BAD("\"\\x\""), BAD("\"\\u12\""), BAD("\"\\u12G4\""), BAD("\"\\U0041\""), BAD("\"\\ud800\""),
    BAD("\"\\udc00\""), BAD("\"\\ud800\\u0041\""), BAD("\"\\ud800x\""), BAD("\"\\ud800\\ud800\""),
    BAD("\"\\udfff\\ud800\""), BAD("\"a\tb\""), BAD("\"a\nb\""), BAD("\"\x01\""), BAD("\"\x1f\""),
    BAD("\"a\0b\""), BAD("\0"), BAD("[\0]"), BAD("\"\\"),
    /* every kind of bad UTF-8, inside strings */
    BAD("\"\x80\""), BAD("\"\xbf\""), BAD("\"\xc0\x80\""), BAD("\"\xc1\xbf\""), BAD("\"\xc2\""),
    BAD("\"\xc2\x41\""), BAD("\"\xe0\x80\x80\""), BAD("\"\xe0\x9f\xbf\""), BAD("\"\xe2\x82\""),
    BAD("\"\xe2\x82\x41\""), BAD("\"\xed\xa0\x80\""), BAD("\"\xed\xbf\xbf\""),
    BAD("\"\xf0\x80\x80\x80\""), BAD("\"\xf0\x8f\xbf\xbf\""), BAD("\"\xf4\x90\x80\x80\""),
    BAD("\"\xf5\x80\x80\x80\""), BAD("\"\xf8\x88\x80\x80\x80\""), BAD("\"\xfe\""), BAD("\"\xff\""),
    BAD("\"\xf0\x9f\x98\""), BAD("\"\xf0\x9f\""), BAD("\"\xc3\xa9\xc3\""),
    /* and outside them */
    BAD("\xef\xbb\xbf{}"), BAD("[\xc2\xa0]"), BAD("\xff"), BAD("{\"a\":\xc3\xa9}"),
    BAD("{\"\xc0\xaf\":1}"),
};

TEST(valid_table)
{
    for (size_t i = 0; i < EG_ARRAY_LEN(valid_docs); i++) CHECK(parse_ok(valid_docs[i]));
}

TEST(invalid_table)
{
    for (size_t i = 0; i < EG_ARRAY_LEN(invalid_docs); i++)
        CHECK(parse_bad(invalid_docs[i].s, invalid_docs[i].n));
}

TEST(error_offsets)
{
    json_t *j = NULL;
    json_error_t e;
    CHECK_EQ_INT(json_parse("[1, 2, x]", 9, &j, &e), ENGRAM_EINVAL);
    CHECK_EQ_INT(e.offset, 7);
    CHECK_EQ_INT(json_parse("\"ab\xff\"", 5, &j, &e), ENGRAM_EINVAL);
    CHECK_EQ_INT(e.offset, 3);
    CHECK(strstr(e.message, "UTF-8") != NULL);
    CHECK_EQ_INT(json_parse("012", 3, &j, &e), ENGRAM_EINVAL);
    CHECK(strstr(e.message, "leading zero") != NULL);
    CHECK_EQ_INT(json_parse(NULL, 0, &j, NULL), ENGRAM_EINVAL);
    CHECK_EQ_INT(json_parse(NULL, 3, &j, NULL), ENGRAM_EINVAL);
}

/* Every proper prefix of a container document is incomplete and must fail;
 * each is placed against the guard page, so this is also the byte-by-byte
 * feed of the style guide. */
TEST(truncated_prefixes_fail)
{
    const char *docs[] = {
        "{\"a\":[1,2.5,-3e2,true,false,null],\"b\":{\"c\":\"d\\u00e9\\ud83d\\ude00\"},\"\":[]}",
        "[\"x\\n\",{\"k\":[[],{}]},0,-0.5,\"\xe2\x82\xac\xf0\x9f\x98\x80\"]",
        "\"\\u0041\\t\xc3\xa9\"",
    };
    for (size_t d = 0; d < EG_ARRAY_LEN(docs); d++) {
        size_t n = strlen(docs[d]);
        CHECK(parse_ok(docs[d]));
        for (size_t k = 0; k < n; k++) CHECK(parse_bad(docs[d], k));
    }
}

static char *nested(size_t depth, int objects)
{
    buf_t b = BUF_INIT;
    for (size_t i = 0; i < depth; i++) buf_puts(&b, objects ? "{\"k\":" : "[");
    buf_puts(&b, "1");
    for (size_t i = 0; i < depth; i++) buf_puts(&b, objects ? "}" : "]");
    return buf_detach(&b, NULL);
}

TEST(depth_limit)
{
    for (int objects = 0; objects <= 1; objects++) {
        char *ok = nested(JSON_MAX_DEPTH, objects);
        char *bad = nested(JSON_MAX_DEPTH + 1, objects);
        CHECK(parse_ok(ok));
        json_t *j = NULL;
        json_error_t e;
        CHECK_EQ_INT(json_parse(bad, strlen(bad), &j, &e), ENGRAM_EINVAL);
        CHECK(strstr(e.message, "deep") != NULL);
        /* A deep DOM writes back identically. */
        REQUIRE(json_parse(ok, strlen(ok), &j, NULL) == 0);
        buf_t b = BUF_INIT;
        json_write(&b, j);
        CHECK_EQ_INT(b.err, 0);
        CHECK_STR(buf_cstr(&b), ok);
        buf_free(&b);
        json_free(j);
        eg_free(ok);
        eg_free(bad);
    }
    /* A huge run of brackets is refused quickly, without deep recursion. */
    size_t n = 1 << 20;
    char *deep = eg_malloc(n);
    REQUIRE(deep);
    memset(deep, '[', n);
    json_t *j = NULL;
    CHECK_EQ_INT(json_parse(deep, n, &j, NULL), ENGRAM_EINVAL);
    eg_free(deep);
}

static json_t *must_parse(const char *s)
{
    json_t *j = NULL;
    json_error_t e;
    if (json_parse(s, strlen(s), &j, &e) != 0) {
        fprintf(stderr, "  parse of %s failed: %s\n", s, e.message);
        return NULL;
    }
    return j;
}

TEST(escapes_decode)
{
    json_t *j = must_parse("[\"\\u00e9\", \"\\ud83d\\ude00\", \"a\\u0000b\", \"\\/\\\"\\\\\", "
                           "\"\\b\\f\\n\\r\\t\", \"\\u20AC\", \"\\uDBFF\\uDFFF\"]");
    REQUIRE(j && j->type == JSON_ARRAY && j->len == 7);
    CHECK_STR(json_at(j, 0)->str, "\xc3\xa9");
    CHECK_STR(json_at(j, 1)->str, "\xf0\x9f\x98\x80");
    CHECK_EQ_INT(json_at(j, 2)->len, 3);
    CHECK(memcmp(json_at(j, 2)->str, "a\0b", 4) == 0);
    CHECK_STR(json_at(j, 3)->str, "/\"\\");
    CHECK_STR(json_at(j, 4)->str, "\b\f\n\r\t");
    CHECK_STR(json_at(j, 5)->str, "\xe2\x82\xac");
    CHECK_STR(json_at(j, 6)->str, "\xf4\x8f\xbf\xbf");
    CHECK(json_at(j, 7) == NULL);
    json_free(j);
}

TEST(numbers)
{
    static const struct { const char *s; int is_int; int64_t i; double d; } cases[] = {
        {"0", 1, 0, 0.0},
        {"-0", 1, 0, -0.0},
        {"42", 1, 42, 42.0},
        {"-17", 1, -17, -17.0},
        {"9223372036854775807", 1, INT64_MAX, 9223372036854775807.0},
        {"-9223372036854775808", 1, INT64_MIN, -9223372036854775808.0},
        {"9223372036854775808", 0, 0, 9223372036854775808.0},
        {"-9223372036854775809", 0, 0, -9223372036854775809.0},
        {"99999999999999999999", 0, 0, 1e20},
        {"1.0", 0, 0, 1.0},
        {"1e2", 0, 0, 100.0},
        {"1E-2", 0, 0, 0.01},
        {"-2.5e+3", 0, 0, -2500.0},
        {"0.1", 0, 0, 0.1},
        {"1e-400", 0, 0, 0.0},
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(cases); i++) {
        json_t *j = must_parse(cases[i].s);
        REQUIRE(j && j->type == JSON_NUMBER);
        CHECK_EQ_INT(j->is_int, cases[i].is_int);
        if (cases[i].is_int) CHECK_EQ_INT(j->integer, cases[i].i);
        CHECK(j->number == cases[i].d);
        json_free(j);
    }
    json_t *z = must_parse("-0");
    REQUIRE(z);
    CHECK(signbit(z->number));
    json_free(z);
}

TEST(accessors)
{
    json_t *j = must_parse("{\"a\":1,\"s\":\"x\",\"a\":2,\"f\":1.5,\"n\":null,\"b\":true,"
                           "\"arr\":[1],\"k\\u0000z\":3}");
    REQUIRE(j);
    int64_t v = -1;
    double d = 0;
    CHECK_EQ_INT(json_get(j, "a")->integer, 2); /* last duplicate wins */
    CHECK_STR(json_get_str(j, "s"), "x");
    CHECK(json_get_str(j, "a") == NULL);
    CHECK(json_get(j, "missing") == NULL);
    CHECK(json_get(json_get(j, "arr"), "x") == NULL);
    CHECK(json_get(NULL, "a") == NULL);
    CHECK_EQ_INT(json_get_int(j, "a", &v), 0);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(json_get_int(j, "f", &v), ENGRAM_EINVAL);
    CHECK_EQ_INT(json_get_int(j, "s", &v), ENGRAM_EINVAL);
    CHECK_EQ_INT(json_get_int(j, "n", &v), ENGRAM_ENOTFOUND);
    CHECK_EQ_INT(json_get_int(j, "zz", &v), ENGRAM_ENOTFOUND);
    CHECK_EQ_INT(v, 2);
    CHECK_EQ_INT(json_get_double(j, "f", &d), 0);
    CHECK(d == 1.5);
    CHECK_EQ_INT(json_get_double(j, "b", &d), ENGRAM_EINVAL);
    CHECK(json_get(j, "k") == NULL); /* a key with an embedded NUL is not "k" */
    CHECK(json_at(json_get(j, "arr"), 0) != NULL);
    CHECK(json_at(j, 0) == NULL);
    json_free(j);
}

/* parse -> write -> parse gives an equal DOM, and writing is a fixpoint. */
TEST(round_trip)
{
    const char *docs[] = {
        "{\"a\":[1,2.5,-3e2,true,false,null],\"b\":{\"c\":\"d\\u00e9\\ud83d\\ude00\"},\"\":[]}",
        "[0.1,0.2,0.30000000000000004,1e300,-1e-300,5e-324,1.7976931348623157e308,123456789.125]",
        "[\"\\u0000\\u001f\\u007f\",\"\\\"\\\\/\",\"tab\\there\",\"\xe2\x80\xa8\"]",
        "[9223372036854775807,-9223372036854775808,9223372036854775808,1e20,-0,0.0]",
        "{\"dup\":1,\"dup\":2}",
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(docs); i++) {
        json_t *a = must_parse(docs[i]);
        REQUIRE(a);
        buf_t b1 = BUF_INIT, b2 = BUF_INIT;
        json_write(&b1, a);
        REQUIRE(b1.err == 0);
        json_t *b = must_parse(buf_cstr(&b1));
        REQUIRE(b);
        CHECK(json_equal(a, b));
        json_write(&b2, b);
        CHECK_STR(buf_cstr(&b2), buf_cstr(&b1));
        json_t *c = json_clone(a);
        CHECK(json_equal(a, c));
        json_free(a);
        json_free(b);
        json_free(c);
        buf_free(&b1);
        buf_free(&b2);
    }
}

TEST(writer_commas)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "s", "v");
    jw_kint(&w, "i", -5);
    jw_key(&w, "arr");
    jw_arr_begin(&w);
    jw_int(&w, 1);
    jw_arr_begin(&w);
    jw_arr_end(&w);
    jw_obj_begin(&w);
    jw_obj_end(&w);
    jw_str(&w, NULL);
    jw_uint(&w, UINT64_MAX);
    jw_raw(&w, "{\"r\":1}", 7);
    jw_arr_end(&w);
    jw_kbool(&w, "t", 1);
    jw_kbool(&w, "f", 0);
    jw_knull(&w, "n");
    jw_kdouble(&w, "d", 0.5);
    jw_key(&w, "o");
    jw_obj_begin(&w);
    jw_kstr(&w, "q\"", "a\nb");
    jw_obj_end(&w);
    jw_key(&w, "j");
    jw_json(&w, NULL);
    jw_obj_end(&w);
    CHECK_EQ_INT(b.err, 0);
    CHECK_STR(buf_cstr(&b), "{\"s\":\"v\",\"i\":-5,\"arr\":[1,[],{},null,18446744073709551615,"
                            "{\"r\":1}],\"t\":true,\"f\":false,\"n\":null,\"d\":0.5,"
                            "\"o\":{\"q\\\"\":\"a\\nb\"},\"j\":null}");
    CHECK(parse_ok(buf_cstr(&b)));
    /* Two top-level values in sequence are comma separated (a JSON-lines
     * writer resets the buffer between them instead). */
    buf_reset(&b);
    jw_init(&w, &b);
    jw_arr_begin(&w);
    jw_arr_end(&w);
    CHECK_STR(buf_cstr(&b), "[]");
    buf_free(&b);
}

TEST(writer_too_deep_poisons_buffer)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++) jw_arr_begin(&w);
    for (int i = 0; i < JSON_MAX_DEPTH + 1; i++) jw_arr_end(&w);
    CHECK_EQ_INT(b.err, ENGRAM_EINVAL);
    buf_free(&b);
}

static void check_double(double v, const char *want)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_double(&w, v);
    CHECK_STR(buf_cstr(&b), want);
    buf_free(&b);
}

TEST(double_format)
{
    check_double(0.1, "0.1");
    check_double(1.0 / 3.0, "0.3333333333333333");
    check_double(0.1 + 0.2, "0.30000000000000004");
    check_double(3.0, "3");
    check_double(-42.0, "-42");
    check_double(1e15, "1000000000000000");
    check_double(1e20, "1e+20");
    check_double(1e300, "1e+300");
    check_double(-0.0, "0");
    check_double(NAN, "null");
    check_double(INFINITY, "null");
    check_double(-INFINITY, "null");
    /* Random doubles read back exactly. */
    unsigned long long seed = test_seed();
    for (int i = 0; i < 20000; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        uint64_t bits = seed ^ (seed >> 29);
        double v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        buf_t b = BUF_INIT;
        jw_t w;
        jw_init(&w, &b);
        jw_double(&w, v);
        json_t *j = must_parse(buf_cstr(&b));
        REQUIRE(j);
        if (j->number != v) {
            fprintf(stderr, "  %.17g written as %s\n", v, buf_cstr(&b));
            CHECK(j->number == v);
        }
        json_free(j);
        buf_free(&b);
    }
}

TEST(escape_output)
{
    buf_t b = BUF_INIT;
    static const char raw[] = "a\"b\\c\n\t\r\b\f\x01\x1f\x7f/";
    json_escape(&b, raw, sizeof raw - 1);
    CHECK_STR(buf_cstr(&b), "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f/\"");
    buf_reset(&b);
    json_escape(&b, "\xc3\xa9\xf0\x9f\x98\x80", 6);
    CHECK_STR(buf_cstr(&b), "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    buf_reset(&b);
    json_escape(&b, "a\xff" "b\xe2\x82" "c", 6); /* ill-formed bytes become U+FFFD */
    CHECK_STR(buf_cstr(&b), "\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\"");
    buf_reset(&b);
    json_escape(&b, "a\0b", 3);
    CHECK_STR(buf_cstr(&b), "\"a\\u0000b\"");
    buf_reset(&b);
    json_escape(&b, NULL, 0);
    CHECK_STR(buf_cstr(&b), "\"\"");
    buf_free(&b);
}

static const char *oom_doc =
    "{\"users\":[{\"id\":1,\"name\":\"Ann\\u00e9\",\"tags\":[\"a\",\"b\",\"c\",\"d\",\"e\"]},"
    "{\"id\":2,\"name\":\"Bob\",\"score\":1.5e3,\"nested\":{\"x\":[[1],[2],[3]],\"y\":null}}],"
    "\"count\":2,\"long\":\"0123456789012345678901234567890123456789012345678901234567890123456789\","
    "\"bignum\":123456789012345678901234567890123456789012345678901234567890123456789.5}";

/* Fails the 1st, 2nd, ... allocation of a parse (then a clone, then a
 * write): each run must return ENOMEM cleanly (LeakSanitizer checks that
 * nothing leaks) until one succeeds. */
TEST(alloc_failure_loop)
{
    json_t *ref = must_parse(oom_doc);
    REQUIRE(ref);
    int succeeded = 0;
    for (long n = 1; n < 10000 && !succeeded; n++) {
        json_t *j = (json_t *)1;
        json_error_t e;
        eg_alloc_fail_after(n);
        int rc = json_parse(oom_doc, strlen(oom_doc), &j, &e);
        eg_alloc_fail_after(-1);
        if (rc == 0) {
            CHECK(json_equal(j, ref));
            json_free(j);
            succeeded = 1;
        } else {
            CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
            CHECK(j == NULL);
        }
    }
    CHECK(succeeded);
    succeeded = 0;
    for (long n = 1; n < 10000 && !succeeded; n++) {
        eg_alloc_fail_after(n);
        json_t *c = json_clone(ref);
        eg_alloc_fail_after(-1);
        if (c) {
            CHECK(json_equal(c, ref));
            json_free(c);
            succeeded = 1;
        }
    }
    CHECK(succeeded);
    succeeded = 0;
    for (long n = 1; n < 100 && !succeeded; n++) {
        buf_t b = BUF_INIT;
        eg_alloc_fail_after(n);
        json_write(&b, ref);
        eg_alloc_fail_after(-1);
        if (b.err == 0) succeeded = 1;
        else CHECK_EQ_INT(b.err, ENGRAM_ENOMEM);
        buf_free(&b);
    }
    CHECK(succeeded);
    json_free(ref);
}

/* A 1 MiB document parses in a few ms (a loose bound here: sanitizers). */
TEST(speed_1mib)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    for (int i = 0; b.len < (1u << 20); i++) {
        jw_obj_begin(&w);
        jw_kint(&w, "id", i);
        jw_kstr(&w, "text", "Lorem ipsum dolor sit amet, consectetur \xc3\xa9l\xc3\xa9gant \"quoted\"\n");
        jw_kdouble(&w, "score", i * 0.37);
        jw_key(&w, "tags");
        jw_arr_begin(&w);
        jw_str(&w, "alpha");
        jw_bool(&w, i & 1);
        jw_null(&w);
        jw_arr_end(&w);
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
    REQUIRE(b.err == 0);
    json_t *j = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = json_parse(b.data, b.len, &j, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "  parsed %zu bytes in %.2f ms\n", b.len, ms);
    CHECK_EQ_INT(rc, 0);
    CHECK(ms < 1000.0);
    json_free(j);
    buf_free(&b);
}
