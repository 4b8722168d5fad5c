/*
 * hnsw_store.c - the HNSW index's storage: the meta record, block keys,
 * views (tables of block addresses with copy-on-write for writes), the id
 * map, and the search cache of block tables shared across read txns.
 *
 * Keys (DB_HNSW_NODES): ws(8) coll(8) 'V' block(4) for vectors,
 * ws(8) coll(8) 'L' level(1) block(4) for links, ws(8) coll(8) 'I' id(8) ->
 * slot(4, big-endian) for the id map; DB_HNSW_META: ws(8) coll(8) -> meta.
 *
 * Meta record, 64 bytes, big-endian except the byte-order mark:
 *   0 "HNSW" | 4 version | 8 byte-order mark (0x01020304 in host order) |
 *   12 dim | 16 metric | 20 M | 24 ef_construction | 28 vshift | 32 lshift |
 *   36 max level | 40 entry slot | 44 slots | 48 live count (8) | 56 gen (8)
 *
 * Cache validity: LMDB never changes the pages of a value in place: a value
 * rewritten by a write txn gets new pages, and the old ones are reused only
 * once no reader sees them. Every write to an index stores the writing txn's
 * id as the meta's gen, so a read txn that sees gen G sees exactly the block
 * values (at the same pages) that any other read txn seeing G saw. A
 * snapshot of block addresses is therefore valid for every read txn whose
 * meta shows the snapshot's gen, while the map is mapped at the same address
 * (map growth remaps only when no read txn is open, so no search holds a
 * snapshot across it). Snapshots are refcounted under the cache mutex and
 * replaced when a newer gen is seen.
 */
#include "index/hnsw_internal.h"

#include <pthread.h>
#include <stdlib.h>

#include "store/store.h"

#define HNSW_CACHE_SLOTS 64

static const unsigned char hnsw_magic[4] = {'H', 'N', 'S', 'W'};

uint32_t hnsw_vshift_for(uint32_t dim)
{
    uint32_t s = 4;
    while (s < 12 && ((size_t)2 << s) * dim * sizeof(float) <= HNSW_VBLOCK_TARGET) s++;
    return s;
}

void hnsw_meta_encode(const hnsw_meta_t *m, unsigned char out[64])
{
    uint32_t bom = 0x01020304u;
    memset(out, 0, 64);
    memcpy(out, hnsw_magic, 4);
    be32_put(out + 4, HNSW_FORMAT_VERSION);
    memcpy(out + 8, &bom, 4);
    be32_put(out + 12, m->dim);
    be32_put(out + 16, m->metric);
    be32_put(out + 20, m->M);
    be32_put(out + 24, m->efc);
    be32_put(out + 28, m->vshift);
    be32_put(out + 32, m->lshift);
    be32_put(out + 36, m->max_level);
    be32_put(out + 40, m->entry);
    be32_put(out + 44, m->n_slots);
    be64_put(out + 48, m->n_live);
    be64_put(out + 56, m->gen);
}

int hnsw_meta_decode(const void *p, size_t len, hnsw_meta_t *m)
{
    const unsigned char *b = p;
    uint32_t bom;
    if (len != 64 || memcmp(b, hnsw_magic, 4) != 0) return ENGRAM_ECORRUPT;
    if (be32_get(b + 4) != HNSW_FORMAT_VERSION) return ENGRAM_EVERSION;
    memcpy(&bom, b + 8, 4);
    if (bom != 0x01020304u) return bom == 0x04030201u ? ENGRAM_EVERSION : ENGRAM_ECORRUPT;
    m->dim = be32_get(b + 12);
    m->metric = be32_get(b + 16);
    m->M = be32_get(b + 20);
    m->efc = be32_get(b + 24);
    m->vshift = be32_get(b + 28);
    m->lshift = be32_get(b + 32);
    m->max_level = be32_get(b + 36);
    m->entry = be32_get(b + 40);
    m->n_slots = be32_get(b + 44);
    m->n_live = be64_get(b + 48);
    m->gen = be64_get(b + 56);
    if (m->dim < 1 || m->dim > HNSW_MAX_DIM) return ENGRAM_ECORRUPT;
    if (m->metric != HNSW_COSINE && m->metric != HNSW_L2) return ENGRAM_ECORRUPT;
    if (m->M < 2 || m->M > HNSW_MAX_M || m->efc < 1 || m->efc > HNSW_MAX_EF) return ENGRAM_ECORRUPT;
    if (m->vshift != hnsw_vshift_for(m->dim) || m->lshift != HNSW_LSHIFT) return ENGRAM_ECORRUPT;
    if (m->max_level > HNSW_MAX_LEVEL || m->n_live > m->n_slots || m->n_slots == HNSW_NONE)
        return ENGRAM_ECORRUPT;
    if ((m->n_slots == 0) != (m->entry == HNSW_NONE)) return ENGRAM_ECORRUPT;
    if (m->entry != HNSW_NONE && m->entry >= m->n_slots) return ENGRAM_ECORRUPT;
    return 0;
}

