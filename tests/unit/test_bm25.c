/*
 * test_bm25.c - the BM25 index against a naive in-memory scorer, a
 * hand-computed example, corrupted blocks, and tenant isolation.
 *
 * The naive model tokenises every document with the same tokenizer, keeps
 * its term frequencies and length, and scores a query by looking at every
 * document with exactly the formula bm25.c documents (terms summed in byte
 * order of the term, as bm25_search does), so top-k lists must match chunk
 * for chunk and scores to 1e-9.
 */
#include "test.h"

#include <math.h>

#include "index/bm25.h"
#include "index/tokenizer.h"
#include "store/store.h"
#include "util/common.h"

/* ---- helpers ------------------------------------------------------------ */

static unsigned long long rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

typedef struct add_op {
    store_t *st;
    tokenizer_t *tok;
    uint64_t ws, coll;
    size_t n;
    const uint64_t *ids;
    char **texts;
    int remove;
} add_op_t;

static int apply_ops(MDB_txn *txn, void *arg)
{
    add_op_t *o = arg;
    for (size_t i = 0; i < o->n; i++) {
        int rc = o->remove
            ? bm25_remove(txn, o->st, o->tok, o->ws, o->coll, o->ids[i], o->texts[i], strlen(o->texts[i]))
            : bm25_add(txn, o->st, o->tok, o->ws, o->coll, o->ids[i], o->texts[i], strlen(o->texts[i]));
        if (rc) return rc;
    }
    return 0;
}

static int write_docs(store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll, size_t n,
                      const uint64_t *ids, char **texts, int remove)
{
    add_op_t o = {st, tok, ws, coll, n, ids, texts, remove};
    return store_write(st, apply_ops, &o);
}

static int search(store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll, const char *q,
                  bm25_filter_fn f, void *fud, size_t k, bm25_hit_t *out, size_t *n)
{
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    bm25_params_t p = BM25_PARAMS_DEFAULT;
    rc = bm25_search(txn, st, tok, ws, coll, q, strlen(q), &p, f, fud, k, out, n);
    store_read_end(st, txn);
    return rc;
}

/* ---- the naive model ---------------------------------------------------- */

typedef struct nterm { char t[TOK_MAX_TERM + 1]; uint32_t tf; } nterm_t;
typedef struct ndoc {
    uint64_t id;
    int live;
    uint32_t len;
    nterm_t *terms;
    size_t n;
} ndoc_t;

