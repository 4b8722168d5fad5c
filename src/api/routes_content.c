/*
 * routes_content.c - collections, documents (JSON and multipart uploads),
 * chunks and retrieval.
 */
#include <stdio.h>
#include <strings.h>

#include "api/api_internal.h"
#include "catalog/catalog.h"
#include "catalog/idempotency.h"
#include "http/multipart.h"
#include "ingest/detect.h"
#include "ingest/extract.h"
#include "model/registry.h"
#include "rag/retrieve.h"
#include "store/record.h"
#include "util/common.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/utf8.h"

/* ---- collections --------------------------------------------------------- */

/* The embedder must be configured here; its identity is recorded. */
static int resolve_embedder(api_call_t *c, coll_config_t *cfg)
{
    if (!c->api->embedders) return 0;
    char err[256];
    if (registry_check(c->api->embedders, cfg->embedder, NULL, err, sizeof err)) {
        api_error(c, 422, "VALIDATION_ERROR", "embedder", "%s (configured: hash%s)", err,
                  registry_get(c->api->embedders, "openai") ? ", openai" : "");
        return -1;
    }
    snprintf(cfg->embedder_id, sizeof cfg->embedder_id, "%s",
             embedder_id(registry_get(c->api->embedders, cfg->embedder)));
    return 0;
}

static int read_config(api_call_t *c, coll_config_t *cfg)
{
    *cfg = COLL_CONFIG_DEFAULT;
    const json_t *conf;
    if (api_field_obj(c, c->body, "config", &conf)) return -1;
    if (c->api->embedders)
        snprintf(cfg->embedder, sizeof cfg->embedder, "%s", registry_default(c->api->embedders));
    if (!conf) return resolve_embedder(c, cfg);
    long v;
    int present;
    if (api_field_int(c, conf, "chunk_size", 16, 8192, &v, &present)) return -1;
    if (present) cfg->chunk_size = (uint32_t)v;
    if (api_field_int(c, conf, "chunk_overlap", 0, 8191, &v, &present)) return -1;
    if (present) cfg->chunk_overlap = (uint32_t)v;
    else if (cfg->chunk_overlap >= cfg->chunk_size) cfg->chunk_overlap = cfg->chunk_size / 4;
    if (cfg->chunk_overlap >= cfg->chunk_size) {
        api_error(c, 422, "VALIDATION_ERROR", "chunk_overlap", "chunk_overlap must be less than chunk_size");
        return -1;
    }
    const json_t *e = json_get(conf, "embedder");
    if (e && e->type != JSON_NULL) {
        if (e->type != JSON_STRING) {
            api_error(c, 422, "VALIDATION_ERROR", "embedder", "embedder must be a string");
            return -1;
        }
        snprintf(cfg->embedder, sizeof cfg->embedder, "%.31s", e->str);
    }
    int g = 1;
    if (api_field_bool(c, conf, "graph", &g)) return -1;
    cfg->graph = g;
    return resolve_embedder(c, cfg);
}

void h_coll_create(api_call_t *c)
{
    const char *name, *desc;
    const json_t *meta;
    coll_config_t cfg;
    if (api_field_str(c, "name", 1, 1, 200, &name)) return;
    if (api_field_str(c, "description", 0, 0, 10000, &desc)) return;
    if (api_field_obj(c, c->body, "metadata", &meta)) return;
    if (read_config(c, &cfg)) return;
    json_t *rec = NULL;
    int rc = catalog_coll_create(c->api->st, c->who->ws, c->who->user_uuid, name, desc, meta, &cfg, &rec);
    if (rc == ENGRAM_EEXIST) {
        api_error(c, 409, "CONFLICT", "name", "a collection named \"%.200s\" already exists", name);
        return;
    }
    if (rc) { api_fail(c, rc, "collection"); return; }
    api_send_dom(c, 201, rec);
    json_free(rec);
}

void h_coll_list(api_call_t *c)
{
    size_t limit, offset, total;
    if (api_query_limit(c, &limit, &offset)) return;
    json_t *page = NULL;
    int rc = catalog_coll_list(c->api->st, c->who->ws, limit, offset, &page, &total);
    if (rc) { api_fail(c, rc, "collections"); return; }
    api_send_page(c, page, total, limit, offset);
    json_free(page);
}

void h_coll_get(api_call_t *c)
{
    json_t *rec = NULL;
    int rc = catalog_coll_get(c->api->st, c->who->ws, c->params[0], &rec, NULL);
    if (rc) { api_fail(c, rc, "collection"); return; }
    api_send_dom(c, 200, rec);
    json_free(rec);
}

