#!/usr/bin/env python3
"""Semantic, hybrid and hierarchical retrieval through the real binary with
the built-in (lexical) hash embedder: vectors committed with the document,
explain with both sides, filters inside the vector search, deletes,
persistence across restarts, and engram verify on the result."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Suite, check, create_collection, eq, expect, register_admin,  # noqa: E402
                     upload_text, wait_completed)

suite = Suite("test_vectors")
S = suite.state

DOCS = [
    ("astronomy", "Telescopes observe distant galaxies and nebulae. Astronomers measure redshift "
                  "to estimate how fast galaxies recede.", {"topic": "space", "lang": "en"}),
    ("cooking", "Knead the dough, let it rise overnight, then bake the bread in a hot oven until "
                "the crust is golden.", {"topic": "food", "lang": "en"}),
    ("gardening", "Tomatoes need sun, regular watering and rich soil. Prune the side shoots "
                  "so the plant puts energy into fruit.", {"topic": "plants", "lang": "en"}),
    ("sailing", "Trim the mainsail and ease the jib when the wind gusts; reef early before a "
                "squall reaches the boat.", {"topic": "sea", "lang": "fr"}),
]


def retrieve(s, query, **kw):
    body = {"query": query}
    body.update(kw)
    r = s.client.post("/retrievals", body, key=S["key"])
    expect(r, 200, what="POST /retrievals %r" % kw.get("mode"))
    return r.json


@suite.test
def test_setup(s):
    S["key"] = register_admin(s.client)["key"]
    coll = create_collection(s.client, S["key"])
    eq(coll["config"]["embedder"], "hash", "default embedder")
    check(coll["config"].get("embedding_model", "").startswith("hash-"),
          "the collection records its embedder's identity: %r" % coll["config"])
    S["coll"] = coll["id"]
    S["docs"] = {}
    for title, text, meta in DOCS:
        d = upload_text(s.client, S["key"], S["coll"], text, title=title, metadata=meta)
        S["docs"][title] = d["id"]
    # Many small filler documents so the vector index has real work.
    for i in range(40):
        upload_text(s.client, S["key"], S["coll"],
                    "Filler note %d about meetings, schedules and minutes of item %d." % (i, i * 7),
                    metadata={"topic": "filler", "lang": "en"})
    for doc_id in S["docs"].values():
        wait_completed(s.client, S["key"], doc_id)


@suite.test
def test_semantic_finds_by_shared_word_pieces(s):
    # "galactic" shares character n-grams with "galaxies" but is not the same stem.
    r = retrieve(s, "galactic telescope observation", mode="semantic", top_k=3,
                 collection_id=S["coll"])
    eq(r["mode"], "semantic", "mode echoed")
    check(r["results"], "semantic search found nothing")
    eq(r["results"][0]["document"]["id"], S["docs"]["astronomy"], "best semantic result")
    scores = [x["score"] for x in r["results"]]
    eq(scores, sorted(scores, reverse=True), "results ordered by score")


@suite.test
def test_hybrid_is_default_and_explains_both_sides(s):
    r = retrieve(s, "bake bread oven", top_k=5, explain=True, collection_id=S["coll"])
    eq(r["mode"], "hybrid", "default mode with vectors available")
    top = r["results"][0]
    eq(top["document"]["id"], S["docs"]["cooking"], "best hybrid result")
    ex = top["explain"]
    for k in ("bm25", "bm25_rank", "vector", "vector_rank"):
        check(k in ex, "explain lacks %s: %r" % (k, ex))
    eq(ex["bm25_rank"], 1, "bm25 rank of the best result")
    eq(ex["vector_rank"], 1, "vector rank of the best result")
    check(isinstance(ex["vector"], float) and 0 < ex["vector"] <= 1.0001, "cosine in (0, 1]: %r" % ex)
    # A result only one side found has null for the other side.
    for x in r["results"]:
        e = x["explain"]
        check((e["bm25"] is None) == (e["bm25_rank"] is None), "bm25 score/rank nullness: %r" % e)
        check((e["vector"] is None) == (e["vector_rank"] is None), "vector score/rank: %r" % e)


@suite.test
def test_hierarchical_lists_documents_first(s):
    r = retrieve(s, "filler meetings schedules", mode="hierarchical", top_k=10,
                 collection_id=S["coll"])
    eq(r["mode"], "hierarchical", "mode")
    check(len(r["results"]) == 10, "top_k filled: %d" % len(r["results"]))
    seen, last = [], None
    for x in r["results"]:
        d = x["document"]["id"]
        if d != last:
            check(d not in seen, "document %s appears in two separate runs" % d)
            seen.append(d)
        last = d


@suite.test
def test_filter_inside_vector_search(s):
    # Most chunks are filler in English; the filter keeps one French document.
    r = retrieve(s, "meetings schedules minutes", mode="semantic", top_k=5,
                 metadata_filter={"lang": "fr"}, collection_id=S["coll"])
    ids = [x["document"]["id"] for x in r["results"]]
    eq(ids, [S["docs"]["sailing"]], "semantic results under a filter that matches one document")
    r = retrieve(s, "bread", mode="semantic", top_k=20, metadata_filter={"topic": "filler"},
                 collection_id=S["coll"])
    eq(len(r["results"]), 20, "top_k filled with matching chunks when enough exist")
    for x in r["results"]:
        eq(x["metadata"]["topic"], "filler", "filtered result metadata")


@suite.test
def test_delete_removes_vectors(s):
    doc = S["docs"]["gardening"]
    r = s.client.delete("/documents/" + doc, key=S["key"])
    expect(r, 204, what="delete")
    for mode in ("semantic", "hybrid", "hierarchical"):
        r = retrieve(s, "tomatoes soil watering prune", mode=mode, top_k=50, collection_id=S["coll"])
        ids = {x["document"]["id"] for x in r["results"]}
        check(doc not in ids, "deleted document still found in %s mode" % mode)


@suite.test
def test_unconfigured_embedder_is_422(s):
    r = s.client.post("/collections", {"name": "x-openai", "config": {"embedder": "openai"}},
                      key=S["key"])
    expect(r, 422, "VALIDATION_ERROR", what="an embedder this server does not have")
    eq(r.json["error"]["details"].get("field"), "embedder", "field named")


@suite.test
def test_vectors_survive_restart(s):
    before = retrieve(s, "galactic telescope", mode="semantic", top_k=3, collection_id=S["coll"])
    rc = s.restart_server()
    eq(rc, 0, "SIGTERM exit code")
    after = retrieve(s, "galactic telescope", mode="semantic", top_k=3, collection_id=S["coll"])
    eq([x["chunk_id"] for x in after["results"]], [x["chunk_id"] for x in before["results"]],
       "same semantic results after a restart")


@suite.test
def test_verify_clean(s):
    rc = s.server.stop()
    eq(rc, 0, "SIGTERM exit code")
    p = subprocess.run([s.binary, "verify", "--data", s.server.data_dir], capture_output=True,
                       text=True, timeout=120)
    eq(p.returncode, 0, "engram verify exit code (%s)" % (p.stdout[-800:] + p.stderr[-300:]))
    s.server.start()
    s.client.port = s.server.port


if __name__ == "__main__":
    suite.run()
