/*
 * bm25.c - the BM25 inverted index in LMDB and its exact Block-Max WAND top-k.
 *
 * Storage (all keys start with ws(8) coll(8), big-endian):
 *   DB_BM25_TERMS     ws coll term                -> varint df
 *   DB_BM25_POSTINGS  ws coll term 0x00 first(8)  -> postings block
 *   DB_BM25_DOCLEN    ws coll chunk(8)            -> u32 length (tokens kept)
 *   DB_BM25_STATS     ws coll                     -> u64 N, u64 total length
 * A postings block is
 *   u8 version (1) | u16 count | u32 max_tf | u32 min_len |
 *   count x (varint delta, varint tf)
 * where the first delta is relative to the key's first(8) (0 when the block
 * was created; removing a block's first chunk keeps the key, so later it may
 * be larger) and every other delta (>= 1) to the previous chunk id. max_tf and
 * min_len bound the block's entries (max tf, min chunk length) for the
 * Block-Max WAND score bounds. Terms never contain 0x00, so "term 0x00" is a
 * prefix no other term's keys share. Blocks of a term cover disjoint,
 * increasing chunk id ranges; a block's range ends where the next begins.
 *
 * Adding a chunk (ids only grow) appends to the term's last block, found with
 * a cursor at "term 0x01" stepped back once; a full block (BM25_BLOCK entries)
 * starts a new one keyed by the new chunk id. Removal rewrites the block that
 * holds the chunk, deleting it when empty; the bounds stay as they were (still
 * valid upper bounds, only less tight).
 *
 * Scoring is Lucene's BM25 (as Anserini uses it): idf = ln(1 + (N - df + 0.5)
 * / (df + 0.5)), term score = idf * tf / (tf + k1 * (1 - b + b * len /
 * avglen)) - without Lucene's old (k1 + 1) factor, as Lucene 8+ does; it does
 * not change rankings. A query term repeated r times weighs r times, like
 * Anserini's bag-of-words queries. Lengths are exact (Lucene stores them
 * lossily; rankings differ only in near ties).
 *
 * Search: one cursor per distinct query term over its block list (pointers
 * into the LMDB map, valid for the read txn; a block is decoded only when a
 * candidate lands in it). Block-Max WAND: terms sorted by current chunk id;
 * the pivot is the first term where the sum of term upper bounds could beat
 * the current k-th score (theta); the block bounds of the terms up to the
 * pivot are then checked for the pivot's chunk, and if they cannot beat theta
 * every one of those terms jumps past the nearest block end. Pruning tests
 * carry a 1e-9 relative margin so rounding can never drop a document that
 * would enter the top-k: the result equals scoring every posting. A candidate
 * enters the heap only when it beats the k-th (strictly, so ties keep the
 * lower chunk id) and passes the filter.
 *
 * Every decoder checks lengths, varints and invariants (increasing ids inside
 * the block's range, 1 <= tf <= max_tf, length >= min_len) and answers
 * ENGRAM_ECORRUPT instead of reading past a value.
 */
#include "index/bm25.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/buf.h"
#include "util/common.h"

#define BLOCK_VERSION 1
#define BLOCK_HDR 11
#define BLOCK_MAX_BYTES (BLOCK_HDR + BM25_BLOCK * 20)
#define KEY_MAX (16 + TOK_MAX_TERM + 1 + 8)
#define DOC_END UINT64_MAX
#define BOUND_MARGIN 1e-9

/* ---- encoding helpers --------------------------------------------------- */

static size_t varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (unsigned char)(v | 0x80); v >>= 7; }
    p[n++] = (unsigned char)v;
    return n;
}

static int varint_get_slow(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (p >= end) return ENGRAM_ECORRUPT;
        unsigned char c = *p++;
        if (shift == 63 && c > 1) return ENGRAM_ECORRUPT;
        r |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) { *pp = p; *v = r; return 0; }
    }
    return ENGRAM_ECORRUPT;
}

/* Most varints of a block are one byte: decode those inline. */
static inline int varint_get(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    if (p < end && *p < 0x80) {
        *v = *p;
        *pp = p + 1;
        return 0;
    }
    return varint_get_slow(pp, end, v);
}

typedef struct key {
    unsigned char b[KEY_MAX];
    size_t len;
} key_t_;

static void key_coll(key_t_ *k, uint64_t ws, uint64_t coll)
{
    be64_put(k->b, ws);
    be64_put(k->b + 8, coll);
    k->len = 16;
}

static void key_term(key_t_ *k, uint64_t ws, uint64_t coll, const char *t, size_t tl)
{
    key_coll(k, ws, coll);
    memcpy(k->b + 16, t, tl);
    k->len = 16 + tl;
}

/* ws coll term sep [first]: sep 0x00 with first, or 0x01 alone (past the term). */
static void key_post(key_t_ *k, uint64_t ws, uint64_t coll, const char *t, size_t tl,
                     int past, uint64_t first)
{
    key_term(k, ws, coll, t, tl);
    k->b[k->len++] = past ? 0x01 : 0x00;
    if (!past) { be64_put(k->b + k->len, first); k->len += 8; }
}

static void key_chunk(key_t_ *k, uint64_t ws, uint64_t coll, uint64_t chunk)
{
    key_coll(k, ws, coll);
    be64_put(k->b + 16, chunk);
    k->len = 24;
}

static MDB_val kval(key_t_ *k)
{
    MDB_val v = {k->len, k->b};
    return v;
}

/* ---- postings blocks ---------------------------------------------------- */

typedef struct block {
    uint32_t n;
    uint32_t max_tf, min_len;
    uint64_t ids[BM25_BLOCK];
    uint32_t tfs[BM25_BLOCK];
    uint32_t lens[BM25_BLOCK];
} block_t;

