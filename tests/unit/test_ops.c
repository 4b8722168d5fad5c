/*
 * test_ops.c - the operations module alone: metrics registry and exposition,
 * the result cache (stamps, single flight, failures, eviction), token
 * buckets and workspace quotas, signed link MACs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "ops/cache.h"
#include "ops/limits.h"
#include "ops/metrics.h"
#include "ops/signurl.h"
#include "store/store.h"
#include "test.h"
#include "util/common.h"

static char *render(void)
{
    buf_t b = BUF_INIT;
    metrics_render(&b, NULL, 0);
    return buf_detach(&b, NULL);
}

TEST(metrics_label_values_are_escaped)
{
    const char *const l[] = {"model", "a\"b\\c\nd", NULL};
    CHECK_EQ_INT(metrics_counter_add("test_escape_total", l, 3), 0);
    CHECK_EQ_INT(metrics_counter_get("test_escape_total", l), 3);
    char *text = render();
    REQUIRE(text);
    CHECK(strstr(text, "test_escape_total{model=\"a\\\"b\\\\c\\nd\"} 3\n") != NULL);
    CHECK(strstr(text, "# TYPE test_escape_total counter\n") != NULL);
    eg_free(text);
}

TEST(metrics_bad_names_refused)
{
    CHECK_EQ_INT(metrics_counter_add("1bad_total", NULL, 1), ENGRAM_EINVAL);
    CHECK_EQ_INT(metrics_counter_add("bad-name_total", NULL, 1), ENGRAM_EINVAL);
    const char *const l[] = {"a-b", "x", NULL};
    CHECK_EQ_INT(metrics_counter_add("good_total", l, 1), ENGRAM_EINVAL);
    const char *const r[] = {"__reserved", "x", NULL};
    CHECK_EQ_INT(metrics_counter_add("good_total", r, 1), ENGRAM_EINVAL);
    metrics_inc(MET_LLM_CALLS);
    metrics_add(MET_LLM_CALLS, 2);
    CHECK_EQ_INT(metrics_get(MET_LLM_CALLS), 3);
}

TEST(metrics_histogram_is_cumulative)
{
    metrics_observe_request("unit.route", 200, 0.0005);
    metrics_observe_request("unit.route", 200, 0.003);
    metrics_observe_request("unit.route", 500, 20.0);
    char *text = render();
    REQUIRE(text);
    CHECK(strstr(text, "engram_http_request_duration_seconds_bucket{route=\"unit.route\",le=\"0.001\"} 1\n"));
    CHECK(strstr(text, "engram_http_request_duration_seconds_bucket{route=\"unit.route\",le=\"0.005\"} 2\n"));
    CHECK(strstr(text, "engram_http_request_duration_seconds_bucket{route=\"unit.route\",le=\"10\"} 2\n"));
    CHECK(strstr(text, "engram_http_request_duration_seconds_bucket{route=\"unit.route\",le=\"+Inf\"} 3\n"));
    CHECK(strstr(text, "engram_http_request_duration_seconds_count{route=\"unit.route\"} 3\n"));
    CHECK(strstr(text, "engram_http_requests_total{route=\"unit.route\",status=\"500\"} 1\n"));
    /* One HELP/TYPE per family. */
    const char *first = strstr(text, "# TYPE engram_http_request_duration_seconds histogram");
    CHECK(first && !strstr(first + 1, "# TYPE engram_http_request_duration_seconds "));
    eg_free(text);
}

/* ---- cache ---------------------------------------------------------------- */

static atomic_int calls;
static atomic_int arrived;

static int compute_value(void *arg, buf_t *out)
{
    atomic_fetch_add(&calls, 1);
    buf_puts(out, (const char *)arg);
    return 0;
}

static int compute_fail(void *arg, buf_t *out)
{
    (void)arg;
    (void)out;
    atomic_fetch_add(&calls, 1);
    return ENGRAM_EIO;
}

