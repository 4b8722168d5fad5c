/*
 * detect.h - tells a document's type from its bytes.
 *
 * Magic bytes first (PDF, ZIP/DOCX, PNG, JPEG, GIF, TIFF, gzip), then
 * whether the bytes are text at all, then HTML and Markdown by structure;
 * the file name and the declared type only break ties between text kinds
 * (a ".md" name or "text/markdown" makes plain-looking text Markdown, and
 * Markdown that opens with HTML tags too; a doctype or <html> still wins).
 * A zip is DOC_DOCX only when its directory lists [Content_Types].xml and
 * word/document.xml (see detect.c). Reads at most the bytes given; never
 * fails. Thread-safe.
 */
#ifndef ENGRAM_DETECT_H
#define ENGRAM_DETECT_H

#include <stddef.h>

typedef enum {
    DOC_TEXT, DOC_MARKDOWN, DOC_HTML, DOC_PDF, DOC_DOCX, DOC_ZIP, DOC_PNG, DOC_JPEG,
    DOC_GIF, DOC_TIFF, DOC_GZIP, DOC_BINARY
} doc_type_t;

doc_type_t detect_type(const void *bytes, size_t len, const char *filename,
                       const char *declared_type);
/* The MIME type stored for a document of that type. */
const char *detect_mime(doc_type_t t);
/* 1 for the types the pipeline ingested before extract.h existed (text and
 * Markdown). Superseded by extract_supported() (ingest/extract.h), which
 * knows what this build can extract; kept until the upload route and the
 * pipeline switch over together. */
int detect_supported(doc_type_t t);

#endif
