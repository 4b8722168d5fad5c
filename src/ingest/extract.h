/*
 * extract.h - turns a document's bytes into UTF-8 text plus structure.
 *
 * One entry point, extract_document(), takes the bytes and the type that
 * detect_type() found and produces:
 *
 *   - text: valid UTF-8 (every invalid byte sequence replaced by U+FFFD),
 *     paragraphs separated by a blank line ("\n\n"), lines by "\n", table
 *     cells by " | " with one row per line;
 *   - spans: consecutive byte ranges of the text, in order, that together
 *     cover it exactly (spans[0].start == 0, spans[i].end ==
 *     spans[i+1].start, spans[n-1].end == len; none when len == 0). A span
 *     is a page (PDF: page = 1, 2, ...) or a section (Markdown, HTML, DOCX:
 *     a span starts where a heading line starts and carries that heading's
 *     text). Text before the first heading is a span with heading NULL.
 *     So the chunker gives a chunk the page or heading of the span holding
 *     its first byte, and a span start is a good place to cut;
 *   - title: the document's own title when it has one (PDF Info /Title,
 *     HTML <title>, DOCX docProps/core.xml dc:title, Markdown's first level-1
 *     heading), else NULL.
 *
 * Formats and libraries (see docs/EXTRACTION.md):
 *   DOC_TEXT      the bytes, invalid UTF-8 replaced, a leading BOM dropped;
 *   DOC_MARKDOWN  the same, with a span per ATX heading ("# x" .. "###### x",
 *                 not inside ``` or ~~~ fences: exactly the headings
 *                 chunk.h recognises, with the same heading text);
 *   DOC_HTML      a lenient hand-written tokenizer (extract_html.c): visible
 *                 text only, entities decoded, h1-h6 as headings;
 *   DOC_DOCX      a bounded zip reader (zip.h) + expat: paragraphs, Heading
 *                 and Title styles, tables;
 *   DOC_PDF       MuPDF's structured text, page by page (unless built with
 *                 PDF=0); pages without text go to OCR when built in;
 *   DOC_PNG, DOC_JPEG, DOC_TIFF
 *                 Tesseract OCR (only when built with OCR=1).
 * Anything else is ENGRAM_EUNSUPPORTED.
 *
 * Limits (extract_limits_t) bound every resource an input can make us
 * spend; exceeding one is a failure with a message, never a truncation the
 * user does not hear about.
 *
 * Errors: 0 on success. On failure a negative status and, when err is not
 * NULL, a NUL-terminated message a user can act on ("the PDF is encrypted
 * (password protected)", "OCR is not available in this build"):
 *   ENGRAM_EUNSUPPORTED  the type cannot be extracted by this build;
 *   ENGRAM_EINVAL        the file is malformed, truncated or encrypted;
 *   ENGRAM_ETOOBIG       a limit was exceeded (zip bomb, too many entries,
 *                        nesting too deep, too much text);
 *   ENGRAM_ENOMEM        out of memory;
 *   ENGRAM_ENOTFOUND     the file holds no text at all (an image-only PDF
 *                        without OCR, an image OCR finds nothing in).
 * *out is then zeroed (nothing to free, though freeing it is harmless).
 *
 * Thread-safety: extract_document is reentrant; it keeps no global state
 * (MuPDF gets a fresh context per call, Tesseract a fresh engine per call),
 * so worker threads may extract different documents at the same time.
 *
 * Naming note: MuPDF's static library bundles Artifex's "extract" library,
 * whose public symbols also start with extract_ (extract_begin,
 * extract_span_free, ...). Our public functions are only the four below and
 * every helper is static, so the names never meet at link time; keep it so.
 */
#ifndef ENGRAM_EXTRACT_H
#define ENGRAM_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "ingest/detect.h"

typedef struct extract_span {
    size_t start, end; /* byte range of the text */
    int page;          /* 1-based PDF page; 0 = none */
    char *heading;     /* section heading; owned by the result, may be NULL */
} extract_span_t;

typedef struct extract_result {
    char *text;            /* NUL-terminated UTF-8, owned; "" when empty */
    size_t len;            /* bytes of text, without the NUL */
    extract_span_t *spans; /* n_spans spans, owned, NULL when len == 0 */
    size_t n_spans;
    char *title;           /* owned, may be NULL */
} extract_result_t;

typedef struct extract_limits {
    size_t max_text;        /* bytes of extracted text (64 MiB) */
    size_t max_zip_entries; /* entries in a zip's central directory (10,000) */
    size_t max_zip_total;   /* uncompressed bytes of the entries read (256 MiB) */
    uint32_t max_zip_ratio; /* uncompressed/compressed per entry (200) */
    size_t max_xml_bytes;   /* one XML part, uncompressed (128 MiB) */
    uint32_t max_xml_depth; /* element nesting in XML and HTML (256) */
    uint32_t max_pages;     /* PDF pages (10,000) */
    uint32_t max_ocr_pages; /* pages of one PDF sent to OCR (200) */
    size_t max_memory;      /* bytes MuPDF may hold for one PDF (192 MiB) */
} extract_limits_t;

/* Fills *lim with the defaults named above. */
void extract_limits_default(extract_limits_t *lim);

/* Extracts bytes[0..len) of the given type into *out (see the top of this
 * file for the result, errors and messages). lim NULL means the defaults;
 * a zero field in lim also means that field's default. bytes may be NULL
 * only when len is 0. On success free *out with extract_result_free. */
int extract_document(doc_type_t type, const void *bytes, size_t len,
                     const extract_limits_t *lim, extract_result_t *out,
                     char *err, size_t errsz);

/* Frees what *r owns and zeroes it. NULL and a zeroed result are fine. */
void extract_result_free(extract_result_t *r);

/* 1 if this build can extract the type (PDF unless built with PDF=0, images
 * only with OCR=1), else 0. The upload route answers 415 for the others. */
int extract_supported(doc_type_t type);

#endif
