/*
 * tls_record.h - the TLS 1.2 record layer of an established connection,
 * carried by libsodium's AEAD ciphers instead of mbedTLS's.
 *
 * Why: mbedTLS 2.28 (the only mbedTLS Debian 12 has) encrypts records with
 * portable C at about 160-250 MB/s per core; libsodium's ChaCha20-Poly1305
 * and AES-256-GCM run several times faster (docs/TLS.md). mbedTLS still does
 * the whole handshake; tls.c then hands the negotiated keys, the implicit
 * IVs and both sequence numbers to a tls_rec_t, and every later record -
 * application data, alerts - goes through this file (RFC 5246 6.2, RFC 5288
 * for AES-GCM, RFC 7905 for ChaCha20-Poly1305).
 *
 * Reading: raw bytes are read from the socket into one buffer that holds a
 * whole record of the largest size an AEAD record may have; a complete
 * record is authenticated and decrypted in place, and its plaintext is
 * handed out from there. A renegotiation attempt (an encrypted handshake
 * message) is answered with a warning no_renegotiation alert; a record that
 * fails authentication, an unknown type, a wrong version or an oversized
 * record ends the connection with a fatal alert (ENGRAM_EIO).
 *
 * Writing: plaintext of any length is cut into records of at most
 * TLS_RECORD_MAX bytes, each encrypted into the connection's output buffer
 * and handed to the send function (which takes every byte, see tls.h).
 *
 * Thread-safety: one thread at a time per tls_rec_t (its connection's
 * owner). Memory: two buffers of about 16.4 KB, allocated at first use.
 */
#ifndef ENGRAM_HTTP_TLS_RECORD_H
#define ENGRAM_HTTP_TLS_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "http/tls.h"

typedef enum {
    TLS_REC_CHACHA20_POLY1305 = 1, /* key 32, implicit IV 12 (XORed with the sequence) */
    TLS_REC_AES256_GCM = 2,        /* key 32, implicit salt 4 + explicit nonce 8 */
} tls_rec_aead_t;

typedef struct tls_rec {
    crypto_aead_aes256gcm_state wstate, rstate; /* expanded AES keys (AES-256-GCM) */
    unsigned char wkey[32], rkey[32];
    unsigned char wiv[12], riv[12];
    tls_rec_aead_t aead;
    uint64_t wseq, rseq;
    int fd;
    tls_send_fn send;
    void *send_ctx;
    unsigned char *in;            /* raw records from the socket */
    size_t in_pos, in_len;        /* [in_pos, in_len): not yet processed */
    size_t plain_pos, plain_end;  /* decrypted bytes waiting, inside in[] */
    unsigned char *out;           /* one encrypted record */
    int closed;                   /* peer's close_notify or EOF seen */
    int failed;                   /* a fatal error: every later call fails */
} tls_rec_t;

/* 1 when this CPU can run the AEAD (AES-256-GCM needs AES-NI and PCLMUL;
 * ChaCha20-Poly1305 runs everywhere). sodium_init() must have run. */
int tls_rec_aead_available(tls_rec_aead_t aead);

/* Sets up r for the server side of an established connection: read_* are
 * the client's write key and IV, write_* the server's, the sequence numbers
 * the next ones each direction expects. Key material is copied (and wiped
 * by tls_rec_free). fd is read with non-blocking recv; send as in tls.h.
 * 0, or ENGRAM_EINVAL for an unknown AEAD or one the CPU lacks. */
int tls_rec_init(tls_rec_t *r, tls_rec_aead_t aead, const unsigned char read_key[32],
                 const unsigned char *read_iv, const unsigned char write_key[32],
                 const unsigned char *write_iv, uint64_t read_seq, uint64_t write_seq, int fd,
                 tls_send_fn send, void *send_ctx);
/* Wipes the keys and frees the buffers; r may then be set up again. */
void tls_rec_free(tls_rec_t *r);

/* As tls_conn_read: > 0 bytes, 0 when the peer closed (close_notify, EOF,
 * reset), ENGRAM_EAGAIN when no whole record is ready, ENGRAM_EIO on a
 * protocol error (a fatal alert was queued), ENGRAM_ENOMEM. */
long tls_rec_read(tls_rec_t *r, void *buf, size_t len);
/* 1 when a read can make progress without the socket: decrypted bytes or
 * a whole record are buffered. */
int tls_rec_pending(const tls_rec_t *r);
/* As tls_conn_write. */
int tls_rec_write(tls_rec_t *r, const void *data, size_t len);
/* Queues a close_notify alert (best effort). */
void tls_rec_close_notify(tls_rec_t *r);

#endif
