"""test_bad_input.py - malformed, out-of-range and hostile requests.

A table of bad requests, each with the status and error.code API.md gives
for it; every row is its own test. The server runs with open registration
so the register route's validation can be reached. Throughout the suite a
5xx is a failure (the client is built with forbid_5xx), every error answer
must have the API.md error body, and the server must be alive after each
row. A few raw-socket rows cover the size limits (431, 413 with a clean
close) where http.client would get in the way.
"""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (RawConn, Suite, check, check_error_body, create_collection, eq,  # noqa: E402
                     expect, multipart_body, nonce, short, uniq, upload_text, wait_completed)

suite = Suite("test_bad_input", server_args=["--open-registration"])
S = suite.state
RANDOM_UUID = "3f2b8c1e-9a4d-4e2f-8b1a-0c9d8e7f6a5b"


@suite.test
def test_setup(s):
    r = s.client.post("/auth/register", {"email": "admin@example.com",
                                         "password": "correct horse battery"})
    expect(r, 201, what="register")
    S["key"] = r.json["api_key"]
    S["coll"] = create_collection(s.client, S["key"])["id"]
    d = upload_text(s.client, S["key"], S["coll"], "A plain document about herons.")
    wait_completed(s.client, S["key"], d["id"])
    S["doc"] = d["id"]


class Row:
    def __init__(self, name, method, path, status, code=None, json_body=None, raw=None,
                 ctype=None, key=True, headers=None, field=None, api=True, after=None):
        self.name = name
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.json_body = json_body
        self.raw = raw
        self.ctype = ctype
        self.key = key
        self.headers = headers
        self.field = field
        self.api = api
        self.after = after


def sub(v):
    """Fills {coll}/{doc} placeholders in strings, recursively."""
    if callable(v):
        return v()
    if isinstance(v, str):
        return v.replace("{coll}", S.get("coll", "")).replace("{doc}", S.get("doc", ""))
    if isinstance(v, bytes):
        return v.replace(b"{coll}", S.get("coll", "").encode())
    if isinstance(v, dict):
        return {k: sub(x) for k, x in v.items()}
    if isinstance(v, list):
        return [sub(x) for x in v]
    return v


def run_row(s, row):
    kw = {}
    if row.json_body is not None:
        kw["json"] = sub(row.json_body)
    if row.raw is not None:
        kw["raw_body"] = sub(row.raw)
        kw["content_type"] = row.ctype if row.ctype is not None else "application/json"
    elif row.ctype is not None:
        kw["content_type"] = row.ctype
    if row.key is True:
        kw["key"] = S["key"]
    elif isinstance(row.key, str):
        kw["headers"] = {"Authorization": row.key}
    if row.headers:
        kw.setdefault("headers", {}).update(row.headers)
    r = s.client.req(row.method, sub(row.path), api=row.api, **kw)
    expect(r, row.status, row.code, what="%s %s" % (row.method, row.path))
    if row.field is not None:
        det = (r.json or {}).get("error", {}).get("details") or {}
        eq(det.get("field"), row.field, "error.details.field")
    if row.after:
        row.after(s, r)


def mp(fields, files):
    body, ct = multipart_body(fields, files)
    return body, ct


def mp_row(name, status, code, fields, files, **kw):
    # Built lazily: collection_id is only known after setup.
    def body():
        f = {k: sub(v) for k, v in fields.items()}
        return multipart_body(f, files)
    holder = {}

    def raw():
        b, ct = body()
        holder["ct"] = ct
        return b
    row = Row(name, "POST", "/documents", status, code, raw=raw, **kw)
    row.ctype_fn = lambda: holder["ct"]
    return row


def allow_has(*methods):
    def after(s, r):
        allow = [m.strip().upper() for m in r.headers.get("allow", "").split(",")]
        for m in methods:
            check(m in allow, "Allow %r lacks %s" % (r.headers.get("allow"), m))
    return after


def cleanup_collection(s, r):
    if r.status == 201:
        s.client.delete("/collections/" + r.json["id"], key=S["key"])


def utf8_replaced(s, r):
    d = r.json
    wait_completed(s.client, S["key"], d["id"])
    c = s.client.get("/documents/%s/chunks" % d["id"], key=S["key"])
    expect(c, 200)
    text = "".join(x["content"] for x in c.json["data"])
    check("\ufffd" in text, "invalid bytes not replaced by U+FFFD: %r" % text[:80])
    check("latte" in text, "text around invalid bytes lost: %r" % text[:80])


