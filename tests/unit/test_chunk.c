/*
 * test_chunk.c - the text chunker (src/ingest/chunk.c).
 *
 * Small hand-made cases for sizes, overlap, sentence/paragraph/heading cuts
 * and heading propagation; then a seeded property test over random texts
 * checked against a plain whitespace split: every span is within bounds,
 * trimmed, non-empty, at most chunk_size words, its token_count equals the
 * words it holds, starts and ends strictly increase, consecutive chunks
 * share at most `overlap` words, and together they cover every word.
 * The streaming chunker is checked against the whole-text chunker it
 * replaced (kept below as the reference), fed in random pieces.
 */
#include "test.h"
#include "ingest/chunk.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/utf8.h"

/* Reference word split: byte offsets of whitespace-separated words, long
 * runs cut the way chunk.h documents. */
typedef struct { size_t start, end; } wspan_t;

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static size_t ref_words(const char *t, size_t n, wspan_t *out, size_t max)
{
    size_t k = 0, i = 0;
    while (i < n) {
        while (i < n && is_ws((unsigned char)t[i])) i++;
        if (i >= n) break;
        size_t a = i;
        while (i < n && !is_ws((unsigned char)t[i])) i++;
        while (a < i) {
            size_t e = a + CHUNK_WORD_MAX_BYTES < i ? a + CHUNK_WORD_MAX_BYTES : i;
            if (e < i) {
                for (int back = 0; back < 3 && e > a + 1 && ((unsigned char)t[e] & 0xC0) == 0x80; back++) e--;
            }
            if (k < max) out[k] = (wspan_t){a, e};
            k++;
            a = e;
        }
    }
    return k;
}

/* Index of the word starting at byte off, or -1. */
static long word_at(const wspan_t *w, size_t n, size_t off)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (w[mid].start < off) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && w[lo].start == off ? (long)lo : -1;
}

/* Checks every invariant; returns 1 when all hold. */
static int check_invariants(const char *t, size_t n, uint32_t size, uint32_t overlap,
                            const chunk_span_t *sp, size_t ns)
{
    size_t cap = n / 1 + 1;
    wspan_t *w = eg_malloc(cap * sizeof *w);
    if (!w) return 0;
    size_t nw = ref_words(t, n, w, cap);
    int ok = 1;
    if (nw == 0) ok &= ns == 0;
    long prev_first = -1, prev_last = -1;
    for (size_t i = 0; i < ns && ok; i++) {
        const chunk_span_t *c = &sp[i];
        ok &= c->start < c->end && c->end <= n;
        if (!ok) break;
        ok &= !is_ws((unsigned char)t[c->start]) && !is_ws((unsigned char)t[c->end - 1]);
        long first = word_at(w, nw, c->start);
        ok &= first >= 0;
        if (!ok) { fprintf(stderr, "  chunk %zu does not start at a word\n", i); break; }
        long last = first + (long)c->token_count - 1;
        ok &= last < (long)nw && w[last].end == c->end;
        if (!ok) { fprintf(stderr, "  chunk %zu token_count/end mismatch\n", i); break; }
        ok &= c->token_count >= 1 && c->token_count <= size;
        ok &= utf8_valid(t + c->start, c->end - c->start) || !utf8_valid(t, n);
        if (i == 0) {
            ok &= first == 0;
        } else {
            ok &= first > prev_first && last > prev_last; /* progress */
            ok &= first <= prev_last + 1;                  /* no gap */
            ok &= prev_last - first + 1 <= (long)overlap;  /* shared words */
        }
        if (!ok) fprintf(stderr, "  chunk %zu: words [%ld, %ld] after [%ld, %ld]\n", i, first, last,
                         prev_first, prev_last);
        prev_first = first;
        prev_last = last;
    }
    if (ok && nw > 0) ok &= prev_last == (long)nw - 1; /* the last word is covered */
    eg_free(w);
    return ok;
}

static size_t run(const char *t, uint32_t size, uint32_t overlap, int md, chunk_span_t **sp)
{
    size_t n = 0;
    int rc = chunk_text(t, strlen(t), size, overlap, md, sp, &n);
    CHECK_EQ_INT(rc, 0);
    CHECK(check_invariants(t, strlen(t), size, overlap, *sp, n));
    return n;
}

