/*
 * openapi.c - GET /openapi.json, generated from the router's route table.
 *
 * The table in router.c is the one source of truth for which paths and
 * methods exist, which credential they need and what body they take; this
 * file only adds words (a summary, the success status, query parameters)
 * per route, looked up by method + pattern. A route without an entry here
 * still appears (summary = its label), so the document cannot miss a route;
 * tests/integration/test_ops.py checks the set of paths and methods
 * against router.c's table. Path parameters are named id, id2, ... in
 * order (OpenAPI needs distinct names where the router just says {id}).
 */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "util/common.h"

typedef struct route_doc {
    const char *method, *pattern;
    const char *summary;
    int status;              /* success status */
    const char *query;       /* comma-separated query parameter names */
} route_doc_t;

#define V1 "/api/v1"
static const route_doc_t docs[] = {
    {"GET", "/health", "Liveness: status, version and uptime", 200, NULL},
    {"GET", "/ready", "Readiness: 200 once storage and ingestion run, else 503", 200, NULL},
    {"GET", "/metrics", "Prometheus metrics (text format 0.0.4)", 200, NULL},
    {"GET", "/openapi.json", "This document", 200, NULL},
    {"GET", "/", "The web page (HTML; its API calls use the session cookie)", 200, NULL},
    {"GET", "/assets/{id}", "A file of the web page (app.js, app.css)", 200, NULL},
    {"GET", V1 "/health", "Liveness (same as /health)", 200, NULL},
    {"POST", V1 "/auth/register", "Create a user with a personal workspace; returns its first API key", 201, NULL},
    {"POST", V1 "/auth/login", "Sign in with email and password; sets the session cookie", 200, NULL},
    {"POST", V1 "/auth/logout", "End the cookie session", 204, NULL},
    {"GET", V1 "/auth/keys", "The caller's API keys (never the secrets)", 200, "limit,offset"},
    {"POST", V1 "/auth/keys", "Create an API key with scopes; the key is shown once", 201, NULL},
    {"DELETE", V1 "/auth/keys/{id}", "Revoke an API key", 204, NULL},
    {"GET", V1 "/workspaces", "The caller's workspaces with the caller's role", 200, "limit,offset"},
    {"POST", V1 "/workspaces", "Create a shared workspace", 201, NULL},
    {"GET", V1 "/workspaces/{id}/members", "Members of a workspace", 200, "limit,offset"},
    {"POST", V1 "/workspaces/{id}/members", "Add a member (workspace admins)", 201, NULL},
    {"DELETE", V1 "/workspaces/{id}/members/{id}", "Remove a member", 204, NULL},
    {"POST", V1 "/admin/users", "Create a user (server admins)", 201, NULL},
    {"GET", V1 "/admin/users", "All users", 200, "limit,offset"},
    {"PATCH", V1 "/admin/users/{id}", "Disable or re-enable a user", 200, NULL},
    {"GET", V1 "/admin/stats", "Totals, storage size and map use, ingest queue depth, cache", 200, NULL},
    {"PUT", V1 "/admin/workspaces/{id}/quota",
     "Set a workspace's quota {max_chunks, max_requests_per_day} (null: no limit)", 200, NULL},
    {"POST", V1 "/admin/backup", "A consistent compacted copy of the database (one LMDB file)", 200, NULL},
    {"POST", V1 "/collections", "Create a collection", 201, NULL},
    {"GET", V1 "/collections", "List collections", 200, "limit,offset"},
    {"GET", V1 "/collections/{id}", "Get a collection", 200, NULL},
    {"PATCH", V1 "/collections/{id}", "Change name, description or metadata", 200, NULL},
    {"DELETE", V1 "/collections/{id}", "Delete a collection and everything in it", 204, NULL},
    {"POST", V1 "/documents", "Upload a document (multipart file or JSON content); processed asynchronously", 202, NULL},
    {"GET", V1 "/documents", "List documents", 200, "collection_id,status,limit,offset"},
    {"GET", V1 "/documents/{id}", "Get a document", 200, NULL},
    {"PATCH", V1 "/documents/{id}", "Change title or metadata", 200, NULL},
    {"DELETE", V1 "/documents/{id}", "Delete a document, its chunks and index entries", 204, NULL},
    {"GET", V1 "/documents/{id}/status", "Processing status", 200, NULL},
    {"GET", V1 "/documents/{id}/chunks", "The document's chunks in order", 200, "limit,offset"},
    {"GET", V1 "/documents/{id}/url", "A signed link to the original file, valid expires_in seconds (1..604800)", 200, "expires_in"},
    {"GET", V1 "/files/{id}", "The original file through a signed link (no credential)", 200, "exp,sig"},
    {"GET", V1 "/collections/{id}/graph/entities", "Knowledge graph entities: all (most mentioned first), or matching q by name, prefix and fuzzily", 200, "q,limit,offset"},
    {"GET", V1 "/collections/{id}/graph/entities/{id}", "An entity with its relations and the chunk_ids that mention it", 200, NULL},
    {"GET", V1 "/collections/{id}/graph/export", "The whole knowledge graph as GraphML (default) or JSON", 200, "format"},
    {"POST", V1 "/retrievals", "Retrieve chunks (keyword, semantic, hybrid, graph, hierarchical)", 200, NULL},
    {"POST", V1 "/retrievals/retrieve", "Retrieve chunks (alias of /retrievals)", 200, NULL},
    {"POST", V1 "/chat", "Answer from the documents with sources: text/event-stream (sources, delta, usage, done) or JSON with stream false", 200, NULL},
    {"GET", V1 "/chat/sessions", "The caller's chat sessions, most recent first (a bare array)", 200, "limit,offset"},
    {"GET", V1 "/chat/sessions/{id}/messages", "A session's messages in order (a bare array)", 200, "limit,offset"},
    {"DELETE", V1 "/chat/sessions/{id}", "Delete a chat session and its messages", 204, NULL},
    {"POST", V1 "/memories", "Store a memory {type, content, reliability?, metadata?}", 201, NULL},
    {"GET", V1 "/memories", "The caller's memories", 200, "type,limit,offset"},
    {"POST", V1 "/memories/search", "Weighted memory search (keyword, vector, reliability, recency, frequency)", 200, NULL},
    {"GET", V1 "/memories/{id}", "Get a memory (not counted as an access)", 200, NULL},
    {"PATCH", V1 "/memories/{id}", "Change a memory's type, content, reliability or metadata", 200, NULL},
    {"DELETE", V1 "/memories/{id}", "Delete a memory", 204, NULL},
};

