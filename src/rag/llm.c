/*
 * llm.c - the OpenAI-compatible streaming chat client (see llm.h).
 *
 * How it works. One easy handle inside a multi handle, driven by
 * curl_multi_perform + curl_multi_poll(LLM_TICK_MS) on the caller's
 * thread. The write callback feeds bytes to a small server-sent-events
 * parser: lines are gathered until a blank line ends the event, "data:"
 * lines are joined, and each event's JSON is read for
 * choices[0].delta.content, finish_reason, usage and error. A delta is
 * passed on from inside the write callback, so it reaches our own client
 * as soon as curl has read it. When the answer's status is not 2xx, or its
 * type is application/json (a non-streaming answer), the body is collected
 * (bounded) and read at the end instead. Anything that stops the transfer
 * early (a callback's veto, a parse error) is recorded in the state and the
 * write callback returns 0, which makes curl abort; the multi loop then
 * sees the state and returns.
 */
#include "rag/llm.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/netcfg.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/json.h"
#include "util/timeutil.h"

#define MAX_LINE (1u << 20)
#define MAX_BODY (8u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_setup(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT) ? -1 : 0; }

int llm_endpoint(const char *base, char *out, size_t outsz)
{
    if (!base || (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))) return ENGRAM_EINVAL;
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/') n--;
    const char *suffix = "/v1/chat/completions";
    if (n >= 17 && !strncmp(base + n - 17, "/chat/completions", 17)) suffix = "";
    else if (n >= 3 && !strncmp(base + n - 3, "/v1", 3)) suffix = "/chat/completions";
    int w = snprintf(out, outsz, "%.*s%s", (int)n, base, suffix);
    return w < 0 || (size_t)w >= outsz ? ENGRAM_EINVAL : 0;
}

typedef struct llm_state {
    CURL *h;
    llm_delta_fn on_delta;
    void *ud;
    llm_usage_t *usage;
    size_t n_deltas;
    int checked_status;   /* the status and content type were looked at */
    long status;
    int whole_body;       /* collect the body (error or plain JSON answer) */
    buf_t line;           /* current SSE line */
    buf_t data;           /* current event's data */
    buf_t body;
    int done;             /* "[DONE]" seen */
    int finished;         /* a finish_reason seen */
    int stop;             /* non-zero: why the transfer was stopped */
    char *err;
    size_t errsz;
} llm_state_t;

static void set_err(llm_state_t *s, int status, const char *fmt, const char *detail)
{
    if (s->stop) return;
    s->stop = status;
    if (s->errsz) snprintf(s->err, s->errsz, fmt, detail ? detail : "");
}

static void read_usage(llm_state_t *s, const json_t *u)
{
    if (!u || u->type != JSON_OBJECT) return;
    int64_t p = 0, c = 0, t = 0;
    int ok = json_get_int(u, "prompt_tokens", &p) == 0;
    ok |= json_get_int(u, "completion_tokens", &c) == 0;
    if (json_get_int(u, "total_tokens", &t) != 0) t = p + c;
    if (!ok) return;
    s->usage->present = 1;
    s->usage->prompt_tokens = p;
    s->usage->completion_tokens = c;
    s->usage->total_tokens = t;
}

static const char *error_message(const json_t *j)
{
    const json_t *e = json_get(j, "error");
    if (!e) return NULL;
    if (e->type == JSON_STRING) return e->str;
    const char *m = json_get_str(e, "message");
    return m ? m : "the service reported an error";
}

static int deliver(llm_state_t *s, const char *text, size_t len)
{
    if (len == 0) return 0;
    s->n_deltas++;
    int rc = s->on_delta(text, len, s->ud);
    if (rc) s->stop = rc;
    return rc;
}

