/*
 * graph.c - the knowledge graph's storage and traversal (see graph.h for
 * the layout).
 *
 * An entity record keeps running totals (mentions, chunks, mentions per
 * type, counts per written form) so that its name and type are read without
 * visiting its mentions. Each 'C' entry remembers what its chunk added (the
 * count, the type and the form), so graph_remove_chunk subtracts exactly
 * that. Removal collects a chunk's entries first and changes the tables
 * after the cursor is closed, so no cursor ever walks a table being
 * changed under it.
 */
#include "index/graph.h"

#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#include "util/common.h"
#include "util/utf8.h"
#include "util/uuid.h"

#define ENT_VERSION 1

static const char *const type_names[GT__COUNT] = {"person", "organization", "location",
                                                 "date", "concept", "other"};

const char *graph_type_name(int type)
{
    return type >= 0 && type < GT__COUNT ? type_names[type] : "other";
}

int graph_type_parse(const char *s)
{
    for (int i = 0; s && i < GT__COUNT; i++)
        if (!strcmp(s, type_names[i])) return i;
    return -1;
}

size_t graph_normalise(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0, i = 0;
    int space = 0;
    if (outsz == 0) return 0;
    while (i < n) {
        uint32_t cp;
        int l = utf8_decode(s + i, n - i, &cp);
        if (l <= 0) { i += l < 0 ? (size_t)-l : 1; space = o > 0; continue; }
        i += (size_t)l;
        utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
        int alnum = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
                    (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) ||
                    (cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME);
        if (!alnum) { space = o > 0; continue; }
        char enc[4];
        int el = utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), enc);
        if (el <= 0) continue;
        size_t need = (size_t)el + (space ? 1 : 0);
        if (o + need > GRAPH_MAX_NAME || o + need >= outsz) break;
        if (space) out[o++] = ' ';
        memcpy(out + o, enc, (size_t)el);
        o += (size_t)el;
        space = 0;
    }
    out[o] = '\0';
    return o;
}

void graph_chunk_free(graph_chunk_t *g)
{
    if (!g) return;
    eg_free(g->ents);
    eg_free(g->rels);
    memset(g, 0, sizeof *g);
}

void graph_entity_uuid(uint64_t coll, uint64_t id, char out[37])
{
    unsigned char b[16];
    be64_put(b, coll);
    be64_put(b + 8, id);
    uuid_format(b, out);
}

int graph_entity_uuid_parse(const char *s, uint64_t *coll, uint64_t *id)
{
    unsigned char b[16];
    if (!s || uuid_parse(s, b)) return ENGRAM_EINVAL;
    *coll = be64_get(b);
    *id = be64_get(b + 8);
    return 0;
}

/* ---- keys --------------------------------------------------------------- */

static void key_prefix(store_key_t *k, uint64_t ws, uint64_t coll)
{
    skey_init(k);
    skey_u64(k, ws);
    skey_u64(k, coll);
}

static store_key_t ent_key(uint64_t ws, uint64_t coll, uint64_t id)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_u64(&k, id);
    return k;
}

static store_key_t mention_key(uint64_t ws, uint64_t coll, uint8_t tag, uint64_t a, uint64_t b)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_u8(&k, tag);
    skey_u64(&k, a);
    skey_u64(&k, b);
    return k;
}

static store_key_t edge_key(uint64_t ws, uint64_t coll, uint64_t src, uint64_t dst, uint64_t chunk)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_u64(&k, src);
    skey_u64(&k, dst);
    skey_u64(&k, chunk);
    return k;
}

static int put(MDB_txn *txn, store_t *st, store_db_t db, store_key_t *k, const void *v, size_t n)
{
    MDB_val kv = skey_val(k), vv = {n, (void *)v};
    return store_status(mdb_put(txn, store_dbi(st, db), &kv, &vv, 0));
}

static int del(MDB_txn *txn, store_t *st, store_db_t db, store_key_t *k)
{
    MDB_val kv = skey_val(k);
    int rc = mdb_del(txn, store_dbi(st, db), &kv, NULL);
    return rc == MDB_NOTFOUND ? 0 : store_status(rc);
}

