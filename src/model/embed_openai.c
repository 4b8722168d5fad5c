/*
 * embed_openai.c - the "openai" embedder: any OpenAI-compatible
 * /v1/embeddings service (OpenAI, Ollama, llama.cpp server, vLLM,
 * text-embeddings-inference) through libcurl.
 *
 * How it works. One call of embed_openai_batch sends one request,
 *   POST {endpoint}   {"model": M, "input": [t0, t1, ...]}
 * (at most EMBED_MAX_BATCH inputs; embed.c splits and caches), with
 * "Authorization: Bearer K" when a key is set, and reads the answer into a
 * buffer bounded by MAX_ANSWER bytes. The endpoint is the configured URL with
 * trailing slashes removed, then "/embeddings" appended when it ends in
 * "/v1", nothing when it already ends in "/embeddings", "/v1/embeddings"
 * otherwise.
 *
 * Failures and retries. An attempt is retried (at most max_retries times)
 * when it could not connect, timed out, lost the connection, or got HTTP 408,
 * 429 or 5xx. Before retry r the thread sleeps a random time in [d/2, d],
 * d = min(base * 2^(r-1), max) ("equal jitter": spread out, never zero); a
 * Retry-After header on a 429/503 (seconds or an HTTP date, parsed by libcurl)
 * replaces that delay, capped at the same max. Anything else - another 4xx, a
 * malformed or inconsistent answer, TLS or URL errors - fails at once: trying
 * again would get the same answer. A call therefore takes at most
 * (max_retries + 1) * timeout + max_retries * max backoff.
 *
 * Validation of a 200 answer, strict: a JSON object whose "data" is an array
 * of exactly n objects, each with "embedding" an array of finite numbers (a
 * base64 string is refused) and "index" an integer; the indexes are a
 * permutation of 0..n-1 (rows are placed by index, so a service may answer in
 * any order); when no item has "index" the order is taken as given. Every
 * vector has the same dimension, which must equal the embedder's: the
 * configured one, or the one learned from the first valid answer (stored with
 * a compare-and-swap, so concurrent first calls agree). A dimension mismatch
 * is ENGRAM_EINVAL (a configuration problem), every other failure
 * ENGRAM_EUPSTREAM. Vectors are L2-normalised here.
 *
 * Threads: curl_global_init runs once (pthread_once). Each running call takes
 * an easy handle from a small pool (mutex), so connections are reused between
 * calls, and gives it back reset. Nothing is shared between calls otherwise.
 *
 * Secrets: the API key is only ever in the Authorization header list; error
 * messages show the URL without any user:password part, and a message that
 * would contain the key (a service echoing it) has it replaced by "***".
 */
#include <curl/curl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "model/embed_internal.h"
#include "ops/metrics.h"
#include "util/netcfg.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/log.h"

#ifndef ENGRAM_VERSION
#define ENGRAM_VERSION "dev"
#endif
#define MAX_ANSWER (64u << 20)    /* bytes of one answer */
#define HANDLE_POOL 16
#define DEFAULT_TIMEOUT_MS 60000
#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_RETRIES 3
#define DEFAULT_BASE_MS 500
#define DEFAULT_MAX_MS 20000

