/*
 * retrieve.h - retrieval over a workspace's collections.
 *
 * Keyword mode runs the BM25 index of each target collection (one, or every
 * collection of the workspace) with the metadata filter applied inside the
 * index search, merges by score, cuts to top_k and renders each result with
 * its chunk text, chunk metadata and document. Other modes are answered
 * ENGRAM_EUNSUPPORTED until their indexes exist. The read transaction is
 * closed before this returns, so the caller may stream the answer freely.
 */
#ifndef ENGRAM_RETRIEVE_H
#define ENGRAM_RETRIEVE_H

#include <stdint.h>

#include "index/bm25.h"
#include "index/tokenizer.h"
#include "store/store.h"
#include "util/json.h"

typedef struct retrieve_req {
    const char *query;
    const char *mode;               /* "keyword" */
    int top_k;                      /* 1..100 */
    const char *coll_uuid;          /* NULL: every collection of ws */
    const json_t *metadata_filter;  /* object or NULL */
    int explain;
    bm25_params_t bm25;
} retrieve_req_t;

/* Appends the JSON array of results to w and sets *n_results.
 * ENGRAM_ENOTFOUND: coll_uuid is not the workspace's. */
int retrieve_run(store_t *st, tokenizer_t *tok, uint64_t ws, const retrieve_req_t *r, jw_t *w,
                 size_t *n_results);

/* 1 if metadata (an object) matches every member of filter exactly. */
int retrieve_filter_match(const json_t *filter, const json_t *metadata);

#endif