/* Decodes a block whose key says first; ids must lie in [first, limit). */
static int block_decode(const unsigned char *v, size_t len, uint64_t first, uint64_t limit,
                        block_t *b)
{
    if (len < BLOCK_HDR || v[0] != BLOCK_VERSION) return ENGRAM_ECORRUPT;
    uint32_t n = ((uint32_t)v[1] << 8) | v[2];
    b->max_tf = be32_get(v + 3);
    b->min_len = be32_get(v + 7);
    if (n == 0 || n > BM25_BLOCK || b->max_tf == 0) return ENGRAM_ECORRUPT;
    const unsigned char *p = v + BLOCK_HDR, *end = v + len;
    uint64_t id = first;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t d, tf, dl;
        if (varint_get(&p, end, &d) || varint_get(&p, end, &tf) || varint_get(&p, end, &dl))
            return ENGRAM_ECORRUPT;
        if (i > 0 && d == 0) return ENGRAM_ECORRUPT;
        if (d >= limit - id) return ENGRAM_ECORRUPT; /* id + d must stay below limit */
        id += d;
        if (tf == 0 || tf > b->max_tf || dl < b->min_len || dl > UINT32_MAX) return ENGRAM_ECORRUPT;
        b->ids[i] = id;
        b->tfs[i] = (uint32_t)tf;
        b->lens[i] = (uint32_t)dl;
    }
    if (p != end) return ENGRAM_ECORRUPT;
    b->n = n;
    return 0;
}

/* Encodes b (n >= 1) relative to first into out (BLOCK_MAX_BYTES). */
static size_t block_encode(const block_t *b, uint64_t first, unsigned char *out)
{
    out[0] = BLOCK_VERSION;
    out[1] = (unsigned char)(b->n >> 8);
    out[2] = (unsigned char)b->n;
    be32_put(out + 3, b->max_tf);
    be32_put(out + 7, b->min_len);
    size_t o = BLOCK_HDR;
    uint64_t prev = first;
    for (uint32_t i = 0; i < b->n; i++) {
        o += varint_put(out + o, b->ids[i] - prev);
        o += varint_put(out + o, b->tfs[i]);
        o += varint_put(out + o, b->lens[i]);
        prev = b->ids[i];
    }
    return o;
}

