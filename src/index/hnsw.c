/*
 * hnsw.c - the HNSW graph algorithm over a view (hnsw_internal.h): insert
 * with the neighbour-selection heuristic, delete with neighbour repair,
 * k-NN search with tombstones and filters, exact scan, verify.
 *
 * Search: greedy descent from the entry point through the levels above 1,
 * a beam of HNSW_UPPER_EF at level 1 whose best nodes all enter level 0,
 * then a best-first search of level 0 with a candidate min-heap and a
 * result max-heap bounded to ef, over a generation-stamped visited array
 * (one u16 a slot, cleared only when the stamp wraps). While a node's
 * neighbours are scored, the next neighbour's vector and the next
 * candidate's link record are prefetched (both live in other blocks).
 * Visiting a node is pointer arithmetic over the view's block table:
 * block = slot >> shift, record = slot & mask. Deleted nodes and nodes the
 * filter rejects are traversed but never enter the results; when the search ends with fewer
 * than k results while more live nodes exist (a selective filter, a graph
 * cut by deletes), an exact scan answers instead.
 *
 * Insert (Malkov & Yashunin, algorithms 1 and 4): level from a hash of the
 * id (mL = 1/ln M); greedy descent to the node's top level; at each level a
 * search with ef_construction, M neighbours kept by the heuristic (a
 * candidate is kept only if it is closer to the new node than to every
 * neighbour kept before it), and links back from each neighbour, its list
 * re-selected by the same heuristic when full (2M at level 0, M above).
 *
 * Delete: the node is flagged deleted, its id unmapped; each neighbour whose
 * list holds it gets a new list chosen by the heuristic from its other
 * neighbours and the deleted node's neighbours. Other nodes may still link to
 * the tombstone, which keeps routing (its links and vector stay).
 *
 * Every count and slot read from a block is range-checked: a corrupt block
 * gives ENGRAM_ECORRUPT, never an out-of-bounds read.
 */
#include "index/hnsw_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Beam width of the search at level 1 (1 would be the paper's greedy
 * descent). On bench-ann's 200k clustered set, over three level draws, 3
 * raised recall@10 at ef 10 by 0.006-0.017 (fewer queries stranded in a
 * wrong cluster) for ~5 % more distance computations at ef 10. */
#define HNSW_UPPER_EF 3

typedef struct accept {
    int active;             /* 0: every node is a result */
    hnsw_filter_fn filter;
    void *ud;
} accept_t;

static uint32_t level_for(uint64_t id, uint32_t M)
{
    uint64_t x = id + 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    double u = ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double l = -log(u) / log((double)M);
    return l >= HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (uint32_t)l;
}

/* ---- heaps of (distance, slot) ---- */

static void maxheap_push(hnsw_pair_t *h, size_t *n, hnsw_pair_t x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].d >= x.d) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static void maxheap_pop(hnsw_pair_t *h, size_t *n)
{
    hnsw_pair_t x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1].d > h[c].d) c++;
        if (h[c].d <= x.d) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
}

static void minheap_push(hnsw_pair_t *h, size_t *n, hnsw_pair_t x)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].d <= x.d) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static void minheap_pop(hnsw_pair_t *h, size_t *n)
{
    hnsw_pair_t x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1].d < h[c].d) c++;
        if (h[c].d >= x.d) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = x;
}

static int pair_cmp(const void *a, const void *b)
{
    const hnsw_pair_t *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->slot < y->slot ? -1 : x->slot > y->slot;
}

static int grow(hnsw_pair_t **p, size_t *cap, size_t need)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    hnsw_pair_t *n = eg_realloc(*p, c * sizeof *n);
    if (!n) return ENGRAM_ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

static int scratch_begin(hnsw_scratch_t *s, uint32_t n_slots, size_t ef)
{
    if (s->mark_cap < n_slots) {
        uint32_t cap = EG_MAX(n_slots, s->mark_cap * 2);
        uint16_t *m = eg_realloc(s->mark, (size_t)cap * sizeof *m);
        if (!m) return ENGRAM_ENOMEM;
        s->mark = m;
        s->mark_cap = cap;
        memset(m, 0, (size_t)cap * sizeof *m);
        s->tag = 0;
    }
    if (++s->tag == 0) {
        memset(s->mark, 0, (size_t)s->mark_cap * sizeof *s->mark);
        s->tag = 1;
    }
    s->cand_n = s->res_n = 0;
    int rc = grow(&s->res, &s->res_cap, ef + 2);
    if (rc == 0) rc = grow(&s->cand, &s->cand_cap, 256);
    return rc;
}