void h_coll_patch(api_call_t *c)
{
    const char *name, *desc;
    const json_t *meta;
    if (api_field_str(c, "name", 0, 1, 200, &name)) return;
    if (api_field_str(c, "description", 0, 0, 10000, &desc)) return;
    if (api_field_obj(c, c->body, "metadata", &meta)) return;
    if (json_get(c->body, "config")) {
        api_error(c, 422, "VALIDATION_ERROR", "config", "config is fixed when a collection is created");
        return;
    }
    json_t *rec = NULL;
    int rc = catalog_coll_patch(c->api->st, c->who->ws, c->params[0], name, desc, meta, &rec);
    if (rc == ENGRAM_EEXIST) {
        api_error(c, 409, "CONFLICT", "name", "a collection with that name already exists");
        return;
    }
    if (rc) { api_fail(c, rc, "collection"); return; }
    api_send_dom(c, 200, rec);
    json_free(rec);
}

void h_coll_delete(api_call_t *c)
{
    int rc = catalog_coll_delete(c->api->st, c->tok, c->who->ws, c->params[0]);
    if (rc) { api_fail(c, rc, "collection"); return; }
    api_no_content(c);
}

/* ---- documents ----------------------------------------------------------- */

/* Title from the file name or the first line of text. */
static void default_title(const char *filename, const char *text, size_t len, char *out, size_t outsz)
{
    if (filename && *filename) {
        const char *base = strrchr(filename, '/');
        base = base ? base + 1 : filename;
        snprintf(out, outsz, "%s", base);
        return;
    }
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t' ||
                       text[i] == '#'))
        i++;
    size_t j = i;
    while (j < len && text[j] != '\n' && text[j] != '\r' && j - i < 120) j++;
    size_t n = utf8_truncate(text + i, j - i, outsz - 1);
    if (n == 0) { snprintf(out, outsz, "Untitled"); return; }
    memcpy(out, text + i, n);
    out[n] = '\0';
    while (n > 0 && out[n - 1] == ' ') out[--n] = '\0';
}

static void upload(api_call_t *c, const char *coll_id, const char *title, const char *filename,
                   const char *declared_type, const json_t *meta, const char *bytes, size_t len)
{
    const char *idem = http_header(c->req, "Idempotency-Key"); /* docs/RELIABILITY.md */
    if (idem && idem_key_valid(idem)) {
        api_error(c, 422, "VALIDATION_ERROR", "Idempotency-Key",
                  "Idempotency-Key must be 1 to %d visible ASCII characters", IDEM_KEY_MAX);
        return;
    }
    if (len == 0) {
        api_error(c, 422, "VALIDATION_ERROR", "content", "the document is empty");
        return;
    }
    doc_type_t t = detect_type(bytes, len, filename, declared_type);
    if (!extract_supported(t)) {
        int image = t == DOC_PNG || t == DOC_JPEG || t == DOC_TIFF;
        if (t == DOC_BINARY)
            api_error(c, 415, "UNSUPPORTED_MEDIA_TYPE", "file",
                      "the file is binary data, not a supported document; supported: text, Markdown, HTML, PDF, DOCX");
        else if (image)
            api_error(c, 415, "UNSUPPORTED_MEDIA_TYPE", "file",
                      "%s images need OCR, which is not available in this build", detect_mime(t));
        else
            api_error(c, 415, "UNSUPPORTED_MEDIA_TYPE", "file",
                      "%s documents are not supported by this build", detect_mime(t));
        return;
    }
    char tbuf[256];
    if (!title) {
        if (filename || t == DOC_TEXT || t == DOC_MARKDOWN)
            default_title(filename, bytes, len, tbuf, sizeof tbuf);
        else
            snprintf(tbuf, sizeof tbuf, "Untitled %s document",
                     t == DOC_PDF ? "PDF" : t == DOC_DOCX ? "Word" : t == DOC_HTML ? "HTML" : "image");
        title = tbuf;
    }
    doc_upload_t up = {.coll_uuid = coll_id, .user_uuid = c->who->user_uuid, .title = title,
                       .filename = filename, .content_type = detect_mime(t), .metadata = meta,
                       .bytes = bytes, .len = len, .idempotency_key = idem};
    json_t *rec = NULL;
    int created = 0;
    uint64_t job = 0;
    int rc = catalog_doc_create(c->api->st, c->who->ws, &up, &rec, &created, &job);
    if (rc == ENGRAM_ENOTFOUND) {
        api_error(c, 404, "NOT_FOUND", "collection_id", "collection not found");
        return;
    }
    if (rc) { api_fail(c, rc, "document"); return; }
    if (created) {
        ingest_job_t j = {job, c->who->ws, 0, 0};
        /* The job's ids come from the record. */
        j.coll = (uint64_t)json_get_i64(rec, "cid", 0);
        j.doc = (uint64_t)json_get_i64(rec, "did", 0);
        if (ingest_submit(c->api->ingest, &j))
            log_warn("ingest queue full; job %llu runs at next start", (unsigned long long)job);
    }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    catalog_write_doc(&w, rec, 0);
    api_send_json(c, created ? 202 : 200, &b, NULL);
    buf_free(&b);
    json_free(rec);
}

