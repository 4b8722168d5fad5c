/*
 * extract_html.c - visible text and headings from real-world HTML.
 *
 * A hand-written, lenient tokenizer in one forward pass; no tree is built,
 * so nesting costs nothing and there is no recursion. Why not a library:
 * Debian's libgumbo (Google's HTML5 parser, Apache-2.0) is correct but
 * unmaintained upstream since 2016 and builds a full DOM per document; all
 * we need is "which bytes are visible text, where do blocks and headings
 * start", which a tokenizer answers in one pass and a few hundred lines
 * that we fuzz ourselves.
 *
 * What the tokenizer recognises, following the HTML5 tokenizer loosely:
 *   - "<" + letter opens a start tag, "</" + letter an end tag; attributes
 *     are skipped with their quotes honoured. A tag not closed before the
 *     end of the input is dropped with the rest (as browsers do), which
 *     also keeps the pass linear.
 *   - "<!--" opens a comment ending at "-->" (or the end of the input);
 *     "<!" and "<?" anything else is a bogus comment ending at ">".
 *   - any other "<" is text.
 *   - script, style, noscript, iframe, noembed, noframes, xmp: raw text up
 *     to the matching end tag, never shown. title and textarea: text with
 *     entities but no tags (title becomes the result's title). template:
 *     parsed, but nothing inside is shown (nesting counted).
 *   - entities: numeric (decimal, hex; windows-1252 remapping of 128-159,
 *     invalid ones become U+FFFD) and named (HTML 4's set: Latin-1, Greek,
 *     punctuation, arrows, maths), with or without ';' for the old ones.
 *
 * Layout: whitespace runs collapse to one space outside <pre>/<textarea>;
 * block elements end lines (div, li, tr, br, ...) or paragraphs (p,
 * headings, lists, tables, ...); table cells in a row are joined by " | ".
 * h1-h6 open a section whose heading is the heading's text. The input is
 * assumed UTF-8 (invalid bytes become U+FFFD: a legacy-encoded page loses
 * its accented letters, not its words).
 */
#include <string.h>
#include <strings.h>

#include "ingest/extract_internal.h"
#include "util/common.h"
#include "util/utf8.h"

enum {
    K_INLINE = 0, K_RAW, K_TITLE, K_TEXTAREA, K_TEMPLATE, K_PARA, K_LINE, K_BR,
    K_HEAD, K_CELL, K_ROW, K_PRE, K_PLAINTEXT,
};

#define HEADING_MAX 1024
#define TITLE_MAX 4096

static const struct { const char *name; unsigned char kind; } tags[] = {
    {"script", K_RAW}, {"style", K_RAW}, {"noscript", K_RAW}, {"iframe", K_RAW},
    {"noembed", K_RAW}, {"noframes", K_RAW}, {"xmp", K_RAW},
    {"title", K_TITLE}, {"textarea", K_TEXTAREA}, {"template", K_TEMPLATE},
    {"plaintext", K_PLAINTEXT}, {"pre", K_PRE}, {"listing", K_PRE},
    {"h1", K_HEAD}, {"h2", K_HEAD}, {"h3", K_HEAD}, {"h4", K_HEAD}, {"h5", K_HEAD}, {"h6", K_HEAD},
    {"td", K_CELL}, {"th", K_CELL}, {"tr", K_ROW}, {"br", K_BR},
    {"p", K_PARA}, {"table", K_PARA}, {"ul", K_PARA}, {"ol", K_PARA}, {"dl", K_PARA},
    {"blockquote", K_PARA}, {"section", K_PARA}, {"article", K_PARA}, {"header", K_PARA},
    {"footer", K_PARA}, {"nav", K_PARA}, {"aside", K_PARA}, {"main", K_PARA},
    {"figure", K_PARA}, {"form", K_PARA}, {"fieldset", K_PARA}, {"address", K_PARA},
    {"details", K_PARA}, {"hr", K_PARA}, {"body", K_PARA}, {"caption", K_PARA},
    {"center", K_PARA}, {"menu", K_PARA}, {"hgroup", K_PARA},
    {"div", K_LINE}, {"li", K_LINE}, {"dt", K_LINE}, {"dd", K_LINE}, {"figcaption", K_LINE},
    {"summary", K_LINE}, {"option", K_LINE}, {"legend", K_LINE}, {"thead", K_LINE},
    {"tbody", K_LINE}, {"tfoot", K_LINE}, {"label", K_INLINE}, {"img", K_INLINE},
};