static int accept_slot(hnsw_view_t *v, const accept_t *a, uint32_t slot, int *ok)
{
    int rc = 0;
    const unsigned char *r = hv_rec(v, 0, slot, &rc);
    if (!r) return rc;
    unsigned f = rec0_flags(r);
    if (!(f & HNSW_F_USED)) return ENGRAM_ECORRUPT;
    *ok = !(f & HNSW_F_DELETED) && (!a->filter || a->filter(rec0_id(r), a->ud));
    return 0;
}

/* Prefetch hints. They must be always_inline: as plain static inline
 * functions (whose only effect is __builtin_prefetch) GCC 12 at -O2 deleted
 * every call to them, and no vector prefetch reached the binary. */
#define HNSW_PREFETCH static inline __attribute__((always_inline))

/* The first line of slot's vector (the hardware prefetcher follows the
 * rest); issued one neighbour ahead, while the current one is scored. */
HNSW_PREFETCH void prefetch_vec(hnsw_view_t *v, uint32_t slot)
{
    uint32_t b = slot >> v->m.vshift;
    if (b < v->vec.n && v->vec.p[b])
        __builtin_prefetch(v->vec.p[b] + (size_t)(slot & v->vmask) * v->vrow);
}

/* The link record of the next candidate to expand: it lives in another
 * block than its vector, so it is a cache (and TLB) miss unless fetched
 * while the current node's neighbours are being scored. */
HNSW_PREFETCH void prefetch_rec(hnsw_view_t *v, int level, uint32_t slot)
{
    uint32_t b = slot >> HNSW_LSHIFT;
    const hnsw_table_t *t = &v->lnk[level];
    if (b < t->n && t->p[b]) {
        const unsigned char *r = t->p[b] + (size_t)(slot & v->lmask) * (level == 0 ? v->rec0 : v->recu);
        __builtin_prefetch(r);
        __builtin_prefetch(r + 64);
        __builtin_prefetch(r + 128);
    }
}

/* Best-first search of one level from eps; the ef best accepted nodes end
 * in s->res (a max-heap). */
static int search_layer(hnsw_view_t *v, hnsw_scratch_t *s, const float *q, const hnsw_pair_t *eps,
                        size_t n_eps, size_t ef, int level, const accept_t *acc)
{
    int rc = scratch_begin(s, v->m.n_slots, ef);
    if (rc != 0) return rc;
    const uint32_t maxc = level == 0 ? 2 * v->m.M : v->m.M, n_slots = v->m.n_slots;
    uint16_t *mark = s->mark;
    const uint16_t tag = s->tag;
    float bound = INFINITY;
    for (size_t i = 0; i < n_eps; i++) {
        if (mark[eps[i].slot] == tag) continue;
        mark[eps[i].slot] = tag;
        minheap_push(s->cand, &s->cand_n, eps[i]);
        int ok = 1;
        if (acc->active && (rc = accept_slot(v, acc, eps[i].slot, &ok)) != 0) return rc;
        if (ok) {
            maxheap_push(s->res, &s->res_n, eps[i]);
            if (s->res_n > ef) maxheap_pop(s->res, &s->res_n);
            bound = s->res[0].d;
        }
    }
    while (s->cand_n) {
        hnsw_pair_t c = s->cand[0];
        if (c.d > bound && s->res_n >= ef) break;
        minheap_pop(s->cand, &s->cand_n);
        if (s->cand_n) prefetch_rec(v, level, s->cand[0].slot);
        unsigned char *r = hv_rec(v, level, c.slot, &rc);
        if (!r) return rc;
        uint32_t cnt;
        const uint32_t *links = rec_links(r, level, &cnt);
        if (cnt > maxc) return ENGRAM_ECORRUPT;
        if (cnt) prefetch_vec(v, links[0] < n_slots ? links[0] : 0);
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t nb = links[j];
            if (nb >= n_slots) return ENGRAM_ECORRUPT;
            if (j + 1 < cnt && links[j + 1] < n_slots) {
                prefetch_vec(v, links[j + 1]);
                __builtin_prefetch(mark + links[j + 1]);
            }
            if (mark[nb] == tag) continue;
            mark[nb] = tag;
            const float *x = hv_vec(v, nb, &rc);
            if (!x) return rc;
            float d = hv_dist(v, q, x);
            if (s->res_n < ef || d < bound) {
                if (s->cand_n == s->cand_cap && (rc = grow(&s->cand, &s->cand_cap, s->cand_n + 1)) != 0)
                    return rc;
                hnsw_pair_t p = {d, nb};
                minheap_push(s->cand, &s->cand_n, p);
                prefetch_rec(v, level, s->cand[0].slot);
                int ok = 1;
                if (acc->active && (rc = accept_slot(v, acc, nb, &ok)) != 0) return rc;
                if (ok) {
                    maxheap_push(s->res, &s->res_n, p);
                    if (s->res_n > ef) maxheap_pop(s->res, &s->res_n);
                    bound = s->res[0].d;
                }
            }
        }
    }
    return 0;
}

