/*
 * fuzz_tls_record.c - libFuzzer target for the libsodium TLS record layer
 * (http/tls_record.c), the part of HTTPS that parses what a client sends
 * after the handshake.
 *
 * Random bytes would never pass the records' authentication, so the input
 * is a script that builds the byte stream a client could send: records
 * encrypted here with the connection's keys (any type, any length up to a
 * little over the limit, optionally with a wrong sequence number), raw
 * bytes, and bit flips in what was built so far. The stream is read by the
 * record layer twice - fed whole, and fed in pieces whose sizes come from
 * the input - and both reads must hand out the same plaintext and end with
 * the same status. A crash, a sanitizer report, a leak or a difference is a
 * finding.
 *
 * Script: one byte op, then op-specific bytes:
 *   op % 4 == 0  record:  type (1), seq delta (1: 0 = the right one), len (2), len bytes
 *   op % 4 == 1  raw:     len (1), len bytes
 *   op % 4 == 2  flip:    offset (2), bit (1), applied to the stream so far
 *   op % 4 == 3  piece:   size (1), a piece size for the second feeding
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/tls_record.h"
#include "util/buf.h"
#include "util/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char KEY[32] = "fuzzing key, thirty-two bytes!!";
static const unsigned char IV[12] = "fuzzing iv!";

static int no_send(void *ctx, const unsigned char *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return 0;
}

/* The reference encoder: one ChaCha20-Poly1305 record as a client sends it. */
static void encrypt_record(buf_t *out, int type, uint64_t seq, const unsigned char *p, size_t n)
{
    unsigned char hdr[5] = {(unsigned char)type, 3, 3, (unsigned char)((n + 16) >> 8),
                            (unsigned char)(n + 16)};
    unsigned char ad[13], nonce[12], s[8];
    be64_put(ad, seq);
    ad[8] = (unsigned char)type;
    ad[9] = ad[10] = 3;
    ad[11] = (unsigned char)(n >> 8);
    ad[12] = (unsigned char)n;
    be64_put(s, seq);
    memcpy(nonce, IV, 12);
    for (int i = 0; i < 8; i++) nonce[4 + i] ^= s[i];
    buf_append(out, hdr, sizeof hdr);
    if (buf_reserve(out, n + 16)) return;
    unsigned char *c = (unsigned char *)out->data + out->len;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(c, c + n, NULL, p, n, ad, sizeof ad, NULL,
                                                       nonce, KEY);
    out->len += n + 16;
}

/* Feeds stream to a fresh record layer in pieces (sizes cycling through
 * pieces[], whole when npieces is 0), reading after each; the plaintext into
 * plain, the last status returned. */
static long feed_and_read(const buf_t *stream, const unsigned char *pieces, size_t npieces,
                          buf_t *plain)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds)) abort();
    int big = 1 << 20;
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    tls_rec_t r;
    if (tls_rec_init(&r, TLS_REC_CHACHA20_POLY1305, KEY, IV, KEY, IV, 0, 0, fds[1], no_send, NULL))
        abort();
    long last = ENGRAM_EAGAIN;
    size_t off = 0, k = 0;
    unsigned char tmp[5000];
    while (off < stream->len && (last == ENGRAM_EAGAIN || last > 0)) {
        size_t n = stream->len - off;
        if (npieces) {
            size_t want = (size_t)pieces[k++ % npieces] * 97 + 1;
            if (want < n) n = want;
        }
        if (write(fds[0], stream->data + off, n) != (ssize_t)n) abort();
        off += n;
        while ((last = tls_rec_read(&r, tmp, sizeof tmp)) > 0) buf_append(plain, tmp, (size_t)last);
    }
    tls_rec_free(&r);
    close(fds[0]);
    close(fds[1]);
    return last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0) abort();
    if (size > 40000) return 0;
    buf_t stream = BUF_INIT;
    unsigned char pieces[64];
    size_t npieces = 0;
    uint64_t seq = 0;
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++];
        if (op % 4 == 0 && i + 4 <= size) {
            int type = data[i];
            uint64_t s = seq + data[i + 1];
            size_t n = (size_t)data[i + 2] << 8 | data[i + 3];
            i += 4;
            if (n > TLS_RECORD_MAX + 64) n = TLS_RECORD_MAX + 64;
            if (n > size - i) n = size - i;
            encrypt_record(&stream, type, s, data + i, n);
            i += n;
            seq++;
        } else if (op % 4 == 1 && i + 1 <= size) {
            size_t n = data[i++];
            if (n > size - i) n = size - i;
            buf_append(&stream, data + i, n);
            i += n;
        } else if (op % 4 == 2 && i + 3 <= size) {
            size_t at = (size_t)data[i] << 8 | data[i + 1];
            if (stream.len) stream.data[at % stream.len] ^= (char)(1u << (data[i + 2] % 8));
            i += 3;
        } else if (op % 4 == 3 && i + 1 <= size) {
            if (npieces < sizeof pieces) pieces[npieces++] = data[i];
            i++;
        } else {
            break;
        }
    }
    if (npieces == 0) pieces[npieces++] = 3; /* 292-byte pieces */
    buf_t a = BUF_INIT, b = BUF_INIT;
    long ra = feed_and_read(&stream, NULL, 0, &a);
    long rb = feed_and_read(&stream, pieces, npieces, &b);
    if (ra != rb || a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))) abort();
    buf_free(&a);
    buf_free(&b);
    buf_free(&stream);
    return 0;
}