static int span_is(const char *t, const chunk_span_t *c, const char *want)
{
    size_t n = strlen(want);
    if (c->end - c->start != n || memcmp(t + c->start, want, n) != 0) {
        fprintf(stderr, "  chunk is \"%.*s\", want \"%s\"\n", (int)(c->end - c->start), t + c->start, want);
        return 0;
    }
    return 1;
}

TEST(arguments)
{
    chunk_span_t *sp = (chunk_span_t *)1;
    size_t n = 7;
    CHECK_EQ_INT(chunk_text("a b", 3, 0, 0, 0, &sp, &n), ENGRAM_EINVAL);
    CHECK(sp == NULL && n == 0);
    CHECK_EQ_INT(chunk_text("a b", 3, 4, 4, 0, &sp, &n), ENGRAM_EINVAL);
    CHECK_EQ_INT(chunk_text("a b", 3, 4, 5, 0, &sp, &n), ENGRAM_EINVAL);
    CHECK_EQ_INT(chunk_text(NULL, 3, 4, 1, 0, &sp, &n), ENGRAM_EINVAL);
    CHECK_EQ_INT(chunk_text("a", 1, 4, 1, 0, NULL, &n), ENGRAM_EINVAL);
    CHECK_EQ_INT(chunk_text(NULL, 0, 4, 1, 0, &sp, &n), 0);
    CHECK(sp == NULL && n == 0);
    CHECK_EQ_INT(chunk_text("", 0, 4, 1, 0, &sp, &n), 0);
    CHECK(sp == NULL && n == 0);
    CHECK_EQ_INT(chunk_text(" \n\t\r\n  ", 7, 4, 1, 1, &sp, &n), 0);
    CHECK(sp == NULL && n == 0);
    chunk_spans_free(NULL, 0);
}

TEST(single_chunk_trimmed)
{
    const char *t = "  \n hello   world \n\n";
    chunk_span_t *sp = NULL;
    size_t n = run(t, 10, 2, 0, &sp);
    REQUIRE(n == 1);
    CHECK(span_is(t, &sp[0], "hello   world"));
    CHECK_EQ_INT(sp[0].token_count, 2);
    CHECK(sp[0].heading == NULL);
    chunk_spans_free(sp, n);
}

TEST(plain_windows_and_overlap)
{
    /* No sentence ends: cuts fall exactly every `size` words. */
    const char *t = "w0 w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11";
    chunk_span_t *sp = NULL;
    size_t n = run(t, 5, 2, 0, &sp);
    REQUIRE(n == 4);
    CHECK(span_is(t, &sp[0], "w0 w1 w2 w3 w4"));
    CHECK(span_is(t, &sp[1], "w3 w4 w5 w6 w7"));
    CHECK(span_is(t, &sp[2], "w6 w7 w8 w9 w10"));
    CHECK(span_is(t, &sp[3], "w9 w10 w11"));
    CHECK_EQ_INT(sp[3].token_count, 3);
    chunk_spans_free(sp, n);

    n = run(t, 4, 0, 0, &sp);
    REQUIRE(n == 3);
    CHECK(span_is(t, &sp[0], "w0 w1 w2 w3"));
    CHECK(span_is(t, &sp[1], "w4 w5 w6 w7"));
    CHECK(span_is(t, &sp[2], "w8 w9 w10 w11"));
    chunk_spans_free(sp, n);

    /* size 1: one word per chunk. */
    n = run("a b c", 1, 0, 0, &sp);
    CHECK_EQ_INT(n, 3);
    chunk_spans_free(sp, n);

    /* Maximal overlap still progresses. */
    n = run(t, 4, 3, 0, &sp);
    CHECK_EQ_INT(n, 9);
    chunk_spans_free(sp, n);
}

