/*
 * chunk.c - the text chunker (chunk.h), one streaming implementation.
 *
 * Three stages run lazily, each only as far as the next one needs:
 *
 *   1. (Markdown only) a line scanner finds heading lines, skipping fenced
 *      code blocks, and keeps each heading's text (a copy, so the text it
 *      came from may be dropped).
 *   2. A word scanner splits the text into words (runs of non-whitespace,
 *      long runs cut into CHUNK_WORD_MAX_BYTES pieces between code points).
 *      Each word gets its byte and code point span, the heading in effect,
 *      and the quality of the boundary just before it: HEADING (the word
 *      opens a heading line), PARAGRAPH (the gap before it holds a blank
 *      line), SENTENCE (the previous word ends a sentence) or WORD.
 *   3. Windows over the words: for a window [s, s+size) the cut c (the chunk
 *      is words [s, c)) is the latest boundary of the best quality inside
 *      the search zone (the last half of the window for headings, the last
 *      quarter for the others), or s+size. The next window starts at
 *      c - overlap, or at c for a heading cut.
 *
 * Termination and coverage: each cut c satisfies prev_c < c <= s + size
 * (the search zone is clipped to start after the previous cut; since
 * overlap < size, s + size > prev_c always leaves room), and the next start
 * is <= c and > s. So starts and ends both strictly increase, and
 * consecutive chunks touch or overlap: every word is covered, in order.
 *
 * Streaming: a window is decided once word s+size is known (its boundary
 * is the last one the search reads) or the text has ended, so the stream
 * holds about chunk_size words (plus the Markdown headings still in
 * effect), whatever the document's size; everything it scans carries its
 * state forward (the newlines of a gap, whether the run so far ends a
 * sentence, the fence), so the chunks are the same however the text is cut
 * into pieces. A heading line is examined once it is complete or
 * CHUNK_LINE_MAX bytes long; the text of a longer heading is its first
 * CHUNK_LINE_MAX bytes (trimmed), the only way a streamed result could
 * differ from a whole-text one, and chunk_text uses the same code.
 */
#include "ingest/chunk.h"

#include <string.h>

#include "util/common.h"

#define CHUNK_LINE_MAX 65536

enum { BRK_WORD = 0, BRK_SENTENCE = 1, BRK_PARAGRAPH = 2, BRK_HEADING = 3 };

typedef struct word {
    size_t start, end;
    uint64_t cp_start, cp_end;
    int64_t heading; /* ordinal of the heading in effect, -1 for none */
    uint8_t brk;     /* quality of the boundary before this word */
} word_t;

typedef struct heading {
    size_t line;  /* absolute offset of the line (the first '#') */
    char *text;   /* trimmed heading text, owned */
    size_t len;
} heading_t;

struct chunk_stream {
    uint32_t size, overlap;
    int md;
    /* The text window: bytes [base, end) of the text are at buf. */
    const char *buf;
    size_t base, end;
    int final;

    /* Markdown line scanner. */
    size_t line;          /* start of the next line to examine */
    int line_skip;        /* looking for the end of a line examined early */
    size_t line_search;   /* ... searched up to here */
    char fence;
    int lines_done;
    size_t lines_seen;    /* end of the text when the scanner last stopped for more */
    heading_t *heads;     /* ordinals h0 .. h0 + nh - 1 */
    size_t nh, caph;
    int64_t h0;
    int64_t applied;      /* ordinal of the next heading the word scanner has not reached */
    int64_t cur_head;     /* heading in effect at the word scanner */

    /* Word scanner. */
    size_t pos;           /* next byte to scan */
    uint64_t pos_cp;      /* code points before pos */
    int gap_nl;           /* newlines in the current gap (capped at 2) */
    int in_run;
    size_t piece;         /* start of the current piece of the run */
    uint64_t piece_cp;
    size_t run_len;       /* bytes of the run so far */
    uint8_t run_brk;      /* boundary of the run's first piece (later pieces: WORD) */
    int sent, sent_b1, sent_b2; /* ends-a-sentence state now, and before the last two bytes */
    unsigned char b1, b2; /* the last two bytes of the run */
    int prev_sentence;    /* the previous run ends a sentence */
    int scan_done;

