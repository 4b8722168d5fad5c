/*
 * routes_auth.c - health, readiness, auth and keys, workspaces and members, admin.
 */
#include <errno.h>
#include <stdio.h>

#include "api/api_internal.h"
#include "util/common.h"
#include "util/timeutil.h"

void h_health(api_call_t *c)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "status", "ok");
    jw_kstr(&w, "version", ENGRAM_VERSION);
    jw_kint(&w, "uptime_s", (time_now_ms() - c->api->started_ms) / 1000);
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}

void h_ready(api_call_t *c)
{
    if (!c->api->ready) {
        api_error(c, 503, "UNAVAILABLE", NULL, "starting up");
        return;
    }
    static const char body[] = "{\"status\":\"ready\"}";
    http_respond(c->req, 200, "application/json", body, sizeof body - 1, NULL);
}

static void send_new_user(api_call_t *c, const char *user_uuid, const char *email, const char *key,
                          int is_admin)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "user_id", user_uuid);
    jw_kstr(&w, "email", email);
    jw_kstr(&w, "api_key", key);
    jw_kbool(&w, "admin", is_admin);
    jw_obj_end(&w);
    api_send_json(c, 201, &b, NULL);
    buf_free(&b);
}

static int read_credentials(api_call_t *c, const char **email, const char **password, int strict)
{
    if (api_field_str(c, "email", 1, 1, 254, email)) return -1;
    if (api_field_str(c, "password", 1, strict ? 8 : 1, 1024, password)) return -1;
    if (strict) {
        const char *at = strchr(*email, '@');
        if (!at || at == *email || !strchr(at, '.') || strchr(*email, ' ')) {
            api_error(c, 422, "VALIDATION_ERROR", "email", "email is not a valid address");
            return -1;
        }
    }
    return 0;
}

static void register_user(api_call_t *c, int mode, int make_admin)
{
    const char *email, *password;
    if (read_credentials(c, &email, &password, 1)) return;
    char user_uuid[37], key[AUTH_KEY_LEN + 1];
    int is_admin = 0;
    int rc = auth_register(c->api->st, email, password, make_admin, mode, user_uuid, key, &is_admin);
    if (rc == -EPERM) {
        api_error(c, 403, "FORBIDDEN", NULL,
                  "registration is closed on this server; ask an administrator for an account");
        return;
    }
    if (rc == ENGRAM_EEXIST) {
        api_error(c, 409, "CONFLICT", "email", "a user with this email already exists");
        return;
    }
    if (rc == ENGRAM_EINVAL) {
        api_error(c, 422, "VALIDATION_ERROR", "email", "email is not a valid address");
        return;
    }
    if (rc) { api_fail(c, rc, "user"); return; }
    char lower[256];
    size_t i = 0;
    for (; email[i] && i + 1 < sizeof lower; i++)
        lower[i] = (email[i] >= 'A' && email[i] <= 'Z') ? (char)(email[i] + 32) : email[i];
    lower[i] = '\0';
    send_new_user(c, user_uuid, lower, key, is_admin);
}

void h_register(api_call_t *c)
{
    register_user(c, c->api->cfg->open_registration ? AUTH_REG_OPEN : AUTH_REG_CLOSED, 0);
}

void h_admin_users_create(api_call_t *c)
{
    int admin = 0;
    if (api_field_bool(c, c->body, "admin", &admin)) return;
    register_user(c, AUTH_REG_ADMIN, admin);
}

void h_login(api_call_t *c)
{
    const char *email, *password;
    if (read_credentials(c, &email, &password, 0)) return;
    auth_ctx_t who;
    char token[65];
    int rc = auth_login(c->api->st, email, password, &who, token);
    if (rc == ENGRAM_ENOTFOUND || rc == -EACCES) {
        api_error(c, 401, "UNAUTHORIZED", NULL, "wrong email or password");
        return;
    }
    if (rc) { api_fail(c, rc, "login"); return; }
    char hdr[256];
    snprintf(hdr, sizeof hdr,
             "Set-Cookie: engram_session=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d\r\n",
             token, AUTH_SESSION_TTL_S);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "user_id", who.user_uuid);
    jw_kstr(&w, "email", who.email);
    jw_obj_end(&w);
    api_send_json(c, 200, &b, hdr);
    buf_free(&b);
}

void h_logout(api_call_t *c)
{
    const char *cookie = http_header(c->req, "Cookie");
    if (cookie) {
        const char *p = strstr(cookie, "engram_session=");
        if (p) {
            char tok[65];
            p += 15;
            size_t n = strcspn(p, "; ");
            if (n == 64) {
                memcpy(tok, p, 64);
                tok[64] = '\0';
                int rc = auth_logout(c->api->st, tok);
                if (rc) { api_fail(c, rc, "session"); return; }
            }
        }
    }
    http_respond(c->req, 204, NULL, NULL, 0,
                 "Set-Cookie: engram_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n");
}

