/*
 * test_graph.c - the knowledge graph on its own: the built-in extractor on
 * a small hand-written corpus with known entities and relations (precision
 * and recall printed), variant merging, storage and traversal in LMDB,
 * deletes that take orphaned entities with them, corrupt records, the
 * graph search, the LLM answer parser, the reranker and edit distance.
 */
#include "test.h"

#include "index/graph.h"
#include "index/tokenizer.h"
#include "model/extract_entities.h"
#include "rag/graph_search.h"
#include "rag/rerank.h"
#include "store/store.h"
#include "util/common.h"

/* ---- extraction against a gold standard ---------------------------------- */

typedef struct gold_doc {
    const char *text;
    const char *ents[12];        /* normalised keys */
    const char *rels[12][2];     /* unordered pairs of keys */
} gold_doc_t;

static const gold_doc_t corpus[] = {
    {"Marie Curie was a physicist and chemist. She worked at the University of Paris with "
     "Pierre Curie. In 1903 Marie Curie shared the Nobel Prize with Pierre Curie.",
     {"marie curie", "university of paris", "pierre curie", "1903", "nobel prize", "physicist", NULL},
     {{"marie curie", "physicist"}, {"university of paris", "pierre curie"},
      {"marie curie", "nobel prize"}, {"marie curie", "pierre curie"}, {"marie curie", "1903"},
      {NULL, NULL}}},
    {"The World Health Organization (WHO) is based in Geneva. The WHO coordinates research on "
     "malaria with the Gates Foundation.",
     {"world health organization", "geneva", "gates foundation", NULL},
     {{"world health organization", "geneva"}, {"world health organization", "gates foundation"},
      {NULL, NULL}}},
    {"Paris, the capital of France, hosted the conference in March 2019. Researchers from "
     "Stanford University presented \"deep learning\" results there.",
     {"paris", "france", "march 2019", "stanford university", "deep learning", NULL},
     {{"paris", "france"}, {"paris", "march 2019"}, {"stanford university", "deep learning"},
      {NULL, NULL}}},
    {"Alan Turing studied at King's College in Cambridge. Alan Turing is known for the Turing "
     "Machine. During the war Alan Turing worked at Bletchley Park.",
     {"alan turing", "king s college", "cambridge", "turing machine", "bletchley park", NULL},
     {{"alan turing", "king s college"}, {"alan turing", "turing machine"},
      {"alan turing", "bletchley park"}, {NULL, NULL}}},
};

static int has_key(const graph_chunk_t *g, const char *key)
{
    for (size_t i = 0; i < g->n_ents; i++)
        if (!strcmp(g->ents[i].key, key)) return (int)i + 1;
    return 0;
}

static int has_rel(const graph_chunk_t *g, const char *a, const char *b)
{
    int ia = has_key(g, a), ib = has_key(g, b);
    if (!ia || !ib) return 0;
    for (size_t i = 0; i < g->n_rels; i++) {
        uint32_t x = g->rels[i].a + 1, y = g->rels[i].b + 1;
        if ((x == (uint32_t)ia && y == (uint32_t)ib) || (x == (uint32_t)ib && y == (uint32_t)ia)) return 1;
    }
    return 0;
}

TEST(extraction_precision_recall)
{
    size_t tp = 0, found = 0, gold = 0, rtp = 0, rgold = 0, rfound = 0;
    for (size_t d = 0; d < EG_ARRAY_LEN(corpus); d++) {
        const char *texts[1] = {corpus[d].text};
        size_t lens[1] = {strlen(corpus[d].text)};
        graph_chunk_t *g = NULL;
        REQUIRE(extract_entities(texts, lens, 1, &g) == 0);
        found += g[0].n_ents;
        rfound += g[0].n_rels;
        for (size_t i = 0; corpus[d].ents[i]; i++) {
            gold++;
            if (has_key(&g[0], corpus[d].ents[i])) tp++;
            else fprintf(stderr, "  missed entity %s\n", corpus[d].ents[i]);
        }
        for (size_t i = 0; corpus[d].rels[i][0]; i++) {
            rgold++;
            if (has_rel(&g[0], corpus[d].rels[i][0], corpus[d].rels[i][1])) rtp++;
            else fprintf(stderr, "  missed relation %s - %s\n", corpus[d].rels[i][0], corpus[d].rels[i][1]);
        }
        for (size_t i = 0; i < g[0].n_ents; i++) {
            int known = 0;
            for (size_t k = 0; corpus[d].ents[k]; k++) known |= !strcmp(corpus[d].ents[k], g[0].ents[i].key);
            if (!known) fprintf(stderr, "  extra entity %s\n", g[0].ents[i].key);
        }
        extract_graph_free(g, 1);
    }
    double p = found ? (double)tp / (double)found : 0, r = (double)tp / (double)gold;
    double rr = (double)rtp / (double)rgold;
    printf("entities: precision %.2f recall %.2f (%zu/%zu found, %zu gold); relations: recall %.2f "
           "(%zu/%zu, %zu extracted)\n", p, r, tp, found, gold, rr, rtp, rgold, rfound);
    CHECK(r >= 0.8);
    CHECK(p >= 0.6);
    CHECK(rr >= 0.7);
}