/* Positions cur on the last block of the term; 0 with *found = 0 if none. */
static int postings_last(MDB_cursor *cur, uint64_t ws, uint64_t coll, const char *t,
                         size_t tl, int *found, uint64_t *first, MDB_val *val)
{
    key_t_ k;
    key_post(&k, ws, coll, t, tl, 1, 0);
    MDB_val kv = kval(&k);
    *found = 0;
    int rc = mdb_cursor_get(cur, &kv, val, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(cur, &kv, val, MDB_LAST);
    else if (rc == 0) rc = mdb_cursor_get(cur, &kv, val, MDB_PREV);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return store_status(rc);
    if (kv.mv_size != 16 + tl + 9 || memcmp(kv.mv_data, k.b, 16 + tl) != 0
        || ((unsigned char *)kv.mv_data)[16 + tl] != 0x00) return 0;
    *first = be64_get((unsigned char *)kv.mv_data + 16 + tl + 1);
    *found = 1;
    return 0;
}

/* Positions cur on the block that would hold chunk (last block with
 * first <= chunk); also reports the next block's first (DOC_END if none). */
static int postings_find(MDB_cursor *cur, uint64_t ws, uint64_t coll, const char *t, size_t tl,
                         uint64_t chunk, int *found, uint64_t *first, MDB_val *val)
{
    key_t_ k;
    key_post(&k, ws, coll, t, tl, 0, chunk);
    MDB_val kv = kval(&k);
    *found = 0;
    int rc = mdb_cursor_get(cur, &kv, val, MDB_SET_RANGE);
    if (rc == 0 && kv.mv_size == k.len && memcmp(kv.mv_data, k.b, k.len) == 0) {
        *first = chunk;
        *found = 1;
        return 0;
    }
    if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(cur, &kv, val, MDB_LAST);
    else if (rc == 0) rc = mdb_cursor_get(cur, &kv, val, MDB_PREV);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return store_status(rc);
    if (kv.mv_size != 16 + tl + 9 || memcmp(kv.mv_data, k.b, 16 + tl + 1) != 0) return 0;
    *first = be64_get((unsigned char *)kv.mv_data + 16 + tl + 1);
    *found = 1;
    return 0;
}

/* ---- small records ------------------------------------------------------ */

static int term_df_get(MDB_txn *txn, store_t *st, key_t_ *k, uint64_t *df, int *found)
{
    MDB_val kv = kval(k), v;
    *found = 0;
    int rc = mdb_get(txn, store_dbi(st, DB_BM25_TERMS), &kv, &v);
    if (rc == MDB_NOTFOUND) { *df = 0; return 0; }
    if (rc) return store_status(rc);
    const unsigned char *p = v.mv_data, *end = p + v.mv_size;
    if (varint_get(&p, end, df) || p != end || *df == 0) return ENGRAM_ECORRUPT;
    *found = 1;
    return 0;
}

static int term_df_put(MDB_txn *txn, store_t *st, key_t_ *k, uint64_t df)
{
    MDB_val kv = kval(k);
    int rc;
    if (df == 0) {
        rc = mdb_del(txn, store_dbi(st, DB_BM25_TERMS), &kv, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_status(rc);
    }
    unsigned char b[10];
    MDB_val v = {varint_put(b, df), b};
    return store_status(mdb_put(txn, store_dbi(st, DB_BM25_TERMS), &kv, &v, 0));
}

int bm25_stats(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n_chunks,
               uint64_t *total_len)
{
    if (!txn || !st || !n_chunks || !total_len) return ENGRAM_EINVAL;
    key_t_ k;
    key_coll(&k, ws, coll);
    MDB_val kv = kval(&k), v;
    *n_chunks = *total_len = 0;
    int rc = mdb_get(txn, store_dbi(st, DB_BM25_STATS), &kv, &v);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return store_status(rc);
    if (v.mv_size != 16) return ENGRAM_ECORRUPT;
    *n_chunks = be64_get(v.mv_data);
    *total_len = be64_get((unsigned char *)v.mv_data + 8);
    return 0;
}

static int stats_put(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t n,
                     uint64_t total)
{
    key_t_ k;
    key_coll(&k, ws, coll);
    MDB_val kv = kval(&k);
    if (n == 0) {
        int rc = mdb_del(txn, store_dbi(st, DB_BM25_STATS), &kv, NULL);
        return rc == MDB_NOTFOUND ? 0 : store_status(rc);
    }
    unsigned char b[16];
    be64_put(b, n);
    be64_put(b + 8, total);
    MDB_val v = {16, b};
    return store_status(mdb_put(txn, store_dbi(st, DB_BM25_STATS), &kv, &v, 0));
}

static int doclen_get(MDB_txn *txn, MDB_dbi dbi, uint64_t ws, uint64_t coll, uint64_t chunk,
                      uint32_t *len, int *found)
{
    key_t_ k;
    key_chunk(&k, ws, coll, chunk);
    MDB_val kv = kval(&k), v;
    *found = 0;
    int rc = mdb_get(txn, dbi, &kv, &v);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return store_status(rc);
    if (v.mv_size != 4) return ENGRAM_ECORRUPT;
    *len = be32_get(v.mv_data);
    *found = 1;
    return 0;
}

/* ---- term lists from the tokenizer -------------------------------------- */

static int terms_add(const tok_token_t *t, void *ud)
{
    bm25_terms_t *tl = ud;
    if (tl->n == tl->cap) {
        size_t cap = tl->cap ? tl->cap * 2 : 64;
        bm25_tref_t *v = eg_realloc(tl->v, cap * sizeof *v);
        if (!v) return ENGRAM_ENOMEM;
        tl->v = v;
        tl->cap = cap;
    }
    tl->v[tl->n++] = (bm25_tref_t){(uint32_t)tl->text.len, (uint32_t)t->len, 1};
    buf_append(&tl->text, t->term, t->len);
    if (tl->text.err) return tl->text.err;
    if (tl->text.len > UINT32_MAX / 2) return ENGRAM_ETOOBIG;
    tl->ntok++;
    return 0;
}

/* A term's first 8 bytes, big-endian, zero-padded: comparing these decides
 * most comparisons of terms, and as terms never hold 0x00 the padding orders
 * a shorter term first, as memcmp-then-length does. */
static uint64_t term_prefix(const char *t, uint32_t len)
{
    uint64_t pre = 0;
    for (uint32_t j = 0; j < 8; j++) pre = pre << 8 | (j < len ? (unsigned char)t[j] : 0);
    return pre;
}

/* A token while sorting (term_prefix first). */
typedef struct tok_key {
    uint64_t pre;
    uint32_t off, len;
} tok_key_t;

static int tok_key_cmp(const void *a, const void *b, void *ud)
{
    const tok_key_t *x = a, *y = b;
    if (x->pre != y->pre) return x->pre < y->pre ? -1 : 1;
    const char *base = ud;
    uint32_t m = EG_MIN(x->len, y->len);
    int c = m > 8 ? memcmp(base + x->off + 8, base + y->off + 8, m - 8) : 0;
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

int bm25_terms_build(bm25_terms_t *tl, tokenizer_t *tok, const char *text, size_t len)
{
    memset(tl, 0, sizeof *tl);
    if (!tok || (!text && len)) return ENGRAM_EINVAL;
    if (len > UINT32_MAX / 4) return ENGRAM_ETOOBIG;
    int rc = tokenizer_run(tok, text, len, terms_add, tl);
    if (rc) return rc;
    if (tl->n == 0) return 0;
    tok_key_t *k = eg_malloc(tl->n * sizeof *k);
    if (!k) return ENGRAM_ENOMEM;
    const char *base = tl->text.data;
    for (size_t i = 0; i < tl->n; i++)
        k[i] = (tok_key_t){term_prefix(base + tl->v[i].off, tl->v[i].len), tl->v[i].off, tl->v[i].len};
    qsort_r(k, tl->n, sizeof *k, tok_key_cmp, (void *)base);
    size_t w = 0;
    for (size_t i = 0; i < tl->n; i++) {
        if (i > 0 && tok_key_cmp(&k[i - 1], &k[i], (void *)base) == 0) tl->v[w - 1].tf++;
        else tl->v[w++] = (bm25_tref_t){k[i].off, k[i].len, 1};
    }
    eg_free(k);
    tl->n = w;
    return 0;
}

void bm25_terms_free(bm25_terms_t *tl)
{
    if (!tl) return;
    buf_free(&tl->text);
    eg_free(tl->v);
    memset(tl, 0, sizeof *tl);
}

/* ---- writes ------------------------------------------------------------- */

/* One posting to add: a term of chunks[chunk] (bm25_add_batch). */
typedef struct post_in {
    uint64_t pre;        /* term_prefix */
    const char *term;
    uint32_t len;
    uint32_t tf;
    uint32_t chunk;
} post_in_t;

static post_in_t post_make(const char *term, uint32_t len, uint32_t tf, uint32_t chunk)
{
    return (post_in_t){term_prefix(term, len), term, len, tf, chunk};
}

/* By term (term_prefix first), then by chunk (so by increasing chunk id
 * within a term). */
static int post_cmp(const void *a, const void *b)
{
    const post_in_t *x = a, *y = b;
    if (x->pre != y->pre) return x->pre < y->pre ? -1 : 1;
    uint32_t m = EG_MIN(x->len, y->len);
    int c = m > 8 ? memcmp(x->term + 8, y->term + 8, m - 8) : 0;
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

/* The postings of chunks[0..n) (*total of them), sorted by term then
 * chunk; NULL when out of memory. */
static post_in_t *posts_gather(const bm25_chunk_t *chunks, size_t n, size_t *total)
{
    *total = 0;
    for (size_t i = 0; i < n; i++) *total += chunks[i].terms->n;
    post_in_t *posts = eg_malloc(EG_MAX(*total, 1) * sizeof *posts);
    if (!posts) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const bm25_terms_t *t = chunks[i].terms;
        for (size_t j = 0; j < t->n; j++)
            posts[k++] = post_make(t->text.data + t->v[j].off, t->v[j].len, t->v[j].tf, (uint32_t)i);
    }
    if (n > 1) qsort(posts, *total, sizeof *posts, post_cmp);
    return posts;
}

/* The end of the run of postings of posts[i]'s term. */
static size_t term_run_end(const post_in_t *posts, size_t i, size_t total)
{
    size_t j = i + 1;
    while (j < total && posts[j].len == posts[i].len &&
           memcmp(posts[j].term, posts[i].term, posts[i].len) == 0)
        j++;
    return j;
}

/* What a batch does to one term's postings posts[0..n) (one term,
 * increasing chunks), its blocks and its df. */
typedef int (*term_fn)(MDB_txn *txn, store_t *st, MDB_cursor *cur, uint64_t ws, uint64_t coll,
                       const bm25_chunk_t *chunks, const post_in_t *posts, size_t n, block_t *b);

/* Runs fn on each term of chunks[0..n), in term order. */
static int for_each_term(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                         const bm25_chunk_t *chunks, size_t n, term_fn fn)
{
    size_t total;
    post_in_t *posts = posts_gather(chunks, n, &total);
    block_t *b = eg_malloc(sizeof *b);
    MDB_cursor *cur = NULL;
    int rc = posts && b ? 0 : ENGRAM_ENOMEM;
    if (!rc) rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_BM25_POSTINGS), &cur));
    for (size_t i = 0; !rc && i < total;) {
        size_t j = term_run_end(posts, i, total);
        rc = fn(txn, st, cur, ws, coll, chunks, posts + i, j - i, b);
        i = j;
    }
    if (cur) mdb_cursor_close(cur);
    eg_free(b);
    eg_free(posts);
    return rc;
}

