/*
 * parse.c - request-head parser, chunked decoder and the small request
 * accessors (header lookup, query parameters). See parse.h.
 *
 * How the head is parsed: http_head_scan() walks forward from where it last
 * stopped looking for an empty line (CRLF CRLF, or bare LF LF, which RFC
 * 9112 lets a server accept), rejecting NUL and bare CR on the way so garbage
 * fails early instead of filling the buffer. Empty lines before the request
 * line are skipped (RFC 9112 section 2.2). When the blank line is found the
 * whole head is checked once (parse_full): request line, each field line,
 * then the framing fields, whose rules are where request smuggling hides:
 *   - Content-Length: digits only; repeated or listed values must agree;
 *   - Transfer-Encoding: only exactly "chunked" is accepted (anything else
 *     is 501, a repeated field is 400), never together with Content-Length,
 *     never in an HTTP/1.0 request;
 *   - HTTP/1.1 needs exactly one Host field.
 * Values are recorded as spans into the caller's buffer; nothing is copied
 * until http_request_from_head().
 *
 * The chunked decoder is a byte-at-a-time state machine that hands back data
 * spans of its input, so body bytes are copied exactly once (by the caller).
 * Sizes are checked against overflow and against the body limit as soon as
 * each hex digit arrives; extensions and trailers are skipped with bounds.
 */
#include "http/parse.h"

#include <limits.h>
#include <string.h>
#include <strings.h>

#include "util/common.h"

/* RFC 9110 tchar. */
static const unsigned char tchar_tab[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
    ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
    ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
    ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_tchar(unsigned char c) { return tchar_tab[c]; }

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Field-value byte: VCHAR, obs-text, SP, HTAB. */
static int is_value_char(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static http_span_t span(size_t off, size_t len)
{
    http_span_t s = {(uint32_t)off, (uint32_t)len};
    return s;
}

static int span_ieq(const char *buf, http_span_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(buf + s.off, lit, n) == 0;
}

/* Calls fn on each comma-separated, OWS-trimmed element of buf[off..off+len);
 * empty elements are passed too (the caller decides). Stops on nonzero. */
typedef int (*list_fn)(const char *p, size_t n, void *ctx);

static int for_each_elem(const char *p, size_t len, list_fn fn, void *ctx)
{
    size_t i = 0;
    for (;;) {
        size_t s = i;
        while (i < len && p[i] != ',') i++;
        size_t e = i;
        while (s < e && is_ows((unsigned char)p[s])) s++;
        while (e > s && is_ows((unsigned char)p[e - 1])) e--;
        int rc = fn(p + s, e - s, ctx);
        if (rc) return rc;
        if (i >= len) return 0;
        i++; /* past ',' */
    }
}

struct cl_ctx { int64_t value; };

static int cl_elem(const char *p, size_t n, void *vctx)
{
    struct cl_ctx *ctx = vctx;
    if (n == 0 || n > 18) return -400; /* 18 digits: no int64 overflow */
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -400;
        v = v * 10 + (p[i] - '0');
    }
    if (ctx->value >= 0 && ctx->value != v) return -400;
    ctx->value = v;
    return 0;
}

struct conn_ctx { int close, keep_alive; };

static int conn_elem(const char *p, size_t n, void *vctx)
{
    struct conn_ctx *ctx = vctx;
    if (n == 5 && strncasecmp(p, "close", 5) == 0) ctx->close = 1;
    if (n == 10 && strncasecmp(p, "keep-alive", 10) == 0) ctx->keep_alive = 1;
    return 0;
}

/* Validates (out == NULL) or decodes a percent-encoded path. */
long http_path_decode(const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (i + 2 >= n) return -400;
            int hi = hex_val((unsigned char)in[i + 1]), lo = hex_val((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) return -400;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0) return -400;
            i += 2;
        }
        if (out) out[o] = (char)c;
        o++;
    }
    if (out) out[o] = '\0';
    return (long)o;
}

