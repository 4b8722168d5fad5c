/*
 * embed_cache.c - the embedding cache in DB_EMBED_CACHE.
 *
 * Layout (see embed.h):
 *   key   sha256(embedder_id || 0x00 || text)                     32 bytes
 *   value u32 dim (LE) || dim x IEEE-754 float32 (LE)              4 + 4 dim
 * The 0x00 separator keeps ("ab", "c") and ("a", "bc") apart (an id never
 * contains 0x00). Values are little-endian on every host: floats are written
 * and read through their 32-bit patterns.
 *
 * Trust: a value is used only when its size is exactly 4 + 4 dim for the
 * embedder's dimension, its dim field says the same, and every float is
 * finite. Anything else (a flipped byte, a cache written by a service with
 * another dimension under the same model name) is a miss: the vector is
 * recomputed and the entry overwritten. Cached vectors are stored already
 * normalised, as embedder_embed returns them.
 *
 * Lookups run in one short read transaction that copies the vectors out and
 * ends before the caller goes to the network. Stores go through one
 * store_write per batch; the callback only puts (re-runnable). The cache is
 * never pruned: its size grows with the distinct texts embedded (about
 * 4 dim + 100 bytes an entry).
 */
#include <math.h>

#include "model/embed_internal.h"
#include "util/common.h"
#include "util/hash.h"

int embed_cache_key(const char *id, const char *text, size_t len, unsigned char key[32])
{
    size_t il = strlen(id);
    unsigned char stackbuf[4096];
    size_t total = il + 1 + len;
    unsigned char *p = total <= sizeof stackbuf ? stackbuf : eg_malloc(total);
    if (!p) return ENGRAM_ENOMEM;
    memcpy(p, id, il);
    p[il] = 0;
    if (len) memcpy(p + il + 1, text, len);
    hash_sha256(p, total, key);
    if (p != stackbuf) eg_free(p);
    return 0;
}

static inline void le32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}

static inline uint32_t le32_get(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* 1 and v filled when val is a valid entry of dimension dim. */
static int decode(const MDB_val *val, uint32_t dim, float *v)
{
    const unsigned char *p = val->mv_data;
    if (val->mv_size != 4 + (size_t)dim * 4 || le32_get(p) != dim) return 0;
    for (uint32_t i = 0; i < dim; i++) {
        uint32_t bits = le32_get(p + 4 + (size_t)i * 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        if (!isfinite(f)) return 0;
        v[i] = f;
    }
    return 1;
}

long embed_cache_lookup(store_t *st, const char *id, uint32_t dim, const char *const *texts,
                        const size_t *lens, size_t n, float *out, unsigned char *hit)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_dbi dbi = store_dbi(st, DB_EMBED_CACHE);
    long hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (hit[i]) continue;
        unsigned char key[32];
        if (embed_cache_key(id, texts[i], lens ? lens[i] : strlen(texts[i]), key)) continue;
        MDB_val k = {sizeof key, key}, v;
        if (mdb_get(txn, dbi, &k, &v) != 0) continue;
        if (decode(&v, dim, out + i * (size_t)dim)) {
            hit[i] = 1;
            hits++;
        }
    }
    store_read_end(st, txn);
    return hits;
}

typedef struct cache_put {
    store_t *st;
    const unsigned char *keys;  /* m x 32 */
    const unsigned char *vals;  /* m x (4 + 4 dim) */
    size_t m, vsize;
} cache_put_t;

static int cache_put_cb(MDB_txn *txn, void *arg)
{
    cache_put_t *c = arg;
    MDB_dbi dbi = store_dbi(c->st, DB_EMBED_CACHE);
    for (size_t j = 0; j < c->m; j++) {
        MDB_val k = {32, (void *)(c->keys + j * 32)};
        MDB_val v = {c->vsize, (void *)(c->vals + j * c->vsize)};
        int rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc) return store_status(rc);
    }
    return 0;
}

int embed_cache_store(store_t *st, const char *id, uint32_t dim, const char *const *texts,
                      const size_t *lens, const size_t *idx, size_t m, const float *vecs)
{
    if (m == 0) return 0;
    size_t vsize = 4 + (size_t)dim * 4;
    unsigned char *keys = eg_malloc(m * 32);
    unsigned char *vals = eg_malloc(m * vsize);
    int rc = ENGRAM_ENOMEM;
    if (!keys || !vals) goto fail;
    rc = 0;
    for (size_t j = 0; j < m; j++) {
        size_t i = idx[j];
        if ((rc = embed_cache_key(id, texts[i], lens ? lens[i] : strlen(texts[i]), keys + j * 32)))
            goto fail;
        unsigned char *p = vals + j * vsize;
        le32_put(p, dim);
        for (uint32_t d = 0; d < dim; d++) {
            uint32_t bits;
            memcpy(&bits, &vecs[j * (size_t)dim + d], sizeof bits);
            le32_put(p + 4 + (size_t)d * 4, bits);
        }
    }
    cache_put_t c = {st, keys, vals, m, vsize};
    rc = store_write(st, cache_put_cb, &c);
fail:
    eg_free(keys);
    eg_free(vals);
    return rc;
}
