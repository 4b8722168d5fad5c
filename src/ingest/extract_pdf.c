/*
 * extract_pdf.c - PDF text through MuPDF, page by page.
 *
 * MuPDF (Artifex, AGPL-3.0; Debian libmupdf-dev, static archives only) opens
 * the file from memory, repairs what it can (a broken cross-reference
 * table is rebuilt by scanning the objects), and gives each page as
 * "structured text": blocks of lines of characters, in the order MuPDF
 * found them in the content stream, which for ordinary one-column documents
 * is reading order. Each block becomes a paragraph, each line a line, and
 * each page a span with its page number.
 *
 * One fz_context per call, created with no locks: a context and everything
 * made from it stays on the calling thread, and separate contexts share
 * nothing, so ingest workers run in parallel. The context's allocator goes
 * through eg_malloc (so allocation-failure injection reaches MuPDF) and
 * counts bytes: a document that makes MuPDF hold more than max_memory
 * (huge images, decompression bombs) fails like an out-of-memory, which
 * MuPDF handles as an exception, cleanly. MuPDF's warnings and errors are
 * captured, not printed.
 *
 * fz_try rules followed here: nothing returns or jumps out of an fz_try
 * block; locals assigned inside fz_try and read in fz_always/fz_catch are
 * volatile.
 *
 * Pages without any text (scans) go to OCR when the build has it
 * (ENGRAM_WITH_OCR): the page is rendered grey at 300 dpi (less for very
 * large pages) and handed to extract_ocr_pixels.
 *
 * With ENGRAM_NO_PDF (make PDF=0) this file compiles to a stub.
 */
#include <stdio.h>
#include <string.h>

#include "ingest/extract_internal.h"
#include "util/common.h"
#include "util/utf8.h"

#ifdef ENGRAM_NO_PDF

int extract_pdf(const void *bytes, size_t n, const extract_limits_t *lim, extract_result_t *out,
                char *err, size_t errsz)
{
    (void)bytes; (void)n; (void)lim; (void)out;
    extract_err(err, errsz, "PDF support is not available in this build");
    return ENGRAM_EUNSUPPORTED;
}

#else

#include <mupdf/fitz.h>
#include <mupdf/pdf.h>

#define OCR_DPI 300
#define OCR_MAX_SIDE 7000 /* pixels; bigger pages are rendered at a lower dpi */

/* Allocation header: the size, padded to keep the payload 16-aligned. */
typedef union pdf_hdr { size_t size; max_align_t align; } pdf_hdr_t;

typedef struct pdf_alloc {
    size_t used, limit;
    int over;          /* the limit was hit at least once */
    int failed;        /* an allocation failed: MuPDF may have skipped content */
} pdf_alloc_t;

static void *pdf_malloc(void *user, size_t n)
{
    pdf_alloc_t *a = user;
    if (n > a->limit - a->used || n > (size_t)-1 - sizeof(pdf_hdr_t)) { a->over = 1; return NULL; }
    pdf_hdr_t *h = eg_malloc(sizeof *h + n);
    if (!h) { a->failed = 1; return NULL; }
    h->size = n;
    a->used += n;
    return h + 1;
}

static void pdf_free(void *user, void *p)
{
    if (!p) return;
    pdf_alloc_t *a = user;
    pdf_hdr_t *h = (pdf_hdr_t *)p - 1;
    a->used -= h->size;
    eg_free(h);
}

static void *pdf_realloc(void *user, void *p, size_t n)
{
    pdf_alloc_t *a = user;
    if (!p) return pdf_malloc(user, n);
    if (n == 0) { pdf_free(user, p); return NULL; }
    pdf_hdr_t *h = (pdf_hdr_t *)p - 1;
    size_t old = h->size;
    if (n > old && (n - old > a->limit - a->used || n > (size_t)-1 - sizeof *h)) {
        a->over = 1;
        return NULL;
    }
    pdf_hdr_t *nh = eg_realloc(h, sizeof *nh + n);
    if (!nh) { a->failed = 1; return NULL; }
    nh->size = n;
    a->used = a->used - old + n;
    return nh + 1;
}

/* MuPDF's messages: the last one is kept for diagnostics, nothing printed. */
typedef struct pdf_log { char last[160]; } pdf_log_t;

static void pdf_on_message(void *user, const char *message)
{
    pdf_log_t *l = user;
    snprintf(l->last, sizeof l->last, "%s", message);
}

