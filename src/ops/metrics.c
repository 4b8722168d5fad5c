/*
 * metrics.c - the series registry and the Prometheus exposition (see
 * metrics.h).
 *
 * Slots: an open-addressing table of METRICS_MAX_SERIES series in static
 * storage, keyed by the series' identity string "name{escaped labels}".
 * A slot's state goes EMPTY -> BUSY -> READY once and never back, so a
 * reader can probe without a lock: it stops at an EMPTY slot (absent), skips
 * READY slots of other keys, and on a BUSY slot (being filled by a writer)
 * falls back to the mutex path, which re-probes with writers excluded.
 * Values are relaxed atomics: a scrape may see a request counted in the
 * counter and not yet in the histogram, which Prometheus tolerates.
 *
 * Histograms keep per-bucket (not cumulative) counts and the sum in
 * nanoseconds; rendering accumulates them so buckets come out cumulative
 * with le="+Inf" equal to _count.
 */
#include "ops/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"

enum { SLOT_EMPTY = 0, SLOT_BUSY, SLOT_READY };
enum { KIND_COUNTER = 0, KIND_HISTOGRAM };

#define ID_MAX 512   /* "name{labels}" */
#define NAME_MAX_LEN 96
#define N_BUCKETS 14 /* the last is +Inf */

static const double bucket_le[N_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                0.25,  0.5,    1,     2.5,  5,     10};

typedef struct series {
    _Atomic int state;
    int kind;
    size_t name_len;         /* id[0..name_len) is the name */
    char id[ID_MAX];         /* name, then "{labels}" when there are labels */
    _Atomic uint64_t value;  /* counter value, or histogram count */
    _Atomic uint64_t buckets[N_BUCKETS];
    _Atomic uint64_t sum_ns;
} series_t;

static series_t table[METRICS_MAX_SERIES];
static pthread_mutex_t insert_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t dropped;

typedef struct help_entry {
    const char *name;
    const char *help;
} help_entry_t;

#define MAX_HELP 256
static help_entry_t helps[MAX_HELP];
static size_t n_helps;
static pthread_mutex_t help_mu = PTHREAD_MUTEX_INITIALIZER;

static const struct {
    const char *name, *help;
} predefined[MET__COUNT] = {
    [MET_EMBED_CALLS] = {"engram_embed_calls_total", "Calls to the embedding model or service."},
    [MET_EMBED_ERRORS] = {"engram_embed_errors_total", "Embedding calls that failed."},
    [MET_LLM_CALLS] = {"engram_llm_calls_total", "Calls to the LLM (chat completions)."},
    [MET_LLM_ERRORS] = {"engram_llm_errors_total", "LLM calls that failed."},
    [MET_RERANK_CALLS] = {"engram_rerank_calls_total", "Calls to the reranker."},
    [MET_RERANK_ERRORS] = {"engram_rerank_errors_total", "Reranker calls that failed."},
    [MET_CACHE_HITS] = {"engram_cache_hits_total", "Retrievals answered from the result cache."},
    [MET_CACHE_MISSES] = {"engram_cache_misses_total", "Retrievals computed (not in the cache)."},
    [MET_CACHE_SHARED] = {"engram_cache_shared_total",
                          "Retrievals that waited for an identical query in flight (also hits)."},
    [MET_RATE_LIMITED] = {"engram_rate_limited_total", "Requests refused by the per-key rate limit."},
    [MET_QUOTA_EXCEEDED] = {"engram_quota_exceeded_total", "Requests refused by a workspace quota."},
    [MET_LOGIN_LIMITED] = {"engram_login_limited_total",
                           "Login/register attempts refused by the per-address limit."},
    [MET_BACKUPS] = {"engram_backups_total", "Backups made through the API."},
};

static series_t *predef_ptr[MET__COUNT];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static series_t *find_or_add(const char *id, size_t name_len, int kind);

