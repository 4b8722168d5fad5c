#!/usr/bin/env python3
"""The knowledge graph through the real binary: entities extracted at
ingest, mode "graph" and enable_graph merging (graph_sourced,
graph_enhanced, graph_context), the entity routes (list, prefix and fuzzy
search, detail), export as GraphML (parsed with xml.etree, structure
checked) and JSON, tenancy (404s), collections with graph:false, deletes,
rerank (built-in ordering; a remote service through the stub, with
fallback), and the LLM extractor through the stub (good JSON, bad JSON,
errors -> built-in fallback), then engram verify."""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Client, Suite, check, create_collection, eq, expect,  # noqa: E402
                     register_admin, make_user, upload_text, wait_completed)
from stub_openai import StubOpenAI  # noqa: E402

suite = Suite("test_graph")
S = suite.state
GML = "{http://graphml.graphdrawing.org/xmlns}"

CURIE = ("Marie Curie was a physicist. She worked at the University of Paris with Pierre Curie. "
         "M. Curie received the Nobel Prize in 1903. Marie Curie later founded the Radium "
         "Institute in Warsaw.")
EINSTEIN = ("Albert Einstein developed the theory of relativity. Albert Einstein worked at the "
            "Patent Office in Bern before he joined Princeton University.")
COOKING = "Knead the dough, let it rise overnight, then bake the bread in a hot oven."


def retrieve(s, query, key=None, status=200, **kw):
    body = {"query": query}
    body.update(kw)
    r = s.client.post("/retrievals", body, key=key or S["key"])
    expect(r, status, what="POST /retrievals %r" % kw)
    return r.json


def entities(s, coll, q=None, key=None, status=200, **params):
    path = "/collections/%s/graph/entities" % coll
    qs = []
    if q is not None:
        qs.append("q=" + q.replace(" ", "%20"))
    qs += ["%s=%s" % kv for kv in params.items()]
    if qs:
        path += "?" + "&".join(qs)
    r = s.client.get(path, key=key or S["key"])
    expect(r, status, what="GET " + path)
    return r.json


@suite.test
def test_setup(s):
    S["key"] = register_admin(s.client)["key"]
    S["coll"] = create_collection(s.client, S["key"])["id"]
    S["docs"] = {}
    for title, text in (("curie", CURIE), ("einstein", EINSTEIN), ("cooking", COOKING)):
        d = upload_text(s.client, S["key"], S["coll"], text, title=title)
        S["docs"][title] = d["id"]
    for d in S["docs"].values():
        wait_completed(s.client, S["key"], d)


@suite.test
def test_entities_extracted_and_listed(s):
    r = entities(s, S["coll"], limit=100)
    names = {e["name"]: e for e in r["data"]}
    for want in ("Marie Curie", "Pierre Curie", "University of Paris", "Albert Einstein", "Warsaw"):
        check(want in names, "entity %r missing from %r" % (want, sorted(names)))
    eq(names["Marie Curie"]["type"], "person", "Marie Curie's type")
    eq(names["University of Paris"]["type"], "organization", "University of Paris's type")
    eq(names["Warsaw"]["type"], "location", "Warsaw's type")
    # "M. Curie" is merged into Marie Curie (the only Curie with an M.)
    eq(names["Marie Curie"]["mention_count"], 3, "Marie Curie's mentions (incl. M. Curie)")
    check("M. Curie" not in names, "the variant M. Curie stayed separate")
    for e in r["data"]:
        check(e["type"] in ("person", "organization", "location", "date", "concept", "other"),
              "type %r" % e["type"])
        eq(sorted(e), ["id", "mention_count", "name", "type"], "entity item fields")
    p = r["pagination"]
    eq(p["total"], len(r["data"]), "total")
    check(p["has_more"] is False, "has_more")
    page = entities(s, S["coll"], limit=2, offset=1)
    eq(len(page["data"]), 2, "page size")
    eq(page["pagination"]["has_more"], True, "has_more on a first page")
    S["curie_id"] = names["Marie Curie"]["id"]


@suite.test
def test_entity_search_prefix_and_fuzzy(s):
    r = entities(s, S["coll"], q="marie")
    check(r["data"] and r["data"][0]["name"] == "Marie Curie", "prefix search: %r" % r["data"])
    r = entities(s, S["coll"], q="Einstien")  # a typo
    check(any(e["name"] == "Albert Einstein" for e in r["data"]), "fuzzy search: %r" % r["data"])
    r = entities(s, S["coll"], q="zzzzqqq")
    eq(r["data"], [], "nothing matches")
    entities(s, S["coll"], limit=0, status=422)


