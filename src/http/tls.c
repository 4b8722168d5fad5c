/*
 * tls.c - HTTPS through mbedTLS 2.28: shared configuration, per-connection
 * record layer, entropy. Contract in tls.h.
 *
 * Policy, set explicitly rather than inherited from the library's build
 * (Debian's 2.28 allows TLS 1.0 and CBC suites by default):
 *   - protocol: TLS 1.2 exactly (min and max); 2.28 has no TLS 1.3 server;
 *   - suites: ECDHE key exchange with an AEAD cipher only (AES-GCM,
 *     ChaCha20-Poly1305), for RSA and ECDSA certificates;
 *   - curves: X25519, P-256, P-384;
 *   - renegotiation disabled (and legacy renegotiation refused);
 *   - no client certificates.
 *
 * Entropy: an mbedtls_entropy context with our own getrandom() source marked
 * strong (works in an empty chroot, where /dev/urandom does not exist; the
 * static build also compiles mbedTLS with MBEDTLS_NO_PLATFORM_ENTROPY so the
 * library's own /dev/urandom poll is not used), feeding one CTR_DRBG seeded
 * once at tls_server_create. The DRBG is shared by every connection and
 * guarded by a mutex: handshakes run on the loop thread but ciphers that
 * draw per-record randomness could run on workers.
 *
 * I/O: mbedTLS calls bio_recv (non-blocking recv on the socket) and bio_send
 * (the caller's function, which never refuses bytes), see tls.h.
 */
#include "http/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/entropy_poll.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crt.h>
#if defined(MBEDTLS_SSL_CACHE_C)
#include <mbedtls/ssl_cache.h>
#endif

#include "http/tls_record.h"
#include "util/common.h"
#include "util/log.h"

struct tls_server {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    pthread_mutex_t drbg_mu;
    mbedtls_x509_crt chain;
    mbedtls_pk_context key;
    mbedtls_ssl_config conf;
#if defined(MBEDTLS_SSL_CACHE_C)
    mbedtls_ssl_cache_context cache;
#endif
    int inited;
    atomic_ullong handshakes, fast_records; /* tls_server_counts */
};

/* Key material mbedTLS derived for a connection (export_keys), kept until
 * the handshake ends and the record layer is chosen. */
typedef struct {
    int ok;
    size_t ivlen;
    unsigned char ckey[32], skey[32], civ[12], siv[12];
} conn_keys_t;

struct tls_conn {
    mbedtls_ssl_context ssl; /* freed once records move to rec */
    tls_server_t *ts;
    int fd;
    tls_send_fn send;
    void *send_ctx;
    int fast;                /* 1: records through rec (tls_record.c) */
    tls_rec_t rec;
    conn_keys_t keys;
    const char *version, *suite; /* static strings, for tls_conn_describe */
};

/* The connection whose handshake runs on this thread: mbedTLS's key export
 * callback is configured once for all connections and only says which by
 * the thread it runs on (handshakes call it synchronously). */
static __thread tls_conn_t *handshaking;

/* ECDHE + AEAD only, in the server's order of preference (mbedTLS picks the
 * first of these the client offers). The suites whose records libsodium
 * carries come first (tls_record.h): AES-256-GCM where the CPU has AES-NI
 * and PCLMUL (about 1.2 GB/s per core on the development machine against
 * 0.75 GB/s for ChaCha20-Poly1305), then ChaCha20-Poly1305; AES-128-GCM,
 * which libsodium lacks, last, on mbedTLS's records. */
static const int suites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    0,
};
/* Without AES-NI/PCLMUL both AES suites stay on mbedTLS (AES-128 is the
 * cheaper there): ChaCha20-Poly1305 first. */
static const int suites_no_aesni[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

static const mbedtls_ecp_group_id curves[] = {
    MBEDTLS_ECP_DP_CURVE25519,
    MBEDTLS_ECP_DP_SECP256R1,
    MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

const char *tls_library_version(void)
{
    return "mbedTLS " MBEDTLS_VERSION_STRING;
}

/* ------------------------------------------------------------ entropy */

static int entropy_getrandom(void *data, unsigned char *out, size_t len, size_t *olen)
{
    (void)data;
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            *olen = got;
            return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
        }
        got += (size_t)n;
    }
    *olen = got;
    return 0;
}

