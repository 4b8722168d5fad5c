/*
 * main.c - the engram command line: wires the layers together.
 *
 *   engram serve [options]      the HTTP server (see config.c for options)
 *   engram user add --email E [--admin] [--data DIR]
 *   engram eval --beir DIR [--mode keyword]
 *   engram version | help
 *
 * serve: open the store, start ingestion (which resumes unfinished jobs),
 * bind, serve until SIGTERM/SIGINT, then stop accepting, finish in-flight
 * requests, stop ingestion after its current documents, close the store.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "cli/cli.h"
#include "config.h"
#include "eval/beir.h"
#include "http/http.h"
#include "index/hnsw.h"
#include "ingest/ingest.h"
#include "ops/backup.h"
#include "model/extract_entities.h"
#include "model/registry.h"
#include "store/store.h"
#include "tools/tools.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/netcfg.h"
#include "util/timeutil.h"

static http_server_t *the_server;

static void on_signal(int sig)
{
    (void)sig;
    if (the_server) http_server_stop(the_server);
}

static void usage(FILE *f)
{
    fprintf(f,
            "engram %s - documents in, answers out: a self-hosted retrieval server\n\n"
            "Usage:\n"
            "  engram serve [options]            serve the HTTP API (engram serve --help)\n"
            "  engram user add --email E [--admin] [--password P] [--data DIR]\n"
            "                                    add a user to a data directory; prints an API key\n"
            "  engram eval --beir DIR [--mode keyword]\n"
            "                                    retrieval quality on a BEIR data set\n"
            "  engram stat [--data DIR]          what a data directory holds (read-only)\n"
            "  engram backup DEST [--data DIR]   consistent compacted copy (beside a running server)\n"
            "  engram restore SRC [--data DIR] [--force]\n"
            "                                    install a backup as a data directory's database\n"
            "  engram verify [--data DIR]        check a data directory's cross-index consistency;\n"
            "                                    exit 1 on any defect (safe beside a running server)\n"
            "  engram ingest --collection NAME [--wait] PATH...\n"
            "                                    upload files and folders to a server\n"
            "  engram search QUERY [--collection NAME] [--mode M] [--top-k N] [--json]\n"
            "  engram ask QUESTION [--collection NAME]\n"
            "                                    a streamed answer with its sources\n"
            "  engram collections | docs [--collection NAME]\n"
            "                                    list what a server holds (client commands take\n"
            "                                    --url/ENGRAM_URL and --api-key/ENGRAM_API_KEY)\n"
            "  engram config                     print every setting as a Markdown table\n"
            "  engram version                    print the version\n"
            "  engram help                       this text\n",
            ENGRAM_VERSION);
}

static int cmd_serve(int argc, char **argv)
{
    config_t cfg;
    char err[256];
    int help;
    if (config_load(&cfg, argc, argv, &help, err, sizeof err)) {
        fprintf(stderr, "engram serve: %s\n", err);
        return 2;
    }
    if (help) {
        config_print_help(stdout);
        return 0;
    }
    if (log_set_level_name(cfg.log_level)) {
        fprintf(stderr, "engram serve: --log-level must be debug, info, warn or error\n");
        return 2;
    }
    if (!cfg.tls_cert[0] != !cfg.tls_key[0]) {
        fprintf(stderr, "engram serve: HTTPS needs both --tls-cert and --tls-key\n");
        return 2;
    }
    if (cfg.ca_bundle[0] && access(cfg.ca_bundle, R_OK) != 0) {
        fprintf(stderr, "engram serve: --ca-bundle %s cannot be read\n", cfg.ca_bundle);
        return 2;
    }
    net_set_ca_bundle(cfg.ca_bundle);
    if (auth_init()) {
        fprintf(stderr, "engram serve: cannot initialise the crypto library\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    store_t *st = NULL;
    int rc = store_open(cfg.data, NULL, &st);
    if (rc) {
        log_error("cannot open data directory %s: %s", cfg.data, store_last_error());
        return 1;
    }
    char serr[512];
    if (catalog_check_settings(st, serr, sizeof serr)) {
        log_error("%s", serr);
        store_close(st);
        return 1;
    }
    embed_config_t remote = {.name = "openai", .url = cfg.embed_url, .model = cfg.embed_model,
                             .api_key = cfg.embed_api_key, .dim = (uint32_t)cfg.embed_dim};
    int has_remote = cfg.embed_url[0] != '\0';
    if (!strcmp(cfg.embedder, "openai") && !has_remote) {
        log_error("--embedder openai needs --embed-url and --embed-model");
        store_close(st);
        return 1;
    }
    embed_registry_t *reg = NULL;
    rc = registry_open(has_remote ? &remote : NULL, cfg.embedder, &reg, serr, sizeof serr);
    if (rc) {
        log_error("embedder: %s", serr);
        store_close(st);
        return 1;
    }
    api_t api = {.st = st, .embedders = reg, .cfg = &cfg, .started_ms = time_now_ms()};
    if (hnsw_cache_new(st, &api.vcache)) {
        log_error("cannot create the vector search cache");
        hnsw_cache_free(api.vcache);
        registry_free(reg);
        store_close(st);
        return 1;
    }
    /* Entities and relations by the LLM when one is configured (falls back
     * to the built-in extractor on any failure; model/extract_entities.h). */
    extract_llm_config_t xllm = {.url = cfg.llm_url[0] ? cfg.llm_url : NULL,
                                 .model = cfg.llm_model, .api_key = cfg.llm_api_key,
                                 .timeout_ms = cfg.llm_timeout_ms};
    rc = ingest_start(st, reg, &xllm, cfg.ingest_threads, &api.ingest);
    if (rc) {
        log_error("cannot start ingestion: %s", engram_strerror(rc));
        hnsw_cache_free(api.vcache);
        registry_free(reg);
        store_close(st);
        return 1;
    }
    rc = api_ops_start(&api); /* rate limits, quotas, cache, link secret */
    if (rc) {
        log_error("cannot start limits and cache: %s", engram_strerror(rc));
        ingest_stop(api.ingest);
        hnsw_cache_free(api.vcache);
        registry_free(reg);
        store_close(st);
        return 1;
    }
    http_server_config_t hc = {
        .listen = cfg.listen,
        .workers = cfg.http_workers,
        .max_connections = cfg.max_connections,
        .max_header_bytes = 16384,
        .max_body_bytes = 1u << 20,
        .header_timeout_ms = cfg.header_timeout_ms,
        .body_timeout_ms = cfg.body_timeout_ms,
        .idle_timeout_ms = cfg.idle_timeout_ms,
        .write_timeout_ms = 30000,
        .on_headers = api_on_headers,
        .handler = api_handle,
        .on_error = api_on_error,
        .on_done = api_on_done,
        .ud = &api,
    };
    /* HTTPS when both files are set; large uploads spool under DATA/tmp. */
    char spool_dir[sizeof cfg.data + 8], herr[600] = "";
    snprintf(spool_dir, sizeof spool_dir, "%s/tmp", cfg.data);
    hc.tls_cert = cfg.tls_cert[0] ? cfg.tls_cert : NULL;
    hc.tls_key = cfg.tls_key[0] ? cfg.tls_key : NULL;
    hc.spool_dir = spool_dir;
    hc.error = herr;
    hc.error_size = sizeof herr;
    rc = http_server_create(&hc, &the_server);
    if (rc) {
        if (herr[0]) log_error("%s", herr);
        else log_error("cannot listen on %s: %s", cfg.listen, engram_strerror(rc));
        api_ops_stop(&api);
        ingest_stop(api.ingest);
        hnsw_cache_free(api.vcache);
        registry_free(reg);
        store_close(st);
        return 1;
    }
    api.server = the_server;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char host[128];
    snprintf(host, sizeof host, "%s", cfg.listen);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0';
    if (!host[0]) snprintf(host, sizeof host, "0.0.0.0");
    log_info("listening on %s://%s:%d (data %s, engram %s)", hc.tls_cert ? "https" : "http", host,
             http_server_port(the_server), cfg.data, ENGRAM_VERSION);
    api.ready = 1;
    rc = http_server_run(the_server);
    api.ready = 0;
    log_info("shutting down: finishing ingestion in progress");
    /* Documents waiting on an embedding service stay queued for the next
     * start instead of holding the shutdown. */
    registry_cancel(reg);
    ingest_stop(api.ingest);
    http_server_free(the_server);
    the_server = NULL;
    api_ops_stop(&api);
    hnsw_cache_free(api.vcache);
    registry_free(reg);
    store_close(st);
    log_info("stopped cleanly");
    return rc ? 1 : 0;
}