static int nterm_cmp(const void *a, const void *b)
{
    const nterm_t *x = a, *y = b;
    size_t lx = strlen(x->t), ly = strlen(y->t);
    int c = memcmp(x->t, y->t, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

typedef struct bag { nterm_t *v; size_t n, cap; uint32_t ntok; } bag_t;

static int bag_add(const tok_token_t *t, void *ud)
{
    bag_t *b = ud;
    b->ntok++;
    for (size_t i = 0; i < b->n; i++)
        if (strlen(b->v[i].t) == t->len && memcmp(b->v[i].t, t->term, t->len) == 0) { b->v[i].tf++; return 0; }
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->v = realloc(b->v, b->cap * sizeof *b->v);
    }
    memcpy(b->v[b->n].t, t->term, t->len);
    b->v[b->n].t[t->len] = 0;
    b->v[b->n++].tf = 1;
    return 0;
}

static bag_t bag_of(tokenizer_t *tok, const char *text)
{
    bag_t b = {NULL, 0, 0, 0};
    tokenizer_run(tok, text, strlen(text), bag_add, &b);
    if (b.n) qsort(b.v, b.n, sizeof *b.v, nterm_cmp);
    return b;
}

typedef struct nhit { uint64_t id; double s; } nhit_t;
static int nhit_cmp(const void *a, const void *b)
{
    const nhit_t *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Naive top-k: scores every live document. Returns the count. */
static size_t naive_search(ndoc_t *docs, size_t nd, tokenizer_t *tok, const char *q,
                           bm25_filter_fn f, void *fud, size_t k, nhit_t *out)
{
    const double k1 = 0.9, b = 0.4;
    uint64_t N = 0, total = 0;
    for (size_t i = 0; i < nd; i++) if (docs[i].live) { N++; total += docs[i].len; }
    bag_t qb = bag_of(tok, q);
    size_t n = 0;
    nhit_t *all = calloc(nd + 1, sizeof *all);
    if (N == 0 || qb.n == 0) goto done;
    double avg = total > 0 ? (double)total / (double)N : 1.0;
    double kb1 = k1 * (1 - b), kb2 = k1 * b / avg;
    double *widf = calloc(qb.n, sizeof *widf);
    for (size_t t = 0; t < qb.n; t++) {
        uint64_t df = 0;
        for (size_t i = 0; i < nd; i++) {
            if (!docs[i].live) continue;
            for (size_t j = 0; j < docs[i].n; j++) if (!strcmp(docs[i].terms[j].t, qb.v[t].t)) { df++; break; }
        }
        double idf = df ? log(1.0 + ((double)N - (double)df + 0.5) / ((double)df + 0.5)) : 0;
        widf[t] = (double)qb.v[t].tf * idf;
    }
    for (size_t i = 0; i < nd; i++) {
        if (!docs[i].live) continue;
        double s = 0;
        int any = 0;
        for (size_t t = 0; t < qb.n; t++)
            for (size_t j = 0; j < docs[i].n; j++)
                if (!strcmp(docs[i].terms[j].t, qb.v[t].t)) {
                    double tf = docs[i].terms[j].tf;
                    s += widf[t] * (tf / (tf + (kb1 + kb2 * docs[i].len)));
                    any = 1;
                }
        if (!any || (f && !f(docs[i].id, fud))) continue;
        all[n++] = (nhit_t){docs[i].id, s};
    }
    free(widf);
    qsort(all, n, sizeof *all, nhit_cmp);
    if (n > k) n = k;
    memcpy(out, all, n * sizeof *out);
done:
    free(all);
    free(qb.v);
    return n;
}

/* ---- tests -------------------------------------------------------------- */

static store_t *open_store(char **dir)
{
    *dir = test_tmpdir();
    if (!*dir) return NULL;
    store_t *st = NULL;
    if (store_open(*dir, NULL, &st) != 0) {
        fprintf(stderr, "  store_open: %s\n", store_last_error());
        return NULL;
    }
    return st;
}

static tokenizer_t *plain_tokenizer(void)
{
    tokenizer_t *t = NULL;
    tok_options_t o = {NULL, 0};
    return tokenizer_new_ex(&o, &t) == 0 ? t : NULL;
}

TEST(hand_computed_three_docs)
{
    char *dir;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    tokenizer_t *tok = plain_tokenizer();
    REQUIRE(tok);
    char *texts[] = {"apple banana apple", "banana cherry", "cherry cherry cherry date"};
    uint64_t ids[] = {1, 2, 3};
    REQUIRE(write_docs(st, tok, 1, 1, 3, ids, texts, 0) == 0);

    /* N = 3, avg length = 9 / 3 = 3; k1 = 0.9, b = 0.4 */
    bm25_hit_t h[5];
    size_t n = 0;
    REQUIRE(search(st, tok, 1, 1, "apple", NULL, NULL, 5, h, &n) == 0);
    REQUIRE(n == 1);
    CHECK_EQ_INT(h[0].chunk_id, 1);
    /* idf = ln(1 + 2.5/1.5) = ln(8/3); tf 2, len 3: 2 / (2 + 0.9) */
    CHECK_NEAR(h[0].score, 0.67643397, 1e-8);
    CHECK_NEAR(h[0].score, log(8.0 / 3.0) * 2.0 / 2.9, 1e-12);

    REQUIRE(search(st, tok, 1, 1, "banana cherry", NULL, NULL, 5, h, &n) == 0);
    REQUIRE(n == 3);
    /* idf(banana) = idf(cherry) = ln(1 + 1.5/2.5) = ln 1.6
     * doc 2: len 2, norm 0.9 * (0.6 + 0.4 * 2/3) = 0.78: 2 * ln1.6 / 1.78
     * doc 3: cherry tf 3, len 4, norm 1.02: ln1.6 * 3 / 4.02
     * doc 1: banana tf 1, len 3, norm 0.9: ln1.6 / 1.9 */
    CHECK_EQ_INT(h[0].chunk_id, 2);
    CHECK_EQ_INT(h[1].chunk_id, 3);
    CHECK_EQ_INT(h[2].chunk_id, 1);
    CHECK_NEAR(h[0].score, 0.52809397, 1e-8);
    CHECK_NEAR(h[1].score, 0.35074898, 1e-8);
    CHECK_NEAR(h[2].score, 0.24737033, 1e-8);

    /* a repeated query term counts twice */
    REQUIRE(search(st, tok, 1, 1, "apple apple", NULL, NULL, 5, h, &n) == 0);
    REQUIRE(n == 1);
    CHECK_NEAR(h[0].score, 2 * log(8.0 / 3.0) * 2.0 / 2.9, 1e-12);

    /* unknown terms, empty queries, k = 0 */
    REQUIRE(search(st, tok, 1, 1, "zebra", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 0);
    REQUIRE(search(st, tok, 1, 1, "", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 0);
    REQUIRE(search(st, tok, 1, 1, "apple", NULL, NULL, 0, h, &n) == 0);
    CHECK_EQ_INT(n, 0);

    uint64_t N, total;
    MDB_txn *txn;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(bm25_stats(txn, st, 1, 1, &N, &total), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(N, 3);
    CHECK_EQ_INT(total, 9);

    /* ids must grow; the same id twice is refused */
    uint64_t old[] = {2};
    char *t2[] = {"apple"};
    CHECK_EQ_INT(write_docs(st, tok, 1, 1, 1, old, t2, 0), ENGRAM_EEXIST);
    uint64_t lower[] = {0};
    char *t4[] = {"cherry"};
    CHECK_EQ_INT(write_docs(st, tok, 1, 1, 1, lower, t4, 0), ENGRAM_EINVAL);

    tokenizer_free(tok);
    store_close(st);
    test_rmdir(dir);
}

static int keep_odd(uint64_t id, void *ud)
{
    (void)ud;
    return (int)(id & 1);
}

static size_t hits_seen; /* guards against a vacuous comparison */

static int compare_queries(store_t *st, tokenizer_t *tok, ndoc_t *docs, size_t nd,
                           char **vocab, size_t nv, int nqueries, int use_filter)
{
    int bad = 0;
    bm25_hit_t h[100];
    nhit_t e[100];
    for (int qi = 0; qi < nqueries && bad < 5; qi++) {
        char q[512] = "";
        int nt = 1 + (int)(rnd() % 6);
        for (int t = 0; t < nt; t++) {
            /* mostly frequent words, sometimes rare ones, sometimes repeats */
            size_t w = rnd() % 4 == 0 ? rnd() % nv : rnd() % 30;
            strcat(q, vocab[w]);
            strcat(q, " ");
        }
        size_t k = qi % 3 == 0 ? 10 : (qi % 3 == 1 ? 1 : 100);
        size_t n = 0;
        int rc = search(st, tok, 1, 1, q, use_filter ? keep_odd : NULL, NULL, k, h, &n);
        size_t m = naive_search(docs, nd, tok, q, use_filter ? keep_odd : NULL, NULL, k, e);
        int ok = rc == 0 && n == m;
        hits_seen += n;
        for (size_t i = 0; ok && i < n; i++)
            ok = h[i].chunk_id == e[i].id && fabs(h[i].score - e[i].s) <= 1e-9;
        if (!ok) {
            bad++;
            fprintf(stderr, "  query \"%s\" k=%zu: rc %d, %zu hits vs naive %zu\n", q, k, rc, n, m);
            for (size_t i = 0; i < n || i < m; i++)
                fprintf(stderr, "    %zu: %llu %.12f | %llu %.12f\n", i,
                        i < n ? (unsigned long long)h[i].chunk_id : 0ULL, i < n ? h[i].score : 0,
                        i < m ? (unsigned long long)e[i].id : 0ULL, i < m ? e[i].s : 0);
        }
    }
    return bad;
}

TEST(random_corpus_matches_naive)
{
    rng_state = test_seed();
    char *dir;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    tokenizer_t *tok = NULL;
    REQUIRE(tokenizer_new(&tok) == 0);
    enum { NV = 300, ND = 2000 };
    char *vocab[NV];
    for (int i = 0; i < NV; i++) {
        vocab[i] = malloc(16);
        int x = i;
        char *p = vocab[i];
        *p++ = 'q';
        do { *p++ = (char)('a' + x % 26); x /= 26; } while (x);
        *p++ = 'x';
        *p = 0;
    }
    /* Zipf over the vocabulary: P(i) ~ 1 / (i + 1) */
    double cum[NV], z = 0;
    for (int i = 0; i < NV; i++) { z += 1.0 / (i + 1); cum[i] = z; }
    ndoc_t *docs = calloc(ND + 600, sizeof *docs);
    char **texts = calloc(ND + 600, sizeof *texts);
    uint64_t *ids = calloc(ND + 600, sizeof *ids);
    uint64_t id = 0;
    for (int d = 0; d < ND + 600; d++) {
        int len = 1 + (int)(rnd() % 60);
        texts[d] = calloc((size_t)len * 16 + 1, 1);
        for (int j = 0; j < len; j++) {
            double u = (rnd() / 4294967296.0) * z;
            int w = 0;
            while (w < NV - 1 && cum[w] < u) w++;
            strcat(texts[d], vocab[w]);
            strcat(texts[d], j % 7 == 6 ? ". " : " ");
        }
        id += 1 + rnd() % 3; /* gaps between ids */
        ids[d] = id;
        bag_t b = bag_of(tok, texts[d]);
        docs[d] = (ndoc_t){id, 1, b.ntok, b.v, b.n};
    }
    for (int d = 0; d < ND; d += 100) REQUIRE(write_docs(st, tok, 1, 1, 100, ids + d, texts + d, 0) == 0);
    CHECK_EQ_INT(compare_queries(st, tok, docs, ND, vocab, NV, 200, 0), 0);
    CHECK(hits_seen > 200 * 20);
    CHECK_EQ_INT(compare_queries(st, tok, docs, ND, vocab, NV, 50, 1), 0);

    /* remove 30%, then check again */
    uint64_t *rid = calloc(ND, sizeof *rid);
    char **rtx = calloc(ND, sizeof *rtx);
    size_t nr = 0;
    for (int d = 0; d < ND; d++) {
        if (rnd() % 10 < 3) { rid[nr] = ids[d]; rtx[nr++] = texts[d]; docs[d].live = 0; }
    }
    REQUIRE(write_docs(st, tok, 1, 1, nr, rid, rtx, 1) == 0);
    CHECK_EQ_INT(compare_queries(st, tok, docs, ND, vocab, NV, 200, 0), 0);
    /* removing again is harmless */
    REQUIRE(write_docs(st, tok, 1, 1, 10, rid, rtx, 1) == 0);

    /* keep appending after removals */
    REQUIRE(write_docs(st, tok, 1, 1, 600, ids + ND, texts + ND, 0) == 0);
    CHECK_EQ_INT(compare_queries(st, tok, docs, ND + 600, vocab, NV, 100, 0), 0);

    uint64_t N, total, eN = 0, etotal = 0;
    for (int d = 0; d < ND + 600; d++) if (docs[d].live) { eN++; etotal += docs[d].len; }
    MDB_txn *txn;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(bm25_stats(txn, st, 1, 1, &N, &total), 0);
    store_read_end(st, txn);
    CHECK_EQ_INT(N, eN);
    CHECK_EQ_INT(total, etotal);
    char msg[200];
    REQUIRE(store_read_begin(st, &txn) == 0);
    int vr = bm25_verify(txn, st, 1, 1, msg, sizeof msg);
    store_read_end(st, txn);
    if (vr) fprintf(stderr, "  verify: %s\n", msg);
    CHECK_EQ_INT(vr, 0);

    for (int d = 0; d < ND + 600; d++) { free(texts[d]); free(docs[d].terms); }
    for (int i = 0; i < NV; i++) free(vocab[i]);
    free(texts); free(docs); free(ids); free(rid); free(rtx);
    tokenizer_free(tok);
    store_close(st);
    test_rmdir(dir);
}

typedef struct raw_put {
    store_t *st;
    const void *key;
    size_t klen;
    const void *val;
    size_t vlen;
} raw_put_t;

static int raw_put_cb(MDB_txn *txn, void *arg)
{
    raw_put_t *r = arg;
    MDB_val k = {r->klen, (void *)r->key}, v = {r->vlen, (void *)r->val};
    return store_status(mdb_put(txn, store_dbi(r->st, DB_BM25_POSTINGS), &k, &v, 0));
}

typedef struct add_one {
    store_t *st;
    tokenizer_t *tok;
    uint64_t id;
    const char *text;
    int remove;
} add_one_t;

static int add_one_cb(MDB_txn *txn, void *arg)
{
    add_one_t *a = arg;
    return a->remove ? bm25_remove(txn, a->st, a->tok, 1, 1, a->id, a->text, strlen(a->text))
                     : bm25_add(txn, a->st, a->tok, 1, 1, a->id, a->text, strlen(a->text));
}

TEST(corrupt_blocks_are_reported)
{
    char *dir;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    tokenizer_t *tok = plain_tokenizer();
    REQUIRE(tok);
    char *texts[] = {"apple pear", "apple plum", "pear"};
    uint64_t ids[] = {1, 2, 3};
    REQUIRE(write_docs(st, tok, 1, 1, 3, ids, texts, 0) == 0);

    unsigned char key[16 + 5 + 1 + 8];
    be64_put(key, 1);
    be64_put(key + 8, 1);
    memcpy(key + 16, "apple", 5);
    key[21] = 0;
    be64_put(key + 22, 1);
    static const struct { const char *v; size_t n; } bad[] = {
        {"", 0},
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00", 10},                 /* short header */
        {"\x02\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01\x01", 14}, /* version */
        {"\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x01", 11},             /* count 0 */
        {"\x01\x00\x02\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01\x02", 14}, /* count > entries */
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x80", 12},         /* truncated varint */
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x05\x02", 14}, /* tf > max_tf */
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x02\x00\x01\x01", 14}, /* len < min_len */
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01\x02\x07", 15}, /* trailing byte */
        {"\x01\x00\x02\x00\x00\x00\x01\x00\x00\x00\x01\x00\x01\x02\x00\x01\x02", 17}, /* delta 0 */
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01"
         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01\x02", 23},           /* id overflow */
        {"\x01\x00\x01\x00\x00\x00\x01\x00\x00\x00\x01"
         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x01\x02", 24},       /* varint too long */
    };
    bm25_hit_t h[5];
    size_t n;
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++) {
        raw_put_t r = {st, key, sizeof key, bad[i].v, bad[i].n};
        REQUIRE(store_write(st, raw_put_cb, &r) == 0);
        int rc = search(st, tok, 1, 1, "apple", NULL, NULL, 5, h, &n);
        if (rc != ENGRAM_ECORRUPT) fprintf(stderr, "  pattern %zu: rc %d\n", i, rc);
        CHECK_EQ_INT(rc, ENGRAM_ECORRUPT);
        CHECK_EQ_INT(n, 0);
        char msg[200] = "";
        MDB_txn *txn;
        REQUIRE(store_read_begin(st, &txn) == 0);
        CHECK_EQ_INT(bm25_verify(txn, st, 1, 1, msg, sizeof msg), ENGRAM_ECORRUPT);
        store_read_end(st, txn);
        CHECK(strstr(msg, "apple") != NULL);
        add_one_t a = {st, tok, 10, "apple", 0};
        CHECK_EQ_INT(store_write(st, add_one_cb, &a), ENGRAM_ECORRUPT);
        add_one_t r2 = {st, tok, 1, "apple pear", 1};
        CHECK_EQ_INT(store_write(st, add_one_cb, &r2), ENGRAM_ECORRUPT);
    }
    /* random garbage: any status, never a crash */
    rng_state = test_seed();
    unsigned char g[64];
    for (int i = 0; i < 300; i++) {
        size_t len = rnd() % sizeof g;
        for (size_t j = 0; j < len; j++) g[j] = (unsigned char)(j < 11 && rnd() % 2 ? (j == 0) : rnd());
        raw_put_t r = {st, key, sizeof key, g, len};
        REQUIRE(store_write(st, raw_put_cb, &r) == 0);
        int rc = search(st, tok, 1, 1, "apple pear plum", NULL, NULL, 5, h, &n);
        CHECK(rc == 0 || rc == ENGRAM_ECORRUPT);
    }
    /* other terms are untouched */
    CHECK_EQ_INT(search(st, tok, 1, 1, "pear", NULL, NULL, 5, h, &n), 0);
    CHECK_EQ_INT(n, 2);
    tokenizer_free(tok);
    store_close(st);
    test_rmdir(dir);
}

typedef struct drop_op { store_t *st; uint64_t ws, coll; } drop_op_t;
static int drop_cb(MDB_txn *txn, void *arg)
{
    drop_op_t *d = arg;
    return bm25_drop(txn, d->st, d->ws, d->coll);
}

TEST(collections_and_workspaces_are_separate)
{
    char *dir;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    tokenizer_t *tok = plain_tokenizer();
    REQUIRE(tok);
    uint64_t ids[] = {5, 6};
    char *a[] = {"shared alpha", "alpha alpha"};
    char *b[] = {"shared beta", "beta"};
    char *c[] = {"shared gamma", "gamma shared shared"};
    REQUIRE(write_docs(st, tok, 1, 1, 2, ids, a, 0) == 0);
    REQUIRE(write_docs(st, tok, 1, 2, 2, ids, b, 0) == 0);
    REQUIRE(write_docs(st, tok, 2, 1, 2, ids, c, 0) == 0);
    bm25_hit_t h[5];
    size_t n;
    REQUIRE(search(st, tok, 1, 1, "alpha beta gamma", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(h[0].chunk_id, 6);
    REQUIRE(search(st, tok, 1, 2, "alpha gamma", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 0);
    REQUIRE(search(st, tok, 2, 1, "shared", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(h[0].chunk_id, 6);
    REQUIRE(search(st, tok, 3, 1, "shared", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 0);

    drop_op_t d = {st, 1, 2};
    REQUIRE(store_write(st, drop_cb, &d) == 0);
    REQUIRE(search(st, tok, 1, 2, "shared beta", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 0);
    REQUIRE(search(st, tok, 1, 1, "shared", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 1);
    REQUIRE(search(st, tok, 2, 1, "shared", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 2);
    uint64_t N, total;
    MDB_txn *txn;
    REQUIRE(store_read_begin(st, &txn) == 0);
    CHECK_EQ_INT(bm25_stats(txn, st, 1, 2, &N, &total), 0);
    CHECK_EQ_INT(N, 0);
    CHECK_EQ_INT(bm25_stats(txn, st, 2, 1, &N, &total), 0);
    CHECK_EQ_INT(N, 2);
    CHECK_EQ_INT(total, 5);
    store_read_end(st, txn);
    /* re-adding after a drop works (ids start over) */
    REQUIRE(write_docs(st, tok, 1, 2, 2, ids, b, 0) == 0);
    REQUIRE(search(st, tok, 1, 2, "beta", NULL, NULL, 5, h, &n) == 0);
    CHECK_EQ_INT(n, 2);
    tokenizer_free(tok);
    store_close(st);
    test_rmdir(dir);
}

TEST(many_blocks_and_ties)
{
    /* 1000 identical documents: every score ties, so the top-k must be the
     * lowest ids; the term spans 8 blocks. */
    char *dir;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    tokenizer_t *tok = plain_tokenizer();
    REQUIRE(tok);
    enum { N = 1000 };
    uint64_t *ids = calloc(N, sizeof *ids);
    char **texts = calloc(N, sizeof *texts);
    for (int i = 0; i < N; i++) { ids[i] = 100 + (uint64_t)i * 7; texts[i] = i == 777 ? "same same words" : "same words"; }
    REQUIRE(write_docs(st, tok, 1, 1, N, ids, texts, 0) == 0);
    bm25_hit_t h[20];
    size_t n;
    REQUIRE(search(st, tok, 1, 1, "words", NULL, NULL, 20, h, &n) == 0);
    REQUIRE(n == 20);
    for (int i = 0; i < 20; i++) CHECK_EQ_INT(h[i].chunk_id, ids[i]);
    REQUIRE(search(st, tok, 1, 1, "same", NULL, NULL, 3, h, &n) == 0);
    REQUIRE(n == 3);
    CHECK_EQ_INT(h[0].chunk_id, ids[777]);
    CHECK_EQ_INT(h[1].chunk_id, ids[0]);
    CHECK_EQ_INT(h[2].chunk_id, ids[1]);
    free(ids);
    free(texts);
    tokenizer_free(tok);
    store_close(st);
    test_rmdir(dir);
}

/* ---- the batch writer --------------------------------------------------- */

typedef struct batch_op {
    store_t *st;
    tokenizer_t *tok;
    uint64_t coll;
    size_t n;
    const uint64_t *ids;
    char **texts;
    int remove;
} batch_op_t;

static int batch_cb(MDB_txn *txn, void *arg)
{
    batch_op_t *o = arg;
    bm25_terms_t *terms = calloc(o->n + 1, sizeof *terms);
    bm25_chunk_t *chunks = calloc(o->n + 1, sizeof *chunks);
    int rc = terms && chunks ? 0 : ENGRAM_ENOMEM;
    for (size_t i = 0; i < o->n && !rc; i++) {
        rc = bm25_terms_build(&terms[i], o->tok, o->texts[i], strlen(o->texts[i]));
        chunks[i] = (bm25_chunk_t){o->ids[i], &terms[i]};
    }
    if (!rc) rc = o->remove ? bm25_remove_batch(txn, o->st, 1, o->coll, chunks, o->n)
                            : bm25_add_batch(txn, o->st, 1, o->coll, chunks, o->n);
    for (size_t i = 0; terms && i < o->n; i++) bm25_terms_free(&terms[i]);
    free(terms);
    free(chunks);
    return rc;
}

/* Every record of (1, coll) in db, with the 16-byte ws coll prefix cut off,
 * as "key=value" hex lines. */
static char *dump_db(store_t *st, store_db_t db, uint64_t coll)
{
    MDB_txn *txn;
    if (store_read_begin(st, &txn)) return NULL;
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, store_dbi(st, db), &cur)) { store_read_end(st, txn); return NULL; }
    unsigned char pre[16];
    be64_put(pre, 1);
    be64_put(pre + 8, coll);
    MDB_val k = {16, pre}, v;
    size_t len = 0, cap = 1 << 16;
    char *out = malloc(cap);
    out[0] = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size >= 16 && memcmp(k.mv_data, pre, 16) == 0) {
        size_t need = (k.mv_size + v.mv_size) * 2 + 4;
        if (len + need >= cap) { cap = (len + need) * 2; out = realloc(out, cap); }
        for (size_t i = 16; i < k.mv_size; i++) len += (size_t)sprintf(out + len, "%02x", ((unsigned char *)k.mv_data)[i]);
        out[len++] = '=';
        for (size_t i = 0; i < v.mv_size; i++) len += (size_t)sprintf(out + len, "%02x", ((unsigned char *)v.mv_data)[i]);
        out[len++] = '\n';
        out[len] = 0;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    store_read_end(st, txn);
    return out;
}

/* 0 when collections 1 and 2 hold the same BM25 records, byte for byte,
 * and collection 2 verifies. */
static int same_records(store_t *st)
{
    static const store_db_t dbs[] = {DB_BM25_TERMS, DB_BM25_POSTINGS, DB_BM25_DOCLEN, DB_BM25_STATS};
    int bad = 0;
    for (size_t i = 0; i < 4; i++) {
        char *a = dump_db(st, dbs[i], 1), *b = dump_db(st, dbs[i], 2);
        if (!a || !b || !a[0] || strcmp(a, b) != 0) {
            fprintf(stderr, "  table %zu differs\n", i);
            bad = 1;
        }
        free(a);
        free(b);
    }
    char msg[200];
    MDB_txn *txn;
    if (store_read_begin(st, &txn)) return 1;
    if (bm25_verify(txn, st, 1, 2, msg, sizeof msg)) {
        fprintf(stderr, "  verify: %s\n", msg);
        bad = 1;
    }
    store_read_end(st, txn);
    return bad;
}

TEST(batch_add_and_remove_store_the_same_bytes_as_one_by_one)
{
    /* Collection 1 gets each chunk with bm25_add, collection 2 the same
     * chunks in batches of random sizes (up to 300, so terms cross several
     * 128-entry blocks within one batch): every record must be identical. */
    rng_state = test_seed();
    char *dir;
    store_t *st = open_store(&dir);
    REQUIRE(st);
    tokenizer_t *tok = NULL;
    REQUIRE(tokenizer_new(&tok) == 0);
    enum { ND = 1500 };
    static const char *words[] = {"protein", "cells", "binding", "the", "of", "receptor", "mouse",
                                  "gene", "expression", "tumour", "growth", "signal", "rare"};
    char **texts = calloc(ND, sizeof *texts);
    uint64_t *ids = calloc(ND, sizeof *ids);
    uint64_t id = 10;
    for (int d = 0; d < ND; d++) {
        int len = (int)(rnd() % 40); /* some chunks have no tokens at all */
        texts[d] = calloc((size_t)len * 12 + 1, 1);
        for (int j = 0; j < len; j++) {
            size_t w = rnd() % 13;
            if (w == 12 && rnd() % 8) w = 0; /* "rare" stays rare */
            strcat(texts[d], words[w]);
            strcat(texts[d], " ");
        }
        id += 1 + rnd() % 5;
        ids[d] = id;
    }
    REQUIRE(write_docs(st, tok, 1, 1, ND, ids, texts, 0) == 0);
    for (size_t d = 0; d < ND;) {
        size_t n = 1 + rnd() % 300;
        if (n > ND - d) n = ND - d;
        batch_op_t o = {st, tok, 2, n, ids + d, texts + d, 0};
        REQUIRE(store_write(st, batch_cb, &o) == 0);
        d += n;
    }
    CHECK_EQ_INT(same_records(st), 0);

    /* Removal: a third at random plus one run of 400 consecutive chunks
     * (a large document: whole blocks empty), one by one in collection 1,
     * in batches of random sizes in collection 2. */
    uint64_t *rid = calloc(ND, sizeof *rid);
    char **rtx = calloc(ND, sizeof *rtx);
    size_t nr = 0;
    for (int d = 0; d < ND; d++) {
        if (d < ND - 1 && ((d >= 500 && d < 900) || rnd() % 3 == 0)) {
            rid[nr] = ids[d];
            rtx[nr++] = texts[d];
        }
    }
    REQUIRE(write_docs(st, tok, 1, 1, nr, rid, rtx, 1) == 0);
    for (size_t d = 0; d < nr;) {
        size_t n = 1 + rnd() % 300;
        if (n > nr - d) n = nr - d;
        batch_op_t o = {st, tok, 2, n, rid + d, rtx + d, 1};
        REQUIRE(store_write(st, batch_cb, &o) == 0);
        d += n;
    }
    CHECK_EQ_INT(same_records(st), 0);
    /* Removing them again changes nothing. */
    batch_op_t again_rm = {st, tok, 2, EG_MIN(nr, 200), rid, rtx, 1};
    REQUIRE(store_write(st, batch_cb, &again_rm) == 0);
    CHECK_EQ_INT(same_records(st), 0);
    free(rid);
    free(rtx);

    /* Refusals leave nothing behind: ids not increasing, a chunk already
     * indexed, an id not above the collection's last. */
    char *before = dump_db(st, DB_BM25_POSTINGS, 2);
    uint64_t down[2] = {id + 10, id + 5}, again[2] = {id + 20, ids[ND - 1]}, low[1] = {ids[0] - 1};
    char *t2[2] = {"protein cells", "gene"};
    batch_op_t bad1 = {st, tok, 2, 2, down, t2, 0}, bad2 = {st, tok, 2, 2, again, t2, 0},
               bad3 = {st, tok, 2, 1, low, t2, 0};
    CHECK_EQ_INT(store_write(st, batch_cb, &bad1), ENGRAM_EINVAL);
    CHECK_EQ_INT(store_write(st, batch_cb, &bad2), ENGRAM_EINVAL);
    CHECK_EQ_INT(store_write(st, batch_cb, &bad3), ENGRAM_EINVAL);
    uint64_t dup[1] = {ids[ND - 1]};
    batch_op_t bad4 = {st, tok, 2, 1, dup, t2, 0};
    CHECK_EQ_INT(store_write(st, batch_cb, &bad4), ENGRAM_EEXIST);
    char *after = dump_db(st, DB_BM25_POSTINGS, 2);
    CHECK(before && after && strcmp(before, after) == 0);
    free(before);
    free(after);

    for (int d = 0; d < ND; d++) free(texts[d]);
    free(texts);
    free(ids);
    tokenizer_free(tok);
    store_close(st);
    test_rmdir(dir);
}
