/*
 * extract_ocr.c - text from images through Tesseract OCR (make OCR=1).
 *
 * Images (PNG, JPEG, TIFF) are decoded by Leptonica (BSD-2-Clause), which
 * Tesseract (Apache-2.0) itself uses; a multi-page TIFF gives one span per
 * page. Before decoding, the header is read and images over
 * OCR_MAX_PIXELS are refused, so a small file declaring a gigantic bitmap
 * cannot make us allocate it. Image-only PDF pages arrive here already
 * rendered by MuPDF (extract_ocr_pixels).
 *
 * A Tesseract engine is created per call (loading the English model takes
 * a fraction of a second next to seconds of recognition), so calls on
 * different threads share nothing. The model comes from Debian's
 * tesseract-ocr-eng, at the path compiled into libtesseract, or
 * $TESSDATA_PREFIX. Tesseract's and Leptonica's own allocations do not go
 * through eg_malloc.
 *
 * Without ENGRAM_WITH_OCR everything here fails with "OCR is not available
 * in this build" and the library is not linked.
 */
#include <stdio.h>
#include <string.h>

#include "ingest/extract_internal.h"
#include "util/common.h"

#ifndef ENGRAM_WITH_OCR

int extract_ocr_image(const void *bytes, size_t n, const extract_limits_t *lim,
                      extract_result_t *out, char *err, size_t errsz)
{
    (void)bytes; (void)n; (void)lim; (void)out;
    extract_err(err, errsz, "OCR is not available in this build");
    return ENGRAM_EUNSUPPORTED;
}

int extract_ocr_pixels(const unsigned char *px, int w, int h, int bytes_per_px, int stride,
                       int ppi, xb_t *b, char *err, size_t errsz)
{
    (void)px; (void)w; (void)h; (void)bytes_per_px; (void)stride; (void)ppi; (void)b;
    extract_err(err, errsz, "OCR is not available in this build");
    return ENGRAM_EUNSUPPORTED;
}

#else

#include <pthread.h>

#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

#define OCR_MAX_PIXELS (60u * 1000 * 1000) /* about 8000 x 7500 */
#define OCR_MAX_TIFF_PAGES 500

/* Leptonica prints every decoding error to stderr through a process-wide
 * severity; silence it once (our messages say what went wrong). */
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;
static void quiet_leptonica(void) { setMsgSeverity(L_SEVERITY_NONE); }

static TessBaseAPI *ocr_engine(char *err, size_t errsz, int *rc)
{
    pthread_once(&quiet_once, quiet_leptonica);
    TessBaseAPI *api = TessBaseAPICreate();
    if (!api) {
        *rc = ENGRAM_ENOMEM;
        extract_err(err, errsz, "out of memory");
        return NULL;
    }
    if (TessBaseAPIInit3(api, NULL, "eng") != 0) {
        TessBaseAPIDelete(api);
        *rc = ENGRAM_EUNSUPPORTED;
        extract_err(err, errsz, "OCR is not available: the English language data "
                                "(tesseract-ocr-eng) is not installed");
        return NULL;
    }
    TessBaseAPISetVariable(api, "debug_file", "/dev/null");
    *rc = 0;
    return api;
}

/* Recognises the image set on api and appends its text to b. */
static int ocr_run(TessBaseAPI *api, xb_t *b, char *err, size_t errsz)
{
    char *text = TessBaseAPIGetUTF8Text(api);
    if (!text) {
        extract_err(err, errsz, "OCR failed on the image");
        return ENGRAM_EINVAL;
    }
    /* Tesseract ends lines with \n and paragraphs with a blank line. */
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        size_t a = 0, e = n;
        while (a < e && (p[a] == ' ' || p[a] == '\t' || p[a] == '\f')) a++;
        while (e > a && (p[e - 1] == ' ' || p[e - 1] == '\t' || p[e - 1] == '\f')) e--;
        if (e > a) {
            xb_text(b, p + a, e - a);
            xb_line(b);
        } else {
            xb_para(b);
        }
        if (!nl) break;
        p = nl + 1;
    }
    TessDeleteText(text);
    xb_para(b);
    return 0;
}

