/*
 * source.c - a document's chunks, one at a time (source.h).
 *
 * Plain text and Markdown: slices of ZIN bytes of the stored zstd frame are
 * copied out of LMDB (one short read transaction each, so no transaction
 * outlives a slice), decompressed ZOUT bytes at a time, repaired and
 * appended to a window the chunk stream reads. Repair is exact across
 * slices: the last bytes of a slice that may begin an unfinished UTF-8
 * sequence (a lead byte whose sequence is longer than what follows it) are
 * held back and repaired with the next slice; no decision about the bytes
 * before a lead byte depends on what comes after it. The window keeps only
 * what the chunk stream still needs (chunk_stream_keep), so it holds about
 * one chunk plus one decompressed slice.
 *
 * Other formats: the stored file is loaded whole (catalog_job_load),
 * extracted (extract.h), and freed; the extracted text is chunked one span
 * at a time with a fresh chunk stream each, code point offsets counted
 * across spans.
 */
#include "ingest/source.h"

#include <stdio.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "ingest/chunk.h"
#include "ingest/extract.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/utf8.h"

#define ZIN (256u << 10)  /* compressed bytes read per transaction */
#define ZOUT (256u << 10) /* text decompressed per step */

struct doc_source {
    store_t *st;
    ingest_job_t job;
    coll_config_t cfg;
    int extracted;
    chunk_stream_t *cs;
    uint64_t words;
    int in_word;

    /* Streamed text. */
    ZSTD_DCtx *dctx;
    unsigned char *zin;
    char *zout;
    size_t zin_pos, zin_len, zoff, zlen;
    int frame_done;
    char carry[4];  /* held-back start of an unfinished UTF-8 sequence */
    size_t carry_len;
    buf_t stage;    /* carry + one slice, repaired from here */
    buf_t win;      /* text bytes [win_base, win_base + win.len) */
    size_t win_base;
    int eof;

    /* Extracted text. */
    extract_result_t ex;
    size_t span;      /* span being chunked */
    size_t cp_byte;   /* code points before byte cp_byte of ex.text are cp_count */
    uint64_t cp_count;
    int span_open;
    const char *heading; /* of the span being chunked */
};

static void count_words(doc_source_t *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        if (!space && !s->in_word) s->words++;
        s->in_word = !space;
    }
}

/* How many of the last bytes of p[0..n) may begin a UTF-8 sequence that
 * continues beyond n: a lead byte among the last three whose sequence is
 * longer than what follows it. */
static size_t unfinished_tail(const char *p, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)p[n - k];
        if (c < 0x80) return 0;
        if (c >= 0xC0) {
            size_t want = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            return want > k ? k : 0;
        }
    }
    return 0;
}

/* Repairs carry + p[0..n) onto the window (final: nothing follows). */
static int append_text(doc_source_t *s, const char *p, size_t n, int final)
{
    buf_reset(&s->stage);
    buf_append(&s->stage, s->carry, s->carry_len);
    buf_append(&s->stage, p, n);
    if (s->stage.err) return s->stage.err;
    size_t len = s->stage.len, hold = final ? 0 : unfinished_tail(s->stage.data, len);
    size_t before = s->win.len;
    utf8_sanitize(s->stage.data, len - hold, &s->win);
    if (s->win.err) return s->win.err;
    memcpy(s->carry, s->stage.data + len - hold, hold);
    s->carry_len = hold;
    count_words(s, s->win.data + before, s->win.len - before);
    return 0;
}

/* Decompresses and appends the next piece of text (or reaches the end). */
static int fill(doc_source_t *s)
{
    for (;;) {
        if (s->zin_pos == s->zin_len && s->zoff < s->zlen) {
            size_t got;
            int rc = catalog_job_file_read(s->st, &s->job, s->zoff, s->zin, ZIN, &got);
            if (rc) return rc;
            if (got == 0) return ENGRAM_ECORRUPT; /* the file changed under us */
            s->zoff += got;
            s->zin_pos = 0;
            s->zin_len = got;
        }
        if (s->frame_done) {
            /* One frame only: anything after it is damage. */
            if (s->zin_pos < s->zin_len || s->zoff < s->zlen) return ENGRAM_ECORRUPT;
            s->eof = 1;
            return append_text(s, "", 0, 1);
        }
        ZSTD_inBuffer in = {s->zin, s->zin_len, s->zin_pos};
        ZSTD_outBuffer out = {s->zout, ZOUT, 0};
        size_t r = ZSTD_decompressStream(s->dctx, &out, &in);
        s->zin_pos = in.pos;
        if (ZSTD_isError(r))
            return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? ENGRAM_ENOMEM
                                                                         : ENGRAM_ECORRUPT;
        if (r == 0) s->frame_done = 1;
        if (out.pos) return append_text(s, s->zout, out.pos, 0);
        if (!s->frame_done && s->zin_pos == s->zin_len && s->zoff >= s->zlen)
            return ENGRAM_ECORRUPT; /* truncated */
    }
}

/* Drops the window's bytes the chunk stream no longer needs (only when
 * that is at least half of it, so the copying stays linear). */
