#!/usr/bin/env python3
"""stub_openai.py - a small OpenAI-compatible server for the tests.

It stands in for embedding (and, as others add handlers, chat and rerank)
services so engram's outbound code paths run for real, including their
failure paths. Standard library only (python3 >= 3.9).

Start it:

    python3 tests/integration/stub_openai.py --port 0 [--dim 8] [--watch-stdin]

It prints the port it listens on (one line, just the number) on stdout and
then serves on 127.0.0.1 until killed (SIGTERM/SIGINT) or, with
--watch-stdin, until its stdin reaches end of file (give it a pipe and it
dies with its parent). From Python, `StubOpenAI.start()` does all of that and
`stub.script(...)`, `stub.requests()` wrap the control endpoint.

Routes (the handler table ROUTES, by exact path; add yours with `route`):

    POST /v1/embeddings   {"model", "input": str | [str], "dimensions"?}
                          -> {"object":"list","data":[{"object":"embedding",
                              "index":i,"embedding":[...]}],"model",...}
                          Vectors are deterministic: a function of the text
                          and the dimension only (--dim, or "dimensions").

Scripting behaviour (the control endpoint, never recorded):

    POST /_control/script   {"path": "/v1/embeddings", "steps": [STEP, ...]}
        queues steps for that path; each request to the path consumes one.
    POST /_control/default  {"path": "/v1/embeddings", "step": STEP}
        the step used when the path's queue is empty ({"action":"ok"} at first).
    GET  /_control/requests -> {"requests": [{"path", "time", "model",
        "batch_size", "authorization", "json"}]}   (in arrival order)
    POST /_control/reset    forgets queues, defaults and recorded requests.

A STEP is an object with "action" and its parameters; any step may also
carry "delay": seconds to sleep before acting (longer than the client's
timeout: a timeout). Actions every route understands:

    ok          answer normally
    status      answer "status" (default 500) with "body" (a string, default
                an OpenAI-style error object) and "headers" (an object, e.g.
                {"Retry-After": "1"})
    malformed   200 with a body that is not JSON
    close       close the connection without answering

and /v1/embeddings also:

    wrong_dim   vectors of "dim" numbers (default: the normal dim + 1)
    mixed_dim   the last vector one number shorter than the others
    fewer       one item fewer than inputs
    shuffle     items in reverse order (with correct "index" fields)
    no_index    items without "index"
    base64      "embedding" as a base64 string
    nan         a non-number (a string) inside the first vector

Adding a route (chat, rerank): write `def handle_x(stub, req)` returning a
Reply (or None after writing the response itself), and register it with
`route("/v1/chat/completions", handle_x)` before `serve`. The handler gets
req.step (the step for this request), req.json (the parsed body or None),
req.headers (lower-cased names), req.path, req.query. For a streamed answer
(SSE) return Reply(body=<iterator of bytes>): each chunk is written and
flushed as it comes, and the connection closes at the end. Common actions
(status, malformed, close, delay) are applied before the handler runs.
"""

import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Reply:
    def __init__(self, status=200, body=b"", headers=None, content_type="application/json"):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type


def json_reply(obj, status=200, headers=None):
    return Reply(status, json.dumps(obj).encode(), headers)


class Request:
    def __init__(self, method, path, query, headers, raw, step):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.raw = raw
        self.step = step
        try:
            self.json = json.loads(raw) if raw else None
        except ValueError:
            self.json = None


ROUTES = {}


def route(path, handler):
    """Registers handler(stub, req) -> Reply | None for POSTs to path."""
    ROUTES[path] = handler


# ---- embeddings -----------------------------------------------------------

def vector(text, dim):
    """Deterministic numbers in [-1, 1) for text, not normalised."""
    out = []
    block = 0
    data = text.encode("utf-8", "surrogatepass")
    while len(out) < dim:
        digest = hashlib.sha256(data + b"\x00" + block.to_bytes(4, "big")).digest()
        for (word,) in struct.iter_unpack(">I", digest):
            out.append(round(word / 2**31 - 1.0, 6))
        block += 1
    return out[:dim]


