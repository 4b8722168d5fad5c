/*
 * test_http_tls.c - HTTPS and spooled request bodies in the HTTP server,
 * over real loopback sockets.
 *
 * Each test starts a server in a thread (TLS with a self-signed P-256
 * certificate made by the `openssl` command line at test time, or plain)
 * with a small handler (stream, big answer, upload checksum) and talks to
 * it with an mbedTLS client written here: blocking socket, small receive
 * buffer and slow reads where the test wants the server's writes to meet a
 * full socket (partial writes, want-write paths). Uploads go over the
 * spool path (route limit 8 MiB, bodies of 3 MiB) and the handler reports
 * whether it saw a file-backed body.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <dirent.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "http/http.h"
#include "http/tls.h"
#include "test.h"
#include "util/common.h"
#include "util/log.h"

#define BIG_LEN (3u << 20)
#define STREAM_WRITES 300

/* ---- server under test ---- */

static unsigned char pattern_byte(size_t i) { return (unsigned char)('a' + (i * 7 + i / 13) % 26); }

static int on_headers(http_request_t *req, void *ud)
{
    (void)ud;
    snprintf(req->route_label, sizeof req->route_label, "test");
    if (strcmp(req->path, "/upload") == 0) req->max_body = 8u << 20;
    return 0;
}

static void handler(http_request_t *req, void *ud)
{
    (void)ud;
    char out[256];
    if (strcmp(req->path, "/stream") == 0) {
        http_stream_begin(req, 200, "text/event-stream", NULL);
        char ev[4000];
        size_t pos = 0;
        for (int i = 0; i < STREAM_WRITES; i++) {
            size_t n = 1 + (size_t)(i * 37) % sizeof ev;
            for (size_t k = 0; k < n; k++) ev[k] = (char)pattern_byte(pos + k);
            pos += n;
            if (http_stream_write(req, ev, n)) break;
        }
        http_stream_end(req);
        return;
    }
    if (strcmp(req->path, "/big") == 0) {
        char *b = malloc(BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++) b[i] = (char)pattern_byte(i);
        http_respond(req, 200, "application/octet-stream", b, BIG_LEN, NULL);
        free(b);
        return;
    }
    if (strcmp(req->path, "/upload") == 0) {
        unsigned long sum = 0;
        for (size_t i = 0; i < req->body_len; i++) sum = sum * 31 + (unsigned char)req->body[i];
        int n = snprintf(out, sizeof out, "%zu %lu file=%d nul=%d", req->body_len, sum,
                         req->body_file, req->body[req->body_len] == '\0');
        http_respond(req, 200, "text/plain", out, (size_t)n, NULL);
        return;
    }
    int n = snprintf(out, sizeof out, "%s %s", req->method, req->path);
    http_respond(req, 200, "text/plain", out, (size_t)n, NULL);
}

typedef struct server {
    http_server_t *s;
    pthread_t thread;
    int port;
    char dir[256];
    char cert[300], key[300], spool[300];
    char err[512];
} server_t;

static void *run_thread(void *arg)
{
    server_t *sv = arg;
    http_server_run(sv->s);
    return NULL;
}

/* A scratch dir with a fresh self-signed certificate. 0 or -1. */
static int make_cert(server_t *sv)
{
    char *d = test_tmpdir();
    if (!d) return -1;
    snprintf(sv->dir, sizeof sv->dir, "%s", d);
    snprintf(sv->cert, sizeof sv->cert, "%s/cert.pem", d);
    snprintf(sv->key, sizeof sv->key, "%s/key.pem", d);
    snprintf(sv->spool, sizeof sv->spool, "%s/tmp", d);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=localhost -keyout '%s' -out '%s' >/dev/null 2>&1",
             sv->key, sv->cert);
    if (system(cmd) != 0) {
        fprintf(stderr, "  the openssl command line is needed (tools/deps/tls.test)\n");
        return -1;
    }
    return 0;
}