static void append_line(xb_t *b, fz_stext_line *line, int *chars)
{
    char tmp[256];
    size_t n = 0;
    for (fz_stext_char *c = line->first_char; c; c = c->next) {
        int cp = c->c;
        if (cp < 0x20 && cp != '\t') continue; /* controls from odd fonts */
        if (n + 4 > sizeof tmp) { xb_text(b, tmp, n); n = 0; }
        int k = utf8_encode(cp >= 0 ? (uint32_t)cp : 0xFFFD, tmp + n);
        if (k == 0) k = utf8_encode(0xFFFD, tmp + n);
        n += (size_t)k;
        if (cp != ' ' && cp != '\t') (*chars)++;
    }
    xb_text(b, tmp, n);
}

#ifdef ENGRAM_WITH_OCR
/* Renders the page grey and runs OCR on it. Throws MuPDF errors. */
static void ocr_page(fz_context *ctx, fz_page *page, xb_t *b, char *err, size_t errsz, int *rc)
{
    fz_rect r = fz_bound_page(ctx, page);
    float w = r.x1 - r.x0, h = r.y1 - r.y0;
    if (!(w > 1 && h > 1)) return;
    float scale = OCR_DPI / 72.0f;
    float side = (w > h ? w : h) * scale;
    if (side > OCR_MAX_SIDE) scale *= OCR_MAX_SIDE / side;
    fz_pixmap *volatile pix = NULL;
    fz_var(pix);
    fz_try(ctx) {
        pix = fz_new_pixmap_from_page(ctx, page, fz_scale(scale, scale), fz_device_gray(ctx), 0);
        *rc = extract_ocr_pixels(fz_pixmap_samples(ctx, pix), fz_pixmap_width(ctx, pix),
                                 fz_pixmap_height(ctx, pix), fz_pixmap_components(ctx, pix),
                                 (int)fz_pixmap_stride(ctx, pix), (int)(scale * 72.0f + 0.5f), b,
                                 err, errsz);
    }
    fz_always(ctx) fz_drop_pixmap(ctx, pix);
    fz_catch(ctx) fz_rethrow(ctx);
}
#endif

/* Extracts one page into b; page_no is 1-based. Throws MuPDF errors.
 * *chars counts the non-space characters found. */
static void do_page(fz_context *ctx, fz_document *doc, int page_no, xb_t *b, int *chars,
                    int *ocr_left, char *err, size_t errsz, int *rc)
{
    fz_page *volatile page = NULL;
    fz_stext_page *volatile st = NULL;
    fz_var(page);
    fz_var(st);
    fz_try(ctx) {
        page = fz_load_page(ctx, doc, page_no - 1);
        fz_stext_options opts;
        memset(&opts, 0, sizeof opts);
        opts.flags = FZ_STEXT_DEHYPHENATE | FZ_STEXT_MEDIABOX_CLIP;
        st = fz_new_stext_page_from_page(ctx, page, &opts);
        xb_section(b, page_no);
        int before = *chars;
        for (fz_stext_block *blk = st->first_block; blk && !b->err; blk = blk->next) {
            if (blk->type != FZ_STEXT_BLOCK_TEXT) continue;
            for (fz_stext_line *ln = blk->u.t.first_line; ln; ln = ln->next) {
                append_line(b, ln, chars);
                xb_line(b);
            }
            xb_para(b);
        }
#ifdef ENGRAM_WITH_OCR
        if (*chars == before && *ocr_left > 0 && !b->err) {
            (*ocr_left)--;
            xb_section(b, page_no);
            int c0 = (int)b->text.len;
            ocr_page(ctx, page, b, err, errsz, rc);
            *chars += (int)b->text.len - c0;
            xb_para(b);
        }
#else
        (void)before; (void)ocr_left; (void)err; (void)errsz; (void)rc;
#endif
    }
    fz_always(ctx) {
        fz_drop_stext_page(ctx, st);
        fz_drop_page(ctx, page);
    }
    fz_catch(ctx) fz_rethrow(ctx);
}