/* ---- keys ---------------------------------------------------------------- */

static void write_key_public(jw_t *w, const json_t *k, const char *secret)
{
    jw_obj_begin(w);
    jw_kstr(w, "id", json_get_str(k, "id"));
    jw_kstr(w, "name", json_get_str(k, "name"));
    jw_kstr(w, "prefix", json_get_str(k, "prefix"));
    jw_key(w, "scopes");
    jw_json(w, json_get(k, "scopes"));
    jw_kstr(w, "workspace_id", json_get_str(k, "workspace_id"));
    jw_kstr(w, "created_at", json_get_str(k, "created_at"));
    jw_key(w, "last_used_at");
    jw_json(w, json_get(k, "last_used_at"));
    if (secret) jw_kstr(w, "api_key", secret);
    jw_obj_end(w);
}

void h_keys_list(api_call_t *c)
{
    size_t limit, offset;
    if (api_query_limit(c, &limit, &offset)) return;
    json_t *all = NULL;
    int rc = auth_key_list(c->api->st, c->who, &all);
    if (rc) { api_fail(c, rc, "keys"); return; }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_arr_begin(&w);
    for (size_t i = offset; i < all->len && i < offset + limit; i++)
        write_key_public(&w, all->items[i], NULL);
    jw_arr_end(&w);
    json_t *page = NULL;
    rc = b.err ? b.err : json_parse(b.data, b.len, &page, NULL);
    if (!rc) api_send_page(c, page, all->len, limit, offset);
    else api_fail(c, rc, "keys");
    json_free(page);
    json_free(all);
    buf_free(&b);
}

void h_keys_create(api_call_t *c)
{
    const char *name, *ws_id;
    if (api_field_str(c, "name", 0, 1, 200, &name)) return;
    if (api_field_str(c, "workspace_id", 0, 1, 64, &ws_id)) return;
    unsigned scopes = SCOPE_READ;
    const json_t *s = json_get(c->body, "scopes");
    if (s && s->type != JSON_NULL) {
        if (s->type != JSON_ARRAY || s->len == 0) {
            api_error(c, 422, "VALIDATION_ERROR", "scopes",
                      "scopes must be a non-empty array of \"read\", \"write\", \"admin\"");
            return;
        }
        scopes = 0;
        for (size_t i = 0; i < s->len; i++) {
            const json_t *e = s->items[i];
            if (e->type == JSON_STRING && !strcmp(e->str, "read")) scopes |= SCOPE_READ;
            else if (e->type == JSON_STRING && !strcmp(e->str, "write")) scopes |= SCOPE_WRITE;
            else if (e->type == JSON_STRING && !strcmp(e->str, "admin")) scopes |= SCOPE_ADMIN;
            else {
                api_error(c, 422, "VALIDATION_ERROR", "scopes",
                          "unknown scope; use \"read\", \"write\" or \"admin\"");
                return;
            }
        }
    }
    if ((scopes & SCOPE_ADMIN) && !c->who->is_admin) {
        api_error(c, 403, "FORBIDDEN", "scopes", "only administrators can create admin keys");
        return;
    }
    char key[AUTH_KEY_LEN + 1];
    json_t *rec = NULL;
    int rc = auth_key_create(c->api->st, c->who, name ? name : "key", scopes, ws_id, key, &rec);
    if (rc == ENGRAM_ENOTFOUND) {
        api_error(c, 404, "NOT_FOUND", "workspace_id", "workspace not found");
        return;
    }
    if (rc) { api_fail(c, rc, "key"); return; }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    write_key_public(&w, rec, key);
    api_send_json(c, 201, &b, NULL);
    buf_free(&b);
    json_free(rec);
}

void h_keys_delete(api_call_t *c)
{
    int rc = auth_key_delete(c->api->st, c->who, c->params[0]);
    if (rc) { api_fail(c, rc, "key"); return; }
    api_no_content(c);
}

/* ---- workspaces ---------------------------------------------------------- */

void h_ws_list(api_call_t *c)
{
    size_t limit, offset;
    if (api_query_limit(c, &limit, &offset)) return;
    json_t *all = NULL;
    int rc = auth_ws_list(c->api->st, c->who, &all);
    if (rc) { api_fail(c, rc, "workspaces"); return; }
    api_send_array_page(c, all, limit, offset);
    json_free(all);
}

void h_ws_create(api_call_t *c)
{
    const char *name;
    if (api_field_str(c, "name", 1, 1, 200, &name)) return;
    json_t *rec = NULL;
    int rc = auth_ws_create(c->api->st, c->who, name, &rec);
    if (rc) { api_fail(c, rc, "workspace"); return; }
    api_send_dom(c, 201, rec);
    json_free(rec);
}

