/*
 * extract.c - the extraction entry point, the text builder shared by the
 * extractors (extract_internal.h), and the two text formats.
 *
 * extract_document() checks its arguments, fills in the limits and hands
 * the bytes to the extractor of the type: plain text and Markdown here,
 * HTML in extract_html.c, DOCX in extract_docx.c, PDF in extract_pdf.c,
 * images in extract_ocr.c. Whatever the extractor, the result goes through
 * the builder, so the invariants of extract.h (valid UTF-8, spans covering
 * the text exactly) are enforced in one place.
 *
 * Markdown keeps its text byte for byte (after UTF-8 repair) and only adds
 * spans; its heading rules copy chunk.c's so a chunk's heading and its
 * span's heading never disagree.
 */
#include "ingest/extract.h"

#include <stdio.h>
#include <string.h>

#include "ingest/extract_internal.h"
#include "util/common.h"
#include "util/utf8.h"

enum {
    DEF_MAX_TEXT = 64u << 20,
    DEF_ZIP_ENTRIES = 10000,
    DEF_ZIP_TOTAL = 256u << 20,
    DEF_ZIP_RATIO = 200,
    DEF_XML_BYTES = 128u << 20,
    DEF_XML_DEPTH = 256,
    DEF_PAGES = 10000,
    DEF_OCR_PAGES = 200,
};
#define DEF_MEMORY ((size_t)192 << 20)

/* ---- messages ----------------------------------------------------------- */

