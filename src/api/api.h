/*
 * api.h - the /api/v1 HTTP API: routing, credentials, validation, answers.
 *
 * api_on_headers (on the HTTP loop thread, before any body byte is read)
 * finds the route (404 / 405 with Allow), checks the credential (API key in
 * Authorization: Bearer or X-API-Key, or the session cookie) and its scope
 * (401 / 403), and sets the body limit for the route. api_handle (on an
 * HTTP worker) parses the body and runs the route's handler, which calls
 * the services (auth/, catalog/, rag/, ingest/) and renders JSON. Every
 * non-2xx answer carries the error body of API.md.
 */
#ifndef ENGRAM_API_H
#define ENGRAM_API_H

#include <stdint.h>

#include "auth/auth.h"
#include "config.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "store/store.h"

typedef struct embed_registry embed_registry_t;

typedef struct api {
    store_t *st;
    embed_registry_t *embedders;  /* the embedders by name (model/registry.h) */
    struct hnsw_cache *vcache;    /* vector search cache (index/hnsw.h) */
    ingest_t *ingest;
    const config_t *cfg;
    http_server_t *server;
    int64_t started_ms;
    volatile int ready;
    struct api_ops *ops;          /* limits, cache, link secret (routes_ops.c) */
} api_t;

/* Operations state: after store_open (creates the signed-link secret on
 * first use); stop after the HTTP server stopped, before store_close. */
int api_ops_start(api_t *api);
void api_ops_stop(api_t *api);

int api_on_headers(http_request_t *req, void *ud);
void api_handle(http_request_t *req, void *ud);
void api_on_error(http_request_t *req, int status, const char *message, void *ud);
void api_on_done(http_request_t *req, double duration_ms, void *ud);

#endif