    /* Words s.. (absolute index w0 + i is words[wh + i]). */
    word_t *words;
    size_t wh, nw, capw;
    uint64_t w0, n_words; /* n_words: words produced so far */

    /* Windows. */
    uint64_t s, prev_c;
    int done;
};

static inline int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static inline unsigned char at(const chunk_stream_t *cs, size_t p)
{
    return (unsigned char)cs->buf[p - cs->base];
}

/* ---- 1: Markdown headings ----------------------------------------------- */

/* A fence line: up to 3 spaces, then ``` or ~~~. Returns the fence char. */
static char fence_char(const chunk_stream_t *cs, size_t p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && at(cs, p + i) == ' ') i++;
    if (n - i >= 3 && (at(cs, p + i) == '`' || at(cs, p + i) == '~') &&
        at(cs, p + i + 1) == at(cs, p + i) && at(cs, p + i + 2) == at(cs, p + i))
        return (char)at(cs, p + i);
    return 0;
}

/* Examines the line [pos, eol). */
static int examine_line(chunk_stream_t *cs, size_t pos, size_t eol)
{
    size_t n = eol - pos;
    char f = fence_char(cs, pos, n);
    if (cs->fence) {
        if (f == cs->fence) cs->fence = 0;
        return 0;
    }
    if (f) {
        cs->fence = f;
        return 0;
    }
    size_t h = 0;
    while (h < n && h < 7 && at(cs, pos + h) == '#') h++;
    if (!(h >= 1 && h <= 6 && h < n && (at(cs, pos + h) == ' ' || at(cs, pos + h) == '\t')))
        return 0;
    size_t a = pos + h, b = eol;
    while (a < b && is_space(at(cs, a))) a++;
    while (b > a && is_space(at(cs, b - 1))) b--;
    /* An optional closing sequence " ###" is not part of the text. */
    size_t c = b;
    while (c > a && at(cs, c - 1) == '#') c--;
    if (c < b && (c == a || at(cs, c - 1) == ' ' || at(cs, c - 1) == '\t')) {
        b = c;
        while (b > a && is_space(at(cs, b - 1))) b--;
    }
    if (eg_grow((void **)&cs->heads, &cs->caph, cs->nh, sizeof *cs->heads)) return ENGRAM_ENOMEM;
    heading_t *hd = &cs->heads[cs->nh];
    hd->line = pos;
    hd->len = b - a;
    hd->text = eg_strndup(cs->buf + (a - cs->base), b - a);
    if (!hd->text) return ENGRAM_ENOMEM;
    cs->nh++;
    return 0;
}

/* Examines every line it can with the text at hand. */
static int scan_lines(chunk_stream_t *cs)
{
    if (cs->lines_seen == cs->end && !cs->final) return 0; /* nothing new since */
    cs->lines_seen = cs->end;
    while (!cs->lines_done) {
        if (cs->line_skip) {
            const char *nl = memchr(cs->buf + (cs->line_search - cs->base), '\n',
                                    cs->end - cs->line_search);
            if (!nl) {
                cs->line_search = cs->end;
                if (cs->final) cs->lines_done = 1;
                return 0;
            }
            cs->line = (size_t)(nl - cs->buf) + cs->base + 1;
            cs->line_skip = 0;
            continue;
        }
        if (cs->line >= cs->end) {
            if (cs->final) cs->lines_done = 1;
            return 0;
        }
        size_t lim = cs->end - cs->line < CHUNK_LINE_MAX ? cs->end : cs->line + CHUNK_LINE_MAX;
        const char *nl = memchr(cs->buf + (cs->line - cs->base), '\n', lim - cs->line);
        if (!nl && !cs->final && lim == cs->end && cs->end - cs->line < CHUNK_LINE_MAX)
            return 0; /* the line goes on beyond the text at hand */
        size_t eol = nl ? (size_t)(nl - cs->buf) + cs->base : lim;
        int rc = examine_line(cs, cs->line, eol);
        if (rc) return rc;
        if (nl) {
            cs->line = eol + 1;
        } else if (eol < cs->end || !cs->final) {
            cs->line_skip = 1; /* a long line: find its end without keeping it */
            cs->line_search = eol;
        } else {
            cs->lines_done = 1;
        }
    }
    return 0;
}

