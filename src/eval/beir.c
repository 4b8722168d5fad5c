/*
 * beir.c - `engram eval --beir DIR`: index a BEIR corpus into a scratch data
 * directory and measure retrieval quality and latency.
 *
 * How it works: the corpus, queries and test qrels are loaded whole (lines of
 * JSON through util/json.h; the qrels TSV by hand). Each document's
 * "title text" is cut by the ingest chunker (512 words, 128 overlap) and every
 * chunk is indexed into BM25 through store_write in batches of 256 (terms
 * built before the write, postings merged per batch with bm25_add_batch, one
 * commit per batch), in a fresh data directory made with mkdtemp under
 * $TMPDIR (or /tmp) and removed at the end unless --keep. Each test query then retrieves
 * the top 1000 chunks, which are folded into at most 100 unique documents in
 * rank order (a document's score is its best chunk's). The latency of a query
 * is the monotonic time around bm25_search plus that folding, nothing else
 * (not the read transaction, not the metrics).
 *
 * Metrics are pytrec_eval's as BEIR reports them (see beir.h). Documents in
 * the qrels but not in the corpus still count in the ideal DCG and in the
 * recall denominator, as they do there.
 */
#define _XOPEN_SOURCE 700
#include "eval/beir.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "index/bm25.h"
#include "index/hnsw.h"
#include "index/tokenizer.h"
#include "ingest/chunk.h"
#include "model/embed.h"
#include "rag/retrieve.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/json.h"

#define EVAL_CHUNK_SIZE 512
#define EVAL_CHUNK_OVERLAP 128
#define EVAL_TOP_CHUNKS 1000
#define EVAL_TOP_DOCS 100
#define EVAL_BATCH 256
#define EVAL_FUSE_SIDE 400 /* candidates per side for hybrid and hierarchical */
#define NO_DOC UINT32_MAX

double beir_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- loading ------------------------------------------------------------ */

static int read_file(const char *path, buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) buf_append(out, tmp, n);
    int rc = ferror(f) ? ENGRAM_EIO : out->err;
    fclose(f);
    return rc;
}

/* Calls fn on each non-empty line (without \r\n) of b. */
typedef int (*line_fn)(const char *line, size_t len, size_t lineno, void *ud);
static int for_each_line(buf_t *b, line_fn fn, void *ud)
{
    size_t i = 0, lineno = 0;
    while (i < b->len) {
        const char *s = b->data + i;
        const char *nl = memchr(s, '\n', b->len - i);
        size_t n = nl ? (size_t)(nl - s) : b->len - i;
        i += n + (nl ? 1 : 0);
        lineno++;
        size_t m = n;
        while (m > 0 && (s[m - 1] == '\r' || s[m - 1] == ' ' || s[m - 1] == '\t')) m--;
        if (m == 0) continue;
        int rc = fn(s, m, lineno, ud);
        if (rc) return rc;
    }
    return 0;
}

typedef struct loader {
    beir_set_t *set;
    size_t cap;
    char *err;
    size_t errlen;
    /* queries.jsonl, before the qrels pick the test ones */
    char **qids, **qtexts;
    size_t nq, qcap;
    uint32_t *doc_order, *q_order;   /* indexes sorted by id */
    long *q_slot;                    /* query index -> position in set->queries, -1 */
    size_t qslots;                   /* capacity of set->queries */
    int header_seen;
} loader_t;

static int corpus_line(const char *line, size_t len, size_t lineno, void *ud)
{
    loader_t *L = ud;
    beir_set_t *s = L->set;
    json_t *j = NULL;
    json_error_t je;
    int rc = json_parse(line, len, &j, &je);
    if (rc) {
        snprintf(L->err, L->errlen, "corpus.jsonl line %zu: %s", lineno,
                 rc == ENGRAM_EINVAL ? je.message : engram_strerror(rc));
        return rc;
    }
    const json_t *id = json_get(j, "_id"), *title = json_get(j, "title"), *text = json_get(j, "text");
    if (!id || id->type != JSON_STRING) {
        snprintf(L->err, L->errlen, "corpus.jsonl line %zu: no string \"_id\"", lineno);
        json_free(j);
        return ENGRAM_EINVAL;
    }
    if (s->n_docs == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 1024;
        char **ids = eg_realloc(s->doc_ids, cap * sizeof *ids);
        if (ids) s->doc_ids = ids;
        char **tx = eg_realloc(s->doc_texts, cap * sizeof *tx);
        if (tx) s->doc_texts = tx;
        size_t *ln = eg_realloc(s->doc_lens, cap * sizeof *ln);
        if (ln) s->doc_lens = ln;
        if (!ids || !tx || !ln) { json_free(j); return ENGRAM_ENOMEM; }
        L->cap = cap;
    }
    buf_t b = BUF_INIT;
    if (title && title->type == JSON_STRING) buf_append(&b, title->str, title->len);
    buf_putc(&b, ' ');
    if (text && text->type == JSON_STRING) buf_append(&b, text->str, text->len);
    char *docid = eg_strndup(id->str, id->len);
    json_free(j);
    if (b.err || !docid) { buf_free(&b); eg_free(docid); return ENGRAM_ENOMEM; }
    size_t n;
    s->doc_texts[s->n_docs] = buf_detach(&b, &n);
    s->doc_lens[s->n_docs] = n;
    s->doc_ids[s->n_docs] = docid;
    s->n_docs++;
    return 0;
}

