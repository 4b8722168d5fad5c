/*
 * extract_docx.c - text of Word documents (Office Open XML, .docx).
 *
 * A DOCX file is a zip archive (read by zip.h, with its limits) of XML
 * parts. Three are read, each through expat (libexpat, MIT) with our
 * allocator, a size limit (the part's uncompressed size) and a depth limit,
 * and with any DOCTYPE refused (a DOCX never has one; refusing it removes
 * entity-expansion attacks altogether):
 *
 *   word/styles.xml       which paragraph styles are headings: style id
 *                         "Title" or "HeadingN", a name "title" or
 *                         "heading N" (names stay English in localised
 *                         files), or an outline level;
 *   word/document.xml     the body: paragraphs (w:p) of runs of text (w:t),
 *                         tabs, breaks; tables (w:tbl/w:tr/w:tc);
 *   docProps/core.xml     the title (dc:title), optional.
 *
 * Elements are matched by local name, whatever the namespace prefix.
 * Deleted text (w:delText), field instructions (w:instrText) and the
 * fallback copy of mc:AlternateContent are skipped so nothing appears twice.
 *
 * Layout: a paragraph ends with a blank line; a heading paragraph opens a
 * section named by its text; inside a table, paragraphs of a cell are
 * joined by spaces, cells by " | ", rows end lines.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#include "ingest/extract_internal.h"
#include "ingest/zip.h"
#include "util/common.h"

#define MAX_STYLES 4096
#define STYLE_ID_MAX 64
#define HEADING_MAX 1024

typedef struct dx_style { char id[STYLE_ID_MAX]; int heading; } dx_style_t;

typedef struct dx {
    XML_Parser parser;
    int status;             /* why the parser was stopped, 0 if it was not */
    uint32_t depth, max_depth;
    /* styles.xml */
    dx_style_t *styles;
    size_t n_styles;
    int in_style;           /* inside a paragraph w:style */
    /* document.xml */
    xb_t *b;
    int in_t;               /* inside w:t: character data is text */
    uint32_t skip_depth;    /* > 0: inside a skipped subtree, at that depth */
    int para_heading;       /* the current paragraph is a heading */
    int para_has_text;
    buf_t heading;
    int tables;             /* open w:tbl */
    int cells;              /* cells so far in the current row */
    /* core.xml */
    int in_title;
    buf_t title;
} dx_t;

/* Local name of an expat namespace-expanded name "uri\x01local". */
static const char *local(const char *name)
{
    const char *sep = strrchr(name, '\x01');
    return sep ? sep + 1 : name;
}

/* The value of the attribute with local name lname, or NULL. */
static const char *attr(const char **atts, const char *lname)
{
    for (size_t i = 0; atts[i]; i += 2)
        if (strcmp(local(atts[i]), lname) == 0) return atts[i + 1];
    return NULL;
}

static void dx_stop(dx_t *d, int status)
{
    if (!d->status) d->status = status;
    XML_StopParser(d->parser, XML_FALSE);
}

static int dx_enter(dx_t *d)
{
    if (++d->depth > d->max_depth) {
        dx_stop(d, ENGRAM_ETOOBIG);
        return 0;
    }
    return 1;
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name; (void)sysid; (void)pubid; (void)has_internal;
    dx_stop(ud, ENGRAM_EINVAL);
}

/* ---- styles.xml --------------------------------------------------------- */

static int heading_by_name(const char *s)
{
    if (strcasecmp(s, "title") == 0) return 1;
    if (strncasecmp(s, "heading", 7) == 0) {
        const char *p = s + 7;
        if (*p == ' ') p++;
        if (*p >= '1' && *p <= '9' && p[1] == '\0') return 1;
    }
    return 0;
}

static void XMLCALL st_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    dx_t *d = ud;
    if (!dx_enter(d)) return;
    const char *l = local(name);
    if (strcmp(l, "style") == 0) {
        const char *type = attr(atts, "type"), *id = attr(atts, "styleId");
        d->in_style = 0;
        if (!type || strcmp(type, "paragraph") != 0 || !id || d->n_styles >= MAX_STYLES) return;
        dx_style_t *s = &d->styles[d->n_styles++];
        snprintf(s->id, sizeof s->id, "%s", id);
        s->heading = heading_by_name(id);
        d->in_style = 1;
    } else if (d->in_style && strcmp(l, "name") == 0) {
        const char *v = attr(atts, "val");
        if (v && heading_by_name(v)) d->styles[d->n_styles - 1].heading = 1;
    } else if (d->in_style && strcmp(l, "outlineLvl") == 0) {
        const char *v = attr(atts, "val");
        if (v && v[0] >= '0' && v[0] <= '8') d->styles[d->n_styles - 1].heading = 1;
    }
}

