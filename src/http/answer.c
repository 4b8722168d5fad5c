/*
 * answer.c - the HTTP server's answers: status line and headers, whole and
 * streamed (chunked) bodies, and the bytes under them - plain sockets with
 * writev, or the TLS record layer whose output waits in the connection's
 * write queue. Workers write blocking with a timeout (poll on EAGAIN); the
 * loop thread never blocks: what the socket does not take stays queued for
 * the loop to flush. Contract in http.h; the connection structures are in
 * server_internal.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "http/server_internal.h"
#include "util/common.h"

/* ---------------------------------------------------------------- answers */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status < 300 ? "OK" : status < 400 ? "Redirect" : status < 500 ? "Error"
                                                                                  : "Server Error";
    }
}

/* IMF-fixdate, cached per thread for the current second. */
static const char *http_date(void)
{
    static _Thread_local char cached[40];
    static _Thread_local time_t cached_sec = -1;
    time_t t = time(NULL);
    if (t != cached_sec) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(cached, sizeof cached, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_sec = t;
    }
    return cached;
}

/* --------------------------------------------------------- output bytes */

/* Appends to the pending-output buffer. 0 or ENGRAM_ENOMEM. */
static int wbuf_append(http_conn_t *c, const void *p, size_t n)
{
    if (c->wpos == c->wlen) c->wpos = c->wlen = 0;
    if (c->wlen + n > c->wcap && c->wpos > 0) {
        memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
        c->wlen -= c->wpos;
        c->wpos = 0;
    }
    if (c->wlen + n > c->wcap) {
        size_t cap = c->wcap ? c->wcap * 2 : 4096;
        while (cap < c->wlen + n) cap *= 2;
        char *nb = eg_realloc(c->wbuf, cap);
        if (!nb) return ENGRAM_ENOMEM;
        c->wbuf = nb;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
    return 0;
}

void http_conn_wbuf_release(http_conn_t *c)
{
    eg_free(c->wbuf);
    c->wbuf = NULL;
    c->wpos = c->wlen = c->wcap = 0;
}

/* Sends what the socket takes of wbuf now. 0: all sent; ENGRAM_EAGAIN:
 * some left; ENGRAM_ECLOSED. */
int http_conn_wbuf_flush(http_conn_t *c)
{
    while (c->wpos < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return ENGRAM_EAGAIN;
            return ENGRAM_ECLOSED;
        }
        c->wpos += (size_t)n;
    }
    c->wpos = c->wlen = 0;
    return 0;
}

/* Waits until wbuf is sent. 0, ENGRAM_ECLOSED or ENGRAM_ETIMEOUT (no
 * progress for write_timeout_ms). */
static int wbuf_flush_blocking(http_conn_t *c)
{
    for (;;) {
        int rc = http_conn_wbuf_flush(c);
        if (rc != ENGRAM_EAGAIN) return rc;
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        int pr;
        do pr = poll(&pfd, 1, c->srv->cfg.write_timeout_ms); while (pr < 0 && errno == EINTR);
        if (pr == 0) return ENGRAM_ETIMEOUT;
        if (pr < 0 || (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) return ENGRAM_ECLOSED;
    }
}

/* The record layer's output (tls_send_fn): send at once what the socket
 * takes, keep the rest in order in wbuf. */
int http_conn_tls_out(void *ctx, const unsigned char *p, size_t n)
{
    http_conn_t *c = ctx;
    if (c->wpos == c->wlen) {
        ssize_t w;
        do w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT); while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return ENGRAM_ECLOSED;
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        if (n == 0) return 0;
    }
    return wbuf_append(c, p, n) ? ENGRAM_ECLOSED : 0;
}

/* Encrypts one slice and waits until it is on the wire. */
static int tls_send_blocking(http_conn_t *c, const void *p, size_t n)
{
    if (tls_conn_write(c->tls, p, n)) return ENGRAM_ECLOSED;
    return wbuf_flush_blocking(c);
}

/* Worker writes over TLS: the iovecs are gathered into full records (a
 * head and a small body make one record), large pieces go straight from
 * the caller's memory; at most one record waits in wbuf at a time. */