static int query_line(const char *line, size_t len, size_t lineno, void *ud)
{
    loader_t *L = ud;
    json_t *j = NULL;
    json_error_t je;
    int rc = json_parse(line, len, &j, &je);
    if (rc) {
        snprintf(L->err, L->errlen, "queries.jsonl line %zu: %s", lineno,
                 rc == ENGRAM_EINVAL ? je.message : engram_strerror(rc));
        return rc;
    }
    const json_t *id = json_get(j, "_id"), *text = json_get(j, "text");
    if (!id || id->type != JSON_STRING || !text || text->type != JSON_STRING) {
        snprintf(L->err, L->errlen, "queries.jsonl line %zu: no string \"_id\"/\"text\"", lineno);
        json_free(j);
        return ENGRAM_EINVAL;
    }
    if (L->nq == L->qcap) {
        size_t cap = L->qcap ? L->qcap * 2 : 256;
        char **a = eg_realloc(L->qids, cap * sizeof *a);
        if (a) L->qids = a;
        char **t = eg_realloc(L->qtexts, cap * sizeof *t);
        if (t) L->qtexts = t;
        if (!a || !t) { json_free(j); return ENGRAM_ENOMEM; }
        L->qcap = cap;
    }
    char *qid = eg_strndup(id->str, id->len), *qt = eg_strndup(text->str, text->len);
    json_free(j);
    if (!qid || !qt) { eg_free(qid); eg_free(qt); return ENGRAM_ENOMEM; }
    L->qids[L->nq] = qid;
    L->qtexts[L->nq] = qt;
    L->nq++;
    return 0;
}

static int idx_cmp(const void *a, const void *b, void *ud)
{
    char **names = ud;
    return strcmp(names[*(const uint32_t *)a], names[*(const uint32_t *)b]);
}

/* Index of name among names[order[0..n)] (sorted), or -1. */
static long find_sorted(char **names, const uint32_t *order, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(names[order[mid]], name);
        if (c == 0) return order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static int qrels_line(const char *line, size_t len, size_t lineno, void *ud)
{
    loader_t *L = ud;
    beir_set_t *s = L->set;
    if (!L->header_seen) { L->header_seen = 1; return 0; }
    char tmp[1024];
    if (len >= sizeof tmp) goto bad;
    memcpy(tmp, line, len);
    tmp[len] = 0;
    char *t1 = strchr(tmp, '\t');
    if (!t1) goto bad;
    *t1++ = 0;
    char *t2 = strchr(t1, '\t');
    if (!t2) goto bad;
    *t2++ = 0;
    char *end;
    long score = strtol(t2, &end, 10);
    if (end == t2) goto bad;
    long qi = find_sorted(L->qids, L->q_order, L->nq, tmp);
    if (qi < 0) return 0; /* a judged query without text: nothing to run */
    long di = find_sorted(s->doc_ids, L->doc_order, s->n_docs, t1);
    if (L->q_slot[qi] < 0) {
        if (s->n_queries == L->qslots) {
            size_t cap = L->qslots ? L->qslots * 2 : 64;
            beir_query_t *nqs = eg_realloc(s->queries, cap * sizeof *nqs);
            if (!nqs) return ENGRAM_ENOMEM;
            s->queries = nqs;
            L->qslots = cap;
        }
        beir_query_t *q = &s->queries[s->n_queries];
        memset(q, 0, sizeof *q);
        q->id = eg_strdup(L->qids[qi]);
        q->text = eg_strdup(L->qtexts[qi]);
        if (!q->id || !q->text) { eg_free(q->id); eg_free(q->text); return ENGRAM_ENOMEM; }
        L->q_slot[qi] = (long)s->n_queries++;
    }
    beir_query_t *q = &s->queries[L->q_slot[qi]];
    if (q->n_rel % 8 == 0) {
        beir_judgement_t *r = eg_realloc(q->rel, (q->n_rel + 8) * sizeof *r);
        if (!r) return ENGRAM_ENOMEM;
        q->rel = r;
    }
    q->rel[q->n_rel++] = (beir_judgement_t){di < 0 ? NO_DOC : (uint32_t)di, (int32_t)score};
    return 0;
bad:
    snprintf(L->err, L->errlen, "qrels line %zu: expected query-id<TAB>corpus-id<TAB>score",
             lineno);
    return ENGRAM_EINVAL;
}

void beir_free(beir_set_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n_docs; i++) {
        eg_free(s->doc_ids[i]);
        eg_free(s->doc_texts[i]);
    }
    eg_free(s->doc_ids);
    eg_free(s->doc_texts);
    eg_free(s->doc_lens);
    for (size_t i = 0; i < s->n_queries; i++) {
        eg_free(s->queries[i].id);
        eg_free(s->queries[i].text);
        eg_free(s->queries[i].rel);
    }
    eg_free(s->queries);
    eg_free(s);
}

