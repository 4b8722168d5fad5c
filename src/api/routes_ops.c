/*
 * routes_ops.c - the operations side of the API: admission (rate limits and
 * quotas, checked in api_on_headers before any body byte), /metrics,
 * /openapi.json (openapi.c), workspace quotas, backup, signed file links,
 * the retrieval cache around retrieve_search, and the totals of
 * /admin/stats.
 *
 * State lives in struct api_ops (api->ops), made by api_ops_start after the
 * store is open and freed by api_ops_stop after the HTTP server has
 * stopped. The retrieval cache stores ranked hits (ids and scores), not
 * rendered JSON: rendering reads the chunks and documents again, so a
 * cached answer never shows a deleted chunk; its key is the workspace plus
 * the canonical form of the whole request body (every field, present or
 * future, that could change the ranking), and its stamp the catalog
 * generation of the collection searched (or of the whole workspace).
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_internal.h"
#include "catalog/catalog.h"
#include "ops/backup.h"
#include "ops/cache.h"
#include "ops/limits.h"
#include "ops/metrics.h"
#include "ops/signurl.h"
#include "rag/retrieve.h"
#include "store/idmap.h"
#include "store/record.h"
#include "util/common.h"
#include "util/log.h"
#include "util/timeutil.h"

struct api_ops {
    limits_t *limits;
    cache_t *cache;
    unsigned char secret[SIGNURL_SECRET_LEN];
    pthread_mutex_t mu;        /* the totals below */
    int totals_valid;
    uint64_t totals_gen;
    uint64_t n_colls, n_docs, n_chunks;
};

int api_ops_start(api_t *api)
{
    struct api_ops *o = eg_calloc(1, sizeof *o);
    if (!o) return ENGRAM_ENOMEM;
    pthread_mutex_init(&o->mu, NULL);
    const config_t *cfg = api->cfg;
    int rc = limits_new(api->st, cfg->rate_limit, cfg->auth_rate_limit, &o->limits);
    if (!rc) rc = cache_new((size_t)cfg->cache_mb << 20, &o->cache);
    if (!rc) rc = signurl_secret(api->st, o->secret);
    if (rc) {
        limits_free(o->limits);
        cache_free(o->cache);
        pthread_mutex_destroy(&o->mu);
        eg_free(o);
        return rc;
    }
    api->ops = o;
    return 0;
}

void api_ops_stop(api_t *api)
{
    struct api_ops *o = api->ops;
    if (!o) return;
    api->ops = NULL;
    limits_free(o->limits);
    cache_free(o->cache);
    memset(o->secret, 0, sizeof o->secret);
    pthread_mutex_destroy(&o->mu);
    eg_free(o);
}

/* ---- admission (loop thread, before the body) ---------------------------- */

static void too_many(http_request_t *req, const char *code, int retry_after, const char *msg)
{
    char hdr[64];
    snprintf(hdr, sizeof hdr, "Retry-After: %d\r\n", retry_after);
    api_error_req(req, 429, code, NULL, msg, hdr);
}

