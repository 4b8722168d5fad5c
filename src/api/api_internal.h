/*
 * api_internal.h - what the route files share: the call context, answers
 * and validation helpers.
 *
 * Validation helpers answer the request themselves (422 with details.field)
 * and return -1 when a value is bad; 0 otherwise. A handler that gets -1
 * just returns.
 */
#ifndef ENGRAM_API_INTERNAL_H
#define ENGRAM_API_INTERNAL_H

#include <stddef.h>

#include "api/api.h"
#include "index/tokenizer.h"
#include "util/json.h"

#define API_MAX_PARAMS 2
#define API_JSON_LIMIT (1u << 20)

typedef struct api_call api_call_t;
typedef void (*api_handler_fn)(api_call_t *c);

enum { AUTH_NONE = 0, AUTH_ANY, AUTH_READ, AUTH_WRITE, AUTH_ADMIN };
enum { BODY_NONE = 0, BODY_JSON, BODY_UPLOAD };

typedef struct api_route {
    const char *method;
    const char *pattern;   /* "/api/v1/collections/{id}" */
    api_handler_fn fn;
    int auth;              /* AUTH_* */
    int body;              /* BODY_* */
    const char *label;
} api_route_t;

/* Kept in http_request_t.app_data. */
typedef struct api_reqdata {
    const api_route_t *route;
    auth_ctx_t who;
    int has_who;
    int via_cookie;
    char params[API_MAX_PARAMS][64];
} api_reqdata_t;

struct api_call {
    api_t *api;
    http_request_t *req;
    const api_route_t *route;
    auth_ctx_t *who;         /* NULL on open routes */
    const char *params[API_MAX_PARAMS];
    json_t *body;            /* parsed JSON object for BODY_JSON routes */
    tokenizer_t *tok;        /* this thread's tokenizer */
};

/* Answers. */
void api_error(api_call_t *c, int status, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void api_error_req(http_request_t *req, int status, const char *code, const char *field,
                   const char *message, const char *extra_headers);
/* Maps a service status to an answer (404 for ENOTFOUND, 409 EEXIST, ...). */
void api_fail(api_call_t *c, int status, const char *what);
/* JSON answer from a finished buffer (takes care of the error). */
void api_send_json(api_call_t *c, int status, buf_t *b, const char *extra_headers);
void api_send_dom(api_call_t *c, int status, const json_t *j);
void api_no_content(api_call_t *c);
/* {"data": items[offset..], "pagination": {...}} where items is the page. */
void api_send_page(api_call_t *c, const json_t *page, size_t total, size_t limit, size_t offset);
/* Pages an in-memory array (all items). */
void api_send_array_page(api_call_t *c, const json_t *all, size_t limit, size_t offset);

/* Query parameters. */
int api_query_limit(api_call_t *c, size_t *limit, size_t *offset);
/* Optional string query parameter; *out "" if absent. */
int api_query_str(api_call_t *c, const char *name, char *out, size_t outsz);

/* Body fields. required: missing -> 422. Strings are checked for length. */
int api_field_str(api_call_t *c, const char *name, int required, size_t min, size_t max,
                  const char **out);
int api_field_int(api_call_t *c, const json_t *obj, const char *name, long lo, long hi, long *out,
                  int *present);
int api_field_bool(api_call_t *c, const json_t *obj, const char *name, int *out);
/* Optional object field (metadata). */
int api_field_obj(api_call_t *c, const json_t *obj, const char *name, const json_t **out);

/* Route handlers. */
void h_health(api_call_t *c);
void h_ready(api_call_t *c);
void h_register(api_call_t *c);
void h_login(api_call_t *c);
void h_logout(api_call_t *c);
void h_keys_list(api_call_t *c);
void h_keys_create(api_call_t *c);
void h_keys_delete(api_call_t *c);
void h_ws_list(api_call_t *c);
void h_ws_create(api_call_t *c);
void h_ws_members(api_call_t *c);
void h_ws_member_add(api_call_t *c);
void h_ws_member_remove(api_call_t *c);
void h_admin_users_create(api_call_t *c);
void h_admin_users_list(api_call_t *c);
void h_admin_users_patch(api_call_t *c);
void h_admin_stats(api_call_t *c);
void h_coll_create(api_call_t *c);
void h_coll_list(api_call_t *c);
void h_coll_get(api_call_t *c);
void h_coll_patch(api_call_t *c);
void h_coll_delete(api_call_t *c);
void h_doc_create(api_call_t *c);
void h_doc_list(api_call_t *c);
void h_doc_get(api_call_t *c);
void h_doc_patch(api_call_t *c);
void h_doc_delete(api_call_t *c);
void h_doc_status(api_call_t *c);
void h_doc_chunks(api_call_t *c);
void h_retrieve(api_call_t *c);
/* routes_graph.c */
void h_graph_entities(api_call_t *c);
void h_graph_entity(api_call_t *c);
void h_graph_export(api_call_t *c);
/* routes_chat.c */
void h_chat(api_call_t *c);
void h_chat_sessions(api_call_t *c);
void h_chat_messages(api_call_t *c);
void h_chat_session_delete(api_call_t *c);
void h_mem_create(api_call_t *c);
void h_mem_list(api_call_t *c);
void h_mem_get(api_call_t *c);
void h_mem_patch(api_call_t *c);
void h_mem_delete(api_call_t *c);
void h_mem_search(api_call_t *c);

/* Operations (routes_ops.c, openapi.c). */
void h_metrics(api_call_t *c);
void h_openapi(api_call_t *c);
void h_admin_quota_put(api_call_t *c);
void h_admin_backup(api_call_t *c);
void h_doc_url(api_call_t *c);
void h_file_get(api_call_t *c);
/* The web page (routes_web.c). */
void h_web_index(api_call_t *c);
void h_web_asset(api_call_t *c);
/* The route table (router.c), for the OpenAPI document. */
const api_route_t *api_route_table(size_t *n);
void api_openapi_render(buf_t *b);
/* Rate limits and quotas for a routed request, on the loop thread before
 * the body: 0, or -1 after answering 429. */
int api_ops_admit(api_t *api, http_request_t *req, const api_reqdata_t *d);
/* "totals" and "cache" members for /admin/stats. */
int api_ops_write_stats(api_t *api, jw_t *w);
/* retrieve_search through the retrieval cache (same contract; see
 * routes_ops.c): identical queries of a workspace share one computation
 * until a write to the collections involved. */
struct retrieve_env;
struct retrieve_req;
struct retrieve_hit;
int api_search_cached(api_call_t *c, const struct retrieve_env *env, const struct retrieve_req *r,
                      struct retrieve_hit **hits, size_t *n, char *err, size_t errsz);

#endif
