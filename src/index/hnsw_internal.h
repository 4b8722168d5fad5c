/*
 * hnsw_internal.h - what hnsw.c (the graph algorithm) and hnsw_store.c (the
 * storage layout, block tables, cache) share; not for use elsewhere.
 *
 * A view is one call's window on a collection's index: the decoded meta and
 * tables of block addresses, one per kind (vectors; links of each level),
 * indexed by slot >> shift. Read views point into the map (fetched lazily
 * with mdb_get, or all at once from a hnsw_cache_t snapshot). Write views
 * copy a block to the heap the first time it is modified (dirty) and write
 * every dirty block, the id map changes and the meta at hv_flush, after all
 * reads: an mdb_put may move pages a pointer from mdb_get still points to.
 *
 * Record layouts (host byte order, in blocks of 2^lshift slots):
 *   level 0:  u64 id | u8 level | u8 flags | u16 0 | u32 count | u32 links[2M]
 *   level>0:  u32 count | u32 links[M]
 * and vectors: dim floats a slot, blocks of 2^vshift slots. Every block
 * value is at least HNSW_MIN_BLOCK bytes so LMDB stores it on overflow pages
 * (page-aligned + 16 bytes: floats and u32 are aligned in the map).
 */
#ifndef ENGRAM_HNSW_INTERNAL_H
#define ENGRAM_HNSW_INTERNAL_H

#include "index/distance.h"
#include "index/hnsw.h"
#include "util/common.h"

#define HNSW_NONE 0xFFFFFFFFu
#define HNSW_LSHIFT 7            /* 128 link records a block */
#define HNSW_MIN_BLOCK 4096
#define HNSW_VBLOCK_TARGET 131072 /* bytes of vectors a block, at most */
#define HNSW_F_USED 1
#define HNSW_F_DELETED 2
#define HNSW_LEVELS (HNSW_MAX_LEVEL + 1)

typedef struct hnsw_meta {
    uint32_t dim, metric, M, efc;
    uint32_t vshift, lshift;
    uint32_t max_level;
    uint32_t entry;      /* HNSW_NONE when no slot is used */
    uint32_t n_slots;    /* slots ever allocated (deleted ones included) */
    uint64_t n_live;
    uint64_t gen;        /* txn id of the last write */
} hnsw_meta_t;

typedef struct hnsw_table {
    uint32_t n, cap;         /* entries in use (blocks), allocated */
    unsigned char **p;       /* block addresses, NULL = not fetched / absent */
    unsigned char *dirty;    /* write views: 1 = heap copy owned by the view */
} hnsw_table_t;

typedef struct hnsw_pending {  /* write views: id map changes */
    uint64_t *ids;
    uint32_t *slots;         /* HNSW_NONE = delete the mapping */
    size_t n, cap;
    uint32_t *hash;          /* open addressing over ids: index + 1, 0 empty */
    size_t hcap;
} hnsw_pending_t;

typedef struct hnsw_view {
    MDB_txn *txn;
    store_t *st;
    MDB_dbi dbi;
    uint64_t ws, coll;
    hnsw_meta_t m;
    int write;               /* write view: dirty copies, hv_flush */
    int lazy;                /* fetch absent blocks with mdb_get */
    int owns_tables;         /* tables allocated here (not a cache snapshot's) */
    int cosine;
    distance_fn l2sq, dot;
    size_t vrow, rec0, recu;             /* bytes a slot */
    size_t vbytes, l0bytes, lubytes;     /* bytes a block */
    uint32_t vmask, lmask;
    hnsw_table_t vec;
    hnsw_table_t lnk[HNSW_LEVELS];
    hnsw_pending_t pend;
    int meta_dirty;
    struct hnsw_snap *snap;  /* held reference when reading through a cache */
} hnsw_view_t;

