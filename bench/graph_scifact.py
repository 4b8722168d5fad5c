#!/usr/bin/env python3
"""Knowledge graph benchmark on BEIR SciFact (make bench-graph).

Starts build/engram (hash embedder, built-in extractor) on a free loopback
port with a temporary data directory and uploads the 5,183 SciFact
abstracts twice through the HTTP API: into a collection with config
graph:false, then into one with graph:true, timing each until every
document is completed (the ratio is the cost of the built-in extractor).
Then the 300 test queries run against the graph collection in each
configuration (one pass to warm up, one measured; each request body is
new, so the results cache never answers):

  hybrid | hybrid + enable_graph | hybrid + rerank | hybrid + enable_graph + rerank | graph

and one table shows nDCG@10 and the server's processing_time_ms (p50, p99).
Targets (docs/GRAPH.md): graph p50 < 5 ms; enable_graph and rerank do not
lower nDCG@10 below hybrid alone; ingest with the extractor <= 1.5x.

Usage: bench/graph_scifact.py [--binary build/engram] [--data ../shared/data/scifact]
       [--limit-docs N] [--json]
"""
import argparse
import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(data):
    corpus = {}
    with open(os.path.join(data, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            corpus[d["_id"]] = (d.get("title") or "") + " " + (d.get("text") or "")
    queries = {}
    with open(os.path.join(data, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels = {}
    with open(os.path.join(data, "qrels", "test.tsv"), encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, did, score = line.strip().split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    return corpus, queries, qrels


def ndcg10(ranked, rel):
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "engram"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "scifact"))
    ap.add_argument("--limit-docs", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    corpus, queries, qrels = load(args.data)
    if args.limit_docs:
        corpus = dict(list(corpus.items())[:args.limit_docs])

    tmp = tempfile.mkdtemp(prefix="engram-bench-graph-")
    proc = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:0", "--data", tmp,
                             "--log-level", "info", "--ingest-threads", "2", "--rate-limit", "0"],
                            stderr=subprocess.PIPE, text=True)
    port = None
    lines = []
    found = threading.Event()

    def drain():
        nonlocal port
        for line in proc.stderr:
            if port is None and "listening on http://" in line:
                port = int(line.split("listening on http://", 1)[1].split(" ", 1)[0].rsplit(":", 1)[1])
                found.set()
            elif len(lines) < 100:
                lines.append(line)
    threading.Thread(target=drain, daemon=True).start()
    found.wait(20)
    if port is None:
        proc.kill()
        sys.exit("engram did not start: " + "".join(lines[-5:]))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port)

        def req(method, path, body=None, key=None):
            h = {"Content-Type": "application/json"}
            if key:
                h["Authorization"] = "Bearer " + key
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
            r = conn.getresponse()
            data = r.read()
            return r.status, json.loads(data) if data else None

        st, u = req("POST", "/api/v1/auth/register", {"email": "bench@example.org", "password": "benchmark-pw"})
        key = u["api_key"]

        def ingest(name, graph):
            st, c = req("POST", "/api/v1/collections", {"name": name, "config": {"graph": graph}}, key)
            cid = c["id"]
            t0 = time.time()
            for did, text in corpus.items():
                st, d = req("POST", "/api/v1/documents",
                            {"collection_id": cid, "content": text, "title": did,
                             "metadata": {"beir_id": did}}, key)
                if st not in (200, 202):
                    sys.exit(f"upload failed: {st} {d}")
            while True:
                st, l = req("GET", f"/api/v1/documents?collection_id={cid}&status=completed&limit=1", None, key)
                if l["pagination"]["total"] == len(corpus):
                    break
                time.sleep(0.1)
            return cid, time.time() - t0

        _, plain_s = ingest("scifact-plain", False)
        cid, graph_s = ingest("scifact-graph", True)
        st, ents = req("GET", f"/api/v1/collections/{cid}/graph/entities?limit=1", None, key)
        n_entities = ents["pagination"]["total"]

        qids = [q for q in queries if q in qrels]
        configs = [("hybrid", {"mode": "hybrid"}),
                   ("hybrid + enable_graph", {"mode": "hybrid", "enable_graph": True}),
                   ("hybrid + rerank", {"mode": "hybrid", "rerank": True}),
                   ("hybrid + enable_graph + rerank", {"mode": "hybrid", "enable_graph": True, "rerank": True}),
                   ("graph", {"mode": "graph"})]
        rows = []
        for name, extra in configs:
            scores, ms = [], []
            for measured in (0, 1):
                for qid in qids:
                    body = {"query": queries[qid], "top_k": 10, "collection_id": cid, "pass": measured}
                    body.update(extra)
                    st, r = req("POST", "/api/v1/retrievals", body, key)
                    if st != 200:
                        sys.exit(f"retrieval failed: {st} {r}")
                    if not measured:
                        continue
                    ms.append(r["processing_time_ms"])
                    ranked = []
                    for res in r["results"]:
                        b = res["document"]["metadata"]["beir_id"]
                        if b not in ranked:
                            ranked.append(b)
                    scores.append(ndcg10(ranked, qrels[qid]))
            rows.append({"config": name, "ndcg10": round(sum(scores) / len(scores), 4),
                         "p50_ms": round(pct(ms, 0.5), 3), "p99_ms": round(pct(ms, 0.99), 3)})
        out = {"documents": len(corpus), "queries": len(qids), "entities": n_entities,
               "ingest_plain_s": round(plain_s, 2), "ingest_graph_s": round(graph_s, 2),
               "ingest_ratio": round(graph_s / plain_s, 3), "rows": rows}
        if args.json:
            print(json.dumps(out))
            return
        print("SciFact (%d documents, %d queries), hash embedder, built-in extractor: %d entities"
              % (len(corpus), len(qids), n_entities))
        print("ingest over HTTP: graph off %.1f s, graph on %.1f s: ratio %.2f (target <= 1.5)"
              % (plain_s, graph_s, graph_s / plain_s))
        print()
        print("| configuration | nDCG@10 | p50 ms | p99 ms |")
        print("| --- | --- | --- | --- |")
        for r in rows:
            print("| %s | %.4f | %.2f | %.2f |" % (r["config"], r["ndcg10"], r["p50_ms"], r["p99_ms"]))
        print("\nlatency: the server's processing_time_ms (retrieval, rendering and graph_context)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