/* Request line: method SP request-target SP HTTP-version. */
static int parse_request_line(const char *buf, size_t s, size_t e, http_head_t *h)
{
    size_t i = s;
    while (i < e && is_tchar((unsigned char)buf[i])) i++;
    if (i == s || i >= e || buf[i] != ' ') return -400;
    h->method = span(s, i - s);
    size_t t = ++i;
    while (i < e && buf[i] != ' ') {
        unsigned char c = (unsigned char)buf[i];
        if (c <= 0x20 || c >= 0x7f || c == '#') return -400;
        i++;
    }
    if (i == t || i >= e) return -400; /* empty target, or no version (HTTP/0.9) */
    h->target = span(t, i - t);
    i++;
    /* "HTTP/" DIGIT "." DIGIT and nothing else. */
    if (e - i != 8 || memcmp(buf + i, "HTTP/", 5) != 0) return -400;
    unsigned char maj = (unsigned char)buf[i + 5], dot = (unsigned char)buf[i + 6],
                  min = (unsigned char)buf[i + 7];
    if (maj < '0' || maj > '9' || dot != '.' || min < '0' || min > '9') return -400;
    if (maj != '1' || (min != '0' && min != '1')) return -505;
    h->minor_version = min - '0';

    /* Target form. */
    const char *tg = buf + t;
    size_t tl = h->target.len, path_start, path_end;
    if (tg[0] == '/') {
        path_start = 0;
    } else if (tl == 1 && tg[0] == '*') {
        if (!span_ieq(buf, h->method, "OPTIONS")) return -400;
        path_start = 0;
    } else {
        /* absolute-form: scheme "://" authority [path] */
        size_t k = 0;
        if (!((tg[0] >= 'a' && tg[0] <= 'z') || (tg[0] >= 'A' && tg[0] <= 'Z'))) return -400;
        while (k < tl && tg[k] != ':') {
            char c = tg[k];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '-' || c == '.'))
                return -400;
            k++;
        }
        if (k + 3 > tl || memcmp(tg + k, "://", 3) != 0) return -400;
        k += 3;
        size_t a = k;
        while (k < tl && tg[k] != '/' && tg[k] != '?') k++;
        if (k == a) return -400; /* empty authority */
        path_start = k;
    }
    path_end = path_start;
    while (path_end < tl && tg[path_end] != '?') path_end++;
    h->path = span(t + path_start, path_end - path_start);
    if (path_end < tl) {
        h->has_query = 1;
        h->query = span(t + path_end + 1, tl - path_end - 1);
    } else {
        h->has_query = 0;
        h->query = span(t + tl, 0);
    }
    if (http_path_decode(buf + h->path.off, h->path.len, NULL) < 0) return -400;
    return 0;
}