int api_ops_admit(api_t *api, http_request_t *req, const api_reqdata_t *d)
{
    struct api_ops *o = api->ops;
    if (!o || !d->route) return 0;
    const api_route_t *r = d->route;
    int ra;
    char msg[160];
    if (!d->has_who) {
        if ((r->fn == h_login || r->fn == h_register) &&
            limits_take_addr(o->limits, req->remote_addr, &ra)) {
            metrics_inc(MET_LOGIN_LIMITED);
            snprintf(msg, sizeof msg, "too many sign-in attempts from this address; retry in %d s", ra);
            too_many(req, "RATE_LIMITED", ra, msg);
            return -1;
        }
        return 0;
    }
    /* Cookie sessions are metered per user, apart from that user's keys. */
    uint64_t id = d->who.key_id ? d->who.key_id : (1ull << 62) | d->who.user_id;
    if (limits_take_key(o->limits, id, &ra)) {
        metrics_inc(MET_RATE_LIMITED);
        snprintf(msg, sizeof msg, "rate limit of %d requests per minute reached; retry in %d s",
                 api->cfg->rate_limit, ra);
        too_many(req, "RATE_LIMITED", ra, msg);
        return -1;
    }
    /* Admin routes stay usable so an administrator can always lift a quota. */
    if (r->auth == AUTH_ADMIN) return 0;
    if (limits_count_request(o->limits, d->who.ws, &ra)) {
        metrics_inc(MET_QUOTA_EXCEEDED);
        too_many(req, "QUOTA_EXCEEDED", ra,
                 "this workspace has used its requests for today (quota max_requests_per_day)");
        return -1;
    }
    if (r->fn == h_doc_create && limits_check_chunks(o->limits, d->who.ws) == ENGRAM_EAGAIN) {
        metrics_inc(MET_QUOTA_EXCEEDED);
        too_many(req, "QUOTA_EXCEEDED", 3600,
                 "this workspace holds its maximum number of chunks (quota max_chunks); "
                 "delete documents or ask an administrator to raise it");
        return -1;
    }
    return 0;
}

/* ---- totals (cheap: recomputed only when the catalog changed) ------------ */

