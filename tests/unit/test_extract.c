/*
 * test_extract.c - type detection and the extractors on small real files
 * made here (extract_fixtures.h): text, Markdown, HTML, DOCX, PDF; and
 * hostile files (zip bombs, too many entries, deep XML, DOCTYPE entities,
 * broken cross-reference tables, encryption, truncation at every length,
 * allocation failures). Every result is checked against extract.h's
 * invariants: valid UTF-8, NUL-terminated, spans covering the text exactly.
 */
#include <stdlib.h>

#include "test.h"
#include "extract_fixtures.h"
#include "ingest/chunk.h"
#include "ingest/detect.h"
#include "ingest/extract.h"
#include "util/common.h"
#include "util/utf8.h"

/* extract.h's invariants; returns 1 when they hold. */
static int result_ok(const extract_result_t *r)
{
    if (!r->text || r->text[r->len] != '\0' || !utf8_valid(r->text, r->len)) return 0;
    if (r->len == 0) return r->n_spans == 0;
    if (r->n_spans == 0 || r->spans[0].start != 0 || r->spans[r->n_spans - 1].end != r->len) return 0;
    for (size_t i = 0; i < r->n_spans; i++) {
        if (r->spans[i].start >= r->spans[i].end) return 0;
        if (i > 0 && r->spans[i].start != r->spans[i - 1].end) return 0;
    }
    return 1;
}

static int run(doc_type_t t, const void *p, size_t n, extract_result_t *r, char *err)
{
    int rc = extract_document(t, p, n, NULL, r, err, 256);
    if (rc == 0 && !result_ok(r)) {
        fprintf(stderr, "  invariants broken for type %d\n", (int)t);
        rc = -1;
    }
    return rc;
}

/* The span holding byte offset off. */
static const extract_span_t *span_at(const extract_result_t *r, size_t off)
{
    for (size_t i = 0; i < r->n_spans; i++)
        if (off >= r->spans[i].start && off < r->spans[i].end) return &r->spans[i];
    return NULL;
}

static const extract_span_t *span_of(const extract_result_t *r, const char *needle)
{
    const char *p = strstr(r->text, needle);
    return p ? span_at(r, (size_t)(p - r->text)) : NULL;
}

/* Extracting every prefix never crashes and either succeeds with valid
 * output or fails with a message. */
static void check_prefixes(doc_type_t t, const char *p, size_t n, size_t step)
{
    for (size_t k = 0; k < n; k += step) {
        char *copy = malloc(k ? k : 1); /* exact size: ASan sees overreads */
        memcpy(copy, p, k);
        extract_result_t r;
        char err[256];
        int rc = extract_document(t, copy, k, NULL, &r, err, sizeof err);
        if (rc == 0) CHECK(result_ok(&r));
        else if (err[0] == '\0') { fprintf(stderr, "  no message at length %zu\n", k); CHECK(0); }
        extract_result_free(&r);
        free(copy);
    }
}

/* ---- detection ---------------------------------------------------------- */

TEST(detect_by_content)
{
    buf_t docx = BUF_INIT, zip = BUF_INIT, pdf = BUF_INIT;
    fx_docx(&docx, "<w:p><w:r><w:t>x</w:t></w:r></w:p>", NULL, NULL, 1);
    fx_zip_t z = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&z, "notes.txt", "word/document.xml is only mentioned here", 0);
    fx_zip_finish(&z);
    zip = z.data;
    const char *pages[] = {"hi"};
    fx_pdf(&pdf, pages, 1, NULL, 0, 0);
    CHECK_EQ_INT(detect_type(docx.data, docx.len, "x.zip", NULL), DOC_DOCX);
    CHECK_EQ_INT(detect_type(zip.data, zip.len, "x.docx", NULL), DOC_ZIP);
    /* a truncated DOCX is still a DOCX (so it fails with a DOCX message) */
    CHECK_EQ_INT(detect_type(docx.data, docx.len / 2, NULL, NULL), DOC_DOCX);
    CHECK_EQ_INT(detect_type(pdf.data, pdf.len, "x.txt", NULL), DOC_PDF);
    CHECK_EQ_INT(detect_type("\x89PNG\r\n\x1a\n....", 12, NULL, NULL), DOC_PNG);
    CHECK_EQ_INT(detect_type("\xff\xd8\xff\xe0....", 8, NULL, NULL), DOC_JPEG);
    CHECK_EQ_INT(detect_type("II*\0....", 8, NULL, NULL), DOC_TIFF);
    const char *h1 = "<!-- generated -->\n<div class=x><p>Hello</p></div>";
    CHECK_EQ_INT(detect_type(h1, strlen(h1), "a.txt", NULL), DOC_HTML);
    const char *h2 = "<!doctype html><p>x";
    CHECK_EQ_INT(detect_type(h2, strlen(h2), "README.md", NULL), DOC_HTML);
    const char *md = "<p align=\"center\"><img src=logo.png></p>\n\n# Project\n";
    CHECK_EQ_INT(detect_type(md, strlen(md), "README.md", NULL), DOC_MARKDOWN);
    const char *txt = "a < b and c > d, plainly";
    CHECK_EQ_INT(detect_type(txt, strlen(txt), NULL, NULL), DOC_TEXT);
    buf_free(&docx);
    buf_free(&zip);
    buf_free(&pdf);
}