/* Names of U+00A0..U+00FF in order (HTML 4 Latin-1 entities). */
static const char *const latin1[96] = {
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave",
    "Eacute", "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve",
    "Oacute", "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml",
    "Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig",
    "ccedil", "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth",
    "ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
    "uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
};

/* Greek capitals from U+0391 and small letters from U+03B1 (NULL: none). */
static const char *const greek[25] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", NULL, "sigma", "tau", "upsilon", "phi",
    "chi", "psi", "omega",
};

static const struct { const char *name; uint32_t cp; } named[] = {
    {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
    {"sigmaf", 0x3C2}, {"thetasym", 0x3D1}, {"upsih", 0x3D2}, {"piv", 0x3D6},
    {"OElig", 0x152}, {"oelig", 0x153}, {"Scaron", 0x160}, {"scaron", 0x161}, {"Yuml", 0x178},
    {"fnof", 0x192}, {"circ", 0x2C6}, {"tilde", 0x2DC}, {"ensp", 0x2002}, {"emsp", 0x2003},
    {"thinsp", 0x2009}, {"zwnj", 0x200C}, {"zwj", 0x200D}, {"lrm", 0x200E}, {"rlm", 0x200F},
    {"ndash", 0x2013}, {"mdash", 0x2014}, {"lsquo", 0x2018}, {"rsquo", 0x2019},
    {"sbquo", 0x201A}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"bdquo", 0x201E},
    {"dagger", 0x2020}, {"Dagger", 0x2021}, {"bull", 0x2022}, {"hellip", 0x2026},
    {"permil", 0x2030}, {"prime", 0x2032}, {"Prime", 0x2033}, {"lsaquo", 0x2039},
    {"rsaquo", 0x203A}, {"oline", 0x203E}, {"frasl", 0x2044}, {"euro", 0x20AC},
    {"image", 0x2111}, {"weierp", 0x2118}, {"real", 0x211C}, {"trade", 0x2122},
    {"alefsym", 0x2135}, {"larr", 0x2190}, {"uarr", 0x2191}, {"rarr", 0x2192},
    {"darr", 0x2193}, {"harr", 0x2194}, {"crarr", 0x21B5}, {"lArr", 0x21D0}, {"uArr", 0x21D1},
    {"rArr", 0x21D2}, {"dArr", 0x21D3}, {"hArr", 0x21D4}, {"forall", 0x2200},
    {"part", 0x2202}, {"exist", 0x2203}, {"empty", 0x2205}, {"nabla", 0x2207},
    {"isin", 0x2208}, {"notin", 0x2209}, {"ni", 0x220B}, {"prod", 0x220F}, {"sum", 0x2211},
    {"minus", 0x2212}, {"lowast", 0x2217}, {"radic", 0x221A}, {"prop", 0x221D},
    {"infin", 0x221E}, {"ang", 0x2220}, {"and", 0x2227}, {"or", 0x2228}, {"cap", 0x2229},
    {"cup", 0x222A}, {"int", 0x222B}, {"there4", 0x2234}, {"sim", 0x223C}, {"cong", 0x2245},
    {"asymp", 0x2248}, {"ne", 0x2260}, {"equiv", 0x2261}, {"le", 0x2264}, {"ge", 0x2265},
    {"sub", 0x2282}, {"sup", 0x2283}, {"nsub", 0x2284}, {"sube", 0x2286}, {"supe", 0x2287},
    {"oplus", 0x2295}, {"otimes", 0x2297}, {"perp", 0x22A5}, {"sdot", 0x22C5},
    {"lceil", 0x2308}, {"rceil", 0x2309}, {"lfloor", 0x230A}, {"rfloor", 0x230B},
    {"lang", 0x2329}, {"rang", 0x232A}, {"loz", 0x25CA}, {"spades", 0x2660},
    {"clubs", 0x2663}, {"hearts", 0x2665}, {"diams", 0x2666},
};

/* Windows-1252 meanings of numeric references 128..159 (0: keep). */
static const uint16_t cp1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
    0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

