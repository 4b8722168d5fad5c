/*
 * llm.h - a streaming client for OpenAI-compatible chat services
 * (POST {url}/v1/chat/completions), through libcurl.
 *
 * llm_chat_stream sends the messages with "stream": true (and
 * "stream_options": {"include_usage": true}) and hands every content delta
 * to on_delta the moment its server-sent event has been read: nothing is
 * buffered beyond the current event. Usage comes from the service's last
 * event when it sends one (usage->present). A service that ignores
 * "stream" and answers one JSON completion is accepted too (one delta).
 *
 * The transfer runs on the calling thread with a curl multi handle polled
 * every LLM_TICK_MS; between polls on_tick runs (the caller sends SSE
 * keep-alives and checks whether its own client went away). A non-zero
 * return from either callback cancels the request: the upstream connection
 * is closed at once and that value is returned.
 *
 * Timeouts: connect (connect_timeout_ms), the first content delta
 * (first_token_timeout_ms, counted from the start) and the whole call
 * (total_timeout_ms) -> ENGRAM_ETIMEOUT.
 * Errors: an HTTP status other than 2xx, an "error" event, a malformed
 * event (bad JSON, a line over 1 MiB), a stream that ends before "[DONE]"
 * or a finish_reason, a refused connection -> ENGRAM_EUPSTREAM.
 * On any failure err holds one line for the user (the status and the
 * service's own message when it gave one; never the API key).
 *
 * Thread-safe: each call has its own handles; libcurl's global set-up runs
 * once (pthread_once).
 */
#ifndef ENGRAM_LLM_H
#define ENGRAM_LLM_H

#include <stddef.h>
#include <stdint.h>

#define LLM_TICK_MS 100

typedef struct llm_config {
    const char *url;              /* "http(s)://host[:port][/prefix]", with or without
                                   * "/v1", or the full ".../chat/completions" */
    const char *api_key;          /* NULL/"": no Authorization header */
    int connect_timeout_ms;       /* 0: 10000 */
    int first_token_timeout_ms;   /* 0: 60000 */
    int total_timeout_ms;         /* 0: 300000 */
} llm_config_t;

typedef struct llm_message {
    const char *role;             /* "system", "user", "assistant" */
    const char *content;
} llm_message_t;

typedef struct llm_request {
    const char *model;            /* NULL/"": left out of the request */
    const llm_message_t *messages;
    size_t n_messages;
    int has_temperature;
    double temperature;
    int max_tokens;               /* 0: left out */
} llm_request_t;

typedef struct llm_usage {
    int present;                  /* the service reported usage */
    int64_t prompt_tokens, completion_tokens, total_tokens;
} llm_usage_t;

typedef int (*llm_delta_fn)(const char *text, size_t len, void *ud);
typedef int (*llm_tick_fn)(void *ud);

/* See above. on_tick may be NULL. Returns 0, ENGRAM_EUPSTREAM,
 * ENGRAM_ETIMEOUT, ENGRAM_EINVAL (bad URL), ENGRAM_ENOMEM or a callback's
 * non-zero value. *n_deltas counts the deltas delivered. */
int llm_chat_stream(const llm_config_t *cfg, const llm_request_t *req, llm_delta_fn on_delta,
                    llm_tick_fn on_tick, void *ud, llm_usage_t *usage, size_t *n_deltas,
                    char *err, size_t errsz);

/* Runs the event-stream parser of llm_chat_stream over a whole answer body
 * fed in pieces of piece bytes (0: at once), as if it had come from a
 * service: same deltas, usage and statuses. For tests and the fuzz target. */
int llm_parse_stream(const char *data, size_t len, size_t piece, llm_delta_fn on_delta, void *ud,
                     llm_usage_t *usage, size_t *n_deltas, char *err, size_t errsz);

/* The endpoint URL for a configured base URL (see llm_config_t.url) into
 * out. ENGRAM_EINVAL when it is not http(s) or does not fit. */
int llm_endpoint(const char *base, char *out, size_t outsz);

#endif
