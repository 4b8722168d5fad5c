"""stub_llm.py - a small OpenAI-compatible chat service for the tests and
the chat benchmark.

POST /v1/chat/completions answers according to the stub's current plan
(StubLLM.plan, changed by the test between requests):

  deltas        list of strings sent as SSE deltas, in order
  pace_ms       pause before each delta after the first
  first_ms      pause before the first delta
  hold_event    a threading.Event: after delta 1 the stub waits (up to
                hold_timeout s) for it before sending the rest; the time
                delta 2 left is recorded (ordering checks, no latency bound)
  usage         dict sent in a final chunk, or None
  status        HTTP status; not 200 sends {"error": {"message": ...}}
  hang          read the request, then send nothing until the client leaves
  error_after   after this many deltas send an {"error": ...} event
  malformed_after  after this many deltas send "data: {not json"
  cut_after     after this many deltas close the connection (no [DONE])
  json          answer one non-streaming completion (application/json)

Every request is recorded in .requests (path, headers, JSON body); each
streamed answer records in .streams whether the client closed the
connection before the answer was finished ("closed_early") and when.

Run alone (python3 stub_llm.py [--port N]) it prints "port N" and serves
the default plan (three deltas at once, with usage).
Only the Python standard library is used.
"""

import http.server
import json
import select
import socket
import socketserver
import sys
import threading
import time

DEFAULT_PLAN = {"deltas": ["Engram ", "answers ", "[1]."], "pace_ms": 0, "first_ms": 0,
                "hold_event": None, "hold_timeout": 10.0, "usage": {"prompt_tokens": 11,
                "completion_tokens": 3, "total_tokens": 14}, "status": 200, "hang": False,
                "error_after": None, "malformed_after": None, "cut_after": None, "json": False}


def peer_closed(sock):
    """True when the peer has closed its side (readable with nothing to read)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_POST(self):
        stub = self.server.stub
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw.decode("utf-8")) if raw else None
        except ValueError:
            body = None
        with stub.lock:
            plan = dict(stub.plan)
            stub.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                  "body": body, "t": time.monotonic()})
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": "no such route"}})
            return
        if plan["status"] != 200:
            self._json(plan["status"], {"error": {"message": "stub failure %d" % plan["status"]}})
            return
        if plan["json"]:
            text = "".join(plan["deltas"])
            ans = {"id": "stub", "object": "chat.completion",
                   "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                "finish_reason": "stop"}]}
            if plan["usage"]:
                ans["usage"] = plan["usage"]
            self._json(200, ans)
            return
        self._stream(plan, body)

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, plan, body):
        stub = self.server.stub
        rec = {"closed_early": False, "closed_at": None, "sent": [], "done": False}
        with stub.lock:
            stub.streams.append(rec)
        sock = self.connection

        def gone():
            if peer_closed(sock):
                rec["closed_early"] = True
                rec["closed_at"] = time.monotonic()
                return True
            return False

        def pause(ms):
            end = time.monotonic() + ms / 1000.0
            while time.monotonic() < end:
                if gone():
                    return False
                time.sleep(0.01)
            return True

        def send(data):
            try:
                self.wfile.write(data)
                self.wfile.flush()
                return True
            except OSError:
                rec["closed_early"] = True
                rec["closed_at"] = time.monotonic()
                return False

        if plan["hang"]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not gone():
                time.sleep(0.02)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        if plan["first_ms"] and not pause(plan["first_ms"]):
            return
        for i, d in enumerate(plan["deltas"]):
            if plan["error_after"] is not None and i == plan["error_after"]:
                send(b'data: {"error": {"message": "stub mid-stream failure"}}\n\n')
                return
            if plan["malformed_after"] is not None and i == plan["malformed_after"]:
                send(b"data: {not json\n\n")
                return
            if plan["cut_after"] is not None and i == plan["cut_after"]:
                return
            if i == 1 and plan["hold_event"] is not None:
                rec["held"] = plan["hold_event"].wait(plan["hold_timeout"])
            elif i > 0 and plan["pace_ms"] and not pause(plan["pace_ms"]):
                return
            if gone():
                return
            chunk = {"id": "stub", "object": "chat.completion.chunk",
                     "choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
            rec["sent"].append((d, time.monotonic()))
            if not send(b"data: " + json.dumps(chunk).encode() + b"\n\n"):
                return
        fin = {"id": "stub", "object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        send(b"data: " + json.dumps(fin).encode() + b"\n\n")
        if plan["usage"]:
            send(b"data: " + json.dumps({"id": "stub", "choices": [],
                                         "usage": plan["usage"]}).encode() + b"\n\n")
        send(b"data: [DONE]\n\n")
        rec["done"] = True


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class StubLLM:
    """The stub on 127.0.0.1 (port 0: a free one), served by a thread."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.plan = dict(DEFAULT_PLAN)
        self.requests = []
        self.streams = []
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.stub = self
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_plan(self, **kw):
        with self.lock:
            self.plan = dict(DEFAULT_PLAN)
            self.plan.update(kw)

    def last_request(self):
        with self.lock:
            return self.requests[-1] if self.requests else None

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    port = 0
    if "--port" in sys.argv:
        port = int(sys.argv[sys.argv.index("--port") + 1])
    s = StubLLM(port)
    print("port %d" % s.port, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        s.stop()