static void upload_json(api_call_t *c)
{
    json_t *body = NULL;
    json_error_t je;
    int rc = json_parse(c->req->body, c->req->body_len, &body, &je);
    if (rc == ENGRAM_ENOMEM) { api_fail(c, rc, "document"); return; }
    if (rc) {
        api_error(c, 400, "BAD_REQUEST", NULL, "malformed JSON at byte %zu: %s", je.offset, je.message);
        return;
    }
    if (body->type != JSON_OBJECT) {
        api_error(c, 422, "VALIDATION_ERROR", NULL, "the JSON body must be an object");
        json_free(body);
        return;
    }
    c->body = body; /* freed by api_handle */
    const char *coll, *title, *ctype;
    const json_t *meta;
    if (api_field_str(c, "collection_id", 1, 1, 64, &coll)) return;
    if (api_field_str(c, "title", 0, 1, 1000, &title)) return;
    if (api_field_str(c, "content_type", 0, 1, 128, &ctype)) return;
    if (api_field_obj(c, body, "metadata", &meta)) return;
    const json_t *content = json_get(body, "content");
    if (!content || content->type == JSON_NULL) {
        api_error(c, 422, "VALIDATION_ERROR", "content", "content is required");
        return;
    }
    if (content->type != JSON_STRING) {
        api_error(c, 422, "VALIDATION_ERROR", "content", "content must be a string");
        return;
    }
    const char *filename = json_get_str(body, "filename");
    upload(c, coll, title, filename, ctype, meta, content->str, content->len);
}

static void upload_multipart(api_call_t *c, const char *ct)
{
    char boundary[80];
    if (multipart_boundary(ct, boundary, sizeof boundary)) {
        api_error(c, 400, "BAD_REQUEST", NULL, "multipart/form-data needs a boundary parameter");
        return;
    }
    multipart_part_t parts[MULTIPART_MAX_PARTS];
    size_t n;
    const char *err;
    if (multipart_parse(c->req->body, c->req->body_len, boundary, parts, &n, &err)) {
        api_error(c, 400, "BAD_REQUEST", NULL, "%s", err);
        return;
    }
    const multipart_part_t *file = multipart_find(parts, n, "file");
    const multipart_part_t *coll = multipart_find(parts, n, "collection_id");
    const multipart_part_t *meta_p = multipart_find(parts, n, "metadata");
    const multipart_part_t *title_p = multipart_find(parts, n, "title");
    if (!coll || coll->len == 0 || coll->len > 63) {
        api_error(c, 422, "VALIDATION_ERROR", "collection_id", "collection_id is required");
        return;
    }
    if (!file) {
        api_error(c, 422, "VALIDATION_ERROR", "file", "a file part is required");
        return;
    }
    char coll_id[64], title[1024];
    memcpy(coll_id, coll->data, coll->len);
    coll_id[coll->len] = '\0';
    json_t *meta = NULL;
    if (meta_p && meta_p->len) {
        json_error_t je;
        int rc = json_parse(meta_p->data, meta_p->len, &meta, &je);
        if (rc || meta->type != JSON_OBJECT) {
            json_free(meta);
            api_error(c, 422, "VALIDATION_ERROR", "metadata", "metadata must be a JSON object");
            return;
        }
    }
    const char *t = NULL;
    if (title_p && title_p->len) {
        if (title_p->len >= sizeof title || !utf8_valid(title_p->data, title_p->len)) {
            json_free(meta);
            api_error(c, 422, "VALIDATION_ERROR", "title", "title must be UTF-8 text under 1000 bytes");
            return;
        }
        memcpy(title, title_p->data, title_p->len);
        title[title_p->len] = '\0';
        t = title;
    }
    /* The file name is data only: keep its last path component, valid UTF-8. */
    char fname[256];
    const char *base = strrchr(file->filename, '/');
    base = base ? base + 1 : file->filename;
    const char *bs = strrchr(base, '\\');
    base = bs ? bs + 1 : base;
    snprintf(fname, sizeof fname, "%s", base);
    if (!utf8_valid(fname, strlen(fname))) snprintf(fname, sizeof fname, "upload");
    upload(c, coll_id, t, file->has_filename && fname[0] ? fname : NULL, file->content_type, meta,
           file->data, file->len);
    json_free(meta);
}

