/*
 * server.c - the HTTP/1.1 server: event loop, connection state machine,
 * request reading, worker pool. Answers and the bytes under them are in
 * answer.c; the shared structures in server_internal.h. Contract in http.h.
 *
 * Threads. One loop thread owns the listening socket, the epoll set and every
 * connection that is not dispatched. A connection whose request is complete
 * is removed from epoll and queued to the worker pool (work queue, mutex +
 * condition variable). Requests that on_headers marked req.waits (they may
 * wait on a database commit or an upstream service: uploads, other writes,
 * chat) queue apart, and at most cfg.waiting_max of them hold a worker at
 * once; workers take the older of the two queues' heads, skipping the
 * waiting queue while it is at its limit. So a burst of uploads waiting on
 * the writer never leaves a search without a worker. The worker runs the
 * handler, writes the answer with blocking-with-timeout writes (the socket
 * stays non-blocking, poll() waits on EAGAIN), finishes the request (access
 * log, on_done) and puts the connection on the done queue, waking the loop
 * through an eventfd. Only then does the loop touch the connection again, so
 * a connection has exactly one owner at a time and needs no lock; the queue
 * mutexes give the handoff its ordering. Lock order: the work mutex and the
 * done mutex are never held together.
 *
 * Connection states (loop-owned unless noted):
 *   HANDSHAKE  HTTPS only: the first byte tells TLS (0x16) from plain text
 *              (a plain-text 400, then LINGER); then the TLS handshake
 *   HEAD       waiting for / reading a request head (idle when no byte yet)
 *   BODY       reading a Content-Length or chunked body
 *   DISPATCHED owned by a worker
 *   WRITING    flushing an answer the loop thread produced (on_headers or a
 *              server error) that did not fit the socket buffer at once
 *   LINGER     answer sent, write side shut down, discarding input until the
 *              peer closes or a short deadline, so the client reads the
 *              answer instead of a reset
 * Each has a deadline (header timeout from the first byte of the head, body
 * timeout from the last progress, idle timeout between requests, write and
 * linger deadlines) checked by a scan of all connections every loop tick
 * (epoll_wait wakes at least every TICK_MS), O(connections) per tick.
 *
 * Pipelining: bytes read past the current request stay in the connection's
 * read buffer and are parsed when the connection comes back from the worker,
 * so answers go out in request order, one request in flight per connection.
 * Content-Length bodies are read straight into the body buffer once the read
 * buffer is drained; chunked bodies are decoded from the read buffer into the
 * body buffer: either way each body byte is copied once.
 *
 * TLS. The record layer (tls.c) reads the socket itself and hands its
 * output to tls_out, which sends what the socket takes and queues the rest
 * in wbuf: no write is ever "retried" inside mbedTLS. Loop answers leave
 * queued records to the WRITING state; worker writes gather iovecs into
 * 16 KB records and flush wbuf with poll() between records. Decrypted bytes
 * can wait inside the record layer with no socket event to announce them,
 * so conn_read keeps reading while tls_conn_pending() and conn_next_request
 * reads them after each answer.
 *
 * Spooling. When on_headers raised max_body above HTTP_SPOOL_ROUTE_MIN and
 * the body passes HTTP_SPOOL_BODY_MIN (at once for a Content-Length, on the
 * way for chunked), body bytes go through a SPOOL_BUF buffer to an unlinked
 * file (spool.c); at dispatch the file is mapped read-only, the buffer
 * freed, and req->body points into the mapping until finish_request. Writes
 * to the file happen on the loop thread: page-cache writes, not disk waits,
 * in the common case.
 *
 * Stop: http_server_stop() writes to an eventfd (async-signal-safe). The loop
 * then closes the listening socket and every connection that is not
 * dispatched, waits up to drain_ms for dispatched requests (their answers
 * carry "Connection: close"), shuts the sockets of stragglers down, joins the
 * workers and returns.
 */
#include "http/http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "http/server_internal.h"
#include "util/common.h"
#include "util/json.h"
#include "util/log.h"

static char tag_listen, tag_wake, tag_stop;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t ms_ns(int ms) { return (uint64_t)(ms > 0 ? ms : 0) * 1000000ull; }

/* ------------------------------------------------------------ requests */

static void new_request_id(char out[129])
{
    unsigned char rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[rnd[i] >> 4];
        out[2 * i + 1] = hex[rnd[i] & 15];
    }
    out[32] = '\0';
}

/* Starts a request record that has no parsed head (server errors before or
 * instead of parsing). */
static void blank_request(http_conn_t *c)
{
    memset(&c->req, 0, sizeof c->req);
    c->req.method = "";
    c->req.target = "";
    c->req.path = "";
    c->req.query = "";
    c->req.minor_version = 1;
    c->req.body = "";
    c->req.conn = c;
    c->req.max_body = c->srv->cfg.max_body_bytes;
    c->req.start_ns = now_ns();
    snprintf(c->req.remote_addr, sizeof c->req.remote_addr, "%s", c->remote);
    new_request_id(c->req.request_id);
    c->req_active = 1;
    c->is_head = 0;
    c->stream_ended = 0;
}

