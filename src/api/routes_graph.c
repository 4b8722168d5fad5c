/*
 * routes_graph.c - the knowledge graph routes (API.md "Knowledge graph").
 *
 *   GET /collections/{id}/graph/entities?q=&limit=&offset=
 *       without q: every entity, most mentioned first; with q: entities
 *       whose name equals q (normalised), then those starting with it,
 *       then fuzzy matches (edit distance 1, 2 for longer queries, against
 *       the whole name or one of its words), each group most mentioned
 *       first. Items {"id","name","type","mention_count"}.
 *   GET /collections/{id}/graph/entities/{entity_id}
 *       the entity, its relations (strongest first, at most
 *       GR_MAX_RELATIONS) and the chunk_ids that mention it (at most
 *       GR_MAX_CHUNKS).
 *   GET /collections/{id}/graph/export?format=graphml|json (default graphml)
 *       the whole graph: GraphML 1.0 (undirected, node keys name, type,
 *       mention_count; edge keys relation, weight - loadable by networkx,
 *       igraph, Gephi) or {"nodes":[...],"edges":[...]}.
 * Another workspace's collection or an entity of another collection: 404.
 * Everything is copied out of one short read transaction before the
 * answer is sent.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "catalog/catalog.h"
#include "index/graph.h"
#include "rag/graph_search.h"
#include "util/common.h"

#define GR_MAX_RELATIONS 200
#define GR_MAX_CHUNKS 1000
#define GR_MAX_SCAN 200000  /* names compared for a fuzzy search */

/* The collection of the path in the caller's workspace (404 answered). */
static int graph_coll(api_call_t *c, uint64_t *coll)
{
    json_t *rec = NULL;
    int rc = catalog_coll_get(c->api->st, c->who->ws, c->params[0], &rec, coll);
    json_free(rec);
    if (rc) { api_fail(c, rc, "collection"); return -1; }
    return 0;
}

/* ---- entity list ---------------------------------------------------------- */

typedef struct ent_item {
    graph_entity_t e;
    int group;  /* 0 exact, 1 prefix, 2 fuzzy, 3 listing */
} ent_item_t;

typedef struct ent_list {
    MDB_txn *txn;
    store_t *st;
    uint64_t ws, coll;
    ent_item_t *items;
    size_t n, cap;
    const char *q;
    size_t ql;
    size_t scanned;
    int err;
} ent_list_t;

static int list_push(ent_list_t *l, const graph_entity_t *e, int group)
{
    for (size_t i = 0; group < 3 && i < l->n; i++)
        if (l->items[i].e.id == e->id) {
            if (group < l->items[i].group) l->items[i].group = group;
            return 0;
        }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        ent_item_t *ni = eg_realloc(l->items, cap * sizeof *ni);
        if (!ni) return ENGRAM_ENOMEM;
        l->items = ni;
        l->cap = cap;
    }
    l->items[l->n].e = *e;
    l->items[l->n].group = group;
    l->n++;
    return 0;
}

static int all_cb(const graph_entity_t *e, void *ud) { return list_push(ud, e, 3); }

static int push_id(ent_list_t *l, uint64_t id, int group)
{
    graph_entity_t e;
    int rc = graph_entity_get(l->txn, l->st, l->ws, l->coll, id, &e);
    if (rc == ENGRAM_ENOTFOUND) return 0;
    return rc ? rc : list_push(l, &e, group);
}

static int prefix_cb(const char *key, size_t len, uint64_t id, void *ud)
{
    ent_list_t *l = ud;
    return push_id(l, id, len == l->ql ? 0 : 1);
}

static int fuzzy_cb(const char *key, size_t len, uint64_t id, void *ud)
{
    ent_list_t *l = ud;
    if (++l->scanned > GR_MAX_SCAN) return 1;
    int max = l->ql >= 9 ? 2 : 1;
    if (l->ql < 4) return 0;
    int hit = graph_edit_distance(l->q, l->ql, key, len, max) <= max;
    for (size_t s = 0; !hit && s < len;) { /* one word of the name */
        size_t e = s;
        while (e < len && key[e] != ' ') e++;
        if (e - s < len) hit = graph_edit_distance(l->q, l->ql, key + s, e - s, max) <= max;
        s = e + 1;
    }
    return hit ? push_id(l, id, 2) : 0;
}