static int parse_full(const char *buf, size_t start, size_t end, http_head_t *h)
{
    /* The request line. */
    size_t i = start;
    while (buf[i] != '\n') i++;
    size_t le = (i > start && buf[i - 1] == '\r') ? i - 1 : i;
    int rc = parse_request_line(buf, start, le, h);
    if (rc) return rc;
    i++;

    int n_host = 0, n_te = 0, has_cl = 0, te_ok = 0;
    struct cl_ctx cl = {-1};
    struct conn_ctx conn = {0, 0};
    h->n_headers = 0;
    h->expect_continue = 0;

    /* Field lines up to the blank line that ends the head. */
    while (i < end) {
        size_t ls = i;
        while (buf[i] != '\n') i++;
        size_t nl = i;
        le = (nl > ls && buf[nl - 1] == '\r') ? nl - 1 : nl;
        i = nl + 1;
        if (le == ls) break; /* the blank line */
        unsigned char c0 = (unsigned char)buf[ls];
        if (c0 == ' ' || c0 == '\t') return -400; /* obs-fold or stray whitespace */
        size_t k = ls;
        while (k < le && is_tchar((unsigned char)buf[k])) k++;
        if (k == ls || k >= le || buf[k] != ':') return -400;
        http_span_t name = span(ls, k - ls);
        k++;
        while (k < le && is_ows((unsigned char)buf[k])) k++;
        size_t ve = le;
        while (ve > k && is_ows((unsigned char)buf[ve - 1])) ve--;
        for (size_t j = k; j < ve; j++) {
            if (!is_value_char((unsigned char)buf[j])) return -400;
        }
        if (h->n_headers >= HTTP_MAX_HEADERS) return -431;
        http_span_t value = span(k, ve - k);
        h->names[h->n_headers] = name;
        h->values[h->n_headers] = value;
        h->n_headers++;

        const char *v = buf + value.off;
        if (span_ieq(buf, name, "content-length")) {
            has_cl = 1;
            rc = for_each_elem(v, value.len, cl_elem, &cl);
            if (rc) return rc;
        } else if (span_ieq(buf, name, "transfer-encoding")) {
            n_te++;
            te_ok = value.len == 7 && strncasecmp(v, "chunked", 7) == 0;
        } else if (span_ieq(buf, name, "host")) {
            n_host++;
        } else if (span_ieq(buf, name, "connection")) {
            for_each_elem(v, value.len, conn_elem, &conn);
        } else if (span_ieq(buf, name, "expect")) {
            if (value.len == 12 && strncasecmp(v, "100-continue", 12) == 0) h->expect_continue = 1;
        }
    }

    if (n_te) {
        if (has_cl || n_te > 1 || h->minor_version == 0) return -400;
        if (!te_ok) return -501;
    }
    if (h->minor_version == 1 && n_host != 1) return -400;
    if (n_host > 1) return -400;
    h->content_length = has_cl ? cl.value : -1;
    h->chunked = n_te == 1;
    if (conn.close) h->keep_alive = 0;
    else h->keep_alive = h->minor_version == 1 || conn.keep_alive;
    h->head_len = end;
    return 0;
}

int http_head_scan(http_head_parser_t *p, const char *buf, size_t len, size_t max_header_bytes,
                   http_head_t *out)
{
    if (max_header_bytes > INT_MAX / 2) max_header_bytes = INT_MAX / 2;
    size_t i = p->scanned;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\n') {
            size_t ls = p->line_start;
            int empty = i == ls || (i == ls + 1 && buf[ls] == '\r');
            if (empty && ls == p->head_start) {
                p->head_start = p->line_start = i + 1; /* leading empty line */
            } else if (empty) {
                size_t end = i + 1;
                p->scanned = end;
                if (end > max_header_bytes) return -431;
                int rc = parse_full(buf, p->head_start, end, out);
                return rc ? rc : (int)end;
            } else {
                p->line_start = i + 1;
            }
        } else if (c == '\r') {
            if (i + 1 >= len) break; /* decide when the next byte is here */
            if (buf[i + 1] != '\n') return -400;
        } else if (c == 0) {
            return -400;
        }
        i++;
    }
    p->scanned = i;
    if (len > max_header_bytes) return -431;
    return 0;
}

int http_parse_head(const char *buf, size_t len, size_t max_header_bytes, http_head_t *out)
{
    http_head_parser_t p;
    http_head_parser_init(&p);
    return http_head_scan(&p, buf, len, max_header_bytes, out);
}

