/*
 * test_http_server.c - the HTTP server over real loopback sockets.
 *
 * Each test starts a server on 127.0.0.1:0 in a thread with a small handler
 * (echo, stream, slow, no answer) and talks to it with plain sockets and a
 * tiny response reader written here, independent of the server's parser.
 * Timeouts are set short (header 300 ms, idle 500 ms) so the whole file
 * runs in a few seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "test.h"
#include "util/common.h"
#include "util/log.h"

/* ---- server under test ---- */

static atomic_int done_calls;
static atomic_int last_done_status;
static atomic_int holding;      /* /hold requests inside the handler */
static atomic_int hold_gate;    /* 1: /hold requests may answer */

static int on_headers(http_request_t *req, void *ud)
{
    (void)ud;
    snprintf(req->route_label, sizeof req->route_label, "test");
    if (strncmp(req->path, "/reject", 7) == 0) {
        return http_respond(req, 401, "application/json", "{\"detail\":\"no\"}", 15,
                            "WWW-Authenticate: Bearer\r\n");
    }
    if (strcmp(req->path, "/upload") == 0) req->max_body = 1 << 20;
    if (strcmp(req->path, "/hold") == 0) req->waits = 1;
    return 0;
}

static void handler(http_request_t *req, void *ud)
{
    (void)ud;
    char out[4096];
    if (strcmp(req->path, "/stream") == 0) {
        http_stream_begin(req, 200, "text/event-stream", "Cache-Control: no-cache\r\n");
        http_stream_write(req, "a", 1);
        http_stream_write(req, "bb", 2);
        http_stream_write(req, "", 0);
        http_stream_write(req, "ccc", 3);
        http_stream_end(req);
        return;
    }
    if (strcmp(req->path, "/slow") == 0) {
        usleep(800 * 1000);
        http_respond(req, 200, "text/plain", "slow done", 9, NULL);
        return;
    }
    if (strcmp(req->path, "/hold") == 0) {
        /* Like an upload waiting for the database writer. */
        atomic_fetch_add(&holding, 1);
        for (int i = 0; i < 500 && !atomic_load(&hold_gate); i++) usleep(10 * 1000);
        atomic_fetch_sub(&holding, 1);
        http_respond(req, 200, "text/plain", "held", 4, NULL);
        return;
    }
    if (strcmp(req->path, "/noanswer") == 0) return;
    if (strcmp(req->path, "/nocontent") == 0) {
        http_respond(req, 204, NULL, NULL, 0, NULL);
        return;
    }
    if (strcmp(req->path, "/rid") == 0) {
        int n = snprintf(out, sizeof out, "%s|%s", req->request_id, log_request_id());
        http_respond(req, 200, "text/plain", out, (size_t)n, NULL);
        return;
    }
    if (strcmp(req->path, "/gone") == 0) {
        /* Waits for the client to hang up. */
        for (int i = 0; i < 100 && !http_client_gone(req); i++) usleep(20 * 1000);
        http_respond(req, 200, "text/plain", http_client_gone(req) ? "gone" : "here", 4, NULL);
        return;
    }
    if (strcmp(req->path, "/upload") == 0) {
        /* Checksum, not the whole body. */
        unsigned long sum = 0;
        for (size_t i = 0; i < req->body_len; i++) sum = sum * 31 + (unsigned char)req->body[i];
        int n = snprintf(out, sizeof out, "%zu %lu", req->body_len, sum);
        http_respond(req, 200, "text/plain", out, (size_t)n, NULL);
        return;
    }
    int n = snprintf(out, sizeof out, "%s %s ?%s %zu:", req->method, req->path, req->query,
                     req->body_len);
    size_t bl = EG_MIN(req->body_len, sizeof out - (size_t)n);
    memcpy(out + n, req->body, bl);
    http_respond(req, 200, "text/plain", out, (size_t)n + bl, NULL);
}

static void on_done(http_request_t *req, double ms, void *ud)
{
    (void)ms;
    (void)ud;
    atomic_fetch_add(&done_calls, 1);
    atomic_store(&last_done_status, req->status);
}

typedef struct server {
    http_server_t *s;
    pthread_t thread;
    int port;
    int run_rc;
} server_t;