struct embed_openai {
    char *endpoint;
    char *shown_url;            /* endpoint without user:password@ */
    char *model;
    char *api_key;              /* NULL: none; only for the header and redaction */
    long timeout_ms, connect_ms;
    int retries, base_ms, max_ms;
    atomic_int cancelled;       /* embedder_cancel: every call gives up */
    pthread_mutex_t lock;       /* guards pool/npool only */
    CURL *pool[HANDLE_POOL];
    int npool;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_setup(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- open / free -------------------------------------------------------- */

static char *build_endpoint(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/') n--;
    const char *suffix = "/v1/embeddings";
    if (n >= 11 && strncmp(url + n - 11, "/embeddings", 11) == 0)
        suffix = "";
    else if (n >= 3 && strncmp(url + n - 3, "/v1", 3) == 0)
        suffix = "/embeddings";
    buf_t b = BUF_INIT;
    buf_append(&b, url, n);
    buf_puts(&b, suffix);
    if (b.err) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

/* The URL with any "user:password@" removed, for messages. */
static char *shown_url(const char *url)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t hl = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hl);
    buf_t b = BUF_INIT;
    if (!at) {
        buf_puts(&b, url);
    } else {
        buf_append(&b, url, (size_t)(host - url));
        buf_puts(&b, at + 1);
    }
    if (b.err) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

int embed_openai_open(const embed_config_t *cfg, embed_openai_t **out, char *err, size_t errsz)
{
    *out = NULL;
    const char *url = cfg->url ? cfg->url : "";
    if (!url[0])
        return embed_fail(err, errsz, ENGRAM_EINVAL,
                          "the openai embedder needs the service URL (--embed-url)");
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
        return embed_fail(err, errsz, ENGRAM_EINVAL,
                          "--embed-url must start with http:// or https://");
    if (!cfg->model || !cfg->model[0])
        return embed_fail(err, errsz, ENGRAM_EINVAL,
                          "the openai embedder needs a model name (--embed-model)");
    if (strlen(cfg->model) > 256)
        return embed_fail(err, errsz, ENGRAM_EINVAL, "--embed-model is longer than 256 bytes");
    if (cfg->timeout_ms < 0 || cfg->connect_timeout_ms < 0 || cfg->retry_base_ms < 0 ||
        cfg->retry_max_ms < 0)
        return embed_fail(err, errsz, ENGRAM_EINVAL, "embedder timeouts must not be negative");
    pthread_once(&curl_once, curl_setup);
    if (curl_init_rc != CURLE_OK)
        return embed_fail(err, errsz, ENGRAM_EUPSTREAM, "libcurl failed to initialise: %s",
                          curl_easy_strerror(curl_init_rc));
    embed_openai_t *o = eg_calloc(1, sizeof *o);
    if (!o) return embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
    if (pthread_mutex_init(&o->lock, NULL) != 0) {
        eg_free(o);
        return embed_fail(err, errsz, ENGRAM_ENOMEM, "openai embedder: cannot create a mutex");
    }
    o->endpoint = build_endpoint(url);
    o->shown_url = o->endpoint ? shown_url(o->endpoint) : NULL;
    o->model = eg_strdup(cfg->model);
    o->api_key = cfg->api_key && cfg->api_key[0] ? eg_strdup(cfg->api_key) : NULL;
    if (!o->endpoint || !o->shown_url || !o->model || (cfg->api_key && cfg->api_key[0] && !o->api_key)) {
        embed_openai_free(o);
        return embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
    }
    o->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    o->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
    o->retries = cfg->max_retries < 0 ? 0 : cfg->max_retries ? cfg->max_retries : DEFAULT_RETRIES;
    o->base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : DEFAULT_BASE_MS;
    o->max_ms = cfg->retry_max_ms ? cfg->retry_max_ms : DEFAULT_MAX_MS;
    if (o->max_ms < o->base_ms) o->max_ms = o->base_ms;
    *out = o;
    return 0;
}

void embed_openai_free(embed_openai_t *o)
{
    if (!o) return;
    for (int i = 0; i < o->npool; i++) curl_easy_cleanup(o->pool[i]);
    pthread_mutex_destroy(&o->lock);
    eg_free(o->endpoint);
    eg_free(o->shown_url);
    eg_free(o->model);
    if (o->api_key) {
        memset(o->api_key, 0, strlen(o->api_key));
        eg_free(o->api_key);
    }
    eg_free(o);
}

void embed_openai_cancel(embed_openai_t *o)
{
    if (o) atomic_store(&o->cancelled, 1);
}

static CURL *handle_get(embed_openai_t *o)
{
    pthread_mutex_lock(&o->lock);
    CURL *h = o->npool > 0 ? o->pool[--o->npool] : NULL;
    pthread_mutex_unlock(&o->lock);
    return h ? h : curl_easy_init();
}

static void handle_put(embed_openai_t *o, CURL *h)
{
    if (!h) return;
    curl_easy_reset(h); /* keeps its connections, drops our options */
    pthread_mutex_lock(&o->lock);
    if (o->npool < HANDLE_POOL) {
        o->pool[o->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&o->lock);
    if (h) curl_easy_cleanup(h);
}

/* ---- messages ----------------------------------------------------------- */

/* Replaces every occurrence of the API key in err by "***". */
static void redact(const embed_openai_t *o, char *err, size_t errsz)
{
    if (!o->api_key || !err || errsz == 0) return;
    size_t kl = strlen(o->api_key);
    if (kl < 3) return; /* a key that short cannot be told from ordinary text */
    char *p = err;
    while ((p = strstr(p, o->api_key)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + kl, strlen(p + kl) + 1);
        p += 3;
    }
}

/* A short, printable excerpt of what the service said about an error:
 * error.message, error (a string), detail (a string), message, or the
 * body's first bytes. */
static void service_says(const char *body, size_t len, char *out, size_t outsz)
{
    json_t *j = NULL;
    const char *s = NULL;
    size_t sl = 0;
    if (json_parse(body, len, &j, NULL) == 0) {
        const json_t *e = json_get(j, "error");
        if (e && e->type == JSON_OBJECT) s = json_get_str(e, "message");
        else if (e && e->type == JSON_STRING) s = e->str;
        if (!s) s = json_get_str(j, "detail");
        if (!s) s = json_get_str(j, "message");
        if (s) sl = strlen(s);
    }
    if (!s) {
        s = body;
        sl = len;
    }
    size_t k = 0;
    for (size_t i = 0; i < sl && k + 4 < outsz && k < 200; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = c >= 0x20 && c < 0x7f ? (char)c : c == '\n' || c == '\t' ? ' ' : '?';
    }
    if (sl > 200 && k + 4 < outsz) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    if (outsz) out[k] = '\0';
    json_free(j);
}

/* ---- one attempt -------------------------------------------------------- */

typedef struct answer {
    buf_t body;
    int too_big;
    embed_openai_t *o;
} answer_t;

/* libcurl's progress callback: non-zero aborts the transfer. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt; (void)dn; (void)ut; (void)un;
    return atomic_load(&((answer_t *)ud)->o->cancelled);
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    answer_t *a = ud;
    size_t n = size * nmemb;
    if (a->body.len + n > MAX_ANSWER) {
        a->too_big = 1;
        return 0; /* aborts the transfer */
    }
    buf_append(&a->body, p, n);
    return a->body.err ? 0 : n;
}

typedef enum { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FATAL } attempt_t;

/* Runs one POST. Returns ATTEMPT_OK with *status 200 and the body in a;
 * otherwise fills why and says whether a retry may help; *retry_after_ms is
 * the server's Retry-After (or -1). */
static attempt_t attempt(embed_openai_t *o, CURL *h, struct curl_slist *hdrs, const buf_t *req,
                         answer_t *a, long *status, long *retry_after_ms, char *why, size_t whysz)
{
    char cerr[CURL_ERROR_SIZE];
    cerr[0] = '\0';
    buf_reset(&a->body);
    a->too_big = 0;
    *status = 0;
    *retry_after_ms = -1;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, o->endpoint);
    if (net_ca_bundle()) curl_easy_setopt(h, CURLOPT_CAINFO, net_ca_bundle());
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "engram/" ENGRAM_VERSION);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, a);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (rc != CURLE_OK) {
        if (a->too_big) {
            snprintf(why, whysz, "answer larger than %u MiB", MAX_ANSWER >> 20);
            return ATTEMPT_FATAL;
        }
        if (a->body.err) {
            snprintf(why, whysz, "out of memory reading the answer");
            return ATTEMPT_FATAL;
        }
        if (atomic_load(&o->cancelled)) {
            snprintf(why, whysz, "canceled (shutting down)");
            return ATTEMPT_FATAL;
        }
        const char *msg = cerr[0] ? cerr : curl_easy_strerror(rc);
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
            snprintf(why, whysz, "timed out (%s)", msg);
            return ATTEMPT_RETRY;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
            snprintf(why, whysz, "connection failed (%s)", msg);
            return ATTEMPT_RETRY;
        default:
            snprintf(why, whysz, "request failed (%s)", msg);
            return ATTEMPT_FATAL;
        }
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (*status == 200) return ATTEMPT_OK;
#if LIBCURL_VERSION_NUM >= 0x074200
    curl_off_t ra = -1;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        *retry_after_ms = ra > 86400 ? 86400000L : (long)ra * 1000;
