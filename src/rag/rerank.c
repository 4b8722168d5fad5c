/*
 * rerank.c - the built-in lexical reranker and the remote rerank client
 * (see rerank.h).
 *
 * Built-in: the query is tokenised once into at most RR_TERMS distinct
 * terms (stop words dropped); each candidate is tokenised and every
 * occurrence of a query term recorded with its position. Term weights are
 * rarity among the candidates (ln(1 + n / (1 + df))), so a term every
 * candidate has counts little. The smallest window holding every present
 * term is found with two pointers over the occurrences (linear).
 *
 * Remote: one POST through libcurl with a deadline; the answer body is
 * bounded (RR_MAX_ANSWER) and validated before any score is used.
 */
#include "rag/rerank.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ops/metrics.h"
#include "util/netcfg.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/json.h"

#define RR_TERMS 32
#define RR_MAX_OCC 4096
#define RR_MAX_ANSWER (4u << 20)

/* ---- built-in ------------------------------------------------------------ */

typedef struct qterms {
    char t[RR_TERMS][TOK_MAX_TERM + 1];
    size_t n;
} qterms_t;

static int qterm_cb(const tok_token_t *t, void *ud)
{
    qterms_t *q = ud;
    if (tokenizer_is_stopword(t->term, t->len) || q->n == RR_TERMS) return 0;
    for (size_t i = 0; i < q->n; i++)
        if (strlen(q->t[i]) == t->len && !memcmp(q->t[i], t->term, t->len)) return 0;
    memcpy(q->t[q->n], t->term, t->len);
    q->t[q->n][t->len] = '\0';
    q->n++;
    return 0;
}

typedef struct occ {
    uint32_t pos;
    uint8_t term;
} occ_t;

typedef struct doc_scan {
    const qterms_t *q;
    occ_t *occ;
    size_t n_occ;
} doc_scan_t;

static int doc_cb(const tok_token_t *t, void *ud)
{
    doc_scan_t *d = ud;
    if (d->n_occ == RR_MAX_OCC) return 1;
    for (size_t i = 0; i < d->q->n; i++)
        if (strlen(d->q->t[i]) == t->len && !memcmp(d->q->t[i], t->term, t->len)) {
            d->occ[d->n_occ].pos = t->position;
            d->occ[d->n_occ].term = (uint8_t)i;
            d->n_occ++;
            break;
        }
    return 0;
}

/* Smallest window (in words) holding every term present in occ. */
static uint32_t min_window(const occ_t *occ, size_t n, size_t distinct)
{
    uint32_t count[RR_TERMS] = {0};
    size_t have = 0, lo = 0;
    uint32_t best = UINT32_MAX;
    for (size_t hi = 0; hi < n; hi++) {
        if (count[occ[hi].term]++ == 0) have++;
        while (have == distinct) {
            uint32_t span = occ[hi].pos - occ[lo].pos + 1;
            if (span < best) best = span;
            if (--count[occ[lo].term] == 0) have--;
            lo++;
        }
    }
    return best;
}

int rerank_builtin(tokenizer_t *tok, const char *query, const char *const *texts,
                   const size_t *lens, size_t n, double *scores)
{
    qterms_t q = {.n = 0};
    int rc = tokenizer_run(tok, query, strlen(query), qterm_cb, &q);
    if (rc < 0) return rc;
    for (size_t i = 0; i < n; i++) scores[i] = 0;
    if (q.n == 0 || n == 0) return 0;
    occ_t *occ = eg_malloc(RR_MAX_OCC * sizeof *occ);
    uint32_t *present = eg_calloc(n, sizeof *present); /* bit set of terms per candidate */
    uint32_t *window = eg_calloc(n, sizeof *window);
    if (!occ || !present || !window) { rc = ENGRAM_ENOMEM; goto done; }
    double df[RR_TERMS] = {0}, w[RR_TERMS], total = 0;
    for (size_t i = 0; i < n; i++) {
        doc_scan_t d = {&q, occ, 0};
        rc = tokenizer_run(tok, texts[i], lens[i], doc_cb, &d);
        if (rc < 0) goto done;
        rc = 0;
        size_t distinct = 0;
        for (size_t j = 0; j < d.n_occ; j++) {
            if (!(present[i] & (1u << occ[j].term))) distinct++;
            present[i] |= 1u << occ[j].term;
        }
        window[i] = distinct > 1 ? min_window(occ, d.n_occ, distinct) : 0;
        for (size_t t = 0; t < q.n; t++) df[t] += (present[i] >> t) & 1;
    }
    for (size_t t = 0; t < q.n; t++) {
        w[t] = log(1.0 + (double)n / (1.0 + df[t]));
        total += w[t];
    }
    for (size_t i = 0; i < n; i++) {
        double cov = 0;
        size_t distinct = 0;
        for (size_t t = 0; t < q.n; t++)
            if ((present[i] >> t) & 1) { cov += w[t]; distinct++; }
        cov = total > 0 ? cov / total : 0;
        double prox = distinct > 1 && window[i] ? (double)distinct / (double)window[i] : 0;
        if (distinct == 1 && q.n == 1) prox = 1;
        scores[i] = 0.7 * cov + 0.3 * prox;
    }
done:
    eg_free(occ);
    eg_free(present);
    eg_free(window);
    return rc;
}

