/*
 * config.h - every setting of `engram serve` in one declarative table.
 *
 * The table (config.c) gives each setting its flag, ENGRAM_<NAME>
 * environment variable, type, default and help; it drives argument
 * parsing, the environment, `--help` and docs/CONFIG.md. Precedence: flag,
 * then environment, then default. After config_load the config is an
 * immutable snapshot shared by every thread.
 */
#ifndef ENGRAM_CONFIG_H
#define ENGRAM_CONFIG_H

#include <stdio.h>

typedef struct config {
    char listen[128];
    char data[1024];
    int open_registration;
    char tls_cert[1024];
    char tls_key[1024];
    char embedder[32];
    char embed_url[512];
    char embed_model[128];
    char embed_api_key[256];
    int embed_dim;
    char llm_url[512];
    char llm_model[128];
    char llm_api_key[256];
    int llm_connect_timeout_ms;     /* chat (rag/llm.h, rag/chat.h) */
    int llm_first_token_timeout_ms;
    int llm_timeout_ms;
    int chat_context_tokens;
    int sse_keepalive_ms;
    char rerank_url[512];
    char ca_bundle[1024];
    int ingest_threads;
    int max_upload_mb;
    int rate_limit;
    int auth_rate_limit;   /* login/register attempts per minute per address */
    int cache_mb;          /* retrieval cache budget */
    char log_level[16];
    int http_workers;
    int max_connections;
    int header_timeout_ms;
    int body_timeout_ms;
    int idle_timeout_ms;
} config_t;

/* Defaults, then the environment, then argv[0..argc) (flags only; an
 * unknown flag or a bad value is ENGRAM_EINVAL with a message in err).
 * "--help" sets *help. */
int config_load(config_t *c, int argc, char **argv, int *help, char *err, size_t errsz);
/* Writes the flag table as --help text. */
void config_print_help(FILE *f);
/* Writes the table as a Markdown table (docs/CONFIG.md). */
void config_print_markdown(FILE *f);

#endif