static void access_log(http_conn_t *c, double duration_ms)
{
    http_request_t *req = &c->req;
    char ts[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(now.tv_nsec / 1000000));
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "ts", ts);
    jw_kstr(&w, "level", "info");
    jw_kstr(&w, "msg", "request");
    jw_kstr(&w, "method", req->method);
    jw_kstr(&w, "path", req->path);
    jw_kstr(&w, "route", req->route_label);
    jw_kint(&w, "status", req->status);
    jw_kint(&w, "bytes", (int64_t)req->bytes_sent);
    jw_kdouble(&w, "duration_ms", (double)(int64_t)(duration_ms * 1000.0) / 1000.0);
    jw_kstr(&w, "request_id", req->request_id);
    jw_kstr(&w, "remote", req->remote_addr);
    jw_obj_end(&w);
    if (!b.err && b.data) log_write_json_line(b.data, b.len);
    buf_free(&b);
}

/* Ends the current request on whatever thread answered it: makes sure an
 * answer went out, logs it, calls on_done and releases its memory. */
static void finish_request(http_conn_t *c)
{
    http_server_t *s = c->srv;
    http_request_t *req = &c->req;
    if (!req->responded) {
        req->close_after = 1;
        if (s->cfg.on_error) s->cfg.on_error(req, 500, "the request was not answered", s->cfg.ud);
        if (!req->responded) http_default_error(req, 500, "the request was not answered");
    }
    if (req->streaming && !c->stream_ended) http_stream_end(req);
    double dur = (double)(now_ns() - req->start_ns) / 1e6;
    if (log_level <= LOG_INFO) access_log(c, dur);
    if (s->cfg.on_done) s->cfg.on_done(req, dur, s->cfg.ud);
    if (c->write_failed) req->close_after = 1;
    eg_free(c->req_store);
    c->req_store = NULL;
    eg_free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
    spool_close(&c->spool);
    c->spooling = 0;
    req->body_file = 0;
    c->req_active = 0;
}

/* ------------------------------------------------------ connection life */

static void conn_watch(http_conn_t *c, int events)
{
    if (c->watched == events) return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (uint32_t)events;
    ev.data.ptr = c;
    if (events == 0) epoll_ctl(c->srv->epfd, EPOLL_CTL_DEL, c->fd, &ev);
    else epoll_ctl(c->srv->epfd, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
    c->watched = events;
}

static void conn_free(http_conn_t *c)
{
    if (c->req_active) {
        eg_free(c->req_store);
        eg_free(c->body);
    }
    spool_close(&c->spool);
    tls_conn_free(c->tls);
    eg_free(c->rbuf);
    eg_free(c->wbuf);
    eg_free(c);
}

/* Closes now, frees later (free_closed): callers up the stack and events
 * of the current epoll batch may still hold the pointer; they see
 * CS_CLOSED and leave it alone. */
static void conn_close(http_conn_t *c)
{
    http_server_t *s = c->srv;
    if (c->state == CS_CLOSED) return;
    if (c->watched) conn_watch(c, 0);
    close(c->fd);
    c->fd = -1;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = NULL;
    c->state = CS_CLOSED;
    c->qnext = s->closed;
    s->closed = c;
    atomic_fetch_sub(&s->n_conns, 1);
}

static void free_closed(http_server_t *s)
{
    while (s->closed) {
        http_conn_t *c = s->closed;
        s->closed = c->qnext;
        conn_free(c);
    }
}

/* The answer is out: keep reading on, or shut the write side and drain. */
static void conn_linger(http_conn_t *c)
{
    if (c->tls && c->tls_ready) {
        /* Best effort: what the socket does not take now is dropped. */
        tls_conn_close_notify(c->tls);
        http_conn_wbuf_flush(c);
    }
    shutdown(c->fd, SHUT_WR);
    c->state = CS_LINGER;
    /* Stopping: nothing more will be read, a short grace is enough. */
    c->deadline_ns = now_ns() + ms_ns(atomic_load(&c->srv->stopping) ? LINGER_MS / 8 : LINGER_MS);
    conn_watch(c, EPOLLIN);
}

static void conn_process(http_conn_t *c);
static void conn_read(http_conn_t *c);

/* Sets the connection up for its next request (after an answer). */
static void conn_next_request(http_conn_t *c)
{
    http_server_t *s = c->srv;
    c->state = CS_HEAD;
    http_head_parser_init(&c->hp);
    c->write_failed = 0;
    c->on_loop = 1;
    c->body_announced = 0;
    if (c->wcap && c->wpos == c->wlen) http_conn_wbuf_release(c); /* idle: keep nothing */
    if (c->rpos == c->rlen) c->rpos = c->rlen = 0;
    c->bytes_seen = c->rlen > c->rpos;
    c->req.start_ns = c->bytes_seen ? now_ns() : 0;
    c->deadline_ns = now_ns() + ms_ns(c->bytes_seen ? s->cfg.header_timeout_ms
                                                    : s->cfg.idle_timeout_ms);
    conn_watch(c, EPOLLIN);
    if (c->bytes_seen) conn_process(c);
    /* Decrypted bytes already inside the record layer raise no event. */
    if (c->tls && (c->state == CS_HEAD || c->state == CS_BODY) && tls_conn_pending(c->tls))
        conn_read(c);
}

/* After the loop thread answered (on_headers, or a server error). */
static void conn_after_loop_answer(http_conn_t *c)
{
    int close_after = c->req.close_after;
    int failed = c->write_failed;
    finish_request(c);
    if (failed) { conn_close(c); return; }
    if (c->wlen > c->wpos) {
        c->state = CS_WRITING;
        c->deadline_ns = now_ns() + ms_ns(c->srv->cfg.write_timeout_ms);
        c->req.close_after = close_after;
        conn_watch(c, EPOLLOUT);
        return;
    }
    if (close_after) conn_linger(c);
    else conn_next_request(c);
}

/* A server-generated error: answer through on_error, then close. */
static void conn_error(http_conn_t *c, int status, const char *message)
{
    http_server_t *s = c->srv;
    if (!c->req_active) {
        uint64_t first = c->req.start_ns;
        blank_request(c);
        if (c->bytes_seen && first) c->req.start_ns = first;
    }
    c->on_loop = 1;
    c->req.close_after = 1;
    if (!c->req.responded) {
        if (s->cfg.on_error) s->cfg.on_error(&c->req, status, message, s->cfg.ud);
        if (!c->req.responded) http_default_error(&c->req, status, message);
    }
    c->req.close_after = 1;
    conn_after_loop_answer(c);
}

static const char *status_message(int status)
{
    switch (status) {
    case 400: return "malformed HTTP request";
    case 408: return "request timed out";
    case 413: return "request body too large";
    case 431: return "request headers too large";
    case 501: return "transfer coding not implemented";
    case 505: return "HTTP version not supported";
    default: return "internal error";
    }
}

/* A body could not be stored: the client gets a 500, the log the reason. */
static void body_fail(http_conn_t *c, int rc)
{
    if (rc == ENGRAM_ENOMEM) {
        conn_error(c, 500, "out of memory");
        return;
    }
    log_error("cannot spool a request body to %s: %s", c->srv->spool_dir, engram_strerror(rc));
    conn_error(c, 500, "cannot store the request body");
}

/* From now on the body goes to an unlinked file (the bytes so far first);
 * c->body becomes a SPOOL_BUF write buffer. */
static int spool_begin(http_conn_t *c)
{
    int rc = spool_open(&c->spool, c->srv->spool_dir);
    if (rc) return rc;
    if (c->body_len && (rc = spool_write(&c->spool, c->body, c->body_len))) return rc;
    c->body_len = 0;
    if (c->body_cap != SPOOL_BUF) {
        char *nb = eg_realloc(c->body, SPOOL_BUF);
        if (!nb) return ENGRAM_ENOMEM;
        c->body = nb;
        c->body_cap = SPOOL_BUF;
    }
    c->spooling = 1;
    return 0;
}

static int spool_flush(http_conn_t *c)
{
    int rc = c->body_len ? spool_write(&c->spool, c->body, c->body_len) : 0;
    c->body_len = 0;
    return rc;
}

static void dispatch(http_conn_t *c)
{
    http_server_t *s = c->srv;
    if (c->spooling) {
        /* The handler sees the file through a mapping; the write buffer is
         * not needed while it runs. */
        const char *data = NULL;
        int rc = spool_flush(c);
        if (!rc) rc = spool_map(&c->spool, &data);
        eg_free(c->body);
        c->body = NULL;
        c->body_len = c->body_cap = 0;
        if (rc) {
            body_fail(c, rc);
            return;
        }
        c->req.body = data;
        c->req.body_len = c->spool.len;
        c->req.body_file = 1;
    } else {
        if (c->body) c->body[c->body_len] = '\0';
        c->req.body = c->body ? c->body : "";
        c->req.body_len = c->body_len;
    }
    c->body_announced = 0;
    conn_watch(c, 0);
    c->state = CS_DISPATCHED;
    c->on_loop = 0;
    c->qnext = NULL;
    s->n_dispatched++;
    pthread_mutex_lock(&s->work_mu);
    c->seq = ++s->work_seq;
    http_conn_t **head = c->req.waits ? &s->wait_head : &s->work_head;
    http_conn_t **tail = c->req.waits ? &s->wait_tail : &s->work_tail;
    if (*tail) (*tail)->qnext = c;
    else *head = c;
    *tail = c;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->work_mu);
}