/* ---- entity records ----------------------------------------------------- */

typedef struct ent_form {
    uint32_t count;
    uint8_t len;
    char s[GRAPH_MAX_NAME];
} ent_form_t;

typedef struct ent_rec {
    uint8_t type;
    uint32_t mentions, chunks, votes[GT__COUNT];
    uint8_t key_len;
    char key[GRAPH_MAX_NAME + 1];
    uint8_t n_forms;
    ent_form_t forms[GRAPH_MAX_FORMS];
} ent_rec_t;

#define ENT_FIXED (1 + 1 + 4 + 4 + 4 * GT__COUNT)

static int rec_decode(const void *val, size_t len, ent_rec_t *r)
{
    const unsigned char *p = val, *end = p + len;
    if (len < ENT_FIXED + 2 || p[0] != ENT_VERSION || p[1] >= GT__COUNT) return ENGRAM_ECORRUPT;
    memset(r, 0, sizeof *r);
    r->type = p[1];
    r->mentions = be32_get(p + 2);
    r->chunks = be32_get(p + 6);
    for (int i = 0; i < GT__COUNT; i++) r->votes[i] = be32_get(p + 10 + 4 * i);
    p += ENT_FIXED;
    r->key_len = *p++;
    if (r->key_len == 0 || r->key_len > GRAPH_MAX_NAME || end - p < r->key_len + 1)
        return ENGRAM_ECORRUPT;
    memcpy(r->key, p, r->key_len);
    r->key[r->key_len] = '\0';
    p += r->key_len;
    r->n_forms = *p++;
    if (r->n_forms > GRAPH_MAX_FORMS) return ENGRAM_ECORRUPT;
    for (int i = 0; i < r->n_forms; i++) {
        if (end - p < 5) return ENGRAM_ECORRUPT;
        r->forms[i].count = be32_get(p);
        r->forms[i].len = p[4];
        p += 5;
        if (r->forms[i].len == 0 || r->forms[i].len > GRAPH_MAX_NAME || end - p < r->forms[i].len)
            return ENGRAM_ECORRUPT;
        memcpy(r->forms[i].s, p, r->forms[i].len);
        p += r->forms[i].len;
    }
    return p == end ? 0 : ENGRAM_ECORRUPT;
}

static size_t rec_encode(const ent_rec_t *r, unsigned char *out)
{
    unsigned char *p = out;
    *p++ = ENT_VERSION;
    *p++ = r->type;
    be32_put(p, r->mentions);
    be32_put(p + 4, r->chunks);
    p += 8;
    for (int i = 0; i < GT__COUNT; i++, p += 4) be32_put(p, r->votes[i]);
    *p++ = r->key_len;
    memcpy(p, r->key, r->key_len);
    p += r->key_len;
    *p++ = r->n_forms;
    for (int i = 0; i < r->n_forms; i++) {
        be32_put(p, r->forms[i].count);
        p[4] = r->forms[i].len;
        memcpy(p + 5, r->forms[i].s, r->forms[i].len);
        p += 5 + r->forms[i].len;
    }
    return (size_t)(p - out);
}

#define ENT_MAX_BYTES (ENT_FIXED + 2 + GRAPH_MAX_NAME + GRAPH_MAX_FORMS * (5 + GRAPH_MAX_NAME))

/* The type with the most votes; "other" and "concept" give way to a more
 * specific type on a tie. */
static void rec_retype(ent_rec_t *r)
{
    static const int order[GT__COUNT] = {GT_PERSON, GT_ORGANIZATION, GT_LOCATION, GT_DATE,
                                         GT_CONCEPT, GT_OTHER};
    uint32_t best = 0;
    for (int i = 0; i < GT__COUNT; i++)
        if (r->votes[order[i]] > best) { best = r->votes[order[i]]; r->type = (uint8_t)order[i]; }
}