TEST(sentence_cut_preferred)
{
    /* Window of 8; a sentence ends after word 7 (inside the last quarter). */
    const char *t = "one two three four five six seven. eight nine ten eleven twelve";
    chunk_span_t *sp = NULL;
    size_t n = run(t, 8, 0, 0, &sp);
    REQUIRE(n == 2);
    CHECK(span_is(t, &sp[0], "one two three four five six seven."));
    CHECK(span_is(t, &sp[1], "eight nine ten eleven twelve"));
    chunk_spans_free(sp, n);

    /* A sentence end too early in the window (word 2 of 8) is ignored. */
    t = "one two! three four five six seven eight nine ten";
    n = run(t, 8, 0, 0, &sp);
    REQUIRE(n == 2);
    CHECK(span_is(t, &sp[0], "one two! three four five six seven eight"));
    chunk_spans_free(sp, n);

    /* Closing quotes and brackets are looked through; "?" counts. */
    t = "a b c d e f \"why?\" g h i j";
    n = run(t, 8, 0, 0, &sp);
    REQUIRE(n >= 1);
    CHECK(span_is(t, &sp[0], "a b c d e f \"why?\""));
    chunk_spans_free(sp, n);
}

TEST(paragraph_beats_sentence)
{
    /* In the last quarter of a 12-word window there is a sentence end after
     * word 12 and a paragraph break after word 10: the paragraph wins. */
    const char *t = "a b c d e f g h i j\n\nk l. m n o p";
    chunk_span_t *sp = NULL;
    size_t n = run(t, 12, 0, 0, &sp);
    REQUIRE(n == 2);
    CHECK(span_is(t, &sp[0], "a b c d e f g h i j"));
    CHECK(span_is(t, &sp[1], "k l. m n o p"));
    chunk_spans_free(sp, n);
}

TEST(markdown_headings)
{
    const char *t =
        "Intro words here and more\n"
        "# Title\n"
        "alpha beta gamma delta epsilon zeta eta theta\n"
        "## Section Two ##\n"
        "iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon\n"
        "```\n# not a heading\n```\n"
        "phi chi psi omega";
    chunk_span_t *sp = NULL;
    size_t n = run(t, 10, 2, 1, &sp);
    REQUIRE(n >= 3);
    /* The first chunk stops before "# Title" (a heading in the last half). */
    CHECK(span_is(t, &sp[0], "Intro words here and more"));
    CHECK(sp[0].heading == NULL);
    /* The next starts at the heading itself (no overlap across a heading). */
    CHECK(strncmp(t + sp[1].start, "# Title", 7) == 0);
    CHECK_STR(sp[1].heading, "Title");
    int saw_two = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(t + sp[i].start, "## Section Two", 14) == 0) saw_two = 1;
        if (sp[i].heading && strcmp(sp[i].heading, "Section Two") == 0) saw_two |= 2;
        if (sp[i].heading) CHECK(strstr(sp[i].heading, "not a heading") == NULL);
    }
    CHECK_EQ_INT(saw_two, 3);
    /* The last chunk (inside section two, after the fence) carries it. */
    CHECK_STR(sp[n - 1].heading, "Section Two");
    chunk_spans_free(sp, n);

    /* Without is_markdown, '#' lines are ordinary words and no headings. */
    n = run(t, 10, 2, 0, &sp);
    for (size_t i = 0; i < n; i++) CHECK(sp[i].heading == NULL);
    chunk_spans_free(sp, n);

    /* "#hashtag" and 7 '#' are not headings. */
    const char *t2 = "#hashtag line\n####### seven\nbody";
    n = run(t2, 10, 0, 1, &sp);
    REQUIRE(n == 1);
    CHECK(sp[0].heading == NULL);
    chunk_spans_free(sp, n);
}

TEST(long_words_and_utf8)
{
    /* A 1000-byte run of 3-byte code points (no spaces) is cut into
     * CHUNK_WORD_MAX_BYTES-sized tokens between code points. */
    buf_t b = BUF_INIT;
    for (int i = 0; i < 334; i++) buf_puts(&b, "\xe6\x97\xa5");
    buf_puts(&b, " tail");
    const char *t = buf_cstr(&b);
    chunk_span_t *sp = NULL;
    size_t n = run(t, 4, 1, 0, &sp);
    REQUIRE(n >= 2);
    for (size_t i = 0; i < n; i++) {
        CHECK(utf8_valid(t + sp[i].start, sp[i].end - sp[i].start));
        CHECK(sp[i].end - sp[i].start <= 4 * CHUNK_WORD_MAX_BYTES + 8);
    }
    chunk_spans_free(sp, n);
    buf_free(&b);
}

