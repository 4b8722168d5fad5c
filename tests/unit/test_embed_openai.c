/*
 * test_embed_openai.c - the openai embedder against the stub
 * OpenAI-compatible server (tests/integration/stub_openai.py), started per
 * test with posix_spawn on a free port: answers and the learned dimension,
 * batching, timeouts, retries on 5xx and 429 (Retry-After), dimension
 * mismatches, malformed and incomplete answers, answer order, client errors,
 * refused connections, URL forms, the embedding cache (hits, duplicates,
 * corrupt entries), cancellation and concurrent callers.
 *
 * The expected vector of a text is recomputed here the way the stub makes
 * it (sha256 blocks of the text, see vector() in the stub), so each test
 * checks that every row landed where it belongs. Run from the project root
 * (tests/run.sh does); STUB_OPENAI overrides the stub's path.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <curl/curl.h>

#include "model/embed.h"
#include "model/embed_internal.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/common.h"
#include "util/hash.h"
#include "util/json.h"
#include "test.h"

extern char **environ;

/* ---- the stub ------------------------------------------------------------ */

typedef struct stub {
    pid_t pid;
    int in_fd;        /* its stdin: closing it ends the stub (--watch-stdin) */
    int port;
    char url[64];
} stub_t;

static int stub_start(stub_t *s, int dim)
{
    memset(s, 0, sizeof *s);
    s->in_fd = -1;
    const char *path = getenv("STUB_OPENAI");
    if (!path) path = "tests/integration/stub_openai.py";
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return -errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -errno;
    }
    char dimbuf[16];
    snprintf(dimbuf, sizeof dimbuf, "%d", dim);
    char *argv[] = {"python3", (char *)path, "--port", "0", "--dim", dimbuf, "--watch-stdin", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    int rc = posix_spawnp(&s->pid, "python3", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        fprintf(stderr, "  cannot start python3: %s\n", strerror(rc));
        return -rc;
    }
    s->in_fd = in[1];
    char line[32];
    size_t n = 0;
    while (n < sizeof line - 1) {
        struct pollfd p = {out[0], POLLIN, 0};
        if (poll(&p, 1, 20000) <= 0) break;
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = '\0';
    close(out[0]);
    s->port = atoi(line);
    if (s->port <= 0) {
        fprintf(stderr, "  the stub did not print its port (got \"%s\")\n", line);
        return ENGRAM_EIO;
    }
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    return 0;
}

static void stub_stop(stub_t *s)
{
    if (s->in_fd >= 0) close(s->in_fd);
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
    s->in_fd = -1;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    buf_append(ud, p, size * nmemb);
    return size * nmemb;
}

/* A control call; returns the HTTP status (0: failed). */
static long stub_call(stub_t *s, const char *path, const char *body, buf_t *out)
{
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->url, path);
    CURL *h = curl_easy_init();
    if (!h) return 0;
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    buf_t sink = BUF_INIT;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out ? out : &sink);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    buf_free(&sink);
    return status;
}

static int stub_script(stub_t *s, const char *steps_json)
{
    char body[2048];
    snprintf(body, sizeof body, "{\"path\":\"/v1/embeddings\",\"steps\":%s}", steps_json);
    return stub_call(s, "/_control/script", body, NULL) == 200 ? 0 : -1;
}

static int stub_default(stub_t *s, const char *step_json)
{
    char body[1024];
    snprintf(body, sizeof body, "{\"path\":\"/v1/embeddings\",\"step\":%s}", step_json);
    return stub_call(s, "/_control/default", body, NULL) == 200 ? 0 : -1;
}

/* The recorded requests: {"requests":[...]}; caller json_frees. */
static json_t *stub_requests(stub_t *s)
{
    buf_t b = BUF_INIT;
    json_t *j = NULL;
    if (stub_call(s, "/_control/requests", NULL, &b) == 200 && !b.err)
        json_parse(b.data, b.len, &j, NULL);
    buf_free(&b);
    return j;
}

