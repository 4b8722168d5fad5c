/*
 * cache.h - a bounded result cache with single-flight computation (the
 * retrieval cache).
 *
 * An entry is an opaque key (the caller puts the workspace and the
 * normalised request in it), a stamp and a value. The stamp is the caller's
 * snapshot of whatever the value depends on (catalog_generation of the
 * collections involved, read BEFORE computing): an entry is used only when
 * the caller's current stamp equals the stored one, so any committed write
 * to those collections makes the old entry unusable at once, and it is
 * replaced by the next computation.
 *
 * Single flight: while one caller computes a key, callers of the same key
 * and stamp wait for that result instead of computing it again; they get
 * the same value (or the same failure status). Values are kept in LRU order
 * and evicted by total size (keys + values + overhead) beyond max_bytes;
 * a value larger than max_bytes / 8 is handed to its waiters but not kept.
 *
 * Hits (including waiters served by a computation in flight) and misses are
 * counted in ops/metrics.h (engram_cache_hits_total, _misses_total,
 * _shared_total). Thread-safe: one mutex, never held while computing.
 */
#ifndef ENGRAM_CACHE_H
#define ENGRAM_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

typedef struct cache cache_t;

/* max_bytes 0: a cache that keeps nothing (every call computes; concurrent
 * identical calls still share one computation). */
int cache_new(size_t max_bytes, cache_t **out);
/* Every computation must have returned. */
void cache_free(cache_t *c);

/* Computes the value into out (empty on entry); returns 0 or a status (then
 * nothing is kept). Runs on the caller's thread without the cache lock. */
typedef int (*cache_compute_fn)(void *arg, buf_t *out);

/* Appends the value of key to out: from the cache when an entry with this
 * stamp exists, else from the computation in flight for it, else by calling
 * fn. *hit (may be NULL) is 1 when fn was not called by this caller.
 * Returns 0 or the computation's status. */
int cache_get(cache_t *c, const void *key, size_t klen, uint64_t stamp, cache_compute_fn fn,
              void *arg, buf_t *out, int *hit);

typedef struct cache_stats {
    size_t entries, bytes, max_bytes;
} cache_stats_t;
void cache_get_stats(cache_t *c, cache_stats_t *out);

#endif