def fails_readably(s, r):
    """A broken file is accepted (its type is supported) and ends failed
    with a message a person can act on, never completed or stuck."""
    d = r.json
    import time
    deadline = time.time() + 30
    while time.time() < deadline:
        st = s.client.get("/documents/%s/status" % d["id"], key=S["key"])
        expect(st, 200)
        if st.json["status"] in ("completed", "failed"):
            break
        time.sleep(0.1)
    eq(st.json["status"], "failed", "a broken PDF's status")
    msg = st.json.get("error_message") or ""
    check(len(msg) > 10 and "PDF" in msg, "error_message names the problem: %r" % msg)


V = "VALIDATION_ERROR"
NF = "NOT_FOUND"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00" + b"\x00" * 64
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 4
BIN = bytes((i * 37 + 11) & 0xFF for i in range(4096))

ROWS = [
    # credentials
    Row("missing_credentials", "GET", "/collections", 401, "UNAUTHORIZED", key=None),
    Row("garbage_bearer", "GET", "/collections", 401, "UNAUTHORIZED", key="Bearer garbage"),
    Row("empty_bearer", "GET", "/collections", 401, "UNAUTHORIZED", key="Bearer "),
    Row("unknown_wellformed_key", "GET", "/collections", 401, "UNAUTHORIZED",
        key="Bearer eg_" + "A" * 40),
    Row("basic_auth", "GET", "/collections", 401, "UNAUTHORIZED", key="Basic dXNlcjpwYXNzd29yZA=="),
    Row("garbage_x_api_key", "GET", "/collections", 401, "UNAUTHORIZED", key=None,
        headers={"X-API-Key": "not-a-key"}),
    Row("missing_credentials_post", "POST", "/collections", 401, "UNAUTHORIZED", key=None,
        json_body={"name": "x"}),
    # JSON syntax
    Row("malformed_json", "POST", "/collections", 400, "BAD_REQUEST", raw=b'{"name": '),
    Row("json_trailing_garbage", "POST", "/collections", 400, "BAD_REQUEST",
        raw=b'{"name":"x"} trailing'),
    Row("json_single_quotes", "POST", "/collections", 400, "BAD_REQUEST", raw=b"{'name':'x'}"),
    Row("json_empty_body", "POST", "/collections", (400, 422), ("BAD_REQUEST", V), raw=b""),
    Row("json_top_level_array", "POST", "/collections", 422, V, raw=b'[{"name":"x"}]'),
    Row("json_top_level_string", "POST", "/collections", 422, V, raw=b'"hello"'),
    Row("json_top_level_null", "POST", "/collections", (400, 422), ("BAD_REQUEST", V), raw=b"null"),
    Row("json_deep_nesting", "POST", "/collections", (400, 422), ("BAD_REQUEST", V),
        raw=b"[" * 100000 + b"]" * 100000),
    Row("json_deep_object_nesting", "POST", "/collections", (400, 422), ("BAD_REQUEST", V),
        raw=b'{"name":"x","metadata":' + b'{"a":' * 50000 + b"1" + b"}" * 50001),
    Row("json_invalid_utf8", "POST", "/collections", 400, "BAD_REQUEST",
        raw=b'{"name":"caf\xff\xfe"}'),
    Row("json_overlong_utf8", "POST", "/collections", 400, "BAD_REQUEST",
        raw=b'{"name":"\xc0\xaf"}'),
    Row("json_lone_surrogate", "POST", "/collections", (201, 400, 422), None,
        raw=b'{"name":"bad\\ud800x"}', after=cleanup_collection),
    Row("json_bad_escape", "POST", "/collections", 400, "BAD_REQUEST", raw=b'{"name":"a\\qb"}'),
    Row("json_control_char", "POST", "/collections", 400, "BAD_REQUEST", raw=b'{"name":"a\x01b"}'),
    Row("json_huge_number", "POST", "/collections", (400, 422), ("BAD_REQUEST", V),
        raw=b'{"name":"n1","config":{"chunk_size":1e400}}'),
    Row("json_nan", "POST", "/collections", 400, "BAD_REQUEST",
        raw=b'{"name":"n2","config":{"chunk_size":NaN}}'),
    Row("unknown_fields_ignored", "POST", "/collections", 201, None,
        json_body={"name": "unknown-fields", "bogus": 1, "more": {"x": [1, 2]}},
        after=cleanup_collection),
    # wrong types and ranges on collections
    Row("name_wrong_type", "POST", "/collections", 422, V, json_body={"name": 5}, field="name"),
    Row("name_missing", "POST", "/collections", 422, V, json_body={"description": "d"},
        field="name"),
    Row("name_empty", "POST", "/collections", 422, V, json_body={"name": ""}, field="name"),
    Row("name_null", "POST", "/collections", 422, V, json_body={"name": None}, field="name"),
    Row("description_wrong_type", "POST", "/collections", 422, V,
        json_body={"name": "d1", "description": 7}, field="description"),
    Row("metadata_wrong_type", "POST", "/collections", 422, V,
        json_body={"name": "d2", "metadata": "str"}, field="metadata"),
    Row("metadata_array", "POST", "/collections", 422, V,
        json_body={"name": "d3", "metadata": [1, 2]}, field="metadata"),
    Row("config_wrong_type", "POST", "/collections", 422, V, json_body={"name": "d4", "config": 3}),
    Row("chunk_size_string", "POST", "/collections", 422, V,
        json_body={"name": "d5", "config": {"chunk_size": "512"}}),
    Row("chunk_size_zero", "POST", "/collections", 422, V,
        json_body={"name": "d6", "config": {"chunk_size": 0}}),
    Row("chunk_size_negative", "POST", "/collections", 422, V,
        json_body={"name": "d7", "config": {"chunk_size": -5}}),
    Row("chunk_size_fraction", "POST", "/collections", 422, V,
        json_body={"name": "d7b", "config": {"chunk_size": 100.5}}),
    Row("chunk_overlap_equal_size", "POST", "/collections", 422, V,
        json_body={"name": "d8", "config": {"chunk_size": 100, "chunk_overlap": 100}}),
    Row("chunk_overlap_over_size", "POST", "/collections", 422, V,
        json_body={"name": "d9", "config": {"chunk_size": 100, "chunk_overlap": 150}}),
    Row("chunk_overlap_over_default_size", "POST", "/collections", 422, V,
        json_body={"name": "d9b", "config": {"chunk_overlap": 600}}),
    Row("chunk_overlap_negative", "POST", "/collections", 422, V,
        json_body={"name": "d10", "config": {"chunk_overlap": -1}}),
    Row("graph_wrong_type", "POST", "/collections", 422, V,
        json_body={"name": "d11", "config": {"graph": "yes"}}),
    Row("embedder_unknown", "POST", "/collections", 422, V,
        json_body={"name": "d12", "config": {"embedder": "no-such-embedder"}}),
    Row("patch_name_wrong_type", "PATCH", "/collections/{coll}", 422, V, json_body={"name": 5},
        field="name"),
    Row("patch_name_empty", "PATCH", "/collections/{coll}", 422, V, json_body={"name": ""}),
    Row("patch_malformed_json", "PATCH", "/collections/{coll}", 400, "BAD_REQUEST", raw=b"{"),
    # pagination
    Row("limit_zero", "GET", "/collections?limit=0", 422, V),
    Row("limit_101", "GET", "/collections?limit=101", 422, V),
    Row("limit_negative", "GET", "/collections?limit=-1", 422, V),
    Row("limit_not_number", "GET", "/collections?limit=abc", 422, V),
    Row("limit_empty", "GET", "/collections?limit=", (200, 422), V),
    Row("limit_huge", "GET", "/collections?limit=99999999999999999999", 422, V),
    Row("offset_negative", "GET", "/collections?offset=-1", 422, V),
    Row("offset_not_number", "GET", "/collections?offset=abc", 422, V),
    Row("documents_limit_101", "GET", "/documents?limit=101", 422, V),
    Row("documents_offset_negative", "GET", "/documents?offset=-1", 422, V),
    Row("documents_bad_status_filter", "GET", "/documents?status=exploded", (200, 422), V),
    Row("keys_limit_zero", "GET", "/auth/keys?limit=0", 422, V),
    Row("chunks_limit_101", "GET", "/documents/{doc}/chunks?limit=101", 422, V),
    # retrieval
    Row("top_k_zero", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "top_k": 0}, field="top_k"),
    Row("top_k_101", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "top_k": 101}, field="top_k"),
    Row("top_k_string", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "top_k": "10"}, field="top_k"),
    Row("top_k_negative", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "top_k": -3}, field="top_k"),
    Row("top_k_fraction", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "top_k": 2.5}, field="top_k"),
    Row("top_k_100_ok", "POST", "/retrievals", 200, None,
        json_body={"query": "heron", "mode": "keyword", "top_k": 100}),
    Row("query_missing", "POST", "/retrievals", 422, V, json_body={"mode": "keyword"},
        field="query"),
    Row("query_wrong_type", "POST", "/retrievals", 422, V,
        json_body={"query": 5, "mode": "keyword"}, field="query"),
    Row("mode_wrong_type", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": 5}, field="mode"),
    Row("metadata_filter_wrong_type", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "metadata_filter": "lang=en"},
        field="metadata_filter"),
    Row("explain_wrong_type", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "explain": "yes"}, field="explain"),
    Row("retrieval_collection_malformed", "POST", "/retrievals", (404, 422), (NF, V),
        json_body={"query": "heron", "mode": "keyword", "collection_id": "not-a-uuid"}),
    Row("retrieval_collection_unknown", "POST", "/retrievals", 404, NF,
        json_body={"query": "heron", "mode": "keyword", "collection_id": RANDOM_UUID}),
    Row("retrieval_collection_wrong_type", "POST", "/retrievals", 422, V,
        json_body={"query": "heron", "mode": "keyword", "collection_id": 12}),
    Row("retrieval_huge_query", "POST", "/retrievals", (200, 422), V,
        json_body={"query": "heron " * 100000, "mode": "keyword"}),
    Row("retrieval_query_symbols_only", "POST", "/retrievals", (200, 422), V,
        json_body={"query": "!!! ??? ...", "mode": "keyword"}),
    Row("retrieval_query_unterminated_quote", "POST", "/retrievals", 200, None,
        json_body={"query": '"heron', "mode": "keyword"}),
    Row("retrieval_query_operators", "POST", "/retrievals", 200, None,
        json_body={"query": "heron* OR -water AND (x)", "mode": "keyword"}),
    Row("retrieval_query_emoji_and_cjk", "POST", "/retrievals", 200, None,
        json_body={"query": "\U0001F600 \u6f22\u5b57 \u0645\u0631\u062d\u0628\u0627", "mode": "keyword"}),
    Row("retrieval_query_one_long_word", "POST", "/retrievals", (200, 422), V,
        json_body={"query": "h" * 20000, "mode": "keyword"}),
    Row("retrieval_query_nul", "POST", "/retrievals", (200, 422), V,
        json_body={"query": "her\u0000on", "mode": "keyword"}),
    Row("retrieval_filter_nested", "POST", "/retrievals", (200, 422), V,
        json_body={"query": "heron", "mode": "keyword", "metadata_filter": {"a": {"b": [1, {"c": None}]}}}),
    Row("retrieval_array_body", "POST", "/retrievals", 422, V, raw=b'["heron"]'),
    # auth routes
    Row("register_short_password", "POST", "/auth/register", 422, V, key=None,
        json_body={"email": "shortpw@example.com", "password": "short"}, field="password"),
    Row("register_bad_email", "POST", "/auth/register", 422, V, key=None,
        json_body={"email": "not-an-email", "password": "long enough pw"}, field="email"),
    Row("register_empty_email", "POST", "/auth/register", 422, V, key=None,
        json_body={"email": "", "password": "long enough pw"}, field="email"),
    Row("register_email_wrong_type", "POST", "/auth/register", 422, V, key=None,
        json_body={"email": 5, "password": "long enough pw"}, field="email"),
    Row("register_password_missing", "POST", "/auth/register", 422, V, key=None,
        json_body={"email": "nopw@example.com"}, field="password"),
    Row("register_duplicate_email", "POST", "/auth/register", 409, "CONFLICT", key=None,
        json_body={"email": "admin@example.com", "password": "long enough pw"}),
    Row("register_malformed_json", "POST", "/auth/register", 400, "BAD_REQUEST", key=None,
        raw=b'{"email":'),
    Row("login_malformed_json", "POST", "/auth/login", 400, "BAD_REQUEST", key=None, raw=b"{{"),
    Row("login_missing_fields", "POST", "/auth/login", (401, 422), ("UNAUTHORIZED", V), key=None,
        json_body={}),
    Row("admin_users_short_password", "POST", "/admin/users", 422, V,
        json_body={"email": "u1@example.com", "password": "1234567"}, field="password"),
    Row("admin_users_bad_email", "POST", "/admin/users", 422, V,
        json_body={"email": "@@", "password": "long enough pw"}, field="email"),
    Row("keys_bad_scope", "POST", "/auth/keys", 422, V,
        json_body={"name": "k", "scopes": ["root"]}, field="scopes"),
    Row("keys_scopes_wrong_type", "POST", "/auth/keys", 422, V,
        json_body={"name": "k", "scopes": "read"}, field="scopes"),
    Row("keys_empty_scopes", "POST", "/auth/keys", 422, V, json_body={"name": "k", "scopes": []}),
    Row("keys_workspace_malformed", "POST", "/auth/keys", (404, 422), (NF, V),
        json_body={"name": "k", "scopes": ["read"], "workspace_id": "zzz"}),
    Row("member_bad_role", "POST", "/workspaces/" + RANDOM_UUID + "/members", (404, 422), (NF, V),
        json_body={"email": "admin@example.com", "role": "owner"}),
    # documents (JSON)
    Row("document_empty_content", "POST", "/documents", 422, V,
        json_body={"collection_id": "{coll}", "content": ""}, field="content"),
    Row("document_content_missing", "POST", "/documents", 422, V,
        json_body={"collection_id": "{coll}"}, field="content"),
    Row("document_content_wrong_type", "POST", "/documents", 422, V,
        json_body={"collection_id": "{coll}", "content": 12}, field="content"),
    Row("document_collection_missing", "POST", "/documents", 422, V,
        json_body={"content": "hello"}, field="collection_id"),
    Row("document_collection_unknown", "POST", "/documents", 404, NF,
        json_body={"collection_id": RANDOM_UUID, "content": "hello"}),
    Row("document_collection_malformed", "POST", "/documents", (404, 422), (NF, V),
        json_body={"collection_id": "../etc", "content": "hello"}),
    Row("document_title_wrong_type", "POST", "/documents", 422, V,
        json_body={"collection_id": "{coll}", "content": "hello t", "title": ["x"]}, field="title"),
    Row("document_metadata_wrong_type", "POST", "/documents", 422, V,
        json_body={"collection_id": "{coll}", "content": "hello m", "metadata": "x"},
        field="metadata"),
    Row("document_nul_bytes", "POST", "/documents", 415, "UNSUPPORTED_MEDIA_TYPE",
        json_body={"collection_id": "{coll}", "content": "abc\u0000def\u0000" * 50}),
    Row("document_patch_title_wrong_type", "PATCH", "/documents/{doc}", 422, V,
        json_body={"title": 5}, field="title"),
    Row("document_patch_metadata_wrong_type", "PATCH", "/documents/{doc}", 422, V,
        json_body={"metadata": [1]}, field="metadata"),
    # documents (multipart)
    mp_row("upload_broken_pdf_fails_readably", 202, None, {"collection_id": "{coll}"},
           [("file", "paper.pdf", "application/pdf", PDF)], after=fails_readably),
    mp_row("upload_png_415", 415, "UNSUPPORTED_MEDIA_TYPE", {"collection_id": "{coll}"},
           [("file", "pic.png", "image/png", PNG)]),
    mp_row("upload_zip_415", 415, "UNSUPPORTED_MEDIA_TYPE", {"collection_id": "{coll}"},
           [("file", "a.zip", "application/zip", ZIP)]),
    mp_row("upload_binary_named_txt_415", 415, "UNSUPPORTED_MEDIA_TYPE", {"collection_id": "{coll}"},
           [("file", "notes.txt", "text/plain", BIN)]),
    mp_row("upload_nul_text_415", 415, "UNSUPPORTED_MEDIA_TYPE", {"collection_id": "{coll}"},
           [("file", "nul.txt", "text/plain", b"hello\x00world\x00" * 100)]),
    # Type by content, not by name: a PDF called .txt is still a PDF.
    mp_row("upload_pdf_named_txt_is_pdf", 202, None, {"collection_id": "{coll}"},
           [("file", "fake.txt", "text/plain", PDF + b"%named txt\n")], after=fails_readably),
    mp_row("upload_empty_file", 422, V, {"collection_id": "{coll}"},
           [("file", "empty.txt", "text/plain", b"")]),
    mp_row("upload_no_file_field", (400, 422), ("BAD_REQUEST", V), {"collection_id": "{coll}"}, []),
    mp_row("upload_no_collection_field", 422, V, {},
           [("file", "a.txt", "text/plain", b"hello no collection")]),
    mp_row("upload_metadata_not_json", (400, 422), ("BAD_REQUEST", V),
           {"collection_id": "{coll}", "metadata": "{not json"},
           [("file", "a.txt", "text/plain", b"hello bad metadata")]),
    mp_row("upload_metadata_array", 422, V, {"collection_id": "{coll}", "metadata": "[1,2]"},
           [("file", "a.txt", "text/plain", b"hello array metadata")]),
    mp_row("upload_invalid_utf8_replaced", 202, None, {"collection_id": "{coll}"},
           [("file", "cafe.txt", "text/plain", b"caf\xe9 latte and more \xff\xfe text here")],
           after=utf8_replaced),
    Row("multipart_boundary_mismatch", "POST", "/documents", 400, "BAD_REQUEST",
        raw=b"--other\r\nContent-Disposition: form-data; name=\"collection_id\"\r\n\r\nx\r\n--other--\r\n",
        ctype="multipart/form-data; boundary=expected"),
    Row("multipart_no_boundary", "POST", "/documents", 400, "BAD_REQUEST",
        raw=b"--b\r\n\r\nx\r\n--b--\r\n", ctype="multipart/form-data"),
    Row("multipart_truncated", "POST", "/documents", 400, "BAD_REQUEST",
        raw=b"--bb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhel",
        ctype="multipart/form-data; boundary=bb"),
    Row("multipart_no_headers_end", "POST", "/documents", 400, "BAD_REQUEST",
        raw=b"--bb\r\nContent-Disposition: form-data; name=\"file\"",
        ctype="multipart/form-data; boundary=bb"),
    # media types on JSON routes
    Row("json_route_text_plain", "POST", "/collections", (400, 415),
        ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE"), raw=b'{"name":"tp"}', ctype="text/plain"),
    Row("json_route_form_urlencoded", "POST", "/collections", (400, 415),
        ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE"), raw=b"name=x",
        ctype="application/x-www-form-urlencoded"),
    Row("documents_route_xml", "POST", "/documents", (400, 415),
        ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE"), raw=b"<doc/>", ctype="application/xml"),
    # routing
    Row("unknown_route", "GET", "/nope", 404, NF),
    Row("unknown_root_route", "GET", "/nope", 404, NF, api=False, key=None),
    Row("unknown_subroute", "GET", "/collections/{coll}/bogus", 404, NF),
    Row("unknown_route_no_credentials", "GET", "/definitely/not/here", (401, 404),
        ("UNAUTHORIZED", NF), key=None),
    Row("wrong_method_collections", "DELETE", "/collections", 405, "METHOD_NOT_ALLOWED",
        after=allow_has("GET", "POST")),
    Row("wrong_method_collection", "POST", "/collections/{coll}", 405, "METHOD_NOT_ALLOWED",
        json_body={}, after=allow_has("GET", "PATCH", "DELETE")),
    Row("wrong_method_health", "PUT", "/health", 405, "METHOD_NOT_ALLOWED", api=False, key=None,
        raw=b"", after=allow_has("GET")),
    Row("wrong_method_retrievals", "GET", "/retrievals", 405, "METHOD_NOT_ALLOWED",
        after=allow_has("POST")),
    Row("wrong_method_status", "POST", "/documents/{doc}/status", 405, "METHOD_NOT_ALLOWED",
        json_body={}, after=allow_has("GET")),
    Row("malformed_uuid_collection", "GET", "/collections/not-a-uuid", (404, 422), (NF, V)),
    Row("malformed_uuid_document", "GET", "/documents/123/status", (404, 422), (NF, V)),
    Row("uppercase_uuid_like", "GET", "/collections/" + RANDOM_UUID.upper() + "X", (404, 422),
        (NF, V)),
    Row("unknown_collection", "GET", "/collections/" + RANDOM_UUID, 404, NF),
    Row("unknown_document", "GET", "/documents/" + RANDOM_UUID, 404, NF),
    Row("unknown_document_delete", "DELETE", "/documents/" + RANDOM_UUID, 404, NF),
    Row("unknown_document_chunks", "GET", "/documents/" + RANDOM_UUID + "/chunks", 404, NF),
    Row("unknown_key_delete", "DELETE", "/auth/keys/" + RANDOM_UUID, 404, NF),
    Row("path_traversal", "GET", "/api/v1/../../../etc/passwd", (400, 404), ("BAD_REQUEST", NF),
        api=False),
    Row("percent_encoded_garbage", "GET", "/collections/%ff%fe%00", (400, 404, 422),
        ("BAD_REQUEST", NF, V)),
    Row("percent_encoded_slash", "GET", "/collections/%2e%2e%2f%2e%2e%2fadmin", (400, 404, 422),
        ("BAD_REQUEST", NF, V)),
    Row("long_path", "GET", "/collections/" + "a" * 8000, (404, 414, 422, 431),
        (NF, V, "HEADERS_TOO_LARGE", "BAD_REQUEST")),
    Row("repeated_query_param", "GET", "/collections?limit=1&limit=2&offset=0&offset=0",
        (200, 422), V),
]


def make_row_test(row):
    def fn(s):
        if hasattr(row, "ctype_fn"):
            raw = row.raw
            b = raw()
            saved = row.raw
            row.raw = b
            row.ctype = row.ctype_fn()
            try:
                run_row(s, row)
            finally:
                row.raw = saved
        else:
            run_row(s, row)
    fn.__name__ = row.name
    return fn


for _row in ROWS:
    suite.test(make_row_test(_row))


# ---------------------------------------------------------------- raw-socket rows


def read_error(conn, want_status, want_code):
    r = conn.read_response()
    check(r.status < 500, "server answered %s" % r.status)
    eq(r.status, want_status, "status (body %s)" % short(r.body))
    check("x-request-id" in r.headers, "answer without X-Request-ID")
    check_error_body(r.status, r.headers, r.body, r.json, "raw")
    eq(r.json["error"]["code"], want_code, "error.code")
    return r


@suite.test
def test_huge_header_431(s):
    c = RawConn(s.server.port)
    try:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20480 + b"\r\n\r\n")
        read_error(c, 431, "HEADERS_TOO_LARGE")
        check(c.is_closed(), "connection still open after 431")
    finally:
        c.close()


