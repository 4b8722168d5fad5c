/*
 * embed.c - the embedder front door: open/free, identity, and the embed path
 * that puts the cache in front of a service.
 *
 * How it works. embedder_open checks the configuration and opens the kind's
 * implementation (embed_hash.c or embed_openai.c). embedder_embed for the
 * hash embedder computes every vector directly (cheaper than a cache read).
 * For a service embedder:
 *   1. empty texts become zero rows and are never sent;
 *   2. with a store, the other texts are looked up in DB_EMBED_CACHE in one
 *      short read transaction, ended before any network I/O;
 *   3. the misses are de-duplicated (the same text twice in one call is sent
 *      once) and sent in batches of at most EMBED_MAX_BATCH inputs;
 *   4. each batch's vectors are copied to every row that wants them and,
 *      with a store, written to the cache with one store_write.
 * A failing batch fails the call; batches already done stay cached, so a
 * retried call resumes where it stopped.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/embed_internal.h"
#include "ops/metrics.h"
#include "util/common.h"
#include "util/log.h"

int embed_fail(char *err, size_t errsz, int status, const char *fmt, ...)
{
    if (err && errsz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return status;
}

int embed_normalize(float *v, uint32_t dim)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(v[i])) return ENGRAM_EINVAL;
        ss += (double)v[i] * v[i];
    }
    if (!(ss > 1e-30)) {
        memset(v, 0, (size_t)dim * sizeof *v);
        return 0;
    }
    double inv = 1.0 / sqrt(ss);
    for (uint32_t i = 0; i < dim; i++) v[i] = (float)(v[i] * inv);
    return 0;
}

/* ---- open / free ---------------------------------------------------------- */

static int set_id(embedder_t *e, const char *fmt, const char *s, unsigned u)
{
    char tmp[600];
    if (s)
        snprintf(tmp, sizeof tmp, fmt, s);
    else
        snprintf(tmp, sizeof tmp, fmt, u);
    e->id = eg_strdup(tmp);
    return e->id ? 0 : ENGRAM_ENOMEM;
}

int embedder_open_hash_ex(const embed_hash_params_t *p, embedder_t **out, char *err, size_t errsz)
{
    if (!p || !out) return embed_fail(err, errsz, ENGRAM_EINVAL, "embedder: missing argument");
    *out = NULL;
    embedder_t *e = eg_calloc(1, sizeof *e);
    if (!e) return embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
    e->kind = EMBED_KIND_HASH;
    atomic_init(&e->dim, p->dim);
    embed_hash_params_t def = embed_hash_default_params(p->dim);
    int rc = embed_hash_open(p, (embed_hash_t **)&e->impl, err, errsz);
    if (rc) goto fail;
    rc = memcmp(&def, p, sizeof def) == 0 ? set_id(e, "hash-v1-%u", NULL, p->dim)
                                          : set_id(e, "hash-x-%u", NULL, p->dim);
    if (rc) {
        embed_fail(err, errsz, rc, "out of memory");
        goto fail;
    }
    *out = e;
    return 0;
fail:
    embedder_free(e);
    return rc;
}

int embedder_open(const embed_config_t *cfg, embedder_t **out, char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    if (!cfg || !out) return embed_fail(err, errsz, ENGRAM_EINVAL, "embedder: missing argument");
    *out = NULL;
    const char *name = cfg->name && cfg->name[0] ? cfg->name : "hash";
    if (cfg->dim > EMBED_MAX_DIM)
        return embed_fail(err, errsz, ENGRAM_EINVAL, "embedding dimension %u is over the limit %u",
                          (unsigned)cfg->dim, (unsigned)EMBED_MAX_DIM);
    if (strcmp(name, "hash") == 0) {
        /* memcmp against the defaults in open_hash_ex: make padding equal */
        embed_hash_params_t p = embed_hash_default_params(cfg->dim);
        return embedder_open_hash_ex(&p, out, err, errsz);
    }
    if (strcmp(name, "openai") != 0)
        return embed_fail(err, errsz, ENGRAM_EINVAL,
                          "unknown embedder \"%.40s\": use \"hash\" (built in) or \"openai\"", name);
    embedder_t *e = eg_calloc(1, sizeof *e);
    if (!e) return embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
    e->kind = EMBED_KIND_OPENAI;
    atomic_init(&e->dim, cfg->dim);
    int rc = embed_openai_open(cfg, (embed_openai_t **)&e->impl, err, errsz);
    if (rc) goto fail;
    if ((rc = set_id(e, "openai:%s", cfg->model, 0))) {
        embed_fail(err, errsz, rc, "out of memory");
        goto fail;
    }
    *out = e;
    return 0;
fail:
    embedder_free(e);
    return rc;
}

void embedder_free(embedder_t *e)
{
    if (!e) return;
    if (e->kind == EMBED_KIND_HASH)
        embed_hash_free(e->impl);
    else
        embed_openai_free(e->impl);
    eg_free(e->id);
    eg_free(e);
}

void embedder_cancel(embedder_t *e)
{
    if (e && e->kind == EMBED_KIND_OPENAI) embed_openai_cancel(e->impl);
}

uint32_t embedder_dim(const embedder_t *e)
{
    return e ? atomic_load(&((embedder_t *)e)->dim) : 0;
}

const char *embedder_id(const embedder_t *e) { return e ? e->id : ""; }

const char *embedder_kind(const embedder_t *e)
{
    return e && e->kind == EMBED_KIND_OPENAI ? "openai" : "hash";
}