/* Greedy walk at one upper level: moves *cur to a local minimum. */
static int greedy(hnsw_view_t *v, const float *q, uint32_t *cur, float *curd, int level)
{
    int rc = 0, changed = 1;
    while (changed) {
        changed = 0;
        unsigned char *r = hv_rec(v, level, *cur, &rc);
        if (!r) return rc;
        uint32_t cnt;
        const uint32_t *links = rec_links(r, level, &cnt);
        if (cnt > v->m.M) return ENGRAM_ECORRUPT;
        for (uint32_t j = 0; j < cnt; j++) {
            uint32_t nb = links[j];
            if (nb >= v->m.n_slots) return ENGRAM_ECORRUPT;
            if (j + 1 < cnt && links[j + 1] < v->m.n_slots) prefetch_vec(v, links[j + 1]);
            const float *x = hv_vec(v, nb, &rc);
            if (!x) return rc;
            float d = hv_dist(v, q, x);
            if (d < *curd) { *curd = d; *cur = nb; changed = 1; }
        }
    }
    return 0;
}

/* Keeps in c (n candidates with distances to the base node) at most m by
 * the heuristic; *kept gets the count. c ends sorted by distance. */
static int select_neighbours(hnsw_view_t *v, hnsw_pair_t *c, size_t n, size_t m, size_t *kept)
{
    int rc = 0;
    qsort(c, n, sizeof *c, pair_cmp);
    if (n <= m) { *kept = n; return 0; }
    size_t k = 0;
    for (size_t i = 0; i < n && k < m; i++) {
        const float *xi = hv_vec(v, c[i].slot, &rc);
        if (!xi) return rc;
        int good = 1;
        for (size_t j = 0; j < k && good; j++) {
            const float *xj = hv_vec(v, c[j].slot, &rc);
            if (!xj) return rc;
            if (hv_dist(v, xi, xj) < c[i].d) good = 0;
        }
        if (good) c[k++] = c[i];
    }
    *kept = k;
    return 0;
}

/* Writable record of slot at level (its block must exist). */
static int wrec(hnsw_view_t *v, int level, uint32_t slot, int create, unsigned char **out)
{
    unsigned char *b;
    int rc = hv_wblock(v, level, slot >> HNSW_LSHIFT, create, &b);
    if (rc != 0) return rc;
    *out = b + (size_t)(slot & v->lmask) * (level == 0 ? v->rec0 : v->recu);
    return 0;
}

static void set_links(unsigned char *r, int level, const hnsw_pair_t *p, size_t n)
{
    uint32_t *c = (uint32_t *)(level == 0 ? r + 12 : r);
    *c = (uint32_t)n;
    for (size_t i = 0; i < n; i++) c[1 + i] = p[i].slot;
}

/* Re-selects slot n's list at level from its current links (minus drop)
 * plus the extra slots, by distance to n. */
static int reselect(hnsw_view_t *v, uint32_t n, int level, uint32_t drop, const uint32_t *extra,
                    size_t n_extra)
{
    hnsw_pair_t buf[4 * HNSW_MAX_M + 2];
    const size_t maxc = level == 0 ? 2 * v->m.M : v->m.M;
    unsigned char *r;
    int rc = wrec(v, level, n, 0, &r);
    if (rc != 0) return rc;
    const float *xn = hv_vec(v, n, &rc);
    if (!xn) return rc;
    uint32_t cnt;
    const uint32_t *links = rec_links(r, level, &cnt);
    if (cnt > maxc) return ENGRAM_ECORRUPT;
    size_t m = 0;
    for (size_t i = 0; i < cnt + n_extra && m < EG_ARRAY_LEN(buf); i++) {
        uint32_t s = i < cnt ? links[i] : extra[i - cnt];
        if (s == drop || s == n) continue;
        if (s >= v->m.n_slots) return ENGRAM_ECORRUPT;
        int dup = 0;
        for (size_t j = 0; j < m && !dup; j++) dup = buf[j].slot == s;
        if (dup) continue;
        const float *x = hv_vec(v, s, &rc);
        if (!x) return rc;
        buf[m].d = hv_dist(v, xn, x);
        buf[m++].slot = s;
    }
    size_t kept;
    if ((rc = select_neighbours(v, buf, m, maxc, &kept)) != 0) return rc;
    set_links(r, level, buf, kept);
    return 0;
}