int http_request_from_head(http_request_t *req, const char *buf, const http_head_t *h,
                           char **storage)
{
    size_t total = h->head_len + 1 + h->path.len + 2 + h->query.len + 1;
    char *st = eg_malloc(total);
    if (!st) return ENGRAM_ENOMEM;
    memcpy(st, buf, h->head_len);
    st[h->head_len] = '\0';
    /* Every token is followed inside the head by a delimiter (SP, ':', OWS,
     * CR or LF), which becomes its terminator. */
    st[h->method.off + h->method.len] = '\0';
    st[h->target.off + h->target.len] = '\0';
    req->method = st + h->method.off;
    req->target = st + h->target.off;
    for (size_t i = 0; i < h->n_headers; i++) {
        st[h->names[i].off + h->names[i].len] = '\0';
        st[h->values[i].off + h->values[i].len] = '\0';
        req->headers[i].name = st + h->names[i].off;
        req->headers[i].value = st + h->values[i].off;
    }
    req->n_headers = h->n_headers;
    char *path = st + h->head_len + 1;
    if (h->path.len == 0) {
        strcpy(path, h->target.len == 1 && buf[h->target.off] == '*' ? "*" : "/");
    } else if (http_path_decode(buf + h->path.off, h->path.len, path) < 0) {
        req->n_headers = 0;
        req->method = req->target = "";
        eg_free(st);
        return -400;
    }
    char *query = path + h->path.len + 2;
    memcpy(query, buf + h->query.off, h->query.len);
    query[h->query.len] = '\0';
    req->path = path;
    req->query = query;
    req->minor_version = h->minor_version;
    *storage = st;
    return 0;
}

/* ---- chunked decoder ---- */

enum {
    CK_SIZE, CK_SIZE_WS, CK_EXT, CK_SIZE_LF, CK_DATA, CK_DATA_CR, CK_DATA_LF,
    CK_TRAILER_START, CK_TRAILER_LINE, CK_TRAILER_LF, CK_END_LF, CK_DONE, CK_ERROR,
};

void http_chunked_init(http_chunked_t *c, uint64_t max_body)
{
    memset(c, 0, sizeof *c);
    c->state = CK_SIZE;
    c->max_body = max_body;
}

static int ck_fail(http_chunked_t *c, int status)
{
    c->state = CK_ERROR;
    c->digits = status; /* remembered for later calls */
    return status;
}

/* After the size line: a data chunk, or the last chunk and its trailers. */
static void ck_size_done(http_chunked_t *c)
{
    c->state = c->chunk_left ? CK_DATA : CK_TRAILER_START;
}

