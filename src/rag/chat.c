/*
 * chat.c - one chat exchange (see chat.h): the glue between retrieval,
 * memories, sessions, the prompt, and the two answerers.
 *
 * Nothing here holds a read transaction while answering: retrieval,
 * memory search and session reads each copy their results out of their
 * own short transaction before the LLM is called or anything is streamed.
 */
#include "rag/chat.h"

#include <stdio.h>
#include <string.h>

#include "rag/extractive.h"
#include "util/common.h"
#include "util/utf8.h"

void chat_prep_free(chat_prep_t *p)
{
    if (!p) return;
    retrieve_fetch_free(p->chunks, p->n_chunks);
    memory_hits_free(p->memories, p->n_memories);
    session_turns_free(p->turns, p->n_turns);
    eg_free(p->ctx_turns);
    ctx_prompt_free(&p->prompt);
    eg_free(p->messages);
    memset(p, 0, sizeof *p);
}

/* Retrieval with the keyword fallback. */
static int retrieve(const chat_env_t *env, tokenizer_t *tok, uint64_t ws, const chat_request_t *r,
                    chat_prep_t *p, char *err, size_t errsz)
{
    char query[CHAT_QUERY_MAX + 1];
    size_t ql = utf8_truncate(r->message, strlen(r->message), CHAT_QUERY_MAX);
    memcpy(query, r->message, ql);
    query[ql] = '\0';
    rmode_t mode = r->mode >= 0 ? (rmode_t)r->mode : RMODE_HYBRID;
    retrieve_req_t rq = {.query = query, .mode = mode, .top_k = r->top_k > 0 ? r->top_k : 8,
                         .coll_uuid = p->coll_uuid[0] ? p->coll_uuid : NULL,
                         .metadata_filter = r->metadata_filter && r->metadata_filter->len ? r->metadata_filter : NULL,
                         .bm25 = BM25_PARAMS_DEFAULT, .enable_graph = r->enable_graph,
                         .rerank = r->rerank};
    retrieve_hit_t *hits = NULL;
    size_t n = 0;
    int rc = retrieve_search(&env->retrieval, tok, ws, &rq, &hits, &n, err, errsz);
    if (rc == ENGRAM_EUNSUPPORTED && mode != RMODE_KEYWORD) {
        p->fallback_from = retrieve_mode_name(mode);
        rq.mode = mode = RMODE_KEYWORD;
        rc = retrieve_search(&env->retrieval, tok, ws, &rq, &hits, &n, err, errsz);
    }
    if (rc == ENGRAM_ENOTFOUND && !r->collection_id && p->coll_uuid[0]) {
        /* The session's collection is gone: search everything. */
        p->coll_uuid[0] = '\0';
        rq.coll_uuid = NULL;
        rc = retrieve_search(&env->retrieval, tok, ws, &rq, &hits, &n, err, errsz);
    }
    if (rc == ENGRAM_ENOTFOUND) p->err_field = "collection_id";
    if (rc == ENGRAM_EINVAL) p->err_field = "message";
    if (rc) return rc;
    p->mode = mode;
    rc = retrieve_fetch(&env->retrieval, ws, hits, n, &p->chunks, &p->n_chunks);
    eg_free(hits);
    return rc;
}