static void init_predefined(void)
{
    for (int i = 0; i < MET__COUNT; i++) {
        const char *n = predefined[i].name;
        predef_ptr[i] = find_or_add(n, strlen(n), KIND_COUNTER);
        metrics_describe(n, predefined[i].help);
    }
    metrics_describe("engram_http_requests_total", "HTTP requests answered, by route and status.");
    metrics_describe("engram_http_request_duration_seconds",
                     "Time from the first byte of a request to the end of its answer, by route.");
}

static void ensure_init(void) { pthread_once(&init_once, init_predefined); }

/* ---- identity strings ---------------------------------------------------- */

static int valid_name(const char *s, int allow_colon)
{
    if (!s || !*s || strlen(s) > NAME_MAX_LEN) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (allow_colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

void metrics_escape_label(buf_t *out, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\') buf_puts(out, "\\\\");
        else if (*p == '"') buf_puts(out, "\\\"");
        else if (*p == '\n') buf_puts(out, "\\n");
        else buf_putc(out, *p);
    }
}

/* "name" or "name{a=\"x\",b=\"y\"}" into id; *name_len set. */
static int make_id(const char *name, const char *const *labels, char id[ID_MAX], size_t *name_len)
{
    if (!valid_name(name, 1)) return ENGRAM_EINVAL;
    buf_t b = BUF_INIT;
    buf_puts(&b, name);
    *name_len = strlen(name);
    if (labels && labels[0]) {
        buf_putc(&b, '{');
        int n = 0;
        for (const char *const *l = labels; l[0]; l += 2, n++) {
            if (!l[1] || n >= 8 || !valid_name(l[0], 0) || !strncmp(l[0], "__", 2)) {
                buf_free(&b);
                return ENGRAM_EINVAL;
            }
            if (n) buf_putc(&b, ',');
            buf_puts(&b, l[0]);
            buf_puts(&b, "=\"");
            metrics_escape_label(&b, l[1]);
            buf_putc(&b, '"');
        }
        buf_putc(&b, '}');
    }
    int rc = b.err ? b.err : b.len >= ID_MAX ? ENGRAM_ETOOBIG : 0;
    if (!rc) memcpy(id, b.data, b.len + 1);
    buf_free(&b);
    return rc;
}

static uint64_t hash_id(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- the table ----------------------------------------------------------- */

/* Lock-free probe: the series, NULL when absent, or (series_t *)1 when a
 * slot on the way is being filled (the caller retries under the mutex). */
static series_t *probe(const char *id, uint64_t h)
{
    for (size_t i = 0; i < METRICS_MAX_SERIES; i++) {
        series_t *s = &table[(h + i) % METRICS_MAX_SERIES];
        int st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == SLOT_EMPTY) return NULL;
        if (st == SLOT_BUSY) return (series_t *)1;
        if (!strcmp(s->id, id)) return s;
    }
    return NULL;
}

static series_t *find_or_add(const char *id, size_t name_len, int kind)
{
    uint64_t h = hash_id(id);
    series_t *s = probe(id, h);
    if (s && s != (series_t *)1) return s->kind == kind ? s : NULL;
    pthread_mutex_lock(&insert_mu);
    series_t *found = NULL;
    for (size_t i = 0; i < METRICS_MAX_SERIES; i++) {
        series_t *t = &table[(h + i) % METRICS_MAX_SERIES];
        int st = atomic_load_explicit(&t->state, memory_order_acquire);
        if (st == SLOT_READY) {
            if (!strcmp(t->id, id)) { found = t->kind == kind ? t : NULL; break; }
            continue;
        }
        /* Writers are excluded, so the slot is EMPTY: take it. Keep one
         * slot in eight free so probes stay short and always terminate. */
        static size_t used;
        if (used >= METRICS_MAX_SERIES - METRICS_MAX_SERIES / 8) {
            atomic_fetch_add(&dropped, 1);
            break;
        }
        atomic_store_explicit(&t->state, SLOT_BUSY, memory_order_release);
        t->kind = kind;
        t->name_len = name_len;
        memcpy(t->id, id, strlen(id) + 1);
        atomic_store_explicit(&t->state, SLOT_READY, memory_order_release);
        used++;
        found = t;
        break;
    }
    pthread_mutex_unlock(&insert_mu);
    return found;
}

static series_t *lookup(const char *name, const char *const *labels, int kind, int *status)
{
    char id[ID_MAX];
    size_t nl;
    *status = make_id(name, labels, id, &nl);
    if (*status) return NULL;
    series_t *s = find_or_add(id, nl, kind);
    if (!s) *status = ENGRAM_EFULL;
    return s;
}

/* ---- counting ------------------------------------------------------------ */

void metrics_add(metric_id_t id, uint64_t n)
{
    if ((int)id < 0 || id >= MET__COUNT) return;
    ensure_init();
    if (predef_ptr[id]) atomic_fetch_add_explicit(&predef_ptr[id]->value, n, memory_order_relaxed);
}

void metrics_inc(metric_id_t id) { metrics_add(id, 1); }

uint64_t metrics_get(metric_id_t id)
{
    if ((int)id < 0 || id >= MET__COUNT) return 0;
    ensure_init();
    return predef_ptr[id] ? atomic_load_explicit(&predef_ptr[id]->value, memory_order_relaxed) : 0;
}

int metrics_counter_add(const char *name, const char *const *labels, uint64_t n)
{
    ensure_init();
    int rc;
    series_t *s = lookup(name, labels, KIND_COUNTER, &rc);
    if (!s) return rc;
    atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
    return 0;
}

uint64_t metrics_counter_get(const char *name, const char *const *labels)
{
    char id[ID_MAX];
    size_t nl;
    if (make_id(name, labels, id, &nl)) return 0;
    series_t *s = probe(id, hash_id(id));
    if (!s || s == (series_t *)1 || s->kind != KIND_COUNTER) return 0;
    return atomic_load_explicit(&s->value, memory_order_relaxed);
}

int metrics_describe(const char *name, const char *help)
{
    if (!valid_name(name, 1) || !help) return ENGRAM_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&help_mu);
    size_t i;
    for (i = 0; i < n_helps; i++)
        if (!strcmp(helps[i].name, name)) break;
    if (i < n_helps) helps[i].help = help;
    else if (n_helps < MAX_HELP) helps[n_helps++] = (help_entry_t){name, help};
    else rc = ENGRAM_EFULL;
    pthread_mutex_unlock(&help_mu);
    return rc;
}

