/*
 * registry.c - embedders by name (see registry.h).
 */
#include "model/registry.h"

#include <stdio.h>
#include <string.h>

#include "util/common.h"

struct embed_registry {
    embedder_t *hash;
    embedder_t *remote;
    char default_name[16];
};

int registry_open(const embed_config_t *remote, const char *default_name, embed_registry_t **out,
                  char *err, size_t errsz)
{
    *out = NULL;
    embed_registry_t *r = eg_calloc(1, sizeof *r);
    if (!r) return ENGRAM_ENOMEM;
    embed_config_t hc = {.name = "hash"};
    int rc = embedder_open(&hc, &r->hash, err, errsz);
    if (!rc && remote) rc = embedder_open(remote, &r->remote, err, errsz);
    if (rc) { registry_free(r); return rc; }
    const char *d = default_name && *default_name ? default_name : "hash";
    if (strcmp(d, "hash") && !(r->remote && !strcmp(d, "openai"))) {
        snprintf(err, errsz, "embedder \"%s\" is not configured (use hash, or openai with --embed-url)", d);
        registry_free(r);
        return ENGRAM_EINVAL;
    }
    snprintf(r->default_name, sizeof r->default_name, "%s", d);
    *out = r;
    return 0;
}

void registry_free(embed_registry_t *r)
{
    if (!r) return;
    embedder_free(r->hash);
    embedder_free(r->remote);
    eg_free(r);
}

embedder_t *registry_get(embed_registry_t *r, const char *name)
{
    if (!r || !name || !strcmp(name, "hash")) return r ? r->hash : NULL;
    if (!strcmp(name, "openai")) return r->remote;
    return NULL;
}

const char *registry_default(const embed_registry_t *r) { return r->default_name; }

void registry_cancel(embed_registry_t *r)
{
    if (!r) return;
    if (r->hash) embedder_cancel(r->hash);
    if (r->remote) embedder_cancel(r->remote);
}

int registry_check(embed_registry_t *r, const char *name, const char *id, char *err, size_t errsz)
{
    embedder_t *e = registry_get(r, name);
    if (!e) {
        snprintf(err, errsz, "embedder \"%s\" is not configured on this server", name ? name : "?");
        return ENGRAM_EINVAL;
    }
    if (id && *id && strcmp(id, embedder_id(e)) != 0) {
        snprintf(err, errsz,
                 "the collection's vectors come from embedder \"%s\" but this server's %s embedder is "
                 "\"%s\"; start the server with the same embedder",
                 id, name, embedder_id(e));
        return ENGRAM_EINVAL;
    }
    return 0;
}