static void key_prefix(store_key_t *k, uint64_t ws, uint64_t coll)
{
    skey_init(k);
    skey_u64(k, ws);
    skey_u64(k, coll);
}

static void key_block(store_key_t *k, uint64_t ws, uint64_t coll, int level, uint32_t b)
{
    key_prefix(k, ws, coll);
    if (level < 0) {
        skey_u8(k, 'V');
    } else {
        skey_u8(k, 'L');
        skey_u8(k, (uint8_t)level);
    }
    skey_u32(k, b);
}

static void key_id(store_key_t *k, uint64_t ws, uint64_t coll, uint64_t id)
{
    key_prefix(k, ws, coll);
    skey_u8(k, 'I');
    skey_u64(k, id);
}

static void view_geometry(hnsw_view_t *v)
{
    const hnsw_meta_t *m = &v->m;
    size_t nv = (size_t)1 << m->vshift, nl = (size_t)1 << HNSW_LSHIFT;
    v->vrow = (size_t)m->dim * sizeof(float);
    v->rec0 = 16 + (size_t)8 * m->M;
    v->recu = 4 + (size_t)4 * m->M;
    v->vbytes = EG_MAX(nv * v->vrow, (size_t)HNSW_MIN_BLOCK);
    v->l0bytes = EG_MAX(nl * v->rec0, (size_t)HNSW_MIN_BLOCK);
    v->lubytes = EG_MAX(nl * v->recu, (size_t)HNSW_MIN_BLOCK);
    v->vmask = (uint32_t)(nv - 1);
    v->lmask = (uint32_t)(nl - 1);
    v->cosine = m->metric == HNSW_COSINE;
    const distance_kernels_t *k = distance_kernels();
    v->l2sq = k->l2sq;
    v->dot = k->dot;
}

static size_t block_bytes(const hnsw_view_t *v, int level)
{
    return level < 0 ? v->vbytes : level == 0 ? v->l0bytes : v->lubytes;
}

static int read_meta(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, hnsw_meta_t *m)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    MDB_val key = skey_val(&k), val;
    int rc = mdb_get(txn, store_dbi(st, DB_HNSW_META), &key, &val);
    if (rc != 0) return store_status(rc);
    return hnsw_meta_decode(val.mv_data, val.mv_size, m);
}

static int table_reserve(hnsw_table_t *t, uint32_t n, int with_dirty)
{
    if (n > t->cap) {
        uint32_t cap = t->cap ? t->cap : 16;
        while (cap < n) cap *= 2;
        unsigned char **p = eg_realloc(t->p, cap * sizeof *p);
        if (!p) return ENGRAM_ENOMEM;
        t->p = p;
        memset(p + t->cap, 0, (cap - t->cap) * sizeof *p);
        if (with_dirty) {
            unsigned char *d = eg_realloc(t->dirty, cap);
            if (!d) return ENGRAM_ENOMEM;
            t->dirty = d;
            memset(d + t->cap, 0, cap - t->cap);
        }
        t->cap = cap;
    }
    if (n > t->n) t->n = n;
    return 0;
}