void metrics_observe_request(const char *route, int status, double seconds)
{
    ensure_init();
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    const char *r = route && route[0] ? route : "none";
    const char *const cl[] = {"route", r, "status", st, NULL};
    metrics_counter_add("engram_http_requests_total", cl, 1);
    const char *const hl[] = {"route", r, NULL};
    int rc;
    series_t *h = lookup("engram_http_request_duration_seconds", hl, KIND_HISTOGRAM, &rc);
    if (!h) return;
    if (!(seconds >= 0)) seconds = 0; /* also NaN */
    int b = 0;
    while (b < N_BUCKETS - 1 && seconds > bucket_le[b]) b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->value, 1, memory_order_relaxed);
}

/* ---- exposition ---------------------------------------------------------- */

static const char *help_for(const char *name, size_t len)
{
    const char *h = NULL;
    pthread_mutex_lock(&help_mu);
    for (size_t i = 0; i < n_helps && !h; i++)
        if (strlen(helps[i].name) == len && !strncmp(helps[i].name, name, len)) h = helps[i].help;
    pthread_mutex_unlock(&help_mu);
    return h;
}

/* HELP text: escapes backslash and newline as the format requires. */
static void put_help(buf_t *out, const char *name, size_t len, const char *help, const char *type)
{
    buf_printf(out, "# HELP %.*s ", (int)len, name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\') buf_puts(out, "\\\\");
        else if (*p == '\n') buf_puts(out, "\\n");
        else buf_putc(out, *p);
    }
    buf_printf(out, "\n# TYPE %.*s %s\n", (int)len, name, type);
}

static void put_double(buf_t *out, double v)
{
    if (isnan(v)) buf_puts(out, "NaN");
    else if (isinf(v)) buf_puts(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9e15) buf_printf(out, "%.0f", v);
    else buf_printf(out, "%.9g", v);
}

