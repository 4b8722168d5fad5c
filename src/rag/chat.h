/*
 * chat.h - one chat exchange: retrieve, remember, pack the prompt, answer
 * (through the LLM or extractively), store the turns.
 *
 * The API layer drives three steps so that it alone speaks HTTP/SSE:
 *   chat_prepare   resolves the session (the caller's, else ENOTFOUND),
 *                  reads its recent turns, retrieves chunks (the asked
 *                  mode; when that mode is not available in this build,
 *                  keyword instead, noted in fallback_from), searches the
 *                  user's memories (include_memory), and builds the prompt
 *                  (context.h). No transaction stays open afterwards.
 *   chat_generate  streams the answer: with an LLM URL configured through
 *                  llm.h, else the extractive answerer (extractive.h), one
 *                  sentence per delta. on_delta gets each piece as it
 *                  comes; on_tick runs every LLM_TICK_MS while waiting.
 *   chat_finish    stores the user's message and the answer (exactly the
 *                  text that was streamed) in the session - a new one when
 *                  none was given - and counts the memories that went into
 *                  the prompt as accessed.
 * A failed or cancelled exchange stores nothing.
 *
 * Sources: the chunks that went into the prompt, numbered 1..n_sources in
 * rank order; an answer's [n] refers to sources[n - 1].
 */
#ifndef ENGRAM_CHAT_H
#define ENGRAM_CHAT_H

#include <stddef.h>
#include <stdint.h>

#include "rag/context.h"
#include "rag/llm.h"
#include "rag/memory.h"
#include "rag/retrieve.h"
#include "rag/sessions.h"
#include "util/buf.h"
#include "util/json.h"

#define CHAT_HISTORY_MESSAGES 20   /* turns read from a session for the prompt */
#define CHAT_MEMORY_CANDIDATES 50  /* memories ranked for the prompt */
#define CHAT_QUERY_MAX 4000        /* bytes of the message used as the retrieval query */

typedef struct chat_env {
    retrieve_env_t retrieval;
    llm_config_t llm;          /* llm.url NULL or "": extractive answers */
    const char *llm_model;     /* the configured model ("" none) */
    int context_tokens;        /* default budget (<= 0: CTX_DEFAULT_BUDGET) */
} chat_env_t;

typedef struct chat_request {
    const char *message;             /* the question (required) */
    const ctx_turn_t *history;       /* from the request's "messages" (before the last);
                                      * when given, the session's turns are not read */
    size_t n_history;
    int history_given;
    const char *session_id;          /* NULL: a new session */
    const char *collection_id;       /* NULL: the session's, else every collection */
    int mode;                        /* rmode_t; -1: hybrid */
    int top_k;                       /* 1..100 */
    const json_t *metadata_filter;
    int enable_graph;                /* retrieve_req_t's */
    int rerank;
    const char *model;               /* NULL: the configured one */
    int has_temperature;
    double temperature;
    int max_tokens;                  /* 0: the service's default */
    int include_memory;
    const char *custom_instruction;  /* NULL: none */
    int context_tokens;              /* 0: env's */
} chat_request_t;

typedef struct chat_prep {
    session_ref_t session;           /* session.id 0: a new session */
    char coll_uuid[37];              /* the collection searched ("" all) */
    rmode_t mode;                    /* the mode that ran */
    const char *fallback_from;       /* the asked mode when another ran, else NULL */
    retrieved_chunk_t *chunks;
    size_t n_chunks;                 /* fetched */
    size_t n_sources;                /* in the prompt: chunks[0..n_sources) */
    memory_hit_t *memories;
    size_t n_memories;
    session_turn_t *turns;
    size_t n_turns;
    ctx_turn_t *ctx_turns;
    ctx_prompt_t prompt;
    llm_message_t *messages;         /* system, turns, question */
    size_t n_messages;
    const char *err_field;           /* on failure: the request field at fault, or NULL */
} chat_prep_t;

/* Statuses: ENGRAM_ENOTFOUND (session or collection: err_field says
 * which), ENGRAM_EUPSTREAM (the embedding service, err), ENGRAM_EINVAL (the
 * query, err), storage statuses. On failure p is freed. */
int chat_prepare(const chat_env_t *env, tokenizer_t *tok, uint64_t ws, const char *user_uuid,
                 const chat_request_t *r, chat_prep_t *p, char *err, size_t errsz);

typedef struct chat_usage {
    int64_t prompt_tokens, completion_tokens, total_tokens;
    int estimated;                   /* not reported by the service */
} chat_usage_t;

/* Streams the answer (see above). *model: the model name for metadata
 * ("extractive" without an LLM). Returns 0, a status of llm_chat_stream,
 * or a callback's non-zero value. usage is filled on success (estimated
 * from answer when the service gave none). */
int chat_generate(const chat_env_t *env, tokenizer_t *tok, const chat_request_t *r,
                  const chat_prep_t *p, llm_delta_fn on_delta, llm_tick_fn on_tick, void *ud,
                  const buf_t *answer, chat_usage_t *usage, const char **model, char *err,
                  size_t errsz);

/* Stores the exchange; session_uuid gets the session's id. */
int chat_finish(const chat_env_t *env, uint64_t ws, const char *user_uuid, const chat_request_t *r,
                const chat_prep_t *p, int64_t started_ms, const char *answer,
                char session_uuid[37]);

/* The sources array [{"document_id","chunk_id","title","chunk_index","score"}]. */
void chat_write_sources(jw_t *w, const chat_prep_t *p);

void chat_prep_free(chat_prep_t *p);

#endif
