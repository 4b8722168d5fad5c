/*
 * json.c - strict JSON parser (DOM) and streaming writer (json.h).
 *
 * Parser: recursive descent over text[0..len) (the input need not be
 * NUL-terminated). Depth is counted per container and refused beyond
 * JSON_MAX_DEPTH, so the C stack is bounded whatever the input. Outside of
 * strings only ASCII structural characters are legal, so validating UTF-8
 * inside strings validates the whole document. A string is scanned twice:
 * the first pass finds its end and checks escapes and UTF-8 (ASCII runs are
 * skipped quickly), the second copies it (one memcpy when it has no
 * escapes). The decoded form is never longer than the source, so one
 * allocation of the source length is always enough.
 *
 * Numbers follow the RFC grammar exactly (no leading zeros, "+", ".5", "1.",
 * NaN or Infinity). A number whose text has no fraction or exponent and fits
 * int64 is converted exactly (is_int); anything else goes through strtod,
 * and a value that overflows a double is an error so a DOM never holds
 * infinities. strtod assumes the "C" LC_NUMERIC locale (the server never
 * changes it).
 *
 * Containers grow their arrays by doubling while being parsed. On any
 * failure the partly built subtree is freed on the way out: each level owns
 * what it has appended and frees it in its single fail path.
 *
 * Writer: jw_t remembers, per nesting level, whether a value was already
 * written, and puts the comma in front of the next one; a key suppresses the
 * comma of the value that follows it. Nesting deeper than JSON_MAX_DEPTH
 * poisons the buffer (b->err = ENGRAM_EINVAL) rather than writing bad JSON.
 * Doubles are printed with %.15g, %.16g or %.17g, whichever is first to read
 * back to the same value; integral values below 2^53 print as integers.
 */
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/common.h"
#include "util/utf8.h"

/* ------------------------------------------------------------------ */
/* DOM lifetime                                                        */
/* ------------------------------------------------------------------ */

void json_free(json_t *j)
{
    if (!j) return;
    switch (j->type) {
    case JSON_STRING:
        eg_free(j->str);
        break;
    case JSON_ARRAY:
        for (size_t i = 0; i < j->len; i++) json_free(j->items[i]);
        eg_free(j->items);
        break;
    case JSON_OBJECT:
        for (size_t i = 0; i < j->len; i++) {
            json_free(j->items[i]);
            eg_free(j->keys[i]);
        }
        eg_free(j->items);
        eg_free(j->keys);
        eg_free(j->key_lens);
        break;
    default:
        break;
    }
    eg_free(j);
}

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

typedef struct parser {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    json_error_t *err;
    int depth;
} parser_t;

static int perr(parser_t *ps, const unsigned char *at, int status, const char *msg)
{
    if (ps->err) {
        ps->err->offset = (size_t)(at - ps->start);
        snprintf(ps->err->message, sizeof ps->err->message, "%s", msg);
    }
    return status;
}

#define SYNTAX(ps, at, msg) perr((ps), (at), ENGRAM_EINVAL, (msg))
#define NOMEM(ps) perr((ps), (ps)->p, ENGRAM_ENOMEM, "out of memory")

static inline void skip_ws(parser_t *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

static inline int hexval(unsigned c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    return -1;
}

/* Reads 4 hex digits at q (caller checked 4 bytes exist); -1 if not hex. */
static long hex4(const unsigned char *q)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(q[i]);
        if (h < 0) return -1;
        v = (v << 4) | h;
    }
    return v;
}

/* Pass 1: ps->p is just after the opening quote. Finds the closing quote,
 * validating escapes, surrogate pairing, control bytes and UTF-8. On success
 * *close points at the closing quote. */