/* Appends the postings posts[0..n) (one term, increasing chunks) to the
 * term's last block, starting new blocks as they fill; each block changed is
 * written once. */
static int term_append(MDB_txn *txn, store_t *st, MDB_cursor *cur, uint64_t ws, uint64_t coll,
                       const bm25_chunk_t *chunks, const post_in_t *posts, size_t n, block_t *b)
{
    const char *term = posts[0].term;
    size_t tlen = posts[0].len;
    unsigned char enc[BLOCK_MAX_BYTES];
    key_t_ tk, pk;
    uint64_t df, first = 0;
    int found, dirty = 0, rc;
    MDB_val val;
    key_term(&tk, ws, coll, term, tlen);
    if ((rc = term_df_get(txn, st, &tk, &df, &found))) return rc;
    if ((rc = postings_last(cur, ws, coll, term, tlen, &found, &first, &val))) return rc;
    b->n = 0;
    if (found) {
        if ((rc = block_decode(val.mv_data, val.mv_size, first, DOC_END, b))) return rc;
        if (b->ids[b->n - 1] >= chunks[posts[0].chunk].chunk_id) return ENGRAM_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        const bm25_chunk_t *c = &chunks[posts[i].chunk];
        uint32_t tf = posts[i].tf, dlen = c->terms->ntok;
        if (b->n == BM25_BLOCK) {
            if (dirty) {
                key_post(&pk, ws, coll, term, tlen, 0, first);
                MDB_val kv = kval(&pk), v = {block_encode(b, first, enc), enc};
                if ((rc = store_status(mdb_put(txn, store_dbi(st, DB_BM25_POSTINGS), &kv, &v, 0))))
                    return rc;
            }
            b->n = 0;
        }
        if (b->n == 0) {
            first = c->chunk_id;
            b->max_tf = tf;
            b->min_len = dlen;
        } else {
            b->max_tf = EG_MAX(b->max_tf, tf);
            b->min_len = EG_MIN(b->min_len, dlen);
        }
        b->ids[b->n] = c->chunk_id;
        b->tfs[b->n] = tf;
        b->lens[b->n] = dlen;
        b->n++;
        dirty = 1;
    }
    key_post(&pk, ws, coll, term, tlen, 0, first);
    MDB_val kv = kval(&pk), v = {block_encode(b, first, enc), enc};
    if ((rc = store_status(mdb_put(txn, store_dbi(st, DB_BM25_POSTINGS), &kv, &v, 0)))) return rc;
    return term_df_put(txn, st, &tk, df + n);
}

int bm25_add_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const bm25_chunk_t *chunks,
                   size_t n)
{
    if (!txn || !st || (!chunks && n) || n > UINT32_MAX) return ENGRAM_EINVAL;
    if (n == 0) return 0;
    uint64_t sum_len = 0;
    MDB_dbi dl = store_dbi(st, DB_BM25_DOCLEN);
    for (size_t i = 0; i < n; i++) {
        uint32_t old;
        int found;
        if (!chunks[i].terms || chunks[i].chunk_id == DOC_END ||
            (i > 0 && chunks[i].chunk_id <= chunks[i - 1].chunk_id))
            return ENGRAM_EINVAL;
        int rc = doclen_get(txn, dl, ws, coll, chunks[i].chunk_id, &old, &found);
        if (rc) return rc;
        if (found) return ENGRAM_EEXIST;
        sum_len += chunks[i].terms->ntok;
    }
    int rc = for_each_term(txn, st, ws, coll, chunks, n, term_append);
    for (size_t i = 0; !rc && i < n; i++) {
        key_t_ kc;
        unsigned char lb[4];
        key_chunk(&kc, ws, coll, chunks[i].chunk_id);
        be32_put(lb, chunks[i].terms->ntok);
        MDB_val kv = kval(&kc), v = {4, lb};
        rc = store_status(mdb_put(txn, dl, &kv, &v, 0));
    }
    uint64_t nc, len;
    if (!rc) rc = bm25_stats(txn, st, ws, coll, &nc, &len);
    if (!rc) rc = stats_put(txn, st, ws, coll, nc + n, len + sum_len);
    return rc;
}

int bm25_add(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
             uint64_t chunk_id, const char *text, size_t len)
{
    if (!txn || !st || !tok || (!text && len) || chunk_id == DOC_END) return ENGRAM_EINVAL;
    bm25_terms_t tl;
    int rc = bm25_terms_build(&tl, tok, text, len);
    if (!rc) {
        bm25_chunk_t c = {chunk_id, &tl};
        rc = bm25_add_batch(txn, st, ws, coll, &c, 1);
    }
    bm25_terms_free(&tl);
    return rc;
}