static int totals(api_t *api, uint64_t *colls, uint64_t *docs, uint64_t *chunks)
{
    struct api_ops *o = api->ops;
    uint64_t gen = catalog_generation_all();
    pthread_mutex_lock(&o->mu);
    int valid = o->totals_valid && o->totals_gen == gen;
    *colls = o->n_colls;
    *docs = o->n_docs;
    *chunks = o->n_chunks;
    pthread_mutex_unlock(&o->mu);
    if (valid) return 0;
    MDB_txn *txn;
    int rc = store_read_begin(api->st, &txn);
    if (rc) return rc;
    uint64_t nc = 0, nd = 0, nk = 0;
    MDB_cursor *cur;
    rc = store_status(mdb_cursor_open(txn, store_dbi(api->st, DB_COLLECTIONS), &cur));
    if (!rc) {
        MDB_val k, v;
        int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (r == 0) {
            json_t *rec = NULL;
            r = record_decode(v.mv_data, v.mv_size, &rec);
            if (r) break;
            nc++;
            int64_t x = json_get_i64(rec, "document_count", 0);
            nd += x > 0 ? (uint64_t)x : 0;
            x = json_get_i64(rec, "chunk_count", 0);
            nk += x > 0 ? (uint64_t)x : 0;
            json_free(rec);
            r = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    }
    store_read_end(api->st, txn);
    if (rc) return rc;
    pthread_mutex_lock(&o->mu);
    o->n_colls = *colls = nc;
    o->n_docs = *docs = nd;
    o->n_chunks = *chunks = nk;
    o->totals_gen = gen;
    o->totals_valid = 1;
    pthread_mutex_unlock(&o->mu);
    return 0;
}

int api_ops_write_stats(api_t *api, jw_t *w)
{
    if (!api->ops) return 0;
    uint64_t nc, nd, nk;
    int rc = totals(api, &nc, &nd, &nk);
    if (rc) return rc;
    jw_key(w, "totals");
    jw_obj_begin(w);
    jw_kint(w, "collections", (int64_t)nc);
    jw_kint(w, "documents", (int64_t)nd);
    jw_kint(w, "chunks", (int64_t)nk);
    jw_obj_end(w);
    cache_stats_t cs;
    cache_get_stats(api->ops->cache, &cs);
    jw_key(w, "cache");
    jw_obj_begin(w);
    jw_kint(w, "entries", (int64_t)cs.entries);
    jw_kint(w, "bytes", (int64_t)cs.bytes);
    jw_kint(w, "max_bytes", (int64_t)cs.max_bytes);
    jw_kint(w, "hits", (int64_t)metrics_get(MET_CACHE_HITS));
    jw_kint(w, "misses", (int64_t)metrics_get(MET_CACHE_MISSES));
    jw_obj_end(w);
    return 0;
}

/* ---- /metrics ------------------------------------------------------------ */

void h_metrics(api_call_t *c)
{
    api_t *api = c->api;
    store_info_t si;
    memset(&si, 0, sizeof si);
    store_get_info(api->st, &si);
    uint64_t nc = 0, nd = 0, nk = 0;
    if (api->ops && totals(api, &nc, &nd, &nk)) log_warn("metrics: cannot read the totals");
    cache_stats_t cs;
    cache_get_stats(api->ops ? api->ops->cache : NULL, &cs);
    uint64_t tls_hs = 0, tls_fast = 0;
    if (api->server) http_server_tls_counts(api->server, &tls_hs, &tls_fast);
    metrics_gauge_t g[] = {
        {"engram_uptime_seconds", "Seconds since the server started.",
         (double)(time_now_ms() - api->started_ms) / 1000.0},
        {"engram_ingest_queue_depth", "Ingest jobs waiting or running.",
         (double)(api->ingest ? ingest_queue_depth(api->ingest) : 0)},
        {"engram_collections", "Collections in all workspaces.", (double)nc},
        {"engram_documents", "Documents in all workspaces (any status).", (double)nd},
        {"engram_chunks", "Chunks in all workspaces.", (double)nk},
        {"engram_lmdb_map_bytes", "Size of the LMDB memory map.", (double)si.map_bytes},
        {"engram_lmdb_used_bytes", "Bytes of the map in use (last page).", (double)si.used_bytes},
        {"engram_lmdb_file_bytes", "Size of data.mdb on disk.", (double)si.file_bytes},
        {"engram_lmdb_map_use_ratio", "used_bytes / map_bytes (the map doubles when full).",
         si.map_bytes ? (double)si.used_bytes / (double)si.map_bytes : 0},
        {"engram_lmdb_commits", "Write transactions committed since start.", (double)si.commits},
        {"engram_lmdb_write_ops", "Writes (store_write calls) those transactions carried.",
         (double)si.batched_ops},
        {"engram_http_connections", "Open HTTP connections.",
         (double)(api->server ? http_server_connections(api->server) : 0)},
        {"engram_tls_handshakes_total", "TLS handshakes completed since start.", (double)tls_hs},
        {"engram_tls_libsodium_records_total",
         "Of those, connections whose records libsodium encrypts (the rest: mbedTLS).",
         (double)tls_fast},
        {"engram_cache_entries", "Retrieval results held in the cache.", (double)cs.entries},
        {"engram_cache_bytes", "Bytes held by the retrieval cache.", (double)cs.bytes},
        {"engram_cache_max_bytes", "Retrieval cache budget (--cache-mb).", (double)cs.max_bytes},
    };
    buf_t b = BUF_INIT;
    metrics_render(&b, g, EG_ARRAY_LEN(g));
    if (b.err) {
        api_fail(c, b.err, "metrics");
    } else {
        http_respond(c->req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len,
                     "Cache-Control: no-store\r\n");
    }
    buf_free(&b);
}

/* ---- /openapi.json ------------------------------------------------------- */

void h_openapi(api_call_t *c)
{
    buf_t b = BUF_INIT;
    api_openapi_render(&b);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}

/* ---- quotas -------------------------------------------------------------- */

static int quota_value(api_call_t *c, const char *name, int64_t *out)
{
    long v;
    int present;
    *out = -1;
    if (api_field_int(c, c->body, name, 0, 1000000000000L, &v, &present)) return -1;
    if (present) *out = v;
    return 0;
}

static void write_limit(jw_t *w, const char *k, int64_t v)
{
    if (v >= 0) jw_kint(w, k, v);
    else jw_knull(w, k);
}

void h_admin_quota_put(api_call_t *c)
{
    quota_t q;
    if (quota_value(c, "max_chunks", &q.max_chunks)) return;
    if (quota_value(c, "max_requests_per_day", &q.max_requests_per_day)) return;
    MDB_txn *txn;
    int rc = store_read_begin(c->api->st, &txn);
    if (rc) { api_fail(c, rc, "workspace"); return; }
    idmap_entry_t e;
    rc = idmap_get(txn, c->api->st, c->params[0], IDK_WORKSPACE, &e);
    store_read_end(c->api->st, txn);
    if (rc) { api_fail(c, rc, "workspace"); return; }
    rc = limits_quota_set(c->api->ops->limits, e.ws, &q);
    uint64_t today = 0, chunks = 0;
    if (!rc) rc = limits_quota_get(c->api->ops->limits, e.ws, &q, &today);
    if (!rc) rc = limits_ws_chunks(c->api->st, e.ws, &chunks);
    if (rc) { api_fail(c, rc, "quota"); return; }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "workspace_id", c->params[0]);
    write_limit(&w, "max_chunks", q.max_chunks);
    write_limit(&w, "max_requests_per_day", q.max_requests_per_day);
    jw_key(&w, "usage");
    jw_obj_begin(&w);
    jw_kint(&w, "chunks", (int64_t)chunks);
    jw_kint(&w, "requests_today", (int64_t)today);
    jw_obj_end(&w);
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}