TEST(extraction_types_and_variants)
{
    const char *one = "Marie Curie studied radium. M. Curie lectured in Warsaw. Curie won twice. "
                      "The World Health Organization (WHO) met. The WHO agreed.";
    const char *texts[2] = {one, "Later Marie Curie returned to Warsaw."};
    size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
    graph_chunk_t *g = NULL;
    REQUIRE(extract_entities(texts, lens, 2, &g) == 0);
    int mc = has_key(&g[0], "marie curie");
    REQUIRE(mc);
    CHECK_EQ_INT(g[0].ents[mc - 1].count, 3);       /* Marie Curie, M. Curie, Curie */
    CHECK_STR(g[0].ents[mc - 1].form, "Marie Curie");
    CHECK_EQ_INT(g[0].ents[mc - 1].type, GT_PERSON);
    CHECK(!has_key(&g[0], "curie") && !has_key(&g[0], "m curie"));
    int who = has_key(&g[0], "world health organization");
    REQUIRE(who);
    CHECK_EQ_INT(g[0].ents[who - 1].count, 3);
    CHECK_EQ_INT(g[0].ents[who - 1].type, GT_ORGANIZATION);
    int wa = has_key(&g[0], "warsaw");
    REQUIRE(wa);
    CHECK_EQ_INT(g[0].ents[wa - 1].type, GT_LOCATION);
    CHECK(has_key(&g[1], "marie curie") && !has_key(&g[1], "later"));  /* sentence openers */
    extract_graph_free(g, 2);

    /* two Curies: a bare "Curie" is ambiguous and stays apart */
    const char *amb[1] = {"Marie Curie met Pierre Curie. Curie smiled at Marie Curie."};
    size_t al[1] = {strlen(amb[0])};
    REQUIRE(extract_entities(amb, al, 1, &g) == 0);
    CHECK(has_key(&g[0], "curie"));
    CHECK_EQ_INT(g[0].ents[has_key(&g[0], "marie curie") - 1].count, 2);
    extract_graph_free(g, 1);
}

/* ---- storage ------------------------------------------------------------- */

typedef struct fix {
    char *dir;
    store_t *st;
} fix_t;

static void fix_open(fix_t *f)
{
    f->dir = test_tmpdir();
    REQUIRE(f->dir && store_open(f->dir, NULL, &f->st) == 0);
}

static void fix_close(fix_t *f)
{
    store_close(f->st);
    test_rmdir(f->dir);
}

struct add_args {
    store_t *st;
    uint64_t chunk;
    const graph_chunk_t *g;
    int remove;
};

static int add_cb(MDB_txn *txn, void *arg)
{
    struct add_args *a = arg;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, 1);
    skey_u64(&k, 2);
    skey_u64(&k, a->chunk);
    MDB_val kv = skey_val(&k), v = {4, "fake"};
    if (a->remove) {
        mdb_del(txn, store_dbi(a->st, DB_CHUNKS), &kv, NULL);
        return graph_remove_chunk(txn, a->st, 1, 2, a->chunk);
    }
    int rc = store_status(mdb_put(txn, store_dbi(a->st, DB_CHUNKS), &kv, &v, 0));
    return rc ? rc : graph_add_chunk(txn, a->st, 1, 2, a->chunk, a->g);
}

static graph_mention_t mention(const char *form, int type, uint32_t count)
{
    graph_mention_t m = {.type = (uint8_t)type, .count = count};
    graph_normalise(form, strlen(form), m.key, sizeof m.key);
    snprintf(m.form, sizeof m.form, "%s", form);
    return m;
}

static int nb_collect(uint64_t dst, double weight, const char *label, void *ud)
{
    double *w = ud;
    (void)dst;
    (void)label;
    w[0] += 1;
    w[1] += weight;
    return 0;
}

