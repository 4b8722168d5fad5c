/*
 * tls_record.c - TLS 1.2 AEAD records over libsodium (contract in
 * tls_record.h).
 *
 * A record: type (1), version 3,3 (2), length (2), then the fragment. The
 * additional data of every AEAD record is seq (8) | type | version | the
 * plaintext length (2). AES-256-GCM (RFC 5288): the fragment starts with an
 * 8-byte explicit nonce; the nonce is the 4-byte implicit salt followed by
 * it (we send the sequence number, as mbedTLS does, so it never repeats).
 * ChaCha20-Poly1305 (RFC 7905): no explicit nonce; the nonce is the 12-byte
 * implicit IV XORed with the sequence number (big-endian, right-aligned).
 * Both end in a 16-byte tag.
 *
 * Invariant of the input buffer: [0, plain_end) may hold plaintext being
 * handed out (decrypted in place), [in_pos, in_len) raw bytes not yet
 * processed; the buffer is compacted only when no plaintext waits, so a
 * read never moves bytes the caller has not taken.
 */
#include "http/tls_record.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "util/common.h"

#define HDR 5
#define TAG 16
#define EXPLICIT_NONCE 8
#define FRAGMENT_MAX (TLS_RECORD_MAX + EXPLICIT_NONCE + TAG)
#define BUF_CAP (HDR + FRAGMENT_MAX)

enum { CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPDATA = 23 };
enum {
    AL_CLOSE_NOTIFY = 0,
    AL_UNEXPECTED_MESSAGE = 10,
    AL_BAD_RECORD_MAC = 20,
    AL_RECORD_OVERFLOW = 22,
    AL_DECODE_ERROR = 50,
    AL_PROTOCOL_VERSION = 70,
    AL_INTERNAL_ERROR = 80,
    AL_NO_RENEGOTIATION = 100,
};

/* Returned by next_record: what one processed record gave. */
enum { REC_NEED_INPUT = 0, REC_DONE = 1, REC_CLOSED = 2 };

int tls_rec_aead_available(tls_rec_aead_t aead)
{
    if (aead == TLS_REC_CHACHA20_POLY1305) return 1;
    if (aead == TLS_REC_AES256_GCM) return crypto_aead_aes256gcm_is_available();
    return 0;
}

static size_t overhead(const tls_rec_t *r)
{
    return r->aead == TLS_REC_AES256_GCM ? EXPLICIT_NONCE + TAG : TAG;
}

int tls_rec_init(tls_rec_t *r, tls_rec_aead_t aead, const unsigned char read_key[32],
                 const unsigned char *read_iv, const unsigned char write_key[32],
                 const unsigned char *write_iv, uint64_t read_seq, uint64_t write_seq, int fd,
                 tls_send_fn send, void *send_ctx)
{
    if (!r || !read_key || !read_iv || !write_key || !write_iv || !send || fd < 0)
        return ENGRAM_EINVAL;
    if (!tls_rec_aead_available(aead)) return ENGRAM_EINVAL;
    memset(r, 0, sizeof *r);
    r->aead = aead;
    size_t ivlen = aead == TLS_REC_AES256_GCM ? 4 : 12;
    memcpy(r->rkey, read_key, 32);
    memcpy(r->wkey, write_key, 32);
    memcpy(r->riv, read_iv, ivlen);
    memcpy(r->wiv, write_iv, ivlen);
    if (aead == TLS_REC_AES256_GCM) {
        crypto_aead_aes256gcm_beforenm(&r->rstate, r->rkey);
        crypto_aead_aes256gcm_beforenm(&r->wstate, r->wkey);
    }
    r->rseq = read_seq;
    r->wseq = write_seq;
    r->fd = fd;
    r->send = send;
    r->send_ctx = send_ctx;
    return 0;
}

void tls_rec_free(tls_rec_t *r)
{
    if (!r) return;
    eg_free(r->in);
    eg_free(r->out);
    sodium_memzero(r, sizeof *r);
    r->fd = -1;
}

