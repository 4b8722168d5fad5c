/*
 * embed_openai.c - the OpenAI-compatible embeddings client (being written).
 */
#include "model/embed_internal.h"
#include "util/common.h"

struct embed_openai { int unused; };

int embed_openai_open(const embed_config_t *cfg, embed_openai_t **out, char *err, size_t errsz)
{
    (void)cfg;
    *out = NULL;
    return embed_fail(err, errsz, ENGRAM_EUNSUPPORTED, "openai embedder: not built yet");
}

void embed_openai_free(embed_openai_t *o) { eg_free(o); }

int embed_openai_batch(embedder_t *e, const char *const *texts, const size_t *lens, size_t n,
                       float *out, float **out_alloc, char *err, size_t errsz)
{
    (void)e; (void)texts; (void)lens; (void)n; (void)out; (void)out_alloc;
    return embed_fail(err, errsz, ENGRAM_EUNSUPPORTED, "openai embedder: not built yet");
}
