/*
 * router.c - the route table, credential checks before the body, and
 * dispatch to the handlers (see api.h).
 *
 * The table is the single list of routes: matching, 405's Allow header and
 * the access log's route label all come from it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/api_internal.h"
#include "ops/metrics.h"
#include "util/common.h"
#include "util/log.h"

static const api_route_t routes[] = {
    {"GET", "/health", h_health, AUTH_NONE, BODY_NONE, "health"},
    {"GET", "/ready", h_ready, AUTH_NONE, BODY_NONE, "ready"},
    {"GET", "/api/v1/health", h_health, AUTH_NONE, BODY_NONE, "health"},
    /* The web page (routes_web.c): open; its API calls carry the session cookie. */
    {"GET", "/", h_web_index, AUTH_NONE, BODY_NONE, "web.index"},
    {"GET", "/assets/{id}", h_web_asset, AUTH_NONE, BODY_NONE, "web.asset"},
    /* Operations (routes_ops.c): open metrics and API description, signed
     * file links (the signature is the credential), admin quota and backup. */
    {"GET", "/metrics", h_metrics, AUTH_NONE, BODY_NONE, "metrics"},
    {"GET", "/openapi.json", h_openapi, AUTH_NONE, BODY_NONE, "openapi"},
    {"GET", "/api/v1/files/{id}", h_file_get, AUTH_NONE, BODY_NONE, "files.get"},
    {"GET", "/api/v1/documents/{id}/url", h_doc_url, AUTH_READ, BODY_NONE, "documents.url"},
    {"PUT", "/api/v1/admin/workspaces/{id}/quota", h_admin_quota_put, AUTH_ADMIN, BODY_JSON, "admin.quota.put"},
    {"POST", "/api/v1/admin/backup", h_admin_backup, AUTH_ADMIN, BODY_NONE, "admin.backup"},
    {"POST", "/api/v1/auth/register", h_register, AUTH_NONE, BODY_JSON, "auth.register"},
    {"POST", "/api/v1/auth/login", h_login, AUTH_NONE, BODY_JSON, "auth.login"},
    {"POST", "/api/v1/auth/logout", h_logout, AUTH_ANY, BODY_NONE, "auth.logout"},
    {"GET", "/api/v1/auth/keys", h_keys_list, AUTH_READ, BODY_NONE, "auth.keys.list"},
    {"POST", "/api/v1/auth/keys", h_keys_create, AUTH_WRITE, BODY_JSON, "auth.keys.create"},
    {"DELETE", "/api/v1/auth/keys/{id}", h_keys_delete, AUTH_WRITE, BODY_NONE, "auth.keys.delete"},
    {"GET", "/api/v1/workspaces", h_ws_list, AUTH_READ, BODY_NONE, "workspaces.list"},
    {"POST", "/api/v1/workspaces", h_ws_create, AUTH_WRITE, BODY_JSON, "workspaces.create"},
    {"GET", "/api/v1/workspaces/{id}/members", h_ws_members, AUTH_READ, BODY_NONE, "workspaces.members.list"},
    {"POST", "/api/v1/workspaces/{id}/members", h_ws_member_add, AUTH_WRITE, BODY_JSON, "workspaces.members.add"},
    {"DELETE", "/api/v1/workspaces/{id}/members/{id}", h_ws_member_remove, AUTH_WRITE, BODY_NONE, "workspaces.members.remove"},
    {"POST", "/api/v1/admin/users", h_admin_users_create, AUTH_ADMIN, BODY_JSON, "admin.users.create"},
    {"GET", "/api/v1/admin/users", h_admin_users_list, AUTH_ADMIN, BODY_NONE, "admin.users.list"},
    {"PATCH", "/api/v1/admin/users/{id}", h_admin_users_patch, AUTH_ADMIN, BODY_JSON, "admin.users.patch"},
    {"GET", "/api/v1/admin/stats", h_admin_stats, AUTH_ADMIN, BODY_NONE, "admin.stats"},
    {"POST", "/api/v1/collections", h_coll_create, AUTH_WRITE, BODY_JSON, "collections.create"},
    {"GET", "/api/v1/collections", h_coll_list, AUTH_READ, BODY_NONE, "collections.list"},
    {"GET", "/api/v1/collections/{id}", h_coll_get, AUTH_READ, BODY_NONE, "collections.get"},
    {"PATCH", "/api/v1/collections/{id}", h_coll_patch, AUTH_WRITE, BODY_JSON, "collections.patch"},
    {"DELETE", "/api/v1/collections/{id}", h_coll_delete, AUTH_WRITE, BODY_NONE, "collections.delete"},
    {"POST", "/api/v1/documents", h_doc_create, AUTH_WRITE, BODY_UPLOAD, "documents.create"},
    {"GET", "/api/v1/documents", h_doc_list, AUTH_READ, BODY_NONE, "documents.list"},
    {"GET", "/api/v1/documents/{id}", h_doc_get, AUTH_READ, BODY_NONE, "documents.get"},
    {"PATCH", "/api/v1/documents/{id}", h_doc_patch, AUTH_WRITE, BODY_JSON, "documents.patch"},
    {"DELETE", "/api/v1/documents/{id}", h_doc_delete, AUTH_WRITE, BODY_NONE, "documents.delete"},
    {"GET", "/api/v1/documents/{id}/status", h_doc_status, AUTH_READ, BODY_NONE, "documents.status"},
    {"GET", "/api/v1/documents/{id}/chunks", h_doc_chunks, AUTH_READ, BODY_NONE, "documents.chunks"},
    {"GET", "/api/v1/collections/{id}/graph/entities", h_graph_entities, AUTH_READ, BODY_NONE, "graph.entities.list"},
    {"GET", "/api/v1/collections/{id}/graph/entities/{id}", h_graph_entity, AUTH_READ, BODY_NONE, "graph.entities.get"},
    {"GET", "/api/v1/collections/{id}/graph/export", h_graph_export, AUTH_READ, BODY_NONE, "graph.export"},
    {"POST", "/api/v1/retrievals", h_retrieve, AUTH_READ, BODY_JSON, "retrievals"},
    {"POST", "/api/v1/retrievals/retrieve", h_retrieve, AUTH_READ, BODY_JSON, "retrievals"},
    {"POST", "/api/v1/chat", h_chat, AUTH_READ, BODY_JSON, "chat"},
    {"GET", "/api/v1/chat/sessions", h_chat_sessions, AUTH_READ, BODY_NONE, "chat.sessions.list"},
    {"GET", "/api/v1/chat/sessions/{id}/messages", h_chat_messages, AUTH_READ, BODY_NONE, "chat.sessions.messages"},
    {"DELETE", "/api/v1/chat/sessions/{id}", h_chat_session_delete, AUTH_WRITE, BODY_NONE, "chat.sessions.delete"},
    {"POST", "/api/v1/memories", h_mem_create, AUTH_WRITE, BODY_JSON, "memories.create"},
    {"GET", "/api/v1/memories", h_mem_list, AUTH_READ, BODY_NONE, "memories.list"},
    {"POST", "/api/v1/memories/search", h_mem_search, AUTH_READ, BODY_JSON, "memories.search"},
    {"GET", "/api/v1/memories/{id}", h_mem_get, AUTH_READ, BODY_NONE, "memories.get"},
    {"PATCH", "/api/v1/memories/{id}", h_mem_patch, AUTH_WRITE, BODY_JSON, "memories.patch"},
    {"DELETE", "/api/v1/memories/{id}", h_mem_delete, AUTH_WRITE, BODY_NONE, "memories.delete"},
};