static void rec_form_add(ent_rec_t *r, const char *s, size_t len, int64_t delta)
{
    if (len == 0) return;
    if (len > GRAPH_MAX_NAME) len = utf8_truncate(s, len, GRAPH_MAX_NAME);
    for (int i = 0; i < r->n_forms; i++) {
        if (r->forms[i].len != len || memcmp(r->forms[i].s, s, len)) continue;
        int64_t c = (int64_t)r->forms[i].count + delta;
        if (c > 0) { r->forms[i].count = (uint32_t)c; return; }
        r->forms[i] = r->forms[--r->n_forms];
        return;
    }
    if (delta <= 0) return;
    int slot = r->n_forms;
    if (slot == GRAPH_MAX_FORMS) { /* full: replace the rarest if this one is as common */
        slot = 0;
        for (int i = 1; i < r->n_forms; i++)
            if (r->forms[i].count < r->forms[slot].count) slot = i;
        if (r->forms[slot].count > delta) return;
    } else {
        r->n_forms++;
    }
    r->forms[slot].count = (uint32_t)delta;
    r->forms[slot].len = (uint8_t)len;
    memcpy(r->forms[slot].s, s, len);
}

static void rec_to_entity(const ent_rec_t *r, graph_entity_t *e)
{
    e->type = r->type;
    e->mentions = r->mentions;
    e->chunks = r->chunks;
    memcpy(e->key, r->key, r->key_len + 1u);
    int best = -1;
    for (int i = 0; i < r->n_forms; i++) {
        if (best < 0 || r->forms[i].count > r->forms[best].count ||
            (r->forms[i].count == r->forms[best].count &&
             (r->forms[i].len < r->forms[best].len ||
              (r->forms[i].len == r->forms[best].len &&
               memcmp(r->forms[i].s, r->forms[best].s, r->forms[i].len) < 0))))
            best = i;
    }
    if (best < 0) {
        memcpy(e->name, r->key, r->key_len + 1u);
    } else {
        memcpy(e->name, r->forms[best].s, r->forms[best].len);
        e->name[r->forms[best].len] = '\0';
    }
}

int graph_entity_decode(const void *val, size_t len, graph_entity_t *out)
{
    ent_rec_t r;
    int rc = rec_decode(val, len, &r);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    rec_to_entity(&r, out);
    return 0;
}

static int rec_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id, ent_rec_t *r)
{
    store_key_t k = ent_key(ws, coll, id);
    MDB_val kv = skey_val(&k), v;
    int rc = mdb_get(txn, store_dbi(st, DB_GRAPH_ENTITIES), &kv, &v);
    if (rc) return store_status(rc);
    return rec_decode(v.mv_data, v.mv_size, r);
}

static int rec_put(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                   const ent_rec_t *r)
{
    unsigned char b[ENT_MAX_BYTES];
    size_t n = rec_encode(r, b);
    store_key_t k = ent_key(ws, coll, id);
    return put(txn, st, DB_GRAPH_ENTITIES, &k, b, n);
}

int graph_entity_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                     graph_entity_t *out)
{
    ent_rec_t r;
    int rc = rec_get(txn, st, ws, coll, id, &r);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    rec_to_entity(&r, out);
    out->id = id;
    return 0;
}

int graph_lookup(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const char *key,
                 size_t len, uint64_t *id)
{
    if (len == 0 || len > GRAPH_MAX_NAME) return ENGRAM_ENOTFOUND;
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_bytes(&k, key, len);
    MDB_val kv = skey_val(&k), v;
    int rc = mdb_get(txn, store_dbi(st, DB_GRAPH_NAMES), &kv, &v);
    if (rc) return store_status(rc);
    if (v.mv_size != 8) return ENGRAM_ECORRUPT;
    *id = be64_get(v.mv_data);
    return 0;
}

/* ---- add ---------------------------------------------------------------- */