/* Adds link n -> slot at level, re-selecting n's list when full. */
static int connect_back(hnsw_view_t *v, uint32_t n, uint32_t slot, int level)
{
    const uint32_t maxc = level == 0 ? 2 * v->m.M : v->m.M;
    unsigned char *r;
    int rc = wrec(v, level, n, 0, &r);
    if (rc != 0) return rc;
    uint32_t cnt;
    uint32_t *links = rec_links(r, level, &cnt);
    if (cnt > maxc) return ENGRAM_ECORRUPT;
    for (uint32_t j = 0; j < cnt; j++)
        if (links[j] == slot) return 0;
    if (cnt < maxc) {
        links[cnt] = slot;
        links[-1] = cnt + 1;
        return 0;
    }
    return reselect(v, n, level, HNSW_NONE, &slot, 1);
}

static int insert_one(hnsw_view_t *v, hnsw_scratch_t *s, uint64_t id, const float *vec)
{
    hnsw_meta_t *m = &v->m;
    uint32_t slot;
    int rc = hv_id_get(v, id, &slot);
    if (rc == 0) return ENGRAM_EEXIST;
    if (rc != ENGRAM_ENOTFOUND) return rc;
    if (m->n_slots >= HNSW_NONE - 1) return ENGRAM_ETOOBIG;
    slot = m->n_slots;
    if ((rc = hv_reserve(v, slot + 1)) != 0) return rc;
    m->n_slots = slot + 1;
    uint32_t lvl = level_for(id, m->M);

    unsigned char *b;
    if ((rc = hv_wblock(v, -1, slot >> m->vshift, 1, &b)) != 0) return rc;
    float *q = (float *)(b + (size_t)(slot & v->vmask) * v->vrow);
    memcpy(q, vec, v->vrow);
    if (v->cosine) {
        float norm = sqrtf(v->dot(q, q, m->dim));
        if (norm > 0)
            for (uint32_t i = 0; i < m->dim; i++) q[i] /= norm;
    }
    unsigned char *r0;
    if ((rc = wrec(v, 0, slot, 1, &r0)) != 0) return rc;
    memset(r0, 0, v->rec0);
    memcpy(r0, &id, 8);
    r0[8] = (unsigned char)lvl;
    r0[9] = HNSW_F_USED;
    for (uint32_t l = 1; l <= lvl; l++) {
        unsigned char *r;
        if ((rc = wrec(v, (int)l, slot, 1, &r)) != 0) return rc;
        memset(r, 0, v->recu);
    }
    if ((rc = hv_id_set(v, id, slot)) != 0) return rc;

    if (m->entry == HNSW_NONE || m->n_live == 0) {
        m->entry = slot;
        m->max_level = lvl;
        m->n_live++;
        return 0;
    }
    uint32_t cur = m->entry;
    const float *x = hv_vec(v, cur, &rc);
    if (!x) return rc;
    float curd = hv_dist(v, q, x);
    for (uint32_t l = m->max_level; l > lvl; l--)
        if ((rc = greedy(v, q, &cur, &curd, (int)l)) != 0) return rc;
    accept_t acc = {m->n_live < m->n_slots - 1, NULL, NULL};
    size_t efc = EG_MAX(m->efc, m->M);
    for (int l = (int)EG_MIN(lvl, m->max_level); l >= 0; l--) {
        hnsw_pair_t ep = {curd, cur};
        if ((rc = search_layer(v, s, q, &ep, 1, efc, l, &acc)) != 0) return rc;
        if ((rc = grow(&s->tmp, &s->tmp_cap, s->res_n)) != 0) return rc;
        size_t n = s->res_n, kept;
        memcpy(s->tmp, s->res, n * sizeof *s->tmp);
        if ((rc = select_neighbours(v, s->tmp, n, m->M, &kept)) != 0) return rc;
        unsigned char *r;
        if ((rc = wrec(v, l, slot, 0, &r)) != 0) return rc;
        set_links(r, l, s->tmp, kept);
        for (size_t i = 0; i < kept; i++)
            if ((rc = connect_back(v, s->tmp[i].slot, slot, l)) != 0) return rc;
        if (kept) { cur = s->tmp[0].slot; curd = s->tmp[0].d; }
    }
    if (lvl > m->max_level) {
        m->entry = slot;
        m->max_level = lvl;
    }
    m->n_live++;
    return 0;
}

static int check_vec(const float *x, uint32_t dim)
{
    for (uint32_t i = 0; i < dim; i++)
        if (!isfinite(x[i])) return ENGRAM_EINVAL;
    return 0;
}

