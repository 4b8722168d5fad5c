/*
 * test_tokenizer.c - the tokenizer: normalisation, word boundaries, offsets,
 * stop words, stemming, truncation, invalid input.
 *
 * collect() runs the tokenizer and keeps every token (term, offsets,
 * position) so each case can compare whole token lists.
 */
#include "test.h"

#include "index/tokenizer.h"
#include "util/common.h"

typedef struct toks {
    int n;
    char term[64][TOK_MAX_TERM + 1];
    size_t start[64], end[64];
    uint32_t pos[64];
} toks_t;

static int keep(const tok_token_t *t, void *ud)
{
    toks_t *k = ud;
    if (t->len == 0 || t->len > TOK_MAX_TERM || memchr(t->term, 0, t->len)) return 99;
    if (k->n == 64) return 0;
    memcpy(k->term[k->n], t->term, t->len);
    k->term[k->n][t->len] = 0;
    k->start[k->n] = t->start;
    k->end[k->n] = t->end;
    k->pos[k->n] = t->position;
    k->n++;
    return 0;
}

static toks_t collect_opt(const char *stemmer, int stop, const char *text, size_t len)
{
    static toks_t k;
    memset(&k, 0, sizeof k);
    tokenizer_t *t = NULL;
    tok_options_t o = {stemmer, stop};
    if (tokenizer_new_ex(&o, &t) != 0) { k.n = -1; return k; }
    if (tokenizer_run(t, text, len, keep, &k) != 0) k.n = -2;
    tokenizer_free(t);
    return k;
}

/* no stemming, no stop words: the normalised words themselves */
static toks_t words(const char *text) { return collect_opt(NULL, 0, text, strlen(text)); }

TEST(ascii_words_and_offsets)
{
    const char *s = "  Hello, World! 42x";
    toks_t k = words(s);
    REQUIRE(k.n == 3);
    CHECK_STR(k.term[0], "hello");
    CHECK_STR(k.term[1], "world");
    CHECK_STR(k.term[2], "42x");
    CHECK_EQ_INT(k.start[0], 2);
    CHECK_EQ_INT(k.end[0], 7);
    CHECK_EQ_INT(k.start[1], 9);
    CHECK_EQ_INT(k.end[1], 14);
    CHECK_EQ_INT(k.pos[2], 2);
    CHECK(memcmp(s + k.start[2], "42x", 3) == 0);
}

TEST(accents_and_nfkc)
{
    toks_t a = words("Café");
    REQUIRE(a.n == 1);
    CHECK_STR(a.term[0], "cafe");
    toks_t b = words("Cafe\xcc\x81"); /* e + combining acute */
    REQUIRE(b.n == 1);
    CHECK_STR(b.term[0], "cafe");
    CHECK_EQ_INT(b.end[0], 6);
    toks_t c = words("\xef\xac\x81le"); /* U+FB01 ligature fi */
    REQUIRE(c.n == 1);
    CHECK_STR(c.term[0], "file");
    toks_t d = words("\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3"); /* fullwidth ABC */
    REQUIRE(d.n == 1);
    CHECK_STR(d.term[0], "abc");
}

TEST(case_folding)
{
    toks_t k = words("ÉCOLE Straße ΣΟΦΊΑ");
    REQUIRE(k.n == 3);
    CHECK_STR(k.term[0], "ecole");
    CHECK_STR(k.term[1], "strasse");
    CHECK_STR(k.term[2], "σοφια");
    /* offsets are in the original text, whatever normalisation did */
    CHECK_EQ_INT(k.start[1], 7);
    CHECK_EQ_INT(k.end[1], 14);
}

TEST(stop_words)
{
    CHECK(tokenizer_is_stopword("the", 3));
    CHECK(tokenizer_is_stopword("with", 4));
    CHECK(tokenizer_is_stopword("a", 1));
    CHECK(!tokenizer_is_stopword("cell", 4));
    CHECK(!tokenizer_is_stopword("", 0));
    CHECK(!tokenizer_is_stopword("theirs", 6));
    toks_t k = collect_opt(NULL, 1, "The cat IS on the mat", 21);
    REQUIRE(k.n == 2);
    CHECK_STR(k.term[0], "cat");
    CHECK_STR(k.term[1], "mat");
    CHECK_EQ_INT(k.pos[0], 0); /* positions count kept tokens only */
    CHECK_EQ_INT(k.pos[1], 1);
    CHECK_EQ_INT(k.start[1], 18);
    toks_t all = collect_opt(NULL, 0, "The cat IS on the mat", 21);
    CHECK_EQ_INT(all.n, 6);
}

TEST(stemming)
{
    const char *algs[] = {"porter", "english"};
    for (int i = 0; i < 2; i++) {
        toks_t k = collect_opt(algs[i], 1, "running cells connected", 23);
        REQUIRE(k.n == 3);
        CHECK_STR(k.term[0], "run");
        CHECK_STR(k.term[1], "cell");
        CHECK_STR(k.term[2], "connect");
    }
    toks_t d = collect_opt(NULL, 0, "running", 7); /* default options differ: explicit */
    CHECK_STR(d.term[0], "running");
    tokenizer_t *t = NULL;
    tok_options_t bad = {"no-such-stemmer", 1};
    CHECK_EQ_INT(tokenizer_new_ex(&bad, &t), ENGRAM_EINVAL);
    CHECK(t == NULL);
    REQUIRE(tokenizer_new(&t) == 0);
    tokenizer_free(t);
}

