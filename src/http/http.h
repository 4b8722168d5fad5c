/*
 * http.h - the HTTP/1.1 server: connections, framing, limits, dispatch.
 *
 * One event-loop thread accepts connections and reads requests without
 * blocking (so slow or silent clients cost a file descriptor, not a thread),
 * enforcing the header/body/idle timeouts and size limits. When a request's
 * headers are complete the on_headers hook runs on the loop thread (route
 * lookup, credentials, per-route body limit) BEFORE any body byte is read;
 * when the body is complete the request goes to a pool of worker threads that
 * run the handler. A handler answers either whole (http_respond) or streamed
 * (http_stream_*: chunked transfer coding, for SSE and large lists); writes
 * from workers block with a write timeout. After the answer the connection
 * returns to the loop for keep-alive, unless either side asked to close.
 *
 * Framing follows RFC 9112: Content-Length and chunked bodies; both
 * Content-Length and Transfer-Encoding, several differing Content-Lengths, a
 * Transfer-Encoding other than "chunked", obs-fold, or bad chunk sizes -> 400
 * and close. Request line + headers over max_header_bytes -> 431 and close;
 * body over the limit -> 413 and close. Pipelined requests are answered in
 * order.
 *
 * HTTPS (tls_cert + tls_key set): every connection is TLS, through mbedTLS
 * (tls.h has the policy); the handshake runs on the loop thread under the
 * header timeout, workers write through the record layer with the same
 * blocking-with-timeout contract. Large request bodies of routes that allow
 * them are spooled to an unlinked file (spool_dir) and reach the handler as
 * a read-only mapping, so an upload costs bounded memory.
 *
 * The server writes one JSON access-log line per request (method, path,
 * status, bytes, duration, request id, remote address) and always sends an
 * X-Request-ID header: the client's own when it matched [A-Za-z0-9._-]{1,128},
 * else a fresh random one.
 *
 * Thread-safety: http_server_* are called from the owning (main) thread;
 * handlers run concurrently on workers and must only touch their own request.
 */
#ifndef ENGRAM_HTTP_H
#define ENGRAM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define HTTP_MAX_HEADERS 100

typedef struct http_header {
    const char *name;   /* as sent; compare case-insensitively */
    const char *value;  /* leading/trailing whitespace trimmed */
} http_header_t;

typedef struct http_conn http_conn_t;

typedef struct http_request {
    /* Filled by the parser. All strings NUL-terminated, owned by the request,
     * valid until the response is finished. */
    const char *method;       /* "GET", ... */
    const char *target;       /* raw request target: "/api/v1/x?y=1" */
    const char *path;         /* percent-decoded path without the query */
    const char *query;        /* raw query string without '?', "" if none */
    int minor_version;        /* 0 or 1 (HTTP/1.x) */
    http_header_t headers[HTTP_MAX_HEADERS];
    size_t n_headers;
    const char *body;         /* NUL-terminated for convenience; may hold NULs */
    size_t body_len;
    int body_file;            /* 1: body is a read-only mapping of a spooled
                               * temporary file (see spool_dir below); same
                               * lifetime, never write through it */
    char request_id[129];
    char remote_addr[64];
    uint64_t start_ns;        /* monotonic time the first byte arrived */

    /* Set by on_headers: */
    size_t max_body;          /* body limit for this request (default: server's) */
    void *route;              /* opaque to the server: what on_headers decided */
    void *auth;               /* opaque: on_headers' credential result */
    int waits;                /* 1: the handler may wait long on something other than
                               * the CPU (a database commit, an upstream service): at
                               * most http_server_config_t.waiting_max such requests
                               * hold workers at once, so the others always find one */
    char route_label[64];     /* low-cardinality route name for logs/metrics */
    /* Scratch space for the application (e.g. the caller's identity found by
     * on_headers), zeroed for each request, valid until on_done returns. */
    _Alignas(16) unsigned char app_data[1024];

    /* Private to the server. */
    http_conn_t *conn;
    int responded;
    int streaming;
    int status;               /* status sent */
    size_t bytes_sent;
    int close_after;
} http_request_t;

/* Case-insensitive header lookup; NULL when absent. */
const char *http_header(const http_request_t *req, const char *name);
/* Value of query parameter name, percent-decoded into out (size outsz).
 * Returns 1 if present, 0 if absent, ENGRAM_ETOOBIG if it did not fit. */
int http_query_param(const http_request_t *req, const char *name, char *out, size_t outsz);

/* Whole answer. extra_headers: NULL or "Name: value\r\n..." lines. The
 * server adds Content-Length, Date, X-Request-ID and Connection itself.
 * Returns 0, or ENGRAM_ECLOSED when the client is gone. Call once. */
