/*
 * limits.c - token buckets and workspace quotas (see limits.h).
 *
 * Buckets live in open-addressing tables keyed by a 64-bit id (the key id,
 * or a hash of the client address). A table that reaches 3/4 load is
 * rebuilt without the buckets that have refilled completely (an idle
 * client's bucket is the same as no bucket), and doubled when that is not
 * enough, up to BUCKETS_MAX entries; past that a new client is let through
 * unmetered rather than locking everyone out (and logged once).
 *
 * Workspaces: a chained hash table of ws -> quota + today's count, loaded
 * from DB_QUOTAS on first sight (outside the mutex: two threads may both
 * load, the first to install wins). The flush thread copies the changed
 * counts under the mutex and writes them with store_write outside it.
 */
#include "ops/limits.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store/record.h"
#include "util/common.h"
#include "util/log.h"
#include "util/timeutil.h"

#define BUCKETS_MIN 1024u
#define BUCKETS_MAX (1u << 20)
#define WS_BUCKETS 1024u
#define FLUSH_EVERY_MS 5000
#define DAY_MS 86400000LL

typedef struct bucket {
    uint64_t key;     /* 0: empty slot (ids are offset so none is 0) */
    double tokens;
    uint64_t last_ns;
} bucket_t;

typedef struct btable {
    bucket_t *slots;
    size_t cap, used;
    double per_min;   /* 0: off */
    int warned;
} btable_t;

typedef struct wsent {
    uint64_t ws;
    quota_t q;
    uint32_t day;
    uint64_t count, persisted;
    struct wsent *next;
} wsent_t;

struct limits {
    store_t *st;
    pthread_mutex_t mu;
    btable_t keys, addrs;
    wsent_t *ws[WS_BUCKETS];
    pthread_t thread;
    int thread_started;
    int stopping;
    pthread_cond_t cv;
};

/* ---- token buckets ------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static int btable_init(btable_t *t, int per_min)
{
    memset(t, 0, sizeof *t);
    t->per_min = per_min;
    if (per_min <= 0) return 0;
    t->slots = eg_calloc(BUCKETS_MIN, sizeof *t->slots);
    if (!t->slots) return ENGRAM_ENOMEM;
    t->cap = BUCKETS_MIN;
    return 0;
}

static void refill(const btable_t *t, bucket_t *b, uint64_t now)
{
    double dt = (double)(now - b->last_ns) / 1e9;
    b->tokens += dt * t->per_min / 60.0;
    if (b->tokens > t->per_min) b->tokens = t->per_min;
    b->last_ns = now;
}

static bucket_t *slot_for(bucket_t *slots, size_t cap, uint64_t key)
{
    size_t i = (size_t)(mix64(key) & (cap - 1));
    while (slots[i].key && slots[i].key != key) i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Rebuilds without refilled buckets, doubling when still 3/4 full. */
static void btable_rebuild(btable_t *t, uint64_t now)
{
    size_t live = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].key) continue;
        refill(t, &t->slots[i], now);
        if (t->slots[i].tokens < t->per_min) live++;
    }
    size_t cap = t->cap;
    while (live * 4 >= cap * 3 / 2 && cap < BUCKETS_MAX) cap *= 2;
    bucket_t *ns = eg_calloc(cap, sizeof *ns);
    if (!ns) return;
    size_t used = 0;
    for (size_t i = 0; i < t->cap; i++) {
        bucket_t *b = &t->slots[i];
        if (!b->key || b->tokens >= t->per_min) continue;
        *slot_for(ns, cap, b->key) = *b;
        used++;
    }
    eg_free(t->slots);
    t->slots = ns;
    t->cap = cap;
    t->used = used;
}

static int btable_take(btable_t *t, uint64_t key, int *retry_after_s)
{
    *retry_after_s = 0;
    if (t->per_min <= 0 || !t->slots) return 0;
    key = key ? key : 1;
    uint64_t now = time_mono_ns();
    bucket_t *b = slot_for(t->slots, t->cap, key);
    if (!b->key) {
        if ((t->used + 1) * 4 > t->cap * 3) {
            btable_rebuild(t, now);
            if ((t->used + 1) * 4 > t->cap * 3) {
                if (!t->warned) log_warn("rate limit table full (%zu clients); not metering new ones", t->used);
                t->warned = 1;
                return 0;
            }
            b = slot_for(t->slots, t->cap, key);
        }
        b->key = key;
        b->tokens = t->per_min;
        b->last_ns = now;
        t->used++;
    }
    refill(t, b, now);
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    double wait = (1.0 - b->tokens) * 60.0 / t->per_min;
    *retry_after_s = (int)ceil(wait);
    if (*retry_after_s < 1) *retry_after_s = 1;
    return ENGRAM_EAGAIN;
}

