/*
 * cache.c - result cache with single flight and LRU eviction (see cache.h).
 *
 * Entries sit in a chained hash table (found by key) and, once computed and
 * small enough, in an LRU list (evicted by cost). An entry's life:
 *   PENDING  in the table, its leader computing; waiters sleep on the cv
 *   READY    value present; in the LRU list when kept
 *   FAILED   the computation failed; status kept for the waiters
 * An entry leaves the table when it is stale (a caller came with another
 * stamp), evicted, failed, or not worth keeping. It is freed only when it
 * is out of the table, no longer PENDING, and has no waiter left (waiters
 * copy the value after waking up, so it must outlive the wake-up); whoever
 * makes the last of those true frees it.
 */
#include "ops/cache.h"

#include <pthread.h>
#include <string.h>

#include "ops/metrics.h"
#include "util/common.h"

#define CACHE_BUCKETS 4096u
#define ENTRY_OVERHEAD 128u

enum { E_PENDING, E_READY, E_FAILED };

typedef struct entry {
    uint64_t hash, stamp;
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
    size_t cost;
    int state, status;
    int waiters;
    int in_table, in_lru;
    struct entry *hnext;
    struct entry *prev, *next; /* LRU: head = most recent */
} entry_t;

struct cache {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t max_bytes, bytes, entries;
    entry_t *buckets[CACHE_BUCKETS];
    entry_t *head, *tail;
};

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 31);
}

int cache_new(size_t max_bytes, cache_t **out)
{
    *out = NULL;
    cache_t *c = eg_calloc(1, sizeof *c);
    if (!c) return ENGRAM_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->max_bytes = max_bytes;
    *out = c;
    return 0;
}

static void entry_free(entry_t *e)
{
    eg_free(e->key);
    eg_free(e->val);
    eg_free(e);
}

static void free_if_done(entry_t *e)
{
    if (!e->in_table && !e->in_lru && e->state != E_PENDING && e->waiters == 0) entry_free(e);
}

static void lru_unlink(cache_t *c, entry_t *e)
{
    if (!e->in_lru) return;
    if (e->prev) e->prev->next = e->next; else c->head = e->next;
    if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
    e->prev = e->next = NULL;
    e->in_lru = 0;
    c->bytes -= e->cost;
    c->entries--;
}

static void lru_push_front(cache_t *c, entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e; else c->tail = e;
    c->head = e;
    if (!e->in_lru) {
        e->in_lru = 1;
        c->bytes += e->cost;
        c->entries++;
    }
}

static void table_unlink(cache_t *c, entry_t *e)
{
    if (!e->in_table) return;
    entry_t **pp = &c->buckets[e->hash % CACHE_BUCKETS];
    while (*pp && *pp != e) pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    e->hnext = NULL;
    e->in_table = 0;
}

/* Takes e out of the cache entirely; frees it unless someone still needs it. */
static void drop(cache_t *c, entry_t *e)
{
    table_unlink(c, e);
    lru_unlink(c, e);
    free_if_done(e);
}

static entry_t *find(cache_t *c, uint64_t h, const void *key, size_t klen)
{
    for (entry_t *e = c->buckets[h % CACHE_BUCKETS]; e; e = e->hnext)
        if (e->hash == h && e->klen == klen && !memcmp(e->key, key, klen)) return e;
    return NULL;
}

static void evict(cache_t *c)
{
    while (c->bytes > c->max_bytes && c->tail) drop(c, c->tail);
}

/* Waits for e's computation; returns its status and copies its value. */
static int wait_for(cache_t *c, entry_t *e, buf_t *out)
{
    e->waiters++;
    while (e->state == E_PENDING) pthread_cond_wait(&c->cv, &c->mu);
    int rc = e->state == E_READY ? 0 : e->status;
    if (!rc) {
        buf_append(out, e->val, e->vlen);
        rc = out->err;
    }
    e->waiters--;
    free_if_done(e);
    return rc;
}

int cache_get(cache_t *c, const void *key, size_t klen, uint64_t stamp, cache_compute_fn fn,
              void *arg, buf_t *out, int *hit)
{
    if (hit) *hit = 0;
    if (!c || !key || !fn || !out) return ENGRAM_EINVAL;
    uint64_t h = hash_bytes(key, klen);
    pthread_mutex_lock(&c->mu);
    entry_t *e = find(c, h, key, klen);
    if (e && e->stamp == stamp) {
        int rc;
        if (e->state == E_READY) {
            buf_append(out, e->val, e->vlen);
            rc = out->err;
            if (e->in_lru) {
                lru_unlink(c, e);
                lru_push_front(c, e);
            }
            metrics_inc(MET_CACHE_HITS);
        } else {
            rc = wait_for(c, e, out);
            metrics_inc(MET_CACHE_HITS);
            metrics_inc(MET_CACHE_SHARED);
        }
        pthread_mutex_unlock(&c->mu);
        if (hit) *hit = 1;
        return rc;
    }
    if (e) drop(c, e); /* stale: written to since; a leader in flight keeps it alive */

    entry_t *ne = eg_calloc(1, sizeof *ne);
    char *kcopy = eg_malloc(klen ? klen : 1);
    if (!ne || !kcopy) {
        pthread_mutex_unlock(&c->mu);
        eg_free(ne);
        eg_free(kcopy);
        return ENGRAM_ENOMEM;
    }
    memcpy(kcopy, key, klen);
    ne->hash = h;
    ne->stamp = stamp;
    ne->key = kcopy;
    ne->klen = klen;
    ne->state = E_PENDING;
    ne->in_table = 1;
    ne->hnext = c->buckets[h % CACHE_BUCKETS];
    c->buckets[h % CACHE_BUCKETS] = ne;
    pthread_mutex_unlock(&c->mu);
    metrics_inc(MET_CACHE_MISSES);

    buf_t v = BUF_INIT;
    int rc = fn(arg, &v);
    if (!rc && v.err) rc = v.err;
    if (!rc) {
        buf_append(out, v.data, v.len);
        if (out->err) rc = out->err;
    }

    pthread_mutex_lock(&c->mu);
    if (rc) {
        ne->state = E_FAILED;
        ne->status = rc;
        buf_free(&v);
        table_unlink(c, ne);
    } else {
        ne->vlen = v.len;
        ne->val = buf_detach(&v, NULL);
        ne->state = E_READY;
        ne->cost = klen + ne->vlen + ENTRY_OVERHEAD;
        if (ne->in_table && c->max_bytes && ne->cost <= c->max_bytes / 8) {
            lru_push_front(c, ne);
            evict(c);
        } else {
            table_unlink(c, ne);
        }
    }
    pthread_cond_broadcast(&c->cv);
    free_if_done(ne);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void cache_get_stats(cache_t *c, cache_stats_t *out)
{
    memset(out, 0, sizeof *out);
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    out->entries = c->entries;
    out->bytes = c->bytes;
    out->max_bytes = c->max_bytes;
    pthread_mutex_unlock(&c->mu);
}

void cache_free(cache_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        entry_t *e = c->buckets[i];
        while (e) {
            entry_t *next = e->hnext;
            e->in_table = 0;
            lru_unlink(c, e);
            entry_free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    eg_free(c);
}