static int entity_for(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll,
                      const graph_mention_t *m, uint64_t *id, ent_rec_t *r)
{
    size_t kl = strnlen(m->key, GRAPH_MAX_NAME + 1);
    int rc = graph_lookup(txn, st, ws, coll, m->key, kl, id);
    if (rc == 0) return rec_get(txn, st, ws, coll, *id, r);
    if (rc != ENGRAM_ENOTFOUND) return rc;
    if ((rc = store_next_id(txn, st, "entity", id))) return rc;
    memset(r, 0, sizeof *r);
    r->key_len = (uint8_t)kl;
    memcpy(r->key, m->key, kl);
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_bytes(&k, m->key, kl);
    unsigned char idb[8];
    be64_put(idb, *id);
    return put(txn, st, DB_GRAPH_NAMES, &k, idb, 8);
}

static int add_edge(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t src,
                    uint64_t dst, uint64_t chunk, const graph_rel_t *rel)
{
    store_key_t k = edge_key(ws, coll, src, dst, chunk);
    MDB_val kv = skey_val(&k), v;
    unsigned char b[5 + GRAPH_MAX_LABEL];
    uint32_t count = rel->count ? rel->count : 1;
    const char *label = rel->label[0] ? rel->label : "related_to";
    size_t ll = strnlen(label, GRAPH_MAX_LABEL);
    int rc = mdb_get(txn, store_dbi(st, DB_GRAPH_EDGES), &kv, &v);
    if (rc == 0) { /* the same pair twice in one chunk: counts add, the first label stays */
        if (v.mv_size < 5 || v.mv_size > sizeof b) return ENGRAM_ECORRUPT;
        memcpy(b, v.mv_data, v.mv_size);
        be32_put(b, be32_get(b) + count);
        return put(txn, st, DB_GRAPH_EDGES, &k, b, v.mv_size);
    }
    if (rc != MDB_NOTFOUND) return store_status(rc);
    be32_put(b, count);
    b[4] = (unsigned char)ll;
    memcpy(b + 5, label, ll);
    return put(txn, st, DB_GRAPH_EDGES, &k, b, 5 + ll);
}

int graph_add_chunk(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk,
                    const graph_chunk_t *g)
{
    if (!g || g->n_ents == 0) return 0;
    uint64_t *ids = eg_calloc(g->n_ents, sizeof *ids);
    if (!ids) return ENGRAM_ENOMEM;
    int rc = 0;
    ent_rec_t r;
    for (size_t i = 0; i < g->n_ents && !rc; i++) {
        const graph_mention_t *m = &g->ents[i];
        if (!m->key[0] || m->type >= GT__COUNT) continue;
        uint64_t id;
        if ((rc = entity_for(txn, st, ws, coll, m, &id, &r))) break;
        int dup = 0;
        for (size_t j = 0; j < i; j++) dup |= ids[j] == id;
        if (dup) continue; /* the extractor merged badly: keep the first */
        ids[i] = id;
        uint32_t cnt = m->count ? m->count : 1;
        r.mentions += cnt;
        r.chunks++;
        r.votes[m->type] += cnt;
        rec_retype(&r);
        size_t fl = strnlen(m->form, GRAPH_MAX_NAME);
        rec_form_add(&r, m->form, fl, cnt);
        if ((rc = rec_put(txn, st, ws, coll, id, &r))) break;
        unsigned char cb[4 + 2 + GRAPH_MAX_NAME];
        be32_put(cb, cnt);
        store_key_t ek = mention_key(ws, coll, 'E', id, chunk);
        if ((rc = put(txn, st, DB_GRAPH_MENTIONS, &ek, cb, 4))) break;
        cb[4] = m->type;
        fl = utf8_truncate(m->form, fl, GRAPH_MAX_NAME);
        cb[5] = (unsigned char)fl;
        memcpy(cb + 6, m->form, fl);
        store_key_t ck = mention_key(ws, coll, 'C', chunk, id);
        rc = put(txn, st, DB_GRAPH_MENTIONS, &ck, cb, 6 + fl);
    }
    for (size_t i = 0; i < g->n_rels && !rc; i++) {
        const graph_rel_t *rel = &g->rels[i];
        if (rel->a >= g->n_ents || rel->b >= g->n_ents) continue;
        uint64_t a = ids[rel->a], b = ids[rel->b];
        if (!a || !b || a == b) continue;
        if ((rc = add_edge(txn, st, ws, coll, a, b, chunk, rel))) break;
        if ((rc = add_edge(txn, st, ws, coll, b, a, chunk, rel))) break;
        store_key_t rk = mention_key(ws, coll, 'R', chunk, a < b ? a : b);
        skey_u64(&rk, a < b ? b : a);
        rc = put(txn, st, DB_GRAPH_MENTIONS, &rk, "", 0);
    }
    eg_free(ids);
    return rc;
}