static int string_scan(parser_t *ps, const unsigned char **close, int *has_esc)
{
    const unsigned char *q = ps->p, *end = ps->end;
    *has_esc = 0;
    for (;;) {
        while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\') q++;
        if (q >= end) return SYNTAX(ps, q, "unterminated string");
        unsigned c = *q;
        if (c == '"') break;
        if (c == '\\') {
            *has_esc = 1;
            if (end - q < 2) return SYNTAX(ps, end, "unterminated string");
            switch (q[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                q += 2;
                break;
            case 'u': {
                if (end - q < 6) return SYNTAX(ps, q, "truncated \\u escape");
                long cp = hex4(q + 2);
                if (cp < 0) return SYNTAX(ps, q, "bad hex digit in \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF) return SYNTAX(ps, q, "lone low surrogate");
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    long lo = -1;
                    if (end - q >= 12 && q[6] == '\\' && q[7] == 'u') lo = hex4(q + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF) return SYNTAX(ps, q, "lone high surrogate");
                    q += 6;
                }
                q += 6;
                break;
            }
            default:
                return SYNTAX(ps, q, "invalid escape");
            }
        } else if (c < 0x20) {
            return SYNTAX(ps, q, "control character in string");
        } else {
            int k = utf8_decode((const char *)q, (size_t)(end - q), NULL);
            if (k <= 0) return SYNTAX(ps, q, "invalid UTF-8");
            q += k;
        }
    }
    *close = q;
    return 0;
}

/* Pass 2: decodes the already validated body [from, to) into dst; returns
 * the decoded length. */
static size_t string_decode(const unsigned char *from, const unsigned char *to, char *dst)
{
    char *d = dst;
    const unsigned char *q = from;
    while (q < to) {
        const unsigned char *run = q;
        while (q < to && *q != '\\') q++;
        memcpy(d, run, (size_t)(q - run));
        d += q - run;
        if (q >= to) break;
        unsigned char e = q[1];
        q += 2;
        switch (e) {
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u': {
            uint32_t cp = (uint32_t)hex4(q);
            q += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = (uint32_t)hex4(q + 2);
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            d += utf8_encode(cp, d);
            break;
        }
        default: *d++ = (char)e; break; /* " \ / */
        }
    }
    *d = '\0';
    return (size_t)(d - dst);
}

/* Parses a string token at ps->p (the opening quote) into a fresh
 * NUL-terminated allocation. */
static int parse_string(parser_t *ps, char **out, size_t *out_len)
{
    const unsigned char *close;
    int has_esc, rc;
    ps->p++;
    if ((rc = string_scan(ps, &close, &has_esc))) return rc;
    size_t raw = (size_t)(close - ps->p);
    char *s = eg_malloc(raw + 1);
    if (!s) return NOMEM(ps);
    if (has_esc) {
        *out_len = string_decode(ps->p, close, s);
    } else {
        memcpy(s, ps->p, raw);
        s[raw] = '\0';
        *out_len = raw;
    }
    *out = s;
    ps->p = close + 1;
    return 0;
}

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