TEST(alloc_failure)
{
    const char *t = "# H\nalpha beta. gamma delta\n\n## I\nepsilon zeta eta theta iota kappa lambda mu nu";
    int done = 0;
    for (long k = 1; k < 1000 && !done; k++) {
        chunk_span_t *sp = (chunk_span_t *)1;
        size_t n = 9;
        eg_alloc_fail_after(k);
        int rc = chunk_text(t, strlen(t), 3, 1, 1, &sp, &n);
        eg_alloc_fail_after(-1);
        if (rc == 0) {
            CHECK(check_invariants(t, strlen(t), 3, 1, sp, n));
            chunk_spans_free(sp, n);
            done = 1;
        } else {
            CHECK_EQ_INT(rc, ENGRAM_ENOMEM);
            CHECK(sp == NULL && n == 0);
        }
    }
    CHECK(done);
}

/* ---- random texts -------------------------------------------------------- */

static uint64_t rng(unsigned long long *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static void random_text(buf_t *b, unsigned long long *seed, size_t words)
{
    static const char *vocab[] = {
        "the", "a", "chunk", "window", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "end.",
        "why?", "stop!", "\"quote.\"", "(paren.)", "#", "##", "###", "x", "e.g.", "--",
    };
    static const char *gaps[] = {" ", " ", " ", "  ", "\n", "\n\n", "\t", " \r\n", "\n\n\n"};
    for (size_t i = 0; i < words; i++) {
        if (i > 0) buf_puts(b, gaps[rng(seed) % EG_ARRAY_LEN(gaps)]);
        uint64_t r = rng(seed) % 100;
        if (r < 2) {
            size_t len = 50 + rng(seed) % 200; /* a long run */
            for (size_t k = 0; k < len; k++) buf_putc(b, (char)('a' + rng(seed) % 26));
        } else if (r < 4) {
            buf_puts(b, "\n# Heading ");
            buf_puts(b, vocab[rng(seed) % 4]);
            buf_putc(b, '\n');
        } else if (r < 5) {
            buf_puts(b, "\n```\n");
        } else {
            buf_puts(b, vocab[rng(seed) % EG_ARRAY_LEN(vocab)]);
        }
    }
}

TEST(random_property)
{
    unsigned long long seed = test_seed();
    for (int iter = 0; iter < 300; iter++) {
        buf_t b = BUF_INIT;
        size_t words = rng(&seed) % (iter < 50 ? 20 : 600);
        random_text(&b, &seed, words);
        uint32_t size = 1 + (uint32_t)(rng(&seed) % 64);
        uint32_t overlap = (uint32_t)(rng(&seed) % size);
        int md = (int)(rng(&seed) & 1);
        chunk_span_t *sp = NULL;
        size_t n = 0;
        int rc = chunk_text(b.data ? b.data : "", b.len, size, overlap, md, &sp, &n);
        CHECK_EQ_INT(rc, 0);
        if (!check_invariants(b.data ? b.data : "", b.len, size, overlap, sp, n)) {
            fprintf(stderr, "  iteration %d: size %u overlap %u md %d\n", iter, size, overlap, md);
            CHECK(0);
            chunk_spans_free(sp, n);
            buf_free(&b);
            break;
        }
        chunk_spans_free(sp, n);
        buf_free(&b);
    }
}

/* Random bytes (not text at all) still terminate with sane spans. */
TEST(random_bytes)
{
    unsigned long long seed = test_seed() ^ 0x5eed;
    char data[2048];
    for (int iter = 0; iter < 200; iter++) {
        size_t n = rng(&seed) % sizeof data;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng(&seed);
            data[i] = (char)(r % 5 == 0 ? ' ' : r % 7 == 0 ? '\n' : (char)(r >> 8));
        }
        uint32_t size = 1 + (uint32_t)(rng(&seed) % 20);
        uint32_t overlap = (uint32_t)(rng(&seed) % size);
        chunk_span_t *sp = NULL;
        size_t ns = 0;
        CHECK_EQ_INT(chunk_text(data, n, size, overlap, 1, &sp, &ns), 0);
        CHECK(check_invariants(data, n, size, overlap, sp, ns));
        chunk_spans_free(sp, ns);
    }
}