void extract_err(char *err, size_t errsz, const char *fmt, ...)
{
    if (!err || errsz == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* ---- builder ------------------------------------------------------------ */

static inline int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void xb_init(xb_t *b, size_t max_text)
{
    memset(b, 0, sizeof *b);
    b->max_text = max_text ? max_text : DEF_MAX_TEXT;
    b->sec_span = -1;
}

void xb_free(xb_t *b)
{
    buf_free(&b->text);
    for (size_t i = 0; i < b->n_spans; i++) eg_free(b->spans[i].heading);
    eg_free(b->spans);
    b->spans = NULL;
    b->n_spans = b->cap_spans = 0;
}

static int xb_push_span(xb_t *b, size_t start, int page)
{
    if (b->n_spans == b->cap_spans) {
        size_t ncap = b->cap_spans ? b->cap_spans * 2 : 16;
        extract_span_t *p = eg_realloc(b->spans, ncap * sizeof *p);
        if (!p) return b->err = ENGRAM_ENOMEM;
        b->spans = p;
        b->cap_spans = ncap;
    }
    if (b->n_spans > 0) b->spans[b->n_spans - 1].end = start;
    extract_span_t *s = &b->spans[b->n_spans++];
    s->start = start;
    s->end = start;
    s->page = page;
    s->heading = NULL;
    return 0;
}

/* Writes the pending separator and opens the pending span, just before new
 * text is appended. */
static void xb_flush(xb_t *b)
{
    if (b->text.len > 0 && b->pending) {
        static const char *const sep[] = {"", " ", "\n", "\n\n"};
        /* a space after text that already ends in whitespace adds nothing */
        if (b->pending > 1 || !is_ws((unsigned char)b->text.data[b->text.len - 1]))
            buf_puts(&b->text, sep[b->pending]);
    }
    b->pending = 0;
    if (b->sec_pending) {
        b->sec_pending = 0;
        b->page = b->sec_page;
        if (xb_push_span(b, b->text.len, b->page) == 0) b->sec_span = (long)b->n_spans - 1;
    } else if (b->n_spans == 0) {
        xb_push_span(b, 0, b->page);
    }
}

void xb_text(xb_t *b, const char *s, size_t n)
{
    if (b->err || n == 0) return;
    xb_flush(b);
    if (b->err) return;
    if (utf8_valid(s, n)) buf_append(&b->text, s, n);
    else utf8_sanitize(s, n, &b->text);
    if (b->text.err) b->err = b->text.err;
    else if (b->text.len > b->max_text) b->err = ENGRAM_ETOOBIG;
}

static void xb_want(xb_t *b, int level)
{
    if (level > b->pending) b->pending = level;
}
void xb_space(xb_t *b) { xb_want(b, 1); }
void xb_line(xb_t *b) { xb_want(b, 2); }
void xb_para(xb_t *b) { xb_want(b, 3); }

void xb_section(xb_t *b, int page)
{
    b->sec_pending = 1;
    b->sec_page = page;
    b->sec_span = -1;
}

char *xb_clean_string(const char *s, size_t n, int *rc)
{
    *rc = 0;
    buf_t tmp = BUF_INIT, out = BUF_INIT;
    utf8_sanitize(s, n, &tmp);
    int space = 0;
    for (size_t i = 0; i < tmp.len; i++) {
        unsigned char c = (unsigned char)tmp.data[i];
        if (is_ws(c)) { space = out.len > 0; continue; }
        if (space) buf_putc(&out, ' ');
        space = 0;
        buf_putc(&out, (char)c);
    }
    int e = tmp.err ? tmp.err : out.err;
    buf_free(&tmp);
    if (e || out.len == 0) {
        *rc = e;
        buf_free(&out);
        return NULL;
    }
    return buf_detach(&out, NULL);
}

void xb_heading(xb_t *b, const char *s, size_t n)
{
    if (b->err || b->sec_span < 0) return;
    int rc;
    char *h = xb_clean_string(s, n, &rc);
    if (rc) { b->err = rc; return; }
    if (!h) return;
    extract_span_t *sp = &b->spans[b->sec_span];
    eg_free(sp->heading);
    sp->heading = h;
}

int xb_finish(xb_t *b, extract_result_t *out)
{
    if (!b->err && b->text.len == 0) {
        buf_putc(&b->text, '\0'); /* an allocated "" */
        b->text.len = 0;
        if (b->text.err) b->err = b->text.err;
        for (size_t i = 0; i < b->n_spans; i++) eg_free(b->spans[i].heading);
        b->n_spans = 0;
    }
    if (b->err) {
        int rc = b->err;
        xb_free(b);
        return rc;
    }
    if (b->n_spans > 0) b->spans[b->n_spans - 1].end = b->text.len;
    out->text = buf_detach(&b->text, &out->len);
    out->spans = b->n_spans ? b->spans : NULL;
    out->n_spans = b->n_spans;
    if (!b->n_spans) eg_free(b->spans);
    b->spans = NULL;
    b->n_spans = b->cap_spans = 0;
    return 0;
}

/* ---- plain text and Markdown ------------------------------------------- */

static int md_fence(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 3 && p[i] == ' ') i++;
    if (n - i >= 3 && (p[i] == '`' || p[i] == '~') && p[i + 1] == p[i] && p[i + 2] == p[i])
        return p[i];
    return 0;
}

/* If the line t[0..n) is an ATX heading, sets [*a, *b) to its text (as
 * chunk.c trims it) and returns its level; else 0. */
static int md_heading(const char *t, size_t n, size_t *a, size_t *b)
{
    size_t h = 0;
    while (h < n && h < 7 && t[h] == '#') h++;
    if (!(h >= 1 && h <= 6 && h < n && (t[h] == ' ' || t[h] == '\t'))) return 0;
    size_t x = h, y = n;
    while (x < y && is_ws((unsigned char)t[x])) x++;
    while (y > x && is_ws((unsigned char)t[y - 1])) y--;
    size_t c = y;
    while (c > x && t[c - 1] == '#') c--;
    if (c < y && (c == x || t[c - 1] == ' ' || t[c - 1] == '\t')) {
        y = c;
        while (y > x && is_ws((unsigned char)t[y - 1])) y--;
    }
    *a = x;
    *b = y;
    return (int)h;
}

static int extract_plain(const char *s, size_t n, int markdown, const extract_limits_t *lim,
                         extract_result_t *out, char *err, size_t errsz)
{
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) { s += 3; n -= 3; }
    /* The text is the input (repaired); only the spans are built here. */
    xb_t b;
    xb_init(&b, lim->max_text);
    buf_t text = BUF_INIT;
    if (utf8_valid(s, n)) buf_append(&text, s, n);
    else utf8_sanitize(s, n, &text);
    if (text.err) { b.err = text.err; goto fail; }
    if (text.len > b.max_text) { b.err = ENGRAM_ETOOBIG; goto fail; }
    b.text = text;
    text = (buf_t)BUF_INIT;
    if (b.text.len == 0) return xb_finish(&b, out);
    if (xb_push_span(&b, 0, 0)) goto fail;
    if (markdown) {
        const char *t = b.text.data;
        size_t len = b.text.len, pos = 0;
        int fence = 0;
        while (pos < len) {
            const char *nl = memchr(t + pos, '\n', len - pos);
            size_t eol = nl ? (size_t)(nl - t) : len;
            int f = md_fence(t + pos, eol - pos);
            size_t ha, hb;
            int level;
            if (fence) {
                if (f == fence) fence = 0;
            } else if (f) {
                fence = f;
            } else if ((level = md_heading(t + pos, eol - pos, &ha, &hb)) > 0) {
                extract_span_t *last = &b.spans[b.n_spans - 1];
                if (last->start != pos || last->heading) {
                    if (xb_push_span(&b, pos, 0)) goto fail;
                }
                /* exactly chunk.c's heading text: trimmed, inner spaces kept */
                char *h = eg_strndup(t + pos + ha, hb - ha);
                if (!h) { b.err = ENGRAM_ENOMEM; goto fail; }
                b.spans[b.n_spans - 1].heading = h;
                if (level == 1 && !out->title && h[0]) {
                    out->title = eg_strdup(h);
                    if (!out->title) { b.err = ENGRAM_ENOMEM; goto fail; }
                }
            }
            pos = eol + 1;
        }
    }
    return xb_finish(&b, out);
fail:
    buf_free(&text);
    eg_free(out->title);
    out->title = NULL;
    extract_err(err, errsz, b.err == ENGRAM_ETOOBIG ? "the text is larger than the limit"
                                                     : "out of memory");
    return xb_finish(&b, out);
}