TEST(supported_types_and_unsupported_messages)
{
    CHECK(extract_supported(DOC_TEXT) && extract_supported(DOC_MARKDOWN));
    CHECK(extract_supported(DOC_HTML) && extract_supported(DOC_DOCX));
    CHECK(!extract_supported(DOC_ZIP) && !extract_supported(DOC_BINARY));
    CHECK(!extract_supported(DOC_GIF) && !extract_supported(DOC_GZIP));
#ifdef ENGRAM_NO_PDF
    CHECK(!extract_supported(DOC_PDF));
#else
    CHECK(extract_supported(DOC_PDF));
#endif
    extract_result_t r;
    char err[256];
#ifdef ENGRAM_WITH_OCR
    CHECK(extract_supported(DOC_PNG) && extract_supported(DOC_JPEG) && extract_supported(DOC_TIFF));
#else
    CHECK(!extract_supported(DOC_PNG) && !extract_supported(DOC_JPEG) && !extract_supported(DOC_TIFF));
    CHECK_EQ_INT(extract_document(DOC_PNG, "\x89PNG\r\n\x1a\n", 8, NULL, &r, err, sizeof err),
                 ENGRAM_EUNSUPPORTED);
    CHECK_STR(err, "OCR is not available in this build");
#endif
    CHECK_EQ_INT(extract_document(DOC_ZIP, "PK\3\4", 4, NULL, &r, err, sizeof err),
                 ENGRAM_EUNSUPPORTED);
    CHECK(strstr(err, "zip") != NULL);
    CHECK_EQ_INT(extract_document(DOC_TEXT, NULL, 1, NULL, &r, err, sizeof err), ENGRAM_EINVAL);
}

/* ---- text and Markdown -------------------------------------------------- */

TEST(text_repairs_utf8_and_drops_bom)
{
    const char in[] = "\xEF\xBB\xBF" "caf\xC3\xA9 \xFF bad \xC3 end";
    extract_result_t r;
    char err[256];
    REQUIRE(run(DOC_TEXT, in, sizeof in - 1, &r, err) == 0);
    CHECK_STR(r.text, "caf\xC3\xA9 \xEF\xBF\xBD bad \xEF\xBF\xBD end");
    CHECK_EQ_INT(r.n_spans, 1);
    CHECK(r.spans[0].heading == NULL && r.spans[0].page == 0);
    CHECK(r.title == NULL);
    extract_result_free(&r);
    REQUIRE(run(DOC_TEXT, "", 0, &r, err) == 0);
    CHECK_EQ_INT(r.len, 0);
    CHECK_STR(r.text, "");
    extract_result_free(&r);
}