/* hnsw_store.c */
int hnsw_meta_decode(const void *p, size_t len, hnsw_meta_t *m);
void hnsw_meta_encode(const hnsw_meta_t *m, unsigned char out[64]);
uint32_t hnsw_vshift_for(uint32_t dim);
/* Opens a view; ENGRAM_ENOTFOUND when (ws, coll) has no index. */
int hv_open(hnsw_view_t *v, MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, int write);
/* Same through cache c (read views only). */
int hv_open_cached(hnsw_view_t *v, hnsw_cache_t *c, MDB_txn *txn, uint64_t ws, uint64_t coll);
void hv_close(hnsw_view_t *v);
store_t *hnsw_cache_store(const hnsw_cache_t *c);
/* Fetches block b of kind level (-1 vectors, 0.. links) into the table;
 * *out NULL (status 0) when the block does not exist. */
int hv_fetch(hnsw_view_t *v, int level, uint32_t b, unsigned char **out);
/* A writable copy of block b (created zeroed when absent and create). */
int hv_wblock(hnsw_view_t *v, int level, uint32_t b, int create, unsigned char **out);
/* Makes the tables cover n_slots slots. */
int hv_reserve(hnsw_view_t *v, uint32_t n_slots);
/* id map: slot of id (pending changes first); ENGRAM_ENOTFOUND when none. */
int hv_id_get(hnsw_view_t *v, uint64_t id, uint32_t *slot);
int hv_id_set(hnsw_view_t *v, uint64_t id, uint32_t slot);
/* Writes dirty blocks, id map changes and the meta (write views). */
int hv_flush(hnsw_view_t *v);

/* Per-search scratch: a generation-stamped visited set, two heaps and the
 * query buffer; pooled in a hnsw_cache_t, so a search allocates nothing. */
typedef struct hnsw_pair { float d; uint32_t slot; } hnsw_pair_t;
typedef struct hnsw_scratch {
    uint16_t *mark;
    uint32_t mark_cap;
    uint16_t tag;
    hnsw_pair_t *cand, *res, *tmp;
    size_t cand_n, cand_cap, res_n, res_cap, tmp_cap;
    float *q;                /* the prepared query */
    uint32_t qcap;           /* floats allocated at q */
    struct hnsw_scratch *next;
} hnsw_scratch_t;
hnsw_scratch_t *hnsw_scratch_get(hnsw_cache_t *c);   /* NULL on ENOMEM */
void hnsw_scratch_put(hnsw_cache_t *c, hnsw_scratch_t *s);
void hnsw_scratch_free(hnsw_scratch_t *s);

/* Block addresses of slots; NULL with *rc set on a missing block. */
static inline unsigned char *hv_block(hnsw_view_t *v, int level, uint32_t b, int *rc)
{
    hnsw_table_t *t = level < 0 ? &v->vec : &v->lnk[level];
    unsigned char *p = b < t->n ? t->p[b] : NULL;
    if (__builtin_expect(p != NULL, 1)) return p;
    int r = v->lazy && b < t->n ? hv_fetch(v, level, b, &p) : 0;
    if (r == 0 && !p) r = ENGRAM_ECORRUPT;
    *rc = r;
    return p;
}

static inline const float *hv_vec(hnsw_view_t *v, uint32_t slot, int *rc)
{
    unsigned char *b = hv_block(v, -1, slot >> v->m.vshift, rc);
    return b ? (const float *)(b + (size_t)(slot & v->vmask) * v->vrow) : NULL;
}

/* Level 0 record of slot, or the level > 0 record. */
static inline unsigned char *hv_rec(hnsw_view_t *v, int level, uint32_t slot, int *rc)
{
    unsigned char *b = hv_block(v, level, slot >> HNSW_LSHIFT, rc);
    if (!b) return NULL;
    return b + (size_t)(slot & v->lmask) * (level == 0 ? v->rec0 : v->recu);
}

static inline uint32_t *rec_links(unsigned char *r, int level, uint32_t *count)
{
    uint32_t *c = (uint32_t *)(level == 0 ? r + 12 : r);
    *count = *c;
    return c + 1;
}
static inline uint64_t rec0_id(const unsigned char *r) { uint64_t id; memcpy(&id, r, 8); return id; }
static inline unsigned rec0_level(const unsigned char *r) { return r[8]; }
static inline unsigned rec0_flags(const unsigned char *r) { return r[9]; }

static inline float hv_dist(const hnsw_view_t *v, const float *a, const float *b)
{
    return v->cosine ? 1.0f - v->dot(a, b, v->m.dim) : v->l2sq(a, b, v->m.dim);
}

#endif
