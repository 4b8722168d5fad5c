/*
 * extract_llm.c - entity and relation extraction by an OpenAI-compatible
 * chat service, with the built-in extractor as the fallback (see
 * extract_entities.h).
 *
 * Chunks go in batches of cfg->batch, numbered, in one user message; the
 * system message asks for exactly this JSON:
 *
 *   {"chunks": [{"index": 0,
 *                "entities": [{"name": "Marie Curie", "type": "person"}],
 *                "relations": [{"source": "Marie Curie", "target": "Paris",
 *                               "description": "worked in"}]}]}
 *
 * A Markdown code fence around the JSON is tolerated (models add them);
 * everything else is checked: an object with a "chunks" array, each item
 * with an integer index inside the batch (each at most once), entity names
 * strings of 1..GRAPH_MAX_NAME bytes with something left after
 * normalisation, types one of the six (any case), relations with string
 * ends and description. A relation whose ends are not entities of the same
 * chunk is dropped; any other deviation rejects the whole answer and the
 * batch falls back to the built-in extractor. The request runs with a
 * deadline (cfg->timeout_ms) and counts in engram_llm_calls_total /
 * engram_llm_errors_total.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "model/extract_entities.h"
#include "ops/metrics.h"
#include "rag/llm.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/json.h"
#include "util/log.h"
#include "util/utf8.h"

#define PROMPT_CHUNK_MAX 6000  /* bytes of one chunk sent to the model */

static const char system_prompt[] =
    "You extract a knowledge graph from text. For each numbered chunk, list the named "
    "entities it mentions (people, organizations, locations, dates, concepts) and the "
    "relations between them stated in that chunk. Answer with JSON only, exactly in this "
    "shape: {\"chunks\": [{\"index\": 0, \"entities\": [{\"name\": \"...\", \"type\": "
    "\"person|organization|location|date|concept|other\"}], \"relations\": [{\"source\": "
    "\"entity name\", \"target\": \"entity name\", \"description\": \"a few words\"}]}]}. "
    "Use each entity's name as written in the chunk.";

static int delta_cb(const char *text, size_t len, void *ud)
{
    buf_t *b = ud;
    buf_append(b, text, len);
    return b->err;
}

/* Occurrences of name in text, ASCII case-insensitive, at least 1. */
static uint32_t occurrences(const char *text, size_t len, const char *name)
{
    size_t nl = strlen(name);
    uint32_t n = 0;
    for (size_t i = 0; nl && i + nl <= len; i++)
        if (!strncasecmp(text + i, name, nl)) { n++; i += nl - 1; }
    return n ? n : 1;
}

static int parse_chunk(const json_t *item, graph_chunk_t *g)
{
    const json_t *ents = json_get(item, "entities"), *rels = json_get(item, "relations");
    if (!ents || ents->type != JSON_ARRAY || (rels && rels->type != JSON_ARRAY &&
                                               rels->type != JSON_NULL))
        return ENGRAM_EINVAL;
    size_t ne = ents->len < EXTRACT_MAX_ENTS ? ents->len : EXTRACT_MAX_ENTS;
    size_t nr = rels && rels->type == JSON_ARRAY ? rels->len : 0;
    if (nr > EXTRACT_MAX_RELS) nr = EXTRACT_MAX_RELS;
    g->ents = eg_calloc(ne + 1, sizeof *g->ents);
    g->rels = eg_calloc(nr + 1, sizeof *g->rels);
    if (!g->ents || !g->rels) return ENGRAM_ENOMEM;
    for (size_t i = 0; i < ne; i++) {
        const json_t *e = json_at(ents, i);
        const json_t *nm = json_get(e, "name"), *ty = json_get(e, "type");
        if (!e || e->type != JSON_OBJECT || !nm || nm->type != JSON_STRING || !ty ||
            ty->type != JSON_STRING || nm->len == 0 || nm->len > GRAPH_MAX_NAME ||
            memchr(nm->str, '\0', nm->len) || ty->len > 20)
            return ENGRAM_EINVAL;
        char tl[24];
        for (size_t k = 0; k <= ty->len; k++) tl[k] = (char)(ty->str[k] | (ty->str[k] >= 'A' && ty->str[k] <= 'Z' ? 0x20 : 0));
        int type = graph_type_parse(tl);
        if (type < 0) return ENGRAM_EINVAL;
        graph_mention_t m = {.type = (uint8_t)type};
        if (!graph_normalise(nm->str, nm->len, m.key, sizeof m.key)) return ENGRAM_EINVAL;
        memcpy(m.form, nm->str, nm->len);
        m.form[nm->len] = '\0';
        size_t k;
        for (k = 0; k < g->n_ents; k++)
            if (!strcmp(g->ents[k].key, m.key)) break;
        if (k < g->n_ents) continue; /* the same entity twice */
        g->ents[g->n_ents++] = m;
    }
    for (size_t i = 0; i < nr; i++) {
        const json_t *r = json_at(rels, i);
        const json_t *s = json_get(r, "source"), *t = json_get(r, "target"),
                     *ds = json_get(r, "description");
        if (!r || r->type != JSON_OBJECT || !s || s->type != JSON_STRING || !t ||
            t->type != JSON_STRING || (ds && ds->type != JSON_STRING))
            return ENGRAM_EINVAL;
        char ks[GRAPH_MAX_NAME + 1], kt[GRAPH_MAX_NAME + 1];
        graph_normalise(s->str, s->len, ks, sizeof ks);
        graph_normalise(t->str, t->len, kt, sizeof kt);
        long a = -1, b = -1;
        for (size_t k = 0; k < g->n_ents; k++) {
            if (!strcmp(g->ents[k].key, ks)) a = (long)k;
            if (!strcmp(g->ents[k].key, kt)) b = (long)k;
        }
        if (a < 0 || b < 0 || a == b) continue;
        graph_rel_t *gr = &g->rels[g->n_rels++];
        gr->a = (uint32_t)a;
        gr->b = (uint32_t)b;
        gr->count = 1;
        const char *label = ds && ds->len ? ds->str : "related_to";
        size_t ll = utf8_truncate(label, strlen(label), GRAPH_MAX_LABEL);
        memcpy(gr->label, label, ll);
        gr->label[ll] = '\0';
    }
    return 0;
}