int http_respond(http_request_t *req, int status, const char *content_type,
                 const void *body, size_t len, const char *extra_headers);

/* Streamed answer with chunked transfer coding (HTTP/1.0 peers: no length,
 * connection closed at the end). Each write is flushed to the socket before
 * it returns. Returns 0, or ENGRAM_ECLOSED / ENGRAM_ETIMEOUT when the client
 * went away or stalled: stop producing then. */
int http_stream_begin(http_request_t *req, int status, const char *content_type,
                      const char *extra_headers);
int http_stream_write(http_request_t *req, const void *data, size_t len);
int http_stream_end(http_request_t *req);
/* 1 if the peer has closed its side (checked without blocking). */
int http_client_gone(http_request_t *req);

/* A handler that returns without answering gets a 500 through on_error.
 * Answers given on the loop thread (on_headers, server errors) never block:
 * what the socket does not take at once is flushed by the loop; streaming is
 * refused there (ENGRAM_EINVAL).
 *
 * Hooks. on_headers runs on the loop thread: return 0 to go on reading the
 * body (and then call handler on a worker), or have answered with
 * http_respond (any non-2xx: the connection is closed after it if a body
 * was announced and not read). on_error builds the error answer the server
 * itself must send (400, 408, 413, 431, 503): it must call http_respond. */
typedef int (*http_on_headers_fn)(http_request_t *req, void *ud);
typedef void (*http_handler_fn)(http_request_t *req, void *ud);
typedef void (*http_on_error_fn)(http_request_t *req, int status, const char *message, void *ud);
/* Called after every request with the final status (metrics). Optional. */
typedef void (*http_on_done_fn)(http_request_t *req, double duration_ms, void *ud);

typedef struct http_server_config {
    const char *listen;           /* "127.0.0.1:8080", "[::1]:0", ":8080" */
    int workers;                  /* handler threads, default 8 */
    int waiting_max;              /* requests with req->waits = 1 running at once: default
                                   * all workers but a quarter, at least one kept for
                                   * the others (8 -> 6, 2 -> 1); more wait queued */
    int max_connections;          /* default 1024; over it new ones get 503 and close */
    size_t max_header_bytes;      /* default 16384 */
    size_t max_body_bytes;        /* default 1 MiB; on_headers may raise per request */
    int header_timeout_ms;        /* whole request head must arrive within: 10000 */
    int body_timeout_ms;          /* body must keep making progress: 30000 between reads */
    int idle_timeout_ms;          /* keep-alive idle: 60000 */
    int write_timeout_ms;         /* a blocked write gives up after: 30000 */
    http_on_headers_fn on_headers;
    http_handler_fn handler;
    http_on_error_fn on_error;
    http_on_done_fn on_done;
    void *ud;
    int drain_ms;                 /* on stop, wait this long for requests in flight: 10000 */
    /* HTTPS: both set -> every connection speaks TLS (tls.h policy); a
     * client speaking plain HTTP gets a plain-text 400 and is closed. */
    const char *tls_cert;         /* PEM certificate chain file */
    const char *tls_key;          /* PEM private key file */
    /* Request bodies of routes whose max_body (set by on_headers) is over
     * HTTP_SPOOL_ROUTE_MIN and that grow past HTTP_SPOOL_BODY_MIN go to an
     * unlinked temporary file in this directory (created 0700 if missing)
     * instead of memory, and reach the handler as a read-only mapping
     * (req->body_file = 1). NULL: every body in memory. */
    const char *spool_dir;
    /* Where http_server_create writes a readable reason when it fails
     * (optional). */
    char *error;
    size_t error_size;
} http_server_config_t;

#define HTTP_SPOOL_ROUTE_MIN ((size_t)1 << 20)
#define HTTP_SPOOL_BODY_MIN ((size_t)1 << 20)

typedef struct http_server http_server_t;

/* Binds and listens (not yet serving). Returns 0 or a status; on success
 * *out owns the socket. The bound port is http_server_port(). */
int http_server_create(const http_server_config_t *cfg, http_server_t **out);
int http_server_port(const http_server_t *s);
/* Runs the loop until http_server_stop(); then stops accepting, lets
 * in-flight requests finish (up to drain_ms), closes every connection and
 * returns. */
int http_server_run(http_server_t *s);
/* Async-signal-safe: asks the loop to stop. */
void http_server_stop(http_server_t *s);
void http_server_free(http_server_t *s);
/* Number of open connections (metrics). */
int http_server_connections(const http_server_t *s);
/* TLS handshakes completed and how many of them use libsodium records
 * (tls_server_counts); zeros for a plain HTTP server. */
void http_server_tls_counts(const http_server_t *s, uint64_t *handshakes, uint64_t *fast_records);

#endif