/* Appends body bytes, growing the buffer (always one spare byte for NUL). */
static int body_append(http_conn_t *c, const char *p, size_t n)
{
    int rc;
    if (!c->spooling && c->spool_ok && c->body_len + n > HTTP_SPOOL_BODY_MIN &&
        (rc = spool_begin(c)))
        return rc;
    if (c->spooling) {
        while (n > 0) {
            size_t take = c->body_cap - c->body_len < n ? c->body_cap - c->body_len : n;
            memcpy(c->body + c->body_len, p, take);
            c->body_len += take;
            p += take;
            n -= take;
            if (c->body_len == c->body_cap && (rc = spool_flush(c))) return rc;
        }
        return 0;
    }
    if (c->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        while (cap < c->body_len + n + 1) cap *= 2;
        char *nb = eg_realloc(c->body, cap);
        if (!nb) return ENGRAM_ENOMEM;
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    return 0;
}

/* Moves buffered body bytes into the body; dispatches when complete. */
static void conn_body_from_buffer(http_conn_t *c)
{
    if (!c->chunked) {
        size_t n = c->rlen - c->rpos;
        if (n > c->cl_left) n = (size_t)c->cl_left;
        int rc = n ? body_append(c, c->rbuf + c->rpos, n) : 0;
        if (rc) {
            body_fail(c, rc);
            return;
        }
        c->rpos += n;
        c->cl_left -= n;
        if (c->cl_left == 0) dispatch(c);
        return;
    }
    for (;;) {
        size_t used, off, len;
        int rc = http_chunked_feed(&c->ck, c->rbuf + c->rpos, c->rlen - c->rpos, &used, &off, &len);
        if (rc < 0) {
            c->rpos = c->rlen;
            conn_error(c, -rc, status_message(-rc));
            return;
        }
        int brc = rc == HTTP_CHUNK_DATA ? body_append(c, c->rbuf + c->rpos + off, len) : 0;
        if (brc) {
            body_fail(c, brc);
            return;
        }
        c->rpos += used;
        if (rc == HTTP_CHUNK_DONE) {
            dispatch(c);
            return;
        }
        if (rc == HTTP_CHUNK_MORE) return;
    }
}

/* A complete head of head_len bytes sits at rbuf + rpos. */
static void conn_start_request(http_conn_t *c, int head_len)
{
    http_server_t *s = c->srv;
    http_request_t *req = &c->req;
    uint64_t first = req->start_ns;
    memset(req, 0, sizeof *req);
    req->start_ns = first ? first : now_ns();
    req->conn = c;
    req->body = "";
    snprintf(req->remote_addr, sizeof req->remote_addr, "%s", c->remote);
    c->req_active = 1;
    c->stream_ended = 0;
    c->on_loop = 1;
    int rc = http_request_from_head(req, c->rbuf + c->rpos, &c->head, &c->req_store);
    const char *rid = rc == 0 ? http_header(req, "X-Request-ID") : NULL;
    if (rid && http_request_id_ok(rid)) snprintf(req->request_id, sizeof req->request_id, "%s", rid);
    else new_request_id(req->request_id);
    c->rpos += (size_t)head_len;
    if (rc) {
        req->method = req->target = req->path = req->query = "";
        conn_error(c, rc == -400 ? 400 : 500, rc == -400 ? status_message(400) : "out of memory");
        return;
    }
    req->max_body = s->cfg.max_body_bytes;
    req->close_after = !c->head.keep_alive;
    c->is_head = strcmp(req->method, "HEAD") == 0;
    c->chunked = c->head.chunked;
    c->cl_left = c->head.content_length > 0 ? (uint64_t)c->head.content_length : 0;
    c->body_announced = c->chunked || c->cl_left > 0;
    c->spool_ok = 0;
    if (s->cfg.on_headers) {
        log_set_request_id(req->request_id);
        rc = s->cfg.on_headers(req, s->cfg.ud);
        log_set_request_id(NULL);
        if (req->responded || rc) {
            if (!req->responded) conn_error(c, 500, "request refused");
            else conn_after_loop_answer(c);
            return;
        }
    }
    if (!c->body_announced) {
        dispatch(c);
        return;
    }
    if (!c->chunked && c->cl_left > req->max_body) {
        conn_error(c, 413, status_message(413));
        return;
    }
    if (c->chunked) http_chunked_init(&c->ck, req->max_body);
    c->spool_ok = s->spool_dir && req->max_body > HTTP_SPOOL_ROUTE_MIN;
    if (c->spool_ok && !c->chunked && c->cl_left > HTTP_SPOOL_BODY_MIN && (rc = spool_begin(c))) {
        body_fail(c, rc);
        return;
    }
    if (c->head.expect_continue && req->minor_version == 1 && c->rpos == c->rlen &&
        !(c->tls && tls_conn_pending(c->tls))) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t n;
        if (c->tls) {
            /* All or nothing, like the plain send below: an answer that
             * cannot even leave at once means a client that is not reading. */
            n = tls_conn_write(c->tls, cont, sizeof cont - 1) == 0 && c->wpos == c->wlen
                    ? (ssize_t)(sizeof cont - 1) : -1;
        } else {
            n = send(c->fd, cont, sizeof cont - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        if (n != (ssize_t)(sizeof cont - 1)) {
            c->write_failed = 1;
            req->responded = 1;
            req->status = 400;
            finish_request(c);
            conn_close(c);
            return;
        }
    }
    c->state = CS_BODY;
    c->deadline_ns = now_ns() + ms_ns(s->cfg.body_timeout_ms);
    conn_body_from_buffer(c);
}

/* Parses what is buffered: a head, then body bytes. */
static void conn_process(http_conn_t *c)
{
    if (c->state == CS_HEAD) {
        if (c->rlen == c->rpos) return;
        int rc = http_head_scan(&c->hp, c->rbuf + c->rpos, c->rlen - c->rpos,
                                c->srv->cfg.max_header_bytes, &c->head);
        if (rc == 0) return;
        if (rc < 0) {
            c->rpos = c->rlen;
            conn_error(c, -rc, status_message(-rc));
            return;
        }
        conn_start_request(c, rc);
        return;
    }
    if (c->state == CS_BODY) conn_body_from_buffer(c);
}

/* Readable in HEAD or BODY state. */
/* read(2) semantics over the plain socket or the TLS record layer: > 0
 * bytes, 0 at the end, -1 with errno (EAGAIN: nothing ready). */
static ssize_t conn_recv(http_conn_t *c, void *buf, size_t len)
{
    if (!c->tls) return read(c->fd, buf, len);
    long n = tls_conn_read(c->tls, buf, len);
    if (n >= 0) return (ssize_t)n;
    errno = n == ENGRAM_EAGAIN ? EAGAIN : EPROTO;
    return -1;
}

static void conn_read(http_conn_t *c)
{
    http_server_t *s = c->srv;
    size_t rlimit = s->cfg.max_header_bytes + 1024;
    /* Past the fairness bound, still empty the record layer: bytes it holds
     * raise no further event. */
    for (int rounds = 0; rounds < 16 || (c->tls && tls_conn_pending(c->tls)); rounds++) {
        ssize_t n;
        int direct = c->state == CS_BODY && !c->chunked && c->rpos == c->rlen;
        if (direct && c->spooling) {
            /* Spooled Content-Length body: through the bounded buffer. */
            if (c->body_len == c->body_cap) {
                int rc = spool_flush(c);
                if (rc) { body_fail(c, rc); return; }
            }
        } else if (direct) {
            /* Content-Length body: straight into the body buffer. */
            if (c->body_len + 1 >= c->body_cap) {
                size_t want = c->body_len + (size_t)c->cl_left + 1;
                size_t cap = c->body_cap ? c->body_cap * 2 : 16384;
                if (cap > want) cap = want;
                char *nb = eg_realloc(c->body, cap);
                if (!nb) { conn_error(c, 500, "out of memory"); return; }
                c->body = nb;
                c->body_cap = cap;
            }
        }
        if (direct) {
            size_t room = c->body_cap - (c->spooling ? 0 : 1) - c->body_len;
            if (room > c->cl_left) room = (size_t)c->cl_left;
            n = conn_recv(c, c->body + c->body_len, room);
        } else {
            if (c->rpos == c->rlen) {
                c->rpos = c->rlen = 0;
            } else if (c->rpos > 0 && c->rlen == c->rcap) {
                memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
                c->rlen -= c->rpos;
                c->rpos = 0;
            }
            if (c->rlen == c->rcap) {
                if (c->rcap >= rlimit) { conn_close(c); return; } /* the parser stops first */
                size_t cap = c->rcap ? c->rcap * 2 : READ_CHUNK;
                if (cap > rlimit) cap = rlimit;
                char *nb = eg_realloc(c->rbuf, cap);
                if (!nb) { conn_close(c); return; }
                c->rbuf = nb;
                c->rcap = cap;
            }
            n = conn_recv(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_close(c);
            return;
        }
        if (n == 0) {
            conn_close(c);
            return;
        }
        uint64_t now = now_ns();
        if (c->state == CS_BODY) {
            c->deadline_ns = now + ms_ns(s->cfg.body_timeout_ms);
        } else if (!c->bytes_seen) {
            c->bytes_seen = 1;
            c->req.start_ns = now;
            c->deadline_ns = now + ms_ns(s->cfg.header_timeout_ms);
        }
        if (direct) {
            c->body_len += (size_t)n;
            c->cl_left -= (uint64_t)n;
            if (c->cl_left == 0) { dispatch(c); return; }
            continue;
        }
        c->rlen += (size_t)n;
        conn_process(c);
        if (c->state != CS_HEAD && c->state != CS_BODY) return;
    }
}

static void conn_flush(http_conn_t *c)
{
    while (c->wpos < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            conn_close(c);
            return;
        }
        c->wpos += (size_t)n;
        c->deadline_ns = now_ns() + ms_ns(c->srv->cfg.write_timeout_ms);
    }
    http_conn_wbuf_release(c);
    if (c->req.close_after || atomic_load(&c->srv->stopping)) conn_linger(c);
    else conn_next_request(c);
}

static void conn_drain(http_conn_t *c)
{
    char scratch[4096];
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(c->fd, scratch, sizeof scratch);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_close(c);
        return;
    }
}

/* Plain HTTP on the HTTPS port: a short plain-text 400, then close. */
static void conn_refuse_plain(http_conn_t *c)
{
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Type: text/plain\r\n"
                              "Content-Length: 40\r\n"
                              "Connection: close\r\n\r\n"
                              "This port speaks HTTPS only (use https)\n";
    log_debug("plain HTTP on the HTTPS port from %s: refused", c->remote);
    ssize_t n;
    do n = send(c->fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
    conn_linger(c);
}

/* CS_HANDSHAKE: tells TLS from plain text by the first byte, then drives
 * the handshake; the whole of it runs under the header timeout set at
 * accept. */
static void conn_handshake(http_conn_t *c)
{
    if (!c->tls_started) {
        unsigned char first[8];
        ssize_t n;
        do n = recv(c->fd, first, sizeof first, MSG_PEEK | MSG_DONTWAIT); while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { conn_close(c); return; }
        if (first[0] != 0x16) {
            if (tls_looks_like_http(first, (size_t)n)) conn_refuse_plain(c);
            else conn_close(c);
            return;
        }
        c->tls_started = 1;
    }
    int rc = 0;
    if (!c->tls_ready) {
        rc = tls_conn_handshake(c->tls);
        if (rc == 0) c->tls_ready = 1;
    }
    int fl = http_conn_wbuf_flush(c);
    if (fl == ENGRAM_ECLOSED || (rc && rc != ENGRAM_EAGAIN)) {
        conn_close(c);
        return;
    }
    if (!c->tls_ready || fl == ENGRAM_EAGAIN) {
        conn_watch(c, EPOLLIN | (fl == ENGRAM_EAGAIN ? EPOLLOUT : 0));
        return;
    }
    if (log_level <= LOG_DEBUG) {
        char what[128];
        tls_conn_describe(c->tls, what, sizeof what);
        log_debug("TLS from %s: %s", c->remote, what);
    }
    c->state = CS_HEAD;
    c->deadline_ns = now_ns() + ms_ns(c->srv->cfg.header_timeout_ms);
    conn_watch(c, EPOLLIN);
    conn_read(c);
}

static void conn_event(http_conn_t *c, uint32_t events)
{
    switch (c->state) {
    case CS_HANDSHAKE: conn_handshake(c); break;
    case CS_HEAD:
    case CS_BODY: conn_read(c); break;
    case CS_WRITING:
        if (events & (EPOLLERR | EPOLLHUP)) conn_close(c);
        else conn_flush(c);
        break;
    case CS_LINGER: conn_drain(c); break;
    default: break;
    }
}

static void format_remote(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, outsz, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        if (strncmp(host, "::ffff:", 7) == 0 && strchr(host + 7, '.'))
            snprintf(out, outsz, "%s:%d", host + 7, port);
        else
            snprintf(out, outsz, "[%s]:%d", host, port);
    } else {
        snprintf(out, outsz, "unix");
    }
}

/* Over max_connections: a quick 503 and close, without reading. */
static void reject_busy(http_server_t *s, int fd, const char *remote)
{
    if (s->tls) {
        /* No HTTP answer is possible before a handshake. */
        close(fd);
        return;
    }
    http_conn_t *c = eg_calloc(1, sizeof *c);
    if (!c) { close(fd); return; }
    c->srv = s;
    c->fd = fd;
    c->spool.fd = -1;
    c->on_loop = 1;
    snprintf(c->remote, sizeof c->remote, "%s", remote);
    blank_request(c);
    c->req.close_after = 1;
    if (s->cfg.on_error) s->cfg.on_error(&c->req, 503, "server busy", s->cfg.ud);
    if (!c->req.responded) http_default_error(&c->req, 503, "server busy");
    finish_request(c);
    shutdown(fd, SHUT_WR);
    close(fd);
    conn_free(c);
}

static void accept_all(http_server_t *s)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop listening for a tick instead of
                 * spinning on a level-triggered listener. */
                epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
                s->accept_paused = 1;
            }
            return;
        }
        char remote[64];
        format_remote(&ss, remote, sizeof remote);
        if (atomic_load(&s->n_conns) >= s->cfg.max_connections) {
            reject_busy(s, fd, remote);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        http_conn_t *c = eg_calloc(1, sizeof *c);
        if (!c) { close(fd); continue; }
        c->srv = s;
        c->fd = fd;
        c->spool.fd = -1;
        c->state = CS_HEAD;
        c->on_loop = 1;
        if (s->tls) {
            if (tls_conn_new(s->tls, fd, http_conn_tls_out, c, &c->tls)) {
                eg_free(c);
                close(fd);
                continue;
            }
            c->state = CS_HANDSHAKE;
        }
        snprintf(c->remote, sizeof c->remote, "%s", remote);
        http_head_parser_init(&c->hp);
        /* A fresh connection gets the header timeout to say something. */
        c->deadline_ns = now_ns() + ms_ns(s->cfg.header_timeout_ms);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        atomic_fetch_add(&s->n_conns, 1);
        conn_watch(c, EPOLLIN);
    }
}