static void *run_thread(void *arg)
{
    server_t *sv = arg;
    sv->run_rc = http_server_run(sv->s);
    return NULL;
}

static void default_cfg(http_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "127.0.0.1:0";
    cfg->workers = 4;
    cfg->max_connections = 64;
    cfg->max_body_bytes = 1024;
    cfg->header_timeout_ms = 300;
    cfg->body_timeout_ms = 1000;
    cfg->idle_timeout_ms = 500;
    cfg->write_timeout_ms = 2000;
    cfg->on_headers = on_headers;
    cfg->handler = handler;
    cfg->on_done = on_done;
}

static int start_cfg(server_t *sv, const http_server_config_t *cfg)
{
    /* Keep the access log out of the test output unless asked for. */
    log_level = getenv("HTTP_TEST_LOG") ? LOG_INFO : LOG_WARN;
    memset(sv, 0, sizeof *sv);
    int rc = http_server_create(cfg, &sv->s);
    if (rc) return rc;
    sv->port = http_server_port(sv->s);
    if (pthread_create(&sv->thread, NULL, run_thread, sv) != 0) return -1;
    return 0;
}

static int start(server_t *sv)
{
    http_server_config_t cfg;
    default_cfg(&cfg);
    return start_cfg(sv, &cfg);
}

static void stop(server_t *sv)
{
    http_server_stop(sv->s);
    pthread_join(sv->thread, NULL);
    http_server_free(sv->s);
}

/* ---- client ---- */

typedef struct client {
    int fd;
    char buf[1 << 16];
    size_t len;
} client_t;

static client_t *cl_connect(int port)
{
    client_t *c = calloc(1, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        close(c->fd);
        free(c);
        return NULL;
    }
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return c;
}

static void cl_close(client_t *c)
{
    if (!c) return;
    close(c->fd);
    free(c);
}

static int cl_send(client_t *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cl_sends(client_t *c, const char *s) { return cl_send(c, s, strlen(s)); }

/* Reads more; returns bytes read, 0 at EOF, -1 on error/timeout. */
static int cl_fill(client_t *c)
{
    if (c->len >= sizeof c->buf) return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n < 0) return -1;
    c->len += (size_t)n;
    return (int)n;
}

static void cl_consume(client_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

typedef struct resp {
    int status;
    char head[8192];
    char body[1 << 16];
    size_t body_len;
} resp_t;

/* Value of a response header (first), copied into out; 1 if found. */
static int resp_header(const resp_t *r, const char *name, char *out, size_t outsz)
{
    const char *p = strstr(r->head, "\r\n");
    size_t nl = strlen(name);
    while (p && p[2] != '\r' && p[2]) {
        const char *line = p + 2;
        const char *end = strstr(line, "\r\n");
        if (!end) break;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            size_t vl = (size_t)(end - v);
            if (vl >= outsz) vl = outsz - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return 1;
        }
        p = end;
    }
    return 0;
}

/* Reads one response. no_body: answer to HEAD. Returns 0 or -1. */
static int read_resp(client_t *c, resp_t *r, int no_body)
{
    memset(r, 0, sizeof *r);
    char *end;
    for (;;) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end) break;
        if (cl_fill(c) <= 0) return -1;
    }
    size_t hl = (size_t)(end - c->buf) + 4;
    if (hl >= sizeof r->head) return -1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) return -1;
    cl_consume(c, hl);
    char v[64];
    if (no_body || r->status == 204 || r->status == 304 || r->status < 200) return 0;
    if (resp_header(r, "Content-Length", v, sizeof v)) {
        size_t n = (size_t)atol(v);
        while (c->len < n) if (cl_fill(c) <= 0) return -1;
        memcpy(r->body, c->buf, n);
        r->body_len = n;
        cl_consume(c, n);
    } else if (resp_header(r, "Transfer-Encoding", v, sizeof v) && strcasecmp(v, "chunked") == 0) {
        for (;;) {
            char *le;
            while (!(le = memmem(c->buf, c->len, "\r\n", 2))) if (cl_fill(c) <= 0) return -1;
            size_t n = strtoul(c->buf, NULL, 16);
            size_t ll = (size_t)(le - c->buf) + 2;
            while (c->len < ll + n + 2) if (cl_fill(c) <= 0) return -1;
            if (memcmp(c->buf + ll + n, "\r\n", 2) != 0) return -1;
            memcpy(r->body + r->body_len, c->buf + ll, n);
            r->body_len += n;
            cl_consume(c, ll + n + 2);
            if (n == 0) break;
        }
    } else {
        int k;
        while ((k = cl_fill(c)) > 0) {}
        memcpy(r->body, c->buf, c->len);
        r->body_len = c->len;
        c->len = 0;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* 1 if the server closed the connection (EOF or reset) within ~3 s. */
static int cl_closed(client_t *c)
{
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, 3000) <= 0) return 0;
    char tmp[4096];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0) return 1;
        if (n < 0) return errno == ECONNRESET;
        if (poll(&p, 1, 3000) <= 0) return 0;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- tests ---- */

