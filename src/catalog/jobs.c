/*
 * jobs.c - ingest jobs and how they end (see catalog.h): the pending jobs
 * and their stored files, progress and failure, taking back the committed
 * parts of a document that failed, and committing finished documents - one
 * at a time or in batches whose postings and vectors are indexed in one pass.
 */
#include <stdio.h>
#include <stdlib.h>

#include "catalog/catalog_internal.h"
#include "index/bm25.h"
#include "index/graph.h"
#include "index/hnsw.h"
#include "store/record.h"
#include "util/common.h"
#include "util/timeutil.h"

/* ---- jobs --------------------------------------------------------------- */

int catalog_jobs_pending(store_t *st, ingest_job_t **jobs, size_t *n)
{
    *jobs = NULL;
    *n = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_cursor *c;
    size_t cap = 0;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_JOBS), &c));
    if (!rc) {
        MDB_val k, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (r == 0) {
            if (k.mv_size != 8 || v.mv_size != 24) { r = ENGRAM_ECORRUPT; break; }
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                ingest_job_t *nj = eg_realloc(*jobs, cap * sizeof *nj);
                if (!nj) { r = ENGRAM_ENOMEM; break; }
                *jobs = nj;
            }
            const unsigned char *vp = v.mv_data;
            ingest_job_t *j = &(*jobs)[(*n)++];
            j->job_id = be64_get(k.mv_data);
            j->ws = be64_get(vp);
            j->coll = be64_get(vp + 8);
            j->doc = be64_get(vp + 16);
            r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    }
    store_read_end(st, txn);
    if (rc) { eg_free(*jobs); *jobs = NULL; *n = 0; }
    return rc;
}

/* The job's document record, its collection's config and its stored file
 * (pointing into the map: valid while txn lives). */
static int job_read(MDB_txn *txn, store_t *st, const ingest_job_t *job, json_t **rec,
                    coll_config_t *cfg, MDB_val *file)
{
    int rc = catalog_doc_get_internal(txn, st, job->ws, job->coll, job->doc, rec);
    if (!rc) rc = catalog_coll_config(txn, st, job->ws, job->coll, cfg);
    if (rc) return rc;
    store_key_t fk = catalog_key2(job->ws, job->doc);
    MDB_val fkv = skey_val(&fk);
    return store_status(mdb_get(txn, store_dbi(st, DB_FILES), &fkv, file));
}

int catalog_job_load(store_t *st, const ingest_job_t *job, char **bytes, size_t *len,
                     char content_type[128], coll_config_t *cfg)
{
    *bytes = NULL;
    *len = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *rec = NULL;
    buf_t b = BUF_INIT;
    MDB_val v;
    rc = job_read(txn, st, job, &rec, cfg, &v);
    if (!rc) rc = store_decompress(v.mv_data, v.mv_size, (size_t)1 << 32, &b);
    store_read_end(st, txn);
    if (!rc) {
        const char *ct = json_get_str(rec, "content_type");
        snprintf(content_type, 128, "%s", ct ? ct : "text/plain");
        *len = b.len;
        *bytes = buf_detach(&b, NULL);
        if (!*bytes) rc = ENGRAM_ENOMEM;
    }
    buf_free(&b);
    json_free(rec);
    return rc;
}

int catalog_job_info(store_t *st, const ingest_job_t *job, char content_type[128],
                     coll_config_t *cfg, uint32_t *committed, size_t *zlen)
{
    *committed = 0;
    *zlen = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    json_t *rec = NULL;
    MDB_val v;
    rc = job_read(txn, st, job, &rec, cfg, &v);
    if (!rc) *zlen = v.mv_size;
    store_read_end(st, txn);
    if (!rc) {
        const char *ct = json_get_str(rec, "content_type");
        const char *status = json_get_str(rec, "status");
        int64_t n = json_get_i64(rec, "chunk_count", 0);
        snprintf(content_type, 128, "%s", ct ? ct : "text/plain");
        if (status && strcmp(status, "completed") && n > 0 && n <= UINT32_MAX)
            *committed = (uint32_t)n;
    }
    json_free(rec);
    return rc;
}