static size_t stub_count(stub_t *s)
{
    json_t *j = stub_requests(s);
    const json_t *r = json_get(j, "requests");
    size_t n = r ? r->len : (size_t)-1;
    json_free(j);
    return n;
}

static int64_t req_int(const json_t *reqs, size_t i, const char *key)
{
    int64_t v = -1;
    json_get_int(json_at(json_get(reqs, "requests"), i), key, &v);
    return v;
}

static double req_time(const json_t *reqs, size_t i)
{
    double v = -1;
    json_get_double(json_at(json_get(reqs, "requests"), i), "time", &v);
    return v;
}

/* The stub's vector for text, normalised. */
static void stub_vector(const char *text, uint32_t dim, float *v)
{
    size_t tl = strlen(text);
    unsigned char *m = eg_malloc(tl + 5);
    if (!m) return;
    memcpy(m, text, tl);
    m[tl] = 0;
    for (uint32_t i = 0, block = 0; i < dim; block++) {
        be32_put(m + tl + 1, block);
        unsigned char d[32];
        hash_sha256(m, tl + 5, d);
        for (int k = 0; k < 8 && i < dim; k++, i++)
            v[i] = (float)(round(((double)be32_get(d + 4 * k) / 2147483648.0 - 1.0) * 1e6) / 1e6);
    }
    eg_free(m);
    embed_normalize(v, dim);
}

/* 1 when row matches the stub's vector of text. */
static int row_is(const float *row, const char *text, uint32_t dim)
{
    float want[64];
    if (dim > 64) return 0;
    stub_vector(text, dim, want);
    double c = 0;
    for (uint32_t i = 0; i < dim; i++) c += (double)row[i] * want[i];
    return c > 1 - 1e-5;
}

static embedder_t *open_openai(const char *url, uint32_t dim, const char *key, int timeout_ms,
                               int retries)
{
    embed_config_t c = {.name = "openai", .url = url, .model = "stub-embed", .api_key = key,
                        .dim = dim, .timeout_ms = timeout_ms, .max_retries = retries,
                        .retry_base_ms = 10, .retry_max_ms = 100};
    embedder_t *e = NULL;
    char err[256];
    if (embedder_open(&c, &e, err, sizeof err)) fprintf(stderr, "  embedder_open: %s\n", err);
    return e;
}

#define START(s, dim) stub_t s; REQUIRE(stub_start(&s, dim) == 0)

/* ---- tests --------------------------------------------------------------- */