int hv_reserve(hnsw_view_t *v, uint32_t n_slots)
{
    uint32_t nv = (uint32_t)(((uint64_t)n_slots + v->vmask) >> v->m.vshift);
    uint32_t nl = (uint32_t)(((uint64_t)n_slots + v->lmask) >> HNSW_LSHIFT);
    int rc = table_reserve(&v->vec, nv, v->write);
    for (int l = 0; rc == 0 && l < HNSW_LEVELS; l++) rc = table_reserve(&v->lnk[l], nl, v->write);
    return rc;
}

static int view_init(hnsw_view_t *v, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll)
{
    memset(v, 0, sizeof *v);
    v->txn = txn;
    v->st = st;
    v->dbi = store_dbi(st, DB_HNSW_NODES);
    v->ws = ws;
    v->coll = coll;
    int rc = read_meta(txn, st, ws, coll, &v->m);
    if (rc != 0) return rc;
    view_geometry(v);
    return 0;
}

int hv_open(hnsw_view_t *v, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, int write)
{
    int rc = view_init(v, txn, st, ws, coll);
    if (rc != 0) return rc;
    v->write = write;
    v->lazy = 1;
    v->owns_tables = 1;
    rc = hv_reserve(v, v->m.n_slots);
    if (rc != 0) hv_close(v);
    return rc;
}

static void table_free(hnsw_table_t *t)
{
    if (t->dirty)
        for (uint32_t i = 0; i < t->n; i++)
            if (t->dirty[i]) eg_free(t->p[i]);
    eg_free(t->p);
    eg_free(t->dirty);
    memset(t, 0, sizeof *t);
}

static void snap_release(hnsw_cache_t *c, struct hnsw_snap *s);

void hv_close(hnsw_view_t *v)
{
    if (v->owns_tables) {
        table_free(&v->vec);
        for (int l = 0; l < HNSW_LEVELS; l++) table_free(&v->lnk[l]);
    }
    if (v->snap) snap_release(NULL, v->snap);
    eg_free(v->pend.ids);
    eg_free(v->pend.slots);
    eg_free(v->pend.hash);
    memset(v, 0, sizeof *v);
}

/* A stored block must have the exact size and float alignment (overflow
 * pages guarantee 16 bytes; anything else was not written by us). */
static int check_block(const hnsw_view_t *v, int level, const MDB_val *val)
{
    if (val->mv_size != block_bytes(v, level) || ((uintptr_t)val->mv_data & 7) != 0)
        return ENGRAM_ECORRUPT;
    return 0;
}

int hv_fetch(hnsw_view_t *v, int level, uint32_t b, unsigned char **out)
{
    hnsw_table_t *t = level < 0 ? &v->vec : &v->lnk[level];
    *out = NULL;
    if (b >= t->n) return 0;
    if (t->p[b]) { *out = t->p[b]; return 0; }
    if (!v->lazy) return 0;
    store_key_t k;
    key_block(&k, v->ws, v->coll, level, b);
    MDB_val key = skey_val(&k), val;
    int rc = mdb_get(v->txn, v->dbi, &key, &val);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc != 0) return store_status(rc);
    if ((rc = check_block(v, level, &val)) != 0) return rc;
    t->p[b] = val.mv_data;
    *out = t->p[b];
    return 0;
}

int hv_wblock(hnsw_view_t *v, int level, uint32_t b, int create, unsigned char **out)
{
    hnsw_table_t *t = level < 0 ? &v->vec : &v->lnk[level];
    *out = NULL;
    if (!v->write || b >= t->n) return ENGRAM_EINVAL;
    if (t->dirty[b]) { *out = t->p[b]; return 0; }
    unsigned char *old;
    int rc = hv_fetch(v, level, b, &old);
    if (rc != 0) return rc;
    if (!old && !create) return ENGRAM_ECORRUPT;
    size_t n = block_bytes(v, level);
    unsigned char *p = old ? eg_malloc(n) : eg_calloc(1, n);
    if (!p) return ENGRAM_ENOMEM;
    if (old) memcpy(p, old, n);
    t->p[b] = p;
    t->dirty[b] = 1;
    *out = p;
    return 0;
}