TEST(keep_alive_three_requests)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    char v[256];
    for (int i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof req, "GET /k%d?x=%d HTTP/1.1\r\nHost: t\r\n\r\n", i, i);
        CHECK(cl_sends(c, req) == 0);
        REQUIRE(read_resp(c, &r, 0) == 0);
        CHECK_EQ_INT(r.status, 200);
        char want[64];
        snprintf(want, sizeof want, "GET /k%d ?x=%d 0:", i, i);
        CHECK_STR(r.body, want);
        CHECK(resp_header(&r, "Date", v, sizeof v));
        CHECK(resp_header(&r, "X-Request-ID", v, sizeof v));
        CHECK_EQ_INT(strlen(v), 32);
        CHECK(resp_header(&r, "Content-Type", v, sizeof v));
        CHECK_STR(v, "text/plain");
        CHECK(!resp_header(&r, "Connection", v, sizeof v));
    }
    /* A POST with a body on the same connection. */
    CHECK(cl_sends(c, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.body, "POST /p ? 5:hello");
    /* Connection: close is honoured. */
    CHECK(cl_sends(c, "GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    CHECK(cl_closed(c));
    cl_close(c);
    stop(&sv);
    CHECK_EQ_INT(sv.run_rc, 0);
    CHECK_EQ_INT(atomic_load(&done_calls), 5);
}

TEST(pipelined_in_order)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    const char *reqs =
        "GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n"
        "POST /p2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
        "POST /p3 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
        "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /p5 HTTP/1.1\r\nHost: t\r\n\r\n";
    CHECK(cl_sends(c, reqs) == 0);
    static resp_t r;
    const char *want[] = {"GET /p1 ? 0:", "POST /p2 ? 3:abc", "POST /p3 ? 2:xy", "slow done",
                          "GET /p5 ? 0:"};
    for (int i = 0; i < 5; i++) {
        REQUIRE(read_resp(c, &r, 0) == 0);
        CHECK_EQ_INT(r.status, 200);
        CHECK_STR(r.body, want[i]);
    }
    cl_close(c);
    stop(&sv);
}

TEST(chunked_request_body)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    CHECK(cl_sends(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n") == 0);
    usleep(50 * 1000);
    CHECK(cl_sends(c, "5;ext=1\r\nhello\r\n") == 0);
    usleep(50 * 1000);
    CHECK(cl_sends(c, "6\r\n world\r\n0\r\nX-T: 1\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "POST /c ? 11:hello world");
    /* Bad chunk size: 400 and close. */
    CHECK(cl_sends(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 400);
    CHECK(cl_closed(c));
    cl_close(c);
    stop(&sv);
}

TEST(large_upload_body)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    size_t n = 300 * 1000;
    char *body = malloc(n);
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++) {
        body[i] = (char)('a' + i % 26);
        sum = sum * 31 + (unsigned char)body[i];
    }
    char head[128];
    snprintf(head, sizeof head, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
    CHECK(cl_sends(c, head) == 0);
    CHECK(cl_send(c, body, n) == 0);
    static resp_t r;
    REQUIRE(read_resp(c, &r, 0) == 0);
    char want[64];
    snprintf(want, sizeof want, "%zu %lu", n, sum);
    CHECK_STR(r.body, want);
    free(body);
    cl_close(c);
    stop(&sv);
}

TEST(streamed_response)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    char v[64];
    CHECK(cl_sends(c, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(resp_header(&r, "Transfer-Encoding", v, sizeof v));
    CHECK_STR(v, "chunked");
    CHECK(!resp_header(&r, "Content-Length", v, sizeof v));
    CHECK_STR(r.body, "abbccc");
    /* HEAD: headers only, and the connection stays usable. */
    CHECK(cl_sends(c, "HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 1) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(cl_sends(c, "HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 1) == 0);
    CHECK(resp_header(&r, "Content-Length", v, sizeof v));
    CHECK(atoi(v) > 0);
    CHECK(cl_sends(c, "GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 204);
    CHECK(!resp_header(&r, "Content-Length", v, sizeof v));
    CHECK(cl_sends(c, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.body, "GET /x ? 0:");
    cl_close(c);

    /* HTTP/1.0 stream: no chunking, ends with the close. */
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET /stream HTTP/1.0\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.body, "abbccc");
    cl_close(c);
    stop(&sv);
}

TEST(headers_too_large_431)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    size_t n = 20 * 1024;
    char *big = malloc(n + 64);
    size_t k = (size_t)sprintf(big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + k, 'a', n - k);
    memcpy(big + n, "\r\n\r\n", 4);
    cl_send(c, big, n + 4);
    static resp_t r;
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 431);
    char v[64];
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    CHECK(strstr(r.body, "HEADERS_TOO_LARGE") != NULL);
    CHECK(cl_closed(c));
    free(big);
    cl_close(c);
    stop(&sv);
    CHECK_EQ_INT(atomic_load(&last_done_status), 431);
}

TEST(body_too_large_413)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    static resp_t r;
    char v[64];
    /* Announced too large: answered before the body is sent. */
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 413);
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    CHECK(cl_closed(c));
    cl_close(c);
    /* Chunked over the limit: found while decoding. */
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n") == 0);
    char chunk[600];
    memset(chunk, 'z', sizeof chunk);
    for (int i = 0; i < 2; i++) {
        cl_sends(c, "258\r\n");
        cl_send(c, chunk, sizeof chunk);
        cl_sends(c, "\r\n");
    }
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 413);
    CHECK(cl_closed(c));
    cl_close(c);
    /* Expect: 100-continue gets 413 instead of 100. */
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      "Content-Length: 5000\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 413);
    cl_close(c);
    stop(&sv);
}

TEST(expect_continue)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    CHECK(cl_sends(c, "POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      "Content-Length: 4\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 100);
    CHECK(cl_sends(c, "data") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "POST /e ? 4:data");
    /* Rejected by on_headers: no 100, the answer comes at once. */
    CHECK(cl_sends(c, "POST /reject HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      "Content-Length: 4\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 401);
    cl_close(c);
    stop(&sv);
}

TEST(on_headers_rejects_before_body)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    char v[64];
    /* Headers only; the body is never sent. */
    CHECK(cl_sends(c, "POST /reject HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 401);
    CHECK_STR(r.body, "{\"detail\":\"no\"}");
    CHECK(resp_header(&r, "WWW-Authenticate", v, sizeof v));
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    CHECK(cl_closed(c));
    cl_close(c);
    /* Without a body the connection stays open. */
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET /reject HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 401);
    CHECK(cl_sends(c, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    cl_close(c);
    stop(&sv);
}

TEST(header_timeout_408)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    double t0 = now_ms();
    CHECK(cl_sends(c, "GET / HTTP/1.1\r\nHo") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    double dt = now_ms() - t0;
    CHECK_EQ_INT(r.status, 408);
    CHECK(dt >= 250 && dt < 1500);
    CHECK(cl_closed(c));
    cl_close(c);
    /* Body that stops making progress: 408 too (body timeout 1 s). */
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nab") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 408);
    cl_close(c);
    /* A connection that never says anything is just closed. */
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_closed(c));
    CHECK_EQ_INT(c->len, 0);
    cl_close(c);
    stop(&sv);
}

TEST(idle_timeout_closes)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    CHECK(cl_sends(c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(http_server_connections(sv.s), 1);
    double t0 = now_ms();
    CHECK(cl_closed(c));
    double dt = now_ms() - t0;
    CHECK(dt >= 400 && dt < 2000);
    CHECK_EQ_INT(c->len, 0); /* closed silently */
    cl_close(c);
    usleep(50 * 1000);
    CHECK_EQ_INT(http_server_connections(sv.s), 0);
    stop(&sv);
}

TEST(max_connections_503)
{
    http_server_config_t cfg;
    default_cfg(&cfg);
    cfg.max_connections = 2;
    cfg.header_timeout_ms = 3000;
    server_t sv;
    REQUIRE(start_cfg(&sv, &cfg) == 0);
    client_t *a = cl_connect(sv.port), *b = cl_connect(sv.port);
    REQUIRE(a && b);
    usleep(100 * 1000);
    CHECK_EQ_INT(http_server_connections(sv.s), 2);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 503);
    CHECK(cl_closed(c));
    cl_close(c);
    /* The first two still work; after one leaves a new one gets in. */
    CHECK(cl_sends(a, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(a, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    cl_close(b);
    usleep(100 * 1000);
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    cl_close(c);
    cl_close(a);
    stop(&sv);
}

TEST(graceful_stop_lets_slow_request_finish)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    client_t *idle = cl_connect(sv.port);
    REQUIRE(c && idle);
    CHECK(cl_sends(c, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    usleep(200 * 1000);
    double t0 = now_ms();
    http_server_stop(sv.s);
    static resp_t r;
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_STR(r.body, "slow done");
    char v[64];
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    pthread_join(sv.thread, NULL);
    CHECK(now_ms() - t0 < 5000);
    CHECK_EQ_INT(sv.run_rc, 0);
    CHECK(cl_closed(idle));
    /* Nobody listens any more. */
    client_t *late = cl_connect(sv.port);
    CHECK(late == NULL);
    cl_close(late);
    http_server_free(sv.s);
    cl_close(c);
    cl_close(idle);
}

TEST(request_id_kept_or_replaced)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    static resp_t r;
    char v[256];
    CHECK(cl_sends(c, "GET /rid HTTP/1.1\r\nHost: t\r\nX-Request-ID: my-id_1.2\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK(resp_header(&r, "X-Request-ID", v, sizeof v));
    CHECK_STR(v, "my-id_1.2");
    CHECK_STR(r.body, "my-id_1.2|my-id_1.2"); /* the handler thread's log id too */
    CHECK(cl_sends(c, "GET /rid HTTP/1.1\r\nHost: t\r\nX-Request-ID: bad id/x\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK(resp_header(&r, "X-Request-ID", v, sizeof v));
    CHECK_EQ_INT(strlen(v), 32);
    for (size_t i = 0; i < 32; i++) CHECK(strchr("0123456789abcdef", v[i]) != NULL);
    char other[64];
    CHECK(cl_sends(c, "GET /rid HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK(resp_header(&r, "X-Request-ID", other, sizeof other));
    CHECK(strcmp(v, other) != 0);
    cl_close(c);
    stop(&sv);
}

TEST(bad_requests_and_http10)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    static resp_t r;
    char v[64];
    static const struct { const char *req; int status; } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505},
        {"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET /%00 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
        {"GET /noanswer HTTP/1.1\r\nHost: t\r\n\r\n", 500},
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(cases); i++) {
        client_t *c = cl_connect(sv.port);
        REQUIRE(c);
        CHECK(cl_sends(c, cases[i].req) == 0);
        REQUIRE(read_resp(c, &r, 0) == 0);
        CHECK_EQ_INT(r.status, cases[i].status);
        CHECK(resp_header(&r, "Content-Type", v, sizeof v));
        CHECK(strstr(r.body, "\"error\"") != NULL);
        CHECK(cl_closed(c));
        cl_close(c);
    }
    /* HTTP/1.0: closed after the answer unless keep-alive was asked. */
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "keep-alive");
    CHECK(cl_sends(c, "GET /b HTTP/1.0\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.body, "GET /b ? 0:");
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    CHECK(cl_closed(c));
    cl_close(c);
    stop(&sv);
}

TEST(client_gone_detected)
{
    server_t sv;
    REQUIRE(start(&sv) == 0);
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET /gone HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
    usleep(100 * 1000);
    shutdown(c->fd, SHUT_WR);
    static resp_t r;
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_STR(r.body, "gone");
    cl_close(c);
    stop(&sv);
}

TEST(ipv6_and_listen_forms)
{
    http_server_config_t cfg;
    default_cfg(&cfg);
    http_server_t *s = NULL;
    cfg.listen = "[::1]:0";
    int rc = http_server_create(&cfg, &s);
    if (rc == 0) {
        CHECK(http_server_port(s) > 0);
        http_server_free(s);
    } else {
        fprintf(stderr, "  no IPv6 loopback here (%d), skipped\n", rc);
    }
    cfg.listen = ":0";
    CHECK_EQ_INT(http_server_create(&cfg, &s), 0);
    CHECK(http_server_port(s) > 0);
    http_server_free(s);
    const char *bad[] = {"nonsense", "127.0.0.1:", "127.0.0.1:99999", "[::1:0", "1.2.3.4:x"};
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++) {
        cfg.listen = bad[i];
        s = NULL;
        CHECK(http_server_create(&cfg, &s) != 0);
        CHECK(s == NULL);
    }
}

static void on_error(http_request_t *req, int status, const char *message, void *ud)
{
    (void)ud;
    char body[128];
    int n = snprintf(body, sizeof body, "E%d %s", status, message);
    http_respond(req, status, "text/plain", body, (size_t)n, "X-Err: 1\r\n");
}

TEST(on_error_renders_server_errors)
{
    http_server_config_t cfg;
    default_cfg(&cfg);
    cfg.on_error = on_error;
    server_t sv;
    REQUIRE(start_cfg(&sv, &cfg) == 0);
    static resp_t r;
    char v[64];
    client_t *c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET / HTTP/1.1\r\nHost : t\r\n\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 400);
    CHECK(strncmp(r.body, "E400 ", 5) == 0);
    CHECK(resp_header(&r, "X-Err", v, sizeof v));
    CHECK(resp_header(&r, "X-Request-ID", v, sizeof v));
    CHECK(resp_header(&r, "Connection", v, sizeof v));
    CHECK_STR(v, "close");
    CHECK(cl_closed(c));
    cl_close(c);
    c = cl_connect(sv.port);
    REQUIRE(c);
    CHECK(cl_sends(c, "GET / HTTP/1.1\r\n") == 0);
    REQUIRE(read_resp(c, &r, 0) == 0);
    CHECK_EQ_INT(r.status, 408);
    CHECK(strncmp(r.body, "E408 ", 5) == 0);
    cl_close(c);
    stop(&sv);
}

/* Requests marked waits (uploads waiting on the writer, in the server) take
 * at most waiting_max workers (default 4 - 4/4 = 3): a plain request is
 * answered while they are all held, the extra one waits its turn, and a stop
 * lets every one of them finish. */
TEST(waiting_requests_leave_workers_for_others)
{
    for (int round = 0; round < 2; round++) {
        server_t sv;
        REQUIRE(start(&sv) == 0);
        atomic_store(&hold_gate, 0);
        client_t *h[5];
        for (int i = 0; i < 5; i++) {
            h[i] = cl_connect(sv.port);
            REQUIRE(h[i]);
            CHECK(cl_sends(h[i], "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
        }
        for (int i = 0; i < 200 && atomic_load(&holding) < 3; i++) usleep(10 * 1000);
        usleep(150 * 1000);
        CHECK_EQ_INT(atomic_load(&holding), 3);
        if (round == 0) {
            client_t *c = cl_connect(sv.port);
            REQUIRE(c);
            double t0 = now_ms();
            CHECK(cl_sends(c, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n") == 0);
            static resp_t r;
            REQUIRE(read_resp(c, &r, 0) == 0);
            CHECK_EQ_INT(r.status, 200);
            CHECK(now_ms() - t0 < 2000); /* not after the held ones (5 s) */
            CHECK_EQ_INT(atomic_load(&holding), 3);
            cl_close(c);
        } else {
            http_server_stop(sv.s); /* with two still queued */
            usleep(100 * 1000);
        }
        atomic_store(&hold_gate, 1);
        for (int i = 0; i < 5; i++) {
            static resp_t r;
            REQUIRE(read_resp(h[i], &r, 0) == 0);
            CHECK_EQ_INT(r.status, 200);
            CHECK_STR(r.body, "held");
            cl_close(h[i]);
        }
        if (round == 0) stop(&sv);
        else {
            pthread_join(sv.thread, NULL);
            CHECK_EQ_INT(sv.run_rc, 0);
            http_server_free(sv.s);
        }
    }
}