static const route_doc_t *doc_for(const api_route_t *r)
{
    for (size_t i = 0; i < EG_ARRAY_LEN(docs); i++)
        if (!strcmp(docs[i].method, r->method) && !strcmp(docs[i].pattern, r->pattern)) return &docs[i];
    return NULL;
}

/* "/a/{id}/b/{id}" -> "/a/{id}/b/{id2}"; *n_params set. */
static void openapi_path(const char *pattern, char *out, size_t outsz, int *n_params)
{
    buf_t b = BUF_INIT;
    *n_params = 0;
    for (const char *p = pattern; *p;) {
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (!e) break;
            (*n_params)++;
            if (*n_params == 1) buf_puts(&b, "{id}");
            else buf_printf(&b, "{id%d}", *n_params);
            p = e + 1;
        } else {
            buf_putc(&b, *p++);
        }
    }
    snprintf(out, outsz, "%s", b.err ? "" : buf_cstr(&b));
    buf_free(&b);
}

static void lower(const char *s, char *out, size_t outsz)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outsz; i++) out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    out[i] = '\0';
}

static void write_param(jw_t *w, const char *name, const char *in, int required, const char *type)
{
    jw_obj_begin(w);
    jw_kstr(w, "name", name);
    jw_kstr(w, "in", in);
    jw_kbool(w, "required", required);
    jw_key(w, "schema");
    jw_obj_begin(w);
    jw_kstr(w, "type", type);
    jw_obj_end(w);
    jw_obj_end(w);
}