static void compact(doc_source_t *s)
{
    size_t keep = chunk_stream_keep(s->cs);
    if (keep <= s->win_base) return;
    size_t drop = keep - s->win_base;
    if (drop > s->win.len) drop = s->win.len;
    if (drop < s->win.len / 2 && drop < ZOUT) return;
    memmove(s->win.data, s->win.data + drop, s->win.len - drop);
    s->win.len -= drop;
    s->win_base += drop;
}

static int next_streamed(doc_source_t *s, src_chunk_t *c)
{
    chunk_span_t sp;
    uint64_t cp[2];
    for (;;) {
        int rc = chunk_stream_next(s->cs, &sp, cp);
        if (rc < 0) return rc;
        if (rc == 1) break;
        if (s->eof) return 0;
        compact(s);
        if ((rc = fill(s))) return rc;
        chunk_stream_text(s->cs, s->win.data, s->win_base, s->win.len, s->eof);
    }
    c->text = s->win.data + (sp.start - s->win_base);
    c->len = sp.end - sp.start;
    c->start = (uint32_t)cp[0];
    c->end = (uint32_t)cp[1];
    c->token_count = sp.token_count;
    c->heading = sp.heading;
    c->page = 0;
    return 1;
}

static int next_extracted(doc_source_t *s, src_chunk_t *c)
{
    chunk_span_t sp;
    uint64_t cp[2];
    for (;;) {
        if (s->span >= s->ex.n_spans) return 0;
        const extract_span_t *es = &s->ex.spans[s->span];
        if (!s->span_open) {
            chunk_stream_free(s->cs);
            s->cs = NULL;
            int rc = chunk_stream_new(s->cfg.chunk_size, s->cfg.chunk_overlap, 0, &s->cs);
            if (rc) return rc;
            chunk_stream_text(s->cs, s->ex.text + es->start, 0, es->end - es->start, 1);
            /* Code points before the span (spans ascend). */
            for (; s->cp_byte < es->start; s->cp_byte++)
                s->cp_count += ((unsigned char)s->ex.text[s->cp_byte] & 0xC0) != 0x80;
            s->span_open = 1;
        }
        int rc = chunk_stream_next(s->cs, &sp, cp);
        if (rc < 0) return rc;
        if (rc == 1) break;
        s->span_open = 0;
        s->span++;
    }
    const extract_span_t *es = &s->ex.spans[s->span];
    c->text = s->ex.text + es->start + sp.start;
    c->len = sp.end - sp.start;
    c->start = (uint32_t)(s->cp_count + cp[0]);
    c->end = (uint32_t)(s->cp_count + cp[1]);
    c->token_count = sp.token_count;
    c->heading = es->heading;
    c->page = es->page > 0 ? (uint32_t)es->page : 0;
    return 1;
}

int doc_source_next(doc_source_t *s, src_chunk_t *c)
{
    return s->extracted ? next_extracted(s, c) : next_streamed(s, c);
}

double doc_source_progress(const doc_source_t *s)
{
    if (s->extracted) return s->ex.n_spans ? (double)s->span / (double)s->ex.n_spans : 1.0;
    return s->zlen ? (double)s->zoff / (double)s->zlen : 1.0;
}

uint64_t doc_source_words(const doc_source_t *s)
{
    return s->words;
}

int doc_source_open(store_t *st, const ingest_job_t *job, doc_type_t type,
                    const coll_config_t *cfg, size_t zlen, doc_source_t **out, char *err,
                    size_t errsz)
{
    *out = NULL;
    if (err && errsz) err[0] = '\0';
    doc_source_t *s = eg_calloc(1, sizeof *s);
    if (!s) return ENGRAM_ENOMEM;
    s->st = st;
    s->job = *job;
    s->cfg = *cfg;
    s->extracted = type != DOC_TEXT && type != DOC_MARKDOWN;
    int rc = 0;
    if (s->extracted) {
        /* PDF, DOCX, HTML, images: text and its pages/sections from the
         * extractor, which needs the whole file. */
        char *bytes = NULL, ctype[128];
        size_t len = 0;
        coll_config_t unused;
        rc = catalog_job_load(st, job, &bytes, &len, ctype, &unused);
        if (rc) goto fail;
        extract_limits_t lim;
        extract_limits_default(&lim);
        rc = extract_document(type, bytes, len, &lim, &s->ex, err, errsz);
        eg_free(bytes); /* the original bytes are not needed past this point */
        if (rc) goto fail;
        count_words(s, s->ex.text, s->ex.len);
    } else {
        s->zlen = zlen;
        s->dctx = ZSTD_createDCtx();
        s->zin = eg_malloc(ZIN);
        s->zout = eg_malloc(ZOUT);
        if (!s->dctx || !s->zin || !s->zout) { rc = ENGRAM_ENOMEM; goto fail; }
        rc = chunk_stream_new(cfg->chunk_size, cfg->chunk_overlap, type == DOC_MARKDOWN, &s->cs);
        if (rc) goto fail;
    }
    *out = s;
    return 0;
fail:
    doc_source_free(s);
    return rc;
}

void doc_source_free(doc_source_t *s)
{
    if (!s) return;
    chunk_stream_free(s->cs);
    ZSTD_freeDCtx(s->dctx);
    eg_free(s->zin);
    eg_free(s->zout);
    buf_free(&s->stage);
    buf_free(&s->win);
    extract_result_free(&s->ex);
    eg_free(s);
}
