/*
 * detect.c - content sniffing (see detect.h).
 *
 * Binary formats by their magic bytes; a zip is a DOCX when its directory
 * (read with zip.h's bounded reader) lists both [Content_Types].xml and
 * word/document.xml, or, for a zip too damaged to index, when those names
 * appear in its first 64 KiB (so a truncated DOCX is reported as a broken
 * DOCX, not as an unsupported zip). Text formats by structure: HTML when it
 * opens with a doctype, <html>, or, after an optional XML declaration or
 * comments, a tag that only HTML uses in its first 4 KiB.
 */
#include "ingest/detect.h"

#include <string.h>
#include <strings.h>

#include "ingest/zip.h"
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

/* Tags that mark a document as HTML when it starts with markup. */
static const char *const html_tags[] = {
    "<html", "<head", "<body", "<title", "<meta", "<div", "<p>", "<p ", "<h1", "<h2", "<h3",
    "<table", "<ul", "<ol", "<br", "<a href", "<span", "<section", "<article", "<script", "<style",
};

/* 2: surely HTML (a doctype or <html> first); 1: starts with markup that
 * includes HTML tags (a Markdown file may do that too); 0: not HTML. */
static int looks_html(const unsigned char *p, size_t n)
{
    size_t i = skip_space(p, n);
    const char *s = (const char *)p + i;
    size_t m = n - i;
    if (m >= 14 && strncasecmp(s, "<!doctype html", 14) == 0) return 2;
    if (m >= 5 && strncasecmp(s, "<html", 5) == 0) return 2;
    if (m < 2 || s[0] != '<') return 0;
    /* markup first (a comment, an XML declaration, a tag): look for HTML's tags */
    size_t lim = m < 4096 ? m : 4096;
    for (size_t k = 0; k < lim; k++) {
        if (s[k] != '<') continue;
        for (size_t t = 0; t < sizeof html_tags / sizeof html_tags[0]; t++) {
            size_t tl = strlen(html_tags[t]);
            if (lim - k >= tl && strncasecmp(s + k, html_tags[t], tl) == 0) return 1;
        }
    }
    return 0;
}

static int find_bytes(const unsigned char *p, size_t n, const char *needle)
{
    return memmem(p, n, needle, strlen(needle)) != NULL;
}

static doc_type_t zip_kind(const unsigned char *p, size_t len)
{
    zip_t z;
    if (zip_open(&z, p, len, 100000, 0, 1, NULL) == 0) {
        int docx = zip_find(&z, "[Content_Types].xml") >= 0 && zip_find(&z, "word/document.xml") >= 0;
        zip_close(&z);
        return docx ? DOC_DOCX : DOC_ZIP;
    }
    size_t lim = len < 65536 ? len : 65536;
    return find_bytes(p, lim, "word/document.xml") ? DOC_DOCX : DOC_ZIP;
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
    if (starts(p, len, "PK\x03\x04", 4)) return zip_kind(p, len);
    if (starts(p, len, "\x89PNG\r\n\x1a\n", 8)) return DOC_PNG;
    if (starts(p, len, "\xff\xd8\xff", 3)) return DOC_JPEG;
    if (starts(p, len, "GIF87a", 6) || starts(p, len, "GIF89a", 6)) return DOC_GIF;
    if (starts(p, len, "II*\0", 4) || starts(p, len, "MM\0*", 4)) return DOC_TIFF;
    if (starts(p, len, "\x1f\x8b", 2)) return DOC_GZIP;
    if (utf8_looks_binary(bytes, len)) {
        /* PDF readers accept the header anywhere in the first KiB */
        if (find_bytes(p, len < 1024 ? len : 1024, "%PDF-")) return DOC_PDF;
        return DOC_BINARY;
    }
    int html = looks_html(p, len);
    if (html == 2) return DOC_HTML;
    int md_hint = (filename && (ends_with(filename, ".md") || ends_with(filename, ".markdown"))) ||
                  (declared_type && strncasecmp(declared_type, "text/markdown", 13) == 0);
    if (md_hint) return DOC_MARKDOWN; /* READMEs often open with <p align=center> */
    if (html) return DOC_HTML;
    if (looks_markdown(p, len)) return DOC_MARKDOWN;
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