/* Looks a name up; 0 when unknown. */
static uint32_t entity_lookup(const char *name, size_t n)
{
    for (size_t i = 0; i < 96; i++)
        if (latin1[i][0] == name[0] && strlen(latin1[i]) == n && memcmp(latin1[i], name, n) == 0)
            return 0xA0 + (uint32_t)i;
    for (size_t i = 0; i < 25; i++) {
        if (!greek[i] || strlen(greek[i]) != n) continue;
        if (memcmp(greek[i], name, n) == 0) return 0x3B1 + (uint32_t)i;
        /* capitals: the same name with its first letter upper-case */
        if (name[0] == greek[i][0] - 32 && memcmp(greek[i] + 1, name + 1, n - 1) == 0)
            return 0x391 + (uint32_t)i;
    }
    for (size_t i = 0; i < EG_ARRAY_LEN(named); i++)
        if (named[i].name[0] == name[0] && strlen(named[i].name) == n &&
            memcmp(named[i].name, name, n) == 0)
            return named[i].cp;
    return 0;
}

static int is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Decodes the reference at s[i] == '&'. Returns the bytes consumed (0: not
 * a reference, the '&' is literal) and the code point in *cp. */
static size_t entity_decode(const char *s, size_t n, size_t i, uint32_t *cp)
{
    size_t j = i + 1;
    if (j < n && s[j] == '#') {
        j++;
        int hex = j < n && (s[j] == 'x' || s[j] == 'X');
        if (hex) j++;
        size_t d0 = j;
        uint32_t v = 0;
        int over = 0;
        for (; j < n; j++) {
            unsigned char c = (unsigned char)s[j];
            int dv;
            if (c >= '0' && c <= '9') dv = c - '0';
            else if (hex && c >= 'a' && c <= 'f') dv = c - 'a' + 10;
            else if (hex && c >= 'A' && c <= 'F') dv = c - 'A' + 10;
            else break;
            if (v > 0x10FFFF) over = 1;
            else v = v * (hex ? 16 : 10) + (uint32_t)dv;
        }
        if (j == d0) return 0;
        if (j < n && s[j] == ';') j++;
        if (over || v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) v = 0xFFFD;
        else if (v >= 0x80 && v <= 0x9F && cp1252[v - 0x80]) v = cp1252[v - 0x80];
        *cp = v;
        return j - i;
    }
    while (j < n && j - i <= 10 && is_alnum((unsigned char)s[j])) j++;
    size_t len = j - i - 1;
    if (len == 0) return 0;
    uint32_t v = entity_lookup(s + i + 1, len);
    if (v && j < n && s[j] == ';') { *cp = v; return j + 1 - i; }
    /* Legacy references work without ';' too; try the longest prefix. */
    static const char *const legacy[] = {"amp", "lt", "gt", "quot", "nbsp", "copy", "reg"};
    for (size_t k = 0; k < EG_ARRAY_LEN(legacy); k++) {
        size_t m = strlen(legacy[k]);
        if (m <= len && memcmp(s + i + 1, legacy[k], m) == 0) {
            *cp = entity_lookup(legacy[k], m);
            return m + 1;
        }
    }
    return 0;
}

/* Appends s[0..n) with references decoded to out; U+00A0 becomes a space. */
static void decode_text(const char *s, size_t n, buf_t *out)
{
    size_t i = 0, from = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        if (!amp) break;
        i = (size_t)(amp - s);
        uint32_t cp = 0;
        size_t used = entity_decode(s, n, i, &cp);
        if (!used) { i++; continue; }
        buf_append(out, s + from, i - from);
        char enc[4];
        if (cp == 0xA0) cp = ' ';
        if (cp != 0xAD) buf_append(out, enc, (size_t)utf8_encode(cp, enc)); /* soft hyphen: drop */
        i += used;
        from = i;
    }
    buf_append(out, s + from, n - from);
}

static int is_html_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static int is_alpha(unsigned char c) { return (c | 32) >= 'a' && (c | 32) <= 'z'; }

typedef struct hx {
    xb_t b;
    buf_t tmp;       /* decoded text run */
    buf_t norm;      /* whitespace-collapsed run */
    buf_t heading;   /* text of the open heading */
    buf_t title;
    int in_heading;
    int pre;         /* open pre/listing/textarea elements */
    int hidden;      /* open template elements */
    int cells;       /* cells so far in the current row */
} hx_t;