#if defined(MBEDTLS_ENTROPY_HARDWARE_ALT)
/* The static build (tools/static/build.sh) compiles mbedTLS without its
 * platform source, which would read /dev/urandom (absent in an empty
 * chroot), and with this hook instead: every mbedtls_entropy context of the
 * process - ours and libcurl's - then polls getrandom(). */
int mbedtls_hardware_poll(void *data, unsigned char *output, size_t len, size_t *olen)
{
    return entropy_getrandom(data, output, len, olen);
}
#endif

static int rng_locked(void *p, unsigned char *out, size_t len)
{
    tls_server_t *ts = p;
    pthread_mutex_lock(&ts->drbg_mu);
    int rc = mbedtls_ctr_drbg_random(&ts->drbg, out, len);
    pthread_mutex_unlock(&ts->drbg_mu);
    return rc;
}

/* ------------------------------------------------------------ key export */

/* Called by mbedTLS when it derives a connection's keys (full and resumed
 * handshakes alike). The key block of an AEAD suite is: client key, server
 * key, client IV, server IV (no MAC keys). Anything else - AES-128 keys,
 * MAC keys - is left to mbedTLS's own records. */
static int export_keys(void *p, const unsigned char *master, const unsigned char *kb,
                       size_t maclen, size_t keylen, size_t ivlen,
                       const unsigned char client_random[32], const unsigned char server_random[32],
                       mbedtls_tls_prf_types prf)
{
    (void)p, (void)master, (void)client_random, (void)server_random, (void)prf;
    tls_conn_t *t = handshaking;
    if (!t) return 0;
    conn_keys_t *k = &t->keys;
    k->ok = 0;
    if (maclen != 0 || keylen != 32 || (ivlen != 4 && ivlen != 12)) return 0;
    memcpy(k->ckey, kb, 32);
    memcpy(k->skey, kb + 32, 32);
    memcpy(k->civ, kb + 64, ivlen);
    memcpy(k->siv, kb + 64 + ivlen, ivlen);
    k->ivlen = ivlen;
    k->ok = 1;
    return 0;
}

/* ------------------------------------------------------- configuration */

static void describe_error(int ret, char *out, size_t outsz)
{
    char msg[160];
    mbedtls_strerror(ret, msg, sizeof msg);
    snprintf(out, outsz, "%s (mbedTLS -0x%04x)", msg, (unsigned)-ret);
}

static int load_files(tls_server_t *ts, const char *cert_path, const char *key_path, char *err,
                      size_t errsz)
{
    char why[200];
    if (access(cert_path, R_OK) != 0) {
        snprintf(err, errsz, "cannot read --tls-cert %s: %s", cert_path, strerror(errno));
        return ENGRAM_EINVAL;
    }
    if (access(key_path, R_OK) != 0) {
        snprintf(err, errsz, "cannot read --tls-key %s: %s", key_path, strerror(errno));
        return ENGRAM_EINVAL;
    }
    int ret = mbedtls_x509_crt_parse_file(&ts->chain, cert_path);
    if (ret != 0) {
        if (ret > 0) snprintf(why, sizeof why, "%d certificate(s) in it could not be parsed", ret);
        else describe_error(ret, why, sizeof why);
        snprintf(err, errsz, "--tls-cert %s is not a usable PEM certificate: %s", cert_path, why);
        return ENGRAM_EINVAL;
    }
    ret = mbedtls_pk_parse_keyfile(&ts->key, key_path, NULL);
    if (ret != 0) {
        describe_error(ret, why, sizeof why);
        snprintf(err, errsz, "--tls-key %s is not a usable PEM private key (unencrypted): %s",
                 key_path, why);
        return ENGRAM_EINVAL;
    }
    if (mbedtls_pk_check_pair(&ts->chain.pk, &ts->key) != 0) {
        snprintf(err, errsz, "--tls-key %s does not belong to the certificate in --tls-cert %s",
                 key_path, cert_path);
        return ENGRAM_EINVAL;
    }
    mbedtls_pk_type_t kt = mbedtls_pk_get_type(&ts->key);
    if (kt != MBEDTLS_PK_RSA && kt != MBEDTLS_PK_ECKEY && kt != MBEDTLS_PK_ECDSA) {
        snprintf(err, errsz, "--tls-key %s: only RSA and ECDSA keys are supported", key_path);
        return ENGRAM_EINVAL;
    }
    return 0;
}

