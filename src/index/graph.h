/*
 * graph.h - the knowledge graph of a collection in LMDB: entities, the
 * chunks that mention them, and weighted relations between them.
 *
 * Extraction (model/extract_entities.h) turns each chunk into a
 * graph_chunk_t: the entities it mentions (normalised key, written form,
 * type, count) and relations between them (label, count). The writer adds it
 * with graph_add_chunk in the same transaction as the chunk itself, and
 * graph_remove_chunk takes it out again in the document's delete
 * transaction: mentions and relations go, and an entity whose last mention
 * went is removed with its name. So the graph always describes exactly the
 * chunks that exist.
 *
 * Layout (all keys start ws(8) coll(8); integers big-endian):
 *   DB_GRAPH_ENTITIES ws coll entity(8) -> entity record:
 *       version(1)=1, type(1), mentions(4), chunks(4), votes(6 x 4: mentions
 *       per type), key length(1), key, form count(1), forms: count(4)
 *       length(1) bytes (at most GRAPH_MAX_FORMS, the rarest replaced).
 *   DB_GRAPH_NAMES ws coll key -> entity(8)  (key = graph_normalise(name))
 *   DB_GRAPH_EDGES ws coll src(8) dst(8) chunk(8) -> count(4) label length(1)
 *       label. Every relation is stored in both directions, once per chunk
 *       that supports it, so its weight is the sum over its chunks and a
 *       delete subtracts exactly what the chunk added.
 *   DB_GRAPH_MENTIONS
 *       ws coll 'E' entity(8) chunk(8) -> count(4)
 *       ws coll 'C' chunk(8) entity(8) -> count(4) type(1) form length(1) form
 *       ws coll 'R' chunk(8) a(8) b(8) -> empty  (a < b: the chunk's edges)
 * Entity ids come from the store counter "entity". The public id of an
 * entity is a UUID-shaped string of coll(8) entity(8) in hex.
 *
 * Every decode checks lengths and versions: a damaged record is
 * ENGRAM_ECORRUPT, never a crash. Functions with a txn are used inside the
 * caller's transaction (a write txn for add/remove/drop); pointers handed to
 * callbacks are valid only during the call.
 */
#ifndef ENGRAM_GRAPH_H
#define ENGRAM_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define GRAPH_MAX_NAME 120   /* bytes of a key or written form */
#define GRAPH_MAX_FORMS 8
#define GRAPH_MAX_LABEL 40

typedef enum {
    GT_PERSON = 0,
    GT_ORGANIZATION,
    GT_LOCATION,
    GT_DATE,
    GT_CONCEPT,
    GT_OTHER,
    GT__COUNT
} graph_type_t;

const char *graph_type_name(int type);
/* -1 when unknown. */
int graph_type_parse(const char *s);

/* Normalised key of a name: lower case, runs of anything that is not a
 * letter or digit as one space, trimmed, at most GRAPH_MAX_NAME bytes (cut
 * on a character boundary). Writes a NUL-terminated key to out (outsz >
 * GRAPH_MAX_NAME) and returns its length (0: nothing left). */
size_t graph_normalise(const char *s, size_t n, char *out, size_t outsz);

/* ---- what extraction hands to the writer ---- */

typedef struct graph_mention {
    char key[GRAPH_MAX_NAME + 1];   /* graph_normalise of the name, non-empty */
    char form[GRAPH_MAX_NAME + 1];  /* as written */
    uint8_t type;                   /* graph_type_t */
    uint32_t count;                 /* times in the chunk, >= 1 */
} graph_mention_t;

typedef struct graph_rel {
    uint32_t a, b;                  /* indexes into ents, a != b */
    uint32_t count;                 /* >= 1 */
    char label[GRAPH_MAX_LABEL + 1];/* "related_to", "is_a", "of", ... */
} graph_rel_t;

typedef struct graph_chunk {
    graph_mention_t *ents;
    size_t n_ents;
    graph_rel_t *rels;
    size_t n_rels;
} graph_chunk_t;

/* Frees the arrays of g (not g itself) and zeroes it. */
void graph_chunk_free(graph_chunk_t *g);

/* ---- writes (inside a write transaction) ---- */

/* Adds chunk's entities, mentions and relations. Entries of g that are
 * invalid (empty key, bad indexes) are skipped. Re-runnable. */
int graph_add_chunk(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk,
                    const graph_chunk_t *g);
/* Removes what graph_add_chunk added for chunk (nothing: 0), and entities
 * left without mentions. */
int graph_remove_chunk(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t chunk);
/* Removes the collection's whole graph. */
int graph_drop(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll);

/* ---- reads ---- */

typedef struct graph_entity {
    uint64_t id;
    uint8_t type;
    uint32_t mentions, chunks;
    char key[GRAPH_MAX_NAME + 1];
    char name[GRAPH_MAX_NAME + 1];  /* the most frequent written form */
} graph_entity_t;

/* Decodes an entity record (id is left 0). */
int graph_entity_decode(const void *val, size_t len, graph_entity_t *out);
int graph_entity_get(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                     graph_entity_t *out);
/* Entity id for a normalised key; ENGRAM_ENOTFOUND when none. */
int graph_lookup(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const char *key,
                 size_t len, uint64_t *id);

/* Callbacks return non-zero to stop (that value is returned). */
typedef int (*graph_name_fn)(const char *key, size_t len, uint64_t id, void *ud);
typedef int (*graph_edge_fn)(uint64_t dst, double weight, const char *label, void *ud);
typedef int (*graph_mention_fn)(uint64_t chunk, uint32_t count, void *ud);
typedef int (*graph_entity_fn)(const graph_entity_t *e, void *ud);

/* Names (keys) starting with prefix, in key order (plen 0: all). */
int graph_names_scan(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, const char *prefix,
                     size_t plen, graph_name_fn fn, void *ud);
/* The entity's relations, one call per neighbour with the summed weight and
 * the label of its strongest supporting chunk, in neighbour id order. */
int graph_neighbours(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                     graph_edge_fn fn, void *ud);
/* The chunks that mention the entity, in chunk id order. */
int graph_mentions(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t id,
                   graph_mention_fn fn, void *ud);
/* Every entity of the collection in id order. */
int graph_entities_scan(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, graph_entity_fn fn,
                        void *ud);
/* Number of entities of the collection. */
int graph_count(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, uint64_t *n);

/* Public ids. graph_entity_uuid_parse: ENGRAM_EINVAL when s is not one. */
void graph_entity_uuid(uint64_t coll, uint64_t id, char out[37]);
int graph_entity_uuid_parse(const char *s, uint64_t *coll, uint64_t *id);

/* Cross-checks of one collection's graph for `engram verify`: every
 * record decodes, every mention names an existing chunk and entity and has
 * its reverse entry, no entity is without mentions, its mention count is
 * the sum of its mentions, every relation's ends exist and it is stored in
 * both directions. 0 when clean, else ENGRAM_ECORRUPT with the first
 * defect in msg. */
int graph_verify(MDB_txn *txn, store_t *st, uint64_t ws, uint64_t coll, char *msg, size_t msglen);

#endif