static int men_collect(uint64_t chunk, uint32_t count, void *ud)
{
    uint64_t *s = ud;
    s[0]++;
    s[1] += chunk * 100 + count;
    return 0;
}

static void add(fix_t *f, uint64_t chunk, graph_mention_t *ents, size_t ne, graph_rel_t *rels,
                size_t nr)
{
    graph_chunk_t g = {ents, ne, rels, nr};
    struct add_args a = {f->st, chunk, &g, 0};
    REQUIRE(store_write(f->st, add_cb, &a) == 0);
}

TEST(storage_traversal_delete)
{
    fix_t f;
    fix_open(&f);
    graph_mention_t e1[] = {mention("Marie Curie", GT_PERSON, 2), mention("Paris", GT_LOCATION, 1)};
    graph_rel_t r1[] = {{0, 1, 2, "worked in"}};
    graph_mention_t e2[] = {mention("marie curie", GT_PERSON, 1), mention("Radium", GT_CONCEPT, 1)};
    graph_rel_t r2[] = {{0, 1, 1, "related_to"}};
    add(&f, 10, e1, 2, r1, 1);
    add(&f, 11, e2, 2, r2, 1);
    MDB_txn *txn;
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    uint64_t id, n;
    REQUIRE(graph_lookup(txn, f.st, 1, 2, "marie curie", 11, &id) == 0);
    graph_entity_t e;
    REQUIRE(graph_entity_get(txn, f.st, 1, 2, id, &e) == 0);
    CHECK_STR(e.name, "Marie Curie");                 /* the most frequent form */
    CHECK_EQ_INT(e.mentions, 3);
    CHECK_EQ_INT(e.chunks, 2);
    CHECK_EQ_INT(e.type, GT_PERSON);
    double w[2] = {0, 0};
    REQUIRE(graph_neighbours(txn, f.st, 1, 2, id, nb_collect, w) == 0);
    CHECK_EQ_INT((int)w[0], 2);                       /* Paris and Radium */
    CHECK_NEAR(w[1], 3.0, 1e-9);
    uint64_t s[2] = {0, 0};
    REQUIRE(graph_mentions(txn, f.st, 1, 2, id, men_collect, s) == 0);
    CHECK_EQ_INT(s[0], 2);
    CHECK_EQ_INT(s[1], 10 * 100 + 2 + 11 * 100 + 1);
    CHECK_EQ_INT(graph_count(txn, f.st, 1, 2, &n), 0);
    CHECK_EQ_INT(n, 3);
    char msg[256];
    CHECK_EQ_INT(graph_verify(txn, f.st, 1, 2, msg, sizeof msg), 0);
    /* the graph search ranks the chunk mentioning both query entities first */
    graph_hit_t hits[8];
    size_t nh = 0;
    buf_t ctx = BUF_INIT;
    size_t ne = 0;
    REQUIRE(graph_search(txn, f.st, 1, 2, "Marie Curie in Paris", 8, NULL, NULL, hits, &nh, &ctx, &ne) == 0);
    CHECK_EQ_INT(ne, 2);
    REQUIRE(nh == 2);
    CHECK_EQ_INT(hits[0].chunk, 10);
    CHECK(ctx.data && strstr(buf_cstr(&ctx), "Marie Curie (person)"));
    buf_free(&ctx);
    nh = 0;
    REQUIRE(graph_search(txn, f.st, 1, 2, "radiumm", 8, NULL, NULL, hits, &nh, NULL, &ne) == 0);
    CHECK_EQ_INT(ne, 1);                              /* fuzzy */
    CHECK(nh >= 1 && hits[0].chunk == 11);
    store_read_end(f.st, txn);

    /* deleting chunk 10: Paris is orphaned and goes, Marie Curie stays */
    struct add_args del = {f.st, 10, NULL, 1};
    REQUIRE(store_write(f.st, add_cb, &del) == 0);
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    CHECK_EQ_INT(graph_lookup(txn, f.st, 1, 2, "paris", 5, &n), ENGRAM_ENOTFOUND);
    REQUIRE(graph_entity_get(txn, f.st, 1, 2, id, &e) == 0);
    CHECK_EQ_INT(e.mentions, 1);
    CHECK_STR(e.name, "marie curie");
    w[0] = w[1] = 0;
    REQUIRE(graph_neighbours(txn, f.st, 1, 2, id, nb_collect, w) == 0);
    CHECK_EQ_INT((int)w[0], 1);
    CHECK_EQ_INT(graph_verify(txn, f.st, 1, 2, msg, sizeof msg), 0);
    CHECK_EQ_INT(graph_count(txn, f.st, 1, 3, &n), 0); /* another collection: empty */
    CHECK_EQ_INT(n, 0);
    store_read_end(f.st, txn);
    del.chunk = 11;
    REQUIRE(store_write(f.st, add_cb, &del) == 0);
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    CHECK_EQ_INT(graph_count(txn, f.st, 1, 2, &n), 0);
    CHECK_EQ_INT(n, 0);
    store_read_end(f.st, txn);
    fix_close(&f);
}