@suite.test
def test_entity_detail(s):
    r = s.client.get("/collections/%s/graph/entities/%s" % (S["coll"], S["curie_id"]), key=S["key"])
    expect(r, 200, what="entity detail")
    e = r.json
    eq(e["name"], "Marie Curie", "name")
    check(e["chunk_ids"], "chunk_ids empty")
    targets = {x["target_name"] for x in e["relations"]}
    check("Nobel Prize" in targets or "University of Paris" in targets,
          "relations of Marie Curie: %r" % e["relations"])
    for x in e["relations"]:
        eq(sorted(x), ["relation", "target_id", "target_name", "weight"], "relation fields")
        check(x["weight"] > 0, "weight")
    chunks = s.client.get("/documents/%s/chunks" % S["docs"]["curie"], key=S["key"]).json["data"]
    check(set(e["chunk_ids"]) <= {c["id"] for c in chunks}, "chunk_ids are the document's chunks")
    r = s.client.get("/collections/%s/graph/entities/%s" % (S["coll"], "0" * 8 + "-0000-0000-0000-" + "0" * 12),
                     key=S["key"])
    expect(r, 404, "NOT_FOUND", what="unknown entity")
    r = s.client.get("/collections/%s/graph/entities/not-a-uuid" % S["coll"], key=S["key"])
    expect(r, 404, "NOT_FOUND", what="malformed entity id")


@suite.test
def test_graph_mode(s):
    r = retrieve(s, "Who is Marie Curie?", mode="graph", collection_id=S["coll"])
    eq(r["mode"], "graph", "mode echoed")
    eq(r["graph_enhanced"], True, "graph_enhanced in graph mode")
    check(r["results"], "graph mode found nothing")
    eq(r["results"][0]["document"]["id"], S["docs"]["curie"], "best graph result")
    for x in r["results"]:
        eq(x["metadata"].get("graph_sourced"), True, "graph_sourced in graph mode")
    check("Marie Curie" in r["graph_context"], "graph_context: %r" % r["graph_context"])
    eq(r["total_results"], len(r["results"]), "total_results")
    # a fuzzy query word still finds the entity
    r = retrieve(s, "Einstien relativity", mode="graph", collection_id=S["coll"])
    check(r["results"] and r["results"][0]["document"]["id"] == S["docs"]["einstein"],
          "fuzzy graph query: %r" % r["results"][:1])


@suite.test
def test_enable_graph_merge(s):
    plain = retrieve(s, "Pierre Curie radium", mode="keyword", collection_id=S["coll"])
    eq(plain["graph_enhanced"], False, "graph_enhanced without the graph")
    check("graph_context" not in plain, "graph_context without the graph")
    for x in plain["results"]:
        check("graph_sourced" not in x["metadata"], "graph_sourced without the graph")
    r = retrieve(s, "Pierre Curie radium", mode="keyword", enable_graph=True, top_k=2,
                 collection_id=S["coll"])
    eq(r["graph_enhanced"], True, "graph_enhanced with enable_graph")
    check("graph_context" in r and r["graph_context"], "graph_context with enable_graph")
    check(len(r["results"]) <= 2, "cut to top_k")
    ids = [x["chunk_id"] for x in r["results"]]
    eq(len(ids), len(set(ids)), "no duplicates in the merged list")
    graph_ids = {x["chunk_id"] for x in retrieve(s, "Pierre Curie radium", mode="graph",
                                                   collection_id=S["coll"])["results"]}
    for x in r["results"]:
        # found by both sides: still graph_sourced
        eq(bool(x["metadata"].get("graph_sourced")), x["chunk_id"] in graph_ids,
           "graph_sourced exactly for graph-found chunks")
    h = retrieve(s, "Albert Einstein", mode="hybrid", enable_graph=True, collection_id=S["coll"])
    eq(h["results"][0]["document"]["id"], S["docs"]["einstein"], "hybrid + graph best result")
    eq(h["results"][0]["metadata"].get("graph_sourced"), True, "hybrid + graph: graph_sourced")


