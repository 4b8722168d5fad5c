/*
 * extract_internal.h - what the extractors share: the text builder.
 *
 * A builder (xb_t) accumulates the extracted text and its spans. Extractors
 * push text and ask for separators; the builder decides what actually lands
 * in the text, so every format gets the same layout rules:
 *
 *   - xb_text() appends bytes, replacing invalid UTF-8 with U+FFFD;
 *   - xb_space(), xb_line(), xb_para() ask for a space, a line break or a
 *     blank line before the NEXT text. Requests merge to the strongest one,
 *     and none is ever written at the start or the end of the text, so the
 *     text never begins or ends with whitespace made by the builder;
 *   - xb_section(page) opens a new span at the next text (a PDF page, or a
 *     heading about to be written); xb_heading() then names that span once
 *     the heading's text is known. A section with no text after it leaves no
 *     span. Text before any section is in a span with no page or heading.
 *
 * Errors are sticky (xb.err): after the first failure (ENGRAM_ENOMEM, or
 * ENGRAM_ETOOBIG when the text would exceed max_text) further calls do
 * nothing, so an extractor checks once, at the end or in its loop.
 */
#ifndef ENGRAM_EXTRACT_INTERNAL_H
#define ENGRAM_EXTRACT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/extract.h"
#include "util/buf.h"

typedef struct xb {
    buf_t text;
    extract_span_t *spans;
    size_t n_spans, cap_spans;
    size_t max_text;
    int err;
    int pending;       /* 0 none, 1 space, 2 line, 3 paragraph */
    int sec_pending;   /* a section opens at the next text */
    int sec_page;
    long sec_span;     /* span opened by the latest section, -1 if none */
    int page;          /* page of the current span */
} xb_t;

void xb_init(xb_t *b, size_t max_text);
void xb_text(xb_t *b, const char *s, size_t n);
void xb_space(xb_t *b);
void xb_line(xb_t *b);
void xb_para(xb_t *b);
void xb_section(xb_t *b, int page);
/* Names the span opened by the latest xb_section (if it got any text) with
 * s[0..n), whitespace trimmed and collapsed; an empty name is ignored. */
void xb_heading(xb_t *b, const char *s, size_t n);
/* Moves the text and spans into *out (title left alone) and returns 0, or
 * returns b->err; the builder is freed either way. */
int xb_finish(xb_t *b, extract_result_t *out);
void xb_free(xb_t *b);

/* Copies s[0..n) with whitespace trimmed and runs collapsed to one space,
 * invalid UTF-8 replaced; NULL when empty or out of memory (*rc says). */
char *xb_clean_string(const char *s, size_t n, int *rc);

/* Formats a user-facing message into err[0..errsz) (both may be 0/NULL). */
void extract_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The extractors. Each fills *out (text, spans and title) or returns a
 * status with err set; on failure *out holds nothing. */
int extract_html(const char *s, size_t n, const extract_limits_t *lim, extract_result_t *out,
                 char *err, size_t errsz);
int extract_docx(const void *bytes, size_t n, const extract_limits_t *lim,
                 extract_result_t *out, char *err, size_t errsz);
int extract_pdf(const void *bytes, size_t n, const extract_limits_t *lim, extract_result_t *out,
                char *err, size_t errsz);
int extract_ocr_image(const void *bytes, size_t n, const extract_limits_t *lim,
                      extract_result_t *out, char *err, size_t errsz);

/* OCR of one decoded 8-bit grey or RGB(A) bitmap (stride bytes per row):
 * appends the recognised text to b. Only built with ENGRAM_WITH_OCR. */
int extract_ocr_pixels(const unsigned char *px, int w, int h, int bytes_per_px, int stride,
                       int ppi, xb_t *b, char *err, size_t errsz);

#endif