static size_t id_hash(uint64_t id, size_t cap)
{
    id ^= id >> 33; id *= 0xff51afd7ed558ccdULL; id ^= id >> 33;
    return (size_t)id & (cap - 1);
}

static int pend_find(const hnsw_pending_t *p, uint64_t id)
{
    if (!p->hcap) return -1;
    for (size_t h = id_hash(id, p->hcap);; h = (h + 1) & (p->hcap - 1)) {
        uint32_t e = p->hash[h];
        if (e == 0) return -1;
        if (p->ids[e - 1] == id) return (int)(e - 1);
    }
}

int hv_id_get(hnsw_view_t *v, uint64_t id, uint32_t *slot)
{
    int i = pend_find(&v->pend, id);
    if (i >= 0) {
        *slot = v->pend.slots[i];
        return *slot == HNSW_NONE ? ENGRAM_ENOTFOUND : 0;
    }
    store_key_t k;
    key_id(&k, v->ws, v->coll, id);
    MDB_val key = skey_val(&k), val;
    int rc = mdb_get(v->txn, v->dbi, &key, &val);
    if (rc != 0) return store_status(rc);
    if (val.mv_size != 4) return ENGRAM_ECORRUPT;
    *slot = be32_get(val.mv_data);
    if (*slot >= v->m.n_slots) return ENGRAM_ECORRUPT;
    return 0;
}

int hv_id_set(hnsw_view_t *v, uint64_t id, uint32_t slot)
{
    hnsw_pending_t *p = &v->pend;
    int i = pend_find(p, id);
    if (i >= 0) { p->slots[i] = slot; return 0; }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        uint64_t *ids = eg_realloc(p->ids, cap * sizeof *ids);
        if (!ids) return ENGRAM_ENOMEM;
        p->ids = ids;
        uint32_t *sl = eg_realloc(p->slots, cap * sizeof *sl);
        if (!sl) return ENGRAM_ENOMEM;
        p->slots = sl;
        p->cap = cap;
    }
    if ((p->n + 1) * 2 > p->hcap) {
        size_t hcap = p->hcap ? p->hcap * 2 : 64;
        while ((p->n + 1) * 2 > hcap) hcap *= 2;
        uint32_t *h = eg_calloc(hcap, sizeof *h);
        if (!h) return ENGRAM_ENOMEM;
        eg_free(p->hash);
        p->hash = h;
        p->hcap = hcap;
        for (size_t j = 0; j < p->n; j++) {
            size_t x = id_hash(p->ids[j], hcap);
            while (h[x]) x = (x + 1) & (hcap - 1);
            h[x] = (uint32_t)(j + 1);
        }
    }
    p->ids[p->n] = id;
    p->slots[p->n] = slot;
    size_t x = id_hash(id, p->hcap);
    while (p->hash[x]) x = (x + 1) & (p->hcap - 1);
    p->hash[x] = (uint32_t)(p->n + 1);
    p->n++;
    return 0;
}

static int put_table(hnsw_view_t *v, int level)
{
    hnsw_table_t *t = level < 0 ? &v->vec : &v->lnk[level];
    for (uint32_t b = 0; b < t->n; b++) {
        if (!t->dirty[b]) continue;
        store_key_t k;
        key_block(&k, v->ws, v->coll, level, b);
        MDB_val key = skey_val(&k), val = {block_bytes(v, level), t->p[b]};
        int rc = mdb_put(v->txn, v->dbi, &key, &val, 0);
        if (rc != 0) return store_status(rc);
    }
    return 0;
}