int beir_load(const char *dir, beir_set_t **out, char *err, size_t errlen)
{
    char path[4096];
    buf_t b = BUF_INIT;
    loader_t L;
    memset(&L, 0, sizeof L);
    L.err = err;
    L.errlen = errlen;
    if (errlen) err[0] = 0;
    *out = NULL;
    int rc;
    beir_set_t *s = eg_calloc(1, sizeof *s);
    if (!s) return ENGRAM_ENOMEM;
    L.set = s;

    snprintf(path, sizeof path, "%s/corpus.jsonl", dir);
    if ((rc = read_file(path, &b))) { snprintf(err, errlen, "%s: %s", path, engram_strerror(rc)); goto fail; }
    if ((rc = for_each_line(&b, corpus_line, &L))) goto fail;
    buf_reset(&b);
    snprintf(path, sizeof path, "%s/queries.jsonl", dir);
    if ((rc = read_file(path, &b))) { snprintf(err, errlen, "%s: %s", path, engram_strerror(rc)); goto fail; }
    if ((rc = for_each_line(&b, query_line, &L))) goto fail;
    buf_reset(&b);

    L.doc_order = eg_malloc((s->n_docs + 1) * sizeof *L.doc_order);
    L.q_order = eg_malloc((L.nq + 1) * sizeof *L.q_order);
    L.q_slot = eg_malloc((L.nq + 1) * sizeof *L.q_slot);
    if (!L.doc_order || !L.q_order || !L.q_slot) { rc = ENGRAM_ENOMEM; goto fail; }
    for (size_t i = 0; i < s->n_docs; i++) L.doc_order[i] = (uint32_t)i;
    for (size_t i = 0; i < L.nq; i++) { L.q_order[i] = (uint32_t)i; L.q_slot[i] = -1; }
    qsort_r(L.doc_order, s->n_docs, sizeof *L.doc_order, idx_cmp, s->doc_ids);
    qsort_r(L.q_order, L.nq, sizeof *L.q_order, idx_cmp, L.qids);

    snprintf(path, sizeof path, "%s/qrels/test.tsv", dir);
    if ((rc = read_file(path, &b))) { snprintf(err, errlen, "%s: %s", path, engram_strerror(rc)); goto fail; }
    if ((rc = for_each_line(&b, qrels_line, &L))) goto fail;
    if (s->n_docs == 0 || s->n_queries == 0) {
        snprintf(err, errlen, "%s: no documents or no judged queries", dir);
        rc = ENGRAM_EINVAL;
        goto fail;
    }
    *out = s;
    s = NULL;
fail:
    if (rc && errlen && !err[0]) snprintf(err, errlen, "%s", engram_strerror(rc));
    for (size_t i = 0; i < L.nq; i++) { eg_free(L.qids[i]); eg_free(L.qtexts[i]); }
    eg_free(L.qids);
    eg_free(L.qtexts);
    eg_free(L.doc_order);
    eg_free(L.q_order);
    eg_free(L.q_slot);
    buf_free(&b);
    beir_free(s);
    return rc;
}