#endif
    char says[240];
    service_says(a->body.data ? a->body.data : "", a->body.len, says, sizeof says);
    const char *hint = "";
    if (*status == 401 || *status == 403) hint = " (check --embed-api-key)";
    else if (*status == 404) hint = " (check --embed-url and --embed-model)";
    snprintf(why, whysz, "HTTP %ld%s%s%s", *status, hint, says[0] ? ": " : "", says);
    if (*status == 408 || *status == 429 || (*status >= 500 && *status <= 599)) return ATTEMPT_RETRY;
    return ATTEMPT_FATAL;
}

/* Sleeps ms in slices of at most 50 ms, returning early once cancelled. */
static void sleep_ms(embed_openai_t *o, long ms)
{
    while (ms > 0 && !atomic_load(&o->cancelled)) {
        long slice = ms < 50 ? ms : 50;
        struct timespec ts = {0, slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0) {}
        ms -= slice;
    }
}

/* Delay before retry r (1-based), with equal jitter. */
static long backoff_ms(const embed_openai_t *o, int r, uint64_t *rng)
{
    long d = o->base_ms;
    for (int i = 1; i < r && d < o->max_ms; i++) d *= 2;
    if (d > o->max_ms) d = o->max_ms;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    long half = d / 2;
    return half + (long)(*rng % (uint64_t)(d - half + 1));
}