void h_doc_create(api_call_t *c)
{
    const char *ct = http_header(c->req, "Content-Type");
    if (ct && !strncasecmp(ct, "multipart/form-data", 19)) {
        upload_multipart(c, ct);
    } else if (!ct || !strncasecmp(ct, "application/json", 16) ||
               !strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        if (c->req->body_len == 0) {
            api_error(c, 400, "BAD_REQUEST", NULL, "a JSON or multipart body is required");
            return;
        }
        upload_json(c);
    } else {
        api_error(c, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
                  "send documents as multipart/form-data or application/json");
    }
}

void h_doc_list(api_call_t *c)
{
    size_t limit, offset, total;
    char coll[64], status[32];
    if (api_query_limit(c, &limit, &offset)) return;
    if (api_query_str(c, "collection_id", coll, sizeof coll)) return;
    if (api_query_str(c, "status", status, sizeof status)) return;
    if (status[0] && strcmp(status, "pending") && strcmp(status, "processing") &&
        strcmp(status, "completed") && strcmp(status, "failed")) {
        api_error(c, 422, "VALIDATION_ERROR", "status",
                  "status must be pending, processing, completed or failed");
        return;
    }
    json_t *page = NULL;
    int rc = catalog_doc_list(c->api->st, c->who->ws, coll[0] ? coll : NULL, status[0] ? status : NULL,
                              limit, offset, &page, &total);
    if (rc == ENGRAM_ENOTFOUND) {
        api_error(c, 404, "NOT_FOUND", "collection_id", "collection not found");
        return;
    }
    if (rc) { api_fail(c, rc, "documents"); return; }
    api_send_page(c, page, total, limit, offset);
    json_free(page);
}

/* -1, or the progress of a document being processed right now. */
static double live_progress(api_call_t *c, const json_t *rec)
{
    double p;
    const char *s = json_get_str(rec, "status");
    if (!s || (strcmp(s, "pending") && strcmp(s, "processing"))) return -1;
    uint64_t doc = (uint64_t)json_get_i64(rec, "did", 0);
    return ingest_progress(c->api->ingest, c->who->ws, doc, &p) ? p : -1;
}

static void send_doc(api_call_t *c, int status, const json_t *rec)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    catalog_write_doc(&w, rec, live_progress(c, rec) >= 0);
    api_send_json(c, status, &b, NULL);
    buf_free(&b);
}

void h_doc_get(api_call_t *c)
{
    json_t *rec = NULL;
    int rc = catalog_doc_get(c->api->st, c->who->ws, c->params[0], &rec);
    if (rc) { api_fail(c, rc, "document"); return; }
    send_doc(c, 200, rec);
    json_free(rec);
}

void h_doc_status(api_call_t *c)
{
    json_t *rec = NULL;
    int rc = catalog_doc_get(c->api->st, c->who->ws, c->params[0], &rec);
    if (rc) { api_fail(c, rc, "document"); return; }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    catalog_write_doc_status(&w, rec, live_progress(c, rec));
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
    json_free(rec);
}

void h_doc_patch(api_call_t *c)
{
    const char *title;
    const json_t *meta;
    if (api_field_str(c, "title", 0, 1, 1000, &title)) return;
    if (api_field_obj(c, c->body, "metadata", &meta)) return;
    json_t *rec = NULL;
    int rc = catalog_doc_patch(c->api->st, c->who->ws, c->params[0], title, meta, &rec);
    if (rc) { api_fail(c, rc, "document"); return; }
    send_doc(c, 200, rec);
    json_free(rec);
}

void h_doc_delete(api_call_t *c)
{
    int rc = catalog_doc_delete(c->api->st, c->tok, c->who->ws, c->params[0]);
    if (rc) { api_fail(c, rc, "document"); return; }
    api_no_content(c);
}

void h_doc_chunks(api_call_t *c)
{
    size_t limit, offset, total;
    if (api_query_limit(c, &limit, &offset)) return;
    json_t *page = NULL;
    int rc = catalog_doc_chunks(c->api->st, c->who->ws, c->params[0], limit, offset, &page, &total);
    if (rc) { api_fail(c, rc, "document"); return; }
    api_send_page(c, page, total, limit, offset);
    json_free(page);
}