/* ---- the reference: the chunker as it was before it streamed ------------
 * (a whole-text implementation: words of the entire text in one array),
 * kept here to check that the streaming chunker cuts exactly the same
 * chunks however its text arrives. */
enum { ref_BRK_WORD = 0, ref_BRK_SENTENCE = 1, ref_BRK_PARAGRAPH = 2, ref_BRK_HEADING = 3 };

typedef struct ref_word {
    size_t start, end;
    int32_t heading; /* index into headings, -1 for none */
    uint8_t brk;     /* quality of the boundary before this word */
} ref_word_t;

typedef struct ref_heading {
    size_t line;        /* byte offset of the line (the first '#') */
    size_t text_start;  /* trimmed heading text */
    size_t text_end;
} ref_heading_t;

typedef struct ref_chunker {
    const char *text;
    size_t len;
    ref_word_t *words;
    size_t n_words, cap_words;
    ref_heading_t *heads;
    size_t n_heads, cap_heads;
} ref_chunker_t;

static inline int ref_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int ref_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t ncap = *cap ? *cap * 2 : 64;
    if (ncap > ((size_t)-1) / elem) return ENGRAM_ENOMEM;
    void *p = eg_realloc(*arr, ncap * elem);
    if (!p) return ENGRAM_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* ---- pass 1: Markdown headings ---------------------------------------- */

/* A fence line: up to 3 spaces, then ``` or ~~~. Returns the fence char. */
static char ref_fence_char(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && p[i] == ' ') i++;
    if (n - i >= 3 && (p[i] == '`' || p[i] == '~') && p[i + 1] == p[i] && p[i + 2] == p[i])
        return p[i];
    return 0;
}

static int ref_find_headings(ref_chunker_t *ck)
{
    const char *t = ck->text;
    size_t pos = 0;
    char fence = 0;
    while (pos < ck->len) {
        const char *nl = memchr(t + pos, '\n', ck->len - pos);
        size_t eol = nl ? (size_t)(nl - t) : ck->len;
        size_t n = eol - pos;
        char f = ref_fence_char(t + pos, n);
        if (fence) {
            if (f == fence) fence = 0;
        } else if (f) {
            fence = f;
        } else {
            size_t h = 0;
            while (h < n && h < 7 && t[pos + h] == '#') h++;
            if (h >= 1 && h <= 6 && h < n && (t[pos + h] == ' ' || t[pos + h] == '\t')) {
                size_t a = pos + h, b = eol;
                while (a < b && ref_is_space((unsigned char)t[a])) a++;
                while (b > a && ref_is_space((unsigned char)t[b - 1])) b--;
                /* An optional closing sequence " ###" is not part of the text. */
                size_t c = b;
                while (c > a && t[c - 1] == '#') c--;
                if (c < b && (c == a || t[c - 1] == ' ' || t[c - 1] == '\t')) {
                    b = c;
                    while (b > a && ref_is_space((unsigned char)t[b - 1])) b--;
                }
                if (ref_grow((void **)&ck->heads, &ck->cap_heads, ck->n_heads, sizeof *ck->heads))
                    return ENGRAM_ENOMEM;
                ck->heads[ck->n_heads].line = pos;
                ck->heads[ck->n_heads].text_start = a;
                ck->heads[ck->n_heads].text_end = b;
                ck->n_heads++;
            }
        }
        pos = eol + 1;
    }
    return 0;
}

/* ---- pass 2: words ------------------------------------------------------ */

