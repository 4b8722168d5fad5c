/*
 * graph_search.c - query entities, neighbourhood walk and chunk ranking
 * over a collection's knowledge graph (see graph_search.h).
 *
 * Everything happens inside the caller's read transaction with small,
 * bounded work: at most GS_MAX_ENTS entities take part, each contributes at
 * most GRAPH_MENTIONS_MAX chunks, and fuzzy matching reads at most
 * GS_FUZZY_SCAN names per query word. Chunk scores accumulate in an
 * open-addressing table that grows by doubling.
 */
#include "rag/graph_search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index/graph.h"
#include "index/tokenizer.h"
#include "util/common.h"

#define GS_MAX_WORDS 32
#define GS_MAX_NGRAM 4
#define GS_MAX_ENTS 40
#define GS_NEIGHBOURS 6
#define GS_FUZZY_SCAN 3000

typedef struct gs_ent {
    uint64_t id;
    double score;
    int hop;               /* 0 seed, 1, 2 */
    uint64_t via;          /* the entity it was reached from (hop > 0) */
    double edge;           /* that relation's weight */
    char label[GRAPH_MAX_LABEL + 1];
} gs_ent_t;

typedef struct gs {
    MDB_txn *txn;
    store_t *st;
    uint64_t ws, coll;
    gs_ent_t ents[GS_MAX_ENTS];
    size_t n_ents;
    /* chunk score table */
    uint64_t *keys;
    double *vals;
    size_t cap, used;
    double cur;            /* score of the entity whose mentions are being read */
    size_t seen;           /* mentions read for it */
} gs_t;

int graph_edit_distance(const char *a, size_t la, const char *b, size_t lb, int max)
{
    /* optimal string alignment: Levenshtein plus adjacent transpositions */
    if ((la > lb ? la - lb : lb - la) > (size_t)max) return max + 1;
    if (la > 64 || lb > 64) return max + 1;
    int r0[65], r1[65], r2[65];
    int *pp = r0, *prev = r1, *cur = r2;
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        int best = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            int v = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < v) v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < best) best = v;
        }
        if (best > max) return max + 1;
        int *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] <= max ? prev[lb] : max + 1;
}

static gs_ent_t *ent_find(gs_t *g, uint64_t id)
{
    for (size_t i = 0; i < g->n_ents; i++)
        if (g->ents[i].id == id) return &g->ents[i];
    return NULL;
}

static int ent_add(gs_t *g, uint64_t id, double score, int hop, uint64_t via, double edge,
                   const char *label)
{
    gs_ent_t *e = ent_find(g, id);
    if (e) {
        if (score > e->score && hop >= e->hop) e->score = score;
        return 0;
    }
    if (g->n_ents == GS_MAX_ENTS) return 0;
    e = &g->ents[g->n_ents++];
    memset(e, 0, sizeof *e);
    e->id = id;
    e->score = score;
    e->hop = hop;
    e->via = via;
    e->edge = edge;
    if (label) {
        size_t l = strnlen(label, GRAPH_MAX_LABEL);
        memcpy(e->label, label, l);
        e->label[l] = '\0';
    }
    return 0;
}

static double specificity(const graph_entity_t *e)
{
    return 1.0 / (1.0 + log(1.0 + (double)e->chunks));
}

/* ---- query entities ------------------------------------------------------ */

typedef struct fuzzy {
    const char *word;
    size_t len;
    int max;
    int best_d;
    uint64_t best;
    size_t scanned;
} fuzzy_t;

/* The query word against each word of a name (a name of one word counts
 * a little better than a word inside a longer name). */
static int fuzzy_cb(const char *key, size_t len, uint64_t id, void *ud)
{
    fuzzy_t *f = ud;
    if (++f->scanned > GS_FUZZY_SCAN) return 1;
    int multi = memchr(key, ' ', len) != NULL;
    for (size_t s = 0; s < len;) {
        size_t e = s;
        while (e < len && key[e] != ' ') e++;
        int d = graph_edit_distance(f->word, f->len, key + s, e - s, f->max);
        if (d <= f->max) {
            int rank = 2 * d + multi;
            if (rank < f->best_d) {
                f->best_d = rank;
                f->best = id;
            }
        }
        s = e + 1;
    }
    return 0;
}

static int seed(gs_t *g, uint64_t id)
{
    graph_entity_t e;
    int rc = graph_entity_get(g->txn, g->st, g->ws, g->coll, id, &e);
    if (rc == ENGRAM_ENOTFOUND) return 0;
    if (rc) return rc;
    return ent_add(g, id, specificity(&e), 0, 0, 0, NULL);
}