static int drop_cb(MDB_txn *txn, void *arg) { return graph_drop(txn, arg, 1, 2); }

struct corrupt_args {
    store_t *st;
    store_db_t db;
    store_key_t k;
    size_t cut;
};

static int corrupt_cb(MDB_txn *txn, void *arg)
{
    struct corrupt_args *a = arg;
    MDB_val kv = skey_val(&a->k), v;
    int rc = mdb_get(txn, store_dbi(a->st, a->db), &kv, &v);
    if (rc) return store_status(rc);
    unsigned char b[1024];
    size_t n = v.mv_size < sizeof b ? v.mv_size : sizeof b;
    memcpy(b, v.mv_data, n);
    MDB_val nv = {n - a->cut, b};
    return store_status(mdb_put(txn, store_dbi(a->st, a->db), &kv, &nv, 0));
}

TEST(corrupt_records_and_drop)
{
    fix_t f;
    fix_open(&f);
    graph_mention_t e1[] = {mention("Ada Lovelace", GT_PERSON, 1), mention("London", GT_LOCATION, 1)};
    graph_rel_t r1[] = {{0, 1, 1, "lived in"}};
    add(&f, 20, e1, 2, r1, 1);
    MDB_txn *txn;
    uint64_t ada, lon;
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    REQUIRE(graph_lookup(txn, f.st, 1, 2, "ada lovelace", 12, &ada) == 0);
    REQUIRE(graph_lookup(txn, f.st, 1, 2, "london", 6, &lon) == 0);
    /* every truncation of a stored entity record is refused */
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, 1);
    skey_u64(&k, 2);
    skey_u64(&k, ada);
    MDB_val kv = skey_val(&k), v;
    REQUIRE(mdb_get(txn, store_dbi(f.st, DB_GRAPH_ENTITIES), &kv, &v) == 0);
    graph_entity_t e;
    CHECK_EQ_INT(graph_entity_decode(v.mv_data, v.mv_size, &e), 0);
    for (size_t n = 0; n < v.mv_size; n++) CHECK_EQ_INT(graph_entity_decode(v.mv_data, n, &e), ENGRAM_ECORRUPT);
    unsigned char bad[512];
    memcpy(bad, v.mv_data, v.mv_size);
    bad[0] = 9;                                       /* unknown version */
    CHECK_EQ_INT(graph_entity_decode(bad, v.mv_size, &e), ENGRAM_ECORRUPT);
    bad[0] = 1;
    bad[1] = 200;                                     /* unknown type */
    CHECK_EQ_INT(graph_entity_decode(bad, v.mv_size, &e), ENGRAM_ECORRUPT);
    store_read_end(f.st, txn);

    /* a truncated relation record: traversal says ECORRUPT, verify too */
    struct corrupt_args ca = {f.st, DB_GRAPH_EDGES, {{0}, 0, 0}, 2};
    skey_init(&ca.k);
    skey_u64(&ca.k, 1);
    skey_u64(&ca.k, 2);
    skey_u64(&ca.k, ada);
    skey_u64(&ca.k, lon);
    skey_u64(&ca.k, 20);
    REQUIRE(store_write(f.st, corrupt_cb, &ca) == 0);
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    double w[2] = {0, 0};
    CHECK_EQ_INT(graph_neighbours(txn, f.st, 1, 2, ada, nb_collect, w), ENGRAM_ECORRUPT);
    graph_hit_t hits[4];
    size_t nh;
    CHECK_EQ_INT(graph_search(txn, f.st, 1, 2, "Ada Lovelace", 4, NULL, NULL, hits, &nh, NULL, NULL),
                 ENGRAM_ECORRUPT);
    store_read_end(f.st, txn);
    /* a truncated entity record in the store */
    ca.db = DB_GRAPH_ENTITIES;
    ca.k = k;
    ca.cut = 3;
    REQUIRE(store_write(f.st, corrupt_cb, &ca) == 0);
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    CHECK_EQ_INT(graph_entity_get(txn, f.st, 1, 2, ada, &e), ENGRAM_ECORRUPT);
    char msg[256];
    CHECK_EQ_INT(graph_verify(txn, f.st, 1, 2, msg, sizeof msg), ENGRAM_ECORRUPT);
    CHECK(msg[0] != '\0');
    store_read_end(f.st, txn);
    /* a collection drop removes everything, corrupt or not */
    REQUIRE(store_write(f.st, drop_cb, f.st) == 0);
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    uint64_t n;
    CHECK_EQ_INT(graph_count(txn, f.st, 1, 2, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_INT(graph_lookup(txn, f.st, 1, 2, "london", 6, &lon), ENGRAM_ENOTFOUND);
    CHECK_EQ_INT(graph_verify(txn, f.st, 1, 2, msg, sizeof msg), 0);
    store_read_end(f.st, txn);
    fix_close(&f);
}

static int drop_chunk_cb(MDB_txn *txn, void *arg)
{
    store_t *st = arg;
    store_key_t k;
    skey_init(&k);
    skey_u64(&k, 1);
    skey_u64(&k, 2);
    skey_u64(&k, 30);
    MDB_val kv = skey_val(&k);
    return store_status(mdb_del(txn, store_dbi(st, DB_CHUNKS), &kv, NULL));
}

TEST(verify_finds_mention_of_missing_chunk)
{
    fix_t f;
    fix_open(&f);
    graph_mention_t e1[] = {mention("Grace Hopper", GT_PERSON, 1)};
    add(&f, 30, e1, 1, NULL, 0);
    MDB_txn *txn;
    char msg[256];
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    CHECK_EQ_INT(graph_verify(txn, f.st, 1, 2, msg, sizeof msg), 0);
    store_read_end(f.st, txn);
    REQUIRE(store_write(f.st, drop_chunk_cb, f.st) == 0); /* the chunk goes, its mention stays */
    REQUIRE(store_read_begin(f.st, &txn) == 0);
    CHECK_EQ_INT(graph_verify(txn, f.st, 1, 2, msg, sizeof msg), ENGRAM_ECORRUPT);
    CHECK(strstr(msg, "missing chunk") != NULL);
    store_read_end(f.st, txn);
    fix_close(&f);
}

/* ---- LLM answers ------------------------------------------------------------ */

TEST(llm_parse_strict)
{
    graph_chunk_t g[2];
    memset(g, 0, sizeof g);
    const char *good = "```json\n{\"chunks\": [{\"index\": 1, \"entities\": [{\"name\": \"Marie Curie\", "
                       "\"type\": \"Person\"}, {\"name\": \"Paris\", \"type\": \"location\"}], "
                       "\"relations\": [{\"source\": \"marie curie\", \"target\": \"Paris\", "
                       "\"description\": \"worked in\"}, {\"source\": \"X\", \"target\": \"Paris\", "
                       "\"description\": \"unknown end: dropped\"}]}]}\n```";
    REQUIRE(extract_llm_parse(good, strlen(good), 2, g) == 0);
    CHECK_EQ_INT(g[0].n_ents, 0);
    REQUIRE(g[1].n_ents == 2);
    CHECK_STR(g[1].ents[0].key, "marie curie");
    CHECK_EQ_INT(g[1].ents[0].type, GT_PERSON);
    REQUIRE(g[1].n_rels == 1);
    CHECK_STR(g[1].rels[0].label, "worked in");
    for (int i = 0; i < 2; i++) graph_chunk_free(&g[i]);
    static const char *const bad[] = {
        "no json at all",
        "[]",
        "{\"chunks\": {}}",
        "{\"chunks\": [{\"index\": 2, \"entities\": []}]}",
        "{\"chunks\": [{\"index\": 0, \"entities\": []}, {\"index\": 0, \"entities\": []}]}",
        "{\"chunks\": [{\"index\": 0, \"entities\": [{\"name\": \"A\", \"type\": \"alien\"}]}]}",
        "{\"chunks\": [{\"index\": 0, \"entities\": [{\"name\": 5, \"type\": \"other\"}]}]}",
        "{\"chunks\": [{\"index\": 0, \"entities\": [{\"name\": \"\", \"type\": \"other\"}]}]}",
        "{\"chunks\": [{\"index\": 0}]}",
        "{\"chunks\": [{\"index\": 0, \"entities\": [], \"relations\": [{\"source\": 1}]}]}",
        "```json\n{\"chunks\": []}",
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++) {
        memset(g, 0, sizeof g);
        int rc = extract_llm_parse(bad[i], strlen(bad[i]), 2, g);
        if (rc != ENGRAM_EINVAL) fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_EQ_INT(rc, ENGRAM_EINVAL);
        CHECK(g[0].ents == NULL && g[1].ents == NULL);
    }
}

/* ---- rerank and distances ---------------------------------------------------- */

TEST(rerank_builtin_prefers_close_terms)
{
    tokenizer_t *tok;
    REQUIRE(tokenizer_new(&tok) == 0);
    const char *texts[3] = {
        "solar energy is cheap. many other words here and there before the panel. efficiency matters",
        "the solar panel efficiency improved this year",
        "wind power only",
    };
    size_t lens[3] = {strlen(texts[0]), strlen(texts[1]), strlen(texts[2])};
    double s[3];
    REQUIRE(rerank_builtin(tok, "solar panel efficiency", texts, lens, 3, s) == 0);
    CHECK(s[1] > s[0]);
    CHECK(s[0] > s[2]);
    CHECK_NEAR(s[2], 0.0, 1e-12);
    CHECK(s[1] <= 1.0 + 1e-12);
    tokenizer_free(tok);

    double sc[3];
    const char *tei = "[{\"index\":2,\"score\":0.1},{\"index\":0,\"score\":0.9},{\"index\":1,\"score\":0.5}]";
    REQUIRE(rerank_parse_answer(tei, strlen(tei), 3, sc) == 0);
    CHECK_NEAR(sc[0], 0.9, 1e-12);
    CHECK_NEAR(sc[2], 0.1, 1e-12);
    const char *cohere = "{\"results\":[{\"index\":1,\"relevance_score\":0.7},{\"index\":0,\"relevance_score\":0.2}]}";
    REQUIRE(rerank_parse_answer(cohere, strlen(cohere), 2, sc) == 0);
    CHECK_NEAR(sc[1], 0.7, 1e-12);
    const char *plain = "{\"scores\":[1,2]}";
    REQUIRE(rerank_parse_answer(plain, strlen(plain), 2, sc) == 0);
    static const char *const bad[] = {"{}", "[{\"index\":0,\"score\":1}]", "[{\"index\":0},{\"index\":1}]",
                                      "[{\"index\":0,\"score\":1},{\"index\":0,\"score\":1}]",
                                      "[{\"index\":5,\"score\":1},{\"index\":0,\"score\":1}]", "nope"};
    for (size_t i = 0; i < EG_ARRAY_LEN(bad); i++)
        CHECK_EQ_INT(rerank_parse_answer(bad[i], strlen(bad[i]), 2, sc), ENGRAM_EINVAL);
}

TEST(edit_distance_and_normalise)
{
    CHECK_EQ_INT(graph_edit_distance("einstein", 8, "einstien", 8, 1), 1);  /* transposition */
    CHECK_EQ_INT(graph_edit_distance("curie", 5, "curie", 5, 1), 0);
    CHECK_EQ_INT(graph_edit_distance("curie", 5, "marie", 5, 1), 2);       /* over max: max + 1 */
    CHECK_EQ_INT(graph_edit_distance("abc", 3, "abcdef", 6, 2), 3);
    char out[GRAPH_MAX_NAME + 1];
    CHECK_EQ_INT(graph_normalise("  M. Curie-Skłodowska ", 23, out, sizeof out), strlen("m curie skłodowska"));
    CHECK_STR(out, "m curie skłodowska");
    CHECK_EQ_INT(graph_normalise("...", 3, out, sizeof out), 0);
    CHECK_STR(graph_type_name(GT_DATE), "date");
    CHECK_EQ_INT(graph_type_parse("organization"), GT_ORGANIZATION);
    CHECK_EQ_INT(graph_type_parse("org"), -1);
    uint64_t c, i;
    char u[37];
    graph_entity_uuid(7, 42, u);
    REQUIRE(graph_entity_uuid_parse(u, &c, &i) == 0);
    CHECK_EQ_INT(c, 7);
    CHECK_EQ_INT(i, 42);
    CHECK_EQ_INT(graph_entity_uuid_parse("nope", &c, &i), ENGRAM_EINVAL);
}