int hv_flush(hnsw_view_t *v)
{
    if (!v->write) return ENGRAM_EINVAL;
    int rc = put_table(v, -1);
    for (int l = 0; rc == 0 && l < HNSW_LEVELS; l++) rc = put_table(v, l);
    for (size_t i = 0; rc == 0 && i < v->pend.n; i++) {
        store_key_t k;
        key_id(&k, v->ws, v->coll, v->pend.ids[i]);
        MDB_val key = skey_val(&k);
        if (v->pend.slots[i] == HNSW_NONE) {
            rc = mdb_del(v->txn, v->dbi, &key, NULL);
            if (rc == MDB_NOTFOUND) rc = 0;
        } else {
            unsigned char s[4];
            be32_put(s, v->pend.slots[i]);
            MDB_val val = {4, s};
            rc = mdb_put(v->txn, v->dbi, &key, &val, 0);
        }
        if (rc != 0) rc = store_status(rc);
    }
    if (rc == 0) {
        unsigned char buf[64];
        v->m.gen = mdb_txn_id(v->txn);
        hnsw_meta_encode(&v->m, buf);
        store_key_t k;
        key_prefix(&k, v->ws, v->coll);
        MDB_val key = skey_val(&k), val = {64, buf};
        rc = mdb_put(v->txn, store_dbi(v->st, DB_HNSW_META), &key, &val, 0);
        if (rc != 0) rc = store_status(rc);
    }
    return rc;
}

/* ---- public entry points that need no graph work ---- */

int hnsw_create(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const hnsw_params_t *p)
{
    if (!txn || !st || !p) return ENGRAM_EINVAL;
    hnsw_meta_t m = {0};
    m.dim = p->dim;
    m.metric = (uint32_t)p->metric;
    m.M = p->M ? p->M : 16;
    m.efc = p->ef_construction ? p->ef_construction : 200;
    if (m.dim < 1 || m.dim > HNSW_MAX_DIM || (p->metric != HNSW_COSINE && p->metric != HNSW_L2) ||
        m.M < 2 || m.M > HNSW_MAX_M || m.efc > HNSW_MAX_EF)
        return ENGRAM_EINVAL;
    hnsw_meta_t old;
    int rc = read_meta(txn, st, ws, coll, &old);
    if (rc == 0)
        return old.dim == m.dim && old.metric == m.metric && old.M == m.M && old.efc == m.efc
                   ? ENGRAM_EEXIST : ENGRAM_EINVAL;
    if (rc != ENGRAM_ENOTFOUND) return rc;
    m.vshift = hnsw_vshift_for(m.dim);
    m.lshift = HNSW_LSHIFT;
    m.entry = HNSW_NONE;
    m.gen = mdb_txn_id(txn);
    unsigned char buf[64];
    hnsw_meta_encode(&m, buf);
    store_key_t k;
    key_prefix(&k, ws, coll);
    MDB_val key = skey_val(&k), val = {64, buf};
    rc = mdb_put(txn, store_dbi(st, DB_HNSW_META), &key, &val, 0);
    return rc ? store_status(rc) : 0;
}

int hnsw_params_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, hnsw_params_t *out)
{
    if (!txn || !st || !out) return ENGRAM_EINVAL;
    hnsw_meta_t m;
    int rc = read_meta(txn, st, ws, coll, &m);
    if (rc != 0) return rc;
    out->dim = m.dim;
    out->metric = (int)m.metric;
    out->M = m.M;
    out->ef_construction = m.efc;
    return 0;
}

int hnsw_count(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n)
{
    if (!txn || !st || !n) return ENGRAM_EINVAL;
    *n = 0;
    hnsw_meta_t m;
    int rc = read_meta(txn, st, ws, coll, &m);
    if (rc == 0) *n = m.n_live;
    return rc;
}

int hnsw_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll)
{
    if (!txn || !st) return ENGRAM_EINVAL;
    store_key_t k;
    key_prefix(&k, ws, coll);
    MDB_val key = skey_val(&k);
    int rc = mdb_del(txn, store_dbi(st, DB_HNSW_META), &key, NULL);
    if (rc != 0) return store_status(rc);
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(txn, store_dbi(st, DB_HNSW_NODES), &cur);
    if (rc != 0) return store_status(rc);
    MDB_val ck = key, cv;
    rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_RANGE);
    while (rc == 0 && ck.mv_size >= 16 && memcmp(ck.mv_data, k.b, 16) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc == 0) rc = mdb_cursor_get(cur, &ck, &cv, MDB_GET_CURRENT);
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store_status(rc);
}