static int find_query_entities(gs_t *g, const char *query)
{
    /* graph_normalise stops at GRAPH_MAX_NAME: normalise word by word */
    size_t ws_start[GS_MAX_WORDS], ws_len[GS_MAX_WORDS], nw = 0;
    char buf[2048];
    size_t bl = 0;
    const char *q = query;
    while (*q && nw < GS_MAX_WORDS) {
        while (*q && (*q == ' ' || *q == '\t' || *q == '\n')) q++;
        const char *s = q;
        while (*q && *q != ' ' && *q != '\t' && *q != '\n') q++;
        if (q == s) break;
        char w[GRAPH_MAX_NAME + 1];
        size_t l = graph_normalise(s, (size_t)(q - s), w, sizeof w);
        /* a "word" may normalise to several ("covid-19" -> "covid 19") */
        size_t p = 0;
        while (p < l && nw < GS_MAX_WORDS) {
            size_t e = p;
            while (e < l && w[e] != ' ') e++;
            if (bl + (e - p) + 1 >= sizeof buf) break;
            ws_start[nw] = bl;
            ws_len[nw] = e - p;
            memcpy(buf + bl, w + p, e - p);
            bl += e - p;
            buf[bl++] = ' ';
            nw++;
            p = e + 1;
        }
    }
    int covered[GS_MAX_WORDS] = {0};
    for (int len = GS_MAX_NGRAM; len >= 1; len--) {
        for (size_t i = 0; i + (size_t)len <= nw; i++) {
            int any = 0;
            for (int j = 0; j < len; j++) any |= covered[i + (size_t)j];
            if (any) continue;
            size_t kl = ws_start[i + (size_t)len - 1] + ws_len[i + (size_t)len - 1] - ws_start[i];
            if (len == 1 && (ws_len[i] < 3 || tokenizer_is_stopword(buf + ws_start[i], ws_len[i])))
                continue;
            uint64_t id;
            int rc = graph_lookup(g->txn, g->st, g->ws, g->coll, buf + ws_start[i], kl, &id);
            if (rc == ENGRAM_ENOTFOUND) continue;
            if (rc) return rc;
            if ((rc = seed(g, id))) return rc;
            for (int j = 0; j < len; j++) covered[i + (size_t)j] = 1;
        }
    }
    for (size_t i = 0; i < nw; i++) {
        if (covered[i] || ws_len[i] < 5) continue;
        fuzzy_t f = {.word = buf + ws_start[i], .len = ws_len[i], .max = ws_len[i] >= 9 ? 2 : 1,
                     .best_d = 99};
        /* names starting like the word first, then (bounded) all names */
        int rc = graph_names_scan(g->txn, g->st, g->ws, g->coll, f.word, 2, fuzzy_cb, &f);
        if (rc < 0) return rc;
        if (!f.best) {
            f.scanned = 0;
            rc = graph_names_scan(g->txn, g->st, g->ws, g->coll, "", 0, fuzzy_cb, &f);
            if (rc < 0) return rc;
        }
        if (f.best && (rc = seed(g, f.best))) return rc;
    }
    return 0;
}

/* ---- the walk ------------------------------------------------------------ */

typedef struct nb {
    uint64_t id;
    double w;
    char label[GRAPH_MAX_LABEL + 1];
} nb_t;

typedef struct nb_list {
    nb_t top[GS_NEIGHBOURS];
    size_t n;
    double max;
} nb_list_t;

static int nb_cb(uint64_t dst, double weight, const char *label, void *ud)
{
    nb_list_t *l = ud;
    if (weight > l->max) l->max = weight;
    size_t pos = l->n < GS_NEIGHBOURS ? l->n : GS_NEIGHBOURS;
    if (pos == GS_NEIGHBOURS && weight <= l->top[GS_NEIGHBOURS - 1].w) return 0;
    if (pos == GS_NEIGHBOURS) pos--;
    else l->n++;
    while (pos > 0 && l->top[pos - 1].w < weight) {
        l->top[pos] = l->top[pos - 1];
        pos--;
    }
    l->top[pos].id = dst;
    l->top[pos].w = weight;
    size_t ll = strnlen(label, GRAPH_MAX_LABEL);
    memcpy(l->top[pos].label, label, ll);
    l->top[pos].label[ll] = '\0';
    return 0;
}

static int expand(gs_t *g, int hop, double factor)
{
    size_t n0 = g->n_ents;
    for (size_t i = 0; i < n0; i++) {
        if (g->ents[i].hop != hop - 1) continue;
        nb_list_t l = {0};
        int rc = graph_neighbours(g->txn, g->st, g->ws, g->coll, g->ents[i].id, nb_cb, &l);
        if (rc) return rc;
        for (size_t j = 0; j < l.n; j++) {
            double s = g->ents[i].score * factor * (l.top[j].w / (l.max > 0 ? l.max : 1));
            ent_add(g, l.top[j].id, s, hop, g->ents[i].id, l.top[j].w, l.top[j].label);
        }
    }
    return 0;
}

/* ---- chunk scores -------------------------------------------------------- */