static int tls_write_blocking(http_conn_t *c, struct iovec *iov, int cnt)
{
    unsigned char stage[TLS_RECORD_MAX];
    size_t used = 0;
    int rc;
    for (int i = 0; i < cnt; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;
        while (left > 0) {
            if (used == 0 && left >= sizeof stage) {
                if ((rc = tls_send_blocking(c, p, sizeof stage))) return rc;
                p += sizeof stage;
                left -= sizeof stage;
                continue;
            }
            size_t take = sizeof stage - used < left ? sizeof stage - used : left;
            memcpy(stage + used, p, take);
            used += take;
            p += take;
            left -= take;
            if (used == sizeof stage) {
                if ((rc = tls_send_blocking(c, stage, used))) return rc;
                used = 0;
            }
        }
    }
    return used ? tls_send_blocking(c, stage, used) : 0;
}

/* Writes everything, waiting in poll() on EAGAIN. Returns 0, ENGRAM_ECLOSED
 * or ENGRAM_ETIMEOUT (no progress for write_timeout_ms). */
static int write_blocking(http_conn_t *c, struct iovec *iov, int cnt)
{
    if (c->tls) return tls_write_blocking(c, iov, cnt);
    int timeout = c->srv->cfg.write_timeout_ms;
    while (cnt > 0) {
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)cnt;
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) return ENGRAM_ECLOSED;
            struct pollfd pfd = {c->fd, POLLOUT, 0};
            int pr;
            do pr = poll(&pfd, 1, timeout); while (pr < 0 && errno == EINTR);
            if (pr == 0) return ENGRAM_ETIMEOUT;
            if (pr < 0 || (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))) return ENGRAM_ECLOSED;
            continue;
        }
        size_t left = (size_t)n;
        while (cnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

/* Loop thread: writes what the socket takes now, keeps the rest in wbuf for
 * the loop to flush on EPOLLOUT. */
static int write_nonblocking(http_conn_t *c, struct iovec *iov, int cnt)
{
    if (c->tls) {
        for (int i = 0; i < cnt; i++) {
            if (iov[i].iov_len && tls_conn_write(c->tls, iov[i].iov_base, iov[i].iov_len))
                return ENGRAM_ECLOSED;
        }
        return http_conn_wbuf_flush(c) == ENGRAM_ECLOSED ? ENGRAM_ECLOSED : 0;
    }
    size_t total = 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    size_t sent = 0;
    if (c->wlen == c->wpos) {
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)cnt;
        ssize_t n;
        do n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return ENGRAM_ECLOSED;
        if (n > 0) sent = (size_t)n;
        if (sent == total) return 0;
    }
    size_t skip = sent;
    for (int i = 0; i < cnt; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) { skip -= l; continue; }
        if (wbuf_append(c, (char *)iov[i].iov_base + skip, l - skip)) return ENGRAM_ENOMEM;
        skip = 0;
    }
    return 0;
}

static int conn_send(http_conn_t *c, struct iovec *iov, int cnt)
{
    if (c->write_failed) return ENGRAM_ECLOSED;
    int rc = c->on_loop ? write_nonblocking(c, iov, cnt) : write_blocking(c, iov, cnt);
    if (rc) {
        c->write_failed = 1;
        c->req.close_after = 1;
    }
    return rc;
}

/* Builds the status line and common headers into out (size outsz). Returns
 * the length, or -1 if it did not fit. */
static int build_head(http_request_t *req, int status, const char *ctype, long content_length,
                      int chunked, const char *extra, char *out, size_t outsz)
{
    const char *conn_hdr = req->close_after ? "Connection: close\r\n"
                           : req->minor_version == 0 ? "Connection: keep-alive\r\n" : "";
    char len_hdr[48] = "";
    if (content_length >= 0) snprintf(len_hdr, sizeof len_hdr, "Content-Length: %ld\r\n", content_length);
    int n = snprintf(out, outsz,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nX-Request-ID: %s\r\n%s%s%s%s%s%s%s\r\n",
                     status, reason_phrase(status), http_date(), req->request_id,
                     ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
                     len_hdr, chunked ? "Transfer-Encoding: chunked\r\n" : "", extra ? extra : "",
                     conn_hdr);
    if (n < 0 || (size_t)n >= outsz) return -1;
    return n;
}

