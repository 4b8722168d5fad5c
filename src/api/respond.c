/*
 * respond.c - JSON answers, the error body of API.md, pagination and the
 * validation helpers shared by the route files (see api_internal.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api_internal.h"
#include "util/common.h"
#include "util/log.h"
#include "util/timeutil.h"
#include "util/utf8.h"

void api_error_req(http_request_t *req, int status, const char *code, const char *field,
                   const char *message, const char *extra_headers)
{
    char ts[32];
    time_format_rfc3339(time_now_ms(), ts);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "detail", message);
    jw_key(&w, "error");
    jw_obj_begin(&w);
    jw_kstr(&w, "code", code);
    jw_kstr(&w, "message", message);
    jw_key(&w, "details");
    jw_obj_begin(&w);
    if (field) jw_kstr(&w, "field", field);
    jw_obj_end(&w);
    jw_obj_end(&w);
    jw_key(&w, "meta");
    jw_obj_begin(&w);
    jw_kstr(&w, "request_id", req->request_id);
    jw_kstr(&w, "timestamp", ts);
    jw_obj_end(&w);
    jw_obj_end(&w);
    char hdrs[512];
    snprintf(hdrs, sizeof hdrs, "%s%s", extra_headers ? extra_headers : "",
             status == 429 && !(extra_headers && strcasestr(extra_headers, "Retry-After:"))
                 ? "Retry-After: 1\r\n" : "");
    if (b.err) {
        static const char fallback[] = "{\"detail\":\"internal error\",\"error\":{\"code\":\"INTERNAL\",\"message\":\"internal error\",\"details\":{}},\"meta\":{}}";
        http_respond(req, status, "application/json", fallback, sizeof fallback - 1, hdrs);
    } else {
        http_respond(req, status, "application/json", b.data, b.len, hdrs);
    }
    buf_free(&b);
}

void api_error(api_call_t *c, int status, const char *code, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages may quote client input: keep them valid UTF-8. */
    size_t n = strlen(msg);
    if (!utf8_valid(msg, n)) {
        buf_t b = BUF_INIT;
        utf8_sanitize(msg, n, &b);
        snprintf(msg, sizeof msg, "%s", b.err ? "invalid input" : buf_cstr(&b));
        buf_free(&b);
    }
    api_error_req(c->req, status, code, field, msg, NULL);
}

void api_fail(api_call_t *c, int status, const char *what)
{
    switch (status) {
    case ENGRAM_ENOTFOUND:
        api_error(c, 404, "NOT_FOUND", NULL, "%s not found", what);
        return;
    case ENGRAM_EEXIST:
        api_error(c, 409, "CONFLICT", NULL, "%s already exists", what);
        return;
    case -EACCES:
        api_error(c, 403, "FORBIDDEN", NULL, "not allowed");
        return;
    case ENGRAM_EFULL:
    case -ENOSPC:
    case -EIO:
    case ENGRAM_EIO:
        /* A failed commit leaves the store as it was (LMDB reports a full
         * disk as a short write, EIO): say so instead of a bare 500. */
        log_error("%s: storage: %s", what, engram_strerror(status));
        api_error(c, 503, "UNAVAILABLE", NULL,
                  "storage could not commit (disk full or failing); nothing was changed");
        return;
    case ENGRAM_ENOMEM:
        api_error(c, 503, "UNAVAILABLE", NULL, "the server is out of memory; try again");
        return;
    default:
        log_error("%s: %s", what, engram_strerror(status));
        api_error(c, 500, "INTERNAL", NULL, "internal error (request %s)", c->req->request_id);
    }
}

void api_send_json(api_call_t *c, int status, buf_t *b, const char *extra_headers)
{
    if (b->err) {
        api_fail(c, b->err, "answer");
        return;
    }
    http_respond(c->req, status, "application/json", b->data ? b->data : "", b->len, extra_headers);
}

void api_send_dom(api_call_t *c, int status, const json_t *j)
{
    buf_t b = BUF_INIT;
    json_write(&b, j);
    api_send_json(c, status, &b, NULL);
    buf_free(&b);
}

void api_no_content(api_call_t *c) { http_respond(c->req, 204, NULL, NULL, 0, NULL); }