static int table_grow(gs_t *g)
{
    size_t cap = g->cap ? g->cap * 2 : 1024;
    uint64_t *k = eg_calloc(cap, sizeof *k);
    double *v = eg_calloc(cap, sizeof *v);
    if (!k || !v) { eg_free(k); eg_free(v); return ENGRAM_ENOMEM; }
    for (size_t i = 0; i < g->cap; i++) {
        if (!g->keys[i]) continue;
        size_t h = (size_t)(g->keys[i] * 0x9E3779B97F4A7C15ull) & (cap - 1);
        while (k[h]) h = (h + 1) & (cap - 1);
        k[h] = g->keys[i];
        v[h] = g->vals[i];
    }
    eg_free(g->keys);
    eg_free(g->vals);
    g->keys = k;
    g->vals = v;
    g->cap = cap;
    return 0;
}

static int mention_cb(uint64_t chunk, uint32_t count, void *ud)
{
    gs_t *g = ud;
    if (++g->seen > GRAPH_MENTIONS_MAX) return 1;
    if (chunk == 0) return 0;
    if (g->used * 2 >= g->cap) {
        int rc = table_grow(g);
        if (rc) return rc;
    }
    size_t h = (size_t)(chunk * 0x9E3779B97F4A7C15ull) & (g->cap - 1);
    while (g->keys[h] && g->keys[h] != chunk) h = (h + 1) & (g->cap - 1);
    if (!g->keys[h]) {
        g->keys[h] = chunk;
        g->used++;
    }
    g->vals[h] += g->cur * (1.0 + log((double)(count ? count : 1)));
    return 0;
}

static int cmp_hit(const void *a, const void *b)
{
    const graph_hit_t *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static void write_context(gs_t *g, buf_t *out)
{
    size_t start = out->len;
    graph_entity_t e, v;
    buf_puts(out, "Entities: ");
    for (size_t i = 0; i < g->n_ents; i++) {
        if (graph_entity_get(g->txn, g->st, g->ws, g->coll, g->ents[i].id, &e)) continue;
        buf_printf(out, "%s%s (%s)", i ? "; " : "", e.name, graph_type_name(e.type));
        if (out->len - start > GRAPH_CONTEXT_MAX / 2) break;
    }
    buf_puts(out, ".");
    int any = 0;
    for (size_t i = 0; i < g->n_ents; i++) {
        if (!g->ents[i].hop) continue;
        if (graph_entity_get(g->txn, g->st, g->ws, g->coll, g->ents[i].via, &v) ||
            graph_entity_get(g->txn, g->st, g->ws, g->coll, g->ents[i].id, &e))
            continue;
        buf_printf(out, "%s%s -[%s]- %s (%g)", any ? "; " : " Relations: ", v.name,
                   g->ents[i].label, e.name, g->ents[i].edge);
        any = 1;
        if (out->len - start > GRAPH_CONTEXT_MAX) break;
    }
    if (any) buf_puts(out, ".");
}

int graph_search(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const char *query,
                 size_t k, graph_filter_fn filter, void *filter_ud, graph_hit_t *out, size_t *n,
                 buf_t *context, size_t *n_entities)
{
    gs_t *g = eg_calloc(1, sizeof *g);
    graph_hit_t *all = NULL;
    *n = 0;
    if (n_entities) *n_entities = 0;
    if (!g) return ENGRAM_ENOMEM;
    g->txn = txn;
    g->st = st;
    g->ws = ws;
    g->coll = coll;
    int rc = find_query_entities(g, query);
    size_t seeds = g->n_ents;
    if (!rc && seeds) rc = expand(g, 1, 0.5);
    if (!rc && seeds && seeds < 3) rc = expand(g, 2, 0.25);
    for (size_t i = 0; !rc && i < g->n_ents; i++) {
        g->cur = g->ents[i].score;
        g->seen = 0;
        rc = graph_mentions(txn, st, ws, coll, g->ents[i].id, mention_cb, g);
        if (rc == 1) rc = 0;
    }
    if (rc) goto done;
    all = eg_malloc((g->used + 1) * sizeof *all);
    if (!all) { rc = ENGRAM_ENOMEM; goto done; }
    size_t m = 0;
    for (size_t i = 0; i < g->cap; i++)
        if (g->keys[i]) all[m++] = (graph_hit_t){g->keys[i], g->vals[i]};
    qsort(all, m, sizeof *all, cmp_hit);
    for (size_t i = 0; i < m && *n < k; i++)
        if (!filter || filter(all[i].chunk, filter_ud)) out[(*n)++] = all[i];
    if (n_entities) *n_entities = seeds;
    if (context && g->n_ents) write_context(g, context);
    if (context && context->err) rc = context->err;
done:
    eg_free(all);
    eg_free(g->keys);
    eg_free(g->vals);
    eg_free(g);
    return rc;
}
