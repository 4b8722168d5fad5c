/*
 * chunk.h - splits a document's text into overlapping, token-sized chunks.
 *
 * A "token" here is a word: a maximal run of bytes that are not ASCII
 * whitespace (space, \t, \n, \v, \f, \r), exactly what a whitespace split
 * would count. A run longer than CHUNK_WORD_MAX_BYTES (a URL, a blob, a
 * language written without spaces) counts as one token per
 * CHUNK_WORD_MAX_BYTES bytes, cut between code points, so a chunk's byte size
 * stays bounded whatever the input.
 *
 * Chunks are windows of at most chunk_size tokens; consecutive chunks share
 * `overlap` tokens. A window ends at the best boundary found near its end:
 * a Markdown heading (searched in the last half of the window), else a
 * paragraph break (a blank line) or a sentence end (a word ending in . ! or
 * ?, possibly followed by closing quotes or brackets) in the last quarter,
 * else simply after the chunk_size-th word. When a window ends at a heading
 * the next chunk starts at the heading itself, without overlap, so sections
 * begin chunks whenever possible. Every chunk ends beyond the previous one,
 * every word is in at least one chunk, and the loop always progresses.
 *
 * Markdown (is_markdown): a line beginning with 1 to 6 '#' then a space or
 * tab is a heading, except inside ``` or ~~~ fenced blocks. Each chunk
 * carries the text of the heading in effect at its first word.
 *
 * The text should be UTF-8; the chunker never cuts inside a code point of
 * valid UTF-8 and never reads outside text[0..len). chunk_text is
 * thread-safe (no state).
 *
 * Streaming (chunk_stream_*): the same chunks for a text that arrives in
 * pieces, holding about chunk_size words whatever the text's size (see
 * chunk.c; a Markdown heading line longer than 64 KiB keeps only its first
 * 64 KiB as heading text). One stream per document, one thread at a time.
 */
#ifndef ENGRAM_CHUNK_H
#define ENGRAM_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define CHUNK_WORD_MAX_BYTES 64

typedef struct chunk_span {
    size_t start;         /* byte offset of the chunk's first word */
    size_t end;           /* byte offset just past its last word */
    uint32_t token_count; /* words in the chunk (>= 1) */
    char *heading;        /* Markdown heading in effect at start; owned, may be NULL */
} chunk_span_t;

/* Chunks text[0..len). On success returns 0 with *out an array of *n_out
 * spans in text order (free with chunk_spans_free; *out is NULL when there
 * are no chunks, i.e. empty or whitespace-only text). text[start..end) of a
 * span never begins or ends with whitespace and is never empty.
 * Errors: ENGRAM_EINVAL (chunk_size 0, overlap >= chunk_size, NULL
 * arguments), ENGRAM_ENOMEM; *out and *n_out are then NULL and 0. */
int chunk_text(const char *text, size_t len, uint32_t chunk_size, uint32_t overlap,
               int is_markdown, chunk_span_t **out, size_t *n_out);

/* Frees spans and their headings. NULL is fine. */
void chunk_spans_free(chunk_span_t *spans, size_t n);

typedef struct chunk_stream chunk_stream_t;

/* A stream for one text. ENGRAM_EINVAL (chunk_size 0, overlap >=
 * chunk_size), ENGRAM_ENOMEM. Free with chunk_stream_free (NULL is fine). */
int chunk_stream_new(uint32_t chunk_size, uint32_t overlap, int is_markdown, chunk_stream_t **out);
void chunk_stream_free(chunk_stream_t *cs);
/* Where the text is now: bytes [base, base + len) of the text (offsets
 * from its first byte) are at buf, which must hold everything from
 * chunk_stream_keep() on and stay valid until the next call of this
 * function; base + len never decreases. final: the text ends there. */
void chunk_stream_text(chunk_stream_t *cs, const char *buf, size_t base, size_t len, int final);
/* The next chunk: 1 with *out filled (offsets from the text's first byte;
 * out->heading belongs to the stream, valid until the next call) and
 * cp[0], cp[1] the code point offsets of its start and end (bytes that are
 * not UTF-8 continuation bytes, counted from the text's first byte); 0 when
 * the text at hand does not decide the next chunk (give more, or after a
 * final text: no more chunks); ENGRAM_ENOMEM. */
int chunk_stream_next(chunk_stream_t *cs, chunk_span_t *out, uint64_t cp[2]);
/* The first byte offset the stream still needs: text before it may go. */
size_t chunk_stream_keep(const chunk_stream_t *cs);

#endif