void h_ws_members(api_call_t *c)
{
    size_t limit, offset;
    if (api_query_limit(c, &limit, &offset)) return;
    json_t *all = NULL;
    int rc = auth_ws_members(c->api->st, c->who, c->params[0], &all);
    if (rc) { api_fail(c, rc, "workspace"); return; }
    api_send_array_page(c, all, limit, offset);
    json_free(all);
}

void h_ws_member_add(api_call_t *c)
{
    const char *email, *role_s;
    if (api_field_str(c, "email", 1, 1, 254, &email)) return;
    if (api_field_str(c, "role", 0, 1, 16, &role_s)) return;
    int role = role_s ? auth_role_parse(role_s) : ROLE_READER;
    if (role == ROLE_NONE) {
        api_error(c, 422, "VALIDATION_ERROR", "role", "role must be reader, editor or admin");
        return;
    }
    json_t *rec = NULL;
    int rc = auth_ws_member_add(c->api->st, c->who, c->params[0], email, role, &rec);
    if (rc == -ENOENT) {
        api_error(c, 404, "NOT_FOUND", "email", "no user with that email");
        return;
    }
    if (rc == -EACCES) {
        api_error(c, 403, "FORBIDDEN", NULL, "only an admin of the workspace can add members");
        return;
    }
    if (rc == ENGRAM_EEXIST) {
        api_error(c, 409, "CONFLICT", "email", "that user is already a member");
        return;
    }
    if (rc) { api_fail(c, rc, "workspace"); return; }
    api_send_dom(c, 201, rec);
    json_free(rec);
}

void h_ws_member_remove(api_call_t *c)
{
    int rc = auth_ws_member_remove(c->api->st, c->who, c->params[0], c->params[1]);
    if (rc == -EACCES) {
        api_error(c, 403, "FORBIDDEN", NULL, "only an admin of the workspace can remove members");
        return;
    }
    if (rc == -EBUSY) {
        api_error(c, 409, "CONFLICT", NULL,
                  "this is the workspace's last admin: make another member admin first");
        return;
    }
    if (rc) { api_fail(c, rc, "member"); return; }
    api_no_content(c);
}

/* ---- admin --------------------------------------------------------------- */

void h_admin_users_list(api_call_t *c)
{
    size_t limit, offset;
    if (api_query_limit(c, &limit, &offset)) return;
    json_t *all = NULL;
    int rc = auth_user_list(c->api->st, &all);
    if (rc) { api_fail(c, rc, "users"); return; }
    api_send_array_page(c, all, limit, offset);
    json_free(all);
}

void h_admin_users_patch(api_call_t *c)
{
    int disabled = -1;
    if (api_field_bool(c, c->body, "disabled", &disabled)) return;
    if (disabled < 0) {
        api_error(c, 422, "VALIDATION_ERROR", "disabled", "disabled (true or false) is required");
        return;
    }
    if (disabled && !strcmp(c->params[0], c->who->user_uuid)) {
        api_error(c, 422, "VALIDATION_ERROR", "disabled", "you cannot disable yourself");
        return;
    }
    json_t *rec = NULL;
    int rc = auth_user_set_disabled(c->api->st, c->params[0], disabled, &rec);
    if (rc) { api_fail(c, rc, "user"); return; }
    api_send_dom(c, 200, rec);
    json_free(rec);
}

void h_admin_stats(api_call_t *c)
{
    store_info_t info;
    int rc = store_get_info(c->api->st, &info);
    if (rc) { api_fail(c, rc, "stats"); return; }
    uint64_t users = 0;
    auth_user_count(c->api->st, &users);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kint(&w, "users", (int64_t)users);
    jw_key(&w, "storage");
    jw_obj_begin(&w);
    jw_kint(&w, "map_bytes", (int64_t)info.map_bytes);
    jw_kint(&w, "used_bytes", (int64_t)info.used_bytes);
    jw_kint(&w, "file_bytes", (int64_t)info.file_bytes);
    jw_kdouble(&w, "map_use", info.map_bytes ? (double)info.used_bytes / (double)info.map_bytes : 0);
    jw_kint(&w, "commits", (int64_t)info.commits);
    jw_kint(&w, "map_grows", (int64_t)info.map_grows);
    jw_obj_end(&w);
    jw_kint(&w, "ingest_queue_depth", (int64_t)ingest_queue_depth(c->api->ingest));
    jw_kint(&w, "connections", http_server_connections(c->api->server));
    jw_kint(&w, "uptime_s", (time_now_ms() - c->api->started_ms) / 1000);
    rc = api_ops_write_stats(c->api, &w); /* totals and cache (routes_ops.c) */
    if (rc) { buf_free(&b); api_fail(c, rc, "stats"); return; }
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}
