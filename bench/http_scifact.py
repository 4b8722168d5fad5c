#!/usr/bin/env python3
"""Keyword retrieval over HTTP on BEIR SciFact.

Starts build/engram on a free loopback port with a temporary data directory,
uploads the 5,183 SciFact abstracts through POST /api/v1/documents (title +
text, as BEIR indexes them), waits until every document is completed, then
sends the 300 test queries one at a time on one keep-alive connection and
reports client-side latency p50/p99 and nDCG@10 of the returned ranking.

Usage: bench/http_scifact.py [--binary build/engram] [--data ../shared/data/scifact] [--json]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_BINARY, DEFAULT_DATA, Api, Server, load_beir, ndcg10, ranked_beir_ids  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--modes", default="keyword,hybrid",
                    help="comma-separated retrieval modes to time on the same data")
    args = ap.parse_args()
    corpus, queries, qrels = load_beir(args.data)

    with Server(args.binary, ["--ingest-threads", "2", "--cache-mb", "0", "--rate-limit", "0"]) as srv:
        api = Api(srv.port)
        api.register()
        cid = api.collection("scifact")
        t0 = time.time()
        upload_s = api.upload_corpus(cid, corpus)
        api.wait_completed(cid, len(corpus), poll=0.2)
        ingest_s = time.time() - t0
        qids = [q for q in queries if q in qrels]
        out = {"documents": len(corpus), "queries": len(qids), "upload_s": round(upload_s, 2),
               "ingest_s": round(ingest_s, 2), "modes": {}}
        for mode in args.modes.split(","):
            lat, scores, server_ms = [], [], []
            for warm in range(2):
                for qid in qids:
                    t = time.perf_counter()
                    st, r = api.req("POST", "/api/v1/retrievals",
                                    {"query": queries[qid], "mode": mode, "top_k": 10,
                                     "collection_id": cid})
                    dt = (time.perf_counter() - t) * 1000
                    if st != 200:
                        sys.exit(f"retrieval failed: {st} {r}")
                    if warm:
                        lat.append(dt)
                        server_ms.append(r["processing_time_ms"])
                        scores.append(ndcg10(ranked_beir_ids(r["results"]), qrels[qid]))
            lat.sort()
            server_ms.sort()
            out["modes"][mode] = {
                "ndcg10": round(sum(scores) / len(scores), 4),
                "http_p50_ms": round(lat[len(lat) // 2], 3),
                "http_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
                "server_p50_ms": round(server_ms[len(server_ms) // 2], 3),
            }
        if args.json:
            print(json.dumps(out))
        else:
            print("engram over HTTP on SciFact (%d documents uploaded in %.1f s, searchable after "
                  "%.1f s; one keep-alive connection, client-side timing, top_k 10, results "
                  "cache off; the second of two passes over the 300 queries is timed)"
                  % (out["documents"], out["upload_s"], out["ingest_s"]))
            print("%-13s | %-7s | %-11s | %-11s | %-13s" % ("mode", "nDCG@10", "HTTP p50 ms",
                                                          "HTTP p99 ms", "server p50 ms"))
            for mode, m in out["modes"].items():
                print("%-13s | %-7.4f | %-11.3f | %-11.3f | %-13.3f" % (
                    mode, m["ndcg10"], m["http_p50_ms"], m["http_p99_ms"], m["server_p50_ms"]))


if __name__ == "__main__":
    main()