/* Does the word t[a..b) end a sentence? Trailing closers are looked through. */
static int ref_ends_sentence(const char *t, size_t a, size_t b)
{
    while (b > a) {
        unsigned char c = (unsigned char)t[b - 1];
        if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '*' || c == '_') {
            b--;
        } else if (b - a >= 3 && (unsigned char)t[b - 3] == 0xE2 && (unsigned char)t[b - 2] == 0x80 &&
                   (c == 0x9D || c == 0x99)) {
            b -= 3; /* ” ’ */
        } else if (b - a >= 2 && (unsigned char)t[b - 2] == 0xC2 && c == 0xBB) {
            b -= 2; /* » */
        } else {
            break;
        }
    }
    if (b == a) return 0;
    char c = t[b - 1];
    return c == '.' || c == '!' || c == '?';
}

/* Where to cut a run that is longer than the word limit: at most
 * CHUNK_WORD_MAX_BYTES from a, moved back to a code point start (never
 * before a + 1, so ill-formed input still advances). */
static size_t ref_piece_end(const char *t, size_t a, size_t b)
{
    if (b - a <= CHUNK_WORD_MAX_BYTES) return b;
    size_t e = a + CHUNK_WORD_MAX_BYTES;
    for (int back = 0; back < 3 && e > a + 1 && ((unsigned char)t[e] & 0xC0) == 0x80; back++) e--;
    return e;
}

static int ref_add_word(ref_chunker_t *ck, size_t a, size_t b, int32_t heading, uint8_t brk)
{
    if (ref_grow((void **)&ck->words, &ck->cap_words, ck->n_words, sizeof *ck->words))
        return ENGRAM_ENOMEM;
    ref_word_t *w = &ck->words[ck->n_words++];
    w->start = a;
    w->end = b;
    w->heading = heading;
    w->brk = brk;
    return 0;
}

static int ref_split_words(ref_chunker_t *ck)
{
    const char *t = ck->text;
    size_t i = 0, prev_end = 0, next_head = 0;
    int32_t cur_head = -1;
    int prev_sentence = 0;
    while (i < ck->len) {
        while (i < ck->len && ref_is_space((unsigned char)t[i])) i++;
        if (i >= ck->len) break;
        size_t a = i;
        while (i < ck->len && !ref_is_space((unsigned char)t[i])) i++;
        size_t b = i;

        uint8_t brk = ref_BRK_WORD;
        int newlines = 0;
        for (size_t g = prev_end; g < a && newlines < 2; g++) newlines += t[g] == '\n';
        if (ck->n_words > 0 && newlines >= 2) brk = ref_BRK_PARAGRAPH;
        else if (ck->n_words > 0 && prev_sentence) brk = ref_BRK_SENTENCE;
        while (next_head < ck->n_heads && ck->heads[next_head].line <= a) {
            if (ck->heads[next_head].line == a && ck->n_words > 0) brk = ref_BRK_HEADING;
            cur_head = (int32_t)next_head++;
        }
        prev_sentence = ref_ends_sentence(t, a, b);
        prev_end = b;

        /* A long run becomes several tokens; only its first carries the
         * boundary, the pieces are joined by plain word boundaries. */
        while (a < b) {
            size_t e = ref_piece_end(t, a, b);
            if (ref_add_word(ck, a, e, cur_head, brk)) return ENGRAM_ENOMEM;
            brk = ref_BRK_WORD;
            a = e;
        }
    }
    return 0;
}

/* ---- pass 3: windows ---------------------------------------------------- */

static int ref_emit(ref_chunker_t *ck, chunk_span_t **spans, size_t *n, size_t *cap, size_t s, size_t c)
{
    if (ref_grow((void **)spans, cap, *n, sizeof **spans)) return ENGRAM_ENOMEM;
    chunk_span_t *sp = &(*spans)[*n];
    sp->start = ck->words[s].start;
    sp->end = ck->words[c - 1].end;
    sp->token_count = (uint32_t)(c - s);
    sp->heading = NULL;
    int32_t h = ck->words[s].heading;
    if (h >= 0 && ck->heads[h].text_end > ck->heads[h].text_start) {
        const ref_heading_t *hd = &ck->heads[h];
        sp->heading = eg_strndup(ck->text + hd->text_start, hd->text_end - hd->text_start);
        if (!sp->heading) return ENGRAM_ENOMEM;
    }
    (*n)++;
    return 0;
}