static int start(server_t *sv, int tls)
{
    memset(sv, 0, sizeof *sv);
    if (make_cert(sv)) return -1;
    log_level = getenv("HTTP_TEST_LOG") ? LOG_DEBUG : LOG_WARN;
    http_server_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.workers = 4;
    cfg.max_connections = 64;
    cfg.max_body_bytes = 1024;
    cfg.header_timeout_ms = 300;
    cfg.body_timeout_ms = 2000;
    cfg.idle_timeout_ms = 2000;
    cfg.write_timeout_ms = 5000;
    cfg.on_headers = on_headers;
    cfg.handler = handler;
    cfg.tls_cert = tls ? sv->cert : NULL;
    cfg.tls_key = tls ? sv->key : NULL;
    cfg.spool_dir = sv->spool;
    cfg.error = sv->err;
    cfg.error_size = sizeof sv->err;
    int rc = http_server_create(&cfg, &sv->s);
    if (rc) {
        fprintf(stderr, "  server: %s\n", sv->err);
        return rc;
    }
    sv->port = http_server_port(sv->s);
    return pthread_create(&sv->thread, NULL, run_thread, sv) ? -1 : 0;
}

static void stop(server_t *sv)
{
    http_server_stop(sv->s);
    pthread_join(sv->thread, NULL);
    http_server_free(sv->s);
    test_rmdir(sv->dir);
}

/* ---- clients ---- */

static int tcp_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

typedef struct tcl {
    int fd;
    int slow;                  /* pause now and then while reading */
    mbedtls_entropy_context ent;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_ssl_config conf;
    mbedtls_ssl_context ssl;
    unsigned char *buf;        /* decrypted bytes not consumed yet */
    size_t len, cap;
} tcl_t;

static int cl_send_cb(void *ctx, const unsigned char *p, size_t n)
{
    ssize_t w = send(*(int *)ctx, p, n, MSG_NOSIGNAL);
    return w < 0 ? MBEDTLS_ERR_NET_SEND_FAILED : (int)w;
}

static int cl_recv_cb(void *ctx, unsigned char *p, size_t n)
{
    ssize_t r = recv(*(int *)ctx, p, n, 0);
    return r < 0 ? MBEDTLS_ERR_NET_RECV_FAILED : (int)r;
}

static void tcl_free(tcl_t *c)
{
    if (!c) return;
    mbedtls_ssl_free(&c->ssl);
    mbedtls_ssl_config_free(&c->conf);
    mbedtls_ctr_drbg_free(&c->drbg);
    mbedtls_entropy_free(&c->ent);
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    free(c);
}

static tcl_t *tcl_connect(int port, int rcvbuf)
{
    tcl_t *c = calloc(1, sizeof *c);
    mbedtls_entropy_init(&c->ent);
    mbedtls_ctr_drbg_init(&c->drbg);
    mbedtls_ssl_config_init(&c->conf);
    mbedtls_ssl_init(&c->ssl);
    c->fd = tcp_connect(port, rcvbuf);
    int ok = c->fd >= 0 &&
             mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->ent, NULL, 0) == 0 &&
             mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
                                         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT) == 0;
    if (ok) {
        mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE); /* self-signed */
        mbedtls_ssl_conf_rng(&c->conf, mbedtls_ctr_drbg_random, &c->drbg);
        ok = mbedtls_ssl_setup(&c->ssl, &c->conf) == 0;
    }
    if (ok) {
        mbedtls_ssl_set_bio(&c->ssl, &c->fd, cl_send_cb, cl_recv_cb, NULL);
        int ret = mbedtls_ssl_handshake(&c->ssl);
        if (ret) fprintf(stderr, "  client handshake: -0x%04x\n", (unsigned)-ret);
        ok = ret == 0;
    }
    if (!ok) {
        tcl_free(c);
        return NULL;
    }
    return c;
}

