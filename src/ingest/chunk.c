/*
 * chunk.c - the text chunker (chunk.h).
 *
 * Three passes over the text:
 *
 *   1. (Markdown only) find heading lines, skipping fenced code blocks, and
 *      record where each starts and where its text is.
 *   2. Split the text into words (runs of non-whitespace, long runs cut into
 *      CHUNK_WORD_MAX_BYTES pieces between code points). For each word keep
 *      its byte span, the heading in effect, and the quality of the boundary
 *      just before it: HEADING (the word opens a heading line), PARAGRAPH
 *      (the gap before it holds a blank line), SENTENCE (the previous word
 *      ends a sentence) or WORD.
 *   3. Walk the words in windows of chunk_size. For a window [s, s+size) the
 *      cut c (the chunk is words [s, c)) is the latest boundary of the best
 *      quality inside the search zone (the last half of the window for
 *      headings, the last quarter for the others), or s+size. The next
 *      window starts at c - overlap, or at c for a heading cut.
 *
 * Termination and coverage: each cut c satisfies prev_c < c <= s + size
 * (the search zone is clipped to start after the previous cut; since
 * overlap < size, s + size > prev_c always leaves room), and the next start
 * is <= c and > s. So starts and ends both strictly increase, and
 * consecutive chunks touch or overlap: every word is covered, in order.
 *
 * Words live in one array (24 bytes each) for the duration of the call.
 */
#include "ingest/chunk.h"

#include <string.h>

#include "util/common.h"

enum { BRK_WORD = 0, BRK_SENTENCE = 1, BRK_PARAGRAPH = 2, BRK_HEADING = 3 };

typedef struct word {
    size_t start, end;
    int32_t heading; /* index into headings, -1 for none */
    uint8_t brk;     /* quality of the boundary before this word */
} word_t;

typedef struct heading {
    size_t line;        /* byte offset of the line (the first '#') */
    size_t text_start;  /* trimmed heading text */
    size_t text_end;
} heading_t;

typedef struct chunker {
    const char *text;
    size_t len;
    word_t *words;
    size_t n_words, cap_words;
    heading_t *heads;
    size_t n_heads, cap_heads;
} chunker_t;

static inline int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
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
static char fence_char(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && p[i] == ' ') i++;
    if (n - i >= 3 && (p[i] == '`' || p[i] == '~') && p[i + 1] == p[i] && p[i + 2] == p[i])
        return p[i];
    return 0;
}