static int build_prompt(const chat_env_t *env, const chat_request_t *r, chat_prep_t *p)
{
    ctx_chunk_t *chunks = NULL;
    ctx_memory_t *mems = NULL;
    int rc = ENGRAM_ENOMEM;
    if (p->n_chunks && !(chunks = eg_calloc(p->n_chunks, sizeof *chunks))) goto done;
    if (p->n_memories && !(mems = eg_calloc(p->n_memories, sizeof *mems))) goto done;
    for (size_t i = 0; i < p->n_chunks; i++)
        chunks[i] = (ctx_chunk_t){p->chunks[i].title, p->chunks[i].text, p->chunks[i].text_len};
    for (size_t i = 0; i < p->n_memories; i++)
        mems[i] = (ctx_memory_t){p->memories[i].type, p->memories[i].content};
    const ctx_turn_t *turns = r->history_given ? r->history : p->ctx_turns;
    size_t n_turns = r->history_given ? r->n_history : p->n_turns;
    ctx_input_t in = {.custom_instruction = r->custom_instruction, .memories = mems,
                      .n_memories = p->n_memories, .chunks = chunks, .n_chunks = p->n_chunks,
                      .turns = turns, .n_turns = n_turns, .question = r->message,
                      .budget = r->context_tokens > 0 ? r->context_tokens : env->context_tokens};
    rc = ctx_build(&in, &p->prompt);
    if (rc) goto done;
    p->n_sources = p->prompt.n_chunks;
    size_t nm = 2 + (n_turns - p->prompt.first_turn);
    p->messages = eg_calloc(nm, sizeof *p->messages);
    if (!p->messages) { rc = ENGRAM_ENOMEM; goto done; }
    p->messages[p->n_messages++] = (llm_message_t){"system", p->prompt.system};
    for (size_t i = p->prompt.first_turn; i < n_turns; i++)
        p->messages[p->n_messages++] = (llm_message_t){turns[i].role, turns[i].content};
    p->messages[p->n_messages++] = (llm_message_t){"user", r->message};
done:
    eg_free(chunks);
    eg_free(mems);
    return rc;
}

int chat_prepare(const chat_env_t *env, tokenizer_t *tok, uint64_t ws, const char *user_uuid,
                 const chat_request_t *r, chat_prep_t *p, char *err, size_t errsz)
{
    memset(p, 0, sizeof *p);
    if (errsz) err[0] = '\0';
    if (!r->message) return ENGRAM_EINVAL;
    int rc;
    if (r->session_id) {
        rc = session_find(env->retrieval.st, ws, user_uuid, r->session_id, &p->session);
        if (rc) {
            p->err_field = "session_id";
            goto fail;
        }
        if (!r->history_given) {
            rc = session_recent(env->retrieval.st, ws, p->session.id, CHAT_HISTORY_MESSAGES,
                                &p->turns, &p->n_turns);
            if (rc) goto fail;
            if (p->n_turns && !(p->ctx_turns = eg_calloc(p->n_turns, sizeof *p->ctx_turns))) {
                rc = ENGRAM_ENOMEM;
                goto fail;
            }
            for (size_t i = 0; i < p->n_turns; i++)
                p->ctx_turns[i] = (ctx_turn_t){p->turns[i].role, p->turns[i].content};
        }
    }
    if (r->collection_id) snprintf(p->coll_uuid, sizeof p->coll_uuid, "%s", r->collection_id);
    else snprintf(p->coll_uuid, sizeof p->coll_uuid, "%s", p->session.collection_id);
    rc = retrieve(env, tok, ws, r, p, err, errsz);
    if (rc) goto fail;
    if (r->include_memory) {
        memory_query_t mq = {.query = r->message, .top_k = CHAT_MEMORY_CANDIDATES, .keep_profile = 1};
        memcpy(mq.weights, memory_default_weights, sizeof mq.weights);
        rc = memory_search(env->retrieval.st, tok, ws, user_uuid, &mq, &p->memories, &p->n_memories);
        if (rc) goto fail;
    }
    rc = build_prompt(env, r, p);
    if (rc) goto fail;
    return 0;
fail:
    {
        const char *field = p->err_field;
        chat_prep_free(p);
        p->err_field = field;
    }
    return rc;
}