/* ---- 2: words ------------------------------------------------------------- */

static int add_word(chunk_stream_t *cs, size_t a, size_t b, uint64_t cpa, uint64_t cpb, uint8_t brk)
{
    if (cs->wh + cs->nw == cs->capw && cs->wh > 0) {
        memmove(cs->words, cs->words + cs->wh, cs->nw * sizeof *cs->words);
        cs->wh = 0;
    }
    if (eg_grow((void **)&cs->words, &cs->capw, cs->wh + cs->nw, sizeof *cs->words))
        return ENGRAM_ENOMEM;
    word_t *w = &cs->words[cs->wh + cs->nw++];
    w->start = a;
    w->end = b;
    w->cp_start = cpa;
    w->cp_end = cpb;
    w->heading = cs->cur_head;
    w->brk = brk;
    cs->n_words++;
    return 0;
}

/* Emits the run's current piece [piece, e). */
static int emit_piece(chunk_stream_t *cs, size_t e)
{
    uint64_t cp = cs->piece_cp;
    for (size_t p = cs->piece; p < e; p++) cp += (at(cs, p) & 0xC0) != 0x80;
    int rc = add_word(cs, cs->piece, e, cs->piece_cp, cp, cs->run_brk);
    cs->run_brk = BRK_WORD; /* only the first piece carries the boundary */
    cs->piece = e;
    cs->piece_cp = cp;
    return rc;
}

/* Where a piece longer than the word limit is cut: CHUNK_WORD_MAX_BYTES
 * from its start, moved back to a code point start (never before start + 1). */
static size_t piece_cut(const chunk_stream_t *cs)
{
    size_t a = cs->piece, e = a + CHUNK_WORD_MAX_BYTES;
    for (int back = 0; back < 3 && e > a + 1 && (at(cs, e) & 0xC0) == 0x80; back++) e--;
    return e;
}

/* Scans until word number `need` exists, the text at hand runs out, or the
 * text ends (scan_done). */