TEST(markdown_sections_match_the_chunker)
{
    const char *md = "Preface text.\n\n# Guide #\n\nIntro words.\n\n```\n# not a heading\n```\n\n"
                     "## Install  steps\nRun make.\n\n####### too deep\n### Use\nQuery it.\n";
    extract_result_t r;
    char err[256];
    REQUIRE(run(DOC_MARKDOWN, md, strlen(md), &r, err) == 0);
    CHECK_STR(r.text, md); /* Markdown keeps its bytes */
    CHECK_STR(r.title, "Guide");
    CHECK_EQ_INT(r.n_spans, 4);
    CHECK(span_of(&r, "Preface")->heading == NULL);
    CHECK_STR(span_of(&r, "Intro words")->heading, "Guide");
    CHECK_STR(span_of(&r, "# not a heading")->heading, "Guide");
    CHECK_STR(span_of(&r, "Run make")->heading, "Install  steps");
    CHECK_STR(span_of(&r, "too deep")->heading, "Install  steps");
    CHECK_STR(span_of(&r, "Query it")->heading, "Use");
    CHECK(strncmp(r.text + span_of(&r, "Query it")->start, "### Use", 7) == 0);
    /* the chunker, given the same text, gives each chunk the same heading */
    chunk_span_t *cs;
    size_t n;
    REQUIRE(chunk_text(r.text, r.len, 4, 1, 1, &cs, &n) == 0);
    for (size_t i = 0; i < n; i++) {
        const extract_span_t *s = span_at(&r, cs[i].start);
        REQUIRE(s != NULL);
        if (!s->heading || !cs[i].heading) CHECK(s->heading == cs[i].heading);
        else CHECK_STR(s->heading, cs[i].heading);
    }
    chunk_spans_free(cs, n);
    extract_result_free(&r);
}

TEST(text_limit_is_a_clear_failure)
{
    extract_limits_t lim;
    extract_limits_default(&lim);
    lim.max_text = 10;
    extract_result_t r;
    char err[256];
    CHECK_EQ_INT(extract_document(DOC_TEXT, "0123456789ab", 12, &lim, &r, err, sizeof err),
                 ENGRAM_ETOOBIG);
    CHECK(strstr(err, "limit") != NULL);
    CHECK(r.text == NULL);
    const char *html = "<p>0123456789ab</p>";
    CHECK_EQ_INT(extract_document(DOC_HTML, html, strlen(html), &lim, &r, err, sizeof err),
                 ENGRAM_ETOOBIG);
}

/* ---- HTML ----------------------------------------------------------------- */

static const char html_page[] =
    "<!DOCTYPE html>\n<html><head><title>Caf&eacute; &amp; Co</title>\n"
    "<style>p { color: red } .secret { }</style>\n"
    "<script>var s = \"<p>script text</p>\"; if (a < b) { document.write('</scr' + 'ipt>'); }</script>\n"
    "<script type=module>import x from 'y'</script>\n"
    "</head><body>\n<!-- a comment with <p>commented text</p> -->\n"
    "<p>Before any heading.</p>\n"
    "<h1>Menu &mdash; Drinks</h1>\n<p>Espresso&nbsp;is &lt;strong&gt; &#8364;2 &#x263A; &copy 2024"
    " caf&#233;   au\n   lait&unknown; &amp</p>\n"
    "<noscript>enable javascript</noscript><template><p>template text</p></template>\n"
    "<h2>Prices <small>(2024)</small></h2>\n"
    "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td> 1.50 </td></tr></table>\n"
    "<ul><li>first</li><li>second</li></ul><pre>  keep   spacing\n    here</pre>\n"
    "<div>one<br>two</div><p>inline <b>bold</b><i>italic</i> end</p>\n"
    "</body></html>\n";

TEST(html_visible_text_entities_and_sections)
{
    extract_result_t r;
    char err[256];
    REQUIRE(run(DOC_HTML, html_page, sizeof html_page - 1, &r, err) == 0);
    CHECK_STR(r.title, "Caf\xC3\xA9 & Co");
    const char *hidden[] = {"color", "script text", "import", "commented", "enable javascript",
                            "template text"};
    for (size_t i = 0; i < EG_ARRAY_LEN(hidden); i++)
        if (strstr(r.text, hidden[i])) { fprintf(stderr, "  shown: %s\n", hidden[i]); CHECK(0); }
    CHECK(strstr(r.text, "Espresso is <strong> \xE2\x82\xAC" "2 \xE2\x98\xBA \xC2\xA9 2024 "
                         "caf\xC3\xA9 au lait&unknown; &") != NULL);
    CHECK(strstr(r.text, "Item | Price\nTea | 1.50") != NULL);
    CHECK(strstr(r.text, "first\nsecond") != NULL);
    CHECK(strstr(r.text, "  keep   spacing\n    here") != NULL);
    CHECK(strstr(r.text, "one\ntwo") != NULL);
    CHECK(strstr(r.text, "inline bolditalic end") != NULL);
    const char *start = "Before any heading.\n\nMenu \xE2\x80\x94 Drinks\n\nEspresso";
    CHECK(strncmp(r.text, start, strlen(start)) == 0);
    CHECK(span_of(&r, "Before any")->heading == NULL);
    CHECK_STR(span_of(&r, "Menu")->heading, "Menu \xE2\x80\x94 Drinks");
    CHECK_STR(span_of(&r, "Espresso")->heading, "Menu \xE2\x80\x94 Drinks");
    CHECK_STR(span_of(&r, "Tea")->heading, "Prices (2024)");
    CHECK(r.text[r.len - 1] != '\n' && r.text[0] != ' ');
    extract_result_free(&r);
}