static void check_timeouts(http_server_t *s, uint64_t now)
{
    http_conn_t *next;
    for (http_conn_t *c = s->conns; c; c = next) {
        next = c->next;
        if (c->state == CS_DISPATCHED || now < c->deadline_ns) continue;
        switch (c->state) {
        case CS_HANDSHAKE: conn_close(c); break; /* slow or silent handshake */
        case CS_HEAD:
            if (c->bytes_seen) conn_error(c, 408, status_message(408));
            else conn_close(c);
            break;
        case CS_BODY: conn_error(c, 408, status_message(408)); break;
        default: conn_close(c); break;
        }
    }
}

/* Connections back from the workers. */
static void take_done(http_server_t *s)
{
    uint64_t v;
    if (read(s->wake_fd, &v, sizeof v) < 0) { /* nothing pending */ }
    pthread_mutex_lock(&s->done_mu);
    http_conn_t *list = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->done_mu);
    while (list) {
        http_conn_t *c = list;
        list = c->qnext;
        c->qnext = NULL;
        s->n_dispatched--;
        c->on_loop = 1;
        if (c->write_failed) conn_close(c);
        else if (c->req.close_after || atomic_load(&s->stopping)) conn_linger(c);
        else conn_next_request(c);
    }
}

/* Under work_mu: the next request a worker may take (see the top of the
 * file), off its queue; NULL when none may run now. */