static void write_operation(jw_t *w, const api_route_t *r, size_t index, int n_params)
{
    const route_doc_t *d = doc_for(r);
    char m[16], opid[96];
    lower(r->method, m, sizeof m);
    snprintf(opid, sizeof opid, "%s_%zu", r->label, index);
    for (char *p = opid; *p; p++)
        if (*p == '.') *p = '_';
    jw_key(w, m);
    jw_obj_begin(w);
    jw_kstr(w, "operationId", opid);
    jw_kstr(w, "summary", d ? d->summary : r->label);
    jw_key(w, "x-route-label");
    jw_str(w, r->label);
    static const char *const scope[] = {NULL, "any", "read", "write", "admin"};
    if (r->auth > AUTH_NONE && r->auth <= AUTH_ADMIN) {
        jw_kstr(w, "x-required-scope", scope[r->auth]);
    } else {
        jw_key(w, "security");
        jw_arr_begin(w);
        jw_arr_end(w);
    }
    if (n_params || (d && d->query)) {
        jw_key(w, "parameters");
        jw_arr_begin(w);
        for (int i = 1; i <= n_params; i++) {
            char name[16];
            if (i == 1) snprintf(name, sizeof name, "id");
            else snprintf(name, sizeof name, "id%d", i);
            write_param(w, name, "path", 1, "string");
        }
        if (d && d->query) {
            char q[128];
            snprintf(q, sizeof q, "%s", d->query);
            for (char *tok = strtok(q, ","); tok; tok = strtok(NULL, ",")) {
                int num = !strcmp(tok, "limit") || !strcmp(tok, "offset") || !strcmp(tok, "expires_in") ||
                          !strcmp(tok, "exp");
                write_param(w, tok, "query", !strcmp(tok, "exp") || !strcmp(tok, "sig"),
                            num ? "integer" : "string");
            }
        }
        jw_arr_end(w);
    }
    if (r->body != BODY_NONE) {
        jw_key(w, "requestBody");
        jw_obj_begin(w);
        jw_kbool(w, "required", 1);
        jw_key(w, "content");
        jw_obj_begin(w);
        if (r->body == BODY_UPLOAD) {
            jw_key(w, "multipart/form-data");
            jw_obj_begin(w);
            jw_key(w, "schema");
            jw_obj_begin(w);
            jw_kstr(w, "type", "object");
            jw_key(w, "required");
            jw_arr_begin(w);
            jw_str(w, "collection_id");
            jw_str(w, "file");
            jw_arr_end(w);
            jw_obj_end(w);
            jw_obj_end(w);
        }
        jw_key(w, "application/json");
        jw_obj_begin(w);
        jw_key(w, "schema");
        jw_obj_begin(w);
        jw_kstr(w, "type", "object");
        jw_obj_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
        jw_obj_end(w);
    }
    int status = d ? d->status : 200;
    char st[8];
    snprintf(st, sizeof st, "%d", status);
    jw_key(w, "responses");
    jw_obj_begin(w);
    jw_key(w, st);
    jw_obj_begin(w);
    jw_kstr(w, "description", status == 204 ? "No content" : "Success");
    jw_obj_end(w);
    jw_key(w, "default");
    jw_obj_begin(w);
    jw_kstr(w, "$ref", "#/components/responses/Error");
    jw_obj_end(w);
    jw_obj_end(w);
    jw_obj_end(w);
}