int chat_generate(const chat_env_t *env, tokenizer_t *tok, const chat_request_t *r,
                  const chat_prep_t *p, llm_delta_fn on_delta, llm_tick_fn on_tick, void *ud,
                  const buf_t *answer, chat_usage_t *usage, const char **model, char *err,
                  size_t errsz)
{
    memset(usage, 0, sizeof *usage);
    if (errsz) err[0] = '\0';
    int rc;
    llm_usage_t lu = {0};
    if (env->llm.url && env->llm.url[0]) {
        const char *m = r->model && r->model[0] ? r->model : env->llm_model;
        *model = m && m[0] ? m : "default";
        llm_request_t lr = {.model = m, .messages = p->messages, .n_messages = p->n_messages,
                            .has_temperature = r->has_temperature, .temperature = r->temperature,
                            .max_tokens = r->max_tokens};
        rc = llm_chat_stream(&env->llm, &lr, on_delta, on_tick, ud, &lu, NULL, err, errsz);
        if (rc) return rc;
    } else {
        *model = "extractive";
        extractive_source_t *src = NULL;
        if (p->n_sources && !(src = eg_calloc(p->n_sources, sizeof *src))) return ENGRAM_ENOMEM;
        for (size_t i = 0; i < p->n_sources; i++) {
            src[i].text = p->chunks[i].text;
            src[i].len = p->chunks[i].text_len;
            /* The prompt may have shortened the last source: answer from
             * what the sources list shows, the whole chunk is fine. */
        }
        extractive_answer_t a;
        rc = extractive_answer(tok, r->message, src, p->n_sources, &a);
        eg_free(src);
        if (rc) return rc;
        for (size_t i = 0; i < a.n && !rc; i++) {
            rc = on_delta(a.pieces[i], strlen(a.pieces[i]), ud);
            if (!rc && on_tick) rc = on_tick(ud);
        }
        extractive_answer_free(&a);
        if (rc) return rc;
    }
    if (lu.present) {
        usage->prompt_tokens = lu.prompt_tokens;
        usage->completion_tokens = lu.completion_tokens;
        usage->total_tokens = lu.total_tokens;
    } else {
        usage->estimated = 1;
        usage->prompt_tokens = p->prompt.tokens;
        usage->completion_tokens = answer ? ctx_estimate_tokens(answer->data ? answer->data : "", answer->len) : 0;
        usage->total_tokens = usage->prompt_tokens + usage->completion_tokens;
    }
    return 0;
}

int chat_finish(const chat_env_t *env, uint64_t ws, const char *user_uuid, const chat_request_t *r,
                const chat_prep_t *p, int64_t started_ms, const char *answer,
                char session_uuid[37])
{
    store_t *st = env->retrieval.st;
    const char *coll = r->collection_id ? r->collection_id : (p->coll_uuid[0] ? p->coll_uuid : NULL);
    int rc = session_append(st, ws, user_uuid, p->session.id, coll, r->message, started_ms, answer,
                            session_uuid);
    if (rc) return rc;
    size_t n = p->prompt.n_memories_used, k = 0;
    if (n == 0) return 0;
    uint64_t *ids = eg_calloc(n, sizeof *ids);
    if (!ids) return ENGRAM_ENOMEM;
    for (size_t i = 0; i < p->n_memories; i++)
        if (p->prompt.memory_used[i] && k < n) ids[k++] = p->memories[i].id;
    rc = memory_touch(st, ws, ids, k);
    eg_free(ids);
    return rc;
}

void chat_write_sources(jw_t *w, const chat_prep_t *p)
{
    jw_arr_begin(w);
    for (size_t i = 0; i < p->n_sources; i++) {
        const retrieved_chunk_t *c = &p->chunks[i];
        jw_obj_begin(w);
        jw_kstr(w, "document_id", c->document_id);
        jw_kstr(w, "chunk_id", c->chunk_id);
        jw_kstr(w, "collection_id", c->collection_id);
        jw_kstr(w, "title", c->title ? c->title : "");
        jw_kint(w, "chunk_index", c->chunk_index);
        jw_kdouble(w, "score", c->score);
        jw_kint(w, "n", (int64_t)(i + 1));
        jw_obj_end(w);
    }
    jw_arr_end(w);
}
