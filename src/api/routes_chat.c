/*
 * routes_chat.c - POST /chat (server-sent events or one JSON answer), chat
 * sessions and messages, and memories (API.md "Chat" and "Memories").
 *
 * Chat. The body is validated whole first (422 before anything runs);
 * chat_prepare then retrieves and packs the prompt, still before any
 * answer, so a missing session or collection is a plain 404 and a failing
 * embedding service a 502. The SSE stream begins lazily - at the first
 * delta, or when the keep-alive interval passes with nothing to send - so
 * an LLM service that fails before saying anything is a 502
 * UPSTREAM_ERROR, and one that fails later ends the stream with an
 * "error" frame. Frames are "event: <type>\ndata: <json>\n\n", each one
 * write (flushed). The handler's tick checks http_client_gone: a client
 * that left cancels the upstream call, and nothing is stored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "rag/chat.h"
#include "rag/memory.h"
#include "rag/sessions.h"
#include "util/common.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---- small validators for nested objects --------------------------------- */

static int nested_str(api_call_t *c, const json_t *obj, const char *name, const char *label,
                      size_t max, const char **out)
{
    const json_t *v = json_get(obj, name);
    *out = NULL;
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_STRING || strlen(v->str) != v->len || v->len == 0 || v->len > max) {
        api_error(c, 422, "VALIDATION_ERROR", label, "%s must be a non-empty string of at most %zu bytes",
                  label, max);
        return -1;
    }
    *out = v->str;
    return 0;
}

static int nested_num(api_call_t *c, const json_t *obj, const char *name, const char *label,
                      double lo, double hi, double *out, int *present)
{
    const json_t *v = json_get(obj, name);
    if (present) *present = 0;
    if (!v || v->type == JSON_NULL) return 0;
    if (v->type != JSON_NUMBER || !(v->number >= lo && v->number <= hi)) {
        api_error(c, 422, "VALIDATION_ERROR", label, "%s must be a number between %g and %g", label, lo, hi);
        return -1;
    }
    *out = v->number;
    if (present) *present = 1;
    return 0;
}

/* Optional object member: not an object -> 422. */
static int nested_obj(api_call_t *c, const char *name, const json_t **out)
{
    return api_field_obj(c, c->body, name, out);
}

/* limit/offset for the bare-array lists: limit 1..max (default def). */
static int list_params(api_call_t *c, size_t def, size_t max, size_t *limit, size_t *offset)
{
    char v[32];
    *limit = def;
    *offset = 0;
    int rc = http_query_param(c->req, "limit", v, sizeof v);
    if (rc) {
        char *end;
        long n = rc > 0 ? strtol(v, &end, 10) : -1;
        if (rc < 0 || !v[0] || *end || n < 1 || (size_t)n > max) {
            api_error(c, 422, "VALIDATION_ERROR", "limit", "limit must be an integer between 1 and %zu", max);
            return -1;
        }
        *limit = (size_t)n;
    }
    rc = http_query_param(c->req, "offset", v, sizeof v);
    if (rc) {
        char *end;
        long n = rc > 0 ? strtol(v, &end, 10) : -1;
        if (rc < 0 || !v[0] || *end || n < 0 || n > 1000000000L) {
            api_error(c, 422, "VALIDATION_ERROR", "offset", "offset must be an integer of at least 0");
            return -1;
        }
        *offset = (size_t)n;
    }
    return 0;
}

/* ---- POST /chat ---------------------------------------------------------- */

typedef struct chat_call {
    api_call_t *c;
    const chat_prep_t *p;
    int stream;
    int started;          /* the SSE answer has begun */
    int gone;             /* the client went away */
    buf_t answer;         /* every delta so far: the stored answer */
    uint64_t prepared_ns; /* chat_prepare done */
    uint64_t first_delta_ns;
    uint64_t last_write_ns;
    uint64_t keepalive_ns;
} chat_call_t;

static int write_frame(chat_call_t *s, const char *type, const buf_t *json)
{
    if (json->err) return json->err;
    buf_t f = BUF_INIT;
    buf_printf(&f, "event: %s\ndata: ", type);
    buf_append(&f, json->data, json->len);
    buf_puts(&f, "\n\n");
    int rc = f.err ? f.err : http_stream_write(s->c->req, f.data, f.len);
    buf_free(&f);
    if (rc == ENGRAM_ECLOSED || rc == ENGRAM_ETIMEOUT) s->gone = 1;
    s->last_write_ns = time_mono_ns();
    return rc;
}

