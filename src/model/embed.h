/*
 * embed.h - text embedders: the built-in lexical "hash" embedder and any
 * OpenAI-compatible /v1/embeddings service, with an embedding cache in LMDB.
 *
 * An embedder turns texts into dim-dimensional float vectors, L2-normalised,
 * so the dot product of two vectors is their cosine. It is opened once from
 * an embed_config_t and then shared by every thread: embedder_embed is
 * thread-safe (ingest workers and HTTP workers call it concurrently).
 *
 *   hash    built in, no model, no service: signed feature hashing of word
 *           unigrams, word bigrams and character n-grams (see embed_hash.c).
 *           It is LEXICAL - it matches shared words and word pieces, it does
 *           not know synonyms or meaning. Deterministic across runs and
 *           machines for a given embedder_id ("hash-v1-<dim>"). Never cached.
 *   openai  POST {url}/v1/embeddings (see embed_openai.c): batched, with
 *           timeouts, retries and strict validation of the answer. Cached in
 *           DB_EMBED_CACHE when a store is passed to embedder_embed.
 *
 * Embedding cache (DB_EMBED_CACHE, see embed_cache.c):
 *   key   sha256(embedder_id || 0x00 || text)                      (32 bytes)
 *   value u32 dim (little-endian) || dim x float32 (little-endian) (the
 *         normalised vector). A value whose size or dimension does not match
 *         the embedder, or that holds a non-finite number, is ignored and
 *         recomputed (then overwritten), never trusted.
 *
 * A text with no features (empty, or only separators for the hash embedder)
 * embeds as the all-zero vector: its dot product with every vector is 0.
 * Empty texts are never sent to a service.
 *
 * Statuses: 0; ENGRAM_EINVAL (bad configuration or arguments, or a dimension
 * that differs from the configured one); ENGRAM_EUPSTREAM (the service failed,
 * timed out or answered something that is not a valid embeddings answer);
 * ENGRAM_ENOMEM. On failure err (when errsz > 0) holds one line a user can
 * act on. The API key never appears in a message or a log line.
 */
#ifndef ENGRAM_EMBED_H
#define ENGRAM_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define EMBED_HASH_DEFAULT_DIM 384
#define EMBED_MAX_DIM 65536
#define EMBED_MAX_BATCH 128          /* inputs per service call */

typedef struct embed_config {
    const char *name;      /* "hash" | "openai"; NULL or "" means "hash" */
    const char *url;       /* openai: base URL, "http(s)://host[:port][/prefix]",
                            * with or without a trailing "/v1" (or the full
                            * ".../embeddings" endpoint) */
    const char *model;     /* openai: model name (required) */
    const char *api_key;   /* openai: sent as "Authorization: Bearer"; NULL/"": none */
    uint32_t dim;          /* 0: default (hash: 384; openai: learned from the
                            * first answer); otherwise every answer must match */
    int timeout_ms;        /* total time of one HTTP attempt; 0: 60000 */
    int connect_timeout_ms;/* 0: 10000 */
    int max_retries;       /* retries after the first attempt; 0: 3; < 0: none */
    /* Backoff before retry r (r = 1, 2, ...): a random delay in
     * [d/2, d] with d = min(retry_base_ms * 2^(r-1), retry_max_ms); a
     * Retry-After header (seconds or HTTP date) replaces it, bounded by
     * retry_max_ms. 0: 500 and 20000. */
    int retry_base_ms;
    int retry_max_ms;
} embed_config_t;

typedef struct embedder embedder_t;

/* Opens an embedder. Nothing is sent to a service here. On failure returns
 * ENGRAM_EINVAL (unknown name, missing url/model, bad url scheme, dim out of
 * 1..EMBED_MAX_DIM for hash or over EMBED_MAX_DIM, negative timeouts) or
 * ENGRAM_ENOMEM, with a message in err; *out is NULL. The config's strings are
 * copied: cfg need not outlive the call. */
int embedder_open(const embed_config_t *cfg, embedder_t **out, char *err, size_t errsz);
/* Releases e. No call on e may be running. NULL is fine. */
void embedder_free(embedder_t *e);

/* The vector dimension; 0 for an openai embedder whose dimension is neither
 * configured nor learned yet (see embedder_resolve_dim). */
uint32_t embedder_dim(const embedder_t *e);
/* Stable identity for caches and the collection record, e.g. "hash-v1-384"
 * or "openai:<model>". Owned by e, valid until embedder_free. */
const char *embedder_id(const embedder_t *e);
/* "hash" or "openai". */
const char *embedder_kind(const embedder_t *e);

/* Makes embedder_dim non-zero: when the dimension is unknown, embeds one
 * short probe text through the service to learn it. Returns 0 or a status of
 * embedder_embed. Thread-safe. */
int embedder_resolve_dim(embedder_t *e, char *err, size_t errsz);

/* Makes running and future service calls of e give up as soon as possible
 * (an in-flight request is aborted, a backoff sleep cut short) with
 * ENGRAM_ECANCELED: for shutdown, so a slow service cannot hold it up.
 * Irreversible. Thread-safe; does nothing for the hash embedder. */
void embedder_cancel(embedder_t *e);

/* Embeds n texts (texts[i] of lens[i] bytes; lens NULL: NUL-terminated) into
 * out: n * embedder_dim(e) floats, row i for text i, each row L2-normalised
 * (or all zero, see above). The dimension must be known before the call
 * (embedder_resolve_dim) unless n == 0. st may be NULL (no cache); with a
 * store, cached vectors are read in one short read transaction before any
 * network I/O and new ones written with one store_write per service batch
 * (a failed cache write is logged, not an error), so the calling thread
 * must not hold a read transaction of st. Thread-safe. On failure out's
 * contents are unspecified. ENGRAM_ECANCELED after embedder_cancel. */
int embedder_embed(embedder_t *e, store_t *st, const char *const *texts, const size_t *lens,
                   size_t n, float *out, char *err, size_t errsz);

#endif