static int ref_make_windows(ref_chunker_t *ck, uint32_t size, uint32_t overlap, chunk_span_t **out,
                        size_t *n_out)
{
    chunk_span_t *spans = NULL;
    size_t n = 0, cap = 0, s = 0, prev_c = 0;
    int rc;
    size_t near = size - size / 4; /* cuts for sentences/paragraphs from here */
    size_t half = size - size / 2; /* cuts for headings from here */
    while (s < ck->n_words) {
        size_t e = s + size;
        size_t c = e;
        int heading_cut = 0;
        if (e >= ck->n_words) {
            c = ck->n_words;
        } else {
            size_t lo_head = EG_MAX(s + half, prev_c + 1);
            size_t lo = EG_MAX(s + near, prev_c + 1);
            int best = ref_BRK_WORD;
            /* Latest boundary of the best quality; boundary x sits before
             * word x, so a cut at x keeps words [s, x). */
            for (size_t x = e; x >= lo_head && x > s; x--) {
                int q = ck->words[x].brk;
                if (q == ref_BRK_HEADING || (x >= lo && q > best)) {
                    if (q > best) {
                        best = q;
                        c = x;
                    }
                    if (q == ref_BRK_HEADING) break;
                }
            }
            heading_cut = best == ref_BRK_HEADING;
        }
        if ((rc = ref_emit(ck, &spans, &n, &cap, s, c))) goto fail;
        if (c >= ck->n_words) break;
        prev_c = c;
        if (heading_cut) s = c;
        else if (c > s + overlap) s = c - overlap;
        else s = s + 1; /* short chunk (cut right after the previous one): keep moving */
    }
    *out = spans;
    *n_out = n;
    return 0;
fail:
    chunk_spans_free(spans, n);
    return rc;
}

int ref_chunk_text(const char *text, size_t len, uint32_t chunk_size, uint32_t overlap,
               int is_markdown, chunk_span_t **out, size_t *n_out)
{
    ref_chunker_t ck;
    int rc = 0;
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    if (!out || !n_out || (!text && len) || chunk_size == 0 || overlap >= chunk_size)
        return ENGRAM_EINVAL;
    memset(&ck, 0, sizeof ck);
    ck.text = text;
    ck.len = len;
    if (len == 0) return 0;
    if (is_markdown && (rc = ref_find_headings(&ck))) goto fail;
    if ((rc = ref_split_words(&ck))) goto fail;
    if ((rc = ref_make_windows(&ck, chunk_size, overlap, out, n_out))) goto fail;
fail:
    eg_free(ck.words);
    eg_free(ck.heads);
    return rc;
}


/* Feeds text in random pieces, dropping what the stream no longer needs
 * (the window is copied to a fresh allocation each time, so a read of a
 * dropped byte is an ASan report), and checks the chunks against the
 * reference, code point offsets included. */