/* The client part of "host:port" / "[v6]:port" as a bucket key: IPv4 by
 * address, IPv6 by its /64. */
static uint64_t addr_key(const char *remote)
{
    char host[64];
    const char *p = remote ? remote : "";
    size_t n;
    if (*p == '[') {
        p++;
        n = strcspn(p, "]");
    } else {
        const char *colon = strrchr(p, ':');
        n = colon ? (size_t)(colon - p) : strlen(p);
    }
    if (n >= sizeof host) n = sizeof host - 1;
    memcpy(host, p, n);
    host[n] = '\0';
    unsigned char a[16];
    uint64_t h = 1469598103934665603ull;
    size_t len = 0;
    if (inet_pton(AF_INET, host, a) == 1) len = 4;
    else if (inet_pton(AF_INET6, host, a) == 1) len = 8; /* the /64 */
    if (len) {
        for (size_t i = 0; i < len; i++) h = (h ^ a[i]) * 1099511628211ull;
        return h ^ len;
    }
    for (const char *s = host; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int limits_take_key(limits_t *l, uint64_t id, int *retry_after_s)
{
    pthread_mutex_lock(&l->mu);
    int rc = btable_take(&l->keys, id + 1, retry_after_s);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int limits_take_addr(limits_t *l, const char *remote_addr, int *retry_after_s)
{
    uint64_t k = addr_key(remote_addr);
    pthread_mutex_lock(&l->mu);
    int rc = btable_take(&l->addrs, k, retry_after_s);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- workspace records --------------------------------------------------- */

static uint32_t today(void) { return (uint32_t)(time_now_ms() / DAY_MS); }

static int seconds_to_midnight(void)
{
    int64_t now = time_now_ms();
    int64_t next = (now / DAY_MS + 1) * DAY_MS;
    int s = (int)((next - now + 999) / 1000);
    return s < 1 ? 1 : s;
}

static wsent_t *ws_find(limits_t *l, uint64_t ws)
{
    for (wsent_t *e = l->ws[mix64(ws) % WS_BUCKETS]; e; e = e->next)
        if (e->ws == ws) return e;
    return NULL;
}

static int64_t quota_field(const json_t *rec, const char *name)
{
    const json_t *v = json_get(rec, name);
    if (!v || v->type != JSON_NUMBER || !v->is_int || v->integer < 0) return -1;
    return v->integer;
}

/* Reads ws's quota and today's count from the store. */
static int ws_load(store_t *st, uint64_t ws, uint32_t day, quota_t *q, uint64_t *count)
{
    q->max_chunks = q->max_requests_per_day = -1;
    *count = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    unsigned char k[12];
    be64_put(k, ws);
    be32_put(k + 8, day);
    MDB_val kv = {8, k}, v;
    json_t *rec = NULL;
    rc = record_get(txn, store_dbi(st, DB_QUOTAS), &kv, &rec);
    if (rc == 0) {
        q->max_chunks = quota_field(rec, "max_chunks");
        q->max_requests_per_day = quota_field(rec, "max_requests_per_day");
        json_free(rec);
    } else if (rc == ENGRAM_ENOTFOUND) {
        rc = 0;
    }
    if (!rc) {
        kv.mv_size = 12;
        int r = mdb_get(txn, store_dbi(st, DB_QUOTAS), &kv, &v);
        if (r == 0 && v.mv_size == 8) *count = be64_get(v.mv_data);
        else if (r == 0) rc = ENGRAM_ECORRUPT;
        else if (r != MDB_NOTFOUND) rc = store_status(r);
    }
    store_read_end(st, txn);
    return rc;
}

/* The entry for ws, loading it when new. Called with the mutex held; may
 * drop and retake it. NULL with *status set on failure. */
static wsent_t *ws_get(limits_t *l, uint64_t ws, int *status)
{
    *status = 0;
    uint32_t day = today();
    wsent_t *e = ws_find(l, ws);
    if (!e) {
        quota_t q;
        uint64_t count;
        pthread_mutex_unlock(&l->mu);
        int rc = ws_load(l->st, ws, day, &q, &count);
        pthread_mutex_lock(&l->mu);
        if (rc) { *status = rc; return NULL; }
        e = ws_find(l, ws);
        if (!e) {
            e = eg_calloc(1, sizeof *e);
            if (!e) { *status = ENGRAM_ENOMEM; return NULL; }
            e->ws = ws;
            e->q = q;
            e->day = day;
            e->count = e->persisted = count;
            wsent_t **head = &l->ws[mix64(ws) % WS_BUCKETS];
            e->next = *head;
            *head = e;
        }
    }
    if (e->day != day) {
        /* A new UTC day: the count restarts (the old day's record stays). */
        e->day = day;
        e->count = e->persisted = 0;
    }
    return e;
}

int limits_count_request(limits_t *l, uint64_t ws, int *retry_after_s)
{
    *retry_after_s = 0;
    pthread_mutex_lock(&l->mu);
    int rc;
    wsent_t *e = ws_get(l, ws, &rc);
    if (!e) {
        pthread_mutex_unlock(&l->mu);
        return 0; /* fail open: a quota must not take the API down */
    }
    if (e->q.max_requests_per_day >= 0 && e->count >= (uint64_t)e->q.max_requests_per_day) {
        pthread_mutex_unlock(&l->mu);
        *retry_after_s = seconds_to_midnight();
        return ENGRAM_EAGAIN;
    }
    e->count++;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int limits_ws_chunks(store_t *st, uint64_t ws, uint64_t *chunks)
{
    *chunks = 0;
    MDB_txn *txn;
    int rc = store_read_begin(st, &txn);
    if (rc) return rc;
    MDB_cursor *c;
    rc = store_status(mdb_cursor_open(txn, store_dbi(st, DB_COLLECTIONS), &c));
    if (!rc) {
        unsigned char p[8];
        be64_put(p, ws);
        MDB_val k = {8, p}, v;
        int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (r == 0 && k.mv_size >= 8 && memcmp(k.mv_data, p, 8) == 0) {
            json_t *rec = NULL;
            r = record_decode(v.mv_data, v.mv_size, &rec);
            if (r) break;
            int64_t n = json_get_i64(rec, "chunk_count", 0);
            if (n > 0) *chunks += (uint64_t)n;
            json_free(rec);
            r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        rc = r == 0 || r == MDB_NOTFOUND ? 0 : (r < 0 ? r : store_status(r));
    }
    store_read_end(st, txn);
    return rc;
}

int limits_check_chunks(limits_t *l, uint64_t ws)
{
    pthread_mutex_lock(&l->mu);
    int rc;
    wsent_t *e = ws_get(l, ws, &rc);
    int64_t max = e ? e->q.max_chunks : -1;
    pthread_mutex_unlock(&l->mu);
    if (max < 0) return 0;
    uint64_t n;
    rc = limits_ws_chunks(l->st, ws, &n);
    if (rc) return rc;
    return n >= (uint64_t)max ? ENGRAM_EAGAIN : 0;
}

struct quota_put {
    uint64_t ws;
    const quota_t *q;
    store_t *st;
};

static int quota_put_cb(MDB_txn *txn, void *arg)
{
    struct quota_put *a = arg;
    char now[32];
    time_format_rfc3339(time_now_ms(), now);
    buf_t b = BUF_INIT;
    jw_t w;
    jw_init(&w, &b);
    jw_obj_begin(&w);
    if (a->q->max_chunks >= 0) jw_kint(&w, "max_chunks", a->q->max_chunks);
    else jw_knull(&w, "max_chunks");
    if (a->q->max_requests_per_day >= 0) jw_kint(&w, "max_requests_per_day", a->q->max_requests_per_day);
    else jw_knull(&w, "max_requests_per_day");
    jw_kstr(&w, "updated_at", now);
    jw_obj_end(&w);
    unsigned char k[8];
    be64_put(k, a->ws);
    MDB_val kv = {8, k};
    int rc = b.err ? b.err : record_put(txn, store_dbi(a->st, DB_QUOTAS), &kv, &b);
    buf_free(&b);
    return rc;
}

int limits_quota_set(limits_t *l, uint64_t ws, const quota_t *q)
{
    struct quota_put a = {ws, q, l->st};
    int rc = store_write(l->st, quota_put_cb, &a);
    if (rc) return rc;
    pthread_mutex_lock(&l->mu);
    wsent_t *e = ws_get(l, ws, &rc);
    if (e) e->q = *q;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int limits_quota_get(limits_t *l, uint64_t ws, quota_t *q, uint64_t *requests_today)
{
    pthread_mutex_lock(&l->mu);
    int rc;
    wsent_t *e = ws_get(l, ws, &rc);
    if (e) {
        *q = e->q;
        *requests_today = e->count;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- writing the day counts back ----------------------------------------- */

typedef struct count_rec {
    uint64_t ws, count;
    uint32_t day;
} count_rec_t;

struct flush_args {
    store_t *st;
    const count_rec_t *recs;
    size_t n;
};

static int flush_cb(MDB_txn *txn, void *arg)
{
    struct flush_args *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        unsigned char k[12], v[8];
        be64_put(k, a->recs[i].ws);
        be32_put(k + 8, a->recs[i].day);
        be64_put(v, a->recs[i].count);
        MDB_val kv = {12, k}, vv = {8, v};
        int rc = mdb_put(txn, store_dbi(a->st, DB_QUOTAS), &kv, &vv, 0);
        if (rc) return store_status(rc);
    }
    return 0;
}

int limits_flush(limits_t *l)
{
    count_rec_t *recs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t b = 0; b < WS_BUCKETS && !rc; b++) {
        for (wsent_t *e = l->ws[b]; e; e = e->next) {
            if (e->count == e->persisted) continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                count_rec_t *nr = eg_realloc(recs, cap * sizeof *nr);
                if (!nr) { rc = ENGRAM_ENOMEM; break; }
                recs = nr;
            }
            recs[n++] = (count_rec_t){e->ws, e->count, e->day};
        }
    }
    pthread_mutex_unlock(&l->mu);
    if (!rc && n) {
        struct flush_args a = {l->st, recs, n};
        rc = store_write(l->st, flush_cb, &a);
        if (!rc) {
            pthread_mutex_lock(&l->mu);
            for (size_t i = 0; i < n; i++) {
                wsent_t *e = ws_find(l, recs[i].ws);
                if (e && e->day == recs[i].day && e->persisted < recs[i].count)
                    e->persisted = recs[i].count;
            }
            pthread_mutex_unlock(&l->mu);
        }
    }
    eg_free(recs);
    return rc;
}

static void *flush_main(void *arg)
{
    limits_t *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += FLUSH_EVERY_MS / 1000;
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        if (l->stopping) break;
        pthread_mutex_unlock(&l->mu);
        int rc = limits_flush(l);
        if (rc) log_warn("could not record request counts: %s", engram_strerror(rc));
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- life ---------------------------------------------------------------- */

int limits_new(store_t *st, int key_per_min, int addr_per_min, limits_t **out)
{
    *out = NULL;
    limits_t *l = eg_calloc(1, sizeof *l);
    if (!l) return ENGRAM_ENOMEM;
    l->st = st;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    int rc = btable_init(&l->keys, key_per_min);
    if (!rc) rc = btable_init(&l->addrs, addr_per_min);
    if (!rc && pthread_create(&l->thread, NULL, flush_main, l) != 0) rc = ENGRAM_ENOMEM;
    if (rc) goto fail;
    l->thread_started = 1;
    *out = l;
    return 0;
fail:
    limits_free(l);
    return rc;
}

void limits_free(limits_t *l)
{
    if (!l) return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stopping = 1;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        int rc = limits_flush(l);
        if (rc) log_warn("could not record request counts: %s", engram_strerror(rc));
    }
    for (size_t b = 0; b < WS_BUCKETS; b++) {
        wsent_t *e = l->ws[b];
        while (e) {
            wsent_t *next = e->next;
            eg_free(e);
            e = next;
        }
    }
    eg_free(l->keys.slots);
    eg_free(l->addrs.slots);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    eg_free(l);
}
