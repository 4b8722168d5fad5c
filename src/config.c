/*
 * config.c - the settings table (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/common.h"

typedef enum { T_STR, T_INT, T_BOOL } ctype_t;

typedef struct setting {
    const char *flag;     /* without "--" */
    const char *env;
    ctype_t type;
    size_t off;
    size_t size;          /* T_STR capacity */
    const char *def;      /* default as text ("" = unset; "cores" for threads) */
    long min, max;        /* T_INT range */
    const char *help;
} setting_t;

#define S(f, e, field, d, h) {f, e, T_STR, offsetof(config_t, field), sizeof(((config_t *)0)->field), d, 0, 0, h}
#define I(f, e, field, d, lo, hi, h) {f, e, T_INT, offsetof(config_t, field), 0, d, lo, hi, h}
#define B(f, e, field, d, h) {f, e, T_BOOL, offsetof(config_t, field), 0, d, 0, 1, h}

static const setting_t settings[] = {
    S("listen", "ENGRAM_LISTEN", listen, "127.0.0.1:8080", "address and port to serve on (port 0: pick a free one and log it)"),
    S("data", "ENGRAM_DATA", data, "./engram-data", "data directory (created if missing)"),
    B("open-registration", "ENGRAM_OPEN_REGISTRATION", open_registration, "0", "let anyone register (the first user of an empty server always may)"),
    S("tls-cert", "ENGRAM_TLS_CERT", tls_cert, "", "PEM certificate chain; with --tls-key: HTTPS only"),
    S("tls-key", "ENGRAM_TLS_KEY", tls_key, "", "PEM private key for --tls-cert"),
    S("embedder", "ENGRAM_EMBEDDER", embedder, "hash", "embedder: hash (built in) or openai"),
    S("embed-url", "ENGRAM_EMBED_URL", embed_url, "", "OpenAI-compatible embeddings service base URL"),
    S("embed-model", "ENGRAM_EMBED_MODEL", embed_model, "", "embedding model name"),
    S("embed-api-key", "ENGRAM_EMBED_API_KEY", embed_api_key, "", "API key for the embeddings service"),
    I("embed-dim", "ENGRAM_EMBED_DIM", embed_dim, "0", 0, 65536, "embedding dimension (0: the embedder's default)"),
    S("llm-url", "ENGRAM_LLM_URL", llm_url, "", "OpenAI-compatible chat service base URL (unset: extractive answers)"),
    S("llm-model", "ENGRAM_LLM_MODEL", llm_model, "", "chat model name"),
    S("llm-api-key", "ENGRAM_LLM_API_KEY", llm_api_key, "", "API key for the chat service"),
    I("llm-connect-timeout-ms", "ENGRAM_LLM_CONNECT_TIMEOUT_MS", llm_connect_timeout_ms, "10000", 100, 600000, "time to connect to the chat service"),
    I("llm-first-token-timeout-ms", "ENGRAM_LLM_FIRST_TOKEN_TIMEOUT_MS", llm_first_token_timeout_ms, "60000", 100, 3600000, "time the chat service has to send the first token"),
    I("llm-timeout-ms", "ENGRAM_LLM_TIMEOUT_MS", llm_timeout_ms, "300000", 100, 3600000, "longest whole answer from the chat service"),
    I("chat-context-tokens", "ENGRAM_CHAT_CONTEXT_TOKENS", chat_context_tokens, "5000", 200, 1000000, "token budget of a chat prompt (instructions, memories, sources, recent turns)"),
    I("sse-keepalive-ms", "ENGRAM_SSE_KEEPALIVE_MS", sse_keepalive_ms, "15000", 50, 600000, "a silent chat stream gets a ': keep-alive' comment this often"),
    S("rerank-url", "ENGRAM_RERANK_URL", rerank_url, "", "rerank service URL (unset: built-in reranker)"),
    S("ca-bundle", "ENGRAM_CA_BUNDLE", ca_bundle, "", "CA certificates (PEM) for outbound HTTPS to the services above (unset: the system's)"),
    I("ingest-threads", "ENGRAM_INGEST_THREADS", ingest_threads, "cores", 1, 256, "ingestion worker threads"),
    I("max-upload-mb", "ENGRAM_MAX_UPLOAD_MB", max_upload_mb, "100", 1, 4096, "largest upload in MiB"),
    I("rate-limit", "ENGRAM_RATE_LIMIT", rate_limit, "600", 0, 1000000, "requests per minute per key (0: none); over it: 429 with Retry-After"),
    I("auth-rate-limit", "ENGRAM_AUTH_RATE_LIMIT", auth_rate_limit, "20", 0, 1000000, "login and register attempts per minute per client address (0: none)"),
    I("cache-mb", "ENGRAM_CACHE_MB", cache_mb, "64", 0, 65536, "retrieval result cache in MiB (0: no caching)"),
    S("log-level", "ENGRAM_LOG_LEVEL", log_level, "info", "debug, info, warn or error"),
    I("http-workers", "ENGRAM_HTTP_WORKERS", http_workers, "8", 1, 256,
      "threads answering requests; writes and chat leave a quarter of them (at least one) to reads"),
    I("max-connections", "ENGRAM_MAX_CONNECTIONS", max_connections, "1024", 1, 100000, "open connections at most; more get 503"),
    I("header-timeout-ms", "ENGRAM_HEADER_TIMEOUT_MS", header_timeout_ms, "10000", 50, 600000, "time a client has to send a request's headers"),
    I("body-timeout-ms", "ENGRAM_BODY_TIMEOUT_MS", body_timeout_ms, "30000", 50, 3600000, "longest pause while a request body arrives"),
    I("idle-timeout-ms", "ENGRAM_IDLE_TIMEOUT_MS", idle_timeout_ms, "60000", 50, 3600000, "keep-alive connections idle longer are closed"),
};