TEST(possessive_and_apostrophes)
{
    toks_t k = words("Curie's don't it\xe2\x80\x99s O'Neil '");
    REQUIRE(k.n == 4);
    CHECK_STR(k.term[0], "curie");
    CHECK_STR(k.term[1], "dont");
    CHECK_STR(k.term[2], "it");
    CHECK_STR(k.term[3], "oneil");
    CHECK_EQ_INT(k.end[0], 7); /* the word's span includes the 's */
}

TEST(numbers_and_inner_punctuation)
{
    toks_t k = words("p < 0.05 in 1,000 mice; IL-6 e.g. foo_bar 2019.");
    REQUIRE(k.n == 10);
    CHECK_STR(k.term[0], "p");
    CHECK_STR(k.term[1], "0.05");
    CHECK_STR(k.term[2], "in");
    CHECK_STR(k.term[3], "1,000");
    CHECK_STR(k.term[4], "mice");
    CHECK_STR(k.term[5], "il");
    CHECK_STR(k.term[6], "6");
    CHECK_STR(k.term[7], "e.g");
    CHECK_STR(k.term[8], "foo_bar");
    CHECK_STR(k.term[9], "2019");
}

TEST(cjk_one_token_each)
{
    const char *s = "abc東京タワーdef";
    toks_t k = words(s);
    REQUIRE(k.n == 7);
    CHECK_STR(k.term[0], "abc");
    CHECK_STR(k.term[1], "東");
    CHECK_STR(k.term[2], "京");
    CHECK_STR(k.term[3], "タ");
    CHECK_STR(k.term[5], "ー");
    CHECK_STR(k.term[6], "def");
    CHECK_EQ_INT(k.start[1], 3);
    CHECK_EQ_INT(k.end[1], 6);
    CHECK_EQ_INT(k.start[6], strlen(s) - 3);
    toks_t h = words("한국어 텍스트");  /* Hangul stays in words */
    REQUIRE(h.n == 2);
    CHECK_STR(h.term[0], "한국어");
}

TEST(invalid_utf8_is_separator)
{
    toks_t k = collect_opt(NULL, 0, "foo\xff" "bar\xc0\xaf" "baz\xe2\x82", 14);
    REQUIRE(k.n == 3);
    CHECK_STR(k.term[0], "foo");
    CHECK_STR(k.term[1], "bar");
    CHECK_STR(k.term[2], "baz");
    CHECK_EQ_INT(k.start[1], 4);
    CHECK_EQ_INT(k.end[2], 12);
    toks_t n = collect_opt(NULL, 0, "a\0b", 3); /* NUL separates too */
    CHECK_EQ_INT(n.n, 2);
}

TEST(long_words_truncated)
{
    char s[301];
    memset(s, 'A', 300);
    s[300] = 0;
    toks_t k = words(s);
    REQUIRE(k.n == 1);
    CHECK_EQ_INT(strlen(k.term[0]), TOK_MAX_TERM);
    CHECK_EQ_INT(k.end[0], 300);
    /* 3-byte letters: cut at a code point boundary (63 bytes) */
    char h[3 * 30 + 1] = "";
    for (int i = 0; i < 30; i++) strcat(h, "한");
    toks_t m = words(h);
    REQUIRE(m.n == 1);
    CHECK_EQ_INT(strlen(m.term[0]), 63);
    CHECK(memcmp(m.term[0], h, 63) == 0);
}

TEST(empty_input)
{
    toks_t k = words("");
    CHECK_EQ_INT(k.n, 0);
    k = words("  ,;!? \t\n ");
    CHECK_EQ_INT(k.n, 0);
    tokenizer_t *t = NULL;
    REQUIRE(tokenizer_new(&t) == 0);
    toks_t z;
    memset(&z, 0, sizeof z);
    CHECK_EQ_INT(tokenizer_run(t, NULL, 0, keep, &z), 0);
    CHECK_EQ_INT(z.n, 0);
    CHECK_EQ_INT(tokenizer_run(t, NULL, 5, keep, &z), ENGRAM_EINVAL);
    tokenizer_free(t);
}

static int stop_at_second(const tok_token_t *t, void *ud)
{
    int *n = ud;
    return ++*n == 2 ? 7 : 0;
}

TEST(callback_stops_early)
{
    tokenizer_t *t = NULL;
    REQUIRE(tokenizer_new(&t) == 0);
    int n = 0;
    CHECK_EQ_INT(tokenizer_run(t, "one two three", 13, stop_at_second, &n), 7);
    CHECK_EQ_INT(n, 2);
    tokenizer_free(t);
}

/* Random bytes (biased to UTF-8 lead/continuation bytes and ASCII letters):
 * every token is valid, bounded, NUL-free and inside the input. */
TEST(random_bytes)
{
    unsigned long long seed = test_seed();
    tokenizer_t *t = NULL;
    REQUIRE(tokenizer_new(&t) == 0);
    static const unsigned char alphabet[] = "aZ9 .,'_\xc3\xa9\xe2\x80\x99\xe4\xb8\xad\xf0\x9f\x98\x80\xff\xcc\x81";
    char buf[512];
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = 0;
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = (size_t)(seed >> 33) % sizeof buf;
        for (; len < n; len++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            unsigned r = (unsigned)(seed >> 33);
            buf[len] = (r & 7) == 0 ? (char)(r >> 8) : (char)alphabet[(r >> 8) % (sizeof alphabet - 1)];
        }
        toks_t k;
        memset(&k, 0, sizeof k);
        int rc = tokenizer_run(t, buf, len, keep, &k);
        CHECK_EQ_INT(rc, 0);
        for (int i = 0; i < k.n; i++) CHECK(k.start[i] < k.end[i] && k.end[i] <= len);
        for (int i = 1; i < k.n; i++) CHECK(k.start[i] >= k.end[i - 1]);
    }
    tokenizer_free(t);
}