/* Matches path against pattern; {id} segments are captured into params. */
static int match(const char *pattern, const char *path, char params[][64])
{
    int np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (p[0] == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            size_t n = se ? (size_t)(se - s) : strlen(s);
            if (n == 0 || n >= 64 || np >= API_MAX_PARAMS) return 0;
            memcpy(params[np], s, n);
            params[np][n] = '\0';
            np++;
            p = pe + 1;
            s += n;
            continue;
        }
        if (*p != *s) return 0;
        p++;
        s++;
    }
    if (*s == '/' && s[1] == '\0') s++; /* a trailing slash is the same route */
    return *p == '\0' && *s == '\0';
}

static const api_route_t *find_route(const char *method, const char *path, char params[][64],
                                     char *allow, size_t allowsz, int *path_known)
{
    *path_known = 0;
    allow[0] = '\0';
    const api_route_t *found = NULL;
    char tmp[API_MAX_PARAMS][64];
    for (size_t i = 0; i < EG_ARRAY_LEN(routes); i++) {
        if (!match(routes[i].pattern, path, tmp)) continue;
        *path_known = 1;
        size_t al = strlen(allow);
        if (!strstr(allow, routes[i].method))
            snprintf(allow + al, allowsz - al, "%s%s", al ? ", " : "", routes[i].method);
        int same = !strcmp(routes[i].method, method) ||
                   (!strcmp(method, "HEAD") && !strcmp(routes[i].method, "GET"));
        if (same && !found) {
            found = &routes[i];
            memcpy(params, tmp, sizeof tmp);
        }
    }
    return found;
}