static int scan_words(chunk_stream_t *cs, uint64_t need)
{
    int rc;
    if (cs->md && (rc = scan_lines(cs))) return rc;
    /* A run may start only where every heading line at or before it is
     * known. */
    size_t limit = !cs->md || cs->lines_done ? cs->end : cs->line_skip ? cs->line_search : cs->line;
    while (cs->n_words <= need && !cs->scan_done) {
        if (!cs->in_run) {
            while (cs->pos < cs->end && is_space(at(cs, cs->pos))) {
                if (at(cs, cs->pos) == '\n' && cs->gap_nl < 2) cs->gap_nl++;
                cs->pos++;
                cs->pos_cp++;
            }
            if (cs->pos >= cs->end) {
                if (cs->final) cs->scan_done = 1;
                return 0;
            }
            if (cs->pos >= limit) return 0;
            size_t a = cs->pos;
            uint8_t brk = BRK_WORD;
            if (cs->n_words > 0 && cs->gap_nl >= 2) brk = BRK_PARAGRAPH;
            else if (cs->n_words > 0 && cs->prev_sentence) brk = BRK_SENTENCE;
            while (cs->applied < cs->h0 + (int64_t)cs->nh &&
                   cs->heads[cs->applied - cs->h0].line <= a) {
                if (cs->heads[cs->applied - cs->h0].line == a && cs->n_words > 0) brk = BRK_HEADING;
                cs->cur_head = cs->applied++;
            }
            cs->in_run = 1;
            cs->piece = a;
            cs->piece_cp = cs->pos_cp;
            cs->run_len = 0;
            cs->run_brk = brk;
            cs->sent = cs->sent_b1 = cs->sent_b2 = 0;
            cs->gap_nl = 0;
        }
        /* Inside a run: byte by byte, so a run of any length costs one
         * piece of memory at a time. */
        while (cs->pos < cs->end && !is_space(at(cs, cs->pos))) {
            unsigned char c = at(cs, cs->pos);
            int before = cs->sent;
            cs->run_len++;
            /* Whether the run ends a sentence if it ends here: its last
             * character other than closing quotes and brackets is . ! or ?
             * (the closers " ' ) ] * _ and the UTF-8 ” ’ » are looked
             * through). */
            if (c == '"' || c == '\'' || c == ')' || c == ']' || c == '*' || c == '_')
                ;
            else if ((c == 0x9D || c == 0x99) && cs->run_len >= 3 && cs->b1 == 0x80 && cs->b2 == 0xE2)
                cs->sent = cs->sent_b2;
            else if (c == 0xBB && cs->run_len >= 2 && cs->b1 == 0xC2)
                cs->sent = cs->sent_b1;
            else
                cs->sent = c == '.' || c == '!' || c == '?';
            cs->sent_b2 = cs->sent_b1;
            cs->sent_b1 = before;
            cs->b2 = cs->b1;
            cs->b1 = c;
            cs->pos++;
            cs->pos_cp += (c & 0xC0) != 0x80;
            if (cs->pos - cs->piece > CHUNK_WORD_MAX_BYTES) {
                if ((rc = emit_piece(cs, piece_cut(cs)))) return rc;
                if (cs->n_words > need) return 0;
            }
        }
        if (cs->pos >= cs->end && !cs->final) return 0; /* the run may go on */
        if ((rc = emit_piece(cs, cs->pos))) return rc;
        cs->prev_sentence = cs->sent;
        cs->in_run = 0;
    }
    return 0;
}

/* ---- 3: windows ----------------------------------------------------------- */

static inline const word_t *W(const chunk_stream_t *cs, uint64_t i)
{
    return &cs->words[cs->wh + (size_t)(i - cs->w0)];
}

/* Forgets the words before s and the headings no word still needs. */
static void drop_old(chunk_stream_t *cs)
{
    if (cs->s > cs->w0) {
        uint64_t k = cs->s - cs->w0 < cs->nw ? cs->s - cs->w0 : cs->nw;
        cs->wh += (size_t)k;
        cs->nw -= (size_t)k;
        cs->w0 += k;
        if (cs->nw == 0) cs->wh = 0;
    }
    int64_t keep = cs->nw ? W(cs, cs->w0)->heading : cs->cur_head;
    if (keep < 0) return;
    size_t k = 0;
    while (k < cs->nh && cs->h0 + (int64_t)k < keep) eg_free(cs->heads[k++].text);
    if (k) {
        memmove(cs->heads, cs->heads + k, (cs->nh - k) * sizeof *cs->heads);
        cs->nh -= k;
        cs->h0 += (int64_t)k;
    }
}

int chunk_stream_new(uint32_t chunk_size, uint32_t overlap, int is_markdown, chunk_stream_t **out)
{
    if (!out) return ENGRAM_EINVAL;
    *out = NULL;
    if (chunk_size == 0 || overlap >= chunk_size) return ENGRAM_EINVAL;
    chunk_stream_t *cs = eg_calloc(1, sizeof *cs);
    if (!cs) return ENGRAM_ENOMEM;
    cs->size = chunk_size;
    cs->overlap = overlap;
    cs->md = is_markdown != 0;
    cs->cur_head = -1;
    cs->buf = "";
    *out = cs;
    return 0;
}

void chunk_stream_free(chunk_stream_t *cs)
{
    if (!cs) return;
    for (size_t i = 0; i < cs->nh; i++) eg_free(cs->heads[i].text);
    eg_free(cs->heads);
    eg_free(cs->words);
    eg_free(cs);
}

void chunk_stream_text(chunk_stream_t *cs, const char *buf, size_t base, size_t len, int final)
{
    cs->buf = buf ? buf : "";
    cs->base = base;
    cs->end = base + len;
    cs->final = final != 0;
}

