/*
 * test_tls_record.c - the libsodium record layer (src/http/tls_record.c)
 * against itself: one side's records, captured from its send function, are
 * fed to the other side's socket whole, byte by byte, tampered with,
 * replayed or malformed. Interoperation with real clients (OpenSSL, curl,
 * Python) is tested in tests/integration/test_tls.py.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/tls_record.h"
#include "test.h"
#include "util/common.h"

typedef struct {
    unsigned char *p;
    size_t len, cap;
} capture_t;

static int capture_send(void *ctx, const unsigned char *p, size_t n)
{
    capture_t *c = ctx;
    if (c->len + n > c->cap) {
        size_t cap = (c->len + n) * 2;
        unsigned char *np = realloc(c->p, cap);
        if (!np) return ENGRAM_ENOMEM;
        c->p = np;
        c->cap = cap;
    }
    memcpy(c->p + c->len, p, n);
    c->len += n;
    return 0;
}

/* Two ends: srv writes into cap_srv (its records for the peer), peer reads
 * from fds[1] what the test writes into fds[0]; and the other way round. */
typedef struct {
    tls_rec_t srv, peer;
    capture_t cap_srv, cap_peer;
    int srv_fds[2], peer_fds[2]; /* [0]: the test writes, [1]: the end reads */
} pair_t;

static const unsigned char KEY_C[32] = "client write key, 32 bytes long";
static const unsigned char KEY_S[32] = "server write key, 32 bytes long";
static const unsigned char IV_C[12] = "client iv 1";
static const unsigned char IV_S[12] = "server iv 2";

static int pair_open(pair_t *p, tls_rec_aead_t aead)
{
    memset(p, 0, sizeof *p);
    if (sodium_init() < 0) return -1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->srv_fds) || socketpair(AF_UNIX, SOCK_STREAM, 0, p->peer_fds))
        return -1;
    /* Sequence numbers as after a handshake: one Finished each way. */
    if (tls_rec_init(&p->srv, aead, KEY_C, IV_C, KEY_S, IV_S, 1, 1, p->srv_fds[1], capture_send,
                     &p->cap_srv))
        return -1;
    if (tls_rec_init(&p->peer, aead, KEY_S, IV_S, KEY_C, IV_C, 1, 1, p->peer_fds[1], capture_send,
                     &p->cap_peer))
        return -1;
    return 0;
}

static void pair_close(pair_t *p)
{
    tls_rec_free(&p->srv);
    tls_rec_free(&p->peer);
    free(p->cap_srv.p);
    free(p->cap_peer.p);
    for (int i = 0; i < 2; i++) {
        close(p->srv_fds[i]);
        close(p->peer_fds[i]);
    }
}

static void feed(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) { perror("write"); exit(2); }
        p += w;
        n -= (size_t)w;
    }
}

/* Reads everything readable into out (up to cap); the last status in *last. */
static size_t drain(tls_rec_t *r, unsigned char *out, size_t cap, long *last)
{
    size_t got = 0;
    for (;;) {
        long n = tls_rec_read(r, out + got, cap - got);
        *last = n;
        if (n <= 0) return got;
        got += (size_t)n;
        if (got == cap) return got;
    }
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 31 + i / 251); }