/* ---- remove ------------------------------------------------------------- */

typedef struct chunk_entry {
    uint64_t a, b;
    uint32_t count;
    uint8_t type;
    uint8_t form_len;
    char form[GRAPH_MAX_NAME];
} chunk_entry_t;

/* The chunk's entries under tag ('C' or 'R'), copied out of the table. */
static int collect(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint8_t tag,
                   uint64_t chunk, chunk_entry_t **out, size_t *n)
{
    store_key_t pk;
    key_prefix(&pk, ws, coll);
    skey_u8(&pk, tag);
    skey_u64(&pk, chunk);
    size_t klen = tag == 'C' ? 33 : 41, cap = 0;
    *out = NULL;
    *n = 0;
    MDB_cursor *c;
    int rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_GRAPH_MENTIONS), &c));
    if (rc) return rc;
    MDB_val k = skey_val(&pk), v;
    int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size >= pk.len && !memcmp(k.mv_data, pk.b, pk.len)) {
        const unsigned char *kp = k.mv_data, *vp = v.mv_data;
        if (k.mv_size != klen) { r = ENGRAM_ECORRUPT; break; }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            chunk_entry_t *ne = eg_realloc(*out, cap * sizeof *ne);
            if (!ne) { r = ENGRAM_ENOMEM; break; }
            *out = ne;
        }
        chunk_entry_t *e = &(*out)[*n];
        memset(e, 0, offsetof(chunk_entry_t, form));
        e->a = be64_get(kp + 25);
        if (tag == 'R') {
            e->b = be64_get(kp + 33);
        } else {
            if (v.mv_size < 6 || vp[4] >= GT__COUNT || v.mv_size != 6u + vp[5] ||
                vp[5] > GRAPH_MAX_NAME) { r = ENGRAM_ECORRUPT; break; }
            e->count = be32_get(vp);
            e->type = vp[4];
            e->form_len = vp[5];
            memcpy(e->form, vp + 6, vp[5]);
        }
        (*n)++;
        r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (r && r != MDB_NOTFOUND) {
        eg_free(*out);
        *out = NULL;
        *n = 0;
        return r < 0 ? r : store_status(r);
    }
    return 0;
}

static int unmention(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk,
                     const chunk_entry_t *e)
{
    ent_rec_t r;
    int rc = rec_get(txn, st, ws, coll, e->a, &r);
    if (rc && rc != ENGRAM_ENOTFOUND) return rc;
    if (rc == 0) {
        r.mentions = r.mentions > e->count ? r.mentions - e->count : 0;
        r.chunks = r.chunks ? r.chunks - 1 : 0;
        r.votes[e->type] = r.votes[e->type] > e->count ? r.votes[e->type] - e->count : 0;
        rec_form_add(&r, e->form, e->form_len, -(int64_t)e->count);
        if (r.mentions == 0 || r.chunks == 0) {
            store_key_t nk;
            key_prefix(&nk, ws, coll);
            skey_bytes(&nk, r.key, r.key_len);
            if ((rc = del(txn, st, DB_GRAPH_NAMES, &nk))) return rc;
            store_key_t ek = ent_key(ws, coll, e->a);
            rc = del(txn, st, DB_GRAPH_ENTITIES, &ek);
        } else {
            rec_retype(&r);
            rc = rec_put(txn, st, ws, coll, e->a, &r);
        }
        if (rc) return rc;
    }
    store_key_t mk = mention_key(ws, coll, 'E', e->a, chunk);
    if ((rc = del(txn, st, DB_GRAPH_MENTIONS, &mk))) return rc;
    store_key_t ck = mention_key(ws, coll, 'C', chunk, e->a);
    return del(txn, st, DB_GRAPH_MENTIONS, &ck);
}