TEST(openai_embeds_and_learns_the_dimension)
{
    START(s, 8);
    embedder_t *e = open_openai(s.url, 0, "sk-test-123", 0, 0);
    REQUIRE(e);
    char err[256];
    CHECK_STR(embedder_id(e), "openai:stub-embed");
    CHECK_STR(embedder_kind(e), "openai");
    CHECK_EQ_INT(embedder_dim(e), 0);
    float v[3 * 8];
    const char *t[3] = {"first text", "second text", "third text"};
    /* unknown dimension: refused before anything is sent */
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 3, v, err, sizeof err), ENGRAM_EINVAL);
    CHECK_EQ_INT(embedder_resolve_dim(e, err, sizeof err), 0);
    CHECK_EQ_INT(embedder_dim(e), 8);
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 3, v, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) CHECK(row_is(v + i * 8, t[i], 8));
    json_t *r = stub_requests(&s);
    const json_t *reqs = json_get(r, "requests");
    REQUIRE(reqs && reqs->len == 2);
    CHECK_EQ_INT(req_int(r, 0, "batch_size"), 1);
    CHECK_EQ_INT(req_int(r, 1, "batch_size"), 3);
    CHECK_STR(json_get_str(json_at(reqs, 1), "authorization"), "Bearer sk-test-123");
    CHECK_STR(json_get_str(json_at(reqs, 1), "model"), "stub-embed");
    json_free(r);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_batches_128_inputs_per_call)
{
    START(s, 8);
    embedder_t *e = open_openai(s.url, 8, NULL, 0, 0);
    REQUIRE(e);
    enum { N = 300 };
    char *buf[N];
    const char *t[N];
    for (int i = 0; i < N; i++) {
        buf[i] = eg_malloc(32);
        REQUIRE(buf[i]);
        snprintf(buf[i], 32, "text number %d", i);
        t[i] = buf[i];
    }
    float *v = eg_malloc(N * 8 * sizeof *v);
    REQUIRE(v);
    char err[256];
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, N, v, err, sizeof err), 0);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += !row_is(v + i * 8, t[i], 8);
    CHECK_EQ_INT(bad, 0);
    json_t *r = stub_requests(&s);
    REQUIRE(json_get(r, "requests") && json_get(r, "requests")->len == 3);
    CHECK_EQ_INT(req_int(r, 0, "batch_size"), 128);
    CHECK_EQ_INT(req_int(r, 1, "batch_size"), 128);
    CHECK_EQ_INT(req_int(r, 2, "batch_size"), 44);
    CHECK(json_get_str(json_at(json_get(r, "requests"), 0), "authorization") == NULL);
    json_free(r);
    eg_free(v);
    for (int i = 0; i < N; i++) eg_free(buf[i]);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_times_out)
{
    START(s, 8);
    REQUIRE(stub_default(&s, "{\"action\":\"ok\",\"delay\":5}") == 0);
    embedder_t *e = open_openai(s.url, 8, NULL, 300, 1);
    REQUIRE(e);
    const char *t = "slow";
    float v[8];
    char err[256];
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_EUPSTREAM);
    fprintf(stderr, "  err: %s\n", err);
    CHECK(strstr(err, "timed out") != NULL);
    CHECK(strstr(err, "after 2 attempts") != NULL);
    CHECK(strstr(err, s.url) != NULL);
    CHECK_EQ_INT(stub_count(&s), 2); /* a timeout is retried */
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_retries_5xx_then_succeeds)
{
    START(s, 8);
    REQUIRE(stub_script(&s, "[{\"action\":\"status\",\"status\":500},"
                            "{\"action\":\"status\",\"status\":503},{\"action\":\"ok\"}]") == 0);
    embedder_t *e = open_openai(s.url, 8, NULL, 0, 3);
    REQUIRE(e);
    const char *t[2] = {"alpha", "beta"};
    float v[16];
    char err[256];
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 2, v, err, sizeof err), 0);
    CHECK(row_is(v, "alpha", 8) && row_is(v + 8, "beta", 8));
    CHECK_EQ_INT(stub_count(&s), 3);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_gives_up_after_max_retries)
{
    START(s, 8);
    REQUIRE(stub_default(&s, "{\"action\":\"status\",\"status\":502}") == 0);
    embedder_t *e = open_openai(s.url, 8, NULL, 0, 2);
    REQUIRE(e);
    const char *t = "x";
    float v[8];
    char err[256];
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_EUPSTREAM);
    fprintf(stderr, "  err: %s\n", err);
    CHECK(strstr(err, "HTTP 502") && strstr(err, "stub error 502") && strstr(err, "after 3 attempts"));
    CHECK_EQ_INT(stub_count(&s), 3);
    embedder_free(e);

    /* max_retries < 0: one attempt only */
    e = open_openai(s.url, 8, NULL, 0, -1);
    REQUIRE(e);
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_EUPSTREAM);
    CHECK_EQ_INT(stub_count(&s), 4);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_honours_retry_after)
{
    START(s, 8);
    REQUIRE(stub_script(&s, "[{\"action\":\"status\",\"status\":429,\"headers\":{\"Retry-After\":\"1\"}},"
                            "{\"action\":\"ok\"}]") == 0);
    embed_config_t c = {.name = "openai", .url = s.url, .model = "m", .dim = 8,
                        .retry_base_ms = 10, .retry_max_ms = 5000};
    embedder_t *e = NULL;
    char err[256];
    REQUIRE(embedder_open(&c, &e, err, sizeof err) == 0);
    const char *t = "rate limited";
    float v[8];
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), 0);
    CHECK(row_is(v, t, 8));
    json_t *r = stub_requests(&s);
    REQUIRE(json_get(r, "requests") && json_get(r, "requests")->len == 2);
    double gap = req_time(r, 1) - req_time(r, 0);
    fprintf(stderr, "  gap after Retry-After: 1 -> %.3f s\n", gap);
    CHECK(gap >= 0.95); /* waited as told, not the 10 ms backoff */
    json_free(r);
    embedder_free(e);

    /* a Retry-After beyond retry_max_ms is cut to it (here 100 ms) */
    REQUIRE(stub_script(&s, "[{\"action\":\"status\",\"status\":429,\"headers\":{\"Retry-After\":\"3600\"}},"
                            "{\"action\":\"ok\"}]") == 0);
    e = open_openai(s.url, 8, NULL, 0, 1);
    REQUIRE(e);
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), 0);
    r = stub_requests(&s);
    gap = req_time(r, 3) - req_time(r, 2);
    fprintf(stderr, "  gap after Retry-After: 3600 with a 100 ms cap -> %.3f s\n", gap);
    CHECK(gap < 60);
    json_free(r);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_refuses_a_wrong_dimension)
{
    START(s, 8);
    char err[256];
    const char *t[2] = {"one", "two"};
    float v[2 * 16];
    /* configured 16, the service answers 8 */
    embedder_t *e = open_openai(s.url, 16, NULL, 0, 0);
    REQUIRE(e);
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 2, v, err, sizeof err), ENGRAM_EINVAL);
    fprintf(stderr, "  err: %s\n", err);
    CHECK(strstr(err, "8-dimensional") && strstr(err, "16"));
    CHECK_EQ_INT(stub_count(&s), 1); /* not retried */
    embedder_free(e);
    /* learned 8, then the service changes its mind */
    e = open_openai(s.url, 0, NULL, 0, 0);
    REQUIRE(e);
    REQUIRE(embedder_resolve_dim(e, err, sizeof err) == 0);
    REQUIRE(stub_script(&s, "[{\"action\":\"wrong_dim\",\"dim\":9},{\"action\":\"mixed_dim\"}]") == 0);
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 2, v, err, sizeof err), ENGRAM_EINVAL);
    CHECK(strstr(err, "9-dimensional") != NULL);
    /* vectors of different lengths in one answer: a bad answer */
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 2, v, err, sizeof err), ENGRAM_EUPSTREAM);
    CHECK(strstr(err, "data[1]") != NULL);
    CHECK_EQ_INT(embedder_dim(e), 8);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_refuses_bad_answers)
{
    START(s, 8);
    embedder_t *e = open_openai(s.url, 8, NULL, 0, 3);
    REQUIRE(e);
    const char *t[3] = {"a1", "b2", "c3"};
    float v[3 * 8];
    char err[256];
    static const struct { const char *action, *says; } cases[] = {
        {"malformed", "malformed JSON"},
        {"fewer", "2 embeddings answered for 3 inputs"},
        {"base64", "base64"},
        {"nan", "not a finite number"},
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(cases); i++) {
        char step[128];
        snprintf(step, sizeof step, "[{\"action\":\"%s\"}]", cases[i].action);
        REQUIRE(stub_script(&s, step) == 0);
        CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 3, v, err, sizeof err), ENGRAM_EUPSTREAM);
        fprintf(stderr, "  %s: %s\n", cases[i].action, err);
        CHECK(strstr(err, cases[i].says) != NULL);
        CHECK_EQ_INT(stub_count(&s), i + 1); /* a bad answer is not retried */
    }
    /* the stub is back to normal answers */
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 3, v, err, sizeof err), 0);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_places_rows_by_index)
{
    START(s, 8);
    embedder_t *e = open_openai(s.url, 8, NULL, 0, 0);
    REQUIRE(e);
    const char *t[4] = {"w", "x", "y", "z"};
    float v[4 * 8];
    char err[256];
    REQUIRE(stub_script(&s, "[{\"action\":\"shuffle\"},{\"action\":\"no_index\"}]") == 0);
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 4, v, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) CHECK(row_is(v + i * 8, t[i], 8));
    memset(v, 0, sizeof v);
    CHECK_EQ_INT(embedder_embed(e, NULL, t, NULL, 4, v, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) CHECK(row_is(v + i * 8, t[i], 8));
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_client_errors_fail_at_once_and_hide_the_key)
{
    START(s, 8);
    REQUIRE(stub_script(&s, "[{\"action\":\"status\",\"status\":401,\"body\":"
                            "\"{\\\"error\\\":{\\\"message\\\":\\\"Incorrect API key provided: "
                            "sk-secret-999\\\"}}\"}]") == 0);
    embedder_t *e = open_openai(s.url, 8, "sk-secret-999", 0, 3);
    REQUIRE(e);
    const char *t = "x";
    float v[8];
    char err[256];
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_EUPSTREAM);
    fprintf(stderr, "  err: %s\n", err);
    CHECK(strstr(err, "HTTP 401") && strstr(err, "--embed-api-key") && strstr(err, "Incorrect API key"));
    CHECK(strstr(err, "sk-secret-999") == NULL);
    CHECK(strstr(err, "***") != NULL);
    CHECK_EQ_INT(stub_count(&s), 1);
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_connection_refused_is_retried)
{
    /* a port nobody listens on: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    REQUIRE(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    REQUIRE(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://user:pw@127.0.0.1:%d/v1", ntohs(a.sin_port));
    embedder_t *e = open_openai(url, 8, NULL, 0, 1);
    REQUIRE(e);
    const char *t = "x";
    float v[8];
    char err[256];
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_EUPSTREAM);
    fprintf(stderr, "  err: %s\n", err);
    CHECK(strstr(err, "connection failed") && strstr(err, "after 2 attempts"));
    CHECK(strstr(err, "user:pw") == NULL);
    embedder_free(e);
}

TEST(openai_accepts_url_forms)
{
    START(s, 8);
    const char *suffixes[4] = {"", "/", "/v1", "/v1/embeddings/"};
    char url[128], err[256];
    float v[8];
    const char *t = "x";
    for (int i = 0; i < 4; i++) {
        snprintf(url, sizeof url, "%s%s", s.url, suffixes[i]);
        embedder_t *e = open_openai(url, 8, NULL, 0, 0);
        REQUIRE(e);
        CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), 0);
        embedder_free(e);
    }
    snprintf(url, sizeof url, "%s/prefix", s.url);
    embedder_t *e = open_openai(url, 8, NULL, 0, 0);
    REQUIRE(e);
    CHECK_EQ_INT(embedder_embed(e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_EUPSTREAM);
    CHECK(strstr(err, "HTTP 404") && strstr(err, "/prefix/v1/embeddings") && strstr(err, "--embed-url"));
    embedder_free(e);
    stub_stop(&s);
}

TEST(openai_cache_avoids_calls)
{
    START(s, 8);
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = NULL;
    REQUIRE(store_open(dir, NULL, &st) == 0);
    embedder_t *e = open_openai(s.url, 8, NULL, 0, 0);
    REQUIRE(e);
    char err[256];
    const char *t[6] = {"cached one", "cached two", "", "cached one", "cached three", "cached two"};
    float v[6 * 8], w[6 * 8];
    CHECK_EQ_INT(embedder_embed(e, st, t, NULL, 6, v, err, sizeof err), 0);
    json_t *r = stub_requests(&s);
    CHECK_EQ_INT(req_int(r, 0, "batch_size"), 3); /* duplicates and "" are not sent */
    json_free(r);
    for (int i = 0; i < 6; i++) {
        if (i == 2) {
            for (int k = 0; k < 8; k++) CHECK(v[2 * 8 + k] == 0.0f);
        } else {
            CHECK(row_is(v + i * 8, t[i], 8));
        }
    }
    /* the same texts again: all from the cache, no call, same vectors */
    CHECK_EQ_INT(embedder_embed(e, st, t, NULL, 6, w, err, sizeof err), 0);
    CHECK_EQ_INT(stub_count(&s), 1);
    CHECK(memcmp(v, w, sizeof v) == 0);
    /* one new text among cached ones: only it is sent */
    const char *u[3] = {"cached three", "brand new", "cached one"};
    CHECK_EQ_INT(embedder_embed(e, st, u, NULL, 3, w, err, sizeof err), 0);
    r = stub_requests(&s);
    CHECK_EQ_INT(json_get(r, "requests")->len, 2);
    CHECK_EQ_INT(req_int(r, 1, "batch_size"), 1);
    json_free(r);
    CHECK(row_is(w + 8, "brand new", 8));
    /* another embedder id does not see these entries */
    embedder_t *e2 = NULL;
    embed_config_t c2 = {.name = "openai", .url = s.url, .model = "other-model", .dim = 8};
    REQUIRE(embedder_open(&c2, &e2, err, sizeof err) == 0);
    CHECK_EQ_INT(embedder_embed(e2, st, u, NULL, 1, w, err, sizeof err), 0);
    CHECK_EQ_INT(stub_count(&s), 3);
    embedder_free(e2);
    embedder_free(e);
    store_close(st);
    test_rmdir(dir);
    stub_stop(&s);
}