int tls_server_create(const char *cert_path, const char *key_path, tls_server_t **out, char *err,
                      size_t errsz)
{
    if (!out || !err || errsz == 0) return ENGRAM_EINVAL;
    *out = NULL;
    err[0] = '\0';
    if (!cert_path || !cert_path[0] || !key_path || !key_path[0]) {
        snprintf(err, errsz, "HTTPS needs both --tls-cert and --tls-key");
        return ENGRAM_EINVAL;
    }
    tls_server_t *ts = eg_calloc(1, sizeof *ts);
    if (!ts) {
        snprintf(err, errsz, "out of memory");
        return ENGRAM_ENOMEM;
    }
    mbedtls_entropy_init(&ts->entropy);
    mbedtls_ctr_drbg_init(&ts->drbg);
    pthread_mutex_init(&ts->drbg_mu, NULL);
    mbedtls_x509_crt_init(&ts->chain);
    mbedtls_pk_init(&ts->key);
    mbedtls_ssl_config_init(&ts->conf);
#if defined(MBEDTLS_SSL_CACHE_C)
    mbedtls_ssl_cache_init(&ts->cache);
#endif
    ts->inited = 1;
    char why[200];
    if (sodium_init() < 0) {
        snprintf(err, errsz, "cannot initialise libsodium");
        tls_server_free(ts);
        return ENGRAM_EIO;
    }
    int rc = 0;

    int ret = mbedtls_entropy_add_source(&ts->entropy, entropy_getrandom, NULL, 32,
                                         MBEDTLS_ENTROPY_SOURCE_STRONG);
    static const unsigned char pers[] = "engram https";
    if (ret == 0)
        ret = mbedtls_ctr_drbg_seed(&ts->drbg, mbedtls_entropy_func, &ts->entropy, pers,
                                    sizeof pers - 1);
    if (ret != 0) {
        describe_error(ret, why, sizeof why);
        snprintf(err, errsz, "cannot seed the random generator: %s", why);
        rc = ENGRAM_EIO;
        goto fail;
    }
    if ((rc = load_files(ts, cert_path, key_path, err, errsz))) goto fail;

    ret = mbedtls_ssl_config_defaults(&ts->conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
                                      MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0) {
        describe_error(ret, why, sizeof why);
        snprintf(err, errsz, "cannot configure TLS: %s", why);
        rc = ENGRAM_EIO;
        goto fail;
    }
    mbedtls_ssl_conf_rng(&ts->conf, rng_locked, ts);
    mbedtls_ssl_conf_min_version(&ts->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(&ts->conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(&ts->conf, tls_rec_aead_available(TLS_REC_AES256_GCM)
                                                 ? suites : suites_no_aesni);
    mbedtls_ssl_conf_export_keys_ext_cb(&ts->conf, export_keys, NULL);
    mbedtls_ssl_conf_curves(&ts->conf, curves);
#if defined(MBEDTLS_SSL_RENEGOTIATION)
    mbedtls_ssl_conf_renegotiation(&ts->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
#endif
    mbedtls_ssl_conf_legacy_renegotiation(&ts->conf, MBEDTLS_SSL_LEGACY_NO_RENEGOTIATION);
    mbedtls_ssl_conf_authmode(&ts->conf, MBEDTLS_SSL_VERIFY_NONE);
#if defined(MBEDTLS_SSL_CACHE_C)
    mbedtls_ssl_conf_session_cache(&ts->conf, &ts->cache, mbedtls_ssl_cache_get,
                                   mbedtls_ssl_cache_set);
#endif
    ret = mbedtls_ssl_conf_own_cert(&ts->conf, &ts->chain, &ts->key);
    if (ret != 0) {
        describe_error(ret, why, sizeof why);
        snprintf(err, errsz, "cannot use the certificate: %s", why);
        rc = ENGRAM_EIO;
        goto fail;
    }
    *out = ts;
    return 0;
fail:
    tls_server_free(ts);
    return rc;
}

void tls_server_counts(tls_server_t *ts, uint64_t *handshakes, uint64_t *fast_records)
{
    *handshakes = ts ? atomic_load(&ts->handshakes) : 0;
    *fast_records = ts ? atomic_load(&ts->fast_records) : 0;
}

void tls_server_free(tls_server_t *ts)
{
    if (!ts) return;
    if (ts->inited) {
#if defined(MBEDTLS_SSL_CACHE_C)
        mbedtls_ssl_cache_free(&ts->cache);
#endif
        mbedtls_ssl_config_free(&ts->conf);
        mbedtls_pk_free(&ts->key);
        mbedtls_x509_crt_free(&ts->chain);
        mbedtls_ctr_drbg_free(&ts->drbg);
        mbedtls_entropy_free(&ts->entropy);
        pthread_mutex_destroy(&ts->drbg_mu);
    }
    eg_free(ts);
}

/* --------------------------------------------------------- connections */

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    tls_conn_t *t = ctx;
    if (len > (size_t)INT32_MAX) len = (size_t)INT32_MAX;
    return t->send(t->send_ctx, buf, len) == 0 ? (int)len : MBEDTLS_ERR_NET_SEND_FAILED;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    tls_conn_t *t = ctx;
    if (len > (size_t)INT32_MAX) len = (size_t)INT32_MAX;
    for (;;) {
        ssize_t n = recv(t->fd, buf, len, MSG_DONTWAIT);
        if (n >= 0) return (int)n; /* 0: EOF, mbedTLS reports CONN_EOF */
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MBEDTLS_ERR_SSL_WANT_READ;
        if (errno == ECONNRESET || errno == EPIPE) return MBEDTLS_ERR_NET_CONN_RESET;
        return MBEDTLS_ERR_NET_RECV_FAILED;
    }
}

int tls_conn_new(tls_server_t *ts, int fd, tls_send_fn send, void *send_ctx, tls_conn_t **out)
{
    if (!ts || fd < 0 || !send || !out) return ENGRAM_EINVAL;
    *out = NULL;
    tls_conn_t *t = eg_calloc(1, sizeof *t);
    if (!t) return ENGRAM_ENOMEM;
    mbedtls_ssl_init(&t->ssl);
    t->ts = ts;
    t->fd = fd;
    t->send = send;
    t->send_ctx = send_ctx;
    if (mbedtls_ssl_setup(&t->ssl, &ts->conf) != 0) {
        mbedtls_ssl_free(&t->ssl);
        eg_free(t);
        return ENGRAM_ENOMEM;
    }
    mbedtls_ssl_set_bio(&t->ssl, t, bio_send, bio_recv, NULL);
    *out = t;
    return 0;
}

void tls_conn_free(tls_conn_t *t)
{
    if (!t) return;
    if (t->fast) tls_rec_free(&t->rec);
    else mbedtls_ssl_free(&t->ssl);
    sodium_memzero(&t->keys, sizeof t->keys);
    eg_free(t);
}

/* The AEAD libsodium carries for the negotiated suite, or 0. */
static tls_rec_aead_t fast_aead(const tls_conn_t *t)
{
    const char *name = mbedtls_ssl_get_ciphersuite(&t->ssl);
    int id = name ? mbedtls_ssl_get_ciphersuite_id(name) : 0;
    tls_rec_aead_t aead = 0;
    if (id == MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 ||
        id == MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256)
        aead = TLS_REC_CHACHA20_POLY1305;
    else if (id == MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ||
             id == MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)
        aead = TLS_REC_AES256_GCM;
    return aead && tls_rec_aead_available(aead) ? aead : 0;
}

/* After the handshake: moves the record layer to libsodium when the suite
 * allows it and mbedTLS holds no input beyond the finished handshake (it
 * reads records exactly, so it does not), then frees mbedTLS's context.
 * Otherwise the connection simply stays on mbedTLS. */
static void switch_records(tls_conn_t *t)
{
    tls_rec_aead_t aead = fast_aead(t);
    conn_keys_t *k = &t->keys;
    size_t want_iv = aead == TLS_REC_AES256_GCM ? 4 : 12;
    if (aead && k->ok && k->ivlen == want_iv && t->ssl.in_left == 0 &&
        mbedtls_ssl_get_bytes_avail(&t->ssl) == 0 && t->ssl.out_left == 0) {
        uint64_t rseq = be64_get(t->ssl.in_ctr), wseq = be64_get(t->ssl.cur_out_ctr);
        if (tls_rec_init(&t->rec, aead, k->ckey, k->civ, k->skey, k->siv, rseq, wseq, t->fd,
                         t->send, t->send_ctx) == 0) {
            t->version = mbedtls_ssl_get_version(&t->ssl);
            t->suite = mbedtls_ssl_get_ciphersuite(&t->ssl);
            mbedtls_ssl_free(&t->ssl);
            t->fast = 1;
            atomic_fetch_add(&t->ts->fast_records, 1);
        }
    }
    atomic_fetch_add(&t->ts->handshakes, 1);
    sodium_memzero(k, sizeof *k);
}

int tls_conn_handshake(tls_conn_t *t)
{
    if (t->fast) return 0;
    handshaking = t;
    int ret = mbedtls_ssl_handshake(&t->ssl);
    handshaking = NULL;
    if (ret == 0) {
        switch_records(t);
        return 0;
    }
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return ENGRAM_EAGAIN;
    if (ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET ||
        ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
        return ENGRAM_ECLOSED;
    if (log_level <= LOG_DEBUG) {
        char why[200];
        describe_error(ret, why, sizeof why);
        log_debug("TLS handshake failed: %s", why);
    }
    return ENGRAM_EIO;
}

long tls_conn_read(tls_conn_t *t, void *buf, size_t len)
{
    if (t->fast) return tls_rec_read(&t->rec, buf, len);
    if (len > TLS_RECORD_MAX * 4) len = TLS_RECORD_MAX * 4;
    int ret = mbedtls_ssl_read(&t->ssl, buf, len);
    if (ret > 0) return ret;
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE) return ENGRAM_EAGAIN;
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_SSL_CONN_EOF ||
        ret == MBEDTLS_ERR_NET_CONN_RESET)
        return 0;
    return ENGRAM_EIO;
}

size_t tls_conn_pending(const tls_conn_t *t)
{
    if (!t) return 0;
    if (t->fast) return (size_t)tls_rec_pending(&t->rec);
    return mbedtls_ssl_get_bytes_avail(&t->ssl);
}

int tls_conn_write(tls_conn_t *t, const void *data, size_t len)
{
    if (t->fast) return tls_rec_write(&t->rec, data, len);
    const unsigned char *p = data;
    while (len > 0) {
        size_t n = len < TLS_RECORD_MAX ? len : TLS_RECORD_MAX;
        int ret = mbedtls_ssl_write(&t->ssl, p, n);
        if (ret <= 0) {
            /* bio_send never asks to retry, so every failure is final. */
            return ret == MBEDTLS_ERR_NET_SEND_FAILED ? ENGRAM_ECLOSED : ENGRAM_EIO;
        }
        p += ret;
        len -= (size_t)ret;
    }
    return 0;
}

void tls_conn_close_notify(tls_conn_t *t)
{
    if (!t) return;
    if (t->fast) tls_rec_close_notify(&t->rec);
    else mbedtls_ssl_close_notify(&t->ssl);
}

void tls_conn_describe(const tls_conn_t *t, char *out, size_t outsz)
{
    if (!t || outsz == 0) return;
    const char *version = t->fast ? t->version : mbedtls_ssl_get_version(&t->ssl);
    const char *suite = t->fast ? t->suite : mbedtls_ssl_get_ciphersuite(&t->ssl);
    snprintf(out, outsz, "%s %s", version ? version : "-", suite ? suite : "-");
}

int tls_looks_like_http(const unsigned char *p, size_t n)
{
    /* A request line starts with a method token: upper-case letters, then
     * a space. A TLS record starts with 0x16 (handshake). */
    if (n == 0 || p[0] < 'A' || p[0] > 'Z') return 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] == ' ') return 1;
        if (p[i] < 'A' || p[i] > 'Z') return 0;
    }
    return 1;
}