static int find_headings(chunker_t *ck)
{
    const char *t = ck->text;
    size_t pos = 0;
    char fence = 0;
    while (pos < ck->len) {
        const char *nl = memchr(t + pos, '\n', ck->len - pos);
        size_t eol = nl ? (size_t)(nl - t) : ck->len;
        size_t n = eol - pos;
        char f = fence_char(t + pos, n);
        if (fence) {
            if (f == fence) fence = 0;
        } else if (f) {
            fence = f;
        } else {
            size_t h = 0;
            while (h < n && h < 7 && t[pos + h] == '#') h++;
            if (h >= 1 && h <= 6 && h < n && (t[pos + h] == ' ' || t[pos + h] == '\t')) {
                size_t a = pos + h, b = eol;
                while (a < b && is_space((unsigned char)t[a])) a++;
                while (b > a && is_space((unsigned char)t[b - 1])) b--;
                /* An optional closing sequence " ###" is not part of the text. */
                size_t c = b;
                while (c > a && t[c - 1] == '#') c--;
                if (c < b && (c == a || t[c - 1] == ' ' || t[c - 1] == '\t')) {
                    b = c;
                    while (b > a && is_space((unsigned char)t[b - 1])) b--;
                }
                if (grow((void **)&ck->heads, &ck->cap_heads, ck->n_heads, sizeof *ck->heads))
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
static int ends_sentence(const char *t, size_t a, size_t b)
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
static size_t piece_end(const char *t, size_t a, size_t b)
{
    if (b - a <= CHUNK_WORD_MAX_BYTES) return b;
    size_t e = a + CHUNK_WORD_MAX_BYTES;
    for (int back = 0; back < 3 && e > a + 1 && ((unsigned char)t[e] & 0xC0) == 0x80; back++) e--;
    return e;
}

static int add_word(chunker_t *ck, size_t a, size_t b, int32_t heading, uint8_t brk)
{
    if (grow((void **)&ck->words, &ck->cap_words, ck->n_words, sizeof *ck->words))
        return ENGRAM_ENOMEM;
    word_t *w = &ck->words[ck->n_words++];
    w->start = a;
    w->end = b;
    w->heading = heading;
    w->brk = brk;
    return 0;
}

static int split_words(chunker_t *ck)
{
    const char *t = ck->text;
    size_t i = 0, prev_end = 0, next_head = 0;
    int32_t cur_head = -1;
    int prev_sentence = 0;
    while (i < ck->len) {
        while (i < ck->len && is_space((unsigned char)t[i])) i++;
        if (i >= ck->len) break;
        size_t a = i;
        while (i < ck->len && !is_space((unsigned char)t[i])) i++;
        size_t b = i;

        uint8_t brk = BRK_WORD;
        int newlines = 0;
        for (size_t g = prev_end; g < a && newlines < 2; g++) newlines += t[g] == '\n';
        if (ck->n_words > 0 && newlines >= 2) brk = BRK_PARAGRAPH;
        else if (ck->n_words > 0 && prev_sentence) brk = BRK_SENTENCE;
        while (next_head < ck->n_heads && ck->heads[next_head].line <= a) {
            if (ck->heads[next_head].line == a && ck->n_words > 0) brk = BRK_HEADING;
            cur_head = (int32_t)next_head++;
        }
        prev_sentence = ends_sentence(t, a, b);
        prev_end = b;

        /* A long run becomes several tokens; only its first carries the
         * boundary, the pieces are joined by plain word boundaries. */
        while (a < b) {
            size_t e = piece_end(t, a, b);
            if (add_word(ck, a, e, cur_head, brk)) return ENGRAM_ENOMEM;
            brk = BRK_WORD;
            a = e;
        }
    }
    return 0;
}

/* ---- pass 3: windows ---------------------------------------------------- */

static int emit(chunker_t *ck, chunk_span_t **spans, size_t *n, size_t *cap, size_t s, size_t c)
{
    if (grow((void **)spans, cap, *n, sizeof **spans)) return ENGRAM_ENOMEM;
    chunk_span_t *sp = &(*spans)[*n];
    sp->start = ck->words[s].start;
    sp->end = ck->words[c - 1].end;
    sp->token_count = (uint32_t)(c - s);
    sp->heading = NULL;
    int32_t h = ck->words[s].heading;
    if (h >= 0 && ck->heads[h].text_end > ck->heads[h].text_start) {
        const heading_t *hd = &ck->heads[h];
        sp->heading = eg_strndup(ck->text + hd->text_start, hd->text_end - hd->text_start);
        if (!sp->heading) return ENGRAM_ENOMEM;
    }
    (*n)++;
    return 0;
}

static int make_windows(chunker_t *ck, uint32_t size, uint32_t overlap, chunk_span_t **out,
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
            int best = BRK_WORD;
            /* Latest boundary of the best quality; boundary x sits before
             * word x, so a cut at x keeps words [s, x). */
            for (size_t x = e; x >= lo_head && x > s; x--) {
                int q = ck->words[x].brk;
                if (q == BRK_HEADING || (x >= lo && q > best)) {
                    if (q > best) {
                        best = q;
                        c = x;
                    }
                    if (q == BRK_HEADING) break;
                }
            }
            heading_cut = best == BRK_HEADING;
        }
        if ((rc = emit(ck, &spans, &n, &cap, s, c))) goto fail;
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

int chunk_text(const char *text, size_t len, uint32_t chunk_size, uint32_t overlap,
               int is_markdown, chunk_span_t **out, size_t *n_out)
{
    chunker_t ck;
    int rc = 0;
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    if (!out || !n_out || (!text && len) || chunk_size == 0 || overlap >= chunk_size)
        return ENGRAM_EINVAL;
    memset(&ck, 0, sizeof ck);
    ck.text = text;
    ck.len = len;
    if (len == 0) return 0;
    if (is_markdown && (rc = find_headings(&ck))) goto fail;
    if ((rc = split_words(&ck))) goto fail;
    if ((rc = make_windows(&ck, chunk_size, overlap, out, n_out))) goto fail;
fail:
    eg_free(ck.words);
    eg_free(ck.heads);
    return rc;
}

void chunk_spans_free(chunk_span_t *spans, size_t n)
{
    if (!spans) return;
    for (size_t i = 0; i < n; i++) eg_free(spans[i].heading);
    eg_free(spans);
}
