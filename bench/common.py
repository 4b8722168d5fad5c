"""What the SciFact benchmarks share.

The BEIR files (corpus, test queries, qrels), nDCG@10 and percentiles as
the benchmarks compute them, an engram server on a free loopback port with
a temporary data directory, a keep-alive JSON client, and uploading a
corpus through the API until every document is completed.
"""
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
DEFAULT_BINARY = os.path.join(ROOT, "build", "engram")
DEFAULT_DATA = os.path.join(ROOT, "..", "shared", "data", "scifact")


def load_beir(data):
    """corpus {id: "title text"}, queries {id: text}, qrels {qid: {doc: grade}}."""
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
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def ranked_beir_ids(results):
    """The BEIR ids of retrieval results (metadata.beir_id), first hit of each document."""
    ranked = []
    for res in results:
        b = res["document"]["metadata"]["beir_id"]
        if b not in ranked:
            ranked.append(b)
    return ranked


class Server:
    """build/engram serve on 127.0.0.1:0 with a temporary data directory.

    extra: more `serve` options; data_dir: serve that directory instead (kept
    at stop). Lines of its output are kept (the last ones explain a failed
    start). Use as a context manager, or call stop()."""

    def __init__(self, binary, extra=(), prefix="engram-bench-", data_dir=None):
        self.owned = data_dir is None
        self.tmp = tempfile.mkdtemp(prefix=prefix) if self.owned else data_dir
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--data", self.tmp,
                                      "--log-level", "info"] + list(extra),
                                     stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = None
        self.lines = []
        found = threading.Event()

        def drain(stream):
            for line in stream:
                if self.port is None and "listening on http://" in line:
                    self.port = int(line.split("listening on http://", 1)[1].split(" ", 1)[0]
                                    .rsplit(":", 1)[1])
                    found.set()
                elif len(self.lines) < 100:
                    self.lines.append(line)
        for s in (self.proc.stderr, self.proc.stdout):
            threading.Thread(target=drain, args=(s,), daemon=True).start()
        found.wait(30)
        if self.port is None:
            self.proc.kill()
            if self.owned:
                shutil.rmtree(self.tmp, ignore_errors=True)
            sys.exit("engram did not start: " + "".join(self.lines[-5:]))

    def stop(self, timeout=120):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)
        if self.owned:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Api:
    """JSON requests on one keep-alive connection; req() answers (status, body)."""

    def __init__(self, port, key=None, timeout=120):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.key = key

    def req(self, method, path, body=None, key=None):
        h = {"Content-Type": "application/json"}
        if key or self.key:
            h["Authorization"] = "Bearer " + (key or self.key)
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None

    def register(self):
        """A new account; its API key becomes this client's."""
        st, u = self.req("POST", "/api/v1/auth/register",
                         {"email": "bench@example.org", "password": "benchmark-pw"})
        if st != 201 and st != 200:
            sys.exit(f"register failed: {st} {u}")
        self.key = u["api_key"]
        return self.key

    def collection(self, name, config=None):
        body = {"name": name}
        if config is not None:
            body["config"] = config
        st, c = self.req("POST", "/api/v1/collections", body)
        if st not in (200, 201):
            sys.exit(f"collection failed: {st} {c}")
        return c["id"]

    def wait_completed(self, cid, n, poll=0.1):
        """Until n documents of the collection are completed; exits on a failed one."""
        while True:
            st, lst = self.req("GET", f"/api/v1/documents?collection_id={cid}&status=completed&limit=1")
            if lst["pagination"]["total"] >= n:
                return
            st, f = self.req("GET", f"/api/v1/documents?collection_id={cid}&status=failed&limit=1")
            if f["pagination"]["total"]:
                sys.exit("%d document(s) failed to ingest" % f["pagination"]["total"])
            time.sleep(poll)

    def upload_corpus(self, cid, corpus, beir_ids=True):
        """Uploads every document one after the other; seconds until all were acknowledged."""
        t0 = time.time()
        for did, text in corpus.items():
            body = {"collection_id": cid, "content": text, "title": did}
            if beir_ids:
                body["metadata"] = {"beir_id": did}
            st, d = self.req("POST", "/api/v1/documents", body)
            if st not in (200, 202):
                sys.exit(f"upload failed: {st} {d}")
        return time.time() - t0