TEST(html_hostile_inputs_end_cleanly)
{
    const char *cases[] = {
        "<p>text <!-- never closed <p>hidden",
        "<script>never closed <p>hidden",
        "<p>visible <a href=\"never closed>hidden",
        "<!--><p>after empty comment</p>",
        "<<<>>> </ > </3 <a <b <",
        "&#0; &#xD800; &#99999999999; &#x110000; &#128; &#; &#x; &",
        "<title>only a title",
        "<h1><h2>nested headings</h1></h2><h3></h3>",
        "<template><template></template>still hidden</template>shown",
        "<table><td>a<td>b<tr><td>c</table>",
        "\xEF\xBB\xBF<p>bom \xFF\xFE bad bytes</p>",
        "<plaintext><p>all of this is text",
    };
    for (size_t i = 0; i < EG_ARRAY_LEN(cases); i++) {
        extract_result_t r;
        char err[256];
        CHECK_EQ_INT(run(DOC_HTML, cases[i], strlen(cases[i]), &r, err), 0);
        if (i <= 2) CHECK(strstr(r.text, "hidden") == NULL);
        extract_result_free(&r);
    }
    extract_result_t r;
    char err[256];
    REQUIRE(run(DOC_HTML, cases[8], strlen(cases[8]), &r, err) == 0);
    CHECK_STR(r.text, "shown");
    extract_result_free(&r);
    REQUIRE(run(DOC_HTML, cases[5], strlen(cases[5]), &r, err) == 0);
    CHECK(strncmp(r.text, "\xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD \xEF\xBF\xBD \xE2\x82\xAC", 15) == 0);
    extract_result_free(&r);
    REQUIRE(run(DOC_HTML, cases[11], strlen(cases[11]), &r, err) == 0);
    CHECK_STR(r.text, "<p>all of this is text");
    extract_result_free(&r);
}

TEST(html_deep_nesting_and_every_prefix)
{
    /* 200,000 nested elements: no tree, no recursion, linear time */
    size_t depth = 200000;
    buf_t deep = BUF_INIT;
    for (size_t i = 0; i < depth; i++) buf_puts(&deep, "<div><span>");
    buf_puts(&deep, "bottom");
    REQUIRE(deep.err == 0);
    extract_result_t r;
    char err[256];
    REQUIRE(run(DOC_HTML, deep.data, deep.len, &r, err) == 0);
    CHECK_STR(r.text, "bottom");
    extract_result_free(&r);
    buf_free(&deep);
    check_prefixes(DOC_HTML, html_page, sizeof html_page - 1, 1);
}

/* ---- DOCX ------------------------------------------------------------------ */

static const char docx_styles[] =
    "<?xml version=\"1.0\"?><w:styles " FX_W_NS ">"
    "<w:style w:type=\"paragraph\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/></w:style>"
    "<w:style w:type=\"paragraph\" w:styleId=\"berschrift1\"><w:name w:val=\"heading 1\"/></w:style>"
    "<w:style w:type=\"paragraph\" w:styleId=\"Heading2\"><w:name w:val=\"heading 2\"/></w:style>"
    "</w:styles>";

