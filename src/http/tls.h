/*
 * tls.h - HTTPS for the HTTP server: a thin layer over mbedTLS 2.28.
 *
 * One tls_server_t holds what every connection shares: the certificate
 * chain and key, the ssl configuration (TLS 1.2 only, ECDHE with AEAD
 * suites only, no renegotiation), a session cache and the random generator
 * (mbedtls_entropy with a getrandom() source + CTR_DRBG, seeded once). It is
 * read-only after tls_server_create except for the generator (mutex) and
 * the session cache (used by the loop thread only).
 *
 * One tls_conn_t per connection. The caller owns the socket and decides
 * when to read; the record layer reads the socket itself (non-blocking
 * recv) and hands every encrypted byte it wants to send to the caller's
 * send function, which must accept all of them (sending what the socket
 * takes and queueing the rest). So no write ever returns "want write": the
 * caller flushes its own queue, blocking or from the event loop, and a
 * record is never half-committed inside mbedTLS. A read that lacks input
 * answers ENGRAM_EAGAIN (wait for the socket to become readable).
 *
 * TLS 1.3: mbedTLS 2.28 has no server-side TLS 1.3; a client that offers
 * only 1.3 gets a handshake failure.
 *
 * Thread-safety: a tls_conn_t is used by one thread at a time (its
 * connection's owner). tls_server_t may be shared once created.
 * Memory: mbedTLS allocates its own contexts with calloc (Debian's build
 * has no MBEDTLS_PLATFORM_MEMORY hook): about 35 KB per connection, for
 * the 16 KB input and output record buffers.
 */
#ifndef ENGRAM_HTTP_TLS_H
#define ENGRAM_HTTP_TLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct tls_server tls_server_t;
typedef struct tls_conn tls_conn_t;

/* Largest plaintext a single tls_conn_write turns into one record. */
#define TLS_RECORD_MAX 16384

/* Loads the PEM certificate chain and private key (unencrypted) and builds
 * the shared configuration. On failure returns a status and writes a
 * sentence naming the file and the reason into err (errsz bytes). */
int tls_server_create(const char *cert_path, const char *key_path, tls_server_t **out,
                      char *err, size_t errsz);
void tls_server_free(tls_server_t *ts);
/* Handshakes completed since start, and how many of those connections had
 * their records moved to libsodium (tls_record.h); the rest stay on
 * mbedTLS's record layer. Any thread. ts NULL: zeros. */
void tls_server_counts(tls_server_t *ts, uint64_t *handshakes, uint64_t *fast_records);
/* "mbedTLS 2.28.3" (the library linked in). Static storage. */
const char *tls_library_version(void);

/* send: must take all len bytes (send now or queue) and return 0, or a
 * negative status when the connection is unusable. */
typedef int (*tls_send_fn)(void *ctx, const unsigned char *data, size_t len);

/* A connection on socket fd (non-blocking). ENGRAM_ENOMEM on failure. */
int tls_conn_new(tls_server_t *ts, int fd, tls_send_fn send, void *send_ctx, tls_conn_t **out);
void tls_conn_free(tls_conn_t *t);

/* Advances the handshake. 0: done; ENGRAM_EAGAIN: waiting for input;
 * ENGRAM_ECLOSED: the peer closed; ENGRAM_EIO: the handshake failed
 * (version, suite, garbage: close the connection). */
int tls_conn_handshake(tls_conn_t *t);

/* Reads decrypted bytes. Returns the count (> 0), 0 when the peer closed
 * (close_notify or EOF), ENGRAM_EAGAIN when no input is ready, ENGRAM_EIO
 * on a protocol error. */
long tls_conn_read(tls_conn_t *t, void *buf, size_t len);
/* Decrypted bytes already buffered (readable without the socket). */
size_t tls_conn_pending(const tls_conn_t *t);

/* Encrypts data (any length; records of at most TLS_RECORD_MAX) and hands
 * it to the send function. 0 or a negative status. */
int tls_conn_write(tls_conn_t *t, const void *data, size_t len);
/* Queues a close_notify alert (best effort). */
void tls_conn_close_notify(tls_conn_t *t);
/* "TLSv1.2 TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256" after the handshake. */
void tls_conn_describe(const tls_conn_t *t, char *out, size_t outsz);

/* 1 when the first bytes a client sent (n >= 1) look like a plaintext
 * HTTP request line rather than a TLS record (0x16 ...). */
int tls_looks_like_http(const unsigned char *p, size_t n);

#endif