/* ---- backup -------------------------------------------------------------- */

void h_admin_backup(api_call_t *c)
{
    char path[4200];
    int rc = backup_to_temp(c->api->st, c->api->cfg->data, path, sizeof path);
    if (rc) { api_fail(c, rc, "backup"); return; }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unlink(path); /* the open descriptor keeps it until we are done */
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0) {
        if (fd >= 0) close(fd);
        api_fail(c, ENGRAM_EIO, "backup");
        return;
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { api_fail(c, ENGRAM_EIO, "backup"); return; }
    char ts[32], hdr[160];
    time_format_rfc3339(time_now_ms(), ts);
    for (char *p = ts; *p; p++)
        if (*p == ':') *p = '-';
    snprintf(hdr, sizeof hdr,
             "Content-Disposition: attachment; filename=\"engram-backup-%s.mdb\"\r\n"
             "Cache-Control: no-store\r\n", ts);
    metrics_inc(MET_BACKUPS);
    log_info("backup: streaming %zu bytes", len);
    http_respond(c->req, 200, "application/octet-stream", map, len, hdr);
    munmap(map, len);
}

/* ---- signed file links --------------------------------------------------- */

/* "https://host" from the request, or "" when the Host header is missing or
 * odd (then the link is relative). */
static void base_url(api_call_t *c, char *out, size_t outsz)
{
    out[0] = '\0';
    const char *host = http_header(c->req, "Host");
    if (!host || !*host || strlen(host) > 255) return;
    for (const char *p = host; *p; p++) {
        char ch = *p;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']';
        if (!ok) return;
    }
    const char *proto = http_header(c->req, "X-Forwarded-Proto");
    const char *scheme = proto && !strcasecmp(proto, "https") ? "https"
                         : proto && !strcasecmp(proto, "http") ? "http"
                         : c->api->cfg->tls_cert[0] ? "https" : "http";
    snprintf(out, outsz, "%s://%s", scheme, host);
}