static int set_value(config_t *c, const setting_t *s, const char *v, char *err, size_t errsz)
{
    char *p = (char *)c + s->off;
    if (s->type == T_STR) {
        if (strlen(v) >= s->size) {
            snprintf(err, errsz, "--%s: value too long", s->flag);
            return ENGRAM_EINVAL;
        }
        strcpy(p, v);
        return 0;
    }
    if (s->type == T_BOOL) {
        int b;
        if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) b = 1;
        else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) b = 0;
        else {
            snprintf(err, errsz, "--%s: expected true or false, got \"%s\"", s->flag, v);
            return ENGRAM_EINVAL;
        }
        *(int *)p = b;
        return 0;
    }
    long n;
    if (!strcmp(v, "cores")) {
        n = sysconf(_SC_NPROCESSORS_ONLN);
        if (n < 1) n = 1;
    } else {
        char *end;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end) {
            snprintf(err, errsz, "--%s: expected a number, got \"%s\"", s->flag, v);
            return ENGRAM_EINVAL;
        }
    }
    if (n < s->min || n > s->max) {
        snprintf(err, errsz, "--%s: %ld is out of range %ld..%ld", s->flag, n, s->min, s->max);
        return ENGRAM_EINVAL;
    }
    *(int *)p = (int)n;
    return 0;
}

int config_load(config_t *c, int argc, char **argv, int *help, char *err, size_t errsz)
{
    memset(c, 0, sizeof *c);
    *help = 0;
    for (size_t i = 0; i < EG_ARRAY_LEN(settings); i++) {
        int rc = set_value(c, &settings[i], settings[i].def, err, errsz);
        if (rc) return rc;
    }
    for (size_t i = 0; i < EG_ARRAY_LEN(settings); i++) {
        const char *v = getenv(settings[i].env);
        if (!v) continue;
        int rc = set_value(c, &settings[i], v, err, errsz);
        if (rc) return rc;
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) { *help = 1; return 0; }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errsz, "unexpected argument \"%s\"", arg);
            return ENGRAM_EINVAL;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const setting_t *s = NULL;
        for (size_t i = 0; i < EG_ARRAY_LEN(settings); i++) {
            if (strlen(settings[i].flag) == nlen && !strncmp(settings[i].flag, name, nlen)) {
                s = &settings[i];
                break;
            }
        }
        if (!s) {
            snprintf(err, errsz, "unknown option \"%s\" (see engram serve --help)", arg);
            return ENGRAM_EINVAL;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else if (s->type == T_BOOL && (a + 1 >= argc || strncmp(argv[a + 1], "--", 2) == 0 ||
                                         (strcmp(argv[a + 1], "true") && strcmp(argv[a + 1], "false")))) {
            v = "1";
        } else {
            if (a + 1 >= argc) {
                snprintf(err, errsz, "--%s needs a value", s->flag);
                return ENGRAM_EINVAL;
            }
            v = argv[++a];
        }
        int rc = set_value(c, s, v, err, errsz);
        if (rc) return rc;
    }
    return 0;
}

void config_print_help(FILE *f)
{
    fprintf(f, "Usage: engram serve [options]\n\nOptions (each also set by its environment variable):\n");
    for (size_t i = 0; i < EG_ARRAY_LEN(settings); i++) {
        const setting_t *s = &settings[i];
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", s->flag, s->type == T_BOOL ? "" : " V");
        fprintf(f, "  %-26s %s\n  %-26s [%s; default: %s]\n", flag, s->help, "", s->env,
                s->def[0] ? s->def : "unset");
    }
}

void config_print_markdown(FILE *f)
{
    fprintf(f, "| flag | env | default | meaning |\n| --- | --- | --- | --- |\n");
    for (size_t i = 0; i < EG_ARRAY_LEN(settings); i++) {
        const setting_t *s = &settings[i];
        fprintf(f, "| `--%s` | `%s` | %s | %s |\n", s->flag, s->env, s->def[0] ? s->def : "unset",
                s->help);
    }
}