static int cmd_user(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "add") != 0) {
        fprintf(stderr, "usage: engram user add --email E [--admin] [--password P] [--data DIR]\n");
        return 2;
    }
    const char *email = NULL, *password = NULL, *data = getenv("ENGRAM_DATA");
    int admin = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--email") && i + 1 < argc) email = argv[++i];
        else if (!strcmp(argv[i], "--password") && i + 1 < argc) password = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--admin")) admin = 1;
        else {
            fprintf(stderr, "engram user add: unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!email) {
        fprintf(stderr, "engram user add: --email is required\n");
        return 2;
    }
    if (!data) data = "./engram-data";
    char generated[33];
    if (!password) {
        /* The user signs in with the key; a random password keeps login closed
         * until an administrator sets one. */
        unsigned char r[16];
        hash_random(r, sizeof r);
        hash_hex(r, sizeof r, generated);
        password = generated;
    } else if (strlen(password) < 8) {
        fprintf(stderr, "engram user add: the password must have at least 8 characters\n");
        return 2;
    }
    if (auth_init()) return 1;
    store_t *st;
    int rc = store_open(data, NULL, &st);
    if (rc) {
        fprintf(stderr, "engram user add: %s\n", store_last_error());
        return 1;
    }
    char uuid[37], key[AUTH_KEY_LEN + 1];
    int is_admin = 0;
    rc = auth_register(st, email, password, admin, AUTH_REG_ADMIN, uuid, key, &is_admin);
    store_close(st);
    if (rc == ENGRAM_EEXIST) {
        fprintf(stderr, "engram user add: a user with email %s already exists\n", email);
        return 1;
    }
    if (rc == ENGRAM_EINVAL) {
        fprintf(stderr, "engram user add: %s is not a valid email address\n", email);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "engram user add: %s\n", engram_strerror(rc));
        return 1;
    }
    printf("user %s (%s%s)\napi key: %s\n", uuid, email, is_admin ? ", admin" : "", key);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2);
    if (!strcmp(cmd, "user")) return cmd_user(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return eval_beir_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "verify")) return tools_verify_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "stat")) return tools_stat_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "backup")) return backup_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "restore")) return restore_main(argc - 1, argv + 1);
    if (cli_is_command(cmd)) return cli_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "config")) {
        /* The settings table as Markdown: docs/CONFIG.md is this output. */
        config_print_markdown(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("engram %s\n", ENGRAM_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "engram: unknown command \"%s\"\n\n", cmd);
    usage(stderr);
    return 2;
}