static const char docx_body[] =
    "<w:p><w:r><w:t>Opening paragraph</w:t></w:r><w:r><w:t xml:space=\"preserve\"> continues"
    "</w:t></w:r><w:r><w:tab/><w:t>after tab.</w:t></w:r></w:p>"
    "<w:p><w:pPr><w:pStyle w:val=\"berschrift1\"/><w:tabs><w:tab w:pos=\"1\"/></w:tabs></w:pPr>"
    "<w:r><w:t>Results &amp; Data</w:t></w:r></w:p>"
    "<w:p><w:r><w:t>Measured</w:t></w:r><w:r><w:br/><w:t>twice.</w:t></w:r>"
    "<w:del><w:r><w:delText>deleted words</w:delText></w:r></w:del>"
    "<w:r><w:fldChar/><w:instrText>PAGE \\* MERGEFORMAT</w:instrText></w:r></w:p>"
    "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Name</w:t></w:r></w:p></w:tc>"
    "<w:tc><w:p><w:r><w:t>Value</w:t></w:r></w:p></w:tc></w:tr>"
    "<w:tr><w:tc><w:p><w:r><w:t>alpha</w:t></w:r></w:p><w:p><w:r><w:t>beta</w:t></w:r></w:p></w:tc>"
    "<w:tc><w:p><w:r><w:t>42</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"
    "<w:p><w:pPr><w:pStyle w:val=\"Heading2\"/></w:pPr><w:r><w:t>Caf\xC3\xA9 notes</w:t></w:r></w:p>"
    "<w:p><mc:AlternateContent xmlns:mc=\"urn:mc\"><mc:Choice><w:r><w:t>box text</w:t></w:r>"
    "</mc:Choice><mc:Fallback><w:r><w:t>box text</w:t></w:r></mc:Fallback></mc:AlternateContent></w:p>";

TEST(docx_paragraphs_headings_tables)
{
    for (int deflate = 0; deflate <= 1; deflate++) {
        buf_t f = BUF_INIT;
        fx_docx(&f, docx_body, docx_styles, "Lab  Report", deflate);
        REQUIRE(detect_type(f.data, f.len, NULL, NULL) == DOC_DOCX);
        extract_result_t r;
        char err[256] = "";
        int rc = run(DOC_DOCX, f.data, f.len, &r, err);
        if (rc) fprintf(stderr, "  %s\n", err);
        REQUIRE(rc == 0);
        CHECK_STR(r.text, "Opening paragraph continues after tab.\n\nResults & Data\n\n"
                          "Measured\ntwice.\n\nName | Value\nalpha beta | 42\n\n"
                          "Caf\xC3\xA9 notes\n\nbox text");
        CHECK_STR(r.title, "Lab Report");
        CHECK_EQ_INT(r.n_spans, 3);
        CHECK(span_of(&r, "Opening")->heading == NULL);
        CHECK_STR(span_of(&r, "Measured")->heading, "Results & Data");
        CHECK_STR(span_of(&r, "alpha")->heading, "Results & Data");
        CHECK_STR(span_of(&r, "box text")->heading, "Caf\xC3\xA9 notes");
        extract_result_free(&r);
        buf_free(&f);
    }
}

static int docx_fails(const buf_t *f, const extract_limits_t *lim, int want, const char *phrase)
{
    extract_result_t r;
    char err[256] = "";
    int rc = extract_document(DOC_DOCX, f->data, f->len, lim, &r, err, sizeof err);
    extract_result_free(&r);
    if (rc != want || !strstr(err, phrase)) {
        fprintf(stderr, "  got %d \"%s\", wanted %d with \"%s\"\n", rc, err, want, phrase);
        return 0;
    }
    return 1;
}

TEST(docx_zip_bomb_and_limits)
{
    /* 16 MiB of zeros deflates to ~16 KiB: a ratio of about 1000 */
    size_t big = 16u << 20;
    char *zeros = calloc(1, big);
    REQUIRE(zeros != NULL);
    fx_zip_t z = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&z, "[Content_Types].xml", fx_content_types, 1);
    fx_zip_add_ex(&z, "word/document.xml", zeros, big, 1, 0, 0);
    fx_zip_finish(&z);
    free(zeros);
    CHECK(docx_fails(&z.data, NULL, ENGRAM_ETOOBIG, "zip bomb"));
    buf_free(&z.data);

    /* too many entries */
    fx_zip_t m = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&m, "[Content_Types].xml", fx_content_types, 0);
    fx_zip_add(&m, "word/document.xml", "<w:document " FX_W_NS "/>", 0);
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "media/%d.bin", i);
        fx_zip_add(&m, name, "x", 0);
    }
    fx_zip_finish(&m);
    extract_limits_t lim;
    extract_limits_default(&lim);
    lim.max_zip_entries = 100;
    CHECK(docx_fails(&m.data, &lim, ENGRAM_ETOOBIG, "too many entries"));
    buf_free(&m.data);

    /* total and per-part size limits */
    buf_t f = BUF_INIT;
    fx_docx(&f, docx_body, docx_styles, NULL, 1);
    extract_limits_default(&lim);
    lim.max_xml_bytes = 256;
    CHECK(docx_fails(&f, &lim, ENGRAM_ETOOBIG, "larger than the limit"));
    extract_limits_default(&lim);
    lim.max_zip_total = 1024;
    CHECK(docx_fails(&f, &lim, ENGRAM_ETOOBIG, "more than the limit"));
    buf_free(&f);
}