static int tcl_write(tcl_t *c, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n) {
        int w = mbedtls_ssl_write(&c->ssl, b, n);
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int tcl_writes(tcl_t *c, const char *s) { return tcl_write(c, s, strlen(s)); }

/* Reads more decrypted bytes. >0, 0 at the end, -1 on error. */
static int tcl_fill(tcl_t *c)
{
    if (c->cap - c->len < 4096) {
        c->cap = c->cap ? c->cap * 2 : 65536;
        c->buf = realloc(c->buf, c->cap);
    }
    if (c->slow && (rand() % 8) == 0) usleep(1000);
    size_t want = c->slow ? 300 : c->cap - c->len;
    int r = mbedtls_ssl_read(&c->ssl, c->buf + c->len, want);
    if (r == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || r == 0) return 0;
    if (r < 0) return -1;
    c->len += (size_t)r;
    return r;
}

static void tcl_consume(tcl_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

typedef struct resp {
    int status;
    char head[4096];
    unsigned char *body;
    size_t body_len;
} resp_t;

static void resp_free(resp_t *r) { free(r->body); }

/* Reads one answer (Content-Length or chunked). 0 or -1. */
static int tcl_response(tcl_t *c, resp_t *r)
{
    memset(r, 0, sizeof *r);
    char *end;
    for (;;) {
        end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL;
        if (end) break;
        if (tcl_fill(c) <= 0) return -1;
    }
    size_t hl = (size_t)(end - (char *)c->buf) + 4;
    if (hl >= sizeof r->head) return -1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    tcl_consume(c, hl);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) return -1;
    const char *cl = strcasestr(r->head, "\r\nContent-Length:");
    if (cl) {
        size_t n = strtoul(cl + 17, NULL, 10);
        while (c->len < n) {
            if (tcl_fill(c) <= 0) return -1;
        }
        r->body = malloc(n + 1);
        memcpy(r->body, c->buf, n);
        r->body[n] = 0;
        r->body_len = n;
        tcl_consume(c, n);
        return 0;
    }
    if (!strcasestr(r->head, "\r\nTransfer-Encoding: chunked")) return -1;
    size_t cap = 65536;
    r->body = malloc(cap);
    for (;;) {
        char *nl;
        while (!(nl = c->len ? memmem(c->buf, c->len, "\r\n", 2) : NULL)) {
            if (tcl_fill(c) <= 0) return -1;
        }
        size_t sz = strtoul((char *)c->buf, NULL, 16);
        tcl_consume(c, (size_t)(nl - (char *)c->buf) + 2);
        while (c->len < sz + 2) {
            if (tcl_fill(c) <= 0) return -1;
        }
        if (r->body_len + sz + 1 > cap) {
            while (r->body_len + sz + 1 > cap) cap *= 2;
            r->body = realloc(r->body, cap);
        }
        memcpy(r->body + r->body_len, c->buf, sz);
        r->body_len += sz;
        tcl_consume(c, sz + 2);
        if (sz == 0) break;
    }
    r->body[r->body_len] = 0;
    return 0;
}

/* 1 when the server closed the plain connection fd within 3 s; the bytes
 * it sent before are in out (up to outsz - 1, NUL-terminated). */
static int plain_read_to_close(int fd, char *out, size_t outsz)
{
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t len = 0;
    for (;;) {
        char tmp[4096];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n == 0) break;
        if (n < 0) {
            if (errno == ECONNRESET) break;
            out[len] = '\0';
            return 0;
        }
        size_t k = EG_MIN((size_t)n, outsz - 1 - len);
        memcpy(out + len, tmp, k);
        len += k;
    }
    out[len] = '\0';
    return 1;
}

static unsigned long checksum(const unsigned char *p, size_t n)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++) sum = sum * 31 + p[i];
    return sum;
}

/* ---- tests ---- */