size_t chunk_stream_keep(const chunk_stream_t *cs)
{
    size_t k = cs->in_run ? cs->piece : cs->pos;
    if (cs->nw && W(cs, cs->w0)->start < k) k = W(cs, cs->w0)->start;
    if (cs->md && !cs->lines_done) {
        size_t l = cs->line_skip ? cs->line_search : cs->line;
        if (l < k) k = l;
    }
    return k;
}

int chunk_stream_next(chunk_stream_t *cs, chunk_span_t *out, uint64_t cp[2])
{
    if (cs->done) return 0;
    drop_old(cs);
    uint64_t s = cs->s, e = s + cs->size;
    int rc = scan_words(cs, e);
    if (rc) return rc;
    if (cs->n_words <= e && !cs->scan_done) return 0; /* needs more text */
    uint64_t n = cs->n_words;
    if (s >= n) { /* no words at all */
        cs->done = 1;
        return 0;
    }
    uint64_t c = e;
    int heading_cut = 0;
    if (e >= n) {
        c = n;
    } else {
        uint64_t near = cs->size - cs->size / 4; /* cuts for sentences/paragraphs from here */
        uint64_t half = cs->size - cs->size / 2; /* cuts for headings from here */
        uint64_t lo_head = EG_MAX(s + half, cs->prev_c + 1);
        uint64_t lo = EG_MAX(s + near, cs->prev_c + 1);
        int best = BRK_WORD;
        /* Latest boundary of the best quality; boundary x sits before word
         * x, so a cut at x keeps words [s, x). */
        for (uint64_t x = e; x >= lo_head && x > s; x--) {
            int q = W(cs, x)->brk;
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
    const word_t *first = W(cs, s), *last = W(cs, c - 1);
    out->start = first->start;
    out->end = last->end;
    cp[0] = first->cp_start;
    cp[1] = last->cp_end;
    out->token_count = (uint32_t)(c - s);
    out->heading = NULL;
    if (first->heading >= 0) {
        const heading_t *hd = &cs->heads[first->heading - cs->h0];
        if (hd->len) out->heading = hd->text;
    }
    if (c >= n) {
        cs->done = 1;
        return 1;
    }
    cs->prev_c = c;
    if (heading_cut) cs->s = c;
    else if (c > s + cs->overlap) cs->s = c - cs->overlap;
    else cs->s = s + 1; /* short chunk (cut right after the previous one): keep moving */
    return 1;
}

int chunk_text(const char *text, size_t len, uint32_t chunk_size, uint32_t overlap,
               int is_markdown, chunk_span_t **out, size_t *n_out)
{
    if (out) *out = NULL;
    if (n_out) *n_out = 0;
    if (!out || !n_out || (!text && len) || chunk_size == 0 || overlap >= chunk_size)
        return ENGRAM_EINVAL;
    if (len == 0) return 0;
    chunk_stream_t *cs;
    int rc = chunk_stream_new(chunk_size, overlap, is_markdown, &cs);
    if (rc) return rc;
    chunk_stream_text(cs, text, 0, len, 1);
    chunk_span_t *spans = NULL, sp;
    size_t n = 0, cap = 0;
    uint64_t cp[2];
    while ((rc = chunk_stream_next(cs, &sp, cp)) == 1) {
        if ((rc = eg_grow((void **)&spans, &cap, n, sizeof *spans))) break;
        if (sp.heading && !(sp.heading = eg_strdup(sp.heading))) { rc = ENGRAM_ENOMEM; break; }
        spans[n++] = sp;
    }
    chunk_stream_free(cs);
    if (rc) {
        chunk_spans_free(spans, n);
        return rc;
    }
    *out = spans;
    *n_out = n;
    return 0;
}

void chunk_spans_free(chunk_span_t *spans, size_t n)
{
    if (!spans) return;
    for (size_t i = 0; i < n; i++) eg_free(spans[i].heading);
    eg_free(spans);
}
