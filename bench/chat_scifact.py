#!/usr/bin/env python3
"""engram's own time to the first chat delta over HTTP, on BEIR SciFact.

Starts build/engram with --llm-url pointing at the stub LLM of the tests
(tests/integration/stub_llm.py, run inside this process, answering at
once), uploads the 5,183 SciFact abstracts through the HTTP API (as
bench/http_scifact.py does, with bench/common.py) and sends the 300 test
queries to POST /api/v1/chat (streaming, default retrieval, memories on)
one at a time on one keep-alive connection. For each query it records:

  ttfd       client send -> first "delta" frame received (end to end)
  server_*   engram's own clock (done.metadata.prepare_ms, first_delta_ms)
  before     client send -> the stub received the LLM request
             (engram: parse, session, retrieval, memories, prompt, connect)
  relay      stub wrote its first delta -> the client read it
             (engram: curl read, SSE parse, our frame written)
  own        before + relay: engram's own overhead, without the stub's

The stub and the client share one clock (this process). Then the same data
is served again without an LLM and the extractive answerer's time to the
first delta is measured the same way. Prints p50/p99 (ms); target: own p99
under 10 ms.

Usage: bench/chat_scifact.py [--binary build/engram] [--data ../shared/data/scifact]
       [--queries N] [--json]
"""
import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from common import DEFAULT_BINARY, DEFAULT_DATA, Api, Server, load_beir, pct  # noqa: E402
from stub_llm import StubLLM  # noqa: E402

SERVE = ["--ingest-threads", "2", "--rate-limit", "0"]


def ingest(port, corpus):
    api = Api(port)
    key = api.register()
    cid = api.collection("scifact")
    api.upload_corpus(cid, corpus, beir_ids=False)
    api.wait_completed(cid, len(corpus), poll=0.5)
    for m in ("The user is a biomedical researcher.", "The user reads about vaccines and immunity."):
        api.req("POST", "/api/v1/memories", {"type": "semantic", "content": m})
    return key, cid


class ChatConn:
    """POST /api/v1/chat on one keep-alive socket; times the first delta."""

    def __init__(self, port, key):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.key = key

    def ask(self, body):
        data = json.dumps(body).encode()
        head = ("POST /api/v1/chat HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (self.key, len(data))).encode()
        t0 = time.monotonic()
        self.sock.sendall(head + data)
        buf = b""
        t_first = None
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            buf += chunk
            if t_first is None and b"event: delta" in buf:
                t_first = time.monotonic()
            if buf.endswith(b"\r\n0\r\n\r\n"):
                break
        if not buf.startswith(b"HTTP/1.1 200"):
            sys.exit("chat failed: %r" % buf[:300])
        m = re.search(rb"event: done\ndata: (\{.*?\})\n\n", buf, re.S)
        md = json.loads(m.group(1))["metadata"] if m else {}
        return t0, t_first, md


def run_queries(port, key, cid, texts, stub=None):
    cc = ChatConn(port, key)
    out = {"ttfd": [], "before": [], "relay": [], "own": [], "server_prepare": [], "server_first": []}
    for warm in (0, 1):
        for q in (texts[:30] if not warm else texts):
            if stub:
                n_req, n_str = len(stub.requests), len(stub.streams)
            t0, t1, md = cc.ask({"message": q, "collection_id": cid})
            if not warm:
                continue
            out["ttfd"].append((t1 - t0) * 1000)
            if "prepare_ms" in md:
                out["server_prepare"].append(md["prepare_ms"])
            if "first_delta_ms" in md:
                out["server_first"].append(md["first_delta_ms"])
            if stub:
                t_req = stub.requests[n_req]["t"]
                t_sent = stub.streams[n_str]["sent"][0][1]
                out["before"].append((t_req - t0) * 1000)
                out["relay"].append((t1 - t_sent) * 1000)
                out["own"].append(((t_req - t0) + (t1 - t_sent)) * 1000)
    return {k: (round(pct(v, 0.5), 3), round(pct(v, 0.99), 3)) for k, v in out.items() if v}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=DEFAULT_BINARY)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    corpus, queries, qrels = load_beir(args.data)
    texts = [queries[q] for q in queries if q in qrels][:args.queries]
    stub = StubLLM()
    stub.set_plan(deltas=["Answer ", "from ", "the stub [1]."])
    tmp = tempfile.mkdtemp(prefix="engram-chatbench-")
    results = {}
    try:
        with Server(args.binary, SERVE + ["--llm-url", stub.url, "--llm-model", "stub"],
                    data_dir=tmp) as srv:
            t = time.time()
            key, cid = ingest(srv.port, corpus)
            results["ingest_s"] = round(time.time() - t, 1)
            results["llm"] = run_queries(srv.port, key, cid, texts, stub)
        with Server(args.binary, SERVE, data_dir=tmp) as srv:
            results["extractive"] = run_queries(srv.port, key, cid, texts)
    finally:
        stub.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results["documents"] = len(corpus)
    results["queries"] = len(texts)
    if args.json:
        print(json.dumps(results))
        return
    print("engram chat: time to the first delta over HTTP, SciFact (%d docs, %d queries, "
          "one keep-alive connection)" % (len(corpus), len(texts)))
    print("  %-34s %10s %10s" % ("", "p50 ms", "p99 ms"))
    rows = [("stub LLM: client -> first delta", results["llm"]["ttfd"]),
            ("  engram before the LLM call", results["llm"]["before"]),
            ("  engram relaying the first delta", results["llm"]["relay"]),
            ("  engram's own overhead (sum)", results["llm"]["own"]),
            ("  server: request -> prompt ready", results["llm"].get("server_prepare", (0, 0))),
            ("  server: request -> first delta", results["llm"].get("server_first", (0, 0))),
            ("extractive: client -> first delta", results["extractive"]["ttfd"]),
            ("  server: request -> first delta", results["extractive"].get("server_first", (0, 0)))]
    for name, (p50, p99) in rows:
        print("  %-34s %10.3f %10.3f" % (name, p50, p99))
    print("  target: engram's own overhead p99 < 10 ms -> %s" %
          ("met" if results["llm"]["own"][1] < 10 else "NOT met"))


if __name__ == "__main__":
    main()