static void XMLCALL st_end(void *ud, const XML_Char *name)
{
    dx_t *d = ud;
    d->depth--;
    if (strcmp(local(name), "style") == 0) d->in_style = 0;
}

static int style_is_heading(const dx_t *d, const char *id)
{
    for (size_t i = 0; i < d->n_styles; i++)
        if (strcmp(d->styles[i].id, id) == 0) return d->styles[i].heading;
    return heading_by_name(id); /* no styles.xml: go by the usual ids */
}

/* ---- document.xml ------------------------------------------------------- */

static void XMLCALL doc_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    dx_t *d = ud;
    if (!dx_enter(d) || d->skip_depth) return;
    const char *l = local(name);
    xb_t *b = d->b;
    if (strcmp(l, "t") == 0) {
        d->in_t = 1;
    } else if (strcmp(l, "p") == 0) {
        d->para_heading = 0;
        d->para_has_text = 0;
        buf_reset(&d->heading);
    } else if (strcmp(l, "pStyle") == 0 || strcmp(l, "outlineLvl") == 0) {
        const char *v = attr(atts, "val");
        int h = v && (l[0] == 'o' ? (v[0] >= '0' && v[0] <= '8') : style_is_heading(d, v));
        if (h && !d->para_has_text && !d->tables) {
            d->para_heading = 1;
            xb_para(b);
            xb_section(b, 0);
        }
    } else if (strcmp(l, "tab") == 0 && !d->in_t) {
        xb_space(b); /* w:tab in a run (w:tabs in pPr holds only stops) */
    } else if (strcmp(l, "br") == 0 || strcmp(l, "cr") == 0) {
        xb_line(b);
    } else if (strcmp(l, "tbl") == 0) {
        d->tables++;
        xb_para(b);
    } else if (strcmp(l, "tr") == 0) {
        xb_line(b);
        d->cells = 0;
    } else if (strcmp(l, "tc") == 0) {
        if (d->cells++ > 0) {
            xb_space(b);
            xb_text(b, "| ", 2);
        }
    } else if (strcmp(l, "delText") == 0 || strcmp(l, "instrText") == 0 ||
               strcmp(l, "Fallback") == 0 || strcmp(l, "tabs") == 0) {
        d->skip_depth = d->depth;
    }
}

static void XMLCALL doc_end(void *ud, const XML_Char *name)
{
    dx_t *d = ud;
    uint32_t depth = d->depth--;
    if (d->skip_depth) {
        if (depth == d->skip_depth) d->skip_depth = 0;
        return;
    }
    const char *l = local(name);
    xb_t *b = d->b;
    if (strcmp(l, "t") == 0) {
        d->in_t = 0;
    } else if (strcmp(l, "p") == 0) {
        if (d->para_heading) {
            xb_heading(b, d->heading.data ? d->heading.data : "", d->heading.len);
            d->para_heading = 0;
        }
        if (d->tables) xb_space(b);
        else xb_para(b);
    } else if (strcmp(l, "tbl") == 0) {
        if (d->tables > 0) d->tables--;
        xb_para(b);
    }
}

static void XMLCALL doc_text(void *ud, const XML_Char *s, int len)
{
    dx_t *d = ud;
    if (!d->in_t || d->skip_depth || len <= 0) return;
    xb_text(d->b, s, (size_t)len);
    d->para_has_text = 1;
    if (d->para_heading && d->heading.len < HEADING_MAX) buf_append(&d->heading, s, (size_t)len);
    if (d->b->err) dx_stop(d, d->b->err);
}

/* ---- core.xml ------------------------------------------------------------ */

static void XMLCALL core_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    dx_t *d = ud;
    (void)atts;
    if (!dx_enter(d)) return;
    d->in_title = strcmp(local(name), "title") == 0;
}

static void XMLCALL core_end(void *ud, const XML_Char *name)
{
    dx_t *d = ud;
    (void)name;
    d->depth--;
    d->in_title = 0;
}

static void XMLCALL core_text(void *ud, const XML_Char *s, int len)
{
    dx_t *d = ud;
    if (d->in_title && len > 0 && d->title.len < HEADING_MAX) buf_append(&d->title, s, (size_t)len);
}

/* ---- driver -------------------------------------------------------------- */

static const XML_Memory_Handling_Suite xml_mem = {eg_malloc, eg_realloc, eg_free};

