#!/usr/bin/env python3
"""Ingestion end to end on BEIR SciFact, beside SQLite FTS5's bulk index.

Starts build/engram (release) on loopback with a temporary data directory,
uploads all 5,183 SciFact abstracts through POST /api/v1/documents from
several client threads at once (hash embedder, BM25, HNSW and the graph, as
configured by default), and reports documents/s and MB/s from the first
upload until every document is completed (searchable). While the ingestion
runs, another process sends keyword queries on its own connection and
records their latency (client side, and the server's processing_time_ms).
Then SQLite FTS5 (porter) indexes the same title + text in one
transaction, timed the same way (wall clock), for scale.

Usage: bench/ingest_scifact.py [--binary build/engram] [--data ../shared/data/scifact]
                               [--clients 4] [--graph on|off]
"""
import argparse
import http.client
import multiprocessing
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_BINARY, DEFAULT_DATA, Api, Server, load_beir, pct  # noqa: E402


def thread_cpu(pid, name):
    """CPU seconds (user + system) of the process's threads called name."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        if comm == name:
            fields = st[st.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def querier(port, key, cid, queries, all_done, results):
    """In a process of its own, so the uploaders' threads never hold it up:
    a steady 50 keyword queries/s (a busy interactive user base, not a
    flood: latency while ingesting, not throughput). Puts (client ms,
    server processing_time_ms) lists on results."""
    cc = Api(port, key)
    lat, server = [], []
    i = 0
    next_t = time.perf_counter()
    while not all_done.is_set():
        next_t += 0.02
        pause = next_t - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        t = time.perf_counter()
        st, r = cc.req("POST", "/api/v1/retrievals", {"query": queries[i % len(queries)],
                                                       "mode": "keyword", "top_k": 10,
                                                       "collection_id": cid})
        if st == 200:
            lat.append((time.perf_counter() - t) * 1000)
            server.append(r["processing_time_ms"])
        i += 1
    results.put((lat, server))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--graph", default="on", choices=("on", "off"))
    args = ap.parse_args()
    corpus, qmap, _ = load_beir(args.data)
    docs, queries = list(corpus.items()), list(qmap.values())
    total_bytes = sum(len(t.encode()) for _, t in docs)

    srv = Server(args.binary, ["--rate-limit", "0", "--cache-mb", "0"], prefix="engram-bench-ingest-")
    port, proc = srv.port, srv.proc
    try:
        c = Api(port)
        key = c.register()
        cid = c.collection("scifact", {"graph": args.graph == "on"})

        ids, lock, errors = [], threading.Lock(), []
        all_done = multiprocessing.Event()

        def uploader(part):
            cc = Api(port, key)
            for did, text in part:
                st, d = cc.req("POST", "/api/v1/documents", {"collection_id": cid, "content": text,
                                                              "title": did})
                if st not in (200, 202):
                    errors.append((st, d))
                    continue
                with lock:
                    ids.append(d["id"])

        parts = [docs[i::args.clients] for i in range(args.clients)]
        results = multiprocessing.Queue()
        qp = multiprocessing.Process(target=querier, args=(port, key, cid, queries, all_done, results))
        t0 = time.time()
        qp.start()
        ths = [threading.Thread(target=uploader, args=(p,)) for p in parts]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        upload_s = time.time() - t0
        while True:
            st, l = c.req("GET", "/api/v1/documents?collection_id=%s&status=completed&limit=1" % cid)
            if l["pagination"]["total"] >= len(ids):
                break
            st, f = c.req("GET", "/api/v1/documents?collection_id=%s&status=failed&limit=1" % cid)
            if f["pagination"]["total"]:
                errors.append(("failed documents", f["pagination"]["total"]))
                break
            time.sleep(0.1)
        searchable_s = time.time() - t0
        all_done.set()
        q_lat, q_server = results.get(timeout=60)
        qp.join()
        metrics = {}
        mc = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mc.request("GET", "/metrics")
        for line in mc.getresponse().read().decode().splitlines():
            if line and not line.startswith("#") and " " in line:
                name, val = line.rsplit(" ", 1)
                metrics[name] = float(val)
        writer_cpu = thread_cpu(proc.pid, "engram-writer")
        rss = 0
        with open("/proc/%d/status" % proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = int(line.split()[1]) // 1024
    finally:
        srv.stop()

    # SQLite FTS5 bulk index of the same text, one transaction.
    t0 = time.time()
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(id UNINDEXED, body, tokenize='porter unicode61')")
    with db:
        db.executemany("INSERT INTO t VALUES (?, ?)", docs)
    fts_s = time.time() - t0

    print("SciFact ingestion: %d documents, %.1f MB, %d upload clients, graph %s"
          % (len(docs), total_bytes / 1e6, args.clients, args.graph))
    print("%-40s | %-10s | %-8s | %-8s" % ("system", "seconds", "docs/s", "MB/s"))
    print("%-40s | %-10.1f | %-8.0f | %-8.2f" % ("engram HTTP upload -> all searchable", searchable_s,
                                                len(docs) / searchable_s, total_bytes / 1e6 / searchable_s))
    print("%-40s | %-10.1f | %-8.0f | %-8.2f" % ("  (of which uploads acknowledged)", upload_s,
                                                len(docs) / upload_s, total_bytes / 1e6 / upload_s))
    print("%-40s | %-10.2f | %-8.0f | %-8.2f" % ("SQLite FTS5 bulk index (in-process)", fts_s,
                                                len(docs) / fts_s, total_bytes / 1e6 / fts_s))
    print("keyword queries during ingestion: %d, p50 %.2f ms, p99 %.2f ms (the server's own time: "
          "p50 %.2f ms, p99 %.2f ms); server peak RSS %d MiB"
          % (len(q_lat), pct(q_lat, 0.5), pct(q_lat, 0.99), pct(q_server, 0.5), pct(q_server, 0.99),
             rss))
    commits = metrics.get("engram_lmdb_commits", 0)
    ops = metrics.get("engram_lmdb_write_ops", 0)
    print("single writer: %d commits, %.1f writes per commit, %.1f s CPU (%.0f%% of the wall time)"
          % (commits, ops / commits if commits else 0, writer_cpu, 100 * writer_cpu / searchable_s))
    if errors:
        print("errors: %r" % errors[:5])
        sys.exit(1)


if __name__ == "__main__":
    main()