/* ---- the answer ------------------------------------------------------- */

static int parse_answer(embedder_t *e, const char *body, size_t len, size_t n, float *out,
                        float **out_alloc, char *why, size_t whysz)
{
    json_t *root = NULL;
    json_error_t jerr;
    unsigned char *seen = NULL;
    float *rows = out;
    int rc = ENGRAM_EUPSTREAM;
    int jrc = json_parse(body, len, &root, &jerr);
    if (jrc == ENGRAM_ENOMEM) {
        rc = ENGRAM_ENOMEM;
        snprintf(why, whysz, "out of memory parsing the answer");
        goto fail;
    }
    if (jrc) {
        snprintf(why, whysz, "malformed JSON in the answer at byte %zu: %s", jerr.offset, jerr.message);
        goto fail;
    }
    const json_t *data = json_get(root, "data");
    if (!data || data->type != JSON_ARRAY) {
        snprintf(why, whysz, "the answer has no \"data\" array");
        goto fail;
    }
    if (data->len != n) {
        snprintf(why, whysz, "%zu embeddings answered for %zu inputs", data->len, n);
        goto fail;
    }
    seen = eg_calloc(n, 1);
    if (!seen) {
        rc = ENGRAM_ENOMEM;
        snprintf(why, whysz, "out of memory");
        goto fail;
    }
    /* The dimension is learned only from an answer whose vectors all agree. */
    size_t d = 0;
    for (size_t k = 0; k < n; k++) {
        const json_t *emb = json_get(json_at(data, k), "embedding");
        if (!emb || emb->type != JSON_ARRAY) continue; /* reported below */
        if (d == 0) d = emb->len;
        if (emb->len != d) {
            snprintf(why, whysz, "data[%zu].embedding has %zu numbers, data[0] had %zu", k,
                     emb->len, d);
            goto fail;
        }
    }
    int indexed = -1; /* unknown / 0 no item has "index" / 1 all have it */
    for (size_t k = 0; k < n; k++) {
        const json_t *item = json_at(data, k);
        const json_t *emb = json_get(item, "embedding");
        if (!item || item->type != JSON_OBJECT || !emb) {
            snprintf(why, whysz, "data[%zu] has no \"embedding\"", k);
            goto fail;
        }
        if (emb->type == JSON_STRING) {
            snprintf(why, whysz, "data[%zu].embedding is a string (base64); engram needs floats", k);
            goto fail;
        }
        if (emb->type != JSON_ARRAY || emb->len == 0) {
            snprintf(why, whysz, "data[%zu].embedding is not a non-empty array", k);
            goto fail;
        }
        int64_t idx = (int64_t)k;
        int irc = json_get_int(item, "index", &idx);
        int has = irc == 0;
        if (irc != 0 && irc != ENGRAM_ENOTFOUND) {
            snprintf(why, whysz, "data[%zu].index is not an integer", k);
            goto fail;
        }
        if (indexed >= 0 && has != indexed) {
            snprintf(why, whysz, "some items of \"data\" have an \"index\" and some do not");
            goto fail;
        }
        indexed = has;
        if (idx < 0 || (uint64_t)idx >= n || seen[idx]) {
            snprintf(why, whysz, "data[%zu].index %lld is out of range or repeated", k, (long long)idx);
            goto fail;
        }
        seen[idx] = 1;
        if (k == 0) {
            if (d > EMBED_MAX_DIM) {
                snprintf(why, whysz, "%zu-dimensional vectors are over the limit %u", d,
                         (unsigned)EMBED_MAX_DIM);
                goto fail;
            }
            uint32_t want = 0;
            if (!atomic_compare_exchange_strong(&e->dim, &want, (uint32_t)d) && want != d) {
                rc = ENGRAM_EINVAL;
                snprintf(why, whysz,
                         "the service returned %zu-dimensional vectors but this embedder uses %u "
                         "(set by --embed-dim or learned from earlier answers): check the model",
                         d, (unsigned)want);
                goto fail;
            }
            if (!rows) {
                rows = eg_malloc(n * d * sizeof *rows);
                if (!rows) {
                    rc = ENGRAM_ENOMEM;
                    snprintf(why, whysz, "out of memory");
                    goto fail;
                }
            }
        }
        float *v = rows + (size_t)idx * d;
        for (size_t i = 0; i < d; i++) {
            const json_t *x = emb->items[i];
            if (x->type != JSON_NUMBER || !isfinite(x->number) || fabs(x->number) > FLT_MAX) {
                snprintf(why, whysz, "data[%zu].embedding[%zu] is not a finite number", k, i);
                goto fail;
            }
            v[i] = (float)x->number;
        }
        if (embed_normalize(v, (uint32_t)d)) {
            snprintf(why, whysz, "data[%zu].embedding is not finite", k);
            goto fail;
        }
    }
    if (out_alloc && !out) *out_alloc = rows;
    rows = out;
    rc = 0;
fail:
    if (rows != out) eg_free(rows);
    eg_free(seen);
    json_free(root);
    return rc;
}