static int cmp_item(const void *a, const void *b)
{
    const ent_item_t *x = a, *y = b;
    if (x->group != y->group) return x->group < y->group ? -1 : 1;
    if (x->e.mentions != y->e.mentions) return x->e.mentions > y->e.mentions ? -1 : 1;
    int c = strcmp(x->e.name, y->e.name);
    if (c) return c;
    return x->e.id < y->e.id ? -1 : x->e.id > y->e.id;
}

static void write_entity_fields(jw_t *w, uint64_t coll, const graph_entity_t *e)
{
    char id[37];
    graph_entity_uuid(coll, e->id, id);
    jw_kstr(w, "id", id);
    jw_kstr(w, "name", e->name);
    jw_kstr(w, "type", graph_type_name(e->type));
    jw_kint(w, "mention_count", e->mentions);
}

void h_graph_entities(api_call_t *c)
{
    size_t limit, offset;
    char q[512], key[GRAPH_MAX_NAME + 1];
    uint64_t coll;
    if (api_query_limit(c, &limit, &offset) || api_query_str(c, "q", q, sizeof q)) return;
    if (graph_coll(c, &coll)) return;
    ent_list_t l = {.st = c->api->st, .ws = c->who->ws, .coll = coll};
    l.ql = graph_normalise(q, strlen(q), key, sizeof key);
    l.q = key;
    int rc = store_read_begin(l.st, &l.txn);
    if (rc) { api_fail(c, rc, "entities"); return; }
    if (!q[0]) {
        rc = graph_entities_scan(l.txn, l.st, l.ws, coll, all_cb, &l);
    } else if (l.ql) {
        rc = graph_names_scan(l.txn, l.st, l.ws, coll, key, l.ql, prefix_cb, &l);
        if (!rc) rc = graph_names_scan(l.txn, l.st, l.ws, coll, "", 0, fuzzy_cb, &l);
        if (rc == 1) rc = 0;
    }
    store_read_end(l.st, l.txn);
    if (rc) { eg_free(l.items); api_fail(c, rc, "entities"); return; }
    if (l.n) qsort(l.items, l.n, sizeof *l.items, cmp_item);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    jw_key(&w, "data");
    jw_arr_begin(&w);
    for (size_t i = offset; i < l.n && i < offset + limit; i++) {
        jw_obj_begin(&w);
        write_entity_fields(&w, coll, &l.items[i].e);
        jw_obj_end(&w);
    }
    jw_arr_end(&w);
    jw_key(&w, "pagination");
    jw_obj_begin(&w);
    jw_kint(&w, "total", (int64_t)l.n);
    jw_kint(&w, "limit", (int64_t)limit);
    jw_kint(&w, "offset", (int64_t)offset);
    jw_kbool(&w, "has_more", offset + limit < l.n);
    jw_obj_end(&w);
    jw_obj_end(&w);
    api_send_json(c, 200, &b, NULL);
    buf_free(&b);
    eg_free(l.items);
}

/* ---- entity detail -------------------------------------------------------- */

typedef struct rel {
    uint64_t dst;
    double weight;
    char label[GRAPH_MAX_LABEL + 1];
} rel_t;

typedef struct rels {
    rel_t *r;
    size_t n, cap;
} rels_t;

static int rel_cb(uint64_t dst, double weight, const char *label, void *ud)
{
    rels_t *l = ud;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        rel_t *nr = eg_realloc(l->r, cap * sizeof *nr);
        if (!nr) return ENGRAM_ENOMEM;
        l->r = nr;
        l->cap = cap;
    }
    rel_t *r = &l->r[l->n++];
    r->dst = dst;
    r->weight = weight;
    snprintf(r->label, sizeof r->label, "%s", label);
    return 0;
}

static int cmp_rel(const void *a, const void *b)
{
    const rel_t *x = a, *y = b;
    if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
    return x->dst < y->dst ? -1 : x->dst > y->dst;
}

typedef struct chunk_ids {
    MDB_txn *txn;
    store_t *st;
    uint64_t ws, coll;
    jw_t *w;
    size_t n;
} chunk_ids_t;

static int chunk_cb(uint64_t chunk, uint32_t count, void *ud)
{
    chunk_ids_t *a = ud;
    (void)count;
    if (a->n == GR_MAX_CHUNKS) return 1;
    chunk_rec_t cr;
    int rc = catalog_chunk_get(a->txn, a->st, a->ws, a->coll, chunk, &cr);
    if (rc == ENGRAM_ENOTFOUND) return 0;
    if (rc) return rc;
    jw_str(a->w, cr.uuid);
    a->n++;
    return 0;
}