static http_conn_t *work_take(http_server_t *s)
{
    http_conn_t *w = s->waiting_running < s->cfg.waiting_max ? s->wait_head : NULL;
    http_conn_t *c = s->work_head;
    if (w && (!c || w->seq < c->seq)) {
        s->wait_head = w->qnext;
        if (!s->wait_head) s->wait_tail = NULL;
        s->waiting_running++;
        return w;
    }
    if (c) {
        s->work_head = c->qnext;
        if (!s->work_head) s->work_tail = NULL;
    }
    return c;
}

static void *worker_main(void *arg)
{
    http_server_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->work_mu);
        http_conn_t *c;
        while (!(c = work_take(s)) && !(s->quit && !s->wait_head))
            pthread_cond_wait(&s->work_cv, &s->work_mu);
        if (s->quit) pthread_cond_broadcast(&s->work_cv); /* the others may be done too */
        pthread_mutex_unlock(&s->work_mu);
        if (!c) break;

        log_set_request_id(c->req.request_id);
        if (s->cfg.handler) s->cfg.handler(&c->req, s->cfg.ud);
        int waits = c->req.waits;
        finish_request(c);
        log_set_request_id(NULL);
        if (waits) {
            pthread_mutex_lock(&s->work_mu);
            s->waiting_running--;
            if (s->quit) pthread_cond_broadcast(&s->work_cv);
            else pthread_cond_signal(&s->work_cv);
            pthread_mutex_unlock(&s->work_mu);
        }

        c->qnext = NULL;
        pthread_mutex_lock(&s->done_mu);
        if (s->done_tail) s->done_tail->qnext = c;
        else s->done_head = c;
        s->done_tail = c;
        pthread_mutex_unlock(&s->done_mu);
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof one) < 0) { /* counter full: loop is awake anyway */ }
    }
    return NULL;
}