TEST(docx_lying_and_corrupt_entries)
{
    const char *body = "<?xml version=\"1.0\"?><w:document " FX_W_NS "><w:body><w:p><w:r>"
                       "<w:t>some text that is long enough to matter</w:t></w:r></w:p>"
                       "</w:body></w:document>";
    /* declares fewer bytes than it inflates to */
    fx_zip_t z = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&z, "[Content_Types].xml", fx_content_types, 1);
    fx_zip_add_ex(&z, "word/document.xml", body, strlen(body), 1, 20, 0);
    fx_zip_finish(&z);
    CHECK(docx_fails(&z.data, NULL, ENGRAM_EINVAL, "declared size"));
    buf_free(&z.data);
    /* CRC mismatch */
    fx_zip_t c = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&c, "[Content_Types].xml", fx_content_types, 0);
    fx_zip_add_ex(&c, "word/document.xml", body, strlen(body), 0, 0, 1);
    fx_zip_finish(&c);
    CHECK(docx_fails(&c.data, NULL, ENGRAM_EINVAL, "CRC"));
    buf_free(&c.data);
    /* a zip that is not a Word document */
    fx_zip_t o = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&o, "[Content_Types].xml", fx_content_types, 0);
    fx_zip_finish(&o);
    CHECK(docx_fails(&o.data, NULL, ENGRAM_EINVAL, "no word/document.xml"));
    buf_free(&o.data);
    /* malformed XML */
    buf_t f = BUF_INIT;
    fx_docx(&f, "<w:p><w:r><w:t>unclosed</w:r></w:p>", NULL, NULL, 1);
    CHECK(docx_fails(&f, NULL, ENGRAM_EINVAL, "malformed"));
    buf_free(&f);
}

TEST(docx_deep_xml_and_entity_expansion)
{
    buf_t body = BUF_INIT;
    for (int i = 0; i < 100000; i++) buf_puts(&body, "<w:sdt>");
    for (int i = 0; i < 100000; i++) buf_puts(&body, "</w:sdt>");
    buf_t f = BUF_INIT;
    fx_docx(&f, buf_cstr(&body), NULL, NULL, 0); /* stored: deflated, it looks like a bomb */
    CHECK(docx_fails(&f, NULL, ENGRAM_ETOOBIG, "nested too deeply"));
    buf_free(&f);
    buf_free(&body);
    /* a DOCTYPE (billion laughs and friends) is refused outright */
    const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\">"
                      "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
                      "<w:document " FX_W_NS "><w:body><w:p><w:r><w:t>&b;</w:t></w:r></w:p>"
                      "</w:body></w:document>";
    fx_zip_t z = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&z, "[Content_Types].xml", fx_content_types, 0);
    fx_zip_add(&z, "word/document.xml", lol, 1);
    fx_zip_finish(&z);
    CHECK(docx_fails(&z.data, NULL, ENGRAM_EINVAL, "malformed"));
    buf_free(&z.data);
}

TEST(docx_every_prefix_fails_cleanly)
{
    buf_t f = BUF_INIT;
    fx_docx(&f, docx_body, docx_styles, "T", 1);
    check_prefixes(DOC_DOCX, f.data, f.len, 1);
    /* and with random bytes flipped (seeded) */
    unsigned long long seed = test_seed();
    srand((unsigned)seed);
    for (int round = 0; round < 300; round++) {
        char *copy = malloc(f.len);
        memcpy(copy, f.data, f.len);
        for (int k = 0; k < 4; k++) copy[(size_t)rand() % f.len] ^= (char)(1 + rand() % 255);
        extract_result_t r;
        char err[256];
        if (extract_document(DOC_DOCX, copy, f.len, NULL, &r, err, sizeof err) == 0)
            CHECK(result_ok(&r));
        else
            CHECK(err[0] != '\0');
        extract_result_free(&r);
        free(copy);
    }
    buf_free(&f);
}

/* ---- PDF ------------------------------------------------------------------ */

#ifndef ENGRAM_NO_PDF

static const char *const two_pages[] = {
    "Alpha page one heading\nFirst line of the first page.",
    "Beta page two\nSecond page words here.",
};