@suite.test
def test_export_graphml_and_json(s):
    r = s.client.get("/collections/%s/graph/export?format=graphml" % S["coll"], key=S["key"])
    expect(r, 200, what="export graphml")
    check(r.headers.get("content-type", "").startswith("application/graphml+xml"),
          "content type %r" % r.headers.get("content-type"))
    root = ET.fromstring(r.body)
    eq(root.tag, GML + "graphml", "root element")
    keys = {k.get("id"): k for k in root.findall(GML + "key")}
    for k in ("name", "type", "mention_count", "relation", "weight"):
        check(k in keys, "GraphML key %s" % k)
    graphs = root.findall(GML + "graph")
    eq(len(graphs), 1, "one graph")
    g = graphs[0]
    eq(g.get("edgedefault"), "undirected", "edgedefault")
    nodes = {n.get("id"): n for n in g.findall(GML + "node")}
    edges = g.findall(GML + "edge")
    check(nodes and edges, "nodes and edges present")
    for e in edges:
        check(e.get("source") in nodes and e.get("target") in nodes, "edge ends are nodes")
        for d in e.findall(GML + "data"):
            check(d.get("key") in keys and keys[d.get("key")].get("for") == "edge", "edge data key")
    names = set()
    for n in nodes.values():
        for d in n.findall(GML + "data"):
            check(d.get("key") in keys and keys[d.get("key")].get("for") == "node", "node data key")
            if d.get("key") == "name":
                names.add(d.text)
    check("Marie Curie" in names, "Marie Curie in the GraphML")
    r = s.client.get("/collections/%s/graph/export?format=json" % S["coll"], key=S["key"])
    expect(r, 200, what="export json")
    j = r.json
    eq(len(j["nodes"]), len(nodes), "same nodes in JSON and GraphML")
    eq(len(j["edges"]), len(edges), "same edges in JSON and GraphML")
    ids = {n["id"] for n in j["nodes"]}
    for e in j["edges"]:
        check(e["source"] in ids and e["target"] in ids, "JSON edge ends")
    r = s.client.get("/collections/%s/graph/export?format=csv" % S["coll"], key=S["key"])
    expect(r, 422, "VALIDATION_ERROR", what="unknown format")


@suite.test
def test_tenancy(s):
    other = make_user(s.client, S["key"])["key"]
    for path in ("/collections/%s/graph/entities" % S["coll"],
                 "/collections/%s/graph/entities/%s" % (S["coll"], S["curie_id"]),
                 "/collections/%s/graph/export" % S["coll"]):
        expect(s.client.get(path, key=other), 404, "NOT_FOUND", what="another workspace: " + path)
    # the other user's own collection cannot reach our entity either
    oc = create_collection(s.client, other)["id"]
    r = s.client.get("/collections/%s/graph/entities/%s" % (oc, S["curie_id"]), key=other)
    expect(r, 404, "NOT_FOUND", what="entity through another collection")
    retrieve(s, "Marie Curie", key=other, status=404, mode="graph", collection_id=S["coll"])


@suite.test
def test_graph_false_collection(s):
    c = create_collection(s.client, S["key"], config={"graph": False})
    eq(c["config"]["graph"], False, "config graph false")
    d = upload_text(s.client, S["key"], c["id"], CURIE)
    wait_completed(s.client, S["key"], d["id"])
    eq(entities(s, c["id"])["data"], [], "no entities with graph:false")
    r = retrieve(s, "Marie Curie", mode="graph", collection_id=c["id"])
    eq(r["results"], [], "graph mode finds nothing there")
    check("graph_context" in r, "graph_context present: the graph took part")


@suite.test
def test_delete_removes_mentions_and_orphans(s):
    c = create_collection(s.client, S["key"])["id"]
    a = upload_text(s.client, S["key"], c, "Ada Lovelace wrote about the Analytical Engine. "
                    "Charles Babbage designed the Analytical Engine.")["id"]
    b = upload_text(s.client, S["key"], c, "Charles Babbage lived in London.")["id"]
    wait_completed(s.client, S["key"], a)
    wait_completed(s.client, S["key"], b)
    names = {e["name"]: e for e in entities(s, c)["data"]}
    check("Ada Lovelace" in names and "Charles Babbage" in names, "entities before: %r" % names)
    eq(names["Charles Babbage"]["mention_count"], 2, "Babbage mentioned in both documents")
    expect(s.client.delete("/documents/%s" % a, key=S["key"]), 204, what="delete")
    names = {e["name"]: e for e in entities(s, c)["data"]}
    check("Ada Lovelace" not in names, "orphaned entity left after delete: %r" % names)
    check("Analytical Engine" not in names, "orphaned entity left after delete")
    eq(names["Charles Babbage"]["mention_count"], 1, "Babbage keeps the other document's mention")
    det = s.client.get("/collections/%s/graph/entities/%s" % (c, names["Charles Babbage"]["id"]),
                       key=S["key"]).json
    eq(det["relations"] and [x["target_name"] for x in det["relations"]], ["London"],
       "relations of the deleted document are gone")
    expect(s.client.delete("/collections/%s" % c, key=S["key"]), 204, what="delete collection")