static int cmp_series(const void *a, const void *b)
{
    const series_t *x = *(series_t *const *)a, *y = *(series_t *const *)b;
    size_t n = EG_MIN(x->name_len, y->name_len);
    int c = memcmp(x->id, y->id, n);
    if (c) return c;
    if (x->name_len != y->name_len) return x->name_len < y->name_len ? -1 : 1;
    return strcmp(x->id + x->name_len, y->id + y->name_len);
}

/* name{labels,le="x"} with the extra label merged into the set. */
static void put_bucket_id(buf_t *out, const series_t *s, const char *suffix, const char *le)
{
    buf_append(out, s->id, s->name_len);
    buf_puts(out, suffix);
    const char *labels = s->id + s->name_len; /* "" or "{...}" */
    if (!le) {
        buf_puts(out, labels);
        return;
    }
    if (labels[0]) {
        buf_append(out, labels, strlen(labels) - 1);
        buf_printf(out, ",le=\"%s\"}", le);
    } else {
        buf_printf(out, "{le=\"%s\"}", le);
    }
}

static void render_histogram(buf_t *out, const series_t *s)
{
    uint64_t cum = 0;
    char le[32];
    for (int b = 0; b < N_BUCKETS; b++) {
        cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
        if (b < N_BUCKETS - 1) snprintf(le, sizeof le, "%g", bucket_le[b]);
        else snprintf(le, sizeof le, "+Inf");
        put_bucket_id(out, s, "_bucket", le);
        buf_printf(out, " %llu\n", (unsigned long long)cum);
    }
    put_bucket_id(out, s, "_sum", NULL);
    buf_putc(out, ' ');
    put_double(out, (double)atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9);
    buf_putc(out, '\n');
    /* _count equals the +Inf bucket as the format requires, even while
     * another thread is between its two increments. */
    put_bucket_id(out, s, "_count", NULL);
    buf_printf(out, " %llu\n", (unsigned long long)cum);
}

void metrics_render(buf_t *out, const metrics_gauge_t *gauges, size_t n_gauges)
{
    ensure_init();
    for (size_t i = 0; i < n_gauges; i++) {
        const metrics_gauge_t *g = &gauges[i];
        if (!valid_name(g->name, 1)) continue;
        size_t len = strlen(g->name);
        /* A value read at scrape time may still be a count since start. */
        int counter = len > 6 && strcmp(g->name + len - 6, "_total") == 0;
        put_help(out, g->name, len, g->help ? g->help : g->name, counter ? "counter" : "gauge");
        buf_puts(out, g->name);
        buf_putc(out, ' ');
        put_double(out, g->value);
        buf_putc(out, '\n');
    }
    series_t **list = eg_malloc(METRICS_MAX_SERIES * sizeof *list);
    if (!list) {
        out->err = ENGRAM_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < METRICS_MAX_SERIES; i++)
        if (atomic_load_explicit(&table[i].state, memory_order_acquire) == SLOT_READY)
            list[n++] = &table[i];
    qsort(list, n, sizeof *list, cmp_series);
    for (size_t i = 0; i < n; i++) {
        const series_t *s = list[i];
        int first = i == 0 || list[i - 1]->name_len != s->name_len ||
                    memcmp(list[i - 1]->id, s->id, s->name_len) != 0;
        if (first) {
            const char *h = help_for(s->id, s->name_len);
            put_help(out, s->id, s->name_len, h ? h : "engram metric (no description registered)",
                     s->kind == KIND_HISTOGRAM ? "histogram" : "counter");
        }
        if (s->kind == KIND_HISTOGRAM) {
            render_histogram(out, s);
        } else {
            buf_puts(out, s->id);
            buf_printf(out, " %llu\n",
                       (unsigned long long)atomic_load_explicit(&s->value, memory_order_relaxed));
        }
    }
    eg_free(list);
    put_help(out, "engram_metrics_dropped_series_total", 35,
             "Series not recorded because the metrics table was full.", "counter");
    buf_printf(out, "engram_metrics_dropped_series_total %llu\n",
               (unsigned long long)atomic_load(&dropped));
}