/* Emits a run of document text s[0..n) (references not yet decoded). */
static void hx_text(hx_t *h, const char *s, size_t n)
{
    if (h->hidden || n == 0) return;
    buf_reset(&h->tmp);
    decode_text(s, n, &h->tmp);
    if (h->tmp.err) { h->b.err = h->tmp.err; return; }
    if (h->in_heading && h->heading.len < HEADING_MAX) {
        buf_append(&h->heading, h->tmp.data, EG_MIN(h->tmp.len, HEADING_MAX));
    }
    if (h->pre) {
        xb_text(&h->b, h->tmp.data, h->tmp.len);
        return;
    }
    buf_reset(&h->norm);
    int ws = 0, lead = 0;
    for (size_t i = 0; i < h->tmp.len; i++) {
        unsigned char c = (unsigned char)h->tmp.data[i];
        if (is_html_ws(c)) { ws = 1; continue; }
        if (ws) {
            if (h->norm.len == 0) lead = 1;
            else buf_putc(&h->norm, ' ');
        }
        ws = 0;
        buf_putc(&h->norm, (char)c);
    }
    if (h->norm.err) { h->b.err = h->norm.err; return; }
    if (lead || (ws && h->norm.len == 0)) xb_space(&h->b);
    xb_text(&h->b, h->norm.data, h->norm.len);
    if (ws && h->norm.len) xb_space(&h->b);
}

static int tag_kind(const char *name)
{
    for (size_t i = 0; i < EG_ARRAY_LEN(tags); i++)
        if (tags[i].name[0] == name[0] && strcmp(tags[i].name, name) == 0) return tags[i].kind;
    return K_INLINE;
}

static void hx_end_heading(hx_t *h)
{
    if (!h->in_heading) return;
    h->in_heading = 0;
    xb_heading(&h->b, h->heading.data ? h->heading.data : "", h->heading.len);
    buf_reset(&h->heading);
    xb_para(&h->b);
}

/* Finds the end of raw text: the offset of "</name" followed by a
 * delimiter, at or after i; n when there is none. */
static size_t raw_end(const char *s, size_t n, size_t i, const char *name)
{
    size_t m = strlen(name);
    while (i < n) {
        const char *lt = memchr(s + i, '<', n - i);
        if (!lt) return n;
        size_t k = (size_t)(lt - s);
        if (k + 2 + m <= n && s[k + 1] == '/' && strncasecmp(s + k + 2, name, m) == 0 &&
            (k + 2 + m == n || is_html_ws((unsigned char)s[k + 2 + m]) || s[k + 2 + m] == '>' ||
             s[k + 2 + m] == '/'))
            return k;
        i = k + 1;
    }
    return n;
}

/* Skips a tag's attributes from i; returns the offset just past '>', or 0
 * when the input ends first. */
static size_t skip_attrs(const char *s, size_t n, size_t i)
{
    while (i < n) {
        char c = s[i];
        if (c == '>') return i + 1;
        if (c == '"' || c == '\'') {
            const char *q = memchr(s + i + 1, c, n - i - 1);
            if (!q) return 0;
            i = (size_t)(q - s) + 1;
            continue;
        }
        i++;
    }
    return 0;
}

static void hx_start(hx_t *h, int kind, const char *name, const char *s, size_t n, size_t *pos)
{
    switch (kind) {
    case K_RAW: case K_TITLE: {
        size_t e = raw_end(s, n, *pos, name);
        if (kind == K_TITLE && !h->hidden && h->title.len == 0)
            decode_text(s + *pos, EG_MIN(e - *pos, TITLE_MAX), &h->title);
        *pos = e;
        break;
    }
    case K_TEXTAREA: case K_PRE: h->pre++; xb_para(&h->b); break;
    case K_TEMPLATE: h->hidden++; break;
    case K_PLAINTEXT:
        xb_para(&h->b);
        h->pre++;
        hx_text(h, s + *pos, n - *pos);
        *pos = n;
        break;
    case K_HEAD:
        hx_end_heading(h);
        xb_para(&h->b);
        if (h->hidden) break;
        xb_section(&h->b, 0);
        h->in_heading = 1;
        break;
    case K_PARA: hx_end_heading(h); xb_para(&h->b); break;
    case K_LINE: case K_BR: xb_line(&h->b); break;
    case K_ROW: xb_line(&h->b); h->cells = 0; break;
    case K_CELL:
        if (h->cells++ > 0 && !h->hidden) {
            xb_space(&h->b);
            xb_text(&h->b, "| ", 2);
        }
        break;
    default: break;
    }
}