/* ---- retrieval ----------------------------------------------------------- */

void h_retrieve(api_call_t *c)
{
    uint64_t t0 = time_mono_ns();
    const char *query, *mode_s, *coll;
    long top_k = 10;
    int rerank = 0, graph = 0, explain = 0;
    const json_t *filter;
    if (api_field_str(c, "query", 1, 1, 10000, &query)) return;
    if (api_field_str(c, "mode", 0, 1, 32, &mode_s)) return;
    if (api_field_str(c, "collection_id", 0, 1, 64, &coll)) return;
    if (api_field_int(c, c->body, "top_k", 1, 100, &top_k, NULL)) return;
    if (api_field_bool(c, c->body, "rerank", &rerank)) return;
    if (api_field_bool(c, c->body, "enable_graph", &graph)) return;
    if (api_field_bool(c, c->body, "explain", &explain)) return;
    if (api_field_obj(c, c->body, "metadata_filter", &filter)) return;
    /* API.md's default is hybrid; it needs vectors (docs/API.md). */
    int mode = mode_s ? retrieve_mode_parse(mode_s) : (c->api->embedders ? RMODE_HYBRID : RMODE_KEYWORD);
    if (mode < 0) {
        api_error(c, 422, "VALIDATION_ERROR", "mode",
                  "mode must be semantic, keyword, hybrid, graph or hierarchical");
        return;
    }
    /* The graph takes part with mode "graph" or enable_graph (rag/retrieve.h). */
    int graph_used = graph || mode == RMODE_GRAPH;
    retrieve_env_t env = {.st = c->api->st, .embedders = c->api->embedders,
                          .rerank_url = c->api->cfg && c->api->cfg->rerank_url[0] ? c->api->cfg->rerank_url : NULL,
                          .vcache = c->api->vcache};
    retrieve_req_t r = {.query = query, .mode = (rmode_t)mode, .top_k = (int)top_k,
                        .coll_uuid = coll, .metadata_filter = filter && filter->len ? filter : NULL,
                        .bm25 = BM25_PARAMS_DEFAULT, .enable_graph = graph_used, .rerank = rerank};
    retrieve_hit_t *hits = NULL;
    size_t n = 0;
    char err[256];
    int rc = api_search_cached(c, &env, &r, &hits, &n, err, sizeof err); /* cache: routes_ops.c */
    if (rc == ENGRAM_ENOTFOUND) {
        api_error(c, 404, "NOT_FOUND", "collection_id", "collection not found");
        return;
    }
    if (rc == ENGRAM_EUNSUPPORTED) {
        api_error(c, 422, "VALIDATION_ERROR", "mode",
                  "mode \"%s\" is not available in this build yet; use \"keyword\"",
                  retrieve_mode_name((rmode_t)mode));
        return;
    }
    if (rc == ENGRAM_EUPSTREAM) {
        api_error(c, 502, "UPSTREAM_ERROR", NULL, "the embedding service failed: %s", err);
        return;
    }
    if (rc == ENGRAM_EINVAL) {
        api_error(c, 422, "VALIDATION_ERROR", "query", "%s", err[0] ? err : "the query has too many terms");
        return;
    }
    if (rc) { api_fail(c, rc, "retrieval"); return; }
    buf_t results = BUF_INIT;
    jw_t w;
    jw_init(&w, &results);
    size_t shown = 0;
    rc = retrieve_render(&env, c->who->ws, hits, n, explain, &w, &shown);
    eg_free(hits);
    buf_t gctx = BUF_INIT;
    if (!rc && graph_used) rc = retrieve_graph_context(&env, c->who->ws, &r, &gctx);
    if (!rc && gctx.err) rc = gctx.err;
    if (rc) { api_fail(c, rc, "retrieval"); buf_free(&results); buf_free(&gctx); return; }
    buf_t b = BUF_INIT;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "query", query);
    jw_kstr(&w, "mode", retrieve_mode_name((rmode_t)mode));
    jw_kint(&w, "total_results", (int64_t)shown);
    jw_kbool(&w, "graph_enhanced", graph_used);
    jw_kdouble(&w, "processing_time_ms", (double)(time_mono_ns() - t0) / 1e6);
    jw_key(&w, "results");
    jw_raw(&w, results.data ? results.data : "[]", results.data ? results.len : 2);
    if (graph_used) {
        jw_key(&w, "graph_context");
        jw_strn(&w, gctx.data ? gctx.data : "", gctx.len);
    }
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
    buf_free(&results);
    buf_free(&gctx);
}