int hnsw_insert_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                      const uint64_t *ids, const float *vecs, size_t n, uint32_t dim)
{
    if (!txn || !st || (n && (!ids || !vecs))) return ENGRAM_EINVAL;
    hnsw_view_t v;
    hnsw_scratch_t *s = NULL;
    int rc = hv_open(&v, txn, st, ws, coll, 1);
    if (rc != 0) return rc;
    if (dim != v.m.dim) rc = ENGRAM_EINVAL;
    for (size_t i = 0; i < n && rc == 0; i++) rc = check_vec(vecs + i * v.m.dim, v.m.dim);
    if (rc == 0 && !(s = hnsw_scratch_get(NULL))) rc = ENGRAM_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) rc = insert_one(&v, s, ids[i], vecs + i * v.m.dim);
    if (rc == 0) rc = hv_flush(&v);
    hnsw_scratch_free(s);
    hv_close(&v);
    return rc;
}

int hnsw_insert(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id, const float *vec)
{
    hnsw_params_t p;
    int rc = hnsw_params_get(txn, st, ws, coll, &p);
    return rc ? rc : hnsw_insert_batch(txn, st, ws, coll, &id, vec, 1, p.dim);
}

/* Marks id's node deleted and drops it from the id map; its slot into
 * *slot. ENGRAM_ENOTFOUND when id is not indexed (or already deleted). */
static int mark_deleted(hnsw_view_t *v, uint64_t id, uint32_t *slot)
{
    unsigned char *r0;
    int rc = hv_id_get(v, id, slot);
    if (rc != 0) return rc;
    if ((rc = wrec(v, 0, *slot, 0, &r0)) != 0) return rc;
    if (rec0_flags(r0) != HNSW_F_USED || rec0_id(r0) != id || rec0_level(r0) > v->m.max_level ||
        v->m.n_live == 0)
        return ENGRAM_ECORRUPT;
    r0[9] |= HNSW_F_DELETED;
    v->m.n_live--;
    return hv_id_set(v, id, HNSW_NONE);
}

/* After slot's node was marked deleted: every live neighbour that links to
 * it re-selects its list at that level from its other links and the deleted
 * node's live ones; the entry point moves off it to a live neighbour. */
static int repair_around(hnsw_view_t *v, uint32_t slot)
{
    hnsw_meta_t *m = &v->m;
    uint32_t xl[2 * HNSW_MAX_M], new_entry = HNSW_NONE;
    int rc;
    unsigned char *r0 = hv_rec(v, 0, slot, &rc);
    if (!r0) return rc;
    for (int l = (int)rec0_level(r0); l >= 0; l--) {
        unsigned char *r = hv_rec(v, l, slot, &rc);
        if (!r) return rc;
        uint32_t cnt;
        const uint32_t *links = rec_links(r, l, &cnt);
        if (cnt > (l == 0 ? 2 * m->M : m->M)) return ENGRAM_ECORRUPT;
        memcpy(xl, links, cnt * sizeof *xl);
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t n = xl[i];
            if (n >= m->n_slots) return ENGRAM_ECORRUPT;
            unsigned char *nr0 = hv_rec(v, 0, n, &rc);
            if (!nr0) return rc;
            if ((int)rec0_level(nr0) < l) return ENGRAM_ECORRUPT;
            if (rec0_flags(nr0) & HNSW_F_DELETED) continue;
            if (new_entry == HNSW_NONE) new_entry = n;
            unsigned char *nr = hv_rec(v, l, n, &rc);
            if (!nr) return rc;
            uint32_t ncnt, has = 0;
            const uint32_t *nl = rec_links(nr, l, &ncnt);
            if (ncnt > (l == 0 ? 2 * m->M : m->M)) return ENGRAM_ECORRUPT;
            for (uint32_t j = 0; j < ncnt && !has; j++) has = nl[j] == slot;
            if (!has) continue;
            /* Candidates: n's other links and the deleted node's live ones. */
            uint32_t extra[2 * HNSW_MAX_M];
            size_t ne = 0;
            for (uint32_t j = 0; j < cnt; j++) {
                unsigned char *er = hv_rec(v, 0, xl[j], &rc);
                if (!er) return rc;
                if (!(rec0_flags(er) & HNSW_F_DELETED)) extra[ne++] = xl[j];
            }
            if ((rc = reselect(v, n, l, slot, extra, ne)) != 0) return rc;
        }
    }
    if (m->entry == slot && new_entry != HNSW_NONE) {
        unsigned char *er = hv_rec(v, 0, new_entry, &rc);
        if (!er) return rc;
        m->entry = new_entry;
        m->max_level = rec0_level(er);
    }
    return 0;
}

