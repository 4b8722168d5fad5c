/*
 * server_internal.h - what server.c (loop, connections, requests) and
 * answer.c (status lines, output bytes, streaming) share. Private to
 * src/http: nothing outside includes it. The ownership rules are server.c's
 * header comment: a connection has one owner at a time, the loop thread or
 * the worker it was dispatched to.
 */
#ifndef ENGRAM_HTTP_SERVER_INTERNAL_H
#define ENGRAM_HTTP_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http/http.h"
#include "http/parse.h"
#include "http/spool.h"
#include "http/tls.h"

#define TICK_MS 100
#define LINGER_MS 2000
#define READ_CHUNK 4096
#define DEFAULT_DRAIN_MS 10000
#define SPOOL_BUF (256 * 1024)  /* bytes of a spooled body held in memory */
#define MIN_THREAD_STACK (4u << 20)

enum { CS_HANDSHAKE, CS_HEAD, CS_BODY, CS_DISPATCHED, CS_WRITING, CS_LINGER, CS_CLOSED };

struct http_conn {
    http_server_t *srv;
    int fd;
    int state;
    int watched;                /* events currently registered in epoll, 0 if none */
    http_conn_t *prev, *next;   /* every connection (loop thread) */
    http_conn_t *qnext;         /* work or done queue */
    uint64_t seq;               /* arrival order in the work queues */
    uint64_t deadline_ns;
    char remote[64];

    char *rbuf;                 /* read buffer: unconsumed bytes in [rpos, rlen) */
    size_t rpos, rlen, rcap;

    /* HTTPS (NULL: plain). Encrypted output the socket did not take waits
     * in wbuf, so the record layer never has to retry a write. */
    tls_conn_t *tls;
    int tls_started;            /* the first byte was a TLS record */
    int tls_ready;              /* handshake complete */

    /* The current request. */
    int req_active;             /* req holds a request (parsed or blank) */
    int bytes_seen;             /* a byte of the current request arrived */
    http_head_parser_t hp;
    http_head_t head;
    http_request_t req;
    char *req_store;            /* strings of req (parse.h) */
    char *body;
    size_t body_len, body_cap;
    uint64_t cl_left;
    int chunked;
    http_chunked_t ck;
    int body_announced;         /* a body follows the head and was not read */
    int spool_ok;               /* this route's body may go to a file */
    int spooling;               /* body bytes go to spool; body is a write buffer */
    http_spool_t spool;
    int is_head;                /* HEAD request: answers carry no body */

    /* The answer. */
    int on_loop;                /* answering from the loop thread: never block */
    char *wbuf;                 /* bytes still to write (loop answers, TLS records) */
    size_t wpos, wlen, wcap;
    int stream_chunked;
    int stream_ended;
    int write_failed;
};

struct http_server {
    http_server_config_t cfg;
    int drain_ms;
    int lfd, epfd, wake_fd, stop_fd;
    int port;
    tls_server_t *tls;          /* NULL: plain HTTP */
    char *spool_dir;            /* NULL: bodies in memory */
    atomic_int n_conns;
    atomic_int stopping;
    http_conn_t *conns;         /* loop thread only */
    http_conn_t *closed;        /* closed, freed at the end of the loop turn */
    int n_dispatched;           /* loop thread only */
    int accept_paused;          /* listener out of epoll after EMFILE */

    pthread_t *threads;
    int n_threads;
    pthread_mutex_t work_mu;
    pthread_cond_t work_cv;
    http_conn_t *work_head, *work_tail;   /* requests in order of arrival ... */
    http_conn_t *wait_head, *wait_tail;   /* ... and those with req.waits, apart */
    uint64_t work_seq;                    /* arrival order across both queues */
    int waiting_running;                  /* req.waits requests with a worker */
    int quit;
    pthread_mutex_t done_mu;
    http_conn_t *done_head, *done_tail;
};

/* answer.c */
/* Appends nothing, frees the pending-output buffer. */
void http_conn_wbuf_release(http_conn_t *c);
/* Sends what the socket takes of the pending output now. 0: all sent;
 * ENGRAM_EAGAIN: some left; ENGRAM_ECLOSED. */
int http_conn_wbuf_flush(http_conn_t *c);
/* tls_send_fn of a connection: send now, queue the rest in order. */
int http_conn_tls_out(void *ctx, const unsigned char *p, size_t n);
/* The fallback JSON error answer when the application installed no on_error. */
void http_default_error(http_request_t *req, int status, const char *message);

#endif