/* Removes the chunks of posts[0..n) (one term, increasing chunks) from the
 * term's blocks: each block holding some of them is rewritten (or deleted
 * when emptied) once. *removed gets how many postings went. */
static int term_remove_blocks(MDB_txn *txn, store_t *st, MDB_cursor *cur, uint64_t ws,
                              uint64_t coll, const bm25_chunk_t *chunks, const post_in_t *posts,
                              size_t n, block_t *b, uint64_t *removed)
{
    const char *term = posts[0].term;
    size_t tlen = posts[0].len;
    unsigned char enc[BLOCK_MAX_BYTES];
    MDB_dbi pdb = store_dbi(st, DB_BM25_POSTINGS);
    *removed = 0;
    for (size_t k = 0; k < n;) {
        uint64_t id = chunks[posts[k].chunk].chunk_id, first = 0;
        int found, rc;
        MDB_val val;
        if ((rc = postings_find(cur, ws, coll, term, tlen, id, &found, &first, &val))) return rc;
        if (!found) { k++; continue; }
        if ((rc = block_decode(val.mv_data, val.mv_size, first, DOC_END, b))) return rc;
        uint64_t last = b->ids[b->n - 1];
        if (id > last) { k++; continue; } /* between this block and the next: not indexed */
        uint32_t w = 0, gone = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            while (k < n && chunks[posts[k].chunk].chunk_id < b->ids[j]) k++;
            if (k < n && chunks[posts[k].chunk].chunk_id == b->ids[j]) {
                gone++;
                k++;
                continue;
            }
            b->ids[w] = b->ids[j];
            b->tfs[w] = b->tfs[j];
            b->lens[w] = b->lens[j];
            w++;
        }
        while (k < n && chunks[posts[k].chunk].chunk_id <= last) k++;
        if (!gone) continue;
        b->n = w;
        key_t_ pk;
        key_post(&pk, ws, coll, term, tlen, 0, first);
        MDB_val kv = kval(&pk);
        if (b->n == 0) {
            rc = mdb_del(txn, pdb, &kv, NULL);
        } else {
            MDB_val v = {block_encode(b, first, enc), enc};
            rc = mdb_put(txn, pdb, &kv, &v, 0);
        }
        if ((rc = store_status(rc))) return rc;
        *removed += gone;
    }
    return 0;
}

/* term_fn of a removal: the postings, then the df by as many as went. */
static int term_remove(MDB_txn *txn, store_t *st, MDB_cursor *cur, uint64_t ws, uint64_t coll,
                       const bm25_chunk_t *chunks, const post_in_t *posts, size_t n, block_t *b)
{
    key_t_ tk;
    uint64_t df, removed;
    int found;
    key_term(&tk, ws, coll, posts[0].term, posts[0].len);
    int rc = term_df_get(txn, st, &tk, &df, &found);
    if (rc || !found) return rc;
    rc = term_remove_blocks(txn, st, cur, ws, coll, chunks, posts, n, b, &removed);
    if (!rc && removed) rc = term_df_put(txn, st, &tk, df > removed ? df - removed : 0);
    return rc;
}

int bm25_remove_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                      const bm25_chunk_t *chunks, size_t n)
{
    if (!txn || !st || (!chunks && n) || n > UINT32_MAX) return ENGRAM_EINVAL;
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!chunks[i].terms || (i > 0 && chunks[i].chunk_id <= chunks[i - 1].chunk_id))
            return ENGRAM_EINVAL;
    int rc = for_each_term(txn, st, ws, coll, chunks, n, term_remove);
    if (rc) return rc;
    MDB_dbi dl = store_dbi(st, DB_BM25_DOCLEN);
    uint64_t gone = 0, gone_len = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t dlen;
        int had;
        if ((rc = doclen_get(txn, dl, ws, coll, chunks[i].chunk_id, &dlen, &had))) return rc;
        if (!had) continue;
        key_t_ kc;
        key_chunk(&kc, ws, coll, chunks[i].chunk_id);
        MDB_val kv = kval(&kc);
        if ((rc = store_status(mdb_del(txn, dl, &kv, NULL)))) return rc;
        gone++;
        gone_len += dlen;
    }
    if (!gone) return 0;
    uint64_t nc, len;
    if ((rc = bm25_stats(txn, st, ws, coll, &nc, &len))) return rc;
    if (nc < gone || len < gone_len) return ENGRAM_ECORRUPT;
    return stats_put(txn, st, ws, coll, nc - gone, len - gone_len);
}

int bm25_remove(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                uint64_t chunk_id, const char *text, size_t len)
{
    if (!txn || !st || !tok || (!text && len)) return ENGRAM_EINVAL;
    bm25_terms_t tl;
    int rc = bm25_terms_build(&tl, tok, text, len);
    if (!rc) {
        bm25_chunk_t c = {chunk_id, &tl};
        rc = bm25_remove_batch(txn, st, ws, coll, &c, 1);
    }
    bm25_terms_free(&tl);
    return rc;
}

int bm25_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll)
{
    if (!txn || !st) return ENGRAM_EINVAL;
    static const store_db_t dbs[] = {DB_BM25_TERMS, DB_BM25_POSTINGS, DB_BM25_DOCLEN,
                                     DB_BM25_STATS};
    key_t_ k;
    key_coll(&k, ws, coll);
    for (size_t i = 0; i < EG_ARRAY_LEN(dbs); i++) {
        MDB_cursor *cur;
        int rc = store_status(mdb_cursor_open(txn, store_dbi(st, dbs[i]), &cur));
        if (rc) return rc;
        MDB_val kv = kval(&k), v;
        rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
        while (rc == 0 && kv.mv_size >= 16 && memcmp(kv.mv_data, k.b, 16) == 0) {
            if ((rc = mdb_cursor_del(cur, 0))) break;
            rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT); /* after a delete: the next key */
        }
        mdb_cursor_close(cur);
        if (rc && rc != MDB_NOTFOUND) return store_status(rc);
    }
    return 0;
}

/* ---- search ------------------------------------------------------------- */

