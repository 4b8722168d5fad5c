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
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_BINARY, DEFAULT_DATA, Api, Server, load_beir, ndcg10,  # noqa: E402
                    pct, ranked_beir_ids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--limit-docs", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    corpus, queries, qrels = load_beir(args.data)
    if args.limit_docs:
        corpus = dict(list(corpus.items())[:args.limit_docs])

    with Server(args.binary, ["--ingest-threads", "2", "--rate-limit", "0"],
                prefix="engram-bench-graph-") as srv:
        api = Api(srv.port)
        api.register()

        def ingest(name, graph):
            cid = api.collection(name, {"graph": graph})
            t0 = time.time()
            api.upload_corpus(cid, corpus)
            api.wait_completed(cid, len(corpus))
            return cid, time.time() - t0

        _, plain_s = ingest("scifact-plain", False)
        cid, graph_s = ingest("scifact-graph", True)
        st, ents = api.req("GET", f"/api/v1/collections/{cid}/graph/entities?limit=1")
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
                    st, r = api.req("POST", "/api/v1/retrievals", body)
                    if st != 200:
                        sys.exit(f"retrieval failed: {st} {r}")
                    if not measured:
                        continue
                    ms.append(r["processing_time_ms"])
                    scores.append(ndcg10(ranked_beir_ids(r["results"]), qrels[qid]))
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


if __name__ == "__main__":
    main()