int catalog_job_file_read(store_t *st, const ingest_job_t *job, size_t off, void *dst, size_t cap,
                          size_t *got)
{
    *got = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    store_key_t fk = catalog_key2(job->ws, job->doc);
    MDB_val fkv = skey_val(&fk), v;
    rc = store_status(mdb_get(txn, store_dbi(st, DB_FILES), &fkv, &v));
    if (!rc && off < v.mv_size) {
        size_t n = v.mv_size - off < cap ? v.mv_size - off : cap;
        memcpy(dst, (const char *)v.mv_data + off, n);
        *got = n;
    }
    store_read_end(st, txn);
    return rc;
}

struct rollback_args {
    store_t *st;
    tokenizer_t *tok;
    const ingest_job_t *job;
    size_t max;
    char now[32];
    uint32_t left;
};

static void rollback_edit(jw_t *w, void *ud)
{
    struct rollback_args *a = ud;
    jw_kint(w, "chunk_count", (int64_t)a->left);
    jw_kstr(w, "updated_at", a->now);
}

static int rollback_cb(MDB_txn *txn, void *arg)
{
    struct rollback_args *a = arg;
    const ingest_job_t *j = a->job;
    json_t *rec = NULL;
    int rc = catalog_doc_get_internal(txn, a->st, j->ws, j->coll, j->doc, &rec);
    if (rc) return rc;
    const char *status = json_get_str(rec, "status");
    int64_t n = json_get_i64(rec, "chunk_count", 0);
    int completed = status && !strcmp(status, "completed");
    json_free(rec);
    if (completed || n < 0 || n > UINT32_MAX) return ENGRAM_EINVAL;
    uint32_t have = (uint32_t)n, stop = have > a->max ? have - (uint32_t)a->max : 0;
    catalog_unindex_t un = {.tok = a->tok, .ws = j->ws, .coll = j->coll};
    for (uint32_t i = have; i > stop && !rc; i--) {
        store_key_t dk;
        skey_init(&dk);
        skey_u64(&dk, j->ws);
        skey_u64(&dk, j->doc);
        skey_u32(&dk, i - 1);
        MDB_val dkv = skey_val(&dk), v;
        rc = mdb_get(txn, store_dbi(a->st, DB_DOC_CHUNKS), &dkv, &v);
        if (rc) { rc = store_status(rc); break; }
        if (v.mv_size != 8) { rc = ENGRAM_ECORRUPT; break; }
        uint64_t chunk = be64_get(v.mv_data);
        if ((rc = catalog_chunk_unindex(txn, a->st, &un, chunk))) break;
        store_key_t ck = catalog_key3(j->ws, j->coll, chunk);
        MDB_val ckv = skey_val(&ck);
        int r = mdb_del(txn, store_dbi(a->st, DB_CHUNKS), &ckv, NULL);
        if (r && r != MDB_NOTFOUND) { rc = store_status(r); break; }
        rc = store_status(mdb_del(txn, store_dbi(a->st, DB_DOC_CHUNKS), &dkv, NULL));
    }
    if (!rc) rc = catalog_unindex_finish(txn, a->st, &un);
    catalog_unindex_free(&un);
    if (rc) return rc;
    a->left = stop;
    static const char *const skip[] = {"chunk_count", "updated_at", NULL};
    rc = catalog_doc_rewrite(txn, a->st, j->ws, j->coll, j->doc, skip, rollback_edit, a, NULL);
    if (!rc) rc = catalog_coll_add_counts(txn, a->st, j->ws, j->coll, 0, -(int64_t)(have - stop));
    return rc;
}

int catalog_doc_rollback(store_t *st, tokenizer_t *tok, const ingest_job_t *job, size_t max,
                         uint32_t *left)
{
    struct rollback_args a = {.st = st, .tok = tok, .job = job, .max = max ? max : 1};
    time_format_rfc3339(time_now_ms(), a.now);
    int rc = store_write(st, rollback_cb, &a);
    if (!rc) catalog_generation_bump(job->ws, job->coll); /* after the commit: caches */
    *left = rc ? 0 : a.left;
    return rc;
}

struct progress_args {
    store_t *st;
    const ingest_job_t *job;
    const char *status, *message;
    double progress;
    char now[32];
    int done;
    int keep_job;
};

static void progress_edit(jw_t *w, void *ud)
{
    struct progress_args *a = ud;
    jw_kstr(w, "status", a->status);
    jw_kdouble(w, "progress", a->progress);
    jw_kstr(w, "updated_at", a->now);
    if (a->message) jw_kstr(w, "error_message", a->message);
    if (a->done) jw_kstr(w, "processed_at", a->now);
}