/* ---- entry point -------------------------------------------------------- */

int embed_openai_batch(embedder_t *e, const char *const *texts, const size_t *lens, size_t n,
                       float *out, float **out_alloc, char *err, size_t errsz)
{
    embed_openai_t *o = e->impl;
    if (out_alloc) *out_alloc = NULL;
    if (n == 0 || n > EMBED_MAX_BATCH || (!out && !out_alloc))
        return embed_fail(err, errsz, ENGRAM_EINVAL, "openai embedder: bad batch");
    int rc = 0;
    CURL *h = NULL;
    struct curl_slist *hdrs = NULL;
    char *auth = NULL;
    buf_t req = BUF_INIT;
    answer_t a = {BUF_INIT, 0, o};
    char why[512] = "";

    jw_t w;
    jw_init(&w, &req);
    jw_obj_begin(&w);
    jw_kstr(&w, "model", o->model);
    jw_key(&w, "input");
    jw_arr_begin(&w);
    for (size_t i = 0; i < n; i++) jw_strn(&w, texts[i], lens ? lens[i] : strlen(texts[i]));
    jw_arr_end(&w);
    jw_obj_end(&w);
    struct curl_slist *tmp;
    if (req.err || !(tmp = curl_slist_append(NULL, "Content-Type: application/json"))) goto nomem;
    hdrs = tmp;
    if (!(tmp = curl_slist_append(hdrs, "Accept: application/json"))) goto nomem;
    if (!(tmp = curl_slist_append(hdrs, "Expect:"))) goto nomem; /* no 100-continue round trip */
    if (o->api_key) {
        size_t al = strlen(o->api_key) + 32;
        if (!(auth = eg_malloc(al))) goto nomem;
        snprintf(auth, al, "Authorization: Bearer %s", o->api_key);
        if (!(tmp = curl_slist_append(hdrs, auth))) goto nomem;
    }
    if (!(h = handle_get(o))) goto nomem;
    if (atomic_load(&o->cancelled)) {
        rc = embed_fail(err, errsz, ENGRAM_ECANCELED, "embedding canceled (shutting down)");
        goto done;
    }

    uint64_t rng;
    hash_random(&rng, sizeof rng);
    rng |= 1;
    int tries = 0;
    for (;;) {
        long status, retry_after;
        tries++;
        attempt_t at = attempt(o, h, hdrs, &req, &a, &status, &retry_after, why, sizeof why);
        if (at == ATTEMPT_OK) {
            rc = parse_answer(e, a.body.data ? a.body.data : "", a.body.len, n, out, out_alloc,
                              why, sizeof why);
            break;
        }
        rc = ENGRAM_EUPSTREAM;
        if (at == ATTEMPT_FATAL || tries > o->retries) break;
        long delay = retry_after >= 0 ? EG_MIN(retry_after, (long)o->max_ms) : backoff_ms(o, tries, &rng);
        log_info("embedding service %s: %s; retry %d of %d in %ld ms", o->shown_url, why, tries,
                 o->retries, delay);
        sleep_ms(o, delay);
        if (atomic_load(&o->cancelled)) {
            snprintf(why, sizeof why, "canceled (shutting down) while waiting to retry");
            break;
        }
    }
    if (rc && atomic_load(&o->cancelled)) rc = ENGRAM_ECANCELED;
    metrics_inc(MET_EMBED_CALLS);
    if (rc) {
        metrics_inc(MET_EMBED_ERRORS);
        if (tries > 1)
            embed_fail(err, errsz, rc, "embedding service %s: %s (after %d attempts)", o->shown_url,
                       why, tries);
        else
            embed_fail(err, errsz, rc, "embedding service %s: %s", o->shown_url, why);
        redact(o, err, errsz);
    }
    goto done;
nomem:
    rc = embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
done:
    handle_put(o, h);
    curl_slist_free_all(hdrs);
    if (auth) {
        memset(auth, 0, strlen(auth));
        eg_free(auth);
    }
    buf_free(&req);
    buf_free(&a.body);
    return rc;
}
