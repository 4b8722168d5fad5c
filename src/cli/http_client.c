/*
 * http_client.c - the CLI's HTTP requests on libcurl (see cli.h).
 *
 * One easy handle per request: the commands make few requests, and a fresh
 * handle keeps each one independent. Credentials go as a Bearer header.
 * Bodies are collected into a buf_t capped at CLI_MAX_BODY; JSON answers are
 * parsed with util/json. For uploads the multipart body is built by curl's
 * mime API with curl_mime_filedata, which reads the file as it sends.
 *
 * Streaming (cli_stream): the write callback checks the answer's status and
 * Content-Type once headers are in; for a 2xx text/event-stream it splits
 * the bytes into lines, gathers "event:" and "data:" fields and hands each
 * completed frame to the caller's function. Anything else is collected as a
 * normal body so the caller can report the server's error.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "util/netcfg.h"
#include "util/common.h"

#define CLI_MAX_BODY (64u << 20)

typedef struct exchange {
    cli_resp_t *resp;
    CURL *curl;
    int streaming;        /* -1 undecided, 0 plain body, 1 SSE */
    cli_sse_fn fn;
    void *ud;
    int stopped;          /* fn asked to stop */
    buf_t line;           /* the current partial line */
    buf_t event;          /* the current frame's event type */
    buf_t data;           /* the current frame's data lines */
    int have_data;
    int too_big;
} exchange_t;

void cli_resp_free(cli_resp_t *r)
{
    if (!r) return;
    buf_free(&r->body);
    json_free(r->json);
    r->json = NULL;
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen) snprintf(err, errlen, fmt, a, b);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    exchange_t *x = ud;
    size_t len = size * n;
    const char *names[2] = {"x-request-id:", "content-type:"};
    char *dst[2] = {x->resp->request_id, x->resp->content_type};
    size_t cap[2] = {sizeof x->resp->request_id, sizeof x->resp->content_type};
    for (int i = 0; i < 2; i++) {
        size_t nl = strlen(names[i]);
        if (len > nl && !strncasecmp(p, names[i], nl)) {
            const char *v = p + nl;
            size_t vl = len - nl;
            while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
            if (vl >= cap[i]) vl = cap[i] - 1;
            memcpy(dst[i], v, vl);
            dst[i][vl] = '\0';
        }
    }
    return len;
}

/* A complete SSE line (without its line end). Returns nonzero to stop. */
static int sse_line(exchange_t *x, const char *l, size_t n)
{
    if (n == 0) {
        int rc = 0;
        if (x->have_data)
            rc = x->fn(buf_cstr(&x->event), buf_cstr(&x->data), x->data.len, x->ud);
        buf_reset(&x->event);
        buf_reset(&x->data);
        x->have_data = 0;
        return rc;
    }
    if (l[0] == ':') return 0; /* a comment: keep-alive */
    const char *colon = memchr(l, ':', n);
    size_t fl = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vl = n - (size_t)(v - l);
    if (vl && *v == ' ') v++, vl--;
    if (fl == 5 && !memcmp(l, "event", 5)) {
        buf_reset(&x->event);
        buf_append(&x->event, v, vl);
    } else if (fl == 4 && !memcmp(l, "data", 4)) {
        if (x->have_data) buf_putc(&x->data, '\n');
        buf_append(&x->data, v, vl);
        x->have_data = 1;
    }
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    exchange_t *x = ud;
    size_t len = size * n;
    if (x->streaming < 0) {
        long status = 0;
        curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
        x->streaming = x->fn && status >= 200 && status < 300 &&
                       !strncasecmp(x->resp->content_type, "text/event-stream", 17);
    }
    if (!x->streaming) {
        if (x->resp->body.len + len > CLI_MAX_BODY) {
            x->too_big = 1;
            return 0;
        }
        buf_append(&x->resp->body, p, len);
        return x->resp->body.err ? 0 : len;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (ch == '\n') {
            size_t ll = x->line.len;
            if (ll && x->line.data[ll - 1] == '\r') ll--;
            if (sse_line(x, x->line.data ? x->line.data : "", ll)) {
                x->stopped = 1;
                return 0;
            }
            buf_reset(&x->line);
        } else {
            buf_putc(&x->line, ch);
        }
    }
    return x->line.err ? 0 : len;
}