int graph_remove_chunk(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk)
{
    chunk_entry_t *es = NULL;
    size_t n = 0;
    int rc = collect(txn, st, ws, coll, 'R', chunk, &es, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        store_key_t k1 = edge_key(ws, coll, es[i].a, es[i].b, chunk);
        store_key_t k2 = edge_key(ws, coll, es[i].b, es[i].a, chunk);
        store_key_t rk = mention_key(ws, coll, 'R', chunk, es[i].a);
        skey_u64(&rk, es[i].b);
        if (!(rc = del(txn, st, DB_GRAPH_EDGES, &k1)) && !(rc = del(txn, st, DB_GRAPH_EDGES, &k2)))
            rc = del(txn, st, DB_GRAPH_MENTIONS, &rk);
    }
    eg_free(es);
    es = NULL;
    if (rc) return rc;
    rc = collect(txn, st, ws, coll, 'C', chunk, &es, &n);
    for (size_t i = 0; !rc && i < n; i++) rc = unmention(txn, st, ws, coll, chunk, &es[i]);
    eg_free(es);
    return rc;
}

static int drop_prefix(MDB_txn *txn, store_t *st, store_db_t db, uint64_t ws, uint64_t coll)
{
    unsigned char p[16];
    be64_put(p, ws);
    be64_put(p + 8, coll);
    MDB_cursor *c;
    int rc = store_status(mdb_cursor_open(txn, store_dbi(st, db), &c));
    if (rc) return rc;
    MDB_val k = {16, p}, v;
    int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size >= 16 && !memcmp(k.mv_data, p, 16)) {
        if ((r = mdb_cursor_del(c, 0))) break;
        k.mv_size = 16;
        k.mv_data = p;
        r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    return r == 0 || r == MDB_NOTFOUND ? 0 : store_status(r);
}

int graph_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll)
{
    static const store_db_t dbs[] = {DB_GRAPH_ENTITIES, DB_GRAPH_NAMES, DB_GRAPH_EDGES,
                                      DB_GRAPH_MENTIONS};
    for (size_t i = 0; i < EG_ARRAY_LEN(dbs); i++) {
        int rc = drop_prefix(txn, st, dbs[i], ws, coll);
        if (rc) return rc;
    }
    return 0;
}

/* ---- scans -------------------------------------------------------------- */

/* Calls fn(key, val) for each entry of db under prefix p[0..plen). */
typedef int (*scan_fn)(const MDB_val *k, const MDB_val *v, void *ud);

static int scan(MDB_txn *txn, store_t *st, store_db_t db, const unsigned char *p, size_t plen,
                scan_fn fn, void *ud)
{
    MDB_cursor *c;
    int rc = store_status(mdb_cursor_open(txn, store_dbi(st, db), &c));
    if (rc) return rc;
    MDB_val k = {plen, (void *)p}, v;
    int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), stop = 0;
    while (r == 0 && k.mv_size >= plen && !memcmp(k.mv_data, p, plen)) {
        if ((stop = fn(&k, &v, ud))) break;
        r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (stop) return stop; /* the callback's own value, passed through */
    return r == 0 || r == MDB_NOTFOUND ? 0 : store_status(r);
}

struct names_ud {
    graph_name_fn fn;
    void *ud;
};

static int names_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
    struct names_ud *a = ud;
    if (k->mv_size <= 16 || v->mv_size != 8) return ENGRAM_ECORRUPT;
    return a->fn((const char *)k->mv_data + 16, k->mv_size - 16, be64_get(v->mv_data), a->ud);
}

int graph_names_scan(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const char *prefix,
                     size_t plen, graph_name_fn fn, void *ud)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_bytes(&k, prefix, plen);
    if (k.overflow) return 0;
    struct names_ud a = {fn, ud};
    return scan(txn, st, DB_GRAPH_NAMES, k.b, k.len, names_cb, &a);
}