void h_graph_entity(api_call_t *c)
{
    uint64_t coll, ecoll, id;
    if (graph_coll(c, &coll)) return;
    if (graph_entity_uuid_parse(c->params[1], &ecoll, &id) || ecoll != coll) {
        api_error(c, 404, "NOT_FOUND", NULL, "entity not found");
        return;
    }
    store_t *st = c->api->st;
    uint64_t ws = c->who->ws;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) { api_fail(c, rc, "entity"); return; }
    graph_entity_t e;
    rels_t rl = {0};
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    rc = graph_entity_get(txn, st, ws, coll, id, &e);
    if (!rc) rc = graph_neighbours(txn, st, ws, coll, id, rel_cb, &rl);
    if (!rc) {
        if (rl.n) qsort(rl.r, rl.n, sizeof *rl.r, cmp_rel);
        jw_obj_begin(&w);
        write_entity_fields(&w, coll, &e);
        jw_key(&w, "relations");
        jw_arr_begin(&w);
        for (size_t i = 0; i < rl.n && i < GR_MAX_RELATIONS && !rc; i++) {
            graph_entity_t t;
            rc = graph_entity_get(txn, st, ws, coll, rl.r[i].dst, &t);
            if (rc == ENGRAM_ENOTFOUND) { rc = 0; continue; }
            if (rc) break;
            char tid[37];
            graph_entity_uuid(coll, t.id, tid);
            jw_obj_begin(&w);
            jw_kstr(&w, "target_id", tid);
            jw_kstr(&w, "target_name", t.name);
            jw_kstr(&w, "relation", rl.r[i].label);
            jw_kdouble(&w, "weight", rl.r[i].weight);
            jw_obj_end(&w);
        }
        jw_arr_end(&w);
        jw_key(&w, "chunk_ids");
        jw_arr_begin(&w);
        chunk_ids_t ci = {txn, st, ws, coll, &w, 0};
        if (!rc) rc = graph_mentions(txn, st, ws, coll, id, chunk_cb, &ci);
        if (rc == 1) rc = 0;
        jw_arr_end(&w);
        jw_obj_end(&w);
    }
    store_read_end(st, txn);
    eg_free(rl.r);
    if (rc == ENGRAM_ENOTFOUND) api_error(c, 404, "NOT_FOUND", NULL, "entity not found");
    else if (rc) api_fail(c, rc, "entity");
    else api_send_json(c, 200, &b, NULL);
    buf_free(&b);
}

/* ---- export --------------------------------------------------------------- */

/* XML text: the five entities escaped, characters XML 1.0 forbids dropped. */
static void xml_text(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '&') buf_puts(b, "&amp;");
        else if (ch == '<') buf_puts(b, "&lt;");
        else if (ch == '>') buf_puts(b, "&gt;");
        else if (ch == '"') buf_puts(b, "&quot;");
        else if (ch == '\'') buf_puts(b, "&apos;");
        else if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') continue;
        else buf_putc(b, (char)ch);
    }
}

typedef struct export {
    MDB_txn *txn;
    store_t *st;
    uint64_t ws, coll;
    int graphml;
    buf_t *b;       /* nodes */
    buf_t *edges;
    jw_t *wn, *we;  /* JSON writers for nodes and edges */
    uint64_t src;
    size_t n_nodes, n_edges;
} export_t;

static int export_edge_cb(uint64_t dst, double weight, const char *label, void *ud)
{
    export_t *x = ud;
    if (dst <= x->src) return 0; /* undirected: each relation once */
    char a[37], d[37];
    graph_entity_uuid(x->coll, x->src, a);
    graph_entity_uuid(x->coll, dst, d);
    if (x->graphml) {
        buf_printf(x->edges, "    <edge id=\"e%zu\" source=\"n%llu\" target=\"n%llu\">\n", x->n_edges,
                   (unsigned long long)x->src, (unsigned long long)dst);
        buf_puts(x->edges, "      <data key=\"relation\">");
        xml_text(x->edges, label);
        buf_printf(x->edges, "</data>\n      <data key=\"weight\">%g</data>\n    </edge>\n", weight);
    } else {
        jw_obj_begin(x->we);
        jw_kstr(x->we, "source", a);
        jw_kstr(x->we, "target", d);
        jw_kstr(x->we, "relation", label);
        jw_kdouble(x->we, "weight", weight);
        jw_obj_end(x->we);
    }
    x->n_edges++;
    return 0;
}