/* Parses xml[0..n) with the handlers; returns a status, *why set on error. */
static int parse_part(dx_t *d, const unsigned char *xml, size_t n, XML_StartElementHandler st,
                      XML_EndElementHandler en, XML_CharacterDataHandler cd, const char **why)
{
    XML_Parser p = XML_ParserCreate_MM("UTF-8", &xml_mem, "\x01");
    if (!p) { *why = "out of memory"; return ENGRAM_ENOMEM; }
    d->parser = p;
    d->status = 0;
    d->depth = 0;
    XML_SetUserData(p, d);
    XML_SetElementHandler(p, st, en);
    if (cd) XML_SetCharacterDataHandler(p, cd);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    int rc = 0;
    /* n is bounded by max_xml_bytes; feed in int-sized pieces anyway */
    size_t off = 0;
    do {
        size_t k = n - off > (1u << 30) ? (1u << 30) : n - off;
        if (XML_Parse(p, (const char *)xml + off, (int)k, off + k == n) != XML_STATUS_OK) {
            rc = d->status;
            if (!rc) {
                enum XML_Error e = XML_GetErrorCode(p);
                rc = e == XML_ERROR_NO_MEMORY ? ENGRAM_ENOMEM : ENGRAM_EINVAL;
            }
            break;
        }
        off += k;
    } while (off < n);
    if (!rc && d->status) rc = d->status;
    if (rc == ENGRAM_ETOOBIG) *why = "the XML is nested too deeply";
    else if (rc == ENGRAM_ENOMEM) *why = "out of memory";
    else if (rc == ENGRAM_EINVAL && d->b && d->b->err) rc = d->b->err;
    if (rc == ENGRAM_EINVAL) *why = "the document's XML is malformed (truncated or corrupt file?)";
    if (rc == ENGRAM_ETOOBIG && d->b && d->b->err == ENGRAM_ETOOBIG)
        *why = "the document's text is larger than the limit";
    XML_ParserFree(p);
    d->parser = NULL;
    return rc;
}

int extract_docx(const void *bytes, size_t n, const extract_limits_t *lim,
                 extract_result_t *out, char *err, size_t errsz)
{
    zip_t z;
    dx_t d;
    xb_t b;
    unsigned char *part = NULL;
    size_t part_len = 0;
    const char *why = "out of memory";
    memset(&d, 0, sizeof d);
    xb_init(&b, lim->max_text);
    d.max_depth = lim->max_xml_depth;
    int rc = zip_open(&z, bytes, n, lim->max_zip_entries, lim->max_zip_total, lim->max_zip_ratio,
                      &why);
    if (rc) {
        xb_free(&b);
        extract_err(err, errsz, "the DOCX file cannot be read: %s", why);
        return rc == ENGRAM_EUNSUPPORTED ? ENGRAM_EINVAL : rc;
    }
    long doc_idx = zip_find(&z, "word/document.xml");
    if (doc_idx < 0) {
        rc = ENGRAM_EINVAL;
        why = "it has no word/document.xml (not a Word document?)";
        goto fail;
    }

    long st_idx = zip_find(&z, "word/styles.xml");
    if (st_idx >= 0) {
        d.styles = eg_calloc(MAX_STYLES, sizeof *d.styles);
        if (!d.styles) { rc = ENGRAM_ENOMEM; goto fail; }
        rc = zip_read(&z, (size_t)st_idx, lim->max_xml_bytes, &part, &part_len, &why);
        if (!rc) rc = parse_part(&d, part, part_len, st_start, st_end, NULL, &why);
        eg_free(part);
        part = NULL;
        if (rc) goto fail;
    }

    d.b = &b;
    rc = zip_read(&z, (size_t)doc_idx, lim->max_xml_bytes, &part, &part_len, &why);
    if (!rc) rc = parse_part(&d, part, part_len, doc_start, doc_end, doc_text, &why);
    eg_free(part);
    part = NULL;
    if (!rc && b.err) rc = b.err;
    if (rc) {
        if (rc == ENGRAM_ETOOBIG && b.err == ENGRAM_ETOOBIG) why = "its text is larger than the limit";
        goto fail;
    }

    long core_idx = zip_find(&z, "docProps/core.xml");
    if (core_idx >= 0) {
        d.b = NULL;
        /* the title is a nicety: a broken core.xml does not fail the document */
        if (zip_read(&z, (size_t)core_idx, 1u << 20, &part, &part_len, &why) == 0 &&
            parse_part(&d, part, part_len, core_start, core_end, core_text, &why) == 0 &&
            d.title.len > 0 && !d.title.err) {
            out->title = xb_clean_string(d.title.data, d.title.len, &rc);
            if (rc) goto fail;
        }
        eg_free(part);
        part = NULL;
    }
    rc = xb_finish(&b, out);
    if (rc) { why = "out of memory"; goto fail; }
    zip_close(&z);
    eg_free(d.styles);
    buf_free(&d.heading);
    buf_free(&d.title);
    return 0;
fail:
    eg_free(part);
    zip_close(&z);
    eg_free(d.styles);
    buf_free(&d.heading);
    buf_free(&d.title);
    xb_free(&b);
    eg_free(out->title);
    out->title = NULL;
    extract_err(err, errsz, "the DOCX file cannot be read: %s", why);
    return rc;
}