/* One event's data (a JSON chunk or "[DONE]"). */
static int handle_event(llm_state_t *s, const char *d, size_t n)
{
    while (n && (d[0] == ' ' || d[0] == '\n')) d++, n--;
    if (n == 0) return 0;
    if (n == 6 && !memcmp(d, "[DONE]", 6)) {
        s->done = 1;
        return 0;
    }
    json_t *j = NULL;
    if (json_parse(d, n, &j, NULL) || j->type != JSON_OBJECT) {
        json_free(j);
        set_err(s, ENGRAM_EUPSTREAM, "the LLM service sent a malformed stream event%s", NULL);
        return -1;
    }
    const char *em = error_message(j);
    if (em) {
        set_err(s, ENGRAM_EUPSTREAM, "the LLM service failed: %.200s", em);
        json_free(j);
        return -1;
    }
    read_usage(s, json_get(j, "usage"));
    const json_t *c0 = json_at(json_get(j, "choices"), 0);
    int rc = 0;
    if (c0) {
        const json_t *delta = json_get(c0, "delta");
        const json_t *content = json_get(delta, "content");
        if (!content) content = json_get(json_get(c0, "message"), "content");
        if (content && content->type == JSON_STRING) rc = deliver(s, content->str, content->len);
        const json_t *fr = json_get(c0, "finish_reason");
        if (fr && fr->type == JSON_STRING) s->finished = 1;
    }
    json_free(j);
    return rc ? -1 : 0;
}

static int handle_line(llm_state_t *s, const char *l, size_t n)
{
    if (n && l[n - 1] == '\r') n--;
    if (n == 0) { /* end of an event */
        if (!s->data.len) return 0;
        int rc = s->data.err ? (set_err(s, ENGRAM_ENOMEM, "out of memory%s", NULL), -1)
                             : handle_event(s, s->data.data, s->data.len);
        buf_reset(&s->data);
        return rc;
    }
    if (l[0] == ':') return 0; /* a comment (keep-alive) */
    if (n >= 5 && !memcmp(l, "data:", 5)) {
        if (s->data.len) buf_putc(&s->data, '\n');
        buf_append(&s->data, l + 5, n - 5);
        if (s->data.len > MAX_LINE) {
            set_err(s, ENGRAM_EUPSTREAM, "the LLM service sent an event over 1 MiB%s", NULL);
            return -1;
        }
    }
    return 0; /* event:, id:, retry: and unknown fields are ignored */
}

static void check_status(llm_state_t *s)
{
    if (s->checked_status) return;
    s->checked_status = 1;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    char *ct = NULL;
    curl_easy_getinfo(s->h, CURLINFO_CONTENT_TYPE, &ct);
    if (s->status < 200 || s->status > 299) s->whole_body = 1;
    else if (ct && !strncasecmp(ct, "application/json", 16)) s->whole_body = 1;
}

/* Feeds n bytes of an event stream: 0 to go on, -1 once s->stop is set. */
static int sse_feed(llm_state_t *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (p + i)) : n - i;
        if (s->line.len + take > MAX_LINE) {
            set_err(s, ENGRAM_EUPSTREAM, "the LLM service sent a line over 1 MiB%s", NULL);
            return -1;
        }
        if (!nl) {
            buf_append(&s->line, p + i, take);
            break;
        }
        if (s->line.len) {
            buf_append(&s->line, p + i, take);
            if (!s->line.err) handle_line(s, s->line.data, s->line.len);
            buf_reset(&s->line);
        } else {
            handle_line(s, p + i, take);
        }
        if (s->stop) return -1;
        i += take + 1;
    }
    if (s->line.err) set_err(s, ENGRAM_ENOMEM, "out of memory%s", NULL);
    return s->stop ? -1 : 0;
}

/* The end of an event stream: the last event, and whether it was whole. */
static void sse_end(llm_state_t *s)
{
    if (s->stop) return;
    if (s->line.len) {
        handle_line(s, s->line.data, s->line.len);
        buf_reset(&s->line);
    }
    if (!s->stop) handle_line(s, "", 0);
    if (!s->stop && !s->done && !s->finished)
        set_err(s, ENGRAM_EUPSTREAM, "the LLM stream ended before the answer was complete%s", NULL);
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
    llm_state_t *s = ud;
    size_t n = size * nmemb;
    if (s->stop) return 0;
    check_status(s);
    if (s->whole_body) {
        if (s->body.len + n > MAX_BODY) {
            set_err(s, ENGRAM_EUPSTREAM, "the LLM service's answer is too large%s", NULL);
            return 0;
        }
        buf_append(&s->body, p, n);
        return n;
    }
    return sse_feed(s, p, n) ? 0 : n;
}