static int export_node_cb(const graph_entity_t *e, void *ud)
{
    export_t *x = ud;
    char id[37];
    graph_entity_uuid(x->coll, e->id, id);
    if (x->graphml) {
        buf_printf(x->b, "    <node id=\"n%llu\">\n      <data key=\"uuid\">%s</data>\n"
                         "      <data key=\"name\">",
                   (unsigned long long)e->id, id);
        xml_text(x->b, e->name);
        buf_printf(x->b, "</data>\n      <data key=\"type\">%s</data>\n"
                         "      <data key=\"mention_count\">%u</data>\n    </node>\n",
                   graph_type_name(e->type), e->mentions);
    } else {
        jw_obj_begin(x->wn);
        write_entity_fields(x->wn, x->coll, e);
        jw_obj_end(x->wn);
    }
    x->n_nodes++;
    x->src = e->id;
    return graph_neighbours(x->txn, x->st, x->ws, x->coll, e->id, export_edge_cb, x);
}

void h_graph_export(api_call_t *c)
{
    char fmt[16];
    uint64_t coll;
    if (api_query_str(c, "format", fmt, sizeof fmt)) return;
    int graphml = !fmt[0] || !strcmp(fmt, "graphml");
    if (!graphml && strcmp(fmt, "json")) {
        api_error(c, 422, "VALIDATION_ERROR", "format", "format must be graphml or json");
        return;
    }
    if (graph_coll(c, &coll)) return;
    buf_t nodes = BUF_INIT, edges = BUF_INIT;
    jw_t wn, we;
    jw_init(&wn, &nodes);
    jw_init(&we, &edges);
    export_t x = {.st = c->api->st, .ws = c->who->ws, .coll = coll, .graphml = graphml,
                  .b = &nodes, .edges = &edges, .wn = &wn, .we = &we};
    if (!graphml) {
        jw_arr_begin(&wn);
        jw_arr_begin(&we);
    }
    int rc = store_read_begin(x.st, &x.txn);
    if (!rc) {
        rc = graph_entities_scan(x.txn, x.st, x.ws, coll, export_node_cb, &x);
        store_read_end(x.st, x.txn);
    }
    if (!graphml) {
        jw_arr_end(&wn);
        jw_arr_end(&we);
    }
    if (!rc && (nodes.err || edges.err)) rc = ENGRAM_ENOMEM;
    if (rc) {
        api_fail(c, rc, "graph");
        goto done;
    }
    buf_t b = BUF_INIT;
    if (graphml) {
        buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\"\n"
                     "    xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
                     "    xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns "
                     "http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n"
                     "  <key id=\"uuid\" for=\"node\" attr.name=\"id\" attr.type=\"string\"/>\n"
                     "  <key id=\"name\" for=\"node\" attr.name=\"name\" attr.type=\"string\"/>\n"
                     "  <key id=\"type\" for=\"node\" attr.name=\"type\" attr.type=\"string\"/>\n"
                     "  <key id=\"mention_count\" for=\"node\" attr.name=\"mention_count\" "
                     "attr.type=\"int\"/>\n"
                     "  <key id=\"relation\" for=\"edge\" attr.name=\"relation\" attr.type=\"string\"/>\n"
                     "  <key id=\"weight\" for=\"edge\" attr.name=\"weight\" attr.type=\"double\"/>\n"
                     "  <graph id=\"G\" edgedefault=\"undirected\">\n");
        buf_append(&b, nodes.data ? nodes.data : "", nodes.len);
        buf_append(&b, edges.data ? edges.data : "", edges.len);
        buf_puts(&b, "  </graph>\n</graphml>\n");
        if (b.err) api_fail(c, b.err, "graph");
        else http_respond(c->req, 200, "application/graphml+xml; charset=utf-8", b.data, b.len, NULL);
    } else {
        jw_t w;
        jw_init(&w, &b);
        jw_obj_begin(&w);
        jw_key(&w, "nodes");
        jw_raw(&w, nodes.data ? nodes.data : "[]", nodes.data ? nodes.len : 2);
        jw_key(&w, "edges");
        jw_raw(&w, edges.data ? edges.data : "[]", edges.data ? edges.len : 2);
        jw_obj_end(&w);
        api_send_json(c, 200, &b, NULL);
    }
    buf_free(&b);
done:
    buf_free(&nodes);
    buf_free(&edges);
}