static int stream_matches(const char *t, size_t n, uint32_t size, uint32_t overlap, int md,
                          unsigned long long *seed)
{
    chunk_span_t *want = NULL;
    size_t nw = 0;
    if (ref_chunk_text(t, n, size, overlap, md, &want, &nw)) return 0;
    chunk_stream_t *cs;
    if (chunk_stream_new(size, overlap, md, &cs)) return 0;
    char *win = NULL;
    size_t base = 0, fed = 0, got = 0;
    int ok = 1;
    for (;;) {
        size_t step = 1 + rng(seed) % (rng(seed) % 4 == 0 ? 3 : 400);
        size_t upto = fed + step < n ? fed + step : n;
        size_t keep = chunk_stream_keep(cs);
        if (keep < base || keep > upto) { ok = 0; break; }
        char *nb = eg_malloc(upto - keep + 1);
        if (!nb) { ok = 0; break; }
        memcpy(nb, t + keep, upto - keep);
        eg_free(win);
        win = nb;
        base = keep;
        fed = upto;
        chunk_stream_text(cs, win, base, fed - base, fed == n);
        chunk_span_t sp;
        uint64_t cp[2];
        int rc;
        while ((rc = chunk_stream_next(cs, &sp, cp)) == 1) {
            if (got >= nw || sp.start != want[got].start || sp.end != want[got].end ||
                sp.token_count != want[got].token_count ||
                (sp.heading == NULL) != (want[got].heading == NULL) ||
                (sp.heading && strcmp(sp.heading, want[got].heading))) {
                fprintf(stderr, "  chunk %zu differs\n", got);
                ok = 0;
                break;
            }
            uint64_t cps = 0, cpe = 0;
            for (size_t i = 0; i < sp.end; i++) {
                int lead = ((unsigned char)t[i] & 0xC0) != 0x80;
                if (i < sp.start) cps += lead;
                cpe += lead;
            }
            if (cp[0] != cps || cp[1] != cpe) {
                fprintf(stderr, "  chunk %zu: code points %llu-%llu, want %llu-%llu\n", got,
                        (unsigned long long)cp[0], (unsigned long long)cp[1],
                        (unsigned long long)cps, (unsigned long long)cpe);
                ok = 0;
                break;
            }
            got++;
        }
        if (!ok || rc < 0) { ok = 0; break; }
        if (fed == n) break;
    }
    if (ok && got != nw) {
        fprintf(stderr, "  %zu chunks streamed, %zu wanted\n", got, nw);
        ok = 0;
    }
    eg_free(win);
    chunk_stream_free(cs);
    chunk_spans_free(want, nw);
    return ok;
}

TEST(stream_matches_reference)
{
    unsigned long long seed = test_seed() ^ 0x57ea;
    for (int iter = 0; iter < 300; iter++) {
        buf_t b = BUF_INIT;
        random_text(&b, &seed, rng(&seed) % (iter < 50 ? 30 : 800));
        if (iter % 7 == 3) { /* a run far longer than a word, and one long heading line */
            buf_puts(&b, " ");
            for (int k = 0; k < 700; k++) buf_puts(&b, k % 50 == 0 ? "\xc3\xa9" : "z");
            buf_puts(&b, "\n## ");
            for (int k = 0; k < 300; k++) buf_puts(&b, "long heading ");
            buf_puts(&b, "##\nend.");
        }
        uint32_t size = 1 + (uint32_t)(rng(&seed) % 64);
        uint32_t overlap = (uint32_t)(rng(&seed) % size);
        int md = (int)(rng(&seed) & 1);
        if (!stream_matches(b.data ? b.data : "", b.len, size, overlap, md, &seed)) {
            fprintf(stderr, "  iteration %d: size %u overlap %u md %d (seed %llu)\n", iter, size,
                    overlap, md, test_seed());
            CHECK(0);
            buf_free(&b);
            break;
        }
        buf_free(&b);
    }
}

/* Random bytes, fed in pieces: the same chunks as the reference. */
TEST(stream_random_bytes)
{
    unsigned long long seed = test_seed() ^ 0xb17e5;
    char data[3000];
    for (int iter = 0; iter < 200; iter++) {
        size_t n = rng(&seed) % sizeof data;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng(&seed);
            data[i] = (char)(r % 5 == 0 ? ' ' : r % 7 == 0 ? '\n' : r % 11 == 0 ? '#' : (char)(r >> 8));
        }
        uint32_t size = 1 + (uint32_t)(rng(&seed) % 20);
        uint32_t overlap = (uint32_t)(rng(&seed) % size);
        CHECK(stream_matches(data, n, size, overlap, (int)(iter & 1), &seed));
    }
}

TEST(big_document_is_fast_enough)
{
    unsigned long long seed = test_seed();
    buf_t b = BUF_INIT;
    random_text(&b, &seed, 200000);
    chunk_span_t *sp = NULL;
    size_t n = 0;
    CHECK_EQ_INT(chunk_text(b.data, b.len, 256, 32, 1, &sp, &n), 0);
    CHECK(n > 200000 / 256);
    CHECK(check_invariants(b.data, b.len, 256, 32, sp, n));
    chunk_spans_free(sp, n);
    buf_free(&b);
}
