/*
 * cli.h - the engram command line's client commands, talking to a server
 * over HTTP with libcurl:
 *
 *   engram ingest --collection NAME [--wait] PATH...
 *   engram search QUERY [--collection NAME] [--mode M] [--top-k N] [--json]
 *   engram ask QUESTION [--collection NAME]
 *   engram collections [--json]
 *   engram docs [--collection NAME] [--json]
 *
 * Every command takes --url and --api-key (else ENGRAM_URL, default
 * http://127.0.0.1:8080, and ENGRAM_API_KEY). Exit status: 0 success, 1 the
 * server refused or could not be reached (or an upload failed), 2 bad usage.
 *
 * The HTTP layer (http_client.c) is separate from the commands
 * (commands.c): cli_request/cli_upload/cli_stream each perform one request
 * and return 0 when an answer came, whatever its status, or a negative
 * status with a sentence in err when none did (unreachable, timeout).
 */
#ifndef ENGRAM_CLI_H
#define ENGRAM_CLI_H

#include <stddef.h>

#include "util/buf.h"
#include "util/json.h"

/* The command dispatcher: argv[0] is the command name. Returns the exit status. */
int cli_main(int argc, char **argv);
/* 1 when name is one of the client commands above. */
int cli_is_command(const char *name);

typedef struct cli_conn {
    const char *url;      /* base URL without /api/v1, no trailing slash */
    const char *api_key;  /* may be NULL: then no credential is sent */
    long timeout_s;       /* whole-request timeout for non-streamed calls */
} cli_conn_t;

typedef struct cli_resp {
    long status;          /* HTTP status; 0 before an answer */
    buf_t body;           /* the answer's body (empty for a consumed SSE stream) */
    json_t *json;         /* the body parsed, when it was JSON; owned */
    char request_id[129]; /* X-Request-ID, "" when absent */
    char content_type[128];
} cli_resp_t;

/* Releases what a response holds (safe on a zeroed one). */
void cli_resp_free(cli_resp_t *r);

/* method on /api/v1 + path with an optional JSON body (NUL-terminated, may be
 * NULL). Returns 0 when an answer came (check out->status), else a negative
 * status with err filled. out is zeroed first; free it with cli_resp_free. */
int cli_request(const cli_conn_t *c, const char *method, const char *path, const char *json_body,
                cli_resp_t *out, char *err, size_t errlen);

/* POST /api/v1/documents as multipart/form-data: collection_id and the file
 * at path, streamed from disk (never read whole into memory). */
int cli_upload(const cli_conn_t *c, const char *collection_id, const char *path,
               cli_resp_t *out, char *err, size_t errlen);

/* One server-sent event: its type ("" when the frame had none) and data. */
typedef int (*cli_sse_fn)(const char *event, const char *data, size_t len, void *ud);

/* POST with a JSON body expecting text/event-stream: each event is passed
 * to fn as it arrives (fn returning nonzero stops the stream). An answer
 * that is not an event stream (an error, say) is kept in out->body/json. */
int cli_stream(const cli_conn_t *c, const char *path, const char *json_body, cli_sse_fn fn,
               void *ud, cli_resp_t *out, char *err, size_t errlen);

/* The server's error message in an error answer, else a generic sentence. */
const char *cli_error_message(const cli_resp_t *r);
/* The error code ("NOT_FOUND", ...) or "". */
const char *cli_error_code(const cli_resp_t *r);

#endif