int hnsw_delete_batch(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const uint64_t *ids,
                      size_t n, size_t *deleted)
{
    if (deleted) *deleted = 0;
    if (!txn || !st || (!ids && n)) return ENGRAM_EINVAL;
    if (n == 0) return 0;
    hnsw_view_t v;
    int rc = hv_open(&v, txn, st, ws, coll, 1);
    if (rc != 0) return rc;
    uint32_t *slots = eg_malloc(n * sizeof *slots);
    size_t k = 0;
    if (!slots) { rc = ENGRAM_ENOMEM; goto fail; }
    /* All marked first: a node of the batch is never repaired only to be
     * deleted next, nor offered as a replacement neighbour. */
    for (size_t i = 0; i < n; i++) {
        rc = mark_deleted(&v, ids[i], &slots[k]);
        if (rc == ENGRAM_ENOTFOUND) continue;
        if (rc != 0) goto fail;
        k++;
    }
    rc = 0;
    for (size_t i = 0; i < k && !rc; i++) rc = repair_around(&v, slots[i]);
    if (!rc) rc = hv_flush(&v);
    if (!rc && deleted) *deleted = k;
fail:
    eg_free(slots);
    hv_close(&v);
    return rc;
}

int hnsw_delete(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id)
{
    size_t deleted = 0;
    int rc = hnsw_delete_batch(txn, st, ws, coll, &id, 1, &deleted);
    return rc == 0 && deleted == 0 ? ENGRAM_ENOTFOUND : rc;
}

/* ---- search ---- */

static void to_hits(hnsw_view_t *v, const hnsw_pair_t *p, size_t n, hnsw_hit_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        const unsigned char *r = hv_rec(v, 0, p[i].slot, &rc);
        out[i].id = r ? rec0_id(r) : 0;
        if (v->cosine) {
            out[i].distance = p[i].d;
            out[i].score = 1.0f - p[i].d;
        } else {
            out[i].distance = sqrtf(p[i].d > 0 ? p[i].d : 0);
            out[i].score = -out[i].distance;
        }
    }
}

/* Exact top-k over every live slot into s->res. */
static int exact_scan(hnsw_view_t *v, hnsw_scratch_t *s, const float *q, size_t k, const accept_t *acc)
{
    int rc = scratch_begin(s, v->m.n_slots, k);
    for (uint32_t slot = 0; rc == 0 && slot < v->m.n_slots; slot++) {
        int ok = 1;
        if ((rc = accept_slot(v, acc, slot, &ok)) != 0 || !ok) continue;
        const float *x = hv_vec(v, slot, &rc);
        if (!x) break;
        hnsw_pair_t p = {hv_dist(v, q, x), slot};
        if (s->res_n < k || p.d < s->res[0].d) {
            maxheap_push(s->res, &s->res_n, p);
            if (s->res_n > k) maxheap_pop(s->res, &s->res_n);
        }
    }
    return rc;
}

/* The query as searched (normalised for cosine), in the scratch's buffer:
 * no allocation per query once the scratch has served one. */
static int prepare_query(const hnsw_view_t *v, hnsw_scratch_t *s, const float *q, const float **out)
{
    *out = NULL;
    int rc = check_vec(q, v->m.dim);
    if (rc != 0) return rc;
    if (s->qcap < v->m.dim) {
        float *x = eg_realloc(s->q, v->vrow);
        if (!x) return ENGRAM_ENOMEM;
        s->q = x;
        s->qcap = v->m.dim;
    }
    float *x = s->q;
    memcpy(x, q, v->vrow);
    if (v->cosine) {
        float norm = sqrtf(v->dot(x, x, v->m.dim));
        if (norm > 0)
            for (uint32_t i = 0; i < v->m.dim; i++) x[i] /= norm;
    }
    *out = x;
    return 0;
}