static void write_pagination(jw_t *w, size_t total, size_t limit, size_t offset)
{
    jw_key(w, "pagination");
    jw_obj_begin(w);
    jw_kint(w, "total", (int64_t)total);
    jw_kint(w, "limit", (int64_t)limit);
    jw_kint(w, "offset", (int64_t)offset);
    jw_kbool(w, "has_more", offset + limit < total);
    jw_obj_end(w);
}

void api_send_page(api_call_t *c, const json_t *page, size_t total, size_t limit, size_t offset)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_key(&w, "data");
    jw_json(&w, page);
    write_pagination(&w, total, limit, offset);
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}

void api_send_array_page(api_call_t *c, const json_t *all, size_t limit, size_t offset)
{
    size_t total = all ? all->len : 0;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_key(&w, "data");
    jw_arr_begin(&w);
    for (size_t i = offset; i < total && i < offset + limit; i++) jw_json(&w, all->items[i]);
    jw_arr_end(&w);
    write_pagination(&w, total, limit, offset);
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}

static int parse_long(const char *s, long *out)
{
    if (!*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int api_query_limit(api_call_t *c, size_t *limit, size_t *offset)
{
    char v[32];
    long n;
    *limit = 20;
    *offset = 0;
    int rc = http_query_param(c->req, "limit", v, sizeof v);
    if (rc != 0) {
        if (rc < 0 || parse_long(v, &n) || n < 1 || n > 100) {
            api_error(c, 422, "VALIDATION_ERROR", "limit", "limit must be an integer between 1 and 100");
            return -1;
        }
        *limit = (size_t)n;
    }
    rc = http_query_param(c->req, "offset", v, sizeof v);
    if (rc != 0) {
        if (rc < 0 || parse_long(v, &n) || n < 0 || n > 1000000000L) {
            api_error(c, 422, "VALIDATION_ERROR", "offset", "offset must be an integer of at least 0");
            return -1;
        }
        *offset = (size_t)n;
    }
    return 0;
}

int api_query_str(api_call_t *c, const char *name, char *out, size_t outsz)
{
    out[0] = '\0';
    int rc = http_query_param(c->req, name, out, outsz);
    if (rc < 0) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s is too long", name);
        return -1;
    }
    return 0;
}

int api_field_str(api_call_t *c, const char *name, int required, size_t min, size_t max,
                  const char **out)
{
    const json_t *v = json_get(c->body, name);
    *out = NULL;
    if (!v || v->type == JSON_NULL) {
        if (required) {
            api_error(c, 422, "VALIDATION_ERROR", name, "%s is required", name);
            return -1;
        }
        return 0;
    }
    if (v->type != JSON_STRING) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s must be a string", name);
        return -1;
    }
    if (strlen(v->str) != v->len) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s must not contain NUL characters", name);
        return -1;
    }
    if (v->len < min || v->len > max) {
        if (min > 1 || v->len > max)
            api_error(c, 422, "VALIDATION_ERROR", name, "%s must be %zu to %zu bytes long", name, min, max);
        else
            api_error(c, 422, "VALIDATION_ERROR", name, "%s must not be empty", name);
        return -1;
    }
    *out = v->str;
    return 0;
}

int api_field_int(api_call_t *c, const json_t *obj, const char *name, long lo, long hi, long *out,
                  int *present)
{
    const json_t *v = json_get(obj, name);
    if (present) *present = 0;
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_NUMBER || !v->is_int) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s must be an integer", name);
        return -1;
    }
    if (v->integer < lo || v->integer > hi) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s must be between %ld and %ld", name, lo, hi);
        return -1;
    }
    *out = (long)v->integer;
    if (present) *present = 1;
    return 0;
}

int api_field_bool(api_call_t *c, const json_t *obj, const char *name, int *out)
{
    const json_t *v = json_get(obj, name);
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_BOOL) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s must be true or false", name);
        return -1;
    }
    *out = v->boolean;
    return 0;
}

int api_field_obj(api_call_t *c, const json_t *obj, const char *name, const json_t **out)
{
    const json_t *v = json_get(obj, name);
    *out = NULL;
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_OBJECT) {
        api_error(c, 422, "VALIDATION_ERROR", name, "%s must be a JSON object", name);
        return -1;
    }
    *out = v;
    return 0;
}