void h_doc_url(api_call_t *c)
{
    char q[32];
    long expires = 3600;
    if (api_query_str(c, "expires_in", q, sizeof q)) return;
    if (q[0]) {
        char *end;
        long v = strtol(q, &end, 10);
        if (*end || end == q || v < 1 || v > SIGNURL_MAX_EXPIRES) {
            api_error(c, 422, "VALIDATION_ERROR", "expires_in",
                      "expires_in must be an integer between 1 and %d seconds", SIGNURL_MAX_EXPIRES);
            return;
        }
        expires = v;
    }
    json_t *rec = NULL;
    int rc = catalog_doc_get(c->api->st, c->who->ws, c->params[0], &rec);
    if (rc) { api_fail(c, rc, "document"); return; }
    int64_t exp = time_now_ms() / 1000 + expires;
    char sig[65], base[300], url[600];
    signurl_sign(c->api->ops->secret, c->params[0], exp, sig);
    base_url(c, base, sizeof base);
    snprintf(url, sizeof url, "%s/api/v1/files/%s?exp=%lld&sig=%s", base, c->params[0],
             (long long)exp, sig);
    char at[32];
    time_format_rfc3339(exp * 1000, at);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "url", url);
    jw_kint(&w, "expires_in", expires);
    jw_kstr(&w, "expires_at", at);
    jw_key(&w, "filename");
    jw_json(&w, json_get(rec, "filename"));
    jw_kstr(&w, "content_type", json_get_str(rec, "content_type"));
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
    json_free(rec);
}

/* Content-Disposition with an ASCII fallback name (quotes, backslashes,
 * controls and non-ASCII replaced) and the exact name in RFC 8187 form. */
static void disposition(buf_t *h, const char *name)
{
    buf_puts(h, "Content-Disposition: attachment; filename=\"");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        buf_putc(h, (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') ? '_' : (char)*p);
    buf_puts(h, "\"; filename*=UTF-8''");
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("!#$&+-.^_`|~", ch)) {
            buf_putc(h, (char)ch);
        } else {
            buf_putc(h, '%');
            buf_putc(h, hex[ch >> 4]);
            buf_putc(h, hex[ch & 15]);
        }
    }
    buf_puts(h, "\r\n");
}

static int content_type_ok(const char *ct)
{
    if (!ct || !*ct || strlen(ct) > 100) return 0;
    for (const char *p = ct; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$&^_.+-/;= ", ch)))
            return 0;
    }
    return 1;
}

void h_file_get(api_call_t *c)
{
    char exp[32], sig[80];
    int e1 = http_query_param(c->req, "exp", exp, sizeof exp);
    int e2 = http_query_param(c->req, "sig", sig, sizeof sig);
    if (e1 != 1 || e2 != 1 ||
        signurl_verify(c->api->ops->secret, c->params[0], exp, sig, time_now_ms() / 1000)) {
        api_error(c, 403, "FORBIDDEN", NULL, "this link is invalid or has expired");
        return;
    }
    buf_t bytes = BUF_INIT;
    json_t *rec = NULL;
    int rc = catalog_doc_file(c->api->st, 0, c->params[0], &bytes, &rec);
    if (rc) { buf_free(&bytes); api_fail(c, rc, "document"); return; }
    const char *fn = json_get_str(rec, "filename");
    if (!fn || !*fn) fn = json_get_str(rec, "title");
    if (!fn || !*fn) fn = "document";
    const char *ct = json_get_str(rec, "content_type");
    buf_t h = BUF_INIT;
    disposition(&h, fn);
    buf_puts(&h, "X-Content-Type-Options: nosniff\r\n"
                 "Content-Security-Policy: default-src 'none'; sandbox\r\n"
                 "Cache-Control: private\r\n");
    if (h.err) {
        api_fail(c, h.err, "document");
    } else {
        http_respond(c->req, 200, content_type_ok(ct) ? ct : "application/octet-stream",
                     bytes.data ? bytes.data : "", bytes.len, buf_cstr(&h));
    }
    buf_free(&h);
    buf_free(&bytes);
    json_free(rec);
}

/* ---- the retrieval cache ------------------------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    return strcmp(*x, *y);
}

/* JSON with object members sorted by key (recursively): equal requests
 * written in any member order give the same bytes. */