static int search_view(hnsw_view_t *v, hnsw_cache_t *c, const float *q_in, size_t k, size_t ef,
                       int exact, hnsw_filter_fn filter, void *ud, hnsw_hit_t *out, size_t *n_out)
{
    const float *q = NULL;
    const hnsw_meta_t *m = &v->m;
    hnsw_scratch_t *s = hnsw_scratch_get(c);
    if (!s) return ENGRAM_ENOMEM;
    int rc = prepare_query(v, s, q_in, &q);
    if (rc != 0 || k == 0 || m->n_live == 0) goto fail;
    if (k > HNSW_MAX_EF) k = HNSW_MAX_EF;
    if (ef == 0) ef = EG_MAX((size_t)64, 2 * k);
    ef = EG_MIN(EG_MAX(ef, k), (size_t)HNSW_MAX_EF);
    accept_t acc = {filter != NULL || m->n_live < m->n_slots, filter, ud};
    if (!exact) {
        uint32_t cur = m->entry;
        const float *x = hv_vec(v, cur, &rc);
        if (!x) goto fail;
        float curd = hv_dist(v, q, x);
        for (uint32_t l = m->max_level; l > 1; l--)
            if ((rc = greedy(v, q, &cur, &curd, (int)l)) != 0) goto fail;
        /* Level 1 by a small beam rather than greedily: its best nodes
         * all seed level 0, so a query whose greedy path ends in the wrong
         * region (a wrong cluster) still reaches the right one. */
        hnsw_pair_t ep = {curd, cur};
        const hnsw_pair_t *eps = &ep;
        size_t n_eps = 1;
        if (m->max_level >= 1) {
            accept_t all = {0, NULL, NULL};   /* tombstones route here too */
            if ((rc = search_layer(v, s, q, &ep, 1, HNSW_UPPER_EF, 1, &all)) != 0) goto fail;
            if ((rc = grow(&s->tmp, &s->tmp_cap, s->res_n)) != 0) goto fail;
            memcpy(s->tmp, s->res, s->res_n * sizeof *s->tmp);
            eps = s->tmp;
            n_eps = s->res_n;
        }
        if ((rc = search_layer(v, s, q, eps, n_eps, ef, 0, &acc)) != 0) goto fail;
    }
    if (exact || (s->res_n < k && s->res_n < m->n_live)) {
        acc.active = 1;
        if ((rc = exact_scan(v, s, q, k, &acc)) != 0) goto fail;
    }
    /* Only the k best need sorting: drop the others off the max-heap. */
    while (s->res_n > k) maxheap_pop(s->res, &s->res_n);
    qsort(s->res, s->res_n, sizeof *s->res, pair_cmp);
    size_t n = EG_MIN(k, s->res_n);
    to_hits(v, s->res, n, out);
    *n_out = n;
fail:
    hnsw_scratch_put(c, s);
    return rc;
}

static int search_common(hnsw_cache_t *c, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                         const float *q, uint32_t dim, size_t k, size_t ef, int exact,
                         hnsw_filter_fn filter, void *ud, hnsw_hit_t *out, size_t *n_out)
{
    if (n_out) *n_out = 0;
    if (!txn || !st || !q || !n_out || (k && !out)) return ENGRAM_EINVAL;
    hnsw_view_t v;
    int rc = c && !exact ? hv_open_cached(&v, c, txn, ws, coll) : hv_open(&v, txn, st, ws, coll, 0);
    if (rc != 0) return rc;
    if (dim && dim != v.m.dim) {
        hv_close(&v);
        return ENGRAM_EINVAL;
    }
    rc = search_view(&v, c, q, k, ef, exact, filter, ud, out, n_out);
    hv_close(&v);
    return rc;
}

int hnsw_search(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const float *q, size_t k,
                size_t ef, hnsw_filter_fn filter, void *ud, hnsw_hit_t *out, size_t *n_out)
{
    return search_common(NULL, txn, st, ws, coll, q, 0, k, ef, 0, filter, ud, out, n_out);
}

int hnsw_search_cached(hnsw_cache_t *c, MDB_txn *txn, uint64_t ws, uint64_t coll, const float *q,
                       uint32_t dim, size_t k, size_t ef, hnsw_filter_fn filter, void *ud,
                       hnsw_hit_t *out, size_t *n_out)
{
    if (!c || dim == 0) {
        if (n_out) *n_out = 0;
        return ENGRAM_EINVAL;
    }
    return search_common(c, txn, hnsw_cache_store(c), ws, coll, q, dim, k, ef, 0, filter, ud, out,
                         n_out);
}

int hnsw_search_exact(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const float *q,
                      size_t k, hnsw_filter_fn filter, void *ud, hnsw_hit_t *out, size_t *n_out)
{
    return search_common(NULL, txn, st, ws, coll, q, 0, k, 0, 1, filter, ud, out, n_out);
}

/* ---- verify ---- */

#define VFAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); rc = ENGRAM_ECORRUPT; goto fail; } while (0)

