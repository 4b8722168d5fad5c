/*
 * registry.h - the embedders this server can use, by name.
 *
 * "hash" (built in) is always there; "openai" when the server was started
 * with an embeddings service (--embedder openai / --embed-url). A collection
 * records the name and the embedder's identity (embedder_id) at creation;
 * registry_check tells whether this server still has that same embedder, so
 * a server restarted with another model refuses to mix vectors instead of
 * returning nonsense. Opened once at start, read-only afterwards: thread-safe.
 */
#ifndef ENGRAM_REGISTRY_H
#define ENGRAM_REGISTRY_H

#include <stddef.h>

#include "model/embed.h"

typedef struct embed_registry embed_registry_t;

/* remote may be NULL (no service). default_name is the embedder new
 * collections get ("hash" or "openai"). */
int registry_open(const embed_config_t *remote, const char *default_name, embed_registry_t **out,
                  char *err, size_t errsz);
void registry_free(embed_registry_t *r);
/* The embedder called name, or NULL. */
embedder_t *registry_get(embed_registry_t *r, const char *name);
const char *registry_default(const embed_registry_t *r);
/* Shutdown: makes running and later service calls return ENGRAM_ECANCELED
 * at once (embedder_cancel on each embedder). */
void registry_cancel(embed_registry_t *r);
/* 0 if name is available with identity id (id NULL: any); else
 * ENGRAM_EINVAL with a message. */
int registry_check(embed_registry_t *r, const char *name, const char *id, char *err, size_t errsz);

#endif