TEST(tls_stream_to_slow_reader)
{
    server_t sv;
    REQUIRE(start(&sv, 1) == 0);
    tcl_t *c = tcl_connect(sv.port, 4096);
    REQUIRE(c);
    c->slow = 1;
    CHECK(tcl_writes(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    resp_t r;
    CHECK(tcl_response(c, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    size_t want = 0;
    for (int i = 0; i < STREAM_WRITES; i++) want += 1 + (size_t)(i * 37) % 4000;
    CHECK_EQ_INT(r.body_len, want);
    size_t bad = 0;
    for (size_t i = 0; i < r.body_len; i++) bad += r.body[i] != pattern_byte(i);
    CHECK_EQ_INT(bad, 0);
    resp_free(&r);
    /* The connection is still good for another request. */
    CHECK(tcl_writes(c, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(tcl_response(c, &r) == 0);
    CHECK_STR((char *)r.body, "GET /again");
    resp_free(&r);
    tcl_free(c);
    stop(&sv);
}

TEST(tls_big_answer_to_small_window)
{
    server_t sv;
    REQUIRE(start(&sv, 1) == 0);
    tcl_t *c = tcl_connect(sv.port, 2048);
    REQUIRE(c);
    c->slow = 1;
    CHECK(tcl_writes(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    resp_t r;
    CHECK(tcl_response(c, &r) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.body_len, BIG_LEN);
    size_t bad = 0;
    for (size_t i = 0; i < r.body_len; i++) bad += r.body[i] != pattern_byte(i);
    CHECK_EQ_INT(bad, 0);
    resp_free(&r);
    tcl_free(c);
    stop(&sv);
}

TEST(tls_pipelined_and_keep_alive)
{
    server_t sv;
    REQUIRE(start(&sv, 1) == 0);
    tcl_t *c = tcl_connect(sv.port, 0);
    REQUIRE(c);
    /* 200 requests in one record (about 6 KB): the first read takes only
     * part of it, the rest waits decrypted inside the record layer, where
     * no socket event will announce it. */
    char many[200 * 40];
    size_t ml = 0;
    for (int i = 0; i < 200; i++)
        ml += (size_t)snprintf(many + ml, sizeof many - ml, "GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    CHECK(ml < TLS_RECORD_MAX);
    CHECK(tcl_write(c, many, ml) == 0);
    for (int i = 0; i < 200; i++) {
        resp_t r;
        char want[32];
        snprintf(want, sizeof want, "GET /p%d", i);
        if (tcl_response(c, &r) != 0) {
            CHECK(!"answer missing");
            break;
        }
        CHECK_EQ_INT(r.status, 200);
        CHECK_STR((char *)r.body, want);
        resp_free(&r);
    }
    for (int i = 0; i < 20; i++) {
        CHECK(tcl_writes(c, "GET /ka HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        resp_t r;
        CHECK(tcl_response(c, &r) == 0);
        CHECK_STR((char *)r.body, "GET /ka");
        resp_free(&r);
    }
    tcl_free(c);
    stop(&sv);
}

/* Uploads n pattern bytes to /upload (chunked in pieces of `piece`, or with
 * Content-Length when piece is 0) and checks the handler's report. */
static void upload_and_check(int tls, size_t n, size_t piece, int want_file)
{
    server_t sv;
    REQUIRE(start(&sv, tls) == 0);
    unsigned char *body = malloc(n);
    for (size_t i = 0; i < n; i++) body[i] = pattern_byte(i * 3);
    char head[256];
    snprintf(head, sizeof head, "POST /upload HTTP/1.1\r\nHost: x\r\n%s%zu\r\n\r\n",
             piece ? "Transfer-Encoding: chunked\r\nX-Size: " : "Content-Length: ", n);
    tcl_t *c = NULL;
    int fd = -1;
    if (tls) {
        c = tcl_connect(sv.port, 0);
        REQUIRE(c);
    } else {
        fd = tcp_connect(sv.port, 0);
        REQUIRE(fd >= 0);
    }
#define SEND(p, len) (tls ? tcl_write(c, p, len) : (send(fd, p, len, MSG_NOSIGNAL) == (ssize_t)(len) ? 0 : -1))
    int ok = SEND(head, strlen(head)) == 0;
    if (!piece) {
        for (size_t off = 0; ok && off < n; off += 65536)
            ok = SEND(body + off, EG_MIN((size_t)65536, n - off)) == 0;
    } else {
        for (size_t off = 0; ok && off < n; off += piece) {
            size_t k = EG_MIN(piece, n - off);
            char sz[32];
            int sl = snprintf(sz, sizeof sz, "%zx\r\n", k);
            ok = SEND(sz, (size_t)sl) == 0 && SEND(body + off, k) == 0 && SEND("\r\n", 2) == 0;
        }
        if (ok) ok = SEND("0\r\n\r\n", 5) == 0;
    }
#undef SEND
    CHECK(ok);
    char want[128];
    snprintf(want, sizeof want, "%zu %lu file=%d nul=1", n, checksum(body, n), want_file);
    if (tls) {
        resp_t r;
        CHECK(tcl_response(c, &r) == 0);
        CHECK_EQ_INT(r.status, 200);
        CHECK_STR((char *)r.body, want);
        resp_free(&r);
        tcl_free(c);
    } else {
        char buf[2048];
        shutdown(fd, SHUT_WR);
        plain_read_to_close(fd, buf, sizeof buf);
        const char *b = strstr(buf, "\r\n\r\n");
        CHECK(b && strcmp(b + 4, want) == 0);
        if (!b || strcmp(b + 4, want)) fprintf(stderr, "  got %s\n", buf);
        close(fd);
    }
    /* The spool directory is private and nothing is left in it. */
    struct stat st;
    CHECK(stat(sv.spool, &st) == 0 && (st.st_mode & 0777) == 0700);
    DIR *d = opendir(sv.spool);
    int entries = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) entries += e->d_name[0] != '.';
    if (d) closedir(d);
    CHECK_EQ_INT(entries, 0);
    free(body);
    stop(&sv);
}

TEST(tls_chunked_upload_spooled) { upload_and_check(1, BIG_LEN, 10000, 1); }
TEST(tls_length_upload_spooled) { upload_and_check(1, BIG_LEN, 0, 1); }
TEST(tls_small_upload_in_memory) { upload_and_check(1, 5000, 0, 0); }
TEST(plain_chunked_upload_spooled) { upload_and_check(0, BIG_LEN, 70000, 1); }
TEST(plain_length_upload_spooled) { upload_and_check(0, BIG_LEN, 0, 1); }

TEST(tls_plain_http_refused)
{
    server_t sv;
    REQUIRE(start(&sv, 1) == 0);
    int fd = tcp_connect(sv.port, 0);
    REQUIRE(fd >= 0);
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    char out[1024];
    CHECK(plain_read_to_close(fd, out, sizeof out));
    CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    CHECK(strstr(out, "HTTPS") != NULL);
    close(fd);
    /* Bytes that are neither TLS nor HTTP: closed without a word. */
    fd = tcp_connect(sv.port, 0);
    REQUIRE(fd >= 0);
    CHECK(send(fd, "\x00\x01\x02garbage", 10, MSG_NOSIGNAL) == 10);
    CHECK(plain_read_to_close(fd, out, sizeof out));
    CHECK_EQ_INT(strlen(out), 0);
    close(fd);
    /* The server still serves TLS. */
    tcl_t *c = tcl_connect(sv.port, 0);
    CHECK(c != NULL);
    tcl_free(c);
    stop(&sv);
}

TEST(tls_slow_handshake_closed)
{
    server_t sv;
    REQUIRE(start(&sv, 1) == 0);
    /* A record header of a ClientHello, then nothing: the header timeout
     * (300 ms here) covers the handshake. */
    int fd = tcp_connect(sv.port, 0);
    REQUIRE(fd >= 0);
    CHECK(send(fd, "\x16\x03\x01\x02\x00", 5, MSG_NOSIGNAL) == 5);
    char out[256];
    CHECK(plain_read_to_close(fd, out, sizeof out));
    CHECK_EQ_INT(strlen(out), 0);
    close(fd);
    /* A silent connection too. */
    fd = tcp_connect(sv.port, 0);
    REQUIRE(fd >= 0);
    CHECK(plain_read_to_close(fd, out, sizeof out));
    close(fd);
    stop(&sv);
}

TEST(tls_bad_files_refused)
{
    server_t sv;
    memset(&sv, 0, sizeof sv);
    REQUIRE(make_cert(&sv) == 0);
    http_server_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.handler = handler;
    cfg.error = sv.err;
    cfg.error_size = sizeof sv.err;
    http_server_t *s = NULL;

    char missing[320];
    snprintf(missing, sizeof missing, "%s/nope.pem", sv.dir);
    cfg.tls_cert = missing;
    cfg.tls_key = sv.key;
    CHECK(http_server_create(&cfg, &s) != 0 && s == NULL);
    CHECK(strstr(sv.err, "nope.pem") && strstr(sv.err, "No such file"));

    /* A key of another certificate. */
    char other[320], cmd[1024];
    snprintf(other, sizeof other, "%s/other.pem", sv.dir);
    snprintf(cmd, sizeof cmd, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                              "-out '%s' >/dev/null 2>&1", other);
    CHECK(system(cmd) == 0);
    cfg.tls_cert = sv.cert;
    cfg.tls_key = other;
    CHECK(http_server_create(&cfg, &s) != 0 && s == NULL);
    CHECK(strstr(sv.err, "does not belong") != NULL);

    /* A certificate file that is no certificate. */
    cfg.tls_cert = sv.key;
    cfg.tls_key = sv.key;
    CHECK(http_server_create(&cfg, &s) != 0 && s == NULL);
    CHECK(strstr(sv.err, "not a usable PEM certificate") != NULL);

    cfg.tls_cert = sv.cert;
    cfg.tls_key = sv.key;
    CHECK(http_server_create(&cfg, &s) == 0 && s != NULL);
    http_server_free(s);
    test_rmdir(sv.dir);
}

TEST(tls_first_bytes_classified)
{
    CHECK(tls_looks_like_http((const unsigned char *)"GET / HTTP/1.1", 14));
    CHECK(tls_looks_like_http((const unsigned char *)"POST", 4));
    CHECK(tls_looks_like_http((const unsigned char *)"P", 1));
    CHECK(!tls_looks_like_http((const unsigned char *)"\x16\x03\x01", 3));
    CHECK(!tls_looks_like_http((const unsigned char *)"get /", 5));
    CHECK(!tls_looks_like_http((const unsigned char *)"GE\x00", 3));
    CHECK(!tls_looks_like_http((const unsigned char *)"", 0));
}