int llm_parse_stream(const char *data, size_t len, size_t piece, llm_delta_fn on_delta, void *ud,
                     llm_usage_t *usage, size_t *n_deltas, char *err, size_t errsz)
{
    llm_state_t s = {.on_delta = on_delta, .ud = ud, .usage = usage, .err = err, .errsz = errsz};
    if (errsz) err[0] = '\0';
    memset(usage, 0, sizeof *usage);
    if (piece == 0) piece = len ? len : 1;
    for (size_t i = 0; i < len && !s.stop; i += piece)
        sse_feed(&s, data + i, len - i < piece ? len - i : piece);
    sse_end(&s);
    buf_free(&s.line);
    buf_free(&s.data);
    if (n_deltas) *n_deltas = s.n_deltas;
    return s.stop;
}

/* The body collected for a non-2xx answer or a plain JSON completion. */
static void finish_whole(llm_state_t *s)
{
    json_t *j = NULL;
    if (s->body.err) {
        set_err(s, ENGRAM_ENOMEM, "out of memory%s", NULL);
        return;
    }
    int parsed = s->body.len && json_parse(s->body.data, s->body.len, &j, NULL) == 0;
    if (s->status < 200 || s->status > 299) {
        char detail[300];
        const char *em = parsed ? error_message(j) : NULL;
        if (!em && parsed) em = json_get_str(j, "detail");
        if (em) snprintf(detail, sizeof detail, "%ld: %.200s", s->status, em);
        else snprintf(detail, sizeof detail, "%ld", s->status);
        set_err(s, ENGRAM_EUPSTREAM, "the LLM service answered %s", detail);
        json_free(j);
        return;
    }
    if (!parsed || j->type != JSON_OBJECT) {
        json_free(j);
        set_err(s, ENGRAM_EUPSTREAM, "the LLM service's answer is not valid JSON%s", NULL);
        return;
    }
    const char *em = error_message(j);
    if (em) {
        set_err(s, ENGRAM_EUPSTREAM, "the LLM service failed: %.200s", em);
        json_free(j);
        return;
    }
    read_usage(s, json_get(j, "usage"));
    const json_t *content = json_get(json_get(json_at(json_get(j, "choices"), 0), "message"), "content");
    if (!content || content->type != JSON_STRING) {
        set_err(s, ENGRAM_EUPSTREAM, "the LLM service's answer has no message content%s", NULL);
    } else {
        deliver(s, content->str, content->len);
        s->finished = 1;
    }
    json_free(j);
}