int hnsw_verify(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, char *msg, size_t msglen)
{
    char dummy[1];
    if (!msg || !msglen) { msg = dummy; msglen = sizeof dummy; }
    msg[0] = '\0';
    if (!txn || !st) return ENGRAM_EINVAL;
    hnsw_view_t v;
    MDB_cursor *cur = NULL;
    int rc = hv_open(&v, txn, st, ws, coll, 0);
    if (rc != 0) {
        snprintf(msg, msglen, "hnsw meta: %s", engram_strerror(rc));
        return rc == ENGRAM_ENOTFOUND ? rc : ENGRAM_ECORRUPT;
    }
    const hnsw_meta_t *m = &v.m;
    uint64_t live = 0, mapped = 0;
    for (uint32_t slot = 0; slot < m->n_slots; slot++) {
        const float *x = hv_vec(&v, slot, &rc);
        if (!x) VFAIL("hnsw slot %u: vector block missing or malformed", slot);
        if (check_vec(x, m->dim) != 0) VFAIL("hnsw slot %u: non-finite vector", slot);
        unsigned char *r0 = hv_rec(&v, 0, slot, &rc);
        if (!r0) VFAIL("hnsw slot %u: level-0 block missing or malformed", slot);
        unsigned f = rec0_flags(r0), lvl = rec0_level(r0);
        if (!(f & HNSW_F_USED) || (f & ~3u)) VFAIL("hnsw slot %u: bad flags %u", slot, f);
        if (lvl > m->max_level && !(f & HNSW_F_DELETED))
            VFAIL("hnsw slot %u: level %u above max level %u", slot, lvl, m->max_level);
        if (lvl > HNSW_MAX_LEVEL) VFAIL("hnsw slot %u: level %u", slot, lvl);
        if (!(f & HNSW_F_DELETED)) {
            live++;
            uint32_t s2;
            if ((rc = hv_id_get(&v, rec0_id(r0), &s2)) != 0 || s2 != slot)
                VFAIL("hnsw slot %u: id %llu not mapped to it", slot, (unsigned long long)rec0_id(r0));
        }
        for (unsigned l = 0; l <= lvl; l++) {
            unsigned char *r = hv_rec(&v, (int)l, slot, &rc);
            if (!r) VFAIL("hnsw slot %u: level-%u block missing or malformed", slot, l);
            uint32_t cnt;
            const uint32_t *links = rec_links(r, (int)l, &cnt);
            if (cnt > (l == 0 ? 2 * m->M : m->M)) VFAIL("hnsw slot %u level %u: %u links", slot, l, cnt);
            for (uint32_t j = 0; j < cnt; j++) {
                if (links[j] >= m->n_slots || links[j] == slot)
                    VFAIL("hnsw slot %u level %u: bad link %u", slot, l, links[j]);
                unsigned char *t = hv_rec(&v, 0, links[j], &rc);
                if (!t || rec0_level(t) < l)
                    VFAIL("hnsw slot %u level %u: link %u has no such level", slot, l, links[j]);
            }
        }
    }
    if (live != m->n_live)
        VFAIL("hnsw: %llu live nodes, meta says %llu", (unsigned long long)live,
              (unsigned long long)m->n_live);
    if (m->entry != HNSW_NONE) {
        unsigned char *e = hv_rec(&v, 0, m->entry, &rc);
        if (!e || rec0_level(e) != m->max_level)
            VFAIL("hnsw: entry point %u is not at the max level %u", m->entry, m->max_level);
    }
    /* The id map: each entry names a live slot carrying that id. */
    unsigned char pre[17];
    be64_put(pre, ws);
    be64_put(pre + 8, coll);
    pre[16] = 'I';
    MDB_val key = {17, pre}, val;
    if ((rc = mdb_cursor_open(txn, v.dbi, &cur)) != 0) VFAIL("hnsw: cursor: %s", mdb_strerror(rc));
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size >= 17 && memcmp(key.mv_data, pre, 17) == 0) {
        if (key.mv_size != 25 || val.mv_size != 4) VFAIL("hnsw: malformed id map entry");
        uint64_t id = be64_get((const unsigned char *)key.mv_data + 17);
        uint32_t slot = be32_get(val.mv_data);
        unsigned char *r0 = slot < m->n_slots ? hv_rec(&v, 0, slot, &rc) : NULL;
        if (!r0 || rec0_id(r0) != id || (rec0_flags(r0) & HNSW_F_DELETED))
            VFAIL("hnsw: id %llu maps to slot %u, which is not it", (unsigned long long)id, slot);
        mapped++;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (rc != 0 && rc != MDB_NOTFOUND) VFAIL("hnsw: cursor: %s", mdb_strerror(rc));
    rc = 0;
    if (mapped != live)
        VFAIL("hnsw: %llu ids mapped, %llu live nodes", (unsigned long long)mapped,
              (unsigned long long)live);
fail:
    if (cur) mdb_cursor_close(cur);
    hv_close(&v);
    return rc;
}