/* ---- metrics ------------------------------------------------------------ */

static int32_t rel_of(const beir_query_t *q, uint32_t doc)
{
    for (size_t i = 0; i < q->n_rel; i++) if (q->rel[i].doc == doc) return q->rel[i].score;
    return 0;
}

static int int_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x < y) - (x > y);
}

beir_scores_t beir_score_query(const beir_query_t *q, const uint32_t *ranked, size_t n)
{
    beir_scores_t r = {0, 0, 0};
    double dcg = 0, idcg = 0;
    size_t relevant = 0, found = 0;
    for (size_t i = 0; i < q->n_rel; i++) if (q->rel[i].score > 0) relevant++;
    for (size_t i = 0; i < n && i < EVAL_TOP_DOCS; i++) {
        int32_t g = rel_of(q, ranked[i]);
        if (i < 10) dcg += g / log2((double)i + 2.0);
        if (g > 0) {
            found++;
            if (i < 10 && r.mrr10 == 0) r.mrr10 = 1.0 / (double)(i + 1);
        }
    }
    int32_t gains[10];
    size_t ng = 0;
    int32_t *all = eg_malloc((q->n_rel + 1) * sizeof *all);
    if (all) {
        for (size_t i = 0; i < q->n_rel; i++) all[i] = q->rel[i].score;
        qsort(all, q->n_rel, sizeof *all, int_desc);
        for (size_t i = 0; i < q->n_rel && ng < 10; i++) gains[ng++] = all[i];
        eg_free(all);
    }
    for (size_t i = 0; i < ng; i++) if (gains[i] > 0) idcg += gains[i] / log2((double)i + 2.0);
    r.ndcg10 = idcg > 0 ? dcg / idcg : 0;
    r.recall100 = relevant ? (double)found / (double)relevant : 0;
    return r;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

beir_latency_t beir_latency_summary(double *ms, size_t n)
{
    beir_latency_t l = {0, 0, 0};
    if (n == 0) return l;
    qsort(ms, n, sizeof *ms, dbl_cmp);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += ms[i];
    size_t i50 = (size_t)ceil(0.50 * (double)n), i99 = (size_t)ceil(0.99 * (double)n);
    l.p50_ms = ms[i50 ? i50 - 1 : 0];
    l.p99_ms = ms[i99 ? i99 - 1 : 0];
    l.mean_ms = sum / (double)n;
    return l;
}

/* ---- indexing ----------------------------------------------------------- */

typedef struct batch_item {
    uint64_t chunk_id;
    const char *text;
    size_t len;
} batch_item_t;

typedef struct batch {
    store_t *st;
    tokenizer_t *tok;
    embedder_t *emb;   /* NULL: keyword only */
    float *vecs;       /* EVAL_BATCH * dim */
    uint32_t dim;
    batch_item_t items[EVAL_BATCH];
    bm25_terms_t terms[EVAL_BATCH];
    size_t n;
} batch_t;

#define EVAL_WS 1
#define EVAL_COLL 1

static int index_batch(MDB_txn *txn, void *arg)
{
    batch_t *b = arg;
    if (b->emb) {
        hnsw_params_t p;
        int rc = hnsw_params_get(txn, b->st, EVAL_WS, EVAL_COLL, &p);
        if (rc == ENGRAM_ENOTFOUND) {
            hnsw_params_t np = {.dim = b->dim, .metric = HNSW_COSINE, .M = 16, .ef_construction = 200};
            rc = hnsw_create(txn, b->st, EVAL_WS, EVAL_COLL, &np);
        }
        if (rc) return rc;
    }
    bm25_chunk_t chunks[EVAL_BATCH];
    uint64_t ids[EVAL_BATCH];
    for (size_t i = 0; i < b->n; i++) {
        chunks[i] = (bm25_chunk_t){b->items[i].chunk_id, &b->terms[i]};
        ids[i] = b->items[i].chunk_id;
    }
    int rc = bm25_add_batch(txn, b->st, EVAL_WS, EVAL_COLL, chunks, b->n);
    if (!rc && b->emb) rc = hnsw_insert_batch(txn, b->st, EVAL_WS, EVAL_COLL, ids, b->vecs, b->n, b->dim);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

typedef struct eval_opts {
    const char *dir;
    const char *mode;
    int rmode;         /* rmode_t */
    bm25_params_t prm;
    long limit;
    int json, keep, no_chunk;
    tok_options_t tok;
} eval_opts_t;

static int usage(void)
{
    fprintf(stderr,
            "usage: engram eval --beir DIR [--mode keyword|semantic|hybrid|hierarchical]\n"
            "                   [--k1 X] [--b Y]\n"
            "                   [--limit-queries N] [--json] [--keep]\n"
            "                   [--stemmer porter|english|none] [--stopwords on|off] [--no-chunk]\n");
    return 2;
}

static int parse_args(int argc, char **argv, eval_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->mode = "keyword";
    o->prm = BM25_PARAMS_DEFAULT;
    o->tok = TOK_OPTIONS_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--keep")) o->keep = 1;
        else if (!strcmp(a, "--no-chunk")) o->no_chunk = 1;
        else if (!v) { fprintf(stderr, "eval: %s needs a value (or is unknown)\n", a); return -1; }
        else if (!strcmp(a, "--beir")) { o->dir = v; i++; }
        else if (!strcmp(a, "--mode")) { o->mode = v; i++; }
        else if (!strcmp(a, "--k1") || !strcmp(a, "--b")) {
            double d = strtod(v, &end);
            if (end == v || *end || !isfinite(d) || d < 0 || (a[2] == 'b' && d > 1)) {
                fprintf(stderr, "eval: bad value for %s: %s\n", a, v);
                return -1;
            }
            if (a[2] == 'b') o->prm.b = d; else o->prm.k1 = d;
            i++;
        } else if (!strcmp(a, "--limit-queries")) {
            o->limit = strtol(v, &end, 10);
            if (end == v || *end || o->limit < 0) { fprintf(stderr, "eval: bad --limit-queries\n"); return -1; }
            i++;
        } else if (!strcmp(a, "--stemmer")) {
            o->tok.stemmer = strcmp(v, "none") ? v : NULL;
            i++;
        } else if (!strcmp(a, "--stopwords")) {
            if (strcmp(v, "on") && strcmp(v, "off")) { fprintf(stderr, "eval: --stopwords on|off\n"); return -1; }
            o->tok.stopwords = !strcmp(v, "on");
            i++;
        } else {
            fprintf(stderr, "eval: unknown option %s\n", a);
            return -1;
        }
    }
    if (!o->dir) { fprintf(stderr, "eval: --beir DIR is required\n"); return -1; }
    o->rmode = retrieve_mode_parse(o->mode);
    if (o->rmode < 0) {
        fprintf(stderr, "eval: unknown --mode %s (keyword, semantic, hybrid, hierarchical)\n", o->mode);
        return -1;
    }
    if (o->rmode == RMODE_GRAPH) {
        fprintf(stderr, "eval: --mode graph is not available yet\n");
        return -1;
    }
    return 0;
}

static int flush_batch(store_t *st, batch_t *b)
{
    if (b->n == 0) return 0;
    if (b->emb) {
        /* Embed outside the writer: it is CPU (or network) work. */
        const char *texts[EVAL_BATCH];
        size_t lens[EVAL_BATCH];
        char err[256];
        for (size_t i = 0; i < b->n; i++) {
            texts[i] = b->items[i].text;
            lens[i] = b->items[i].len;
        }
        int rc = embedder_embed(b->emb, NULL, texts, lens, b->n, b->vecs, err, sizeof err);
        if (rc) {
            fprintf(stderr, "\neval: embedding: %s\n", err);
            return rc;
        }
    }
    /* Tokenise outside the writer too; the write merges postings. */
    int rc = 0;
    for (size_t i = 0; i < b->n && !rc; i++)
        rc = bm25_terms_build(&b->terms[i], b->tok, b->items[i].text, b->items[i].len);
    if (!rc) rc = store_write(st, index_batch, b);
    for (size_t i = 0; i < b->n; i++) bm25_terms_free(&b->terms[i]);
    b->n = 0;
    return rc;
}

/* Indexes every document; fills chunk_doc (chunk id -> document). */
static int index_corpus(store_t *st, tokenizer_t *tok, embedder_t *emb, const beir_set_t *s,
                        int no_chunk, uint32_t **chunk_doc_out, uint64_t *n_chunks_out)
{
    batch_t *b = eg_calloc(1, sizeof *b);
    if (b && emb) {
        b->emb = emb;
        b->dim = embedder_dim(emb);
        b->vecs = eg_malloc((size_t)EVAL_BATCH * b->dim * sizeof *b->vecs);
        if (!b->vecs) { eg_free(b); b = NULL; }
    }
    uint32_t *cd = eg_malloc((s->n_docs + 1) * sizeof *cd);
    size_t cd_cap = s->n_docs + 1;
    uint64_t next_id = 1;
    int rc = 0;
    if (!b || !cd) { rc = ENGRAM_ENOMEM; goto fail; }
    b->st = st;
    b->tok = tok;
    for (size_t d = 0; d < s->n_docs; d++) {
        chunk_span_t *spans = NULL, whole = {0, s->doc_lens[d], 1, NULL};
        size_t ns = 0;
        if (no_chunk) {
            spans = &whole;
            ns = 1;
        } else if ((rc = chunk_text(s->doc_texts[d], s->doc_lens[d], EVAL_CHUNK_SIZE,
                                    EVAL_CHUNK_OVERLAP, 0, &spans, &ns))) {
            goto fail;
        }
        for (size_t i = 0; i < ns && rc == 0; i++) {
            if (b->n == EVAL_BATCH && (rc = flush_batch(st, b))) break;
            if (next_id >= cd_cap) {
                size_t cap = cd_cap * 2;
                uint32_t *n = eg_realloc(cd, cap * sizeof *n);
                if (!n) { rc = ENGRAM_ENOMEM; break; }
                cd = n;
                cd_cap = cap;
            }
            cd[next_id] = (uint32_t)d;
            b->items[b->n++] = (batch_item_t){next_id++, s->doc_texts[d] + spans[i].start,
                                              spans[i].end - spans[i].start};
        }
        if (spans != &whole) chunk_spans_free(spans, ns);
        if (rc) goto fail;
        if (d % 500 == 0) fprintf(stderr, "\rindexing: %zu/%zu documents", d, s->n_docs);
    }
    if ((rc = flush_batch(st, b))) goto fail;
    fprintf(stderr, "\rindexing: %zu/%zu documents\n", s->n_docs, s->n_docs);
    *chunk_doc_out = cd;
    *n_chunks_out = next_id - 1;
    cd = NULL;
fail:
    eg_free(cd);
    if (b) eg_free(b->vecs);
    eg_free(b);
    return rc;
}

/* Hierarchical document order: a document's best fused chunk, plus a tenth
 * of each further one (as rag/retrieve.c ranks documents). */
typedef struct doc_score {
    uint32_t doc;
    double score;
    size_t first;
} doc_score_t;

static int doc_score_cmp(const void *a, const void *b)
{
    const doc_score_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* One query in a vector mode: ranked document ids into ranked/nr. */
static int search_vectors(MDB_txn *txn, store_t *st, tokenizer_t *tok, embedder_t *emb,
                          const eval_opts_t *o, const char *query, const uint32_t *chunk_doc,
                          uint32_t *seen, uint32_t stamp, float *qv, hnsw_hit_t *vh,
                          bm25_hit_t *bh, uint32_t *ranked, size_t *nr)
{
    char err[256];
    size_t len = strlen(query), nv = 0, nb = 0;
    *nr = 0;
    int rc = embedder_embed(emb, NULL, &query, &len, 1, qv, err, sizeof err);
    if (rc) return rc;
    size_t side = o->rmode == RMODE_SEMANTIC ? EVAL_TOP_CHUNKS : EVAL_FUSE_SIDE;
    rc = hnsw_search(txn, st, EVAL_WS, EVAL_COLL, qv, side, 0, NULL, NULL, vh, &nv);
    if (rc) return rc;
    if (o->rmode == RMODE_SEMANTIC) {
        for (size_t i = 0; i < nv && *nr < EVAL_TOP_DOCS; i++) {
            uint32_t d = chunk_doc[vh[i].id];
            if (seen[d] == stamp) continue;
            seen[d] = stamp;
            ranked[(*nr)++] = d;
        }
        return 0;
    }
    rc = bm25_search(txn, st, tok, EVAL_WS, EVAL_COLL, query, len, &o->prm, NULL, NULL, side, bh, &nb);
    if (rc) return rc;
    retrieve_hit_t *a = eg_calloc(nb + 1, sizeof *a), *v = eg_calloc(nv + 1, sizeof *v), *f = NULL;
    doc_score_t *ds = NULL;
    size_t nf = 0, nd = 0;
    if (!a || !v) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = 0; i < nb; i++) {
        a[i].chunk = bh[i].chunk_id;
        a[i].bm25 = bh[i].score;
        a[i].bm25_rank = (int)i + 1;
    }
    for (size_t i = 0; i < nv; i++) {
        v[i].chunk = vh[i].id;
        v[i].vector = vh[i].score;
        v[i].vector_rank = (int)i + 1;
    }
    if ((rc = retrieve_fuse_rrf(a, nb, v, nv, 60.0, nb + nv, &f, &nf))) goto done;
    if (o->rmode == RMODE_HYBRID) {
        for (size_t i = 0; i < nf && *nr < EVAL_TOP_DOCS; i++) {
            uint32_t d = chunk_doc[f[i].chunk];
            if (seen[d] == stamp) continue;
            seen[d] = stamp;
            ranked[(*nr)++] = d;
        }
        goto done;
    }
    ds = eg_calloc(nf + 1, sizeof *ds);
    if (!ds) { rc = ENGRAM_ENOMEM; goto done; }
    for (size_t i = 0; i < nf; i++) {
        uint32_t d = chunk_doc[f[i].chunk];
        size_t j;
        for (j = 0; j < nd; j++)
            if (ds[j].doc == d) break;
        if (j == nd) ds[nd++] = (doc_score_t){d, f[i].score, i};
        else ds[j].score += 0.1 * f[i].score;
    }
    qsort(ds, nd, sizeof *ds, doc_score_cmp);
    for (size_t i = 0; i < nd && *nr < EVAL_TOP_DOCS; i++) ranked[(*nr)++] = ds[i].doc;
done:
    eg_free(a);
    eg_free(v);
    eg_free(f);
    eg_free(ds);
    return rc;
}

int eval_beir_main(int argc, char **argv)
{
    eval_opts_t o;
    if (parse_args(argc, argv, &o)) return usage();
    char err[512];
    beir_set_t *s = NULL;
    store_t *st = NULL;
    tokenizer_t *tok = NULL;
    uint32_t *chunk_doc = NULL, *ranked = NULL, *seen = NULL;
    bm25_hit_t *hits = NULL;
    embedder_t *emb = NULL;
    hnsw_hit_t *vhits = NULL;
    float *qv = NULL;
    double *lat = NULL;
    char dir[4096] = "";
    int rc, exit_code = 1;
    uint64_t n_chunks = 0;

    if ((rc = beir_load(o.dir, &s, err, sizeof err))) {
        fprintf(stderr, "eval: %s\n", err);
        goto done;
    }
    if ((rc = tokenizer_new_ex(&o.tok, &tok))) {
        fprintf(stderr, "eval: tokenizer: %s\n", engram_strerror(rc));
        goto done;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/engram-eval-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "eval: mkdtemp %s: %s\n", dir, strerror(errno));
        dir[0] = 0;
        goto done;
    }
    if ((rc = store_open(dir, NULL, &st))) {
        fprintf(stderr, "eval: store_open: %s\n", store_last_error());
        goto done;
    }
    if (o.rmode != RMODE_KEYWORD) {
        /* The built-in (lexical) embedder: no model, no service. */
        embed_config_t ec = {.name = "hash"};
        if ((rc = embedder_open(&ec, &emb, err, sizeof err))) {
            fprintf(stderr, "eval: embedder: %s\n", err);
            goto done;
        }
        qv = eg_malloc(embedder_dim(emb) * sizeof *qv);
        vhits = eg_malloc(EVAL_TOP_CHUNKS * sizeof *vhits);
        if (!qv || !vhits) { rc = ENGRAM_ENOMEM; goto done; }
    }
    double t0 = beir_now();
    if ((rc = index_corpus(st, tok, emb, s, o.no_chunk, &chunk_doc, &n_chunks))) {
        fprintf(stderr, "\neval: indexing: %s\n", engram_strerror(rc));
        goto done;
    }
    double index_s = beir_now() - t0;

    size_t nq = s->n_queries;
    if (o.limit > 0 && (size_t)o.limit < nq) nq = (size_t)o.limit;
    hits = eg_malloc(EVAL_TOP_CHUNKS * sizeof *hits);
    ranked = eg_malloc(EVAL_TOP_DOCS * sizeof *ranked);
    seen = eg_calloc(s->n_docs, sizeof *seen);
    lat = eg_malloc((nq + 1) * sizeof *lat);
    if (!hits || !ranked || !seen || !lat) { rc = ENGRAM_ENOMEM; goto done; }
    double ndcg = 0, recall = 0, mrr = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        const beir_query_t *q = &s->queries[qi];
        MDB_txn *txn;
        if ((rc = store_read_begin(st, &txn))) goto search_failed;
        size_t nh = 0, nr = 0;
        double q0 = beir_now();
        if (o.rmode != RMODE_KEYWORD)
            rc = search_vectors(txn, st, tok, emb, &o, q->text, chunk_doc, seen, (uint32_t)(qi + 1),
                                qv, vhits, hits, ranked, &nr);
        else
            rc = bm25_search(txn, st, tok, EVAL_WS, EVAL_COLL, q->text, strlen(q->text), &o.prm,
                             NULL, NULL, EVAL_TOP_CHUNKS, hits, &nh);
        for (size_t i = 0; rc == 0 && i < nh && nr < EVAL_TOP_DOCS; i++) {
            uint32_t d = chunk_doc[hits[i].chunk_id];
            if (seen[d] == qi + 1) continue;
            seen[d] = (uint32_t)(qi + 1);
            ranked[nr++] = d;
        }
        lat[qi] = (beir_now() - q0) * 1000.0;
        store_read_end(st, txn);
        if (rc) goto search_failed;
        beir_scores_t sc = beir_score_query(q, ranked, nr);
        ndcg += sc.ndcg10;
        recall += sc.recall100;
        mrr += sc.mrr10;
    }
    beir_latency_t l = beir_latency_summary(lat, nq);
    double dq = nq ? (double)nq : 1.0;
    if (o.json) {
        buf_t b = BUF_INIT;
        jw_t w;
        jw_init(&w, &b);
        jw_obj_begin(&w);
        jw_kstr(&w, "system", o.rmode == RMODE_KEYWORD ? "engram-bm25" : "engram");
        jw_kstr(&w, "mode", o.mode);
        jw_kstr(&w, "dataset", o.dir);
        jw_kint(&w, "queries", (int64_t)nq);
        jw_kint(&w, "documents", (int64_t)s->n_docs);
        jw_kint(&w, "chunks", (int64_t)n_chunks);
        jw_kdouble(&w, "k1", o.prm.k1);
        jw_kdouble(&w, "b", o.prm.b);
        jw_kstr(&w, "stemmer", o.tok.stemmer ? o.tok.stemmer : "none");
        jw_kbool(&w, "stopwords", o.tok.stopwords);
        jw_kdouble(&w, "ndcg@10", ndcg / dq);
        jw_kdouble(&w, "recall@100", recall / dq);
        jw_kdouble(&w, "mrr@10", mrr / dq);
        jw_kdouble(&w, "p50_ms", l.p50_ms);
        jw_kdouble(&w, "p99_ms", l.p99_ms);
        jw_kdouble(&w, "mean_ms", l.mean_ms);
        jw_kdouble(&w, "index_seconds", index_s);
        jw_obj_end(&w);
        if (b.err) { rc = b.err; buf_free(&b); goto done; }
        printf("%s\n", buf_cstr(&b));
        buf_free(&b);
    } else {
        printf("BEIR %s, mode %s%s: %zu queries, %zu documents, %llu chunks; BM25 k1=%g b=%g, "
               "stemmer %s, stop words %s (indexed in %.1f s)\n",
               o.dir, o.mode, emb ? " (hash embedder)" : "", nq, s->n_docs,
               (unsigned long long)n_chunks, o.prm.k1, o.prm.b,
               o.tok.stemmer ? o.tok.stemmer : "none", o.tok.stopwords ? "dropped" : "kept",
               index_s);
        printf("%-8s | %-10s | %-6s | %-8s | %-8s | %-8s\n", "nDCG@10", "Recall@100", "MRR@10",
               "p50 ms", "p99 ms", "mean ms");
        printf("%-8.4f | %-10.4f | %-6.4f | %-8.3f | %-8.3f | %-8.3f\n", ndcg / dq, recall / dq,
               mrr / dq, l.p50_ms, l.p99_ms, l.mean_ms);
    }
    exit_code = 0;
    goto done;
search_failed:
    fprintf(stderr, "eval: search: %s\n", engram_strerror(rc));
done:
    if (st) store_close(st);
    if (dir[0]) {
        if (o.keep) fprintf(stderr, "eval: data directory kept: %s\n", dir);
        else nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    tokenizer_free(tok);
    beir_free(s);
    eg_free(chunk_doc);
    eg_free(ranked);
    eg_free(seen);
    eg_free(hits);
    eg_free(lat);
    eg_free(qv);
    eg_free(vhits);
    embedder_free(emb);
    return exit_code;
}