int extract_ocr_pixels(const unsigned char *px, int w, int h, int bytes_per_px, int stride,
                       int ppi, xb_t *b, char *err, size_t errsz)
{
    int rc;
    if (w <= 0 || h <= 0 || (size_t)w * (size_t)h > OCR_MAX_PIXELS) {
        extract_err(err, errsz, "the page is too large for OCR");
        return ENGRAM_ETOOBIG;
    }
    TessBaseAPI *api = ocr_engine(err, errsz, &rc);
    if (!api) return rc;
    TessBaseAPISetImage(api, px, w, h, bytes_per_px, stride);
    if (ppi > 0) TessBaseAPISetSourceResolution(api, ppi);
    rc = ocr_run(api, b, err, errsz);
    TessBaseAPIEnd(api);
    TessBaseAPIDelete(api);
    return rc;
}

int extract_ocr_image(const void *bytes, size_t n, const extract_limits_t *lim,
                      extract_result_t *out, char *err, size_t errsz)
{
    int rc = 0;
    xb_t b;
    xb_init(&b, lim->max_text);
    TessBaseAPI *api = NULL;
    PIXA *pixa = NULL;
    PIX *pix = NULL;
    l_int32 fmt = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
    if (pixReadHeaderMem(bytes, n, &fmt, &w, &h, &bps, &spp, &cmap) != 0 || w <= 0 || h <= 0) {
        rc = ENGRAM_EINVAL;
        extract_err(err, errsz, "the image cannot be read (truncated or corrupt file?)");
        goto fail;
    }
    if ((size_t)w * (size_t)h > OCR_MAX_PIXELS) {
        rc = ENGRAM_ETOOBIG;
        extract_err(err, errsz, "the image is too large for OCR (%d x %d pixels)", w, h);
        goto fail;
    }
    api = ocr_engine(err, errsz, &rc);
    if (!api) goto fail;
    int tiff = n >= 4 && (memcmp(bytes, "II*\0", 4) == 0 || memcmp(bytes, "MM\0*", 4) == 0);
    if (tiff) {
        pixa = pixaReadMemMultipageTiff(bytes, n);
        int pages = pixa ? pixaGetCount(pixa) : 0;
        if (pages <= 0) {
            rc = ENGRAM_EINVAL;
            extract_err(err, errsz, "the TIFF image cannot be read (truncated or corrupt file?)");
            goto fail;
        }
        if (pages > OCR_MAX_TIFF_PAGES || (uint32_t)pages > lim->max_ocr_pages) {
            rc = ENGRAM_ETOOBIG;
            extract_err(err, errsz, "the TIFF has more pages than the OCR limit");
            goto fail;
        }
        for (int i = 0; i < pages && !rc; i++) {
            PIX *pg = pixaGetPix(pixa, i, L_CLONE);
            if (!pg) continue;
            if ((size_t)pixGetWidth(pg) * (size_t)pixGetHeight(pg) <= OCR_MAX_PIXELS) {
                xb_section(&b, pages > 1 ? i + 1 : 0);
                TessBaseAPISetImage2(api, pg);
                rc = ocr_run(api, &b, err, errsz);
            }
            pixDestroy(&pg);
        }
        if (rc) goto fail;
    } else {
        pix = pixReadMem(bytes, n);
        if (!pix) {
            rc = ENGRAM_EINVAL;
            extract_err(err, errsz, "the image cannot be read (truncated or corrupt file?)");
            goto fail;
        }
        TessBaseAPISetImage2(api, pix);
        rc = ocr_run(api, &b, err, errsz);
        if (rc) goto fail;
    }
    if (b.err) {
        rc = b.err;
        extract_err(err, errsz, rc == ENGRAM_ETOOBIG ? "the text is larger than the limit"
                                                      : "out of memory");
        goto fail;
    }
    if (b.text.len == 0) {
        rc = ENGRAM_ENOTFOUND;
        extract_err(err, errsz, "OCR found no text in the image");
        goto fail;
    }
    rc = xb_finish(&b, out);
    if (rc) extract_err(err, errsz, "out of memory");
fail:
    if (pix) pixDestroy(&pix);
    if (pixa) pixaDestroy(&pixa);
    if (api) {
        TessBaseAPIEnd(api);
        TessBaseAPIDelete(api);
    }
    xb_free(&b);
    return rc;
}

#endif /* ENGRAM_WITH_OCR */