static int parse_number(parser_t *ps, json_t *node)
{
    const unsigned char *s = ps->p, *q = s, *end = ps->end;
    int neg = 0, integral = 1;
    if (*q == '-') { neg = 1; q++; }
    if (q >= end || !IS_DIGIT(*q)) return SYNTAX(ps, q, "digit expected in number");
    const unsigned char *digits = q;
    if (*q == '0') {
        q++;
        if (q < end && IS_DIGIT(*q)) return SYNTAX(ps, q, "leading zeros are not allowed");
    } else {
        while (q < end && IS_DIGIT(*q)) q++;
    }
    const unsigned char *int_end = q;
    if (q < end && *q == '.') {
        q++;
        if (q >= end || !IS_DIGIT(*q)) return SYNTAX(ps, q, "digit expected after '.'");
        while (q < end && IS_DIGIT(*q)) q++;
        integral = 0;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-')) q++;
        if (q >= end || !IS_DIGIT(*q)) return SYNTAX(ps, q, "digit expected in exponent");
        while (q < end && IS_DIGIT(*q)) q++;
        integral = 0;
    }
    node->type = JSON_NUMBER;
    if (integral && int_end - digits <= 19) {
        uint64_t mag = 0; /* 19 digits always fit in uint64 */
        for (const unsigned char *d = digits; d < int_end; d++) mag = mag * 10 + (uint64_t)(*d - '0');
        if (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX) {
            node->is_int = 1;
            node->integer = neg ? (int64_t)(0 - mag) : (int64_t)mag;
            node->number = (neg && mag == 0) ? -0.0 : (double)node->integer;
            ps->p = q;
            return 0;
        }
    }
    /* strtod wants a NUL-terminated copy; the text is ours to bound. */
    char tmp[64], *copy = tmp;
    size_t n = (size_t)(q - s);
    if (n >= sizeof tmp) {
        copy = eg_malloc(n + 1);
        if (!copy) return NOMEM(ps);
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    double v = strtod(copy, NULL);
    if (copy != tmp) eg_free(copy);
    if (v > 1.7976931348623157e308 || v < -1.7976931348623157e308)
        return SYNTAX(ps, s, "number out of range");
    node->number = v;
    ps->p = q;
    return 0;
}

static int parse_value(parser_t *ps, json_t **out);

static int parse_array(parser_t *ps, json_t *node)
{
    size_t cap = 0;
    int rc;
    node->type = JSON_ARRAY;
    if (++ps->depth > JSON_MAX_DEPTH) return SYNTAX(ps, ps->p, "nesting too deep");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (;;) {
        json_t *child = NULL;
        if ((rc = parse_value(ps, &child))) return rc; /* node freed by caller */
        if (eg_grow((void **)&node->items, &cap, node->len, sizeof *node->items)) {
            json_free(child);
            return NOMEM(ps);
        }
        node->items[node->len++] = child;
        skip_ws(ps);
        if (ps->p >= ps->end) return SYNTAX(ps, ps->p, "unterminated array");
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == ']') { ps->p++; break; }
        return SYNTAX(ps, ps->p, "expected ',' or ']'");
    }
    ps->depth--;
    return 0;
}

static int parse_object(parser_t *ps, json_t *node)
{
    size_t cap = 0;
    int rc;
    node->type = JSON_OBJECT;
    if (++ps->depth > JSON_MAX_DEPTH) return SYNTAX(ps, ps->p, "nesting too deep");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        ps->depth--;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t klen = 0;
        json_t *child = NULL;
        skip_ws(ps);
        if (ps->p >= ps->end) return SYNTAX(ps, ps->p, "unterminated object");
        if (*ps->p != '"') return SYNTAX(ps, ps->p, "expected a string key");
        if ((rc = parse_string(ps, &key, &klen))) return rc;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            eg_free(key);
            return SYNTAX(ps, ps->p, "expected ':'");
        }
        ps->p++;
        if ((rc = parse_value(ps, &child))) {
            eg_free(key);
            return rc;
        }
        if (node->len == cap) {
            /* All three arrays must grow before any is used at the new size. */
            size_t c1 = cap, c2 = cap, c3 = cap;
            if (eg_grow((void **)&node->items, &c1, node->len, sizeof *node->items) ||
                eg_grow((void **)&node->keys, &c2, node->len, sizeof *node->keys) ||
                eg_grow((void **)&node->key_lens, &c3, node->len, sizeof *node->key_lens)) {
                eg_free(key);
                json_free(child);
                return NOMEM(ps);
            }
            cap = c1;
        }
        node->items[node->len] = child;
        node->keys[node->len] = key;
        node->key_lens[node->len] = klen;
        node->len++;
        skip_ws(ps);
        if (ps->p >= ps->end) return SYNTAX(ps, ps->p, "unterminated object");
        if (*ps->p == ',') { ps->p++; continue; }
        if (*ps->p == '}') { ps->p++; break; }
        return SYNTAX(ps, ps->p, "expected ',' or '}'");
    }
    ps->depth--;
    return 0;
}

static int parse_literal(parser_t *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return SYNTAX(ps, ps->p, "invalid literal");
    ps->p += n;
    return 0;
}