/* ---- entry points ------------------------------------------------------- */

void extract_limits_default(extract_limits_t *lim)
{
    lim->max_text = DEF_MAX_TEXT;
    lim->max_zip_entries = DEF_ZIP_ENTRIES;
    lim->max_zip_total = DEF_ZIP_TOTAL;
    lim->max_zip_ratio = DEF_ZIP_RATIO;
    lim->max_xml_bytes = DEF_XML_BYTES;
    lim->max_xml_depth = DEF_XML_DEPTH;
    lim->max_pages = DEF_PAGES;
    lim->max_ocr_pages = DEF_OCR_PAGES;
    lim->max_memory = DEF_MEMORY;
}

int extract_supported(doc_type_t type)
{
    switch (type) {
    case DOC_TEXT: case DOC_MARKDOWN: case DOC_HTML: case DOC_DOCX:
        return 1;
    case DOC_PDF:
#ifdef ENGRAM_NO_PDF
        return 0;
#else
        return 1;
#endif
    case DOC_PNG: case DOC_JPEG: case DOC_TIFF:
#ifdef ENGRAM_WITH_OCR
        return 1;
#else
        return 0;
#endif
    default:
        return 0;
    }
}

void extract_result_free(extract_result_t *r)
{
    if (!r) return;
    eg_free(r->text);
    for (size_t i = 0; i < r->n_spans; i++) eg_free(r->spans[i].heading);
    eg_free(r->spans);
    eg_free(r->title);
    memset(r, 0, sizeof *r);
}

int extract_document(doc_type_t type, const void *bytes, size_t len,
                     const extract_limits_t *lim, extract_result_t *out,
                     char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    if (!out || (!bytes && len)) {
        extract_err(err, errsz, "internal error: bad arguments");
        return ENGRAM_EINVAL;
    }
    memset(out, 0, sizeof *out);
    extract_limits_t L;
    extract_limits_default(&L);
    if (lim) {
        if (lim->max_text) L.max_text = lim->max_text;
        if (lim->max_zip_entries) L.max_zip_entries = lim->max_zip_entries;
        if (lim->max_zip_total) L.max_zip_total = lim->max_zip_total;
        if (lim->max_zip_ratio) L.max_zip_ratio = lim->max_zip_ratio;
        if (lim->max_xml_bytes) L.max_xml_bytes = lim->max_xml_bytes;
        if (lim->max_xml_depth) L.max_xml_depth = lim->max_xml_depth;
        if (lim->max_pages) L.max_pages = lim->max_pages;
        if (lim->max_ocr_pages) L.max_ocr_pages = lim->max_ocr_pages;
        if (lim->max_memory) L.max_memory = lim->max_memory;
    }
    const char *s = bytes ? bytes : "";
    int rc;
    switch (type) {
    case DOC_TEXT: rc = extract_plain(s, len, 0, &L, out, err, errsz); break;
    case DOC_MARKDOWN: rc = extract_plain(s, len, 1, &L, out, err, errsz); break;
    case DOC_HTML: rc = extract_html(s, len, &L, out, err, errsz); break;
    case DOC_DOCX: rc = extract_docx(s, len, &L, out, err, errsz); break;
    case DOC_PDF: rc = extract_pdf(s, len, &L, out, err, errsz); break;
    case DOC_PNG: case DOC_JPEG: case DOC_TIFF:
        rc = extract_ocr_image(s, len, &L, out, err, errsz);
        break;
    case DOC_GIF:
        extract_err(err, errsz, "GIF images are not supported; convert the image to PNG");
        return ENGRAM_EUNSUPPORTED;
    case DOC_ZIP:
        extract_err(err, errsz, "zip archives are not supported (only DOCX documents)");
        return ENGRAM_EUNSUPPORTED;
    case DOC_GZIP:
        extract_err(err, errsz, "compressed files are not supported; upload the file itself");
        return ENGRAM_EUNSUPPORTED;
    default:
        extract_err(err, errsz, "the file is not a supported document type");
        return ENGRAM_EUNSUPPORTED;
    }
    if (rc) {
        extract_result_free(out);
        if (err && errsz && !err[0]) extract_err(err, errsz, "extraction failed: %s",
                                                 engram_strerror(rc));
        return rc;
    }
    if (!out->text) { /* every extractor returns text; be safe */
        out->text = eg_strdup("");
        if (!out->text) { extract_result_free(out); return ENGRAM_ENOMEM; }
    }
    return 0;
}