static int begin_stream(chat_call_t *s)
{
    if (s->started) return 0;
    s->started = 1;
    int rc = http_stream_begin(s->c->req, 200, "text/event-stream; charset=utf-8",
                               "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    if (rc) {
        s->gone = 1;
        return rc;
    }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "type", "sources");
    jw_key(&w, "sources");
    chat_write_sources(&w, s->p);
    jw_obj_end(&w);
    rc = write_frame(s, "sources", &b);
    buf_free(&b);
    return rc;
}

static int on_delta(const char *text, size_t len, void *ud)
{
    chat_call_t *s = ud;
    buf_append(&s->answer, text, len);
    if (s->answer.err) return ENGRAM_ENOMEM;
    if (!s->stream) return 0;
    int rc = begin_stream(s);
    if (rc) return ENGRAM_ECANCELED;
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "type", "delta");
    jw_key(&w, "content");
    jw_strn(&w, text, len);
    jw_key(&w, "delta");
    jw_strn(&w, text, len);
    jw_obj_end(&w);
    rc = write_frame(s, "delta", &b);
    buf_free(&b);
    if (!s->first_delta_ns) s->first_delta_ns = s->last_write_ns;
    return rc ? ENGRAM_ECANCELED : 0;
}

static int on_tick(void *ud)
{
    chat_call_t *s = ud;
    if (s->gone || http_client_gone(s->c->req)) {
        s->gone = 1;
        return ENGRAM_ECANCELED;
    }
    if (!s->stream || time_mono_ns() - s->last_write_ns < s->keepalive_ns) return 0;
    int rc;
    if (!s->started) {
        rc = begin_stream(s);
    } else {
        static const char ka[] = ": keep-alive\n\n";
        rc = http_stream_write(s->c->req, ka, sizeof ka - 1);
        s->last_write_ns = time_mono_ns();
    }
    if (rc) s->gone = 1;
    return rc ? ENGRAM_ECANCELED : 0;
}

static void write_usage(jw_t *w, const chat_usage_t *u)
{
    jw_obj_begin(w);
    jw_kint(w, "prompt_tokens", u->prompt_tokens);
    jw_kint(w, "completion_tokens", u->completion_tokens);
    jw_kint(w, "total_tokens", u->total_tokens);
    if (u->estimated) jw_kbool(w, "estimated", 1);
    jw_obj_end(w);
}

static void write_metadata(jw_t *w, const chat_prep_t *p, const char *session, const char *model,
                           const chat_call_t *s)
{
    jw_obj_begin(w);
    jw_kstr(w, "session_id", session);
    jw_kstr(w, "retrieval_mode", retrieve_mode_name(p->mode));
    if (p->fallback_from) jw_kstr(w, "retrieval_fallback_from", p->fallback_from);
    jw_kstr(w, "model", model);
    uint64_t t0 = s->c->req->start_ns;
    jw_kint(w, "latency_ms", (int64_t)((time_mono_ns() - t0) / 1000000u));
    jw_kdouble(w, "prepare_ms", (double)(s->prepared_ns - t0) / 1e6);
    if (s->first_delta_ns) jw_kdouble(w, "first_delta_ms", (double)(s->first_delta_ns - t0) / 1e6);
    jw_kint(w, "sources_count", (int64_t)p->n_sources);
    jw_kint(w, "memories_used", (int64_t)p->prompt.n_memories_used);
    jw_obj_end(w);
}

/* The stream's "error" frame, then its end. */
static void stream_error(chat_call_t *s, const char *message)
{
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_kstr(&w, "type", "error");
    jw_kstr(&w, "error", message);
    jw_obj_end(&w);
    write_frame(s, "error", &b);
    buf_free(&b);
    http_stream_end(s->c->req);
}

/* Parses "messages": history into *turns (owned), the question into
 * *question (when no "message"), system entries appended to instr. */
