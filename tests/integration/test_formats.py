#!/usr/bin/env python3
"""Real files through the real server: a two-page PDF, a DOCX with headings
and a table, an HTML page with scripts and entities, all built here with the
standard library; each is uploaded, extracted, chunked and found by search,
with the PDF page and the section heading in the chunk metadata."""
import io
import os
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, create_collection, eq, expect, register_admin,  # noqa: E402
                     upload_multipart, wait_completed)

suite = Suite("test_formats")
S = suite.state


def make_pdf(pages):
    """A minimal valid PDF (Helvetica text, one content stream per page)."""
    objs = []

    def add(body):
        objs.append(body)
        return len(objs)

    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    page_ids = []
    pages_id = len(objs) + 1 + 2 * len(pages)
    for text in pages:
        stream = ("BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text).encode()
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        page_ids.append(add(("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                             "/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                             % (pages_id, font, content)).encode()))
    kids = " ".join("%d 0 R" % i for i in page_ids)
    assert add(("<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages))).encode()) == pages_id
    catalog = add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_id)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (i, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objs) + 1, catalog, xref))
    return out.getvalue()


def make_docx(paragraphs):
    """paragraphs: [(style or None, text)] plus one table row list at the end."""
    ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    body = []
    for style, text in paragraphs:
        ppr = '<w:pPr><w:pStyle w:val="%s"/></w:pPr>' % style if style else ""
        body.append("<w:p>%s<w:r><w:t>%s</w:t></w:r></w:p>" % (ppr, text))
    body.append("<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Reagent</w:t></w:r></w:p></w:tc>"
                "<w:tc><w:p><w:r><w:t>Quantity</w:t></w:r></w:p></w:tc></w:tr></w:tbl>")
    doc = '<?xml version="1.0" encoding="UTF-8"?><w:document %s><w:body>%s</w:body></w:document>' % (
        ns, "".join(body))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Override PartName="/word/document.xml" '
                   'ContentType="application/vnd.openxmlformats-officedocument.'
                   'wordprocessingml.document.main+xml"/></Types>')
        z.writestr("word/document.xml", doc)
    return out.getvalue()


HTML = b"""<!DOCTYPE html><html><head><title>Field guide</title>
<style>.x { color: red } cassowaryStyleWord</style>
<script>var secret = "scriptonlytoken";</script></head>
<body><h1>Birds of the rainforest</h1><p>The cassowary is a large flightless bird &amp; a
fruit eater.</p><!-- commentonlytoken --><h2>Nesting</h2><p>Males incubate the eggs
for about fifty days &mdash; remarkable.</p></body></html>"""


def upload(s, name, data, ctype):
    r = upload_multipart(s.client, S["key"], S["coll"], name, data, ctype)
    expect(r, 202, what="upload %s" % name)
    return r.json


def final_status(s, doc_id):
    import time
    deadline = time.time() + 60
    while time.time() < deadline:
        r = s.client.get("/documents/%s/status" % doc_id, key=S["key"])
        expect(r, 200)
        if r.json["status"] in ("completed", "failed"):
            return r.json
        time.sleep(0.1)
    raise AssertionError("document %s did not finish" % doc_id)


def chunks_of(s, doc_id):
    r = s.client.get("/documents/%s/chunks?limit=100" % doc_id, key=S["key"])
    expect(r, 200)
    return r.json["data"]


def find(s, query):
    r = s.client.post("/retrievals", {"query": query, "mode": "keyword", "top_k": 5,
                                      "collection_id": S["coll"]}, key=S["key"])
    expect(r, 200)
    return r.json["results"]


@suite.test
def test_setup(s):
    S["key"] = register_admin(s.client)["key"]
    S["coll"] = create_collection(s.client, S["key"], config={"chunk_size": 16, "chunk_overlap": 0})["id"]