static int parse_value(parser_t *ps, json_t **out)
{
    int rc;
    skip_ws(ps);
    if (ps->p >= ps->end) return SYNTAX(ps, ps->p, "unexpected end of input");
    json_t *node = eg_calloc(1, sizeof *node);
    if (!node) return NOMEM(ps);
    unsigned c = *ps->p;
    switch (c) {
    case '{': rc = parse_object(ps, node); break;
    case '[': rc = parse_array(ps, node); break;
    case '"':
        node->type = JSON_STRING;
        rc = parse_string(ps, &node->str, &node->len);
        break;
    case 't':
        node->type = JSON_BOOL;
        node->boolean = 1;
        rc = parse_literal(ps, "true", 4);
        break;
    case 'f':
        node->type = JSON_BOOL;
        rc = parse_literal(ps, "false", 5);
        break;
    case 'n':
        node->type = JSON_NULL;
        rc = parse_literal(ps, "null", 4);
        break;
    default:
        node->type = JSON_NULL;
        if (c == '-' || IS_DIGIT(c)) {
            rc = parse_number(ps, node);
        } else if (c == '+' || c == '.' || c == 'N' || c == 'I') {
            rc = SYNTAX(ps, ps->p, "invalid number");
        } else if (c >= 0x80 && utf8_decode((const char *)ps->p, (size_t)(ps->end - ps->p), NULL) <= 0) {
            rc = SYNTAX(ps, ps->p, "invalid UTF-8");
        } else {
            rc = SYNTAX(ps, ps->p, "unexpected character");
        }
        break;
    }
    if (rc) goto fail;
    *out = node;
    return 0;
fail:
    json_free(node);
    return rc;
}

int json_parse(const char *text, size_t len, json_t **out, json_error_t *err)
{
    parser_t ps;
    json_t *root = NULL;
    int rc;
    if (!out || (!text && len)) return ENGRAM_EINVAL;
    *out = NULL;
    if (err) {
        err->offset = 0;
        err->message[0] = '\0';
    }
    ps.start = ps.p = (const unsigned char *)(text ? text : "");
    ps.end = ps.start + len;
    ps.err = err;
    ps.depth = 0;
    if ((rc = parse_value(&ps, &root))) goto fail;
    skip_ws(&ps);
    if (ps.p < ps.end) {
        rc = SYNTAX(&ps, ps.p, "unexpected data after the value");
        goto fail;
    }
    *out = root;
    return 0;
fail:
    json_free(root);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */
/* ------------------------------------------------------------------ */

const json_t *json_get(const json_t *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    /* Backwards: the last duplicate wins. */
    for (size_t i = obj->len; i-- > 0;) {
        if (obj->key_lens[i] == n && memcmp(obj->keys[i], key, n) == 0) return obj->items[i];
    }
    return NULL;
}

const char *json_get_str(const json_t *obj, const char *key)
{
    const json_t *v = json_get(obj, key);
    return v && v->type == JSON_STRING ? v->str : NULL;
}

int json_get_int(const json_t *obj, const char *key, int64_t *out)
{
    const json_t *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) return ENGRAM_ENOTFOUND;
    if (v->type != JSON_NUMBER || !v->is_int) return ENGRAM_EINVAL;
    *out = v->integer;
    return 0;
}

int json_get_double(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_get(obj, key);
    if (!v || v->type == JSON_NULL) return ENGRAM_ENOTFOUND;
    if (v->type != JSON_NUMBER) return ENGRAM_EINVAL;
    *out = v->number;
    return 0;
}

const json_t *json_at(const json_t *arr, size_t i)
{
    if (!arr || arr->type != JSON_ARRAY || i >= arr->len) return NULL;
    return arr->items[i];
}