typedef struct poke {
    store_t *st;
    unsigned char key[32];
    unsigned char val[64];
    size_t len;
} poke_t;

static int poke_cb(MDB_txn *txn, void *arg)
{
    poke_t *p = arg;
    MDB_val k = {32, p->key}, v = {p->len, p->val};
    return store_status(mdb_put(txn, store_dbi(p->st, DB_EMBED_CACHE), &k, &v, 0));
}

TEST(openai_cache_ignores_corrupt_entries)
{
    START(s, 4);
    char *dir = test_tmpdir();
    REQUIRE(dir);
    store_t *st = NULL;
    REQUIRE(store_open(dir, NULL, &st) == 0);
    embedder_t *e = open_openai(s.url, 4, NULL, 0, 0);
    REQUIRE(e);
    char err[256];
    const char *t = "to be damaged";
    float v[4], w[4];
    REQUIRE(embedder_embed(e, st, &t, NULL, 1, v, err, sizeof err) == 0);
    poke_t p = {.st = st};
    REQUIRE(embed_cache_key(embedder_id(e), t, strlen(t), p.key) == 0);
    /* a truncated value, a wrong dim field, a NaN: each one is recomputed */
    float nan = NAN;
    struct { size_t len; uint32_t dim; int put_nan; } bad[3] = {{4 + 3 * 4, 4, 0}, {4 + 4 * 4, 5, 0},
                                                                {4 + 4 * 4, 4, 1}};
    for (int i = 0; i < 3; i++) {
        memset(p.val, 0, sizeof p.val);
        p.val[0] = (unsigned char)bad[i].dim;
        if (bad[i].put_nan) memcpy(p.val + 4, &nan, 4);
        p.len = bad[i].len;
        REQUIRE(store_write(st, poke_cb, &p) == 0);
        CHECK_EQ_INT(embedder_embed(e, st, &t, NULL, 1, w, err, sizeof err), 0);
        CHECK(memcmp(v, w, sizeof v) == 0);
        CHECK_EQ_INT(stub_count(&s), (size_t)(i + 2));
    }
    /* and the entry was repaired */
    CHECK_EQ_INT(embedder_embed(e, st, &t, NULL, 1, w, err, sizeof err), 0);
    CHECK_EQ_INT(stub_count(&s), 4);
    embedder_free(e);
    store_close(st);
    test_rmdir(dir);
    stub_stop(&s);
}