int embedder_resolve_dim(embedder_t *e, char *err, size_t errsz)
{
    if (!e) return embed_fail(err, errsz, ENGRAM_EINVAL, "embedder: missing argument");
    if (embedder_dim(e) != 0) return 0;
    static const char probe[] = "dimension probe";
    const char *texts[1] = {probe};
    size_t lens[1] = {sizeof probe - 1};
    float *v = NULL;
    int rc = embed_openai_batch(e, texts, lens, 1, NULL, &v, err, errsz);
    eg_free(v);
    return rc;
}

/* ---- embed ---------------------------------------------------------------- */

typedef struct miss {
    uint64_t h;      /* hash of the text, to find duplicates */
    size_t idx;      /* row */
} miss_t;

static int miss_cmp(const void *a, const void *b)
{
    const miss_t *x = a, *y = b;
    if (x->h != y->h) return (x->h > y->h) - (x->h < y->h);
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h ^ n;
}

static int embed_service(embedder_t *e, store_t *st, const char *const *texts, const size_t *lens,
                         size_t n, float *out, char *err, size_t errsz)
{
    uint32_t dim = embedder_dim(e);
    if (dim == 0)
        return embed_fail(err, errsz, ENGRAM_EINVAL,
                          "embedding dimension unknown: set --embed-dim or resolve it first");
    int rc = 0;
    unsigned char *hit = eg_calloc(n, 1);
    miss_t *miss = eg_malloc(n * sizeof *miss);
    size_t *owner = eg_malloc(n * sizeof *owner);   /* row -> row whose vector it copies */
    size_t *uniq = eg_malloc(n * sizeof *uniq);     /* rows actually sent */
    size_t bmax = EG_MIN(n, (size_t)EMBED_MAX_BATCH);
    const char **bt = eg_malloc(bmax * sizeof *bt);
    size_t *bl = eg_malloc(bmax * sizeof *bl);
    float *bv = eg_malloc(bmax * dim * sizeof *bv);
    if (!hit || !miss || !owner || !uniq || !bt || !bl || !bv) {
        rc = embed_fail(err, errsz, ENGRAM_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0);
        if (len == 0 || !texts[i]) {
            memset(out + i * dim, 0, (size_t)dim * sizeof *out);
            hit[i] = 1;
        }
    }
    if (st) {
        long got = embed_cache_lookup(st, e->id, dim, texts, lens, n, out, hit);
        if (got < 0) log_warn("embedding cache unreadable (%s): embedding without it",
                              engram_strerror((int)got));
    }
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        if (hit[i]) continue;
        miss[nm].h = text_hash(texts[i], lens ? lens[i] : strlen(texts[i]));
        miss[nm++].idx = i;
    }
    qsort(miss, nm, sizeof *miss, miss_cmp);
    size_t nu = 0;
    for (size_t j = 0; j < nm; j++) {
        size_t i = miss[j].idx;
        owner[i] = i;
        for (size_t k = j; k-- > 0 && miss[k].h == miss[j].h;) {
            size_t o = miss[k].idx;
            size_t li = lens ? lens[i] : strlen(texts[i]), lo = lens ? lens[o] : strlen(texts[o]);
            if (li == lo && memcmp(texts[i], texts[o], li) == 0 && owner[o] == o) {
                owner[i] = o;
                break;
            }
        }
        if (owner[i] == i) uniq[nu++] = i;
    }
    /* uniq is in hash order; send in row order so batches follow the input */
    for (size_t a = 1; a < nu; a++) {
        size_t v = uniq[a], b = a;
        for (; b > 0 && uniq[b - 1] > v; b--) uniq[b] = uniq[b - 1];
        uniq[b] = v;
    }
    for (size_t s = 0; s < nu; s += EMBED_MAX_BATCH) {
        size_t m = EG_MIN((size_t)EMBED_MAX_BATCH, nu - s);
        for (size_t j = 0; j < m; j++) {
            bt[j] = texts[uniq[s + j]];
            bl[j] = lens ? lens[uniq[s + j]] : strlen(bt[j]);
        }
        if ((rc = embed_openai_batch(e, bt, bl, m, bv, NULL, err, errsz))) goto fail;
        for (size_t j = 0; j < m; j++)
            memcpy(out + uniq[s + j] * dim, bv + j * dim, (size_t)dim * sizeof *bv);
        if (st) {
            int wrc = embed_cache_store(st, e->id, dim, texts, lens, uniq + s, m, bv);
            if (wrc) log_warn("embedding cache write failed (%s)", engram_strerror(wrc));
        }
    }
    for (size_t j = 0; j < nm; j++) {
        size_t i = miss[j].idx;
        if (owner[i] != i) memcpy(out + i * dim, out + owner[i] * dim, (size_t)dim * sizeof *out);
    }
fail:
    eg_free(hit);
    eg_free(miss);
    eg_free(owner);
    eg_free(uniq);
    eg_free(bt);
    eg_free(bl);
    eg_free(bv);
    return rc;
}

int embedder_embed(embedder_t *e, store_t *st, const char *const *texts, const size_t *lens,
                   size_t n, float *out, char *err, size_t errsz)
{
    if (err && errsz) err[0] = '\0';
    if (!e || (n > 0 && (!texts || !out)))
        return embed_fail(err, errsz, ENGRAM_EINVAL, "embedder: missing argument");
    if (n == 0) return 0;
    if (n > SIZE_MAX / EMBED_MAX_DIM / sizeof(float))
        return embed_fail(err, errsz, ENGRAM_EINVAL, "embedder: too many texts");
    if (e->kind == EMBED_KIND_HASH) {
        /* one call of the built-in model; a service counts its requests */
        metrics_inc(MET_EMBED_CALLS);
        int rc = embed_hash_run(e->impl, texts, lens, n, out, err, errsz);
        if (rc) metrics_inc(MET_EMBED_ERRORS);
        return rc;
    }
    return embed_service(e, st, texts, lens, n, out, err, errsz);
}