TEST(cache_stamp_decides)
{
    cache_t *c;
    REQUIRE(cache_new(1 << 20, &c) == 0);
    atomic_store(&calls, 0);
    buf_t b = BUF_INIT;
    int hit;
    CHECK_EQ_INT(cache_get(c, "k", 1, 1, compute_value, "v1", &b, &hit), 0);
    CHECK_EQ_INT(hit, 0);
    buf_reset(&b);
    CHECK_EQ_INT(cache_get(c, "k", 1, 1, compute_value, "other", &b, &hit), 0);
    CHECK_EQ_INT(hit, 1);
    CHECK_STR(buf_cstr(&b), "v1");
    buf_reset(&b);
    CHECK_EQ_INT(cache_get(c, "k", 1, 2, compute_value, "v2", &b, &hit), 0); /* written since */
    CHECK_EQ_INT(hit, 0);
    CHECK_STR(buf_cstr(&b), "v2");
    CHECK_EQ_INT(atomic_load(&calls), 2);
    /* Failures are not kept. */
    buf_reset(&b);
    CHECK_EQ_INT(cache_get(c, "f", 1, 1, compute_fail, NULL, &b, &hit), ENGRAM_EIO);
    CHECK_EQ_INT(cache_get(c, "f", 1, 1, compute_fail, NULL, &b, &hit), ENGRAM_EIO);
    CHECK_EQ_INT(atomic_load(&calls), 4);
    buf_free(&b);
    cache_free(c);
}

TEST(cache_evicts_by_size)
{
    cache_t *c;
    REQUIRE(cache_new(64 * 1024, &c) == 0);
    char val[2000];
    memset(val, 'x', sizeof val - 1);
    val[sizeof val - 1] = '\0';
    buf_t b = BUF_INIT;
    for (int i = 0; i < 500; i++) {
        char key[16];
        snprintf(key, sizeof key, "key%d", i);
        buf_reset(&b);
        CHECK_EQ_INT(cache_get(c, key, strlen(key), 7, compute_value, val, &b, NULL), 0);
    }
    cache_stats_t st;
    cache_get_stats(c, &st);
    CHECK(st.bytes <= 64 * 1024);
    CHECK(st.entries > 10 && st.entries < 500);
    /* The most recent is still there, the first is gone. */
    int hit;
    buf_reset(&b);
    cache_get(c, "key499", 6, 7, compute_value, val, &b, &hit);
    CHECK_EQ_INT(hit, 1);
    buf_reset(&b);
    cache_get(c, "key0", 4, 7, compute_value, val, &b, &hit);
    CHECK_EQ_INT(hit, 0);
    buf_free(&b);
    cache_free(c);
}

#define N_THREADS 8

static int compute_slow(void *arg, buf_t *out)
{
    atomic_fetch_add(&calls, 1);
    /* Give the other threads time to find the computation in flight; the
     * assertion below holds whether or not they do. */
    for (int i = 0; i < 200 && atomic_load(&arrived) < N_THREADS; i++) usleep(1000);
    usleep(20000);
    buf_puts(out, (const char *)arg);
    return 0;
}

static cache_t *shared;

static void *racer(void *arg)
{
    buf_t b = BUF_INIT;
    atomic_fetch_add(&arrived, 1);
    int rc = cache_get(shared, "same", 4, 1, compute_slow, "answer", &b, NULL);
    int ok = rc == 0 && !strcmp(buf_cstr(&b), "answer");
    buf_free(&b);
    *(int *)arg = ok;
    return NULL;
}

TEST(cache_single_flight)
{
    REQUIRE(cache_new(1 << 20, &shared) == 0);
    atomic_store(&calls, 0);
    atomic_store(&arrived, 0);
    pthread_t t[N_THREADS];
    int ok[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) pthread_create(&t[i], NULL, racer, &ok[i]);
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < N_THREADS; i++) CHECK(ok[i]);
    CHECK_EQ_INT(atomic_load(&calls), 1);
    cache_free(shared);
}

/* ---- limits --------------------------------------------------------------- */