static void write_components(jw_t *w)
{
    static const char schemas[] =
        "{\"Error\":{\"type\":\"object\",\"required\":[\"detail\",\"error\",\"meta\"],"
        "\"properties\":{\"detail\":{\"type\":\"string\"},"
        "\"error\":{\"type\":\"object\",\"required\":[\"code\",\"message\"],\"properties\":{"
        "\"code\":{\"type\":\"string\",\"enum\":[\"BAD_REQUEST\",\"UNAUTHORIZED\",\"FORBIDDEN\","
        "\"NOT_FOUND\",\"METHOD_NOT_ALLOWED\",\"CONFLICT\",\"PAYLOAD_TOO_LARGE\","
        "\"UNSUPPORTED_MEDIA_TYPE\",\"VALIDATION_ERROR\",\"HEADERS_TOO_LARGE\",\"RATE_LIMITED\","
        "\"QUOTA_EXCEEDED\",\"INTERNAL\",\"UPSTREAM_ERROR\",\"UNAVAILABLE\"]},"
        "\"message\":{\"type\":\"string\"},\"details\":{\"type\":\"object\"}}},"
        "\"meta\":{\"type\":\"object\",\"properties\":{\"request_id\":{\"type\":\"string\"},"
        "\"timestamp\":{\"type\":\"string\",\"format\":\"date-time\"}}}}}}";
    static const char responses[] =
        "{\"Error\":{\"description\":\"An error (429 answers carry Retry-After; 405 an Allow header)\","
        "\"content\":{\"application/json\":{\"schema\":{\"$ref\":\"#/components/schemas/Error\"}}}}}";
    static const char security[] =
        "{\"bearer\":{\"type\":\"http\",\"scheme\":\"bearer\",\"description\":\"an API key eg_...\"},"
        "\"apiKey\":{\"type\":\"apiKey\",\"in\":\"header\",\"name\":\"X-API-Key\"},"
        "\"session\":{\"type\":\"apiKey\",\"in\":\"cookie\",\"name\":\"engram_session\"}}";
    jw_key(w, "components");
    jw_obj_begin(w);
    jw_key(w, "schemas");
    jw_raw(w, schemas, sizeof schemas - 1);
    jw_key(w, "responses");
    jw_raw(w, responses, sizeof responses - 1);
    jw_key(w, "securitySchemes");
    jw_raw(w, security, sizeof security - 1);
    jw_obj_end(w);
}

void api_openapi_render(buf_t *b)
{
    size_t n;
    const api_route_t *routes = api_route_table(&n);
    jw_t w;
    jw_init(&w, b);
    jw_obj_begin(&w);
    jw_kstr(&w, "openapi", "3.1.0");
    jw_key(&w, "info");
    jw_obj_begin(&w);
    jw_kstr(&w, "title", "engram HTTP API");
    jw_kstr(&w, "version", ENGRAM_VERSION);
    jw_kstr(&w, "description", "Documents in, answers out. Errors have the shape of "
                               "components.schemas.Error; see docs/API.md.");
    jw_obj_end(&w);
    jw_key(&w, "servers");
    jw_arr_begin(&w);
    jw_obj_begin(&w);
    jw_kstr(&w, "url", "/");
    jw_obj_end(&w);
    jw_arr_end(&w);
    static const char any_credential[] = "[{\"bearer\":[]},{\"apiKey\":[]},{\"session\":[]}]";
    jw_key(&w, "security");
    jw_raw(&w, any_credential, sizeof any_credential - 1);
    jw_key(&w, "paths");
    jw_obj_begin(&w);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++) seen = !strcmp(routes[j].pattern, routes[i].pattern);
        if (seen) continue;
        char path[256];
        int np;
        openapi_path(routes[i].pattern, path, sizeof path, &np);
        jw_key(&w, path);
        jw_obj_begin(&w);
        for (size_t j = i; j < n; j++) {
            if (strcmp(routes[j].pattern, routes[i].pattern)) continue;
            int dup = 0;
            for (size_t k = i; k < j && !dup; k++)
                dup = !strcmp(routes[k].pattern, routes[j].pattern) &&
                      !strcmp(routes[k].method, routes[j].method);
            if (!dup) write_operation(&w, &routes[j], j, np);
        }
        jw_obj_end(&w);
    }
    jw_obj_end(&w);
    write_components(&w);
    jw_obj_end(&w);
}