def handle_embeddings(stub, req):
    body = req.json
    if not isinstance(body, dict) or "input" not in body or "model" not in body:
        return json_reply({"error": {"message": "expected an object with model and input",
                                     "type": "invalid_request_error"}}, 400)
    inputs = body["input"]
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
        return json_reply({"error": {"message": "input must be a string or a list of strings"}}, 400)
    if any(t == "" for t in inputs):
        return json_reply({"error": {"message": "input cannot be an empty string"}}, 400)
    dim = body.get("dimensions") or stub.dim
    step = req.step
    action = step.get("action", "ok")
    if action == "wrong_dim":
        dim = step.get("dim", dim + 1)
    items = [{"object": "embedding", "index": i, "embedding": vector(t, dim)}
             for i, t in enumerate(inputs)]
    if action == "mixed_dim" and items:
        items[-1]["embedding"] = items[-1]["embedding"][:-1]
    elif action == "fewer" and items:
        items.pop()
    elif action == "shuffle":
        items.reverse()
    elif action == "no_index":
        for it in items:
            del it["index"]
    elif action == "base64":
        for it in items:
            it["embedding"] = base64.b64encode(
                struct.pack("<%df" % len(it["embedding"]), *it["embedding"])).decode()
    elif action == "nan" and items:
        items[0]["embedding"][0] = "NaN"
    tokens = sum(len(t.split()) for t in inputs)
    return json_reply({"object": "list", "data": items, "model": body["model"],
                       "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


route("/v1/embeddings", handle_embeddings)


# ---- rerank (knowledge graph issue) ---------------------------------------
#
# POST /rerank {"query", "documents": [str]} -> {"results": [{"index",
# "relevance_score"}]} best first. Score: the share of the query's words the
# document contains; a step {"prefer": "word"} adds 10 to documents holding
# that word (so a test can tell this ranking from the built-in one).

def _words(text):
    out, cur = [], []
    for ch in text.lower():
        if ch.isalnum():
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def handle_rerank(stub, req):
    body = req.json
    if not isinstance(body, dict) or not isinstance(body.get("query"), str) or \
            not isinstance(body.get("documents"), list):
        return json_reply({"error": {"message": "expected query and documents"}}, 400)
    q = set(_words(body["query"]))
    prefer = req.step.get("prefer")
    results = []
    for i, d in enumerate(body["documents"]):
        dw = set(_words(d if isinstance(d, str) else ""))
        score = len(q & dw) / (len(q) or 1)
        if prefer and prefer in dw:
            score += 10
        results.append({"index": i, "relevance_score": round(score, 6)})
    results.sort(key=lambda r: -r["relevance_score"])
    if req.step.get("action") == "wrong_count" and results:
        results.pop()
    return json_reply({"results": results})


route("/rerank", handle_rerank)


# ---- chat completions for entity extraction (only if no other handler) ----
#
# Answers one JSON completion (not streamed). A step {"content": "..."}
# answers exactly that text; otherwise the content is extraction JSON made
# from the user message's "### Chunk N" sections: each run of capitalised
# words is an entity ("person" when two words, else "concept"), and
# consecutive entities of a chunk are related ("mentioned with").

def _extraction(prompt):
    chunks, cur, idx = [], None, None
    for line in prompt.split("\n"):
        if line.startswith("### Chunk "):
            if cur is not None:
                chunks.append((idx, "\n".join(cur)))
            idx, cur = int(line[len("### Chunk "):].strip()), []
        elif cur is not None:
            cur.append(line)
    if cur is not None:
        chunks.append((idx, "\n".join(cur)))
    out = []
    for idx, text in chunks:
        names, run = [], []
        for tok in text.replace(",", " ").replace(".", " ").split():
            if tok[:1].isupper():
                run.append(tok)
            else:
                if run:
                    names.append(" ".join(run))
                run = []
        if run:
            names.append(" ".join(run))
        seen = []
        for n in names:
            if n not in seen:
                seen.append(n)
        ents = [{"name": n, "type": "person" if len(n.split()) == 2 else "concept"} for n in seen]
        rels = [{"source": a, "target": b, "description": "mentioned with"}
                for a, b in zip(seen, seen[1:])]
        out.append({"index": idx, "entities": ents, "relations": rels})
    return json.dumps({"chunks": out})


def handle_chat_extraction(stub, req):
    body = req.json if isinstance(req.json, dict) else {}
    msgs = body.get("messages") or []
    user = next((m.get("content", "") for m in msgs if isinstance(m, dict) and m.get("role") == "user"), "")
    content = req.step.get("content")
    if content is None:
        content = _extraction(user)
    return json_reply({"id": "stub", "object": "chat.completion", "model": body.get("model", "stub"),
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}})


if "/v1/chat/completions" not in ROUTES:
    route("/v1/chat/completions", handle_chat_extraction)


# ---- server ---------------------------------------------------------------

class Stub:
    def __init__(self, dim):
        self.dim = dim
        self.lock = threading.Lock()  # guards queues, defaults and log
        self.queues = {}
        self.defaults = {}
        self.log = []

    def next_step(self, path):
        with self.lock:
            q = self.queues.get(path)
            if q:
                return q.pop(0)
            return dict(self.defaults.get(path, {"action": "ok"}))

    def record(self, path, req):
        body = req.json if isinstance(req.json, dict) else {}
        inputs = body.get("input")
        entry = {
            "path": path,
            "time": time.monotonic(),
            "model": body.get("model"),
            "batch_size": len(inputs) if isinstance(inputs, list) else (1 if inputs is not None else 0),
            "authorization": req.headers.get("authorization"),
            "json": req.json,
        }
        with self.lock:
            self.log.append(entry)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stub-openai/1"

    def log_message(self, fmt, *args):  # quiet: tests read stdout for the port only
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, reply):
        body = reply.body
        streamed = not isinstance(body, (bytes, bytearray))
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers.items():
            self.send_header(k, str(v))
        if streamed:
            self.send_header("Connection", "close")
            self.end_headers()
            for chunk in body:
                self.wfile.write(chunk)
                self.wfile.flush()
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _control(self, path, raw):
        stub = self.server.stub
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return json_reply({"error": "control body is not JSON"}, 400)
        if path == "/_control/requests":
            with stub.lock:
                return json_reply({"requests": list(stub.log)})
        if path == "/_control/reset":
            with stub.lock:
                stub.queues, stub.defaults, stub.log = {}, {}, []
            return json_reply({"ok": True})
        if path == "/_control/script":
            with stub.lock:
                stub.queues.setdefault(body.get("path", "/v1/embeddings"), []).extend(body.get("steps", []))
            return json_reply({"ok": True})
        if path == "/_control/default":
            with stub.lock:
                stub.defaults[body.get("path", "/v1/embeddings")] = body.get("step", {"action": "ok"})
            return json_reply({"ok": True})
        return json_reply({"error": "unknown control path"}, 404)

    def _handle(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        raw = self._read_body() if method == "POST" else b""
        try:
            if path.startswith("/_control/"):
                return self._send(self._control(path, raw))
            stub = self.server.stub
            handler = ROUTES.get(path)
            if handler is None or method != "POST":
                return self._send(json_reply({"error": {"message": "no route %s %s" % (method, path)}}, 404))
            step = stub.next_step(path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            req = Request(method, path, urllib.parse.parse_qs(url.query), headers, raw, step)
            stub.record(path, req)
            if step.get("delay"):
                time.sleep(float(step["delay"]))
            action = step.get("action", "ok")
            if action == "close":
                self.close_connection = True
                return None
            if action == "status":
                status = int(step.get("status", 500))
                text = step.get("body")
                body = text.encode() if isinstance(text, str) else json.dumps(
                    {"error": {"message": "stub error %d" % status, "type": "server_error"}}).encode()
                return self._send(Reply(status, body, step.get("headers")))
            if action == "malformed":
                return self._send(Reply(200, b'{"object": "list", "data": [{"embedding": [0.1, 0.2'))
            reply = handler(stub, req)
            if reply is not None:
                self._send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_POST(self):
        self._handle("POST")

    def do_GET(self):
        self._handle("GET")


def serve(port=0, dim=8, host="127.0.0.1", watch_stdin=False, out=sys.stdout):
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    server.stub = Stub(dim)
    print(server.server_address[1], file=out, flush=True)
    if watch_stdin:
        def watch():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


class StubOpenAI:
    """Runs the stub in a child process, for Python suites."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port
        self.url = "http://127.0.0.1:%d" % port

    @classmethod
    def start(cls, dim=8):
        import subprocess
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port", "0",
                                 "--dim", str(dim), "--watch-stdin"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        port = int(proc.stdout.readline())
        return cls(proc, port)

    def _call(self, method, path, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def script(self, steps, path="/v1/embeddings"):
        return self._call("POST", "/_control/script", {"path": path, "steps": steps})

    def default(self, step, path="/v1/embeddings"):
        return self._call("POST", "/_control/default", {"path": path, "step": step})

    def requests(self):
        return self._call("GET", "/_control/requests")["requests"]

    def reset(self):
        return self._call("POST", "/_control/reset", {})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dim", type=int, default=8, help="embedding dimension")
    ap.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches EOF")
    args = ap.parse_args()
    try:
        serve(args.port, args.dim, args.host, args.watch_stdin)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