typedef struct blkref {
    uint64_t first, end;   /* chunk id range [first, end] */
    const unsigned char *v;
    size_t vlen;
    double bound;          /* weight * idf * tf-part at (max_tf, min_len) */
    uint32_t min_len;
} blkref_t;

typedef struct qterm {
    double widf;           /* query weight (repetitions) * idf */
    double ub;             /* max block bound */
    blkref_t *blks;
    size_t nblk, cap;
    size_t bi;             /* block of the shallow pointer */
    size_t dbi;            /* decoded block (nblk: none) */
    uint32_t pos;
    uint64_t doc;          /* current chunk id, DOC_END when exhausted */
    uint32_t tf, len;      /* of the current chunk */
    block_t blk;
} qterm_t;

typedef struct scorer {
    double k1, kb1, kb2;   /* norm = kb1 + kb2 * len */
} scorer_t;

static inline double tf_part(const scorer_t *s, double tf, double len)
{
    return tf / (tf + (s->kb1 + s->kb2 * len));
}

static int qterm_decode(qterm_t *q, size_t idx)
{
    blkref_t *r = &q->blks[idx];
    uint64_t limit = r->end == DOC_END - 1 ? DOC_END : r->end + 1;
    int rc = block_decode(r->v, r->vlen, r->first, limit, &q->blk);
    if (rc) return rc;
    if (q->blk.min_len != r->min_len) return ENGRAM_ECORRUPT;
    q->dbi = idx;
    q->pos = 0;
    return 0;
}

/* Moves q to its first chunk >= target. */
static int qterm_next_geq(qterm_t *q, uint64_t target)
{
    if (q->doc >= target) return 0;
    while (q->bi < q->nblk && q->blks[q->bi].end < target) q->bi++;
    while (q->bi < q->nblk) {
        if (q->dbi != q->bi) {
            int rc = qterm_decode(q, q->bi);
            if (rc) return rc;
        }
        const block_t *b = &q->blk;
        uint32_t p = q->pos;
        while (p < b->n && b->ids[p] < target) p++;
        q->pos = p;
        if (p < b->n) {
            q->doc = b->ids[p];
            q->tf = b->tfs[p];
            q->len = b->lens[p];
            return 0;
        }
        q->bi++;
    }
    q->doc = DOC_END;
    return 0;
}

static inline void qterm_shallow(qterm_t *q, uint64_t target)
{
    while (q->bi < q->nblk && q->blks[q->bi].end < target) q->bi++;
}

/* Loads the block list of one term (no decoding). */
static int qterm_load(qterm_t *q, MDB_cursor *cur, uint64_t ws, uint64_t coll, const char *t,
                      size_t tl, const scorer_t *s)
{
    key_t_ k;
    key_post(&k, ws, coll, t, tl, 0, 0);
    size_t plen = 16 + tl + 1;
    MDB_val kv = kval(&k), v;
    int rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (kv.mv_size < plen || memcmp(kv.mv_data, k.b, plen) != 0) break;
        if (kv.mv_size != plen + 8 || v.mv_size < BLOCK_HDR) return ENGRAM_ECORRUPT;
        const unsigned char *h = v.mv_data;
        uint32_t max_tf = be32_get(h + 3), min_len = be32_get(h + 7);
        if (h[0] != BLOCK_VERSION || max_tf == 0) return ENGRAM_ECORRUPT;
        if (q->nblk == q->cap) {
            size_t cap = q->cap ? q->cap * 2 : 8;
            blkref_t *nb = eg_realloc(q->blks, cap * sizeof *nb);
            if (!nb) return ENGRAM_ENOMEM;
            q->blks = nb;
            q->cap = cap;
        }
        uint64_t first = be64_get((const unsigned char *)kv.mv_data + plen);
        if (first == DOC_END) return ENGRAM_ECORRUPT;
        if (q->nblk > 0) q->blks[q->nblk - 1].end = first - 1;
        double bound = q->widf * tf_part(s, max_tf, min_len);
        q->blks[q->nblk++] = (blkref_t){first, DOC_END - 1, h, v.mv_size, bound, min_len};
        if (bound > q->ub) q->ub = bound;
        rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) return store_status(rc);
    q->dbi = q->nblk;
    if (q->nblk == 0) { q->doc = DOC_END; return 0; }
    if ((rc = qterm_decode(q, 0))) return rc;
    q->doc = q->blk.ids[0];
    q->tf = q->blk.tfs[0];
    q->len = q->blk.lens[0];
    return 0;
}

/* Min-heap of the best hits: the root is the worst (lowest score, then the
 * highest chunk id). */
static inline int hit_worse(const bm25_hit_t *a, const bm25_hit_t *b)
{
    return a->score < b->score || (a->score == b->score && a->chunk_id > b->chunk_id);
}

/* Sifts x down from the root position i of h[0..n) (a hole moves down,
 * x is written once). */