/* ---- remote -------------------------------------------------------------- */

static int parse_item(const json_t *it, size_t n, double *scores, unsigned char *seen)
{
    int64_t idx;
    double s;
    if (!it || it->type != JSON_OBJECT || json_get_int(it, "index", &idx) || idx < 0 ||
        (uint64_t)idx >= n || seen[idx])
        return ENGRAM_EINVAL;
    if (json_get_double(it, "relevance_score", &s) && json_get_double(it, "score", &s))
        return ENGRAM_EINVAL;
    if (!isfinite(s)) return ENGRAM_EINVAL;
    scores[idx] = s;
    seen[idx] = 1;
    return 0;
}

int rerank_parse_answer(const char *body, size_t len, size_t n, double *scores)
{
    json_t *root = NULL;
    json_error_t jerr;
    if (json_parse(body, len, &root, &jerr)) return ENGRAM_EINVAL;
    unsigned char *seen = eg_calloc(n + 1, 1);
    int rc = seen ? 0 : ENGRAM_ENOMEM;
    const json_t *list = root->type == JSON_ARRAY ? root : json_get(root, "results");
    const json_t *plain = root->type == JSON_OBJECT ? json_get(root, "scores") : NULL;
    if (!rc && list && list->type == JSON_ARRAY) {
        if (list->len != n) rc = ENGRAM_EINVAL;
        for (size_t i = 0; !rc && i < list->len; i++) rc = parse_item(json_at(list, i), n, scores, seen);
    } else if (!rc && plain && plain->type == JSON_ARRAY && plain->len == n) {
        for (size_t i = 0; !rc && i < n; i++) {
            const json_t *v = json_at(plain, i);
            if (!v || v->type != JSON_NUMBER || !isfinite(v->number)) rc = ENGRAM_EINVAL;
            else scores[i] = v->number;
        }
    } else if (!rc) {
        rc = ENGRAM_EINVAL;
    }
    eg_free(seen);
    json_free(root);
    return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;
static void curl_setup(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
    buf_t *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > RR_MAX_ANSWER) return 0;
    buf_append(b, p, n);
    return b->err ? 0 : n;
}

int rerank_remote(const char *url, const char *query, const char *const *texts,
                  const size_t *lens, size_t n, int timeout_ms, double *scores, char *err,
                  size_t errsz)
{
    if (errsz) err[0] = '\0';
    size_t ul = url ? strlen(url) : 0;
    if (ul < 8 || ul > 1000 || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
        if (errsz) snprintf(err, errsz, "the rerank URL must be http(s)://...");
        return ENGRAM_EINVAL;
    }
    char endpoint[1100];
    int has = ul >= 6 && !strcmp(url + ul - 6, "rerank");
    snprintf(endpoint, sizeof endpoint, "%.*s%s", (int)(ul && url[ul - 1] == '/' ? ul - 1 : ul), url,
             has ? "" : "/rerank");
    pthread_once(&curl_once, curl_setup);
    if (curl_init_rc) return ENGRAM_EUPSTREAM;
    buf_t body = BUF_INIT, answer = BUF_INIT;
    jw_t w;
    jw_init(&w, &body);
    jw_obj_begin(&w);
    jw_kstr(&w, "query", query);
    for (int pass = 0; pass < 2; pass++) {
        jw_key(&w, pass ? "texts" : "documents");
        jw_arr_begin(&w);
        for (size_t i = 0; i < n; i++) jw_strn(&w, texts[i], lens[i]);
        jw_arr_end(&w);
    }
    jw_kint(&w, "top_n", (int64_t)n);
    jw_kbool(&w, "return_documents", 0);
    jw_obj_end(&w);
    int rc = body.err;
    CURL *h = rc ? NULL : curl_easy_init();
    struct curl_slist *hdrs = NULL;
    if (!rc && !h) rc = ENGRAM_ENOMEM;
    if (!rc) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        char cerr[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(h, CURLOPT_URL, endpoint);
        if (net_ca_bundle()) curl_easy_setopt(h, CURLOPT_CAINFO, net_ca_bundle());
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
        curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 10000));
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        metrics_inc(MET_RERANK_CALLS);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
            rc = ENGRAM_EUPSTREAM;
            if (errsz) snprintf(err, errsz, "rerank service: %s", cerr[0] ? cerr : curl_easy_strerror(cc));
        } else if (status < 200 || status > 299) {
            rc = ENGRAM_EUPSTREAM;
            if (errsz) snprintf(err, errsz, "rerank service answered HTTP %ld", status);
        } else if (rerank_parse_answer(answer.data ? answer.data : "", answer.len, n, scores)) {
            rc = ENGRAM_EUPSTREAM;
            if (errsz) snprintf(err, errsz, "rerank service gave an answer that is not scores");
        }
        if (rc) metrics_inc(MET_RERANK_ERRORS);
    }
    if (h) curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    buf_free(&body);
    buf_free(&answer);
    return rc;
}