int http_chunked_feed(http_chunked_t *c, const char *in, size_t len, size_t *consumed,
                      size_t *data_off, size_t *data_len)
{
    size_t i = 0;
    *data_off = 0;
    *data_len = 0;
    *consumed = 0;
    if (c->state == CK_DONE) return HTTP_CHUNK_DONE;
    if (c->state == CK_ERROR) return c->digits;
    while (i < len) {
        unsigned char ch = (unsigned char)in[i];
        switch (c->state) {
        case CK_SIZE: {
            int v = hex_val(ch);
            if (v >= 0) {
                if (c->chunk_left > (UINT64_MAX >> 4)) return ck_fail(c, -400);
                c->chunk_left = (c->chunk_left << 4) | (uint64_t)v;
                c->digits++;
                if (c->chunk_left > c->max_body - c->total) return ck_fail(c, -413);
                i++;
                break;
            }
            if (c->digits == 0) return ck_fail(c, -400);
            if (ch == ' ' || ch == '\t') c->state = CK_SIZE_WS;
            else if (ch == ';') c->state = CK_EXT;
            else if (ch == '\r') c->state = CK_SIZE_LF;
            else if (ch == '\n') ck_size_done(c);
            else return ck_fail(c, -400);
            i++;
            break;
        }
        case CK_SIZE_WS:
            if (ch == ';') c->state = CK_EXT;
            else if (ch != ' ' && ch != '\t') return ck_fail(c, -400);
            if (++c->ext_len > HTTP_CHUNK_EXT_MAX) return ck_fail(c, -400);
            i++;
            break;
        case CK_EXT:
            if (ch == '\r') c->state = CK_SIZE_LF;
            else if (ch == '\n') ck_size_done(c);
            else if (!is_value_char(ch)) return ck_fail(c, -400);
            if (++c->ext_len > HTTP_CHUNK_EXT_MAX) return ck_fail(c, -400);
            i++;
            break;
        case CK_SIZE_LF:
            if (ch != '\n') return ck_fail(c, -400);
            ck_size_done(c);
            i++;
            break;
        case CK_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > c->chunk_left) n = (size_t)c->chunk_left;
            *data_off = i;
            *data_len = n;
            c->chunk_left -= n;
            c->total += n;
            if (c->chunk_left == 0) c->state = CK_DATA_CR;
            *consumed = i + n;
            return HTTP_CHUNK_DATA;
        }
        case CK_DATA_CR:
            if (ch == '\r') c->state = CK_DATA_LF;
            else if (ch == '\n') goto next_size;
            else return ck_fail(c, -400);
            i++;
            break;
        case CK_DATA_LF:
            if (ch != '\n') return ck_fail(c, -400);
        next_size:
            c->state = CK_SIZE;
            c->digits = 0;
            c->ext_len = 0;
            i++;
            break;
        case CK_TRAILER_START:
            if (ch == '\r') {
                c->state = CK_END_LF;
            } else if (ch == '\n') {
                c->state = CK_DONE;
                *consumed = i + 1;
                return HTTP_CHUNK_DONE;
            } else if (ch == ' ' || ch == '\t' || !is_tchar(ch)) {
                return ck_fail(c, -400);
            } else {
                c->state = CK_TRAILER_LINE;
            }
            if (++c->trailer_len > HTTP_TRAILER_MAX) return ck_fail(c, -431);
            i++;
            break;
        case CK_TRAILER_LINE:
            if (ch == '\r') c->state = CK_TRAILER_LF;
            else if (ch == '\n') c->state = CK_TRAILER_START;
            else if (!is_value_char(ch)) return ck_fail(c, -400);
            if (++c->trailer_len > HTTP_TRAILER_MAX) return ck_fail(c, -431);
            i++;
            break;
        case CK_TRAILER_LF:
            if (ch != '\n') return ck_fail(c, -400);
            c->state = CK_TRAILER_START;
            i++;
            break;
        case CK_END_LF:
            if (ch != '\n') return ck_fail(c, -400);
            c->state = CK_DONE;
            *consumed = i + 1;
            return HTTP_CHUNK_DONE;
        default:
            return ck_fail(c, -400);
        }
    }
    *consumed = i;
    return HTTP_CHUNK_MORE;
}

/* ---- request accessors ---- */

const char *http_header(const http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    }
    return NULL;
}

/* Form-decodes ('+' is a space, %XX a byte; a malformed escape stays as it
 * is) s[0..n) into out; returns the length or -1 if it needs more than
 * outsz - 1 bytes. */
static long form_decode(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < n) {
            int hi = hex_val((unsigned char)s[i + 1]), lo = hex_val((unsigned char)s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = (char)(hi * 16 + lo);
                i += 2;
            }
        }
        if (o + 1 >= outsz) return -1;
        out[o++] = c;
    }
    if (outsz) out[o] = '\0';
    return (long)o;
}

int http_query_param(const http_request_t *req, const char *name, char *out, size_t outsz)
{
    const char *q = req->query ? req->query : "";
    size_t name_len = strlen(name);
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t seg = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        char key[256];
        long kl = form_decode(q, klen, key, sizeof key);
        if (kl >= 0 && (size_t)kl == name_len && memcmp(key, name, name_len) == 0) {
            const char *v = eq ? eq + 1 : q + seg;
            size_t vlen = eq ? seg - klen - 1 : 0;
            if (outsz == 0) return ENGRAM_ETOOBIG;
            if (form_decode(v, vlen, out, outsz) < 0) return ENGRAM_ETOOBIG;
            return 1;
        }
        q += seg;
        if (*q == '&') q++;
    }
    return 0;
}

int http_request_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (n >= 128) return 0;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1;
}