static int delete_job(MDB_txn *txn, store_t *st, uint64_t job)
{
    unsigned char jk[8];
    be64_put(jk, job);
    MDB_val jkv = {8, jk};
    int rc = mdb_del(txn, store_dbi(st, DB_JOBS), &jkv, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_status(rc);
}

static int progress_cb(MDB_txn *txn, void *arg)
{
    struct progress_args *a = arg;
    static const char *const skip[] = {"status", "progress", "updated_at", NULL};
    static const char *const skip_done[] = {"status", "progress", "updated_at", "error_message",
                                            "processed_at", NULL};
    int rc = catalog_doc_rewrite(txn, a->st, a->job->ws, a->job->coll, a->job->doc,
                         a->done ? skip_done : skip, progress_edit, a, NULL);
    if (rc == ENGRAM_ENOTFOUND && a->done) rc = 0;
    if (rc) return rc;
    return a->done && !a->keep_job ? delete_job(txn, a->st, a->job->job_id) : 0;
}

int catalog_doc_progress(store_t *st, const ingest_job_t *job, const char *status, double progress)
{
    struct progress_args a = {.st = st, .job = job, .status = status, .progress = progress};
    time_format_rfc3339(time_now_ms(), a.now);
    return store_write(st, progress_cb, &a);
}

int catalog_doc_fail_retry(store_t *st, const ingest_job_t *job, const char *message)
{
    struct progress_args a = {.st = st, .job = job, .status = "failed", .message = message,
                              .progress = 1.0, .done = 1, .keep_job = 1};
    time_format_rfc3339(time_now_ms(), a.now);
    return store_write(st, progress_cb, &a);
}

int catalog_doc_fail(store_t *st, const ingest_job_t *job, const char *message)
{
    struct progress_args a = {.st = st, .job = job, .status = "failed", .message = message,
                              .progress = 1.0, .done = 1};
    time_format_rfc3339(time_now_ms(), a.now);
    return store_write(st, progress_cb, &a);
}

/* ---- index work deferred to the end of a batch ----------------------------
 *
 * In catalog_doc_complete_batch each part commits its chunks, graph entries
 * and document record in a nested transaction of its own, but its BM25
 * postings and vectors are only noted here. Once every part has been tried,
 * those of the parts that committed are indexed in one pass per collection
 * (bm25_add_batch, hnsw_insert_batch), in the batch's transaction: each
 * term's last postings block and each vector block is then written once per
 * batch instead of once per document, which is most of a commit's cost
 * under a stream of small documents. Entries noted by a part whose nested
 * transaction is then aborted are dropped (deferred_truncate). */
typedef struct def_text {
    uint64_t ws, coll, chunk;
    const bm25_terms_t *terms;
} def_text_t;

typedef struct def_vec {
    uint64_t ws, coll, chunk;
    const float *vec;
    uint32_t dim;
} def_vec_t;

typedef struct deferred {
    def_text_t *t;
    size_t nt, capt;
    def_vec_t *v;
    size_t nv, capv;
    bm25_terms_t **owned;   /* term lists built here (chunks that came without) */
    size_t nown, capown;
} deferred_t;

static int defer_text(deferred_t *d, tokenizer_t *tok, uint64_t ws, uint64_t coll, uint64_t chunk,
                      const chunk_in_t *c)
{
    const bm25_terms_t *terms = c->terms;
    if (!terms) {
        if (eg_grow((void **)&d->owned, &d->capown, d->nown, sizeof *d->owned)) return ENGRAM_ENOMEM;
        bm25_terms_t *own = eg_malloc(sizeof *own);
        if (!own) return ENGRAM_ENOMEM;
        int rc = bm25_terms_build(own, tok, c->text, c->len);
        if (rc) { bm25_terms_free(own); eg_free(own); return rc; }
        d->owned[d->nown++] = own;
        terms = own;
    }
    if (eg_grow((void **)&d->t, &d->capt, d->nt, sizeof *d->t)) return ENGRAM_ENOMEM;
    d->t[d->nt++] = (def_text_t){ws, coll, chunk, terms};
    return 0;
}

static int defer_vec(deferred_t *d, uint64_t ws, uint64_t coll, uint64_t chunk, const float *vec,
                     uint32_t dim)
{
    if (eg_grow((void **)&d->v, &d->capv, d->nv, sizeof *d->v)) return ENGRAM_ENOMEM;
    d->v[d->nv++] = (def_vec_t){ws, coll, chunk, vec, dim};
    return 0;
}

static void deferred_truncate(deferred_t *d, size_t nt, size_t nv)
{
    d->nt = nt;
    d->nv = nv;
}

static void deferred_free(deferred_t *d)
{
    for (size_t i = 0; i < d->nown; i++) {
        bm25_terms_free(d->owned[i]);
        eg_free(d->owned[i]);
    }
    eg_free(d->owned);
    eg_free(d->t);
    eg_free(d->v);
    memset(d, 0, sizeof *d);
}

/* Entries are noted in increasing chunk order; sorting by collection keeps
 * that order within each (chunk ids are global and unique). */
static int def_text_cmp(const void *a, const void *b)
{
    const def_text_t *x = a, *y = b;
    if (x->ws != y->ws) return x->ws < y->ws ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int def_vec_cmp(const void *a, const void *b)
{
    const def_vec_t *x = a, *y = b;
    if (x->ws != y->ws) return x->ws < y->ws ? -1 : 1;
    if (x->coll != y->coll) return x->coll < y->coll ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int deferred_run_text(MDB_txn *txn, store_t *st, deferred_t *d)
{
    if (d->nt == 0) return 0;
    qsort(d->t, d->nt, sizeof *d->t, def_text_cmp);
    bm25_chunk_t *c = eg_malloc(d->nt * sizeof *c);
    if (!c) return ENGRAM_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < d->nt && !rc;) {
        size_t j = i;
        for (; j < d->nt && d->t[j].ws == d->t[i].ws && d->t[j].coll == d->t[i].coll; j++)
            c[j - i] = (bm25_chunk_t){d->t[j].chunk, d->t[j].terms};
        rc = bm25_add_batch(txn, st, d->t[i].ws, d->t[i].coll, c, j - i);
        i = j;
    }
    eg_free(c);
    return rc;
}

static int deferred_run_vectors(MDB_txn *txn, store_t *st, deferred_t *d)
{
    if (d->nv == 0) return 0;
    qsort(d->v, d->nv, sizeof *d->v, def_vec_cmp);
    int rc = 0;
    for (size_t i = 0; i < d->nv && !rc;) {
        size_t j = i;
        uint32_t dim = d->v[i].dim;
        while (j < d->nv && d->v[j].ws == d->v[i].ws && d->v[j].coll == d->v[i].coll) {
            if (d->v[j].dim != dim) return ENGRAM_EINVAL; /* ensure_vector_index refused it */
            j++;
        }
        size_t n = j - i;
        uint64_t *ids = eg_malloc(n * sizeof *ids);
        float *vecs = eg_malloc(n * (size_t)dim * sizeof *vecs);
        if (!ids || !vecs) rc = ENGRAM_ENOMEM;
        for (size_t k = 0; !rc && k < n; k++) {
            ids[k] = d->v[i + k].chunk;
            memcpy(vecs + k * dim, d->v[i + k].vec, dim * sizeof *vecs);
        }
        if (!rc) rc = hnsw_insert_batch(txn, st, d->v[i].ws, d->v[i].coll, ids, vecs, n, dim);
        eg_free(ids);
        eg_free(vecs);
        i = j;
    }
    return rc;
}

struct complete_args {
    store_t *st;
    tokenizer_t *tok;
    deferred_t *defer;  /* NULL: index at once (catalog_doc_complete) */
    const ingest_job_t *job;
    const chunk_in_t *chunks;
    size_t n;
    uint32_t first;   /* document index of chunks[0] */
    int last;         /* the document's last part */
    uint32_t dim;
    uint64_t total_tokens;
    char now[32];
    int gone;         /* out: the document was deleted or is already complete */
};

/* The collection's vector index, created with the first vectors. */
static int ensure_vector_index(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint32_t dim)
{
    hnsw_params_t p;
    int rc = hnsw_params_get(txn, st, ws, coll, &p);
    if (rc == ENGRAM_ENOTFOUND) {
        hnsw_params_t np = {.dim = dim, .metric = HNSW_COSINE, .M = 16, .ef_construction = 200};
        return hnsw_create(txn, st, ws, coll, &np);
    }
    if (rc) return rc;
    return p.dim == dim ? 0 : ENGRAM_EINVAL;
}

static void complete_edit(jw_t *w, void *ud)
{
    struct complete_args *a = ud;
    jw_kstr(w, "status", "completed");
    jw_kdouble(w, "progress", 1.0);
    jw_kint(w, "chunk_count", (int64_t)a->first + (int64_t)a->n);
    jw_kint(w, "total_tokens", (int64_t)a->total_tokens);
    jw_knull(w, "error_message");
    jw_kstr(w, "updated_at", a->now);
    jw_kstr(w, "processed_at", a->now);
}

/* A part that is not the last: still processing, chunk_count = the chunks
 * committed so far (the cursor a restart resumes from). */
static void part_edit(jw_t *w, void *ud)
{
    struct complete_args *a = ud;
    jw_kstr(w, "status", "processing");
    jw_kint(w, "chunk_count", (int64_t)a->first + (int64_t)a->n);
    jw_kstr(w, "updated_at", a->now);
}

static int complete_cb(MDB_txn *txn, void *arg)
{
    struct complete_args *a = arg;
    const ingest_job_t *j = a->job;
    json_t *rec = NULL;
    a->gone = 0;
    int rc = catalog_doc_get_internal(txn, a->st, j->ws, j->coll, j->doc, &rec);
    if (rc == ENGRAM_ENOTFOUND) {
        a->gone = 1;
        return delete_job(txn, a->st, j->job_id);
    }
    if (rc) return rc;
    const char *status = json_get_str(rec, "status");
    int already = status && strcmp(status, "completed") == 0;
    int64_t committed = json_get_i64(rec, "chunk_count", 0);
    json_free(rec);
    if (already) {
        a->gone = 1;
        return delete_job(txn, a->st, j->job_id);
    }
    /* Parts commit in order: this one must continue exactly where the
     * committed ones end. */
    if (committed != (int64_t)a->first) return ENGRAM_EEXIST;
    int vectors = a->n && a->chunks[0].vec && a->dim;
    if (vectors && (rc = ensure_vector_index(txn, a->st, j->ws, j->coll, a->dim))) return rc;
    /* Indexed here (not deferred to the batch's pass), vectors go into the
     * index in one batch after the loop; they must be one contiguous array
     * (the pipeline's are: copy otherwise). */
    int direct = vectors && !a->defer;
    uint64_t *ids = direct ? eg_malloc(a->n * sizeof *ids) : NULL;
    float *packed = NULL;
    const float *vecs = direct ? a->chunks[0].vec : NULL;
    if (direct && !ids) return ENGRAM_ENOMEM;
    for (size_t i = 0; direct && i < a->n; i++) {
        if (a->chunks[i].vec == a->chunks[0].vec + i * a->dim) continue;
        packed = eg_malloc(a->n * (size_t)a->dim * sizeof *packed);
        if (!packed) { eg_free(ids); return ENGRAM_ENOMEM; }
        for (size_t r = 0; r < a->n; r++)
            memcpy(packed + r * a->dim, a->chunks[r].vec, a->dim * sizeof *packed);
        vecs = packed;
        break;
    }
    for (size_t i = 0; i < a->n; i++) {
        uint64_t chunk;
        if ((rc = store_next_id(txn, a->st, "chunk", &chunk))) break;
        rc = catalog_chunk_put(txn, a->st, j->ws, j->coll, j->doc, chunk, a->first + (uint32_t)i,
                               &a->chunks[i]);
        if (rc) break;
        if (a->defer) rc = defer_text(a->defer, a->tok, j->ws, j->coll, chunk, &a->chunks[i]);
        else rc = bm25_add(txn, a->st, a->tok, j->ws, j->coll, chunk, a->chunks[i].text,
                           a->chunks[i].len);
        if (rc) break;
        if (ids) ids[i] = chunk;
        if (vectors && a->defer &&
            (rc = defer_vec(a->defer, j->ws, j->coll, chunk, a->chunks[i].vec, a->dim)))
            break;
        if (a->chunks[i].graph &&
            (rc = graph_add_chunk(txn, a->st, j->ws, j->coll, chunk, a->chunks[i].graph)))
            break;
    }
    if (!rc && direct) rc = hnsw_insert_batch(txn, a->st, j->ws, j->coll, ids, vecs, a->n, a->dim);
    eg_free(ids);
    eg_free(packed);
    if (rc) return rc;
    static const char *const skip[] = {"status", "progress", "chunk_count", "total_tokens",
                                       "error_message", "updated_at", "processed_at", NULL};
    static const char *const skip_part[] = {"status", "chunk_count", "updated_at", NULL};
    rc = catalog_doc_rewrite(txn, a->st, j->ws, j->coll, j->doc, a->last ? skip : skip_part,
                     a->last ? complete_edit : part_edit, a, NULL);
    if (rc) return rc;
    rc = catalog_coll_add_counts(txn, a->st, j->ws, j->coll, 0, (int64_t)a->n);
    if (rc) return rc;
    return a->last ? delete_job(txn, a->st, j->job_id) : 0;
}

struct complete_batch_args {
    store_t *st;
    tokenizer_t *tok;
    doc_done_t *docs;
    size_t n;
    char now[32];
};

/* Each document in a nested transaction of its own: one that fails is
 * rolled back alone; the rest commit together (one fsync for all), their
 * postings and vectors indexed at the end in one pass (deferred_t). If that
 * pass fails the whole batch fails; catalog_doc_complete_batch then tries
 * each document alone. */
static int complete_batch_cb(MDB_txn *txn, void *arg)
{
    struct complete_batch_args *b = arg;
    deferred_t def = {0};
    int rc = 0;
    for (size_t i = 0; i < b->n; i++) {
        doc_done_t *d = &b->docs[i];
        struct complete_args a = {.st = b->st, .tok = b->tok, .defer = &def, .job = &d->job,
                                  .chunks = d->chunks, .n = d->n, .first = d->first,
                                  .last = !d->more, .dim = d->dim, .total_tokens = d->total_tokens};
        memcpy(a.now, b->now, sizeof a.now);
        size_t nt = def.nt, nv = def.nv;
        MDB_txn *child;
        rc = mdb_txn_begin(store_env(b->st), txn, 0, &child);
        if (rc) { rc = store_status(rc); goto out; }
        rc = complete_cb(child, &a);
        if (rc == MDB_MAP_FULL || rc == ENGRAM_EFULL) {
            mdb_txn_abort(child);
            goto out; /* the writer grows the map and runs the whole batch again */
        }
        if (rc) {
            mdb_txn_abort(child);
        } else {
            rc = store_status(mdb_txn_commit(child));
        }
        if (rc) deferred_truncate(&def, nt, nv);
        d->status = rc;
        d->gone = !rc && a.gone;
    }
    rc = deferred_run_text(txn, b->st, &def);
    if (!rc) rc = deferred_run_vectors(txn, b->st, &def);
out:
    deferred_free(&def);
    return rc;
}

int catalog_doc_complete_batch(store_t *st, tokenizer_t *tok, doc_done_t *docs, size_t n)
{
    struct complete_batch_args b = {.st = st, .tok = tok, .docs = docs, .n = n};
    time_format_rfc3339(time_now_ms(), b.now);
    for (size_t i = 0; i < n; i++) docs[i].status = ENGRAM_EAGAIN;
    int rc = store_write(st, complete_batch_cb, &b);
    if (rc && n > 1 && rc != ENGRAM_EFULL && rc != ENGRAM_ECLOSED) {
        /* The shared indexing pass failed: each document alone, so one
         * that cannot be indexed does not fail the others. */
        int all = 0;
        for (size_t i = 0; i < n; i++) {
            int one = catalog_doc_complete_batch(st, tok, &docs[i], 1);
            if (one) all = one;
        }
        return all;
    }
    for (size_t i = 0; i < n; i++) {
        if (rc) docs[i].status = rc;
        else if (!docs[i].status) catalog_generation_bump(docs[i].job.ws, docs[i].job.coll);
    }
    return rc;
}

int catalog_doc_complete(store_t *st, tokenizer_t *tok, const ingest_job_t *job,
                         const chunk_in_t *chunks, size_t n, uint32_t dim, uint64_t total_tokens)
{
    struct complete_args a = {.st = st, .tok = tok, .job = job, .chunks = chunks, .n = n,
                              .last = 1, .dim = dim, .total_tokens = total_tokens};
    time_format_rfc3339(time_now_ms(), a.now);
    int rc = store_write(st, complete_cb, &a);
    if (!rc) catalog_generation_bump(job->ws, job->coll); /* after the commit: caches */
    return rc;
}