int json_equal(const json_t *a, const json_t *b)
{
    if (!a || !b) return a == b;
    if (a->type != b->type) return 0;
    switch (a->type) {
    case JSON_NULL: return 1;
    case JSON_BOOL: return !a->boolean == !b->boolean;
    case JSON_NUMBER:
        if (a->is_int && b->is_int) return a->integer == b->integer;
        return a->number == b->number;
    case JSON_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_ARRAY:
    case JSON_OBJECT:
        if (a->len != b->len) return 0;
        for (size_t i = 0; i < a->len; i++) {
            if (a->type == JSON_OBJECT &&
                (a->key_lens[i] != b->key_lens[i] || memcmp(a->keys[i], b->keys[i], a->key_lens[i])))
                return 0;
            if (!json_equal(a->items[i], b->items[i])) return 0;
        }
        return 1;
    }
    return 0;
}

json_t *json_clone(const json_t *j)
{
    if (!j) return NULL;
    json_t *c = eg_calloc(1, sizeof *c);
    if (!c) return NULL;
    *c = *j;
    c->str = NULL;
    c->items = NULL;
    c->keys = NULL;
    c->key_lens = NULL;
    switch (j->type) {
    case JSON_STRING:
        c->len = 0;
        if (!(c->str = eg_malloc(j->len + 1))) goto fail;
        memcpy(c->str, j->str, j->len + 1);
        c->len = j->len;
        break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        c->len = 0; /* counts what is owned so far, for the fail path */
        if (j->len == 0) break;
        if (!(c->items = eg_calloc(j->len, sizeof *c->items))) goto fail;
        if (j->type == JSON_OBJECT) {
            if (!(c->keys = eg_calloc(j->len, sizeof *c->keys))) goto fail;
            if (!(c->key_lens = eg_calloc(j->len, sizeof *c->key_lens))) goto fail;
        }
        for (size_t i = 0; i < j->len; i++) {
            json_t *item = json_clone(j->items[i]);
            if (!item) goto fail;
            if (j->type == JSON_OBJECT) {
                char *k = eg_malloc(j->key_lens[i] + 1);
                if (!k) {
                    json_free(item);
                    goto fail;
                }
                memcpy(k, j->keys[i], j->key_lens[i] + 1);
                c->keys[i] = k;
                c->key_lens[i] = j->key_lens[i];
            }
            c->items[i] = item;
            c->len = i + 1;
        }
        break;
    default:
        break;
    }
    return c;
fail:
    json_free(c);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Writer                                                              */
/* ------------------------------------------------------------------ */

void json_escape(buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    static const char repl[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    size_t i = 0, run = 0;
    buf_putc(b, '"');
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (c >= 0x80) {
            int k = utf8_decode(s + i, n - i, NULL);
            if (k > 0) {
                i += (size_t)k;
                continue;
            }
            /* Ill-formed bytes would make the output invalid JSON. */
            buf_append(b, s + run, i - run);
            buf_append(b, repl, sizeof repl);
            i += (size_t)(-k);
            run = i;
            continue;
        }
        buf_append(b, s + run, i - run);
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\t': esc[1] = 't'; break;
        case '\r': esc[1] = 'r'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        buf_append(b, esc, elen);
        i++;
        run = i;
    }
    buf_append(b, s + run, n - run);
    buf_putc(b, '"');
}

void jw_init(jw_t *w, buf_t *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
}

/* Emits the separator a new value needs at the current level. */
static void jw_before_value(jw_t *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > JSON_MAX_DEPTH) return;
    if (w->need_comma[w->depth]) buf_putc(w->b, ',');
    w->need_comma[w->depth] = 1;
}

static void jw_open(jw_t *w, char c)
{
    jw_before_value(w);
    buf_putc(w->b, c);
    w->depth++;
    if (w->depth > JSON_MAX_DEPTH) {
        if (!w->b->err) w->b->err = ENGRAM_EINVAL;
        return;
    }
    w->need_comma[w->depth] = 0;
}

static void jw_close(jw_t *w, char c)
{
    buf_putc(w->b, c);
    w->after_key = 0;
    if (w->depth > 0) w->depth--;
}

void jw_obj_begin(jw_t *w) { jw_open(w, '{'); }
void jw_obj_end(jw_t *w) { jw_close(w, '}'); }
void jw_arr_begin(jw_t *w) { jw_open(w, '['); }
void jw_arr_end(jw_t *w) { jw_close(w, ']'); }