/* ---- scratch ---- */

void hnsw_scratch_free(hnsw_scratch_t *s)
{
    if (!s) return;
    eg_free(s->mark);
    eg_free(s->cand);
    eg_free(s->res);
    eg_free(s->tmp);
    eg_free(s->q);
    eg_free(s);
}

/* ---- the cache ---- */

typedef struct hnsw_snap {
    uint64_t ws, coll, gen;
    void *mapaddr;
    int refs;               /* the cache's own reference counts as one */
    uint64_t used;          /* cache tick of the last use */
    hnsw_cache_t *cache;
    hnsw_table_t vec;
    hnsw_table_t lnk[HNSW_LEVELS];
} hnsw_snap_t;

struct hnsw_cache {
    store_t *st;
    pthread_mutex_t mu;
    hnsw_snap_t *snaps[HNSW_CACHE_SLOTS];
    uint64_t tick;
    hnsw_scratch_t *free_scratch;
    size_t n_free;
};

int hnsw_cache_new(store_t *st, hnsw_cache_t **out)
{
    *out = NULL;
    if (!st) return ENGRAM_EINVAL;
    hnsw_cache_t *c = eg_calloc(1, sizeof *c);
    if (!c) return ENGRAM_ENOMEM;
    c->st = st;
    if (pthread_mutex_init(&c->mu, NULL) != 0) { eg_free(c); return ENGRAM_ENOMEM; }
    *out = c;
    return 0;
}

store_t *hnsw_cache_store(const hnsw_cache_t *c)
{
    return c->st;
}

static void snap_free(hnsw_snap_t *s)
{
    table_free(&s->vec);
    for (int l = 0; l < HNSW_LEVELS; l++) table_free(&s->lnk[l]);
    eg_free(s);
}

void hnsw_cache_free(hnsw_cache_t *c)
{
    if (!c) return;
    for (int i = 0; i < HNSW_CACHE_SLOTS; i++)
        if (c->snaps[i]) snap_free(c->snaps[i]);
    while (c->free_scratch) {
        hnsw_scratch_t *s = c->free_scratch;
        c->free_scratch = s->next;
        hnsw_scratch_free(s);
    }
    pthread_mutex_destroy(&c->mu);
    eg_free(c);
}

static void snap_release(hnsw_cache_t *c, hnsw_snap_t *s)
{
    (void)c;
    hnsw_cache_t *cache = s->cache;
    pthread_mutex_lock(&cache->mu);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&cache->mu);
    if (last) snap_free(s);
}

/* Fills a snapshot's tables with a cursor walk over the collection's blocks
 * (in the view's read txn). */
static int snap_build(hnsw_view_t *v, hnsw_snap_t *s)
{
    hnsw_view_t *t = v;
    int rc = 0;
    t->owns_tables = 1;
    t->write = 0;
    if ((rc = hv_reserve(t, t->m.n_slots)) != 0) return rc;
    store_key_t k;
    key_prefix(&k, v->ws, v->coll);
    MDB_val key = skey_val(&k), val;
    MDB_cursor *cur = NULL;
    rc = mdb_cursor_open(v->txn, v->dbi, &cur);
    if (rc != 0) return store_status(rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size > 16 && memcmp(key.mv_data, k.b, 16) == 0) {
        const unsigned char *kb = key.mv_data;
        int level;
        uint32_t b;
        if (kb[16] == 'V' && key.mv_size == 21) {
            level = -1;
            b = be32_get(kb + 17);
        } else if (kb[16] == 'L' && key.mv_size == 22 && kb[17] < HNSW_LEVELS) {
            level = kb[17];
            b = be32_get(kb + 18);
        } else if (kb[16] == 'I') {
            /* The id map follows the blocks ('I' < 'L' < 'V' do not matter:
             * skip it wholesale by seeking past it). */
            unsigned char next[17];
            memcpy(next, k.b, 16);
            next[16] = 'I' + 1;
            key.mv_size = 17;
            key.mv_data = next;
            rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
            continue;
        } else {
            rc = ENGRAM_ECORRUPT;
            break;
        }
        hnsw_table_t *tb = level < 0 ? &t->vec : &t->lnk[level];
        if (b >= tb->n || check_block(t, level, &val) != 0) { rc = ENGRAM_ECORRUPT; break; }
        tb->p[b] = val.mv_data;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND && rc != 0) return rc < 0 ? rc : store_status(rc);
    s->vec = t->vec;
    memcpy(s->lnk, t->lnk, sizeof s->lnk);
    memset(&t->vec, 0, sizeof t->vec);
    memset(t->lnk, 0, sizeof t->lnk);
    return 0;
}