@suite.test
def test_pdf_pages(s):
    # Each page longer than a chunk (16 words), so chunks start on both pages.
    pdf = make_pdf(["Page one talks about photosynthesis in algae and how light drives the "
                    "reactions of the chloroplast during the long summer days near the coast.",
                    "Page two explains the mitochondria energy cycle that turns sugar into usable "
                    "energy for every cell of the organism in a careful series of steps."])
    d = upload(s, "cells.pdf", pdf, "application/pdf")
    eq(d["content_type"], "application/pdf", "detected type")
    st = wait_completed(s.client, S["key"], d["id"])
    eq(st["status"], "completed", "PDF status (%s)" % st.get("error_message"))
    res = find(s, "mitochondria")
    check(res, "text of page 2 not found")
    eq(res[0]["document"]["id"], d["id"], "found the PDF")
    eq(res[0]["chunk_metadata"].get("page"), 2, "page of the chunk with 'mitochondria'")
    pages = sorted({c["metadata"].get("page") for c in chunks_of(s, d["id"])})
    eq(pages, [1, 2], "pages in the chunk list")


@suite.test
def test_docx_headings_and_table(s):
    docx = make_docx([("Heading1", "Laboratory protocol"),
                      (None, "Centrifuge the samples at low speed before staining."),
                      ("Heading2", "Safety"),
                      (None, "Wear goggles whenever the centrifuge spins.")])
    d = upload(s, "protocol.docx", docx,
                         "application/octet-stream")
    check("wordprocessingml" in d["content_type"], "detected type: %s" % d["content_type"])
    st = wait_completed(s.client, S["key"], d["id"])
    eq(st["status"], "completed", "DOCX status (%s)" % st.get("error_message"))
    res = find(s, "goggles")
    check(res and res[0]["document"]["id"] == d["id"], "DOCX paragraph not found")
    eq(res[0]["chunk_metadata"].get("section"), "Safety", "section of the goggles chunk")
    text = " ".join(c["content"] for c in chunks_of(s, d["id"]))
    check("Reagent" in text and "Quantity" in text, "table cells missing: %r" % text)


@suite.test
def test_html_visible_text_only(s):
    d = upload(s, "guide.html", HTML, "text/html")
    eq(d["content_type"], "text/html", "detected type")
    st = wait_completed(s.client, S["key"], d["id"])
    eq(st["status"], "completed", "HTML status")
    text = " ".join(c["content"] for c in chunks_of(s, d["id"]))
    check("cassowary is a large flightless bird & a" in " ".join(text.split()),
          "entity decoded in visible text: %r" % text)
    for hidden in ("scriptonlytoken", "commentonlytoken", "cassowaryStyleWord", "color"):
        check(hidden not in text, "invisible text %r leaked into the chunks" % hidden)
    res = find(s, "incubate eggs")
    check(res and res[0]["document"]["id"] == d["id"], "HTML paragraph not found")
    eq(res[0]["chunk_metadata"].get("section"), "Nesting", "section from <h2>")
    eq(find(s, "scriptonlytoken"), [], "script text is not searchable")


@suite.test
def test_encrypted_or_broken_fail_readably(s):
    broken = make_pdf(["fine text"])[:-60] + b"garbage\n"
    d = upload(s, "broken.pdf", broken + b"x" * 10,
                         "application/pdf")
    st = final_status(s, d["id"])
    check(st["status"] in ("completed", "failed"), "ends completed (repaired) or failed")
    if st["status"] == "failed":
        check(st.get("error_message"), "a failed document says why")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document>" + " " * (64 << 20) + "</w:document>")
    d = upload(s, "bomb.docx", bomb.getvalue(),
                         "application/octet-stream")
    st = final_status(s, d["id"])
    eq(st["status"], "failed", "a zip bomb fails")
    check("compress" in (st.get("error_message") or "").lower() or
          "large" in (st.get("error_message") or "").lower(),
          "zip bomb message: %r" % st.get("error_message"))


if __name__ == "__main__":
    suite.run()
