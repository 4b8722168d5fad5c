"""test_idempotency.py - POST /documents with an Idempotency-Key header.

A retry with the same key returns the first attempt's document with 200,
even when its bytes differ, and never a second document; keys are scoped to
the workspace; a bad key is 422; after the document is deleted the key is
free again; the key survives a SIGKILL right after the 202 (the commit-then-
die case: the key is written in the document's own transaction).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Suite, check, create_collection, eq, expect, make_user,  # noqa: E402
                     register_admin, upload_multipart, wait_completed)

suite = Suite("test_idempotency")
S = suite.state


def post(s, key, coll, text, idem):
    hdrs = {"Idempotency-Key": idem} if idem is not None else None
    return s.client.req("POST", "/documents", json={"collection_id": coll, "content": text},
                        key=key, headers=hdrs)


def doc_count(s, key, coll):
    r = expect(s.client.get("/documents?collection_id=%s&limit=100" % coll, key=key), 200)
    return r.json["pagination"]["total"] if "pagination" in r.json else len(r.json["data"])


@suite.test
def test_setup(s):
    S["A"] = register_admin(s.client)
    S["coll"] = create_collection(s.client, S["A"]["key"])["id"]


@suite.test
def test_retry_same_key_returns_first_document(s):
    k, c = S["A"]["key"], S["coll"]
    r1 = expect(post(s, k, c, "first attempt about harbors", "key-1"), 202, what="first")
    r2 = expect(post(s, k, c, "first attempt about harbors", "key-1"), 200, what="same bytes retry")
    eq(r2.json["id"], r1.json["id"], "retry id")
    r3 = expect(post(s, k, c, "DIFFERENT bytes this time", "key-1"), 200, what="different bytes retry")
    eq(r3.json["id"], r1.json["id"], "retry with other bytes id")
    eq(doc_count(s, k, c), 1, "documents after three attempts")


@suite.test
def test_multipart_retry(s):
    k, c = S["A"]["key"], S["coll"]
    from harness import multipart_body
    body, ct = multipart_body({"collection_id": c}, [("file", "a.txt", "text/plain", b"multipart doc one")])
    r1 = s.client.req("POST", "/documents", raw_body=body, content_type=ct, key=k,
                      headers={"Idempotency-Key": "mp-1"})
    expect(r1, 202, what="multipart first")
    body, ct = multipart_body({"collection_id": c}, [("file", "a.txt", "text/plain", b"multipart doc two")])
    r2 = s.client.req("POST", "/documents", raw_body=body, content_type=ct, key=k,
                      headers={"Idempotency-Key": "mp-1"})
    expect(r2, 200, what="multipart retry")
    eq(r2.json["id"], r1.json["id"], "multipart retry id")


@suite.test
def test_without_key_or_other_key_creates(s):
    k, c = S["A"]["key"], S["coll"]
    a = expect(post(s, k, c, "unkeyed one", None), 202)
    b = expect(post(s, k, c, "unkeyed two", None), 202)
    check(a.json["id"] != b.json["id"], "two unkeyed uploads are two documents")
    d = expect(post(s, k, c, "keyed other", "key-2"), 202)
    check(d.json["id"] not in (a.json["id"], b.json["id"]), "a new key is a new document")
    # a new key with bytes already stored: the existing document (content dedup), 200
    e = expect(post(s, k, c, "unkeyed one", "key-3"), 200)
    eq(e.json["id"], a.json["id"], "content dedup under a new key")
    f = expect(post(s, k, c, "whatever", "key-3"), 200)
    eq(f.json["id"], a.json["id"], "key-3 now names that document")


@suite.test
def test_bad_keys_422(s):
    k, c = S["A"]["key"], S["coll"]
    for bad in ("x" * 256, "has space", "t\u00e9st".encode("utf-8").decode("latin-1")):
        r = post(s, k, c, "never stored %d" % len(bad), bad)
        expect(r, 422, "VALIDATION_ERROR", what="key %r" % bad[:20])
    expect(post(s, k, c, "max length key", "k" * 255), 202, what="255-char key")


@suite.test
def test_keys_are_per_workspace(s):
    B = make_user(s.client, S["A"]["key"])
    cb = create_collection(s.client, B["key"])["id"]
    r = expect(post(s, B["key"], cb, "bob's own text", "key-1"), 202, what="B uses A's key string")
    check(r.json["collection_id"] == cb, "B's document is in B's collection")


@suite.test
def test_deleted_document_frees_key(s):
    k, c = S["A"]["key"], S["coll"]
    r1 = expect(post(s, k, c, "to be deleted", "key-del"), 202)
    wait_completed(s.client, k, r1.json["id"])
    expect(s.client.delete("/documents/%s" % r1.json["id"], key=k), 204)
    r2 = expect(post(s, k, c, "replacement text", "key-del"), 202, what="key after delete")
    check(r2.json["id"] != r1.json["id"], "a new document after the delete")


@suite.test
def test_key_survives_kill_after_ack(s):
    k, c = S["A"]["key"], S["coll"]
    r1 = expect(post(s, k, c, "acknowledged then killed", "key-kill"), 202)
    s.restart_server(kill=True)
    r2 = expect(post(s, k, c, "the client's retry", "key-kill"), 200, what="retry after SIGKILL")
    eq(r2.json["id"], r1.json["id"], "same document after the restart")
    wait_completed(s.client, k, r1.json["id"])


if __name__ == "__main__":
    suite.run()
