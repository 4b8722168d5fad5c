/*
 * embed_internal.h - what the embedder files share: the embedder object, the
 * per-kind entry points behind embed.c's front door, the cache helpers, and
 * the hash embedder's tunables (for experiments and benchmarks).
 *
 * embed.c owns struct embedder and dispatches on kind. Each kind keeps its
 * own state behind impl. The learned dimension of an openai embedder is
 * written once (0 -> d, compare-and-swap) and read without a lock.
 */
#ifndef ENGRAM_EMBED_INTERNAL_H
#define ENGRAM_EMBED_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model/embed.h"
#include "store/store.h"

typedef enum { EMBED_KIND_HASH = 1, EMBED_KIND_OPENAI = 2 } embed_kind_t;

struct embedder {
    embed_kind_t kind;
    _Atomic uint32_t dim;   /* 0 only for an openai embedder not yet learned */
    char *id;               /* embedder_id, owned */
    void *impl;             /* embed_hash_t or embed_openai_t */
};

/* printf into err[0..errsz) when errsz > 0; always returns status. */
int embed_fail(char *err, size_t errsz, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Scales v[0..dim) to unit length; an all-zero (or denormal-tiny) vector is
 * left all zero. Returns 0, or ENGRAM_EINVAL when v holds a non-finite value. */
int embed_normalize(float *v, uint32_t dim);

/* ---- hash embedder (embed_hash.c) ---------------------------------------- */

typedef enum {
    EMBED_HASH_WORDS_TOKENIZER = 0, /* index/tokenizer.h: normalised, stemmed (BM25's view) */
    EMBED_HASH_WORDS_LIGHT = 1      /* ASCII lower-case, split on non-alphanumerics, no stemming */
} embed_hash_words_t;

typedef struct embed_hash_params {
    uint32_t dim;
    embed_hash_words_t words;
    int stopwords;          /* tokenizer words: 1 drops the English stop words */
    float w_unigram;        /* weights of the three feature kinds */
    float w_bigram;
    float w_char;
    int char_min, char_max; /* character n-gram sizes over "<word>" (code points); 0,0: none */
    int function_words;     /* 1: also drop a longer list of English function words */
} embed_hash_params_t;

/* The parameters of "hash-v1-<dim>" (measured on SciFact, see embed_hash.c). */
embed_hash_params_t embed_hash_default_params(uint32_t dim);

typedef struct embed_hash embed_hash_t;
int embed_hash_open(const embed_hash_params_t *p, embed_hash_t **out, char *err, size_t errsz);
void embed_hash_free(embed_hash_t *h);
/* Embeds n texts into out (n * dim floats). Thread-safe. */
int embed_hash_run(embed_hash_t *h, const char *const *texts, const size_t *lens, size_t n,
                   float *out, char *err, size_t errsz);
/* An embedder around explicit parameters (id "hash-x-<dim>": not the stable
 * v1 identity unless p equals the defaults). For experiments. */
int embedder_open_hash_ex(const embed_hash_params_t *p, embedder_t **out, char *err, size_t errsz);

/* ---- openai embedder (embed_openai.c) ------------------------------------ */

typedef struct embed_openai embed_openai_t;
int embed_openai_open(const embed_config_t *cfg, embed_openai_t **out, char *err, size_t errsz);
void embed_openai_free(embed_openai_t *o);
void embed_openai_cancel(embed_openai_t *o);
/* One service batch: 1 <= n <= EMBED_MAX_BATCH non-empty texts, with
 * retries. The answer's dimension is checked against e->dim (learned into
 * it when 0). out receives n * embedder_dim(e) normalised floats, so the
 * caller sizes out after the dimension is known, or passes out_alloc:
 * when out is NULL, *out_alloc receives an eg_malloc'ed array (caller frees). */
int embed_openai_batch(embedder_t *e, const char *const *texts, const size_t *lens, size_t n,
                       float *out, float **out_alloc, char *err, size_t errsz);

/* ---- cache (embed_cache.c) ----------------------------------------------- */

/* The cache key of text under embedder id: 0 or ENGRAM_ENOMEM. */
int embed_cache_key(const char *id, const char *text, size_t len, unsigned char key[32]);
/* Looks up n texts in one read transaction. For each hit, copies the vector
 * into out + i * dim and sets hit[i] = 1 (else hit[i] = 0). Returns the
 * number of hits (>= 0) or a status (the read could not start). */
long embed_cache_lookup(store_t *st, const char *id, uint32_t dim, const char *const *texts,
                        const size_t *lens, size_t n, float *out, unsigned char *hit);
/* Stores m vectors (vecs + j * dim for texts[idx[j]]) with one store_write. */
int embed_cache_store(store_t *st, const char *id, uint32_t dim, const char *const *texts,
                      const size_t *lens, const size_t *idx, size_t m, const float *vecs);

#endif
