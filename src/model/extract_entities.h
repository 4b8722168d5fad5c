/*
 * extract_entities.h - entity and relation extraction for the knowledge
 * graph: the built-in rule-based extractor and the LLM extractor.
 *
 * Built-in (no model, deterministic): entities are multi-word proper names
 * (runs of capitalised words with "of"/"de"/"van"... inside organisation
 * names), acronyms, "quoted" and *emphasised* terms, dates (month names,
 * years) and the noun phrases of "X is a Y". Variants are merged across the
 * document where that is unambiguous: "M. Curie" and "Curie" join "Marie
 * Curie" only when no other "... Curie" exists; an acronym defined as
 * "Long Name (LN)" joins its long name. A capitalised word that only ever
 * starts a sentence is not a name. Types come from cues: titles and
 * two-or-three-word names (person), organisation words and defined acronyms
 * (organization), a small gazetteer and place words (location), months and
 * years (date), quoted/emphasised terms, technical acronyms and concept
 * words (concept), else other. Relations: pairs of nearby entities in a
 * sentence ("related_to", weighted by how many sentences), and the patterns
 * "X is a Y" ("is_a"), "X of Y" ("of") and "X, the Y of Z" (label Y).
 *
 * LLM (extract_llm.c): with an OpenAI-compatible chat service configured,
 * chunks are sent in batches asking for JSON entities (name, type) and
 * relations (source, target, description); the answer is validated strictly
 * and any failure (transport, status, malformed JSON, unknown shape) falls
 * back to the built-in extractor for that batch. Calls and errors are
 * counted in metrics (engram_llm_calls_total / engram_llm_errors_total).
 *
 * Both produce one graph_chunk_t per chunk (index/graph.h); free them with
 * extract_graph_free. Thread-safe (no shared state).
 */
#ifndef ENGRAM_EXTRACT_ENTITIES_H
#define ENGRAM_EXTRACT_ENTITIES_H

#include <stddef.h>

#include "index/graph.h"

#define EXTRACT_MAX_ENTS 64   /* per chunk */
#define EXTRACT_MAX_RELS 96   /* per chunk */

/* Built-in extraction over a document's n chunks (texts[i], lens[i]).
 * *out (n graph_chunk_t) is owned by the caller. ENGRAM_ENOMEM only. */
int extract_entities(const char *const *texts, const size_t *lens, size_t n, graph_chunk_t **out);
void extract_graph_free(graph_chunk_t *g, size_t n);

typedef struct extract_llm_config {
    const char *url;         /* OpenAI-compatible base URL (see rag/llm.h) */
    const char *model;       /* NULL/"": left out */
    const char *api_key;     /* NULL/"": none */
    int timeout_ms;          /* whole call; 0: 60000 */
    size_t batch;            /* chunks per request; 0: 4 */
} extract_llm_config_t;

/* LLM extraction with fallback (see above): never fails for the service's
 * sake. *fallbacks (may be NULL) = batches that used the built-in
 * extractor. ENGRAM_ENOMEM only. */
int extract_entities_llm(const extract_llm_config_t *cfg, const char *const *texts,
                         const size_t *lens, size_t n, graph_chunk_t **out, size_t *fallbacks);

/* Parses one LLM answer (the message content) for chunks [0, n) into out
 * (n zeroed graph_chunk_t, filled on success). Strict: ENGRAM_EINVAL for
 * anything that is not the expected JSON shape. Exposed for tests. */
int extract_llm_parse(const char *content, size_t len, size_t n, graph_chunk_t *out);

#endif