static void heap_sift(bm25_hit_t *h, size_t n, size_t i, bm25_hit_t x)
{
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        size_t m = l;
        if (l + 1 < n && hit_worse(&h[l + 1], &h[l])) m = l + 1;
        if (!hit_worse(&h[m], &x)) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

static void heap_push(bm25_hit_t *h, size_t *n, bm25_hit_t x)
{
    size_t i = (*n)++;
    h[i] = x;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hit_worse(&h[i], &h[p])) break;
        bm25_hit_t t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

static inline int may_beat(double bound, double theta)
{
    return bound + bound * BOUND_MARGIN > theta;
}

/* The Block-Max WAND loop over q[0..n) (n >= 1). */
static int bmw_run(qterm_t *q, size_t n, const scorer_t *s, bm25_filter_fn filter, void *fud, size_t k,
                   bm25_hit_t *heap, size_t *nheap, uint32_t *ord)
{
    double theta = -INFINITY;
    int rc;
    size_t moved = n;
    for (size_t i = 0; i < n; i++) ord[i] = (uint32_t)i;
    for (;;) {
        /* keep ord sorted by current chunk id: only the first `moved`
         * cursors advanced since the last round, the rest is still sorted */
        for (size_t i = moved; i-- > 0;) {
            uint32_t x = ord[i];
            uint64_t d = q[x].doc;
            size_t j = i;
            while (j + 1 < n && q[ord[j + 1]].doc < d) { ord[j] = ord[j + 1]; j++; }
            ord[j] = x;
        }
        double acc = 0;
        size_t p = n;
        for (size_t i = 0; i < n; i++) {
            if (q[ord[i]].doc == DOC_END) break;
            acc += q[ord[i]].ub;
            if (may_beat(acc, theta)) { p = i; break; }
        }
        if (p == n) break;
        uint64_t pd = q[ord[p]].doc;
        while (p + 1 < n && q[ord[p + 1]].doc == pd) p++;
        double bsum = 0;
        for (size_t i = 0; i <= p; i++) {
            qterm_t *t = &q[ord[i]];
            qterm_shallow(t, pd);
            bsum += t->blks[t->bi].bound;
        }
        if (may_beat(bsum, theta)) {
            if (q[ord[0]].doc == pd) {
                /* sum in query term order, whatever the cursor order, so
                 * equal documents get bit-equal scores */
                uint32_t *m = ord + n;
                for (size_t i = 0; i <= p; i++) {
                    uint32_t x = ord[i];
                    size_t j = i;
                    while (j > 0 && m[j - 1] > x) { m[j] = m[j - 1]; j--; }
                    m[j] = x;
                }
                double score = 0;
                for (size_t i = 0; i <= p; i++)
                    score += q[m[i]].widf * tf_part(s, q[m[i]].tf, q[m[i]].len);
                bm25_hit_t h = {pd, score};
                if ((*nheap < k || hit_worse(&heap[0], &h)) && (!filter || filter(pd, fud))) {
                    if (*nheap < k) {
                        heap_push(heap, nheap, h);
                    } else {
                        heap_sift(heap, *nheap, 0, h);
                    }
                    if (*nheap == k) theta = heap[0].score;
                }
                for (size_t i = 0; i <= p; i++)
                    if ((rc = qterm_next_geq(&q[ord[i]], pd + 1))) return rc;
                moved = p + 1;
            } else {
                for (size_t i = 0; i < p; i++)
                    if ((rc = qterm_next_geq(&q[ord[i]], pd))) return rc;
                moved = p;
            }
        } else {
            /* No chunk before the nearest block end (or the next term's
             * chunk) can beat theta: every term up to the pivot jumps there. */
            uint64_t next = p + 1 < n ? q[ord[p + 1]].doc : DOC_END;
            for (size_t i = 0; i <= p; i++) {
                const qterm_t *t = &q[ord[i]];
                uint64_t e = t->blks[t->bi].end;
                if (e + 1 < next) next = e + 1;
            }
            for (size_t i = 0; i <= p; i++)
                if ((rc = qterm_next_geq(&q[ord[i]], next))) return rc;
            moved = p + 1;
        }
    }
    return 0;
}

int bm25_search(MDB_txn *txn, store_t *st, tokenizer_t *tok, uint64_t ws, uint64_t coll,
                const char *query, size_t qlen, const bm25_params_t *p,
                bm25_filter_fn filter, void *filter_ud,
                size_t k, bm25_hit_t *out, size_t *n_out)
{
    if (!txn || !st || !tok || (!query && qlen) || !n_out || (k && !out)) return ENGRAM_EINVAL;
    bm25_params_t prm = p ? *p : BM25_PARAMS_DEFAULT;
    if (!(prm.k1 >= 0) || !(prm.b >= 0 && prm.b <= 1) || !isfinite(prm.k1)) return ENGRAM_EINVAL;
    *n_out = 0;
    if (k == 0) return 0;
    bm25_terms_t tl;
    qterm_t *q = NULL;
    uint32_t *ord = NULL;
    MDB_cursor *cur = NULL;
    size_t nq = 0, nheap = 0;
    uint64_t N, total;
    int rc = bm25_terms_build(&tl, tok, query, qlen);
    if (rc) goto fail;
    if (tl.n == 0) goto fail;
    if (tl.n > BM25_MAX_QUERY_TERMS) { rc = ENGRAM_ETOOBIG; goto fail; }
    if ((rc = bm25_stats(txn, st, ws, coll, &N, &total))) goto fail;
    if (N == 0) goto fail;
    double avg = total > 0 ? (double)total / (double)N : 1.0;
    scorer_t sc = {prm.k1, prm.k1 * (1 - prm.b), prm.k1 * prm.b / avg};
    q = eg_calloc(tl.n, sizeof *q);
    ord = eg_malloc(2 * tl.n * sizeof *ord);
    if (!q || !ord) { rc = ENGRAM_ENOMEM; goto fail; }
    if ((rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_BM25_POSTINGS), &cur)))) goto fail;
    for (size_t i = 0; i < tl.n; i++) {
        const char *term = tl.text.data + tl.v[i].off;
        key_t_ tk;
        uint64_t df;
        int found;
        key_term(&tk, ws, coll, term, tl.v[i].len);
        if ((rc = term_df_get(txn, st, &tk, &df, &found))) goto fail;
        if (!found) continue;
        if (df > N) df = N;
        double idf = log(1.0 + ((double)N - (double)df + 0.5) / ((double)df + 0.5));
        qterm_t *t = &q[nq];
        t->widf = (double)tl.v[i].tf * idf;
        if ((rc = qterm_load(t, cur, ws, coll, term, tl.v[i].len, &sc))) { nq++; goto fail; }
        nq++;
        if (t->nblk == 0) { eg_free(t->blks); memset(t, 0, sizeof *t); nq--; }
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if (nq == 0) goto fail;
    rc = bmw_run(q, nq, &sc, filter, filter_ud, k, out, &nheap, ord);
    if (rc) { nheap = 0; goto fail; }
    /* heap order -> best first: pop the worst to the back */
    for (size_t n = nheap; n > 1; n--) {
        bm25_hit_t worst = out[0];
        heap_sift(out, n - 1, 0, out[n - 1]);
        out[n - 1] = worst;
    }
fail:
    *n_out = nheap;
    if (cur) mdb_cursor_close(cur);
    for (size_t i = 0; i < nq; i++) eg_free(q[i].blks);
    eg_free(q);
    eg_free(ord);
    bm25_terms_free(&tl);
    return rc;
}