/* The nonce and additional data of record seq. */
static void record_nonce(const tls_rec_t *r, const unsigned char *iv, uint64_t seq,
                         const unsigned char *explicit_nonce, unsigned char nonce[12])
{
    if (r->aead == TLS_REC_AES256_GCM) {
        memcpy(nonce, iv, 4);
        memcpy(nonce + 4, explicit_nonce, EXPLICIT_NONCE);
        return;
    }
    unsigned char s[8];
    be64_put(s, seq);
    memcpy(nonce, iv, 12);
    for (int i = 0; i < 8; i++) nonce[4 + i] ^= s[i];
}

static void record_ad(uint64_t seq, int type, size_t plain_len, unsigned char ad[13])
{
    be64_put(ad, seq);
    ad[8] = (unsigned char)type;
    ad[9] = 3;
    ad[10] = 3;
    ad[11] = (unsigned char)(plain_len >> 8);
    ad[12] = (unsigned char)plain_len;
}

static int write_record(tls_rec_t *r, int type, const unsigned char *p, size_t n)
{
    if (r->failed) return ENGRAM_EIO;
    if (r->wseq == UINT64_MAX) return ENGRAM_EIO; /* RFC 5246 6.1: never wrap */
    if (!r->out && !(r->out = eg_malloc(BUF_CAP))) return ENGRAM_ENOMEM;
    size_t frag = n + overhead(r);
    unsigned char *h = r->out;
    h[0] = (unsigned char)type;
    h[1] = 3;
    h[2] = 3;
    h[3] = (unsigned char)(frag >> 8);
    h[4] = (unsigned char)frag;
    unsigned char nonce[12], ad[13];
    unsigned char *ct = h + HDR;
    if (r->aead == TLS_REC_AES256_GCM) {
        be64_put(ct, r->wseq);
        ct += EXPLICIT_NONCE;
    }
    record_nonce(r, r->wiv, r->wseq, h + HDR, nonce);
    record_ad(r->wseq, type, n, ad);
    if (r->aead == TLS_REC_AES256_GCM)
        crypto_aead_aes256gcm_encrypt_detached_afternm(ct, ct + n, NULL, p, n, ad, sizeof ad, NULL,
                                                      nonce, &r->wstate);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(ct, ct + n, NULL, p, n, ad, sizeof ad,
                                                           NULL, nonce, r->wkey);
    r->wseq++;
    int rc = r->send(r->send_ctx, h, HDR + frag);
    if (rc) r->failed = 1;
    return rc ? ENGRAM_ECLOSED : 0;
}

static void send_alert(tls_rec_t *r, int level, int desc)
{
    unsigned char a[2] = {(unsigned char)level, (unsigned char)desc};
    (void)write_record(r, CT_ALERT, a, sizeof a);
}

/* A fatal protocol error: tell the peer (best effort) and refuse the rest. */
static long fail(tls_rec_t *r, int desc)
{
    send_alert(r, 2, desc);
    r->failed = 1;
    return ENGRAM_EIO;
}