static void hx_end(hx_t *h, int kind)
{
    switch (kind) {
    case K_TEXTAREA: case K_PRE: if (h->pre > 0) h->pre--; xb_para(&h->b); break;
    case K_TEMPLATE: if (h->hidden > 0) h->hidden--; break;
    case K_HEAD: hx_end_heading(h); break;
    case K_PARA: xb_para(&h->b); break;
    case K_LINE: case K_BR: case K_ROW: xb_line(&h->b); break;
    default: break;
    }
}

int extract_html(const char *s, size_t n, const extract_limits_t *lim, extract_result_t *out,
                 char *err, size_t errsz)
{
    hx_t h;
    memset(&h, 0, sizeof h);
    xb_init(&h.b, lim->max_text);
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) { s += 3; n -= 3; }
    size_t i = 0, text_from = 0;
    while (i < n && !h.b.err) {
        const char *lt = memchr(s + i, '<', n - i);
        if (!lt) break;
        size_t k = (size_t)(lt - s);
        i = k + 1;
        if (k + 1 >= n) break;
        char c1 = s[k + 1];
        size_t next;
        if (c1 == '!' && k + 4 <= n && memcmp(s + k, "<!--", 4) == 0) {
            hx_text(&h, s + text_from, k - text_from);
            const char *e = memmem(s + k + 4, n - k - 4, "-->", 3);
            next = e ? (size_t)(e - s) + 3 : n;
            /* "<!-->" and "<!--->" are complete (empty) comments */
            if (k + 4 < n && s[k + 4] == '>') next = k + 5;
            else if (k + 5 < n && s[k + 4] == '-' && s[k + 5] == '>') next = k + 6;
        } else if (c1 == '!' || c1 == '?' || (c1 == '/' && k + 2 < n && s[k + 2] == '>')) {
            hx_text(&h, s + text_from, k - text_from);
            const char *e = memchr(s + k + 1, '>', n - k - 1);
            next = e ? (size_t)(e - s) + 1 : n;
        } else if (is_alpha((unsigned char)c1) ||
                   (c1 == '/' && k + 2 < n && is_alpha((unsigned char)s[k + 2]))) {
            int end = c1 == '/';
            size_t a = k + 1 + (size_t)end, b = a;
            char name[16];
            size_t m = 0;
            while (b < n && !is_html_ws((unsigned char)s[b]) && s[b] != '/' && s[b] != '>') {
                if (m < sizeof name - 1) name[m++] = (char)(s[b] | (is_alpha((unsigned char)s[b]) ? 32 : 0));
                b++;
            }
            if (b - a >= sizeof name) m = 0; /* too long for any tag we know */
            name[m] = '\0';
            next = skip_attrs(s, n, b);
            hx_text(&h, s + text_from, k - text_from);
            if (!next) { text_from = n; break; } /* unclosed tag at the end: dropped */
            int kind = tag_kind(name);
            if (end) {
                hx_end(&h, kind);
            } else {
                hx_start(&h, kind, name, s, n, &next);
                if (next < n && (kind == K_RAW || kind == K_TITLE)) {
                    /* skip the raw element's end tag too */
                    size_t e = skip_attrs(s, n, next + 2);
                    next = e ? e : n;
                }
            }
        } else {
            continue; /* a literal '<' */
        }
        i = text_from = next;
    }
    if (text_from < n) hx_text(&h, s + text_from, n - text_from);
    hx_end_heading(&h);
    buf_free(&h.tmp);
    buf_free(&h.norm);
    buf_free(&h.heading);
    if (h.title.err && !h.b.err) h.b.err = h.title.err;
    int rc = h.b.err;
    if (!rc && h.title.len) out->title = xb_clean_string(h.title.data, h.title.len, &rc);
    buf_free(&h.title);
    if (rc) {
        xb_free(&h.b);
        eg_free(out->title);
        out->title = NULL;
        extract_err(err, errsz, rc == ENGRAM_ETOOBIG ? "the page's text is larger than the limit"
                                                      : "out of memory");
        return rc;
    }
    return xb_finish(&h.b, out);
}