TEST(pdf_two_pages_with_page_numbers)
{
    buf_t f = BUF_INIT;
    fx_pdf(&f, two_pages, 2, "Quarterly Report", 0, 0);
    REQUIRE(detect_type(f.data, f.len, NULL, NULL) == DOC_PDF);
    extract_result_t r;
    char err[256] = "";
    int rc = run(DOC_PDF, f.data, f.len, &r, err);
    if (rc) fprintf(stderr, "  %s\n", err);
    REQUIRE(rc == 0);
    CHECK_STR(r.title, "Quarterly Report");
    CHECK_EQ_INT(r.n_spans, 2);
    CHECK_EQ_INT(span_of(&r, "First line")->page, 1);
    CHECK_EQ_INT(span_of(&r, "Alpha page")->page, 1);
    CHECK_EQ_INT(span_of(&r, "Second page")->page, 2);
    CHECK(span_of(&r, "Beta")->heading == NULL);
    /* reading order within and across pages */
    const char *a = strstr(r.text, "Alpha"), *b = strstr(r.text, "First"),
               *c = strstr(r.text, "Beta"), *d = strstr(r.text, "Second");
    CHECK(a && b && c && d && a < b && b < c && c < d);
    extract_result_free(&r);
    buf_free(&f);
}

TEST(pdf_broken_xref_is_repaired)
{
    buf_t f = BUF_INIT;
    fx_pdf(&f, two_pages, 2, NULL, 0, 1);
    extract_result_t r;
    char err[256] = "";
    REQUIRE(run(DOC_PDF, f.data, f.len, &r, err) == 0);
    CHECK(strstr(r.text, "Second page words here.") != NULL);
    extract_result_free(&r);
    buf_free(&f);
}

TEST(pdf_encrypted_image_only_and_garbage_fail_readably)
{
    buf_t f = BUF_INIT;
    fx_pdf(&f, two_pages, 2, NULL, 1, 0);
    extract_result_t r;
    char err[256] = "";
    CHECK_EQ_INT(extract_document(DOC_PDF, f.data, f.len, NULL, &r, err, sizeof err), ENGRAM_EINVAL);
    CHECK(strstr(err, "encrypted") != NULL);
    buf_free(&f);

    const char *const images[] = {NULL, NULL};
    fx_pdf(&f, images, 2, NULL, 0, 0);
    int rc = extract_document(DOC_PDF, f.data, f.len, NULL, &r, err, sizeof err);
#ifdef ENGRAM_WITH_OCR
    CHECK(rc == ENGRAM_ENOTFOUND || rc == 0);
    extract_result_free(&r);
#else
    CHECK_EQ_INT(rc, ENGRAM_ENOTFOUND);
    CHECK(strstr(err, "OCR is not available") != NULL);
#endif
    buf_free(&f);

    const char *garbage = "%PDF-1.7\n this is not a PDF at all \x01\x02\x03";
    CHECK_EQ_INT(extract_document(DOC_PDF, garbage, strlen(garbage), NULL, &r, err, sizeof err),
                 ENGRAM_EINVAL);
    CHECK(strstr(err, "damaged") != NULL);

    fx_pdf(&f, two_pages, 2, NULL, 0, 0);
    extract_limits_t lim;
    extract_limits_default(&lim);
    lim.max_pages = 1;
    CHECK_EQ_INT(extract_document(DOC_PDF, f.data, f.len, &lim, &r, err, sizeof err), ENGRAM_ETOOBIG);
    CHECK(strstr(err, "pages") != NULL);
    buf_free(&f);
}

TEST(pdf_truncated_at_many_lengths)
{
    buf_t f = BUF_INIT;
    fx_pdf(&f, two_pages, 2, "T", 0, 0);
    check_prefixes(DOC_PDF, f.data, f.len, 7);
    buf_free(&f);
}

TEST(pdf_memory_limit)
{
    buf_t f = BUF_INIT;
    fx_pdf(&f, two_pages, 2, NULL, 0, 0);
    extract_limits_t lim;
    extract_limits_default(&lim);
    lim.max_memory = 64 * 1024;
    extract_result_t r;
    char err[256] = "";
    CHECK_EQ_INT(extract_document(DOC_PDF, f.data, f.len, &lim, &r, err, sizeof err), ENGRAM_ETOOBIG);
    CHECK(strstr(err, "memory") != NULL);
    buf_free(&f);
}

#endif /* ENGRAM_NO_PDF */