static void write_body(buf_t *b, const llm_request_t *r)
{
    jw_t w;
    jw_init(&w, b);
    jw_obj_begin(&w);
    if (r->model && r->model[0]) jw_kstr(&w, "model", r->model);
    jw_key(&w, "messages");
    jw_arr_begin(&w);
    for (size_t i = 0; i < r->n_messages; i++) {
        jw_obj_begin(&w);
        jw_kstr(&w, "role", r->messages[i].role);
        jw_kstr(&w, "content", r->messages[i].content ? r->messages[i].content : "");
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
    jw_kbool(&w, "stream", 1);
    jw_key(&w, "stream_options");
    jw_obj_begin(&w);
    jw_kbool(&w, "include_usage", 1);
    jw_obj_end(&w);
    if (r->has_temperature) jw_kdouble(&w, "temperature", r->temperature);
    if (r->max_tokens > 0) jw_kint(&w, "max_tokens", r->max_tokens);
    jw_obj_end(&w);
}

int llm_chat_stream(const llm_config_t *cfg, const llm_request_t *req, llm_delta_fn on_delta,
                    llm_tick_fn on_tick, void *ud, llm_usage_t *usage, size_t *n_deltas,
                    char *err, size_t errsz)
{
    char url[1200];
    if (errsz) err[0] = '\0';
    memset(usage, 0, sizeof *usage);
    if (n_deltas) *n_deltas = 0;
    if (!cfg || !req || !on_delta || llm_endpoint(cfg->url, url, sizeof url)) {
        if (errsz) snprintf(err, errsz, "the LLM URL is not an http(s) URL");
        return ENGRAM_EINVAL;
    }
    pthread_once(&curl_once, curl_setup);
    if (curl_init_rc) {
        if (errsz) snprintf(err, errsz, "libcurl could not be initialised");
        return ENGRAM_EUPSTREAM;
    }
    int connect_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
    int first_ms = cfg->first_token_timeout_ms > 0 ? cfg->first_token_timeout_ms : 60000;
    int total_ms = cfg->total_timeout_ms > 0 ? cfg->total_timeout_ms : 300000;

    llm_state_t s = {.on_delta = on_delta, .ud = ud, .usage = usage, .err = err, .errsz = errsz};
    buf_t body = BUF_INIT, auth = BUF_INIT;
    struct curl_slist *hdrs = NULL;
    CURLM *m = NULL;
    int rc = ENGRAM_ENOMEM, added = 0;
    write_body(&body, req);
    if (body.err) goto fail;
    s.h = curl_easy_init();
    m = curl_multi_init();
    if (!s.h || !m) goto fail;
    struct curl_slist *t;
    t = curl_slist_append(hdrs, "Content-Type: application/json");
    if (!t) goto fail;
    hdrs = t;
    t = curl_slist_append(hdrs, "Accept: text/event-stream");
    if (!t) goto fail;
    hdrs = t;
    t = curl_slist_append(hdrs, "Expect:");
    if (!t) goto fail;
    hdrs = t;
    if (cfg->api_key && cfg->api_key[0]) {
        buf_printf(&auth, "Authorization: Bearer %s", cfg->api_key);
        if (auth.err) goto fail;
        t = curl_slist_append(hdrs, auth.data);
        if (!t) goto fail;
        hdrs = t;
    }
    curl_easy_setopt(s.h, CURLOPT_URL, url);
    if (net_ca_bundle()) curl_easy_setopt(s.h, CURLOPT_CAINFO, net_ca_bundle());
    curl_easy_setopt(s.h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(s.h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s.h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(s.h, CURLOPT_POSTFIELDS, body.data);
    curl_easy_setopt(s.h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
    curl_easy_setopt(s.h, CURLOPT_CONNECTTIMEOUT_MS, (long)connect_ms);
    curl_easy_setopt(s.h, CURLOPT_TIMEOUT_MS, (long)total_ms);
    curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(s.h, CURLOPT_ACCEPT_ENCODING, "");
    if (curl_multi_add_handle(m, s.h) != CURLM_OK) goto fail;
    added = 1;

    uint64_t t0 = time_mono_ns();
    CURLcode result = CURLE_OK;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            set_err(&s, ENGRAM_EUPSTREAM, "the LLM request failed inside libcurl%s", NULL);
            break;
        }
        if (s.stop) break;
        if (!running) {
            int q;
            CURLMsg *msg;
            while ((msg = curl_multi_info_read(m, &q)))
                if (msg->msg == CURLMSG_DONE) result = msg->data.result;
            break;
        }
        uint64_t el_ms = (time_mono_ns() - t0) / 1000000u;
        if (s.n_deltas == 0 && !s.finished && !s.done && el_ms >= (uint64_t)first_ms) {
            char d[32];
            snprintf(d, sizeof d, "%d", first_ms);
            set_err(&s, ENGRAM_ETIMEOUT, "the LLM service sent nothing within %s ms", d);
            break;
        }
        if (on_tick) {
            int trc = on_tick(ud);
            if (trc) {
                s.stop = trc;
                break;
            }
        }
        if (curl_multi_poll(m, NULL, 0, LLM_TICK_MS, NULL) != CURLM_OK) {
            set_err(&s, ENGRAM_EUPSTREAM, "the LLM request failed inside libcurl%s", NULL);
            break;
        }
    }
    if (!s.stop) {
        if (result == CURLE_OPERATION_TIMEDOUT) {
            char d[32];
            snprintf(d, sizeof d, "%d", s.checked_status ? total_ms : connect_ms);
            set_err(&s, ENGRAM_ETIMEOUT, "the LLM service timed out after %s ms", d);
        } else if (result != CURLE_OK) {
            set_err(&s, ENGRAM_EUPSTREAM, "the LLM service could not be reached: %s",
                    curl_easy_strerror(result));
        } else {
            check_status(&s);
            if (s.whole_body) {
                finish_whole(&s);
            } else {
                sse_end(&s);
            }
        }
    }
    rc = s.stop;
fail:
    if (rc == ENGRAM_ENOMEM && errsz && !err[0]) snprintf(err, errsz, "out of memory");
    if (added) curl_multi_remove_handle(m, s.h);
    if (s.h) curl_easy_cleanup(s.h);
    if (m) curl_multi_cleanup(m);
    curl_slist_free_all(hdrs);
    if (auth.data) sodium_memzero(auth.data, auth.len);
    buf_free(&auth);
    buf_free(&body);
    buf_free(&s.line);
    buf_free(&s.data);
    buf_free(&s.body);
    if (n_deltas) *n_deltas = s.n_deltas;
    return rc;
}
