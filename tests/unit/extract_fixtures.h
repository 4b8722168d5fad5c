/*
 * extract_fixtures.h - small real documents made at test time: PDFs written
 * in PDF syntax with a correct cross-reference table, zip archives (stored
 * or deflated entries) and DOCX files built on them. Used by
 * tests/unit/test_extract.c and by tools that write fuzz seeds.
 *
 * Everything appends to a buf_t; nothing here checks its own results beyond
 * what the tests assert.
 */
#ifndef ENGRAM_EXTRACT_FIXTURES_H
#define ENGRAM_EXTRACT_FIXTURES_H

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "util/buf.h"

/* ---- zip -------------------------------------------------------------- */

typedef struct fx_zip { buf_t data; buf_t cd; unsigned count; } fx_zip_t;

static inline void fx_le16(buf_t *b, unsigned v)
{
    unsigned char p[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    buf_append(b, p, 2);
}
static inline void fx_le32(buf_t *b, unsigned long v)
{
    unsigned char p[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    buf_append(b, p, 4);
}

/* Adds an entry; deflate chooses the method. declared_usize, when not 0,
 * replaces the true uncompressed size in both headers (to lie). */
static inline void fx_zip_add_ex(fx_zip_t *z, const char *name, const void *content, size_t len,
                                 int use_deflate, unsigned long declared_usize, int bad_crc)
{
    unsigned long crc = crc32(0L, content, (uInt)len) ^ (bad_crc ? 1u : 0u);
    buf_t comp = BUF_INIT;
    if (use_deflate) {
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
        size_t cap = deflateBound(&zs, (uLong)len) + 16;
        buf_reserve(&comp, cap);
        zs.next_in = (unsigned char *)content;
        zs.avail_in = (uInt)len;
        zs.next_out = (unsigned char *)comp.data;
        zs.avail_out = (uInt)cap;
        deflate(&zs, Z_FINISH);
        comp.len = zs.total_out;
        deflateEnd(&zs);
    } else {
        buf_append(&comp, content, len);
    }
    unsigned long usize = declared_usize ? declared_usize : (unsigned long)len;
    unsigned long off = (unsigned long)z->data.len;
    size_t nl = strlen(name);
    fx_le32(&z->data, 0x04034b50); fx_le16(&z->data, 20); fx_le16(&z->data, 0);
    fx_le16(&z->data, use_deflate ? 8 : 0); fx_le16(&z->data, 0); fx_le16(&z->data, 0);
    fx_le32(&z->data, crc); fx_le32(&z->data, (unsigned long)comp.len); fx_le32(&z->data, usize);
    fx_le16(&z->data, (unsigned)nl); fx_le16(&z->data, 0);
    buf_append(&z->data, name, nl);
    buf_append(&z->data, comp.data, comp.len);
    fx_le32(&z->cd, 0x02014b50); fx_le16(&z->cd, 20); fx_le16(&z->cd, 20); fx_le16(&z->cd, 0);
    fx_le16(&z->cd, use_deflate ? 8 : 0); fx_le16(&z->cd, 0); fx_le16(&z->cd, 0);
    fx_le32(&z->cd, crc); fx_le32(&z->cd, (unsigned long)comp.len); fx_le32(&z->cd, usize);
    fx_le16(&z->cd, (unsigned)nl); fx_le16(&z->cd, 0); fx_le16(&z->cd, 0); fx_le16(&z->cd, 0);
    fx_le16(&z->cd, 0); fx_le32(&z->cd, 0); fx_le32(&z->cd, off);
    buf_append(&z->cd, name, nl);
    z->count++;
    buf_free(&comp);
}

static inline void fx_zip_add(fx_zip_t *z, const char *name, const char *content, int use_deflate)
{
    fx_zip_add_ex(z, name, content, strlen(content), use_deflate, 0, 0);
}

/* Appends the central directory and end record; the archive is z->data. */
static inline void fx_zip_finish(fx_zip_t *z)
{
    unsigned long cd_off = (unsigned long)z->data.len;
    buf_append(&z->data, z->cd.data, z->cd.len);
    fx_le32(&z->data, 0x06054b50); fx_le16(&z->data, 0); fx_le16(&z->data, 0);
    fx_le16(&z->data, z->count & 0xFFFF); fx_le16(&z->data, z->count & 0xFFFF);
    fx_le32(&z->data, (unsigned long)z->cd.len); fx_le32(&z->data, cd_off); fx_le16(&z->data, 0);
    buf_free(&z->cd);
}

/* ---- DOCX ------------------------------------------------------------- */

#define FX_W_NS "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""

static const char fx_content_types[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">"
    "<Override PartName=\"/word/document.xml\" ContentType=\"application/"
    "vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";

/* A DOCX whose body is body_xml (the inside of w:body); styles.xml and
 * core.xml are added when not NULL. */
static inline void fx_docx(buf_t *out, const char *body_xml, const char *styles_xml,
                           const char *title, int use_deflate)
{
    fx_zip_t z = {BUF_INIT, BUF_INIT, 0};
    fx_zip_add(&z, "[Content_Types].xml", fx_content_types, use_deflate);
    buf_t doc = BUF_INIT;
    buf_printf(&doc, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
                     "<w:document " FX_W_NS "><w:body>%s</w:body></w:document>", body_xml);
    fx_zip_add(&z, "word/document.xml", buf_cstr(&doc), use_deflate);
    buf_free(&doc);
    if (styles_xml) fx_zip_add(&z, "word/styles.xml", styles_xml, use_deflate);
    if (title) {
        buf_t core = BUF_INIT;
        buf_printf(&core, "<?xml version=\"1.0\"?><cp:coreProperties xmlns:cp=\"urn:cp\" "
                          "xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>%s</dc:title>"
                          "</cp:coreProperties>", title);
        fx_zip_add(&z, "docProps/core.xml", buf_cstr(&core), use_deflate);
        buf_free(&core);
    }
    fx_zip_finish(&z);
    buf_append(out, z.data.data, z.data.len);
    buf_free(&z.data);
}

/* ---- PDF -------------------------------------------------------------- */

/* A PDF with n_pages pages; page i shows the lines of texts[i] ('\n'
 * separated) in Helvetica, or a filled rectangle when texts[i] is NULL.
 * title (may be NULL) goes to the Info dictionary; encrypt adds a standard
 * security handler with an unknown user password; bad_xref writes wrong
 * offsets into the cross-reference table. */
static inline void fx_pdf(buf_t *out, const char *const *texts, int n_pages, const char *title,
                          int encrypt, int bad_xref)
{
    size_t base = out->len;
    int n_obj = 4 + 2 * n_pages + 1 + (encrypt ? 1 : 0); /* 0, catalog, pages, font, pages, info */
    size_t offs[64];
    if (n_obj >= 64) return;
    buf_puts(out, "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
    offs[1] = out->len - base;
    buf_puts(out, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    offs[2] = out->len - base;
    buf_puts(out, "2 0 obj\n<< /Type /Pages /Kids [");
    for (int i = 0; i < n_pages; i++) buf_printf(out, "%d 0 R ", 4 + 2 * i);
    buf_printf(out, "] /Count %d >>\nendobj\n", n_pages);
    offs[3] = out->len - base;
    buf_puts(out, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    for (int i = 0; i < n_pages; i++) {
        int po = 4 + 2 * i, co = po + 1;
        offs[po] = out->len - base;
        buf_printf(out, "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                        "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>\nendobj\n",
                   po, co);
        buf_t content = BUF_INIT;
        if (texts[i]) {
            buf_puts(&content, "BT /F1 14 Tf 16 TL 72 720 Td\n");
            const char *t = texts[i];
            while (*t) {
                const char *nl = strchr(t, '\n');
                size_t n = nl ? (size_t)(nl - t) : strlen(t);
                buf_putc(&content, '(');
                buf_append(&content, t, n);
                buf_puts(&content, ") Tj T*\n");
                t += n + (nl ? 1 : 0);
            }
            buf_puts(&content, "ET\n");
        } else {
            buf_puts(&content, "0.2 0.4 0.8 rg 100 100 300 400 re f\n");
        }
        offs[co] = out->len - base;
        buf_printf(out, "%d 0 obj\n<< /Length %zu >>\nstream\n", co, content.len);
        buf_append(out, content.data, content.len);
        buf_puts(out, "endstream\nendobj\n");
        buf_free(&content);
    }
    int info = 4 + 2 * n_pages;
    offs[info] = out->len - base;
    buf_printf(out, "%d 0 obj\n<< /Title (%s) /Producer (engram tests) >>\nendobj\n", info,
               title ? title : "");
    int enc = info + 1;
    if (encrypt) {
        offs[enc] = out->len - base;
        buf_printf(out, "%d 0 obj\n<< /Filter /Standard /V 1 /R 2 /P -44 "
                        "/O <", enc);
        for (int i = 0; i < 32; i++) buf_printf(out, "%02x", (i * 37 + 11) & 0xFF);
        buf_puts(out, "> /U <");
        for (int i = 0; i < 32; i++) buf_printf(out, "%02x", (i * 53 + 7) & 0xFF);
        buf_puts(out, "> >>\nendobj\n");
    }
    size_t xref = out->len - base;
    buf_printf(out, "xref\n0 %d\n0000000000 65535 f \n", n_obj);
    for (int i = 1; i < n_obj; i++)
        buf_printf(out, "%010zu 00000 n \n", bad_xref ? offs[i] + 7 : offs[i]);
    buf_printf(out, "trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R", n_obj, info);
    if (encrypt)
        buf_printf(out, " /Encrypt %d 0 R /ID [<0123456789abcdef0123456789abcdef>"
                        "<0123456789abcdef0123456789abcdef>]", enc);
    buf_printf(out, " >>\nstartxref\n%zu\n%%%%EOF\n", xref);
}

#endif