/* ----------------------------------------------------------- the server */

/* "host:port", "[v6]:port", ":port" -> host ("" for all) and port. */
static int split_listen(const char *spec, char *host, size_t hsz, char *port, size_t psz)
{
    const char *colon;
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (!rb || rb[1] != ':') return ENGRAM_EINVAL;
        if ((size_t)(rb - spec - 1) >= hsz) return ENGRAM_EINVAL;
        memcpy(host, spec + 1, (size_t)(rb - spec - 1));
        host[rb - spec - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= hsz) return ENGRAM_EINVAL;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) >= psz) return ENGRAM_EINVAL;
    for (const char *q = p; *q; q++) if (*q < '0' || *q > '9') return ENGRAM_EINVAL;
    if (atol(p) > 65535) return ENGRAM_EINVAL;
    strcpy(port, p);
    return 0;
}

static int listen_on(const struct sockaddr *sa, socklen_t sl, int v6only)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa->sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    if (bind(fd, sa, sl) < 0 || listen(fd, 1024) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static int open_listener(const char *spec, int *port_out)
{
    char host[256], port[16];
    int rc = split_listen(spec, host, sizeof host, port, sizeof port);
    if (rc) return rc;
    int fd = -1;
    if (!host[0]) {
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_addr = in6addr_any;
        a6.sin6_port = htons((uint16_t)atoi(port));
        fd = listen_on((struct sockaddr *)&a6, sizeof a6, 0);
        if (fd < 0) {
            struct sockaddr_in a4;
            memset(&a4, 0, sizeof a4);
            a4.sin_family = AF_INET;
            a4.sin_addr.s_addr = htonl(INADDR_ANY);
            a4.sin_port = htons((uint16_t)atoi(port));
            fd = listen_on((struct sockaddr *)&a4, sizeof a4, 0);
        }
    } else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return ENGRAM_EINVAL;
        fd = ENGRAM_EINVAL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = listen_on(ai->ai_addr, ai->ai_addrlen, 1);
            if (fd >= 0) break;
        }
        freeaddrinfo(res);
    }
    if (fd < 0) return fd;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    *port_out = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static int epoll_add_tag(int epfd, int fd, void *tag)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.ptr = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int http_server_create(const http_server_config_t *cfg, http_server_t **out)
{
    if (!cfg || !out || !cfg->listen) return ENGRAM_EINVAL;
    *out = NULL;
    if (sodium_init() < 0) return ENGRAM_EIO;
    http_server_t *s = eg_calloc(1, sizeof *s);
    if (!s) return ENGRAM_ENOMEM;
    s->lfd = s->epfd = s->wake_fd = s->stop_fd = -1;
    s->cfg = *cfg;
    /* Not kept: the caller's strings. */
    s->cfg.listen = s->cfg.tls_cert = s->cfg.tls_key = s->cfg.spool_dir = NULL;
    s->cfg.error = NULL;
    s->cfg.error_size = 0;
    char *errbuf = cfg->error_size ? cfg->error : NULL;
    if (errbuf) errbuf[0] = '\0';
    if (s->cfg.workers <= 0) s->cfg.workers = 8;
    if (s->cfg.waiting_max <= 0) /* a quarter of the workers (at least one) kept for the rest */
        s->cfg.waiting_max = EG_MAX(1, s->cfg.workers - EG_MAX(1, s->cfg.workers / 4));
    if (s->cfg.waiting_max > s->cfg.workers) s->cfg.waiting_max = s->cfg.workers;
    if (s->cfg.max_connections <= 0) s->cfg.max_connections = 1024;
    if (s->cfg.max_header_bytes == 0) s->cfg.max_header_bytes = 16384;
    if (s->cfg.max_body_bytes == 0) s->cfg.max_body_bytes = 1 << 20;
    if (s->cfg.header_timeout_ms <= 0) s->cfg.header_timeout_ms = 10000;
    if (s->cfg.body_timeout_ms <= 0) s->cfg.body_timeout_ms = 30000;
    if (s->cfg.idle_timeout_ms <= 0) s->cfg.idle_timeout_ms = 60000;
    if (s->cfg.write_timeout_ms <= 0) s->cfg.write_timeout_ms = 30000;
    s->drain_ms = cfg->drain_ms > 0 ? cfg->drain_ms : DEFAULT_DRAIN_MS;
    int rc = 0;
    pthread_mutex_init(&s->work_mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_mutex_init(&s->done_mu, NULL);

    if (cfg->tls_cert || cfg->tls_key) {
        char why[512];
        rc = tls_server_create(cfg->tls_cert, cfg->tls_key, &s->tls, why, sizeof why);
        if (rc) {
            if (errbuf) snprintf(errbuf, cfg->error_size, "%s", why);
            goto fail;
        }
    }
    if (cfg->spool_dir) {
        rc = spool_dir_prepare(cfg->spool_dir);
        if (rc) {
            if (errbuf)
                snprintf(errbuf, cfg->error_size, "cannot use %s for uploads: %s", cfg->spool_dir,
                         rc == ENGRAM_EINVAL ? "not a directory" : engram_strerror(rc));
            goto fail;
        }
        s->spool_dir = eg_strdup(cfg->spool_dir);
        if (!s->spool_dir) { rc = ENGRAM_ENOMEM; goto fail; }
    }
    int fd = open_listener(cfg->listen, &s->port);
    if (fd < 0) {
        rc = fd;
        if (errbuf) snprintf(errbuf, cfg->error_size, "cannot listen on %s: %s", cfg->listen,
                             engram_strerror(rc));
        goto fail;
    }
    s->lfd = fd;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) { rc = -errno; goto fail; }
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) { rc = -errno; goto fail; }
    s->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->stop_fd < 0) { rc = -errno; goto fail; }
    if ((rc = epoll_add_tag(s->epfd, s->lfd, &tag_listen)) ||
        (rc = epoll_add_tag(s->epfd, s->wake_fd, &tag_wake)) ||
        (rc = epoll_add_tag(s->epfd, s->stop_fd, &tag_stop)))
        goto fail;
    *out = s;
    return 0;