TEST(limits_buckets_and_quotas)
{
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st;
    REQUIRE(store_open(dir, NULL, &st) == 0);
    limits_t *l;
    REQUIRE(limits_new(st, 3, 2, &l) == 0);
    int ra;
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(limits_take_key(l, 42, &ra), 0);
    CHECK_EQ_INT(limits_take_key(l, 42, &ra), ENGRAM_EAGAIN);
    CHECK(ra >= 1 && ra <= 20); /* a token every 20 s */
    CHECK_EQ_INT(limits_take_key(l, 43, &ra), 0); /* another key */
    /* One /64 is one client; IPv4 addresses are separate. */
    CHECK_EQ_INT(limits_take_addr(l, "[2001:db8::1]:5000", &ra), 0);
    CHECK_EQ_INT(limits_take_addr(l, "[2001:db8::2]:6000", &ra), 0);
    CHECK_EQ_INT(limits_take_addr(l, "[2001:db8::3]:7000", &ra), ENGRAM_EAGAIN);
    CHECK_EQ_INT(limits_take_addr(l, "10.0.0.1:1", &ra), 0);
    CHECK_EQ_INT(limits_take_addr(l, "10.0.0.2:1", &ra), 0);

    quota_t q = {.max_chunks = -1, .max_requests_per_day = 2};
    CHECK_EQ_INT(limits_quota_set(l, 7, &q), 0);
    CHECK_EQ_INT(limits_count_request(l, 7, &ra), 0);
    CHECK_EQ_INT(limits_count_request(l, 7, &ra), 0);
    CHECK_EQ_INT(limits_count_request(l, 7, &ra), ENGRAM_EAGAIN);
    CHECK(ra >= 1 && ra <= 86400);
    CHECK_EQ_INT(limits_count_request(l, 8, &ra), 0); /* no quota */
    limits_free(l);
    /* Quota and today's count survive a restart. */
    REQUIRE(limits_new(st, 0, 0, &l) == 0);
    quota_t got;
    uint64_t today = 0;
    CHECK_EQ_INT(limits_quota_get(l, 7, &got, &today), 0);
    CHECK_EQ_INT(got.max_requests_per_day, 2);
    CHECK_EQ_INT(got.max_chunks, -1);
    CHECK_EQ_INT(today, 2);
    CHECK_EQ_INT(limits_count_request(l, 7, &ra), ENGRAM_EAGAIN);
    CHECK_EQ_INT(limits_take_key(l, 42, &ra), 0); /* limits off */
    limits_free(l);
    store_close(st);
    test_rmdir(dir);
}

/* ---- signed links --------------------------------------------------------- */

TEST(signurl_verify)
{
    unsigned char k[SIGNURL_SECRET_LEN];
    memset(k, 7, sizeof k);
    const char *doc = "0b8f8a4e-1111-4222-8333-444455556666";
    char sig[65];
    signurl_sign(k, doc, 2000000000, sig);
    CHECK_EQ_INT(signurl_verify(k, doc, "2000000000", sig, 1999999999), 0);
    CHECK_EQ_INT(signurl_verify(k, doc, "2000000000", sig, 2000000001), -EACCES); /* expired */
    CHECK_EQ_INT(signurl_verify(k, doc, "2000000001", sig, 1), -EACCES);
    CHECK_EQ_INT(signurl_verify(k, doc, "02000000000", sig, 1), -EACCES); /* not canonical */
    CHECK_EQ_INT(signurl_verify(k, "0b8f8a4e-1111-4222-8333-444455556667", "2000000000", sig, 1), -EACCES);
    sig[10] = sig[10] == 'a' ? 'b' : 'a';
    CHECK_EQ_INT(signurl_verify(k, doc, "2000000000", sig, 1), -EACCES);
    CHECK_EQ_INT(signurl_verify(k, doc, "2000000000", "zz", 1), -EACCES);
    unsigned char k2[SIGNURL_SECRET_LEN];
    memset(k2, 8, sizeof k2);
    signurl_sign(k, doc, 2000000000, sig);
    CHECK_EQ_INT(signurl_verify(k2, doc, "2000000000", sig, 1), -EACCES);
}
