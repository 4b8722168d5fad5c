/*
 * detect.c - content sniffing (see detect.h).
 */
#include "ingest/detect.h"

#include <string.h>
#include <strings.h>

#include "util/utf8.h"

static int starts(const unsigned char *p, size_t n, const char *magic, size_t m)
{
    return n >= m && memcmp(p, magic, m) == 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Skips a UTF-8 BOM and leading whitespace. */
static size_t skip_space(const unsigned char *p, size_t n)
{
    size_t i = 0;
    if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) i = 3;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) i++;
    return i;
}

static int looks_html(const unsigned char *p, size_t n)
{
    size_t i = skip_space(p, n);
    const char *s = (const char *)p + i;
    size_t m = n - i;
    if (m >= 14 && strncasecmp(s, "<!doctype html", 14) == 0) return 1;
    if (m >= 5 && strncasecmp(s, "<html", 5) == 0) return 1;
    if (m >= 4 && strncasecmp(s, "<!--", 4) == 0) {
        /* a comment first: look for <html in the first 1 KiB */
        size_t lim = m < 1024 ? m : 1024;
        for (size_t k = 0; k + 5 <= lim; k++)
            if (strncasecmp(s + k, "<html", 5) == 0) return 1;
    }
    return 0;
}

/* Markdown by structure: ATX headings, fences, links, emphasis lists. */
static int looks_markdown(const unsigned char *p, size_t n)
{
    size_t lim = n < 65536 ? n : 65536;
    int score = 0;
    int at_line_start = 1;
    for (size_t i = 0; i < lim; i++) {
        if (at_line_start) {
            size_t j = i, h = 0;
            while (j < lim && p[j] == '#' && h < 7) { j++; h++; }
            if (h >= 1 && h <= 6 && j < lim && p[j] == ' ') score += 2;
            if (lim - i >= 3 && memcmp(p + i, "```", 3) == 0) score += 2;
        }
        if (p[i] == ']' && i + 1 < lim && p[i + 1] == '(') score++;
        at_line_start = p[i] == '\n';
    }
    return score >= 2;
}

doc_type_t detect_type(const void *bytes, size_t len, const char *filename,
                       const char *declared_type)
{
    const unsigned char *p = bytes;
    if (starts(p, len, "%PDF-", 5)) return DOC_PDF;
    if (starts(p, len, "PK\x03\x04", 4)) {
        /* DOCX is a zip whose entries include word/document.xml */
        size_t lim = len < 65536 ? len : 65536;
        for (size_t i = 0; i + 17 <= lim; i++)
            if (memcmp(p + i, "word/document.xml", 17) == 0) return DOC_DOCX;
        return DOC_ZIP;
    }
    if (starts(p, len, "\x89PNG\r\n\x1a\n", 8)) return DOC_PNG;
    if (starts(p, len, "\xff\xd8\xff", 3)) return DOC_JPEG;
    if (starts(p, len, "GIF87a", 6) || starts(p, len, "GIF89a", 6)) return DOC_GIF;
    if (starts(p, len, "II*\0", 4) || starts(p, len, "MM\0*", 4)) return DOC_TIFF;
    if (starts(p, len, "\x1f\x8b", 2)) return DOC_GZIP;
    if (utf8_looks_binary(bytes, len)) return DOC_BINARY;
    if (looks_html(p, len)) return DOC_HTML;
    int md_hint = (filename && (ends_with(filename, ".md") || ends_with(filename, ".markdown"))) ||
                  (declared_type && strncasecmp(declared_type, "text/markdown", 13) == 0);
    if (md_hint || looks_markdown(p, len)) return DOC_MARKDOWN;
    return DOC_TEXT;
}

const char *detect_mime(doc_type_t t)
{
    switch (t) {
    case DOC_TEXT: return "text/plain";
    case DOC_MARKDOWN: return "text/markdown";
    case DOC_HTML: return "text/html";
    case DOC_PDF: return "application/pdf";
    case DOC_DOCX: return "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
    case DOC_ZIP: return "application/zip";
    case DOC_PNG: return "image/png";
    case DOC_JPEG: return "image/jpeg";
    case DOC_GIF: return "image/gif";
    case DOC_TIFF: return "image/tiff";
    case DOC_GZIP: return "application/gzip";
    default: return "application/octet-stream";
    }
}

int detect_supported(doc_type_t t) { return t == DOC_TEXT || t == DOC_MARKDOWN; }