static void jw_keyn(jw_t *w, const char *key, size_t n)
{
    jw_before_value(w);
    json_escape(w->b, key, n);
    buf_putc(w->b, ':');
    w->after_key = 1;
}

void jw_key(jw_t *w, const char *key) { jw_keyn(w, key ? key : "", key ? strlen(key) : 0); }

void jw_strn(jw_t *w, const char *s, size_t n)
{
    jw_before_value(w);
    if (!s) {
        buf_append(w->b, "null", 4);
        return;
    }
    json_escape(w->b, s, n);
}

void jw_str(jw_t *w, const char *s) { jw_strn(w, s, s ? strlen(s) : 0); }

/* Integers are the most common numbers in our output; printf is several
 * times slower than this. */
static void write_u64(buf_t *b, uint64_t v, int neg)
{
    char tmp[24], *p = tmp + sizeof tmp;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg) *--p = '-';
    buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

void jw_int(jw_t *w, int64_t v)
{
    jw_before_value(w);
    write_u64(w->b, v < 0 ? 0 - (uint64_t)v : (uint64_t)v, v < 0);
}

void jw_uint(jw_t *w, uint64_t v)
{
    jw_before_value(w);
    write_u64(w->b, v, 0);
}

static void write_double(buf_t *b, double v)
{
    if (v != v || v > 1.7976931348623157e308 || v < -1.7976931348623157e308) {
        buf_append(b, "null", 4);
        return;
    }
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && (double)(int64_t)v == v) {
        int64_t i = (int64_t)v;
        write_u64(b, i < 0 ? 0 - (uint64_t)i : (uint64_t)i, i < 0);
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    buf_puts(b, tmp);
}

void jw_double(jw_t *w, double v)
{
    jw_before_value(w);
    write_double(w->b, v);
}

void jw_bool(jw_t *w, int v)
{
    jw_before_value(w);
    if (v) buf_append(w->b, "true", 4);
    else buf_append(w->b, "false", 5);
}

void jw_null(jw_t *w)
{
    jw_before_value(w);
    buf_append(w->b, "null", 4);
}

void jw_raw(jw_t *w, const char *json, size_t n)
{
    jw_before_value(w);
    buf_append(w->b, json, n);
}

void jw_json(jw_t *w, const json_t *j)
{
    if (!j) {
        jw_null(w);
        return;
    }
    switch (j->type) {
    case JSON_NULL: jw_null(w); break;
    case JSON_BOOL: jw_bool(w, j->boolean); break;
    case JSON_NUMBER:
        if (j->is_int) jw_int(w, j->integer);
        else jw_double(w, j->number);
        break;
    case JSON_STRING: jw_strn(w, j->str, j->len); break;
    case JSON_ARRAY:
        jw_arr_begin(w);
        for (size_t i = 0; i < j->len; i++) jw_json(w, j->items[i]);
        jw_arr_end(w);
        break;
    case JSON_OBJECT:
        jw_obj_begin(w);
        for (size_t i = 0; i < j->len; i++) {
            jw_keyn(w, j->keys[i], j->key_lens[i]);
            jw_json(w, j->items[i]);
        }
        jw_obj_end(w);
        break;
    }
}

void json_write(buf_t *b, const json_t *j)
{
    jw_t w;
    jw_init(&w, b);
    jw_json(&w, j);
}

void jw_kstr(jw_t *w, const char *key, const char *s)
{
    jw_key(w, key);
    jw_str(w, s);
}

void jw_kint(jw_t *w, const char *key, int64_t v)
{
    jw_key(w, key);
    jw_int(w, v);
}

void jw_kdouble(jw_t *w, const char *key, double v)
{
    jw_key(w, key);
    jw_double(w, v);
}

void jw_kbool(jw_t *w, const char *key, int v)
{
    jw_key(w, key);
    jw_bool(w, v);
}

void jw_knull(jw_t *w, const char *key)
{
    jw_key(w, key);
    jw_null(w);
}