struct nb_ud {
    graph_edge_fn fn;
    void *ud;
    uint64_t cur;
    double weight;
    uint32_t best;
    char label[GRAPH_MAX_LABEL + 1];
};

static int nb_flush(struct nb_ud *a)
{
    if (!a->cur) return 0;
    int rc = a->fn(a->cur, a->weight, a->label, a->ud);
    a->cur = 0;
    return rc;
}

static int nb_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
    struct nb_ud *a = ud;
    const unsigned char *vp = v->mv_data;
    if (k->mv_size != 40 || v->mv_size < 5 || v->mv_size != 5u + vp[4] || vp[4] > GRAPH_MAX_LABEL)
        return ENGRAM_ECORRUPT;
    uint64_t dst = be64_get((const unsigned char *)k->mv_data + 24);
    uint32_t count = be32_get(vp);
    if (dst != a->cur) {
        int rc = nb_flush(a);
        if (rc) return rc;
        a->cur = dst;
        a->weight = 0;
        a->best = 0;
    }
    a->weight += count;
    if (count > a->best) {
        a->best = count;
        memcpy(a->label, vp + 5, vp[4]);
        a->label[vp[4]] = '\0';
    }
    return 0;
}

int graph_neighbours(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                     graph_edge_fn fn, void *ud)
{
    store_key_t k = ent_key(ws, coll, id);
    struct nb_ud a = {.fn = fn, .ud = ud};
    int rc = scan(txn, st, DB_GRAPH_EDGES, k.b, k.len, nb_cb, &a);
    return rc ? rc : nb_flush(&a);
}

struct men_ud {
    graph_mention_fn fn;
    void *ud;
};

static int men_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
    struct men_ud *a = ud;
    if (k->mv_size != 33 || v->mv_size != 4) return ENGRAM_ECORRUPT;
    return a->fn(be64_get((const unsigned char *)k->mv_data + 25), be32_get(v->mv_data), a->ud);
}

int graph_mentions(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                   graph_mention_fn fn, void *ud)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    skey_u8(&k, 'E');
    skey_u64(&k, id);
    struct men_ud a = {fn, ud};
    return scan(txn, st, DB_GRAPH_MENTIONS, k.b, k.len, men_cb, &a);
}

struct ent_ud {
    graph_entity_fn fn;
    void *ud;
};

static int ent_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
    struct ent_ud *a = ud;
    if (k->mv_size != 24) return ENGRAM_ECORRUPT;
    graph_entity_t e;
    int rc = graph_entity_decode(v->mv_data, v->mv_size, &e);
    if (rc) return rc;
    e.id = be64_get((const unsigned char *)k->mv_data + 16);
    return a->fn(&e, a->ud);
}

int graph_entities_scan(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, graph_entity_fn fn,
                        void *ud)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    struct ent_ud a = {fn, ud};
    return scan(txn, st, DB_GRAPH_ENTITIES, k.b, k.len, ent_cb, &a);
}

static int count_cb(const MDB_val *k, const MDB_val *v, void *ud)
{
    (void)k;
    (void)v;
    (*(uint64_t *)ud)++;
    return 0;
}

int graph_count(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n)
{
    store_key_t k;
    key_prefix(&k, ws, coll);
    *n = 0;
    return scan(txn, st, DB_GRAPH_ENTITIES, k.b, k.len, count_cb, n);
}

/* ---- verify ------------------------------------------------------------- */

typedef struct vfy {
    MDB_txn *txn;
    store_t *st;
    uint64_t ws, coll;
    char *msg;
    size_t msglen;
    uint64_t cur;      /* entity whose mentions are being summed */
    uint64_t sum;
} vfy_t;

static int vfail(vfy_t *v, const char *what, uint64_t a, uint64_t b)
{
    snprintf(v->msg, v->msglen, "%s (%llu, %llu)", what, (unsigned long long)a,
             (unsigned long long)b);
    return ENGRAM_ECORRUPT;
}