static void roundtrip(tls_rec_aead_t aead, size_t total, int byte_by_byte)
{
    REQUIRE(sodium_init() >= 0);
    if (!tls_rec_aead_available(aead)) {
        fprintf(stderr, "  AEAD %d not available on this CPU: checked as refused\n", aead);
        pair_t p;
        CHECK(pair_open(&p, aead) != 0);
        return;
    }
    pair_t p;
    REQUIRE(pair_open(&p, aead) == 0);
    unsigned char *msg = malloc(total), *got = malloc(total + 1);
    REQUIRE(msg && got);
    for (size_t i = 0; i < total; i++) msg[i] = pattern(i);
    REQUIRE(tls_rec_write(&p.srv, msg, total) == 0);
    size_t records = (total + TLS_RECORD_MAX - 1) / TLS_RECORD_MAX;
    size_t per = aead == TLS_REC_AES256_GCM ? 5 + 8 + 16 : 5 + 16;
    CHECK_EQ_INT(p.cap_srv.len, total + records * per);
    if (total >= 64) /* the plaintext does not travel in the clear */
        CHECK(memcmp(p.cap_srv.p + 5 + (aead == TLS_REC_AES256_GCM ? 8 : 0), msg, 64) != 0);
    size_t have = 0;
    long last = 0;
    if (byte_by_byte) {
        for (size_t i = 0; i < p.cap_srv.len; i++) {
            feed(p.peer_fds[0], p.cap_srv.p + i, 1);
            have += drain(&p.peer, got + have, total + 1 - have, &last);
            if (have < total) CHECK_EQ_INT(last, ENGRAM_EAGAIN);
        }
    } else {
        feed(p.peer_fds[0], p.cap_srv.p, p.cap_srv.len);
        have = drain(&p.peer, got, total + 1, &last);
        CHECK_EQ_INT(last, ENGRAM_EAGAIN);
    }
    CHECK_EQ_INT(have, total);
    CHECK(memcmp(got, msg, total) == 0);
    CHECK_EQ_INT(p.peer.rseq, 1 + records);
    CHECK(!tls_rec_pending(&p.peer));
    free(msg);
    free(got);
    pair_close(&p);
}

TEST(chacha_roundtrip_whole) { roundtrip(TLS_REC_CHACHA20_POLY1305, 100000, 0); }
TEST(aes_roundtrip_whole) { roundtrip(TLS_REC_AES256_GCM, 100000, 0); }
TEST(chacha_roundtrip_byte_by_byte) { roundtrip(TLS_REC_CHACHA20_POLY1305, 40000, 1); }
TEST(aes_roundtrip_byte_by_byte) { roundtrip(TLS_REC_AES256_GCM, 40000, 1); }
TEST(small_records) { roundtrip(TLS_REC_CHACHA20_POLY1305, 1, 0); }
TEST(exact_record_size) { roundtrip(TLS_REC_AES256_GCM, TLS_RECORD_MAX, 0); }

TEST(pending_counts_whole_records_only)
{
    pair_t p;
    REQUIRE(pair_open(&p, TLS_REC_CHACHA20_POLY1305) == 0);
    REQUIRE(tls_rec_write(&p.srv, "one", 3) == 0);
    REQUIRE(tls_rec_write(&p.srv, "two", 3) == 0);
    size_t first = p.cap_srv.len / 2;
    feed(p.peer_fds[0], p.cap_srv.p, first + 4); /* first record and part of the second */
    char buf[3];
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, 3), 3);
    CHECK(memcmp(buf, "one", 3) == 0);
    CHECK(!tls_rec_pending(&p.peer));
    feed(p.peer_fds[0], p.cap_srv.p + first + 4, p.cap_srv.len - first - 4);
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, 1), 1); /* reads the socket, one byte out */
    CHECK(tls_rec_pending(&p.peer));              /* two more decrypted bytes wait */
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf + 1, 2), 2);
    CHECK(memcmp(buf, "two", 3) == 0);
    pair_close(&p);
}

/* The peer's answer to a bad record: a fatal alert the server decodes. */
static void check_fatal_alert(pair_t *p, long want_read)
{
    CHECK_EQ_INT(want_read, ENGRAM_EIO);
    CHECK(p->cap_peer.len > 0);
    feed(p->srv_fds[0], p->cap_peer.p, p->cap_peer.len);
    char buf[8];
    CHECK_EQ_INT(tls_rec_read(&p->srv, buf, sizeof buf), ENGRAM_EIO); /* fatal alert received */
    CHECK_EQ_INT(tls_rec_read(&p->peer, buf, sizeof buf), ENGRAM_EIO); /* stays failed */
    CHECK_EQ_INT(tls_rec_write(&p->peer, "x", 1), ENGRAM_EIO);
}