static int perform(const cli_conn_t *c, const char *method, const char *path, const char *json_body,
                   curl_mime *mime, cli_sse_fn fn, void *ud, cli_resp_t *out, char *err,
                   size_t errlen)
{
    memset(out, 0, sizeof *out);
    exchange_t x = {.resp = out, .streaming = -1, .fn = fn, .ud = ud};
    struct curl_slist *hdrs = NULL;
    buf_t url = BUF_INIT, auth = BUF_INIT;
    int rc = 0;
    CURL *curl = curl_easy_init();
    if (!curl) {
        set_err(err, errlen, "%s%s", "cannot initialise libcurl", "");
        return ENGRAM_ENOMEM;
    }
    x.curl = curl;
    buf_printf(&url, "%s/api/v1%s", c->url, path);
    if (c->api_key && c->api_key[0]) {
        buf_printf(&auth, "Authorization: Bearer %s", c->api_key);
        hdrs = curl_slist_append(hdrs, buf_cstr(&auth));
    }
    hdrs = curl_slist_append(hdrs, fn ? "Accept: text/event-stream" : "Accept: application/json");
    if (json_body) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (url.err || auth.err || !hdrs) {
        rc = ENGRAM_ENOMEM;
        set_err(err, errlen, "%s%s", "out of memory", "");
        goto fail;
    }
    curl_easy_setopt(curl, CURLOPT_URL, buf_cstr(&url));
    if (net_ca_bundle()) curl_easy_setopt(curl, CURLOPT_CAINFO, net_ca_bundle());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "engram-cli/" ENGRAM_VERSION);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A streamed answer may take as long as the model needs; others are bounded. */
    if (!fn && !mime && c->timeout_s > 0) curl_easy_setopt(curl, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
    if (mime) {
        curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
    } else if (json_body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
    }
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);

    CURLcode cc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (cc != CURLE_OK && !x.stopped) {
        if (x.too_big) {
            set_err(err, errlen, "%s%s", "the server's answer is too large", "");
            rc = ENGRAM_ETOOBIG;
        } else if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
            set_err(err, errlen, "cannot reach the engram server at %s (%s): is it running? "
                    "Set --url or ENGRAM_URL", c->url, curl_easy_strerror(cc));
            rc = ENGRAM_ECLOSED;
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            set_err(err, errlen, "no answer from %s in time (%s)", c->url, curl_easy_strerror(cc));
            rc = ENGRAM_ETIMEOUT;
        } else if (cc == CURLE_READ_ERROR) {
            set_err(err, errlen, "cannot read the file to upload (%s)%s", curl_easy_strerror(cc), "");
            rc = ENGRAM_EIO;
        } else {
            set_err(err, errlen, "request to %s failed: %s", c->url, curl_easy_strerror(cc));
            rc = ENGRAM_EIO;
        }
        goto fail;
    }
    if (x.streaming == 1 && !x.stopped && x.line.len) sse_line(&x, x.line.data, x.line.len);
    if (x.streaming == 1 && !x.stopped) sse_line(&x, "", 0);
    if (out->body.len && strstr(out->content_type, "json"))
        json_parse(out->body.data, out->body.len, &out->json, NULL);
fail:
    buf_free(&x.line);
    buf_free(&x.event);
    buf_free(&x.data);
    buf_free(&url);
    buf_free(&auth);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return rc;
}

int cli_request(const cli_conn_t *c, const char *method, const char *path, const char *json_body,
                cli_resp_t *out, char *err, size_t errlen)
{
    return perform(c, method, path, json_body, NULL, NULL, NULL, out, err, errlen);
}

int cli_stream(const cli_conn_t *c, const char *path, const char *json_body, cli_sse_fn fn,
               void *ud, cli_resp_t *out, char *err, size_t errlen)
{
    return perform(c, "POST", path, json_body, NULL, fn, ud, out, err, errlen);
}

/* A declared type from the extension; the server decides by content anyway. */
static const char *guess_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/')) return "application/octet-stream";
    static const char *const map[][2] = {
        {".txt", "text/plain"}, {".md", "text/markdown"}, {".markdown", "text/markdown"},
        {".html", "text/html"}, {".htm", "text/html"}, {".pdf", "application/pdf"},
        {".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
        {".png", "image/png"}, {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
        {".tif", "image/tiff"}, {".tiff", "image/tiff"}, {".csv", "text/plain"},
        {".rst", "text/plain"}, {".json", "text/plain"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcasecmp(dot, map[i][0])) return map[i][1];
    return "application/octet-stream";
}

int cli_upload(const cli_conn_t *c, const char *collection_id, const char *path,
               cli_resp_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    CURL *probe = curl_easy_init(); /* curl_mime_init needs a handle; any will do */
    if (!probe) {
        set_err(err, errlen, "%s%s", "cannot initialise libcurl", "");
        return ENGRAM_ENOMEM;
    }
    int rc;
    curl_mime *mime = curl_mime_init(probe);
    curl_mimepart *part = mime ? curl_mime_addpart(mime) : NULL;
    if (!part || curl_mime_name(part, "collection_id") ||
        curl_mime_data(part, collection_id, CURL_ZERO_TERMINATED)) {
        set_err(err, errlen, "%s%s", "out of memory", "");
        rc = ENGRAM_ENOMEM;
        goto done;
    }
    part = curl_mime_addpart(mime);
    if (!part || curl_mime_name(part, "file") || curl_mime_type(part, guess_type(path))) {
        set_err(err, errlen, "%s%s", "out of memory", "");
        rc = ENGRAM_ENOMEM;
        goto done;
    }
    if (curl_mime_filedata(part, path)) {
        set_err(err, errlen, "cannot open %s%s", path, "");
        rc = ENGRAM_EIO;
        goto done;
    }
    rc = perform(c, "POST", "/documents", NULL, mime, NULL, NULL, out, err, errlen);
done:
    curl_mime_free(mime);
    curl_easy_cleanup(probe);
    return rc;
}

const char *cli_error_message(const cli_resp_t *r)
{
    const json_t *e = json_get(r->json, "error");
    const char *m = json_get_str(e, "message");
    if (!m) m = json_get_str(r->json, "detail");
    if (m && m[0]) return m;
    if (r->status >= 500) return "the server failed (see its log)";
    return "the server refused the request";
}

const char *cli_error_code(const cli_resp_t *r)
{
    const char *code = json_get_str(json_get(r->json, "error"), "code");
    return code ? code : "";
}