static int vexists(vfy_t *v, store_db_t db, store_key_t *k)
{
    MDB_val kv = skey_val(k), d;
    return mdb_get(v->txn, store_dbi(v->st, db), &kv, &d) == 0;
}

static int vsum_cb(uint64_t chunk, uint32_t count, void *ud)
{
    vfy_t *v = ud;
    store_key_t ck;
    key_prefix(&ck, v->ws, v->coll);
    skey_u64(&ck, chunk);
    if (!vexists(v, DB_CHUNKS, &ck)) return vfail(v, "a mention names a missing chunk", v->cur, chunk);
    store_key_t rk = mention_key(v->ws, v->coll, 'C', chunk, v->cur);
    if (!vexists(v, DB_GRAPH_MENTIONS, &rk)) return vfail(v, "a mention has no reverse entry", v->cur, chunk);
    v->sum += count;
    return 0;
}

static int vent_cb(const graph_entity_t *e, void *ud)
{
    vfy_t *v = ud;
    uint64_t id;
    int rc = graph_lookup(v->txn, v->st, v->ws, v->coll, e->key, strlen(e->key), &id);
    if (rc || id != e->id) return vfail(v, "an entity's name does not lead back to it", e->id, 0);
    v->cur = e->id;
    v->sum = 0;
    if ((rc = graph_mentions(v->txn, v->st, v->ws, v->coll, e->id, vsum_cb, v))) return rc;
    if (v->sum == 0) return vfail(v, "an entity without mentions", e->id, 0);
    if (v->sum != e->mentions) return vfail(v, "an entity's mention count differs from its mentions", e->id, v->sum);
    return 0;
}

static int vname_cb(const char *key, size_t len, uint64_t id, void *ud)
{
    vfy_t *v = ud;
    (void)key;
    (void)len;
    store_key_t k = ent_key(v->ws, v->coll, id);
    return vexists(v, DB_GRAPH_ENTITIES, &k) ? 0 : vfail(v, "a name maps to a missing entity", id, 0);
}

static int vedge_cb(const MDB_val *k, const MDB_val *val, void *ud)
{
    vfy_t *v = ud;
    const unsigned char *kp = k->mv_data;
    (void)val;
    if (k->mv_size != 40) return vfail(v, "a relation key of the wrong size", k->mv_size, 0);
    uint64_t a = be64_get(kp + 16), b = be64_get(kp + 24), chunk = be64_get(kp + 32);
    store_key_t ka = ent_key(v->ws, v->coll, a), kb = ent_key(v->ws, v->coll, b);
    if (!vexists(v, DB_GRAPH_ENTITIES, &ka) || !vexists(v, DB_GRAPH_ENTITIES, &kb))
        return vfail(v, "a relation's end is missing", a, b);
    store_key_t rev = edge_key(v->ws, v->coll, b, a, chunk);
    if (!vexists(v, DB_GRAPH_EDGES, &rev)) return vfail(v, "a relation is stored one way only", a, b);
    store_key_t ck;
    key_prefix(&ck, v->ws, v->coll);
    skey_u64(&ck, chunk);
    if (!vexists(v, DB_CHUNKS, &ck)) return vfail(v, "a relation names a missing chunk", a, chunk);
    return 0;
}

int graph_verify(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, char *msg, size_t msglen)
{
    vfy_t v = {txn, st, ws, coll, msg, msglen, 0, 0};
    if (msglen) msg[0] = '\0';
    int rc = graph_entities_scan(txn, st, ws, coll, vent_cb, &v);
    if (!rc) rc = graph_names_scan(txn, st, ws, coll, "", 0, vname_cb, &v);
    if (!rc) {
        store_key_t k;
        key_prefix(&k, ws, coll);
        rc = scan(txn, st, DB_GRAPH_EDGES, k.b, k.len, vedge_cb, &v);
    }
    if (rc && msglen && !msg[0]) snprintf(msg, msglen, "%s", engram_strerror(rc));
    return rc ? ENGRAM_ECORRUPT : 0;
}