typedef struct slow_call {
    embedder_t *e;
    int rc;
    char err[256];
} slow_call_t;

static void *slow_main(void *arg)
{
    slow_call_t *c = arg;
    const char *t = "never answered in time";
    float v[8];
    c->rc = embedder_embed(c->e, NULL, &t, NULL, 1, v, c->err, sizeof c->err);
    return NULL;
}

TEST(openai_cancel_stops_a_waiting_call)
{
    START(s, 8);
    /* the service takes 20 s, the timeout is 60 s: only cancel can end the call early */
    REQUIRE(stub_script(&s, "[{\"action\":\"ok\",\"delay\":20}]") == 0);
    embed_config_t c = {.name = "openai", .url = s.url, .model = "m", .dim = 8};
    slow_call_t call = {0};
    char err[256];
    REQUIRE(embedder_open(&c, &call.e, err, sizeof err) == 0);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, slow_main, &call) == 0);
    while (stub_count(&s) < 1) usleep(10000); /* the request is in flight */
    embedder_cancel(call.e);
    pthread_join(th, NULL);
    CHECK_EQ_INT(call.rc, ENGRAM_ECANCELED);
    CHECK(strstr(call.err, "canceled") != NULL);
    /* and later calls give up at once */
    const char *t = "x";
    float v[8];
    CHECK_EQ_INT(embedder_embed(call.e, NULL, &t, NULL, 1, v, err, sizeof err), ENGRAM_ECANCELED);
    CHECK_EQ_INT(stub_count(&s), 1);
    embedder_free(call.e);

    /* a backoff sleep is cut short too: 500s forever, retries 3 s apart */
    REQUIRE(stub_default(&s, "{\"action\":\"status\",\"status\":500}") == 0);
    embed_config_t c2 = {.name = "openai", .url = s.url, .model = "m", .dim = 8, .max_retries = 5,
                         .retry_base_ms = 3000, .retry_max_ms = 3000};
    call = (slow_call_t){0};
    REQUIRE(embedder_open(&c2, &call.e, err, sizeof err) == 0);
    REQUIRE(pthread_create(&th, NULL, slow_main, &call) == 0);
    while (stub_count(&s) < 2) usleep(10000);
    embedder_cancel(call.e);
    pthread_join(th, NULL);
    CHECK_EQ_INT(call.rc, ENGRAM_ECANCELED);
    CHECK_EQ_INT(stub_count(&s), 2);
    embedder_free(call.e);
    stub_stop(&s);
}