int extract_pdf(const void *bytes, size_t n, const extract_limits_t *lim, extract_result_t *out,
                char *err, size_t errsz)
{
    pdf_alloc_t alloc = {0, lim->max_memory, 0, 0};
    fz_alloc_context actx = {&alloc, pdf_malloc, pdf_realloc, pdf_free};
    pdf_log_t log = {{0}};
    xb_t b;
    xb_init(&b, lim->max_text);
    int rc = 0;
    char title[512] = "";

    fz_context *ctx = fz_new_context(&actx, NULL, 16u << 20);
    if (!ctx) {
        xb_free(&b);
        if (alloc.over) {
            extract_err(err, errsz, "the PDF needs more than %zu KiB of memory to read",
                        lim->max_memory >> 10);
            return ENGRAM_ETOOBIG;
        }
        extract_err(err, errsz, "out of memory");
        return ENGRAM_ENOMEM;
    }
    fz_set_warning_callback(ctx, pdf_on_message, &log);
    fz_set_error_callback(ctx, pdf_on_message, &log);

    fz_stream *volatile stm = NULL;
    pdf_document *volatile pdoc = NULL;
    volatile int failed = 0, encrypted = 0, too_many = 0, pages = 0, chars = 0, bad_pages = 0;
    int ocr_left = (int)lim->max_ocr_pages;
    fz_var(stm);
    fz_var(pdoc);
    fz_try(ctx) {
        stm = fz_open_memory(ctx, bytes, n);
        pdoc = pdf_open_document_with_stream(ctx, stm);
        fz_document *doc = (fz_document *)pdoc;
        if (fz_needs_password(ctx, doc)) { /* the empty user password was tried */
            encrypted = 1;
        } else {
            pages = fz_count_pages(ctx, doc);
            if (pages < 0 || (uint32_t)pages > lim->max_pages) {
                too_many = 1;
            } else {
                if (fz_lookup_metadata(ctx, doc, FZ_META_INFO_TITLE, title, sizeof title) < 0)
                    title[0] = '\0';
                for (volatile int p = 1; p <= pages && !b.err && !rc; p++) {
                    int c = chars;
                    fz_try(ctx) do_page(ctx, doc, p, &b, &c, &ocr_left, err, errsz, &rc);
                    fz_catch(ctx) {
                        /* a damaged page: keep the others, unless memory ran out */
                        if (alloc.over || fz_caught(ctx) == FZ_ERROR_MEMORY) fz_rethrow(ctx);
                        bad_pages++;
                    }
                    chars = c;
                }
            }
        }
    }
    fz_always(ctx) {
        pdf_drop_document(ctx, pdoc);
        fz_drop_stream(ctx, stm);
    }
    fz_catch(ctx) {
        failed = 1;
        snprintf(log.last, sizeof log.last, "%s", fz_caught_message(ctx));
    }
    fz_drop_context(ctx);

    if (rc) goto fail; /* OCR failed; err is set */
    if (alloc.failed) {
        /* MuPDF turns some failed allocations into warnings and skips
         * content: whatever we got may be incomplete */
        rc = ENGRAM_ENOMEM;
        extract_err(err, errsz, "out of memory");
        goto fail;
    }
    if (alloc.over) {
        rc = ENGRAM_ETOOBIG;
        extract_err(err, errsz, "the PDF needs more than %zu KiB of memory to read",
                    lim->max_memory >> 10);
        goto fail;
    }
    if (failed && b.err != ENGRAM_ETOOBIG) {
        rc = b.err == ENGRAM_ENOMEM ? ENGRAM_ENOMEM : ENGRAM_EINVAL;
        extract_err(err, errsz, rc == ENGRAM_ENOMEM ? "out of memory"
                    : "the PDF is damaged and could not be read (%s)", log.last);
        goto fail;
    }
    if (encrypted) {
        rc = ENGRAM_EINVAL;
        extract_err(err, errsz, "the PDF is encrypted (password protected); "
                                "upload a copy without a password");
        goto fail;
    }
    if (too_many) {
        rc = ENGRAM_ETOOBIG;
        extract_err(err, errsz, "the PDF has more pages than the limit of %u", lim->max_pages);
        goto fail;
    }
    if (b.err) {
        rc = b.err;
        extract_err(err, errsz, rc == ENGRAM_ETOOBIG ? "the PDF's text is larger than the limit"
                                                      : "out of memory");
        goto fail;
    }
    if (pages > 0 && bad_pages == pages) {
        rc = ENGRAM_EINVAL;
        extract_err(err, errsz, "the PDF is damaged: none of its %d pages could be read",
                    (int)pages);
        goto fail;
    }
    if (chars == 0) {
        rc = ENGRAM_ENOTFOUND;
#ifdef ENGRAM_WITH_OCR
        extract_err(err, errsz, "the PDF has no text, and OCR found none in its pages");
#else
        extract_err(err, errsz, "the PDF has no text layer (scanned pages?) and OCR is not "
                                "available in this build");
#endif
        goto fail;
    }
    if (title[0]) {
        out->title = xb_clean_string(title, strlen(title), &rc);
        if (rc) { extract_err(err, errsz, "out of memory"); goto fail; }
    }
    rc = xb_finish(&b, out);
    if (rc) {
        eg_free(out->title);
        out->title = NULL;
        extract_err(err, errsz, "out of memory");
    }
    return rc;
fail:
    xb_free(&b);
    return rc;
}

#endif /* ENGRAM_NO_PDF */