int extract_llm_parse(const char *content, size_t len, size_t n, graph_chunk_t *out)
{
    /* a ```json fence around the answer */
    while (len && (*content == ' ' || *content == '\n' || *content == '\r' || *content == '\t')) { content++; len--; }
    if (len >= 3 && !strncmp(content, "```", 3)) {
        const char *nl = memchr(content, '\n', len);
        if (!nl) return ENGRAM_EINVAL;
        len -= (size_t)(nl + 1 - content);
        content = nl + 1;
        while (len && (content[len - 1] == ' ' || content[len - 1] == '\n' || content[len - 1] == '\r')) len--;
        if (len < 3 || strncmp(content + len - 3, "```", 3)) return ENGRAM_EINVAL;
        len -= 3;
    }
    json_t *root = NULL;
    json_error_t jerr;
    if (json_parse(content, len, &root, &jerr)) return ENGRAM_EINVAL;
    int rc = 0;
    const json_t *chunks = json_get(root, "chunks");
    if (root->type != JSON_OBJECT || !chunks || chunks->type != JSON_ARRAY || chunks->len > n) {
        rc = ENGRAM_EINVAL;
        goto done;
    }
    for (size_t i = 0; i < chunks->len && !rc; i++) {
        const json_t *item = json_at(chunks, i);
        int64_t idx;
        if (!item || item->type != JSON_OBJECT || json_get_int(item, "index", &idx) || idx < 0 ||
            (uint64_t)idx >= n || out[idx].ents) {
            rc = ENGRAM_EINVAL;
            break;
        }
        rc = parse_chunk(item, &out[idx]);
    }
done:
    json_free(root);
    if (rc)
        for (size_t i = 0; i < n; i++) graph_chunk_free(&out[i]);
    return rc;
}

/* One batch through the service; ENGRAM_EUPSTREAM/EINVAL/ETIMEOUT mean
 * "fall back". */
static int llm_batch(const extract_llm_config_t *cfg, const char *const *texts, const size_t *lens,
                     size_t n, graph_chunk_t *out)
{
    buf_t prompt = BUF_INIT, answer = BUF_INIT;
    buf_puts(&prompt, "Extract entities and relations from these chunks.\n");
    for (size_t i = 0; i < n; i++) {
        size_t l = utf8_truncate(texts[i], lens[i], PROMPT_CHUNK_MAX);
        buf_printf(&prompt, "\n### Chunk %zu\n", i);
        buf_append(&prompt, texts[i], l);
        buf_putc(&prompt, '\n');
    }
    int rc = prompt.err;
    if (!rc) {
        llm_message_t msgs[2] = {{"system", system_prompt}, {"user", buf_cstr(&prompt)}};
        llm_config_t lc = {.url = cfg->url, .api_key = cfg->api_key,
                           .first_token_timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 60000,
                           .total_timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 60000};
        llm_request_t req = {.model = cfg->model, .messages = msgs, .n_messages = 2,
                             .has_temperature = 1, .temperature = 0.0};
        llm_usage_t usage;
        size_t nd = 0;
        char err[256] = "";
        metrics_inc(MET_LLM_CALLS);
        rc = llm_chat_stream(&lc, &req, delta_cb, NULL, &answer, &usage, &nd, err, sizeof err);
        if (!rc && answer.err) rc = answer.err;
        if (!rc) {
            rc = extract_llm_parse(answer.data ? answer.data : "", answer.len, n, out);
            if (rc == ENGRAM_EINVAL) snprintf(err, sizeof err, "the answer is not the JSON asked for");
        }
        if (rc && rc != ENGRAM_ENOMEM) {
            metrics_inc(MET_LLM_ERRORS);
            log_warn("graph: LLM extraction failed (%s); using the built-in extractor", err[0] ? err : engram_strerror(rc));
        }
    }
    buf_free(&prompt);
    buf_free(&answer);
    if (!rc)
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < out[i].n_ents; k++)
                out[i].ents[k].count = occurrences(texts[i], lens[i], out[i].ents[k].form);
    return rc;
}

int extract_entities_llm(const extract_llm_config_t *cfg, const char *const *texts,
                         const size_t *lens, size_t n, graph_chunk_t **out, size_t *fallbacks)
{
    *out = NULL;
    if (fallbacks) *fallbacks = 0;
    size_t batch = cfg->batch ? cfg->batch : 4;
    graph_chunk_t *g = eg_calloc(n + 1, sizeof *g);
    if (!g) return ENGRAM_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        rc = llm_batch(cfg, texts + i, lens + i, m, g + i);
        if (rc == ENGRAM_ENOMEM) break;
        if (rc) {
            graph_chunk_t *fb = NULL;
            if (fallbacks) (*fallbacks)++;
            rc = extract_entities(texts + i, lens + i, m, &fb);
            if (rc) break;
            memcpy(g + i, fb, m * sizeof *fb);
            eg_free(fb);
        }
    }
    if (rc) { extract_graph_free(g, n); return rc; }
    *out = g;
    return 0;
}
