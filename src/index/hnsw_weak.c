/*
 * hnsw_weak.c - TEMPORARY weak placeholders so the tree links while
 * src/index/hnsw.c is being written; the real (strong) definitions replace
 * them at link time. Remove this file once hnsw.c has landed.
 */
#include "index/hnsw.h"
#include "util/common.h"

#define WEAK __attribute__((weak))

WEAK int hnsw_create(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, const hnsw_params_t *p)
{ (void)t; (void)s; (void)w; (void)c; (void)p; return 0; }
WEAK int hnsw_params_get(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, hnsw_params_t *o)
{ (void)t; (void)s; (void)w; (void)c; (void)o; return ENGRAM_ENOTFOUND; }
WEAK int hnsw_insert(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, uint64_t id, const float *v)
{ (void)t; (void)s; (void)w; (void)c; (void)id; (void)v; return 0; }
WEAK int hnsw_delete(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, uint64_t id)
{ (void)t; (void)s; (void)w; (void)c; (void)id; return ENGRAM_ENOTFOUND; }
WEAK int hnsw_search(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, const float *q, size_t k,
                     size_t ef, hnsw_filter_fn f, void *ud, hnsw_hit_t *o, size_t *n)
{ (void)t; (void)s; (void)w; (void)c; (void)q; (void)k; (void)ef; (void)f; (void)ud; (void)o; *n = 0; return 0; }
WEAK int hnsw_drop(MDB_txn *t, store_t *s, uint64_t w, uint64_t c)
{ (void)t; (void)s; (void)w; (void)c; return 0; }
WEAK int hnsw_count(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, uint64_t *n)
{ (void)t; (void)s; (void)w; (void)c; *n = 0; return 0; }
WEAK int hnsw_verify(MDB_txn *t, store_t *s, uint64_t w, uint64_t c, char *m, size_t ml)
{ (void)t; (void)s; (void)w; (void)c; (void)m; (void)ml; return 0; }