/* Begins an answer: decides on closing, sends the head (+ body iov). */
static int send_answer(http_request_t *req, int status, const char *ctype, long content_length,
                       int chunked, const char *extra, const void *body, size_t body_len)
{
    http_conn_t *c = req->conn;
    req->responded = 1;
    req->status = status;
    if (c->on_loop && c->body_announced) req->close_after = 1;
    if (atomic_load(&c->srv->stopping)) req->close_after = 1;

    char small[2048];
    char *hb = small;
    size_t need = 512 + (extra ? strlen(extra) : 0) + (ctype ? strlen(ctype) : 0);
    if (need > sizeof small) {
        hb = eg_malloc(need);
        if (!hb) {
            c->write_failed = 1;
            req->close_after = 1;
            return ENGRAM_ENOMEM;
        }
    }
    int hl = build_head(req, status, ctype, content_length, chunked, extra, hb, need);
    int rc;
    if (hl < 0) {
        rc = ENGRAM_EINVAL;
        c->write_failed = 1;
        req->close_after = 1;
    } else {
        struct iovec iov[2] = {{hb, (size_t)hl}, {(void *)body, body_len}};
        rc = conn_send(c, iov, body_len ? 2 : 1);
        if (!rc) req->bytes_sent += body_len;
    }
    if (hb != small) eg_free(hb);
    return rc;
}

int http_respond(http_request_t *req, int status, const char *content_type, const void *body,
                 size_t len, const char *extra_headers)
{
    if (!req || !req->conn || req->responded || status < 200 || status > 999) return ENGRAM_EINVAL;
    int no_body = status == 204 || status == 304;
    if (no_body) {
        return send_answer(req, status, NULL, -1, 0, extra_headers, NULL, 0);
    }
    if (!body) len = 0;
    return send_answer(req, status, content_type, (long)len, 0, extra_headers,
                       req->conn->is_head ? NULL : body, req->conn->is_head ? 0 : len);
}

int http_stream_begin(http_request_t *req, int status, const char *content_type,
                      const char *extra_headers)
{
    if (!req || !req->conn || req->responded || req->conn->on_loop || status < 200 || status > 999)
        return ENGRAM_EINVAL;
    http_conn_t *c = req->conn;
    req->streaming = 1;
    c->stream_ended = 0;
    c->stream_chunked = req->minor_version >= 1;
    if (!c->stream_chunked) req->close_after = 1; /* HTTP/1.0: the close ends the body */
    return send_answer(req, status, content_type, -1, c->stream_chunked, extra_headers, NULL, 0);
}

int http_stream_write(http_request_t *req, const void *data, size_t len)
{
    if (!req || !req->conn || !req->streaming || req->conn->stream_ended) return ENGRAM_EINVAL;
    http_conn_t *c = req->conn;
    if (c->write_failed) return ENGRAM_ECLOSED;
    if (len == 0 || c->is_head) return 0;
    int rc;
    if (c->stream_chunked) {
        char sz[24];
        int n = snprintf(sz, sizeof sz, "%zx\r\n", len);
        struct iovec iov[3] = {{sz, (size_t)n}, {(void *)data, len}, {"\r\n", 2}};
        rc = conn_send(c, iov, 3);
    } else {
        struct iovec iov[1] = {{(void *)data, len}};
        rc = conn_send(c, iov, 1);
    }
    if (!rc) req->bytes_sent += len;
    return rc;
}

int http_stream_end(http_request_t *req)
{
    if (!req || !req->conn || !req->streaming) return ENGRAM_EINVAL;
    http_conn_t *c = req->conn;
    if (c->stream_ended) return 0;
    c->stream_ended = 1;
    if (c->write_failed) return ENGRAM_ECLOSED;
    if (!c->stream_chunked || c->is_head) return 0;
    struct iovec iov[1] = {{"0\r\n\r\n", 5}};
    return conn_send(c, iov, 1);
}

int http_client_gone(http_request_t *req)
{
    if (!req || !req->conn) return 1;
    if (req->conn->write_failed) return 1;
    struct pollfd pfd = {req->conn->fd, POLLRDHUP, 0};
    if (poll(&pfd, 1, 0) < 0) return 0;
    return (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* Fallback error body when the API layer installed no on_error. */
void http_default_error(http_request_t *req, int status, const char *message)
{
    const char *code = status == 400 ? "BAD_REQUEST" : status == 408 ? "REQUEST_TIMEOUT"
                     : status == 413 ? "PAYLOAD_TOO_LARGE" : status == 431 ? "HEADERS_TOO_LARGE"
                     : status == 501 ? "NOT_IMPLEMENTED" : status == 503 ? "UNAVAILABLE"
                     : status == 505 ? "HTTP_VERSION_NOT_SUPPORTED" : "INTERNAL";
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"detail\":\"%s\",\"error\":{\"code\":\"%s\",\"message\":\"%s\"},"
                     "\"meta\":{\"request_id\":\"%s\"}}",
                     message, code, message, req->request_id);
    if (n < 0 || (size_t)n >= sizeof body) n = 0;
    http_respond(req, status, "application/json", body, (size_t)n, NULL);
}

