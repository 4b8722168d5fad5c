/*
 * parse.h - the HTTP/1.1 request-head parser and chunked-body decoder.
 *
 * Pure functions over byte buffers: no I/O, no clocks, no globals, so the
 * fuzzers and unit tests drive them exactly as the server does. They never
 * read outside [buf, buf + len) and never write to the input.
 *
 * Head parsing is incremental in the cheap sense: http_head_scan() resumes
 * its search for the end of the head where the previous call stopped (state
 * in http_head_parser_t), so feeding a head one byte at a time costs O(n)
 * overall; the full syntax check runs once, when the blank line is found.
 * Results are offsets into the caller's buffer (http_head_t), which
 * http_request_from_head() turns into the NUL-terminated strings of an
 * http_request_t.
 *
 * Status convention of this module: a negative return is minus the HTTP
 * status to answer (-400, -413, -431, -501, -505); ENGRAM_ENOMEM is the only
 * other negative value (only from http_request_from_head).
 */
#ifndef ENGRAM_HTTP_PARSE_H
#define ENGRAM_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define HTTP_CHUNK_EXT_MAX 1024     /* bytes of chunk extensions per size line */
#define HTTP_TRAILER_MAX 8192       /* bytes of trailer section */

typedef struct http_span {
    uint32_t off;   /* from the start of the buffer given to the parser */
    uint32_t len;
} http_span_t;

typedef struct http_head {
    size_t head_len;            /* bytes of the head, blank line included */
    http_span_t method;
    http_span_t target;         /* raw request target */
    http_span_t path;           /* raw (still encoded) path of the target */
    http_span_t query;          /* after '?', len 0 if none */
    int has_query;
    int minor_version;          /* 0 or 1 */
    size_t n_headers;
    http_span_t names[HTTP_MAX_HEADERS];
    http_span_t values[HTTP_MAX_HEADERS];   /* trimmed */
    int64_t content_length;     /* -1 when absent */
    int chunked;                /* Transfer-Encoding: chunked */
    int keep_alive;             /* after the version and Connection tokens */
    int expect_continue;        /* Expect: 100-continue */
} http_head_t;

typedef struct http_head_parser {
    size_t scanned;             /* bytes already searched for the blank line */
    size_t line_start;          /* start of the line being scanned */
    size_t head_start;          /* after leading empty lines */
} http_head_parser_t;

static inline void http_head_parser_init(http_head_parser_t *p)
{
    p->scanned = 0;
    p->line_start = 0;
    p->head_start = 0;
}

/* Looks for a complete request head in buf[0..len) (len only grows between
 * calls with the same parser; reset with http_head_parser_init for the next
 * request). Returns 0 when more bytes are needed, the head length (> 0) when
 * complete and valid (*out filled), or -status: -400 malformed, -431 head
 * over max_header_bytes or more than HTTP_MAX_HEADERS fields, -501 unknown
 * transfer coding, -505 unsupported version. */
int http_head_scan(http_head_parser_t *p, const char *buf, size_t len, size_t max_header_bytes,
                   http_head_t *out);

/* One-shot form of http_head_scan (fresh parser). */
int http_parse_head(const char *buf, size_t len, size_t max_header_bytes, http_head_t *out);

/* Fills req's method, target, path (percent-decoded), query, minor_version
 * and headers from a head parsed out of buf. Allocates one block holding all
 * the strings; *storage receives it and the caller frees it with eg_free
 * once req is no longer used. Other fields of req are left alone.
 * Returns 0, -400 (bad percent escape in the path), ENGRAM_ENOMEM. */
int http_request_from_head(http_request_t *req, const char *buf, const http_head_t *h,
                           char **storage);

/* Percent-decodes a path: out needs n bytes (+1 for the NUL it writes).
 * Returns the decoded length, or -400 for a malformed escape or %00. */
long http_path_decode(const char *in, size_t n, char *out);

/* Chunked transfer coding decoder (RFC 9112 section 7.1). */
typedef struct http_chunked {
    int state;
    uint64_t chunk_left;        /* data bytes left in the current chunk */
    uint64_t total;             /* data bytes decoded so far */
    uint64_t max_body;          /* limit on total (413 beyond) */
    size_t ext_len;             /* bytes of extension on this size line */
    size_t trailer_len;         /* bytes of trailer section so far */
    int digits;                 /* hex digits of the current size */
} http_chunked_t;

enum {
    HTTP_CHUNK_MORE = 0,        /* all input consumed, need more */
    HTTP_CHUNK_DATA = 1,        /* a data span is available */
    HTTP_CHUNK_DONE = 2,        /* last chunk and trailers consumed */
};

void http_chunked_init(http_chunked_t *c, uint64_t max_body);

/* Consumes framing from in[0..len) until body data, the end of the body, or
 * the end of the input. *consumed gets the bytes used (data included). On
 * HTTP_CHUNK_DATA the data is in[*data_off .. *data_off + *data_len) (zero
 * copy: the caller copies it out). On HTTP_CHUNK_DONE the bytes after
 * *consumed belong to the next request. Negative: -400 malformed, -413 body
 * over max_body, -431 trailers over HTTP_TRAILER_MAX. Once DONE or failed,
 * further calls return the same result without consuming. */
int http_chunked_feed(http_chunked_t *c, const char *in, size_t len, size_t *consumed,
                      size_t *data_off, size_t *data_len);

/* 1 if id is a sane client request id: [A-Za-z0-9._-]{1,128}. */
int http_request_id_ok(const char *id);

#endif