/* ---- allocation failures ------------------------------------------------ */

/* Every allocation failing in turn: a clean status each time, no leak, and
 * finally success. */
static void oom_sweep(doc_type_t t, const char *p, size_t n, long step)
{
    int succeeded = 0;
    for (long k = 0; k < 100000 && !succeeded; k += step) {
        extract_result_t r;
        char err[256];
        eg_alloc_fail_after(k);
        int rc = extract_document(t, p, n, NULL, &r, err, sizeof err);
        eg_alloc_fail_after(-1);
        if (rc == 0) {
            CHECK(result_ok(&r));
            succeeded = 1;
        } else if (rc != ENGRAM_ENOMEM && rc != ENGRAM_EINVAL && rc != ENGRAM_ETOOBIG) {
            fprintf(stderr, "  type %d: status %d at allocation %ld\n", (int)t, rc, k);
            CHECK(0);
        }
        extract_result_free(&r);
    }
    CHECK(succeeded);
}

TEST(allocation_failures_are_clean)
{
    const char *md = "# A\ntext\n## B\nmore\n";
    oom_sweep(DOC_MARKDOWN, md, strlen(md), 1);
    oom_sweep(DOC_HTML, html_page, sizeof html_page - 1, 1);
    buf_t f = BUF_INIT;
    fx_docx(&f, docx_body, docx_styles, "T", 1);
    oom_sweep(DOC_DOCX, f.data, f.len, 1);
    buf_free(&f);
#ifndef ENGRAM_NO_PDF
    fx_pdf(&f, two_pages, 2, "T", 0, 0);
    oom_sweep(DOC_PDF, f.data, f.len, 7);
    buf_free(&f);
#endif
}

/* ---- OCR (make OCR=1) ----------------------------------------------------- */

#if defined(ENGRAM_WITH_OCR) && !defined(ENGRAM_NO_PDF)
#include <mupdf/fitz.h>
#include <mupdf/pdf.h>

/* A PNG of a rendered PDF page with text, made by MuPDF at 200 dpi. */
static void render_png(const char *text, buf_t *png)
{
    const char *pages[] = {text};
    buf_t pdf = BUF_INIT;
    fx_pdf(&pdf, pages, 1, NULL, 0, 0);
    fz_context *ctx = fz_new_context(NULL, NULL, FZ_STORE_DEFAULT);
    fz_try(ctx) {
        fz_stream *stm = fz_open_memory(ctx, (unsigned char *)pdf.data, pdf.len);
        pdf_document *doc = pdf_open_document_with_stream(ctx, stm);
        fz_page *page = fz_load_page(ctx, (fz_document *)doc, 0);
        fz_pixmap *pix = fz_new_pixmap_from_page(ctx, page, fz_scale(200 / 72.0f, 200 / 72.0f),
                                                 fz_device_gray(ctx), 0);
        fz_buffer *out = fz_new_buffer_from_pixmap_as_png(ctx, pix, fz_default_color_params);
        unsigned char *data;
        size_t n = fz_buffer_storage(ctx, out, &data);
        buf_append(png, data, n);
        fz_drop_buffer(ctx, out);
        fz_drop_pixmap(ctx, pix);
        fz_drop_page(ctx, page);
        pdf_drop_document(ctx, doc);
        fz_drop_stream(ctx, stm);
    }
    fz_catch(ctx) fprintf(stderr, "  render failed: %s\n", fz_caught_message(ctx));
    fz_drop_context(ctx);
    buf_free(&pdf);
}

TEST(ocr_reads_a_png)
{
    buf_t png = BUF_INIT;
    render_png("Invoice number 4711\nThe quick brown fox jumps over the lazy dog.", &png);
    REQUIRE(png.len > 0);
    REQUIRE(detect_type(png.data, png.len, NULL, NULL) == DOC_PNG);
    extract_result_t r;
    char err[256] = "";
    int rc = run(DOC_PNG, png.data, png.len, &r, err);
    if (rc) fprintf(stderr, "  %s\n", err);
    REQUIRE(rc == 0);
    CHECK(strstr(r.text, "Invoice") != NULL);
    CHECK(strstr(r.text, "quick brown fox") != NULL);
    extract_result_free(&r);
    /* a truncated image fails readably */
    CHECK(extract_document(DOC_PNG, png.data, 40, NULL, &r, err, sizeof err) != 0);
    CHECK(err[0] != '\0');
    buf_free(&png);
}
#endif