@suite.test
def test_rerank_builtin_ordering(s):
    c = create_collection(s.client, S["key"])["id"]
    filler = " ".join("word%d" % i for i in range(60))
    far = upload_text(s.client, S["key"], c, "solar %s panel %s efficiency" % (filler, filler))["id"]
    near = upload_text(s.client, S["key"], c, "%s solar panel efficiency %s" % (filler, filler))["id"]
    wait_completed(s.client, S["key"], far)
    wait_completed(s.client, S["key"], near)
    r = retrieve(s, "solar panel efficiency", mode="keyword", rerank=True, collection_id=c)
    eq([x["document"]["id"] for x in r["results"]][:2], [near, far],
       "terms close together rank first after rerank")
    S["rerank_coll"], S["near"], S["far"] = c, near, far


@suite.test
def test_rerank_remote_and_fallback(s):
    stub = StubOpenAI.start()
    try:
        srv = s.new_server(extra_args=["--rerank-url", stub.url])
        srv.start()
        cl = Client(srv.port)
        key = register_admin(cl)["key"]
        c = create_collection(cl, key)["id"]
        docs = {}
        for name, text in (("a", "solar panel efficiency solar panel"), ("b", "solar panel cost"),
                           ("c", "wind turbine efficiency and solar")):
            docs[name] = upload_text(cl, key, c, text)["id"]
        for d in docs.values():
            wait_completed(cl, key, d)
        stub.script([{"action": "ok", "prefer": "turbine"}], path="/rerank")
        r = cl.post("/retrievals", {"query": "solar panel efficiency", "mode": "keyword",
                                    "rerank": True, "collection_id": c}, key=key)
        expect(r, 200, what="remote rerank")
        eq(r.json["results"][0]["document"]["id"], docs["c"], "the service's order is used")
        reqs = [q for q in stub.requests() if q["path"] == "/rerank"]
        eq(len(reqs), 1, "one rerank call")
        check(reqs[0]["json"]["query"] == "solar panel efficiency" and
              len(reqs[0]["json"]["documents"]) == 3, "rerank request shape: %r" % reqs[0]["json"])
        # failures fall back to the built-in reranker: still 200 and results
        for step in ({"action": "status", "status": 500}, {"action": "malformed"},
                     {"action": "wrong_count"}):
            stub.script([step], path="/rerank")
            r = cl.post("/retrievals", {"query": "solar panel efficiency %s" % step["action"],
                                        "mode": "keyword", "rerank": True, "collection_id": c}, key=key)
            expect(r, 200, what="rerank fallback after %r" % step)
            check(len(r.json["results"]) >= 2, "fallback results")
        m = cl.get("/metrics", api=False).body.decode()
        check("engram_rerank_errors_total 3" in m, "rerank errors counted: %s" %
              [l for l in m.splitlines() if "rerank" in l])
        srv.stop()
    finally:
        stub.stop()


@suite.test
def test_llm_extractor(s):
    stub = StubOpenAI.start()
    try:
        srv = s.new_server(
                           extra_args=["--llm-url", stub.url, "--llm-model", "stub"])
        srv.start()
        cl = Client(srv.port)
        key = register_admin(cl)["key"]
        c = create_collection(cl, key)["id"]
        # good JSON: the stub's extraction (two-word names are persons)
        d = upload_text(cl, key, c, "Grace Hopper wrote compilers. Grace Hopper met Alan Turing.")["id"]
        wait_completed(cl, key, d)
        names = {e["name"]: e for e in entities_of(cl, key, c)}
        check("Grace Hopper" in names and names["Grace Hopper"]["type"] == "person",
              "LLM entities: %r" % names)
        eq(names["Grace Hopper"]["mention_count"], 2, "mentions counted in the chunk text")
        calls = [q for q in stub.requests() if q["path"] == "/v1/chat/completions"]
        eq(len(calls), 1, "one LLM call for one chunk")
        # bad JSON, a wrong shape, a 500: each falls back to the built-in extractor
        for i, step in enumerate(({"action": "ok", "content": "sorry, no JSON today"},
                                  {"action": "ok", "content": '{"chunks": [{"index": 7, "entities": []}]}'},
                                  {"action": "status", "status": 500})):
            stub.script([step] * 4, path="/v1/chat/completions")
            d = upload_text(cl, key, c, "Katherine Johnson worked at NASA Langley %d." % i)["id"]
            wait_completed(cl, key, d)
            names = {e["name"] for e in entities_of(cl, key, c)}
            check("Katherine Johnson" in names, "fallback extraction after %r: %r" % (step, names))
        m = cl.get("/metrics", api=False).body.decode()
        check("engram_llm_errors_total 3" in m, "LLM errors counted: %s" %
              [l for l in m.splitlines() if "llm" in l])
        srv.stop()
    finally:
        stub.stop()


def entities_of(cl, key, c):
    r = cl.get("/collections/%s/graph/entities?limit=100" % c, key=key)
    expect(r, 200, what="entities")
    return r.json["data"]


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