/* ---- threads ----------------------------------------------------------- */

typedef struct th {
    embedder_t *e;
    int base;
    int bad;
} th_t;

static void *th_main(void *arg)
{
    th_t *a = arg;
    char bufs[40][32];
    const char *t[40];
    for (int i = 0; i < 40; i++) {
        snprintf(bufs[i], sizeof bufs[i], "thread text %d", a->base + i);
        t[i] = bufs[i];
    }
    float v[40 * 8];
    char err[256];
    for (int round = 0; round < 3; round++) {
        if (embedder_embed(a->e, NULL, t, NULL, 40, v, err, sizeof err) != 0) {
            a->bad++;
            continue;
        }
        for (int i = 0; i < 40; i++) a->bad += !row_is(v + i * 8, t[i], 8);
    }
    return NULL;
}

TEST(openai_serves_concurrent_callers)
{
    START(s, 8);
    embedder_t *e = open_openai(s.url, 0, NULL, 0, 0);
    REQUIRE(e);
    char err[256];
    REQUIRE(embedder_resolve_dim(e, err, sizeof err) == 0);
    pthread_t th[4];
    th_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (th_t){e, i * 1000, 0};
        REQUIRE(pthread_create(&th[i], NULL, th_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].bad, 0);
    }
    CHECK_EQ_INT(stub_count(&s), 1 + 4 * 3);
    embedder_free(e);
    stub_stop(&s);
}