static void canonical(buf_t *b, const json_t *j)
{
    if (!j || j->type != JSON_OBJECT) {
        if (j && j->type == JSON_ARRAY) {
            buf_putc(b, '[');
            for (size_t i = 0; i < j->len; i++) {
                if (i) buf_putc(b, ',');
                canonical(b, j->items[i]);
            }
            buf_putc(b, ']');
        } else if (j) {
            json_write(b, j);
        }
        return;
    }
    char **keys = eg_malloc((j->len ? j->len : 1) * sizeof *keys);
    if (!keys) { b->err = ENGRAM_ENOMEM; return; }
    for (size_t i = 0; i < j->len; i++) keys[i] = j->keys[i];
    qsort(keys, j->len, sizeof *keys, cmp_keys);
    buf_putc(b, '{');
    for (size_t i = 0; i < j->len; i++) {
        if (i && !strcmp(keys[i], keys[i - 1])) continue; /* duplicate: json_get's (last) wins */
        if (i) buf_putc(b, ',');
        json_escape(b, keys[i], strlen(keys[i]));
        buf_putc(b, ':');
        canonical(b, json_get(j, keys[i]));
    }
    buf_putc(b, '}');
    eg_free(keys);
}

struct search_args {
    const retrieve_env_t *env;
    tokenizer_t *tok;
    uint64_t ws;
    const retrieve_req_t *r;
    char *err;
    size_t errsz;
};

static int search_compute(void *arg, buf_t *out)
{
    struct search_args *a = arg;
    retrieve_hit_t *hits = NULL;
    size_t n = 0;
    int rc = retrieve_search(a->env, a->tok, a->ws, a->r, &hits, &n, a->err, a->errsz);
    if (!rc && n) buf_append(out, hits, n * sizeof *hits);
    eg_free(hits);
    return rc ? rc : out->err;
}

int api_search_cached(api_call_t *c, const struct retrieve_env *env, const struct retrieve_req *r,
                      struct retrieve_hit **hits, size_t *n, char *err, size_t errsz)
{
    *hits = NULL;
    *n = 0;
    if (errsz) err[0] = '\0';
    uint64_t ws = c->who->ws;
    struct api_ops *o = c->api->ops;
    if (!o || !c->body) return retrieve_search(env, c->tok, ws, r, hits, n, err, errsz);
    /* Stamp first, computation after: a write committed meanwhile changes
     * the generation, so its result is never served under the old stamp. */
    uint64_t stamp;
    if (r->coll_uuid) {
        MDB_txn *txn;
        int rc = store_read_begin(c->api->st, &txn);
        if (rc) return rc;
        idmap_entry_t e;
        rc = idmap_get(txn, c->api->st, r->coll_uuid, IDK_COLLECTION, &e);
        store_read_end(c->api->st, txn);
        if (rc || e.ws != ws) return retrieve_search(env, c->tok, ws, r, hits, n, err, errsz);
        stamp = catalog_generation(ws, e.coll);
    } else {
        stamp = catalog_generation(ws, 0);
    }
    buf_t key = BUF_INIT;
    unsigned char wsb[8];
    be64_put(wsb, ws);
    buf_append(&key, wsb, 8);
    buf_printf(&key, "%d|%d|", (int)r->mode, r->top_k);
    canonical(&key, c->body);
    if (key.err) {
        buf_free(&key);
        return ENGRAM_ENOMEM;
    }
    struct search_args a = {env, c->tok, ws, r, err, errsz};
    buf_t v = BUF_INIT;
    int hit = 0;
    int rc = cache_get(o->cache, key.data, key.len, stamp, search_compute, &a, &v, &hit);
    buf_free(&key);
    if (rc) {
        if (hit && errsz) snprintf(err, errsz, "an identical query running at the same time failed");
        buf_free(&v);
        return rc;
    }
    size_t count = v.len / sizeof(retrieve_hit_t);
    if (count) {
        *hits = eg_malloc(count * sizeof **hits);
        if (!*hits) { buf_free(&v); return ENGRAM_ENOMEM; }
        memcpy(*hits, v.data, count * sizeof **hits);
    }
    *n = count;
    buf_free(&v);
    return 0;
}