@suite.test
def test_many_headers(s):
    c = RawConn(s.server.port)
    try:
        hs = b"".join(b"X-H%d: v\r\n" % i for i in range(300))
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n" + hs + b"\r\n")
        r = c.read_response()
        check(r.status in (400, 431), "300 headers: status %s, want 400 or 431" % r.status)
        check_error_body(r.status, r.headers, r.body, r.json, "raw")
    finally:
        c.close()


@suite.test
def test_huge_request_line_431(s):
    c = RawConn(s.server.port)
    try:
        c.send(b"GET /health?" + b"q" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        check(r.status in (414, 431), "20 KB request line: status %s, want 431 (or 414)" % r.status)
        check_error_body(r.status, r.headers, r.body, r.json, "raw")
    finally:
        c.close()


@suite.test
def test_json_body_over_1mib_413(s):
    body = b'{"name":"' + b"x" * (1536 * 1024) + b'"}'
    head = ("POST /api/v1/collections HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (S["key"], len(body)))
    c = RawConn(s.server.port, timeout=15)
    errors = []

    def sender():
        try:
            c.send(head.encode() + body)
        except OSError as e:  # the server may stop reading after the 413
            errors.append(e)

    t = threading.Thread(target=sender, daemon=True)
    t.start()
    try:
        try:
            read_error(c, 413, "PAYLOAD_TOO_LARGE")
        except ConnectionResetError:
            raise AssertionError("connection reset before the 413 could be read "
                                 "(not closed cleanly)")
        check(c.is_closed(), "connection still open after 413")
    finally:
        c.close()
        t.join(5)
    r = s.client.get("/collections", key=S["key"])
    expect(r, 200)
    check(all(len(x["name"]) < 1000 for x in r.json["data"]), "oversized collection was created")


@suite.test
def test_big_json_document_upload_accepted(s):
    # The 1 MiB JSON limit does not apply to a JSON document upload.
    text = ("heron wading in the shallow water %s\n" % nonce()) * 40000
    check(len(text) > 1024 * 1024, "text too small")
    r = s.client.post("/documents", {"collection_id": S["coll"], "content": text}, key=S["key"])
    expect(r, 202, what="1.6 MB JSON upload")
    wait_completed(s.client, S["key"], r.json["id"], timeout=90)


@suite.test
def test_unauthenticated_big_body_rejected_early(s):
    c = RawConn(s.server.port, timeout=5)
    try:
        c.send(b"POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 50000000\r\n\r\n" + b"{" * 1000)
        t0 = time.time()
        r = c.read_response()
        check(r.status in (401, 413), "status %s, want 401" % r.status)
        check(time.time() - t0 < 3, "answer took %.1fs" % (time.time() - t0))
        check_error_body(r.status, r.headers, r.body, r.json, "raw")
    finally:
        c.close()


@suite.test
def test_upload_over_configured_max_413(s):
    srv = s.new_server(extra_args=["--max-upload-mb", "1", "--open-registration"])
    srv.start()
    c = s.client.__class__(srv.port, forbid_5xx=True)
    r = expect(c.post("/auth/register", {"email": "m@example.com", "password": "long enough pw"}),
               201)
    key = r.json["api_key"]
    coll = create_collection(c, key)["id"]
    data = b"heron wading in the water\n" * 60000
    body, ct = multipart_body({"collection_id": coll}, [("file", "big.txt", "text/plain", data)])
    head = ("POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (key, ct, len(body))).encode()
    for what, payload in (("multipart", head + body),
                          ("json", json_upload_request(key, coll, data.decode()))):
        rc = RawConn(srv.port, timeout=15)
        t = threading.Thread(target=lambda: send_quietly(rc, payload), daemon=True)
        t.start()
        try:
            try:
                read_error(rc, 413, "PAYLOAD_TOO_LARGE")
            except ConnectionResetError:
                raise AssertionError("%s: connection reset before the 413 could be read" % what)
            check(rc.is_closed(), "%s: connection still open after 413" % what)
        finally:
            rc.close()
            t.join(5)
    r = expect(c.get("/documents?collection_id=" + coll, key=key), 200)
    eq(r.json["data"], [], "documents after refused uploads")
    # Under the limit still works.
    small, ct2 = multipart_body({"collection_id": coll}, [("file", "ok.txt", "text/plain", data[:500000])])
    r = c.req("POST", "/documents", raw_body=small, content_type=ct2, key=key)
    expect(r, 202, what="upload under the limit")
    eq(srv.stop(), 0, "exit code of the --max-upload-mb server")


def json_upload_request(key, coll, text):
    body = json.dumps({"collection_id": coll, "content": text}).encode()
    return ("POST /api/v1/documents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (key, len(body))).encode() + body


def send_quietly(conn, payload):
    try:
        conn.send(payload)
    except OSError:
        pass


def mutate(rng, b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 4)):
        op = rng.randint(0, 5)
        i = rng.randint(0, max(0, len(b) - 1))
        if op == 0 and b:
            del b[i]
        elif op == 1:
            b.insert(i, rng.choice(b'{}[]",:\\0123456789.eE+-tfn \x00\xff\xc3'))
        elif op == 2 and b:
            b[i] = rng.randint(0, 255)
        elif op == 3:
            b[i:i] = rng.choice([b'"\\u', b'\\ud800', b'1e999', b'-0', b'[[[[', b'null', b'{"a":'])
        elif op == 4 and b:
            del b[i:]
        else:
            j = rng.randint(0, max(0, len(b) - 1))
            b[i:i] = b[j:j + rng.randint(1, 20)]
    return bytes(b)


@suite.test
def test_mutated_json_bodies(s):
    import random
    rng = random.Random(1234)
    seeds = [
        ("POST", "/collections", {"name": "m", "description": "d", "metadata": {"a": [1, 2.5, True]},
                                  "config": {"chunk_size": 100, "chunk_overlap": 10, "graph": False}}),
        ("POST", "/documents", {"collection_id": S["coll"], "content": "some heron text",
                                "title": "t", "metadata": {"k": "v"}}),
        ("POST", "/retrievals", {"query": "heron", "mode": "keyword", "top_k": 5, "explain": True,
                                 "collection_id": S["coll"], "metadata_filter": {"k": "v"}}),
        ("PATCH", "/documents/" + S["doc"], {"title": "x", "metadata": {"z": None}}),
        ("POST", "/auth/login", {"email": "admin@example.com", "password": "nope nope"}),
        ("POST", "/auth/keys", {"name": "k", "scopes": ["read", "write"]}),
    ]
    counts = {}
    for n in range(600):
        method, path, body = seeds[n % len(seeds)]
        raw = mutate(rng, json.dumps(body).encode())
        r = s.client.req(method, path, raw_body=raw, content_type="application/json", key=S["key"])
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status in (201, 202) and path == "/collections":
            s.client.delete("/collections/" + r.json["id"], key=S["key"])
    check(s.server.alive(), "server died during mutated bodies")
    check(set(counts) - {200, 201, 202, 400, 401, 404, 409, 415, 422} == set(),
          "unexpected statuses: %r" % counts)


@suite.test
def test_random_bytes_on_raw_connections(s):
    import random
    rng = random.Random(99)
    prefixes = [b"", b"GET / HTTP/1.1\r\n", b"POST /api/v1/collections HTTP/1.1\r\nHost: x\r\n",
                b"POST /api/v1/documents HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"]
    for n in range(80):
        c = RawConn(s.server.port, timeout=5)
        try:
            junk = bytes(rng.randint(0, 255) for _ in range(rng.randint(1, 400)))
            if rng.random() < 0.5:
                junk = junk.replace(b"\x00", b"\r\n")
            c.send(rng.choice(prefixes) + junk + (b"\r\n\r\n" if rng.random() < 0.5 else b""))
            c.sock.shutdown(socket.SHUT_WR)
            try:
                while c.sock.recv(65536):
                    pass
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            c.close()
    check(s.server.alive(), "server died on random bytes")
    expect(s.client.get("/health", api=False), 200)


@suite.test
def test_server_still_serves(s):
    # After all of the above the server answers normally.
    expect(s.client.get("/health", api=False), 200)
    r = expect(s.client.post("/retrievals", {"query": "heron", "mode": "keyword"}, key=S["key"]), 200)
    check(r.json["results"], "the setup document is no longer found")


if __name__ == "__main__":
    suite.run(forbid_5xx=True)
