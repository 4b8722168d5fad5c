/*
 * source.h - a document's chunks, one at a time, from its stored file.
 *
 * Plain text and Markdown are streamed: the stored zstd file is read in
 * slices (each in a short read transaction of its own), decompressed,
 * repaired (invalid UTF-8 replaced by U+FFFD, exactly as a whole-text
 * repair would) and chunked by a chunk stream (chunk.h), so the memory a
 * document costs is a few hundred KiB whatever its size. Other formats
 * need the whole file to extract from: their extracted text (at most
 * extract_limits_t.max_text) is held, and chunked span by span (page or
 * section), so a chunk's page and heading are exact.
 *
 * Chunks come out in document order with indexes 0, 1, ...; the same file
 * and collection config give the same chunks every time (a restart resumes
 * a partly committed document by skipping the chunks it committed).
 *
 * One source per document, used by one thread at a time.
 */
#ifndef ENGRAM_INGEST_SOURCE_H
#define ENGRAM_INGEST_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "ingest/detect.h"

typedef struct doc_source doc_source_t;

typedef struct src_chunk {
    const char *text;     /* the chunk's text, valid until the next doc_source_next */
    size_t len;
    uint32_t start, end;  /* code point offsets in the document's text */
    uint32_t token_count;
    const char *heading;  /* section heading or NULL; valid until the next call */
    uint32_t page;        /* 1-based PDF page, 0 = none */
} src_chunk_t;

/* Opens the document of job (type from its stored MIME type; zlen the
 * stored file's size from catalog_job_info). Errors: ENGRAM_ENOTFOUND (the
 * document is gone), ENGRAM_ENOMEM, a storage status, or an extraction
 * failure (extract.h) with a message for the uploader in err. */
int doc_source_open(store_t *st, const ingest_job_t *job, doc_type_t type,
                    const coll_config_t *cfg, size_t zlen, doc_source_t **out, char *err,
                    size_t errsz);
/* The next chunk: 1 with *c filled, 0 after the last one, or an error
 * (ENGRAM_ECORRUPT for a damaged stored file, ENGRAM_ENOMEM, storage). */
int doc_source_next(doc_source_t *s, src_chunk_t *c);
/* How much of the input has been read, 0..1. */
double doc_source_progress(const doc_source_t *s);
/* Words (whitespace-separated runs) of the whole text; final once
 * doc_source_next returned 0. */
uint64_t doc_source_words(const doc_source_t *s);
void doc_source_free(doc_source_t *s);

#endif