/* The token of "Cookie: a=b; engram_session=TOKEN". */
static int cookie_token(const char *cookie, char *out, size_t outsz)
{
    const char *p = cookie;
    while (p && *p) {
        while (*p == ' ' || *p == ';') p++;
        if (!strncmp(p, "engram_session=", 15)) {
            p += 15;
            size_t n = strcspn(p, ";");
            if (n >= outsz) return 0;
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

static int check_credentials(api_t *api, http_request_t *req, api_reqdata_t *d)
{
    const char *authz = http_header(req, "Authorization");
    const char *xkey = http_header(req, "X-API-Key");
    const char *key = NULL;
    if (authz && !strncasecmp(authz, "Bearer ", 7)) key = authz + 7;
    else if (xkey) key = xkey;
    int rc;
    if (key) {
        while (*key == ' ') key++;
        rc = auth_check_key(api->st, key, &d->who);
    } else {
        char tok[80];
        const char *cookie = http_header(req, "Cookie");
        if (!cookie || !cookie_token(cookie, tok, sizeof tok)) {
            api_error_req(req, 401, "UNAUTHORIZED", NULL,
                          "an API key is required (Authorization: Bearer eg_... or X-API-Key)", NULL);
            return -1;
        }
        rc = auth_check_session(api->st, tok, &d->who);
        d->via_cookie = 1;
    }
    if (rc == 0) {
        d->has_who = 1;
        return 0;
    }
    if (rc == ENGRAM_ENOTFOUND || rc == -EACCES) {
        api_error_req(req, 401, "UNAUTHORIZED", NULL,
                      rc == -EACCES ? "this credential is disabled" : "invalid or revoked credential",
                      NULL);
    } else {
        log_error("credential check failed: %s", engram_strerror(rc));
        api_error_req(req, 503, "UNAVAILABLE", NULL, "storage is not available", NULL);
    }
    return -1;
}

int api_on_headers(http_request_t *req, void *ud)
{
    api_t *api = ud;
    api_reqdata_t *d = (api_reqdata_t *)req->app_data;
    _Static_assert(sizeof(api_reqdata_t) <= sizeof req->app_data, "app_data too small");
    memset(d, 0, sizeof *d);
    char allow[128];
    int known;
    const api_route_t *r = find_route(req->method, req->path, d->params, allow, sizeof allow, &known);
    if (!r) {
        if (known) {
            snprintf(req->route_label, sizeof req->route_label, "method_not_allowed");
            char hdr[160];
            snprintf(hdr, sizeof hdr, "Allow: %s\r\n", allow);
            char msg[256];
            snprintf(msg, sizeof msg, "method %.32s is not allowed here (allowed: %s)", req->method, allow);
            api_error_req(req, 405, "METHOD_NOT_ALLOWED", NULL, msg, hdr);
        } else {
            snprintf(req->route_label, sizeof req->route_label, "not_found");
            api_error_req(req, 404, "NOT_FOUND", NULL, "no such route", NULL);
        }
        return -1;
    }
    d->route = r;
    req->route = (void *)r;
    snprintf(req->route_label, sizeof req->route_label, "%s", r->label);
    /* Writes wait on the single writer's commit, chat on the LLM: they may
     * not hold every worker (http.h, req->waits). */
    req->waits = r->auth == AUTH_WRITE || r->auth == AUTH_ADMIN || r->fn == h_chat;
    req->max_body = r->body == BODY_UPLOAD ? (size_t)api->cfg->max_upload_mb << 20
                    : r->body == BODY_JSON ? API_JSON_LIMIT : API_JSON_LIMIT;
    if (r->body == BODY_UPLOAD) req->max_body += 64 * 1024; /* multipart framing */
    if (r->auth == AUTH_NONE) return api_ops_admit(api, req, d); /* per-address limits */
    if (check_credentials(api, req, d)) return -1;
    const auth_ctx_t *w = &d->who;
    unsigned need = r->auth == AUTH_READ ? SCOPE_READ : r->auth == AUTH_WRITE ? SCOPE_WRITE
                    : r->auth == AUTH_ADMIN ? SCOPE_ADMIN : 0;
    if (need && !(w->scopes & need)) {
        const char *name = need == SCOPE_READ ? "read" : need == SCOPE_WRITE ? "write" : "admin";
        char msg[96];
        snprintf(msg, sizeof msg, "this key lacks the %s scope", name);
        api_error_req(req, 403, "FORBIDDEN", NULL, msg, NULL);
        return -1;
    }
    if (r->auth == AUTH_WRITE && w->role == ROLE_READER) {
        api_error_req(req, 403, "FORBIDDEN", NULL, "readers of this workspace cannot write", NULL);
        return -1;
    }
    return api_ops_admit(api, req, d); /* rate limits and quotas (routes_ops.c) */
}

const api_route_t *api_route_table(size_t *n)
{
    *n = EG_ARRAY_LEN(routes);
    return routes;
}

static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

static void tok_destroy(void *p) { tokenizer_free(p); }
static void tok_key_init(void) { pthread_key_create(&tok_key, tok_destroy); }

static tokenizer_t *thread_tokenizer(void)
{
    pthread_once(&tok_once, tok_key_init);
    tokenizer_t *t = pthread_getspecific(tok_key);
    if (!t && tokenizer_new(&t) == 0) pthread_setspecific(tok_key, t);
    return t;
}

static int content_type_is(const char *ct, const char *want)
{
    if (!ct) return 0;
    while (*ct == ' ') ct++;
    size_t n = strlen(want);
    return !strncasecmp(ct, want, n) && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

void api_handle(http_request_t *req, void *ud)
{
    api_t *api = ud;
    api_reqdata_t *d = (api_reqdata_t *)req->app_data;
    api_call_t c = {.api = api, .req = req, .route = d->route};
    if (!c.route) {
        api_error_req(req, 500, "INTERNAL", NULL, "internal error", NULL);
        return;
    }
    if (d->has_who) c.who = &d->who;
    for (int i = 0; i < API_MAX_PARAMS; i++) c.params[i] = d->params[i];
    c.tok = thread_tokenizer();
    if (!c.tok) {
        api_error(&c, 503, "UNAVAILABLE", NULL, "out of memory");
        return;
    }
    if (c.route->body == BODY_JSON) {
        const char *ct = http_header(req, "Content-Type");
        if (req->body_len == 0) {
            api_error(&c, 400, "BAD_REQUEST", NULL, "a JSON body is required");
            return;
        }
        /* curl -d sends JSON labelled as a form: accept that one mislabel. */
        if (ct && !content_type_is(ct, "application/json") && !strstr(ct, "+json") &&
            !content_type_is(ct, "application/x-www-form-urlencoded")) {
            api_error(&c, 415, "UNSUPPORTED_MEDIA_TYPE", NULL,
                      "send the body as application/json, not %.60s", ct);
            return;
        }
        json_error_t je;
        int rc = json_parse(req->body, req->body_len, &c.body, &je);
        if (rc == ENGRAM_ENOMEM) {
            api_error(&c, 503, "UNAVAILABLE", NULL, "out of memory");
            return;
        }
        if (rc) {
            api_error(&c, 400, "BAD_REQUEST", NULL, "malformed JSON at byte %zu: %s", je.offset,
                      je.message);
            return;
        }
        if (c.body->type != JSON_OBJECT) {
            api_error(&c, 422, "VALIDATION_ERROR", NULL, "the JSON body must be an object");
            json_free(c.body);
            return;
        }
    }
    c.route->fn(&c);
    if (c.who && c.who->key_id && req->status < 400) auth_key_touch(api->st, c.who);
    json_free(c.body);
}

void api_on_error(http_request_t *req, int status, const char *message, void *ud)
{
    (void)ud;
    const char *code = status == 400 ? "BAD_REQUEST" : status == 408 ? "BAD_REQUEST"
                       : status == 413 ? "PAYLOAD_TOO_LARGE" : status == 431 ? "HEADERS_TOO_LARGE"
                       : status == 503 ? "UNAVAILABLE" : status == 501 ? "BAD_REQUEST"
                       : status == 505 ? "BAD_REQUEST" : "BAD_REQUEST";
    api_error_req(req, status, code, NULL, message, NULL);
}

void api_on_done(http_request_t *req, double duration_ms, void *ud)
{
    (void)ud;
    metrics_observe_request(req->route_label, req->status, duration_ms / 1000.0);
}