static void tamper_at(size_t at)
{
    pair_t p;
    REQUIRE(pair_open(&p, TLS_REC_AES256_GCM) == 0);
    REQUIRE(tls_rec_write(&p.srv, "a secret request", 16) == 0);
    REQUIRE(at < p.cap_srv.len);
    p.cap_srv.p[at] ^= 0x01;
    feed(p.peer_fds[0], p.cap_srv.p, p.cap_srv.len);
    char buf[32];
    check_fatal_alert(&p, tls_rec_read(&p.peer, buf, sizeof buf));
    pair_close(&p);
}

TEST(flipped_ciphertext_bit_refused) { tamper_at(5 + 8 + 3); }
TEST(flipped_explicit_nonce_refused) { tamper_at(5 + 2); }
TEST(flipped_tag_refused) { tamper_at(5 + 8 + 16 + 15); }
TEST(changed_record_type_refused) { tamper_at(0); } /* type is in the additional data */

TEST(replayed_record_refused)
{
    pair_t p;
    REQUIRE(pair_open(&p, TLS_REC_CHACHA20_POLY1305) == 0);
    REQUIRE(tls_rec_write(&p.srv, "GET / once", 10) == 0);
    feed(p.peer_fds[0], p.cap_srv.p, p.cap_srv.len);
    feed(p.peer_fds[0], p.cap_srv.p, p.cap_srv.len); /* the same record again */
    char buf[32];
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, sizeof buf), 10);
    check_fatal_alert(&p, tls_rec_read(&p.peer, buf, sizeof buf));
    pair_close(&p);
}

static void malformed(const unsigned char *hdr, size_t n)
{
    pair_t p;
    REQUIRE(pair_open(&p, TLS_REC_CHACHA20_POLY1305) == 0);
    feed(p.peer_fds[0], hdr, n);
    char buf[32];
    check_fatal_alert(&p, tls_rec_read(&p.peer, buf, sizeof buf));
    pair_close(&p);
}

TEST(wrong_version_refused)
{
    static const unsigned char h[] = {23, 3, 1, 0, 20};
    malformed(h, sizeof h);
}
TEST(oversized_record_refused)
{
    /* 16384 + 16 is the most a ChaCha20-Poly1305 record may carry. */
    static const unsigned char h[] = {23, 3, 3, 0x40, 0x11};
    malformed(h, sizeof h);
}
TEST(record_shorter_than_its_tag_refused)
{
    static const unsigned char h[] = {23, 3, 3, 0, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    malformed(h, sizeof h);
}

TEST(close_notify_ends_reading)
{
    pair_t p;
    REQUIRE(pair_open(&p, TLS_REC_AES256_GCM) == 0);
    REQUIRE(tls_rec_write(&p.srv, "last words", 10) == 0);
    tls_rec_close_notify(&p.srv);
    feed(p.peer_fds[0], p.cap_srv.p, p.cap_srv.len);
    char buf[32];
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, sizeof buf), 10);
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, sizeof buf), 0);
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, sizeof buf), 0);
    CHECK_EQ_INT(p.cap_peer.len, 0); /* nothing was sent back */
    pair_close(&p);
}

TEST(eof_and_nothing_ready)
{
    pair_t p;
    REQUIRE(pair_open(&p, TLS_REC_CHACHA20_POLY1305) == 0);
    char buf[8];
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, sizeof buf), ENGRAM_EAGAIN);
    close(p.peer_fds[0]);
    p.peer_fds[0] = -1;
    CHECK_EQ_INT(tls_rec_read(&p.peer, buf, sizeof buf), 0);
    pair_close(&p);
}

TEST(bad_arguments)
{
    tls_rec_t r;
    CHECK_EQ_INT(tls_rec_init(&r, 0, KEY_C, IV_C, KEY_S, IV_S, 0, 0, 0, capture_send, NULL),
                 ENGRAM_EINVAL);
    CHECK_EQ_INT(tls_rec_init(&r, TLS_REC_CHACHA20_POLY1305, NULL, IV_C, KEY_S, IV_S, 0, 0, 0,
                              capture_send, NULL), ENGRAM_EINVAL);
    CHECK_EQ_INT(tls_rec_read(NULL, &r, 1), ENGRAM_EINVAL);
}
