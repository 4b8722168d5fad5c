/*
 * metrics.h - the process's counters and histograms, and their Prometheus
 * text exposition (format 0.0.4) for GET /metrics.
 *
 * Any module may count without a handle:
 *
 *     metrics_inc(MET_EMBED_CALLS);                  predefined, no labels
 *     static const char *const l[] = {"model", m, NULL};
 *     metrics_counter_add("engram_embed_calls_total", l, 1);   with labels
 *
 * A series is a metric name plus its label set. The registry is a fixed
 * table of METRICS_MAX_SERIES slots in static storage (no allocation, so
 * counting never fails for memory): a lookup probes it without a lock and
 * only adding a new series takes a mutex; values are atomics. Past the
 * limit new series are dropped (and counted in
 * engram_metrics_dropped_series_total). The registry is process-wide on
 * purpose, like the logger: counters are monotonic facts about the
 * process, and callers deep in the model or chat code should not need a
 * handle threaded through to count a call.
 *
 * Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]*; label values are any UTF-8 (escaped on output).
 * Counter names should end in _total. Thread-safe throughout.
 */
#ifndef ENGRAM_METRICS_H
#define ENGRAM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define METRICS_MAX_SERIES 2048

/* Predefined counters without labels (rendered under these names):
 * engram_embed_calls_total, engram_embed_errors_total,
 * engram_llm_calls_total, engram_llm_errors_total,
 * engram_rerank_calls_total, engram_rerank_errors_total,
 * engram_cache_hits_total, engram_cache_misses_total,
 * engram_cache_shared_total (a waiter served by an identical query in flight),
 * engram_rate_limited_total, engram_quota_exceeded_total,
 * engram_login_limited_total, engram_backups_total. */
typedef enum {
    MET_EMBED_CALLS = 0,
    MET_EMBED_ERRORS,
    MET_LLM_CALLS,
    MET_LLM_ERRORS,
    MET_RERANK_CALLS,
    MET_RERANK_ERRORS,
    MET_CACHE_HITS,
    MET_CACHE_MISSES,
    MET_CACHE_SHARED,
    MET_RATE_LIMITED,
    MET_QUOTA_EXCEEDED,
    MET_LOGIN_LIMITED,
    MET_BACKUPS,
    MET__COUNT
} metric_id_t;

void metrics_inc(metric_id_t id);
void metrics_add(metric_id_t id, uint64_t n);
uint64_t metrics_get(metric_id_t id);

/* Adds n to the counter name{labels}. labels: NULL or a NULL-terminated list
 * of name, value pairs ({"model", "bge", NULL}), at most 8 pairs and 480
 * bytes escaped. Returns 0, ENGRAM_EINVAL for a bad name or label name, or
 * ENGRAM_EFULL when the series table is full (nothing counted). */
int metrics_counter_add(const char *name, const char *const *labels, uint64_t n);
/* Current value of a counter series, 0 if it does not exist. */
uint64_t metrics_counter_get(const char *name, const char *const *labels);
/* HELP text for a metric name (kept by pointer: pass a string literal).
 * Names without one get a generic text. Returns 0 or ENGRAM_EFULL. */
int metrics_describe(const char *name, const char *help);

/* One finished HTTP request: engram_http_requests_total{route,status} and
 * engram_http_request_duration_seconds{route} (histogram). route is the
 * route label (low cardinality!); "" is shown as "none". */
void metrics_observe_request(const char *route, int status, double seconds);

/* Values computed at scrape time by the caller (queue depth, map use...).
 * A name ending in _total is typed as a counter (a count kept elsewhere
 * since start), any other as a gauge. */
typedef struct metrics_gauge {
    const char *name;
    const char *help;
    double value;
} metrics_gauge_t;

/* Appends the whole exposition to out: the gauges given, then every
 * registered series grouped by name (one HELP and TYPE line each), sorted.
 * Check out->err afterwards. */
void metrics_render(buf_t *out, const metrics_gauge_t *gauges, size_t n_gauges);

/* Appends v as a Prometheus label value (escaping \, " and newline),
 * without the quotes. Exposed for tests. */
void metrics_escape_label(buf_t *out, const char *v);

#endif