/* ---- verification ------------------------------------------------------- */

static int verify_fail(char *msg, size_t msglen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int verify_fail(char *msg, size_t msglen, const char *fmt, ...)
{
    if (msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, msglen, fmt, ap);
        va_end(ap);
    }
    return ENGRAM_ECORRUPT;
}

int bm25_verify(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, char *msg, size_t msglen)
{
    if (!txn || !st || (!msg && msglen)) return ENGRAM_EINVAL;
    if (msglen) msg[0] = 0;
    MDB_cursor *cur = NULL;
    block_t *b = eg_malloc(sizeof *b);
    if (!b) return ENGRAM_ENOMEM;
    MDB_dbi dl = store_dbi(st, DB_BM25_DOCLEN);
    key_t_ pre;
    key_coll(&pre, ws, coll);
    uint64_t n_terms = 0, n_chunks = 0, total = 0, N, T;
    int rc;

    /* postings: decodable, ordered, each naming an indexed chunk of its length */
    if ((rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_BM25_POSTINGS), &cur)))) goto fail;
    MDB_val kv = kval(&pre), v;
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    char term[TOK_MAX_TERM + 1];
    size_t tl = 0;
    uint64_t postings = 0, last_id = 0;
    int have_term = 0;
    for (;;) {
        int at_end = rc == MDB_NOTFOUND || (rc == 0 && (kv.mv_size < 16 || memcmp(kv.mv_data, pre.b, 16)));
        if (rc && rc != MDB_NOTFOUND) { rc = store_status(rc); goto fail; }
        const unsigned char *k = kv.mv_data;
        size_t ktl = at_end ? 0 : kv.mv_size - 16 - 9;
        int same = !at_end && have_term && ktl == tl && memcmp(k + 16, term, tl) == 0;
        if (have_term && !same) {
            /* close the previous term: its df must count its postings */
            key_t_ tk;
            uint64_t df;
            int found;
            key_term(&tk, ws, coll, term, tl);
            if ((rc = term_df_get(txn, st, &tk, &df, &found))) {
                rc = verify_fail(msg, msglen, "term \"%.*s\": bad stats record", (int)tl, term);
                goto fail;
            }
            if (!found || df != postings) {
                rc = verify_fail(msg, msglen, "term \"%.*s\": df %llu but %llu postings", (int)tl,
                                 term, (unsigned long long)(found ? df : 0),
                                 (unsigned long long)postings);
                goto fail;
            }
            n_terms++;
            have_term = 0;
        }
        if (at_end) break;
        if (kv.mv_size < 16 + 1 + 9 || kv.mv_size - 25 > TOK_MAX_TERM || k[kv.mv_size - 9] != 0
            || memchr(k + 16, 0, ktl)) {
            rc = verify_fail(msg, msglen, "malformed postings key");
            goto fail;
        }
        if (!same) {
            memcpy(term, k + 16, ktl);
            tl = ktl;
            have_term = 1;
            postings = 0;
            last_id = 0;
        }
        uint64_t first = be64_get(k + kv.mv_size - 8);
        if (postings > 0 && first <= last_id) {
            rc = verify_fail(msg, msglen, "term \"%.*s\": block %llu overlaps chunk %llu", (int)tl,
                             term, (unsigned long long)first, (unsigned long long)last_id);
            goto fail;
        }
        if (block_decode(v.mv_data, v.mv_size, first, DOC_END, b)) {
            rc = verify_fail(msg, msglen, "term \"%.*s\": block %llu does not decode", (int)tl, term,
                             (unsigned long long)first);
            goto fail;
        }
        for (uint32_t i = 0; i < b->n; i++) {
            uint32_t len;
            int found;
            if ((rc = doclen_get(txn, dl, ws, coll, b->ids[i], &len, &found))) goto fail;
            if (!found || len != b->lens[i]) {
                rc = verify_fail(msg, msglen, "term \"%.*s\": chunk %llu %s", (int)tl, term,
                                 (unsigned long long)b->ids[i],
                                 found ? "has another length" : "is not indexed");
                goto fail;
            }
        }
        last_id = b->ids[b->n - 1];
        postings += b->n;
        rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    cur = NULL;

    /* no term record without postings */
    uint64_t n_records = 0;
    if ((rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_BM25_TERMS), &cur)))) goto fail;
    kv = kval(&pre);
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    while (rc == 0 && kv.mv_size >= 16 && memcmp(kv.mv_data, pre.b, 16) == 0) {
        n_records++;
        rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) { rc = store_status(rc); goto fail; }
    mdb_cursor_close(cur);
    cur = NULL;
    if (n_records != n_terms) {
        rc = verify_fail(msg, msglen, "%llu term records but %llu terms with postings",
                         (unsigned long long)n_records, (unsigned long long)n_terms);
        goto fail;
    }

    /* totals */
    if ((rc = store_status(mdb_cursor_open(txn, dl, &cur)))) goto fail;
    kv = kval(&pre);
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    while (rc == 0 && kv.mv_size >= 16 && memcmp(kv.mv_data, pre.b, 16) == 0) {
        if (kv.mv_size != 24 || v.mv_size != 4) {
            rc = verify_fail(msg, msglen, "malformed length record");
            goto fail;
        }
        n_chunks++;
        total += be32_get(v.mv_data);
        rc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND) { rc = store_status(rc); goto fail; }
    mdb_cursor_close(cur);
    cur = NULL;
    if ((rc = bm25_stats(txn, st, ws, coll, &N, &T))) {
        if (rc == ENGRAM_ECORRUPT) verify_fail(msg, msglen, "malformed totals record");
        goto fail;
    }
    if (N != n_chunks || T != total) {
        rc = verify_fail(msg, msglen, "totals say %llu chunks / %llu tokens, lengths say %llu / %llu",
                         (unsigned long long)N, (unsigned long long)T,
                         (unsigned long long)n_chunks, (unsigned long long)total);
        goto fail;
    }
    rc = 0;
fail:
    if (cur) mdb_cursor_close(cur);
    eg_free(b);
    return rc;
}