fail:
    http_server_free(s);
    return rc;
}

int http_server_port(const http_server_t *s) { return s ? s->port : -1; }

int http_server_connections(const http_server_t *s) { return s ? atomic_load(&s->n_conns) : 0; }

void http_server_tls_counts(const http_server_t *s, uint64_t *handshakes, uint64_t *fast_records)
{
    tls_server_counts(s ? s->tls : NULL, handshakes, fast_records);
}

void http_server_stop(http_server_t *s)
{
    uint64_t one = 1;
    if (s && write(s->stop_fd, &one, sizeof one) < 0) { /* already signalled */ }
}

static void begin_stop(http_server_t *s)
{
    atomic_store(&s->stopping, 1);
    if (s->lfd >= 0) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
        close(s->lfd);
        s->lfd = -1;
    }
    http_conn_t *next;
    for (http_conn_t *c = s->conns; c; c = next) {
        next = c->next;
        if (c->state != CS_DISPATCHED && c->state != CS_LINGER) conn_close(c);
    }
}

/* While stopping: is any request still being answered or drained? */
static int has_live(const http_server_t *s)
{
    for (const http_conn_t *c = s->conns; c; c = c->next) {
        if (c->state == CS_DISPATCHED || c->state == CS_LINGER) return 1;
    }
    return 0;
}

