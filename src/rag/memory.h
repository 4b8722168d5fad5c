/*
 * memory.h - lasting facts about a user ("memories"): storage, the
 * weighted search, and access counting.
 *
 * A memory belongs to one user in one workspace; another user's or another
 * workspace's memory is ENGRAM_ENOTFOUND like a missing one.
 *
 * Layout:
 *   DB_MEMORIES  ws(8) memory(8) -> record {"id","mid","user_id","type",
 *                "content","reliability","access_count","metadata",
 *                "created_at","updated_at","last_accessed_at",
 *                "updated_ms","accessed_ms"}
 *                (mid, updated_ms and accessed_ms are internal)
 *   DB_UUIDS     the public id, kind IDK_MEMORY.
 *
 * Search. Every memory of the caller (of the asked types) that shares a
 * content term with the query is scored with five signals in 0..1:
 *   keyword      BM25 (k1 1.2, b 0.75) of the query's content terms over
 *                the candidates' texts, divided by the best candidate's;
 *   vector       cosine of the query's and the memory's term-frequency
 *                vectors (a lexical stand-in for an embedding until
 *                memories get vectors; see docs/CHAT.md);
 *   reliability  the memory's own value;
 *   recency      0.5 ^ (days since updated_at / 30);
 *   frequency    min(1, ln(1 + access_count) / ln(101)).
 * score = sum of weight * signal (default weights 0.35, 0.25, 0.20, 0.15,
 * 0.05). Ties: the more recently updated first. Each memory appears once.
 * With count_access, the memories returned get access_count + 1 and
 * last_accessed_at = now (one write), and the answer shows those values.
 *
 * Thread-safe. JSON returned is owned by the caller.
 */
#ifndef ENGRAM_MEMORY_H
#define ENGRAM_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "index/tokenizer.h"
#include "store/store.h"
#include "util/json.h"

#define MEMORY_CONTENT_MAX 10000
#define MEMORY_RELIABILITY_DEFAULT 0.8
#define MEMORY_HALF_LIFE_DAYS 30.0

/* Types, same numbering as context.h's CTX_MEM_*. */
enum { MEMORY_PROFILE = 0, MEMORY_SEMANTIC, MEMORY_EPISODIC, MEMORY_PROCEDURAL, MEMORY__TYPES };

/* -1 for an unknown name. */
int memory_type_parse(const char *s);
const char *memory_type_name(int type);

enum { MSIG_KEYWORD = 0, MSIG_VECTOR, MSIG_RELIABILITY, MSIG_RECENCY, MSIG_FREQUENCY, MSIG__COUNT };
extern const char *const memory_signal_names[MSIG__COUNT];
extern const double memory_default_weights[MSIG__COUNT];

/* Every function below answers the API's memory object
 * {"id","type","content","reliability","access_count","metadata",
 * "created_at","updated_at","last_accessed_at"}. */
int memory_create(store_t *st, uint64_t ws, const char *user_uuid, int type, const char *content,
                  double reliability, const json_t *metadata, json_t **out);
/* Reading by id does not count as an access. */
int memory_get(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid, json_t **out);
/* The caller's memories (type -1: all), oldest first: *page holds items
 * offset..offset+limit, *total all of them. */
int memory_list(store_t *st, uint64_t ws, const char *user_uuid, int type, size_t limit,
                size_t offset, json_t **page, size_t *total);
/* Changes the given fields (type < 0, content NULL, reliability NULL,
 * metadata NULL: unchanged); updated_at moves. */
int memory_patch(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid, int type,
                 const char *content, const double *reliability, const json_t *metadata,
                 json_t **out);
int memory_delete(store_t *st, uint64_t ws, const char *user_uuid, const char *uuid);

typedef struct memory_hit {
    uint64_t id;
    int type;
    char *content;
    double score;
    double signals[MSIG__COUNT];
    json_t *object;          /* the API object (with the access counted) */
} memory_hit_t;

typedef struct memory_query {
    const char *query;
    unsigned types;          /* bit (1 << type); 0: all */
    size_t top_k;
    double weights[MSIG__COUNT];
    int count_access;        /* count the returned memories as accessed */
    int keep_profile;        /* profile memories are candidates without a match (chat) */
} memory_query_t;

/* Runs the search (see above). *hits (free with memory_hits_free) in
 * score order, at most top_k. */
int memory_search(store_t *st, tokenizer_t *tok, uint64_t ws, const char *user_uuid,
                  const memory_query_t *q, memory_hit_t **hits, size_t *n);
/* Counts ids[0..n) as accessed now (chat uses what went into the prompt). */
int memory_touch(store_t *st, uint64_t ws, const uint64_t *ids, size_t n);
void memory_hits_free(memory_hit_t *h, size_t n);

#endif
