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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "engram"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "scifact"))
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--modes", default="keyword,hybrid",
                    help="comma-separated retrieval modes to time on the same data")
    args = ap.parse_args()
    corpus, queries, qrels = load(args.data)

    tmp = tempfile.mkdtemp(prefix="engram-bench-")
    proc = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:0", "--data", tmp,
                             "--log-level", "info", "--ingest-threads", "2",
                             "--cache-mb", "0", "--rate-limit", "0"],
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
        st, c = req("POST", "/api/v1/collections", {"name": "scifact"}, key)
        cid = c["id"]
        t0 = time.time()
        ids = {}
        for did, text in corpus.items():
            st, d = req("POST", "/api/v1/documents",
                        {"collection_id": cid, "content": text, "title": did, "metadata": {"beir_id": did}}, key)
            if st not in (200, 202):
                sys.exit(f"upload failed: {st} {d}")
            ids[d["id"]] = did
        upload_s = time.time() - t0
        while True:
            st, l = req("GET", f"/api/v1/documents?collection_id={cid}&status=completed&limit=1", None, key)
            if l["pagination"]["total"] == len(corpus):
                break
            st, f = req("GET", f"/api/v1/documents?collection_id={cid}&status=failed&limit=1", None, key)
            if f["pagination"]["total"]:
                sys.exit("a document failed to ingest")
            time.sleep(0.2)
        ingest_s = time.time() - t0
        qids = [q for q in queries if q in qrels]
        out = {"documents": len(corpus), "queries": len(qids), "upload_s": round(upload_s, 2),
               "ingest_s": round(ingest_s, 2), "modes": {}}
        for mode in args.modes.split(","):
            lat, scores, server_ms = [], [], []
            for warm in range(2):
                for qid in qids:
                    t = time.perf_counter()
                    st, r = req("POST", "/api/v1/retrievals",
                                {"query": queries[qid], "mode": mode, "top_k": 10,
                                 "collection_id": cid}, key)
                    dt = (time.perf_counter() - t) * 1000
                    if st != 200:
                        sys.exit(f"retrieval failed: {st} {r}")
                    if warm:
                        lat.append(dt)
                        server_ms.append(r["processing_time_ms"])
                        ranked = []
                        for res in r["results"]:
                            b = res["document"]["metadata"]["beir_id"]
                            if b not in ranked:
                                ranked.append(b)
                        scores.append(ndcg10(ranked, qrels[qid]))
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
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