int http_server_run(http_server_t *s)
{
    if (!s || s->threads) return ENGRAM_EINVAL;
    s->threads = eg_calloc((size_t)s->cfg.workers, sizeof *s->threads);
    if (!s->threads) return ENGRAM_ENOMEM;
    /* Handlers get a stack of at least MIN_THREAD_STACK whatever the C
     * library's default (musl's is 128 KiB). */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    size_t stack = 0;
    if (pthread_attr_getstacksize(&attr, &stack) == 0 && stack < MIN_THREAD_STACK)
        pthread_attr_setstacksize(&attr, MIN_THREAD_STACK);
    for (int i = 0; i < s->cfg.workers; i++) {
        int err = pthread_create(&s->threads[i], &attr, worker_main, s);
        if (err) break;
        s->n_threads++;
    }
    pthread_attr_destroy(&attr);
    int rc = s->n_threads > 0 ? 0 : ENGRAM_ENOMEM;
    uint64_t next_scan = now_ns() + ms_ns(TICK_MS), drain_deadline = 0;
    int stopping = rc != 0;
    if (stopping) begin_stop(s);
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(s->epfd, evs, 64, TICK_MS);
        if (n < 0 && errno != EINTR) { rc = -errno; break; }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &tag_listen) {
                if (!stopping) accept_all(s);
            } else if (p == &tag_wake) {
                take_done(s);
            } else if (p == &tag_stop) {
                uint64_t v;
                if (read(s->stop_fd, &v, sizeof v) < 0) { /* spurious */ }
                if (!stopping) {
                    stopping = 1;
                    begin_stop(s);
                    drain_deadline = now_ns() + ms_ns(s->drain_ms);
                }
            } else {
                conn_event(p, evs[i].events);
            }
        }
        if (stopping) {
            /* Whatever was read meanwhile is not served. */
            http_conn_t *next;
            for (http_conn_t *c = s->conns; c; c = next) {
                next = c->next;
                if (c->state != CS_DISPATCHED && c->state != CS_LINGER) conn_close(c);
            }
        }
        uint64_t now = now_ns();
        if (now >= next_scan) {
            check_timeouts(s, now);
            next_scan = now + ms_ns(TICK_MS);
            if (s->accept_paused && !stopping) {
                s->accept_paused = 0;
                epoll_add_tag(s->epfd, s->lfd, &tag_listen);
            }
        }
        free_closed(s);
        if (stopping && (!has_live(s) || now >= drain_deadline)) break;
    }
    /* Stragglers: make their writes fail fast, then wait for the workers. */
    for (http_conn_t *c = s->conns; c; c = c->next) {
        if (c->state == CS_DISPATCHED) shutdown(c->fd, SHUT_RDWR);
    }
    pthread_mutex_lock(&s->work_mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->work_mu);
    for (int i = 0; i < s->n_threads; i++) pthread_join(s->threads[i], NULL);
    take_done(s);
    while (s->conns) conn_close(s->conns);
    free_closed(s);
    return rc;
}

void http_server_free(http_server_t *s)
{
    if (!s) return;
    while (s->conns) conn_close(s->conns);
    free_closed(s);
    if (s->lfd >= 0) close(s->lfd);
    if (s->epfd >= 0) close(s->epfd);
    if (s->wake_fd >= 0) close(s->wake_fd);
    if (s->stop_fd >= 0) close(s->stop_fd);
    eg_free(s->threads);
    tls_server_free(s->tls);
    eg_free(s->spool_dir);
    pthread_mutex_destroy(&s->work_mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_mutex_destroy(&s->done_mu);
    eg_free(s);
}
