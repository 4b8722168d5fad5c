/*
 * limits.h - request rate limits and workspace quotas.
 *
 * Rate limits are token buckets kept in memory: one per API key (or per
 * user for cookie sessions) with --rate-limit requests per minute, and one
 * per client address for the unauthenticated login/register routes with
 * --auth-rate-limit attempts per minute (against password guessing and
 * sign-up floods). A bucket holds at most one minute's worth of tokens and
 * refills continuously; a request takes one token, and with none left the
 * answer is 429 with Retry-After = seconds until the next token. IPv6
 * clients are bucketed by their /64 (one host usually owns a whole /64).
 * Behind a reverse proxy every client has the proxy's address: put the
 * per-address limit in the proxy then (docs/DEPLOYMENT.md).
 *
 * Quotas are per workspace, stored in DB_QUOTAS:
 *   ws(8)          -> record (store/record.h JSON):
 *                     {"max_chunks": N|null, "max_requests_per_day": N|null,
 *                      "updated_at": "..."}   (null: no limit)
 *   ws(8) day(4)   -> u64 big-endian: requests counted that UTC day
 *                     (day = days since 1970-01-01)
 * Requests per day are counted in memory and written back every few
 * seconds by a small thread (and at limits_free), so a restart loses at
 * most those seconds of counting. max_chunks is checked when an upload
 * arrives, against the chunks the workspace already holds: a document's
 * chunk count is known only after processing, so the upload that crosses
 * the limit is accepted and the next one is refused.
 *
 * Thread-safety: every function may be called from any thread; one mutex
 * guards the tables (never held across a store call). The limits_take_*
 * and limits_count_request functions never write to the store, so they are
 * safe on the HTTP loop thread.
 */
#ifndef ENGRAM_LIMITS_H
#define ENGRAM_LIMITS_H

#include <stdint.h>

#include "store/store.h"

typedef struct limits limits_t;

typedef struct quota {
    int64_t max_chunks;            /* -1: no limit */
    int64_t max_requests_per_day;  /* -1: no limit */
} quota_t;

/* key_per_min / addr_per_min: 0 turns that limit off. Starts the thread
 * that writes the day counts back. */
int limits_new(store_t *st, int key_per_min, int addr_per_min, limits_t **out);
/* Writes the day counts back and frees l. Call before store_close. */
void limits_free(limits_t *l);

/* One request by credential id (API key id, or a distinct id for cookie
 * sessions). 0 when allowed, else ENGRAM_EAGAIN with *retry_after_s >= 1. */
int limits_take_key(limits_t *l, uint64_t id, int *retry_after_s);
/* One login/register attempt from remote_addr ("1.2.3.4:port",
 * "[::1]:port"). Same answers. */
int limits_take_addr(limits_t *l, const char *remote_addr, int *retry_after_s);

/* Counts one request of workspace ws for today. ENGRAM_EAGAIN (not
 * counted) when max_requests_per_day is already reached; *retry_after_s is
 * then the time to the next UTC midnight. A store failure while loading the
 * workspace's quota lets the request through (and is retried next time). */
int limits_count_request(limits_t *l, uint64_t ws, int *retry_after_s);
/* ENGRAM_EAGAIN when ws has a max_chunks quota and already holds at least
 * that many chunks; else 0 (or a store status). Reads the collection
 * records of ws in one short read transaction. */
int limits_check_chunks(limits_t *l, uint64_t ws);

/* Replaces ws's quota (stored, then effective at once). */
int limits_quota_set(limits_t *l, uint64_t ws, const quota_t *q);
/* ws's quota and its requests counted today. */
int limits_quota_get(limits_t *l, uint64_t ws, quota_t *q, uint64_t *requests_today);
/* Chunks held by ws (sum over its collections). */
int limits_ws_chunks(store_t *st, uint64_t ws, uint64_t *chunks);

/* Writes the changed day counts now (the thread does it every few seconds). */
int limits_flush(limits_t *l);

#endif