static int parse_messages(api_call_t *c, const json_t *msgs, const char **question,
                          ctx_turn_t **turns, size_t *n_turns, buf_t *instr)
{
    *turns = NULL;
    *n_turns = 0;
    if (msgs->type != JSON_ARRAY || msgs->len == 0 || msgs->len > 1000) {
        api_error(c, 422, "VALIDATION_ERROR", "messages",
                  "messages must be a non-empty array of {\"role\",\"content\"} objects");
        return -1;
    }
    size_t n = msgs->len, take = *question ? n : n - 1;
    for (size_t i = 0; i < n; i++) {
        const json_t *m = msgs->items[i];
        const char *role = json_get_str(m, "role"), *content = json_get_str(m, "content");
        if (!role || !content || strlen(content) != json_get(m, "content")->len ||
            (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system"))) {
            api_error(c, 422, "VALIDATION_ERROR", "messages",
                      "messages[%zu] must have a role (user, assistant or system) and a string content", i);
            return -1;
        }
    }
    if (!*question) {
        const json_t *last = msgs->items[n - 1];
        if (strcmp(json_get_str(last, "role"), "user") || !json_get_str(last, "content")[0]) {
            api_error(c, 422, "VALIDATION_ERROR", "messages",
                      "the last of messages must be the user's question");
            return -1;
        }
        *question = json_get_str(last, "content");
    }
    *turns = eg_calloc(take ? take : 1, sizeof **turns);
    if (!*turns) {
        api_fail(c, ENGRAM_ENOMEM, "chat");
        return -1;
    }
    for (size_t i = 0; i < take; i++) {
        const json_t *m = msgs->items[i];
        const char *role = json_get_str(m, "role");
        if (!strcmp(role, "system")) {
            if (instr->len) buf_putc(instr, '\n');
            buf_puts(instr, json_get_str(m, "content"));
            continue;
        }
        (*turns)[(*n_turns)++] = (ctx_turn_t){role, json_get_str(m, "content")};
    }
    return 0;
}

void h_chat(api_call_t *c)
{
    api_t *api = c->api;
    chat_request_t r = {.mode = -1, .top_k = 8, .include_memory = 1};
    const json_t *retr, *gen, *msgs = json_get(c->body, "messages");
    const char *mode_s = NULL, *custom = NULL;
    int stream = 1, rerank = 0, graph = 0;
    long top_k = 8, max_tokens = 0, ctx_tokens = 0;
    ctx_turn_t *turns = NULL;
    buf_t instr = BUF_INIT;
    chat_prep_t p;
    memset(&p, 0, sizeof p);
    chat_call_t s = {.c = c, .p = &p};
    int64_t started_ms = time_now_ms();

    if (api_field_str(c, "message", 0, 1, 200000, &r.message)) goto out;
    if (api_field_str(c, "session_id", 0, 1, 64, &r.session_id)) goto out;
    if (api_field_str(c, "collection_id", 0, 1, 64, &r.collection_id)) goto out;
    if (api_field_bool(c, c->body, "stream", &stream)) goto out;
    if (api_field_bool(c, c->body, "include_memory", &r.include_memory)) goto out;
    if (api_field_str(c, "custom_instruction", 0, 0, 20000, &custom)) goto out;
    if (api_field_int(c, c->body, "context_tokens", 200, 1000000, &ctx_tokens, NULL)) goto out;
    if (nested_obj(c, "retrieval", &retr) || nested_obj(c, "generation", &gen)) goto out;
    if (nested_str(c, retr, "mode", "retrieval.mode", 32, &mode_s)) goto out;
    if (api_field_int(c, retr, "top_k", 1, 100, &top_k, NULL)) goto out;
    if (api_field_bool(c, retr, "rerank", &rerank) || api_field_bool(c, retr, "enable_graph", &graph)) goto out;
    if (api_field_obj(c, retr, "metadata_filter", &r.metadata_filter)) goto out;
    if (nested_str(c, gen, "model", "generation.model", 200, &r.model)) goto out;
    if (nested_num(c, gen, "temperature", "generation.temperature", 0, 2, &r.temperature,
                   &r.has_temperature)) goto out;
    if (api_field_int(c, gen, "max_tokens", 1, 1000000, &max_tokens, NULL)) goto out;
    if (mode_s) {
        r.mode = retrieve_mode_parse(mode_s);
        if (r.mode < 0) {
            api_error(c, 422, "VALIDATION_ERROR", "retrieval.mode",
                      "retrieval.mode must be semantic, keyword, hybrid, graph or hierarchical");
            goto out;
        }
    }
    if (custom && custom[0]) buf_puts(&instr, custom);
    if (msgs && msgs->type != JSON_NULL) {
        if (parse_messages(c, msgs, &r.message, &turns, &r.n_history, &instr)) goto out;
        r.history = turns;
        r.history_given = r.n_history > 0;
    } else if (!r.message) {
        api_error(c, 422, "VALIDATION_ERROR", "message", "message (or messages) is required");
        goto out;
    }
    if (instr.err) {
        api_fail(c, instr.err, "chat");
        goto out;
    }
    r.custom_instruction = instr.len ? instr.data : NULL;
    r.top_k = (int)top_k;
    r.max_tokens = (int)max_tokens;
    r.context_tokens = (int)ctx_tokens;
    r.rerank = rerank;
    r.enable_graph = graph;

    chat_env_t env = {
        .retrieval = {api->st, api->embedders, api->cfg->rerank_url[0] ? api->cfg->rerank_url : NULL},
        .llm = {.url = api->cfg->llm_url, .api_key = api->cfg->llm_api_key,
                .connect_timeout_ms = api->cfg->llm_connect_timeout_ms,
                .first_token_timeout_ms = api->cfg->llm_first_token_timeout_ms,
                .total_timeout_ms = api->cfg->llm_timeout_ms},
        .llm_model = api->cfg->llm_model,
        .context_tokens = api->cfg->chat_context_tokens};
    char err[300];
    int rc = chat_prepare(&env, c->tok, c->who->ws, c->who->user_uuid, &r, &p, err, sizeof err);
    if (rc == ENGRAM_ENOTFOUND) {
        const char *f = p.err_field ? p.err_field : "session_id";
        api_error(c, 404, "NOT_FOUND", f, "%s not found", !strcmp(f, "collection_id") ? "collection" : "session");
        goto out;
    }
    if (rc == ENGRAM_EUPSTREAM) {
        api_error(c, 502, "UPSTREAM_ERROR", NULL, "the embedding service failed: %s", err);
        goto out;
    }
    if (rc == ENGRAM_EINVAL) {
        api_error(c, 422, "VALIDATION_ERROR", "message", "%s", err[0] ? err : "the message cannot be searched");
        goto out;
    }
    if (rc) {
        api_fail(c, rc, "chat");
        goto out;
    }

    s.prepared_ns = time_mono_ns();
    s.stream = stream;
    s.keepalive_ns = (uint64_t)(api->cfg->sse_keepalive_ms > 0 ? api->cfg->sse_keepalive_ms : 15000) * 1000000u;
    s.last_write_ns = time_mono_ns();
    chat_usage_t usage;
    const char *model = "extractive";
    rc = chat_generate(&env, c->tok, &r, &p, on_delta, on_tick, &s, &s.answer, &usage, &model, err,
                       sizeof err);
    if (rc == 0 && s.answer.err) rc = ENGRAM_ENOMEM;
    if (rc) {
        if (s.gone || rc == ENGRAM_ECANCELED) {
            log_info("chat: the client went away; upstream call cancelled, nothing stored");
            if (s.started) http_stream_end(c->req);
            else api_error(c, 503, "UNAVAILABLE", NULL, "the request was cancelled");
            goto out;
        }
        int upstream = rc == ENGRAM_EUPSTREAM || rc == ENGRAM_ETIMEOUT;
        if (upstream) log_warn("chat: LLM call failed: %s", err);
        else log_error("chat: %s", engram_strerror(rc));
        if (s.started) stream_error(&s, upstream ? err : "internal error");
        else if (upstream) api_error(c, 502, "UPSTREAM_ERROR", NULL, "%s", err);
        else api_fail(c, rc, "chat");
        goto out;
    }

    char session[37] = "";
    rc = chat_finish(&env, c->who->ws, c->who->user_uuid, &r, &p, started_ms, buf_cstr(&s.answer), session);
    if (rc) {
        log_error("chat: storing the exchange failed: %s", engram_strerror(rc));
        if (s.started) stream_error(&s, "the answer could not be saved");
        else api_fail(c, rc, "chat");
        goto out;
    }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    if (!stream) {
        jw_obj_begin(&w);
        jw_kstr(&w, "query", r.message);
        jw_kstr(&w, "response", buf_cstr(&s.answer));
        jw_key(&w, "sources");
        chat_write_sources(&w, &p);
        jw_key(&w, "usage");
        write_usage(&w, &usage);
        jw_kstr(&w, "session_id", session);
        jw_key(&w, "metadata");
        write_metadata(&w, &p, session, model, &s);
        jw_obj_end(&w);
        api_send_json(c, 200, &b, NULL);
        buf_free(&b);
        goto out;
    }
    if (begin_stream(&s) == 0) {
        jw_obj_begin(&w);
        jw_kstr(&w, "type", "usage");
        jw_key(&w, "usage");
        write_usage(&w, &usage);
        jw_obj_end(&w);
        write_frame(&s, "usage", &b);
        buf_reset(&b);
        jw_init(&w, &b);
        jw_obj_begin(&w);
        jw_kstr(&w, "type", "done");
        jw_kstr(&w, "session_id", session);
        jw_key(&w, "metadata");
        write_metadata(&w, &p, session, model, &s);
        jw_obj_end(&w);
        write_frame(&s, "done", &b);
    }
    http_stream_end(c->req);
    buf_free(&b);
out:
    chat_prep_free(&p);
    eg_free(turns);
    buf_free(&instr);
    buf_free(&s.answer);
}

/* ---- sessions ------------------------------------------------------------ */

void h_chat_sessions(api_call_t *c)
{
    size_t limit, offset;
    if (list_params(c, 100, 1000, &limit, &offset)) return;
    json_t *arr = NULL;
    int rc = session_list(c->api->st, c->who->ws, c->who->user_uuid, limit, offset, &arr);
    if (rc) { api_fail(c, rc, "chat sessions"); return; }
    api_send_dom(c, 200, arr);
    json_free(arr);
}

void h_chat_messages(api_call_t *c)
{
    size_t limit, offset;
    if (list_params(c, 1000, 10000, &limit, &offset)) return;
    json_t *arr = NULL;
    int rc = session_messages(c->api->st, c->who->ws, c->who->user_uuid, c->params[0], limit, offset, &arr);
    if (rc) { api_fail(c, rc, "session"); return; }
    api_send_dom(c, 200, arr);
    json_free(arr);
}

void h_chat_session_delete(api_call_t *c)
{
    int rc = session_delete(c->api->st, c->who->ws, c->who->user_uuid, c->params[0]);
    if (rc) { api_fail(c, rc, "session"); return; }
    api_no_content(c);
}

/* ---- memories ------------------------------------------------------------ */

static int field_type(api_call_t *c, int required, int *type)
{
    const char *s;
    *type = -1;
    if (api_field_str(c, "type", required, 1, 32, &s)) return -1;
    if (!s) return 0;
    *type = memory_type_parse(s);
    if (*type < 0) {
        api_error(c, 422, "VALIDATION_ERROR", "type",
                  "type must be profile, semantic, episodic or procedural");
        return -1;
    }
    return 0;
}

void h_mem_create(api_call_t *c)
{
    int type, has_rel;
    const char *content;
    double rel = MEMORY_RELIABILITY_DEFAULT;
    const json_t *meta;
    if (field_type(c, 1, &type)) return;
    if (api_field_str(c, "content", 1, 1, MEMORY_CONTENT_MAX, &content)) return;
    if (nested_num(c, c->body, "reliability", "reliability", 0, 1, &rel, &has_rel)) return;
    if (api_field_obj(c, c->body, "metadata", &meta)) return;
    json_t *m = NULL;
    int rc = memory_create(c->api->st, c->who->ws, c->who->user_uuid, type, content, rel, meta, &m);
    if (rc) { api_fail(c, rc, "memory"); return; }
    api_send_dom(c, 201, m);
    json_free(m);
}

void h_mem_list(api_call_t *c)
{
    size_t limit, offset, total;
    char t[40];
    if (api_query_limit(c, &limit, &offset)) return;
    if (api_query_str(c, "type", t, sizeof t)) return;
    int type = -1;
    if (t[0] && (type = memory_type_parse(t)) < 0) {
        api_error(c, 422, "VALIDATION_ERROR", "type", "type must be profile, semantic, episodic or procedural");
        return;
    }
    json_t *page = NULL;
    int rc = memory_list(c->api->st, c->who->ws, c->who->user_uuid, type, limit, offset, &page, &total);
    if (rc) { api_fail(c, rc, "memories"); return; }
    api_send_page(c, page, total, limit, offset);
    json_free(page);
}

void h_mem_get(api_call_t *c)
{
    json_t *m = NULL;
    int rc = memory_get(c->api->st, c->who->ws, c->who->user_uuid, c->params[0], &m);
    if (rc) { api_fail(c, rc, "memory"); return; }
    api_send_dom(c, 200, m);
    json_free(m);
}

void h_mem_patch(api_call_t *c)
{
    int type, has_rel;
    const char *content;
    double rel = 0;
    const json_t *meta;
    if (field_type(c, 0, &type)) return;
    if (api_field_str(c, "content", 0, 1, MEMORY_CONTENT_MAX, &content)) return;
    if (nested_num(c, c->body, "reliability", "reliability", 0, 1, &rel, &has_rel)) return;
    if (api_field_obj(c, c->body, "metadata", &meta)) return;
    json_t *m = NULL;
    int rc = memory_patch(c->api->st, c->who->ws, c->who->user_uuid, c->params[0], type, content,
                          has_rel ? &rel : NULL, meta, &m);
    if (rc) { api_fail(c, rc, "memory"); return; }
    api_send_dom(c, 200, m);
    json_free(m);
}

void h_mem_delete(api_call_t *c)
{
    int rc = memory_delete(c->api->st, c->who->ws, c->who->user_uuid, c->params[0]);
    if (rc) { api_fail(c, rc, "memory"); return; }
    api_no_content(c);
}

void h_mem_search(api_call_t *c)
{
    memory_query_t q = {.top_k = 10, .count_access = 1};
    memcpy(q.weights, memory_default_weights, sizeof q.weights);
    long top_k = 10;
    const json_t *types = json_get(c->body, "types"), *weights;
    if (api_field_str(c, "query", 1, 1, 10000, &q.query)) return;
    if (api_field_int(c, c->body, "top_k", 1, 100, &top_k, NULL)) return;
    if (api_field_obj(c, c->body, "weights", &weights)) return;
    if (types && types->type != JSON_NULL) {
        if (types->type != JSON_ARRAY) {
            api_error(c, 422, "VALIDATION_ERROR", "types", "types must be an array of memory types");
            return;
        }
        for (size_t i = 0; i < types->len; i++) {
            const json_t *t = types->items[i];
            int ty = t->type == JSON_STRING ? memory_type_parse(t->str) : -1;
            if (ty < 0) {
                api_error(c, 422, "VALIDATION_ERROR", "types",
                          "types[%zu] is not a memory type (profile, semantic, episodic, procedural)", i);
                return;
            }
            q.types |= 1u << ty;
        }
    }
    for (size_t i = 0; weights && i < weights->len; i++) {
        int s = -1;
        for (int k = 0; k < MSIG__COUNT; k++)
            if (!strcmp(weights->keys[i], memory_signal_names[k])) s = k;
        const json_t *v = weights->items[i];
        if (s < 0) {
            api_error(c, 422, "VALIDATION_ERROR", "weights",
                      "weights has no signal \"%.40s\" (keyword, vector, reliability, recency, frequency)",
                      weights->keys[i]);
            return;
        }
        if (v->type != JSON_NUMBER || !(v->number >= 0 && v->number <= 100)) {
            api_error(c, 422, "VALIDATION_ERROR", "weights", "weights.%s must be a number between 0 and 100",
                      weights->keys[i]);
            return;
        }
        q.weights[s] = v->number;
    }
    q.top_k = (size_t)top_k;
    memory_hit_t *hits = NULL;
    size_t n = 0;
    int rc = memory_search(c->api->st, c->tok, c->who->ws, c->who->user_uuid, &q, &hits, &n);
    if (rc) { api_fail(c, rc, "memory search"); return; }
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_key(&w, "results");
    jw_arr_begin(&w);
    for (size_t i = 0; i < n; i++) {
        jw_obj_begin(&w);
        for (size_t k = 0; k < hits[i].object->len; k++) {
            jw_key(&w, hits[i].object->keys[k]);
            jw_json(&w, hits[i].object->items[k]);
        }
        jw_kdouble(&w, "score", hits[i].score);
        jw_key(&w, "signals");
        jw_obj_begin(&w);
        for (int s = 0; s < MSIG__COUNT; s++) jw_kdouble(&w, memory_signal_names[s], hits[i].signals[s]);
        jw_obj_end(&w);
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
    jw_obj_end(&w);
    memory_hits_free(hits, n);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}