/* Processes the record at in_pos if it is whole. */
static long next_record(tls_rec_t *r)
{
    size_t avail = r->in_len - r->in_pos;
    if (avail < HDR) return REC_NEED_INPUT;
    unsigned char *h = r->in + r->in_pos;
    int type = h[0];
    size_t frag = (size_t)h[3] << 8 | h[4];
    if (h[1] != 3 || h[2] != 3) return fail(r, AL_PROTOCOL_VERSION);
    if (frag > TLS_RECORD_MAX + overhead(r)) return fail(r, AL_RECORD_OVERFLOW);
    if (frag < overhead(r)) return fail(r, AL_DECODE_ERROR);
    if (avail < HDR + frag) return REC_NEED_INPUT;
    if (r->rseq == UINT64_MAX) return fail(r, AL_INTERNAL_ERROR);

    unsigned char *ct = h + HDR;
    size_t n = frag - overhead(r);
    unsigned char nonce[12], ad[13];
    record_nonce(r, r->riv, r->rseq, ct, nonce);
    if (r->aead == TLS_REC_AES256_GCM) ct += EXPLICIT_NONCE;
    record_ad(r->rseq, type, n, ad);
    int bad = r->aead == TLS_REC_AES256_GCM
                  ? crypto_aead_aes256gcm_decrypt_detached_afternm(ct, NULL, ct, n, ct + n, ad,
                                                                   sizeof ad, nonce, &r->rstate)
                  : crypto_aead_chacha20poly1305_ietf_decrypt_detached(ct, NULL, ct, n, ct + n, ad,
                                                                       sizeof ad, nonce, r->rkey);
    if (bad) return fail(r, AL_BAD_RECORD_MAC);
    r->rseq++;
    r->in_pos += HDR + frag;

    switch (type) {
    case CT_APPDATA:
        r->plain_pos = (size_t)(ct - r->in);
        r->plain_end = r->plain_pos + n;
        return REC_DONE;
    case CT_ALERT:
        if (n != 2) return fail(r, AL_DECODE_ERROR);
        if (ct[1] == AL_CLOSE_NOTIFY || ct[0] == 2) {
            /* close_notify, or the peer's fatal alert: nothing more comes. */
            r->closed = 1;
            return ct[0] == 2 && ct[1] != AL_CLOSE_NOTIFY ? (r->failed = 1, ENGRAM_EIO)
                                                          : REC_CLOSED;
        }
        return REC_DONE; /* a warning: ignored */
    case CT_HANDSHAKE:
        /* A ClientHello asking to renegotiate: refused, the connection
         * goes on (RFC 5746 3.7 leaves the choice to the server). */
        send_alert(r, 1, AL_NO_RENEGOTIATION);
        return REC_DONE;
    default:
        return fail(r, AL_UNEXPECTED_MESSAGE);
    }
}

long tls_rec_read(tls_rec_t *r, void *buf, size_t len)
{
    if (!r || !buf || len == 0) return ENGRAM_EINVAL;
    if (r->failed) return ENGRAM_EIO;
    for (;;) {
        if (r->plain_pos < r->plain_end) {
            size_t n = r->plain_end - r->plain_pos;
            if (n > len) n = len;
            memcpy(buf, r->in + r->plain_pos, n);
            r->plain_pos += n;
            return (long)n;
        }
        if (r->closed) return 0;
        long rc = next_record(r);
        if (rc == REC_CLOSED) return 0;
        if (rc < 0) return rc;
        if (rc == REC_DONE) continue;

        if (!r->in && !(r->in = eg_malloc(BUF_CAP))) return ENGRAM_ENOMEM;
        if (r->in_pos > 0) { /* no plaintext waits here: compact */
            memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
            r->in_len -= r->in_pos;
            r->in_pos = 0;
            r->plain_pos = r->plain_end = 0;
        }
        ssize_t got = recv(r->fd, r->in + r->in_len, BUF_CAP - r->in_len, MSG_DONTWAIT);
        if (got > 0) {
            r->in_len += (size_t)got;
            continue;
        }
        if (got == 0) {
            r->closed = 1; /* EOF without close_notify: a truncation, reported as the end */
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return ENGRAM_EAGAIN;
        if (errno == ECONNRESET || errno == EPIPE) {
            r->closed = 1;
            return 0;
        }
        r->failed = 1;
        return ENGRAM_EIO;
    }
}

int tls_rec_pending(const tls_rec_t *r)
{
    if (!r || r->failed) return 0;
    if (r->plain_pos < r->plain_end) return 1;
    size_t avail = r->in_len - r->in_pos;
    if (avail < HDR) return 0;
    const unsigned char *h = r->in + r->in_pos;
    return avail >= HDR + ((size_t)h[3] << 8 | h[4]);
}

int tls_rec_write(tls_rec_t *r, const void *data, size_t len)
{
    if (!r || (!data && len)) return ENGRAM_EINVAL;
    const unsigned char *p = data;
    while (len > 0) {
        size_t n = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
        int rc = write_record(r, CT_APPDATA, p, n);
        if (rc) return rc;
        p += n;
        len -= n;
    }
    return 0;
}

void tls_rec_close_notify(tls_rec_t *r)
{
    if (r && !r->failed) send_alert(r, 1, AL_CLOSE_NOTIFY);
}