int hv_open_cached(hnsw_view_t *v, hnsw_cache_t *c, MDB_txn *txn, uint64_t ws, uint64_t coll)
{
    int rc = view_init(v, txn, c->st, ws, coll);
    if (rc != 0) return rc;
    MDB_envinfo info;
    if ((rc = mdb_env_info(store_env(c->st), &info)) != 0) return store_status(rc);
    hnsw_snap_t *s = NULL;
    pthread_mutex_lock(&c->mu);
    c->tick++;
    for (int i = 0; i < HNSW_CACHE_SLOTS; i++) {
        hnsw_snap_t *x = c->snaps[i];
        if (x && x->ws == ws && x->coll == coll && x->gen == v->m.gen && x->mapaddr == info.me_mapaddr) {
            s = x;
            s->refs++;
            s->used = c->tick;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (!s) {
        s = eg_calloc(1, sizeof *s);
        if (!s) return ENGRAM_ENOMEM;
        s->ws = ws;
        s->coll = coll;
        s->gen = v->m.gen;
        s->mapaddr = info.me_mapaddr;
        s->cache = c;
        s->refs = 2;   /* ours and the cache's */
        if ((rc = snap_build(v, s)) != 0) {
            hv_close(v);
            snap_free(s);
            return rc;
        }
        /* Publish: replace the same collection's older entry, else the
         * least recently used one. */
        hnsw_snap_t *drop = NULL;
        pthread_mutex_lock(&c->mu);
        int victim = -1;
        for (int i = 0; i < HNSW_CACHE_SLOTS; i++) {
            hnsw_snap_t *x = c->snaps[i];
            if (!x || (x->ws == ws && x->coll == coll)) { victim = i; break; }
            if (victim < 0 || x->used < c->snaps[victim]->used) victim = i;
        }
        drop = c->snaps[victim];
        c->snaps[victim] = s;
        s->used = ++c->tick;
        if (drop && --drop->refs > 0) drop = NULL;
        pthread_mutex_unlock(&c->mu);
        if (drop) snap_free(drop);
    }
    v->snap = s;
    v->owns_tables = 0;
    v->lazy = 0;
    v->write = 0;
    v->vec = s->vec;
    memcpy(v->lnk, s->lnk, sizeof v->lnk);
    return 0;
}

hnsw_scratch_t *hnsw_scratch_get(hnsw_cache_t *c)
{
    hnsw_scratch_t *s = NULL;
    if (c) {
        pthread_mutex_lock(&c->mu);
        if ((s = c->free_scratch) != NULL) {
            c->free_scratch = s->next;
            c->n_free--;
        }
        pthread_mutex_unlock(&c->mu);
    }
    if (!s) s = eg_calloc(1, sizeof *s);
    if (s) s->next = NULL;
    return s;
}

void hnsw_scratch_put(hnsw_cache_t *c, hnsw_scratch_t *s)
{
    if (!s) return;
    if (c) {
        pthread_mutex_lock(&c->mu);
        if (c->n_free < 64) {
            s->next = c->free_scratch;
            c->free_scratch = s;
            c->n_free++;
            s = NULL;
        }
        pthread_mutex_unlock(&c->mu);
    }
    hnsw_scratch_free(s);
}
