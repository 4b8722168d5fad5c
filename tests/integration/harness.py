"""harness.py - shared machinery for the integration suites.

Each suite drives the real engram binary over loopback HTTP, exactly as a
client would. This module provides:

  * Server: starts `engram serve` on a free port with a temporary data
    directory, drains its log (stdout+stderr) into a list in a thread so the
    logs can be searched, and stops it with SIGTERM (or SIGKILL) and restarts
    it on the same data directory.
  * Client: a small HTTP client on http.client. req() answers a Response that
    unpacks as (status, headers, body, json). After every response it checks
    the API.md conventions: an X-Request-ID header on every answer, and the
    error body (detail, error.code, error.message, meta.request_id,
    meta.timestamp) on every non-2xx; with forbid_5xx any 5xx is a failure.
  * RawConn: a raw socket for framing tests (pipelining, chunked bodies,
    malformed requests), with a response reader that handles Content-Length,
    chunked and read-until-close bodies.
  * helpers: register_admin, make_user, create_collection, upload_text,
    upload_multipart, wait_completed, search.
  * Suite: a registry of test functions run in order. Each prints exactly
    "PASS <suite>.<name>" or "FAIL <suite>.<name>: <reason>" (then the
    traceback); after every test the server must still be alive and its log
    must hold no sanitizer report. The process exits 1 if anything failed.

Only the Python standard library is used (python3 >= 3.9).
"""

import argparse
import http.client
import json as jsonlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

KEY_RE = re.compile(r"^eg_[A-Za-z0-9]{40}$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
REQID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
LISTEN_RE = re.compile(r"listening on https?://127\.0\.0\.1:(\d+)")
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")
API = "/api/v1"


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def short(b, n=300):
    if isinstance(b, (bytes, bytearray)):
        b = b.decode("utf-8", "replace")
    b = str(b)
    return b if len(b) <= n else b[:n] + "..."


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/asan/engram")
    ap.add_argument("--keep", action="store_true", help="keep temp data dirs")
    ap.add_argument("--only", default="", help="run only tests whose name contains this")
    args, _ = ap.parse_known_args()
    return args


# --------------------------------------------------------------------------
# Server process


class Server:
    """One engram serve process on a loopback port with its own data dir."""

    def __init__(self, binary, data_dir=None, extra_args=None, optional_args=None):
        self.binary = os.path.abspath(binary)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="engram-it-")
        self.extra_args = list(extra_args or [])
        # Args tried first and dropped when the server refuses to start with
        # them (a setting that may not exist yet, like --rate-limit).
        self.optional_args = list(optional_args or [])
        self.proc = None
        self.port = None
        self.logs = []          # every line the server wrote, in order
        self.log_lock = threading.Lock()
        self.reader = None
        self.sanitizer_seen = 0  # index into logs up to which we scanned

    def _spawn(self, args):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        cmd = [self.binary, "serve", "--listen", "127.0.0.1:0", "--data", self.data_dir,
               "--log-level", "info"] + args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env)
        found = threading.Event()
        port_box = []
        proc = self.proc

        def drain():
            for raw in iter(proc.stdout.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with self.log_lock:
                    self.logs.append(line)
                if not found.is_set():
                    m = LISTEN_RE.search(line)
                    if m:
                        port_box.append(int(m.group(1)))
                        found.set()
            found.set()

        self.reader = threading.Thread(target=drain, daemon=True)
        self.reader.start()
        found.wait(20)
        if port_box:
            self.port = port_box[0]
            return True
        return False

    def start(self):
        if self.optional_args:
            n_before = len(self.logs)
            if self._spawn(self.extra_args + self.optional_args):
                return self
            self._reap()
            print("NOTE server refused optional args %r; retrying without. Log:\n%s" %
                  (self.optional_args, "\n".join(self.logs[n_before:][-10:])))
            self.optional_args = []
        if not self._spawn(self.extra_args):
            tail = "\n".join(self.logs[-30:])
            self._reap()
            raise RuntimeError("server did not log 'listening on' within 20 s; log tail:\n" + tail)
        return self

    def _reap(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        if self.reader:
            self.reader.join(5)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            rc = None
        if self.reader:
            self.reader.join(5)
        self.proc = None
        return rc

    def kill(self):
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait(10)
        if self.reader:
            self.reader.join(5)
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self, keep=False):
        if self.proc is not None:
            self.stop()
        if self.own_dir and not keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_lines(self):
        with self.log_lock:
            return list(self.logs)

    def json_logs(self):
        out = []
        for line in self.log_lines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(jsonlib.loads(line))
                except ValueError:
                    pass
        return out

    def new_sanitizer_lines(self):
        lines = self.log_lines()
        bad = [ln for ln in lines[self.sanitizer_seen:] if any(m in ln for m in SANITIZER_MARKS)]
        self.sanitizer_seen = len(lines)
        return bad

    def tail(self, n=40):
        return "\n".join(self.log_lines()[-n:])


def run_cli(binary, args, timeout=60):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    p = subprocess.run([os.path.abspath(binary)] + args, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def cli_user_add(binary, data_dir, email, admin=False):
    args = ["user", "add", "--email", email, "--data", data_dir]
    if admin:
        args.append("--admin")
    rc, out, err = run_cli(binary, args)
    check(rc == 0, "user add exited %s: %s %s" % (rc, short(out), short(err)))
    m = re.search(r"eg_[A-Za-z0-9]{40}", out)
    check(m is not None, "user add printed no key: %r" % short(out))
    return m.group(0)


# --------------------------------------------------------------------------
# HTTP client


class Response:
    def __init__(self, status, headers, raw_headers, body, json):
        self.status = status
        self.headers = headers          # lowercased name -> value (last wins)
        self.raw_headers = raw_headers  # [(name, value)] as received
        self.body = body
        self.json = json

    def __iter__(self):
        return iter((self.status, self.headers, self.body, self.json))

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.raw_headers if k.lower() == name]

    def __repr__(self):
        return "<%s %s>" % (self.status, short(self.body, 200))


def parse_json(body):
    if not body:
        return None
    s = body.lstrip()[:1]
    if s not in (b"{", b"["):
        return None
    try:
        return jsonlib.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None


def check_error_body(status, headers, body, js, where=""):
    """The API.md error shape; raises TestFailure when it is not there."""
    ctx = "%s %s" % (where, status)
    check(isinstance(js, dict), "%s: error answer is not a JSON object: %r" % (ctx, short(body)))
    check(isinstance(js.get("detail"), str) and js["detail"],
          "%s: error body lacks 'detail': %r" % (ctx, short(body)))
    err = js.get("error")
    check(isinstance(err, dict), "%s: error body lacks 'error' object: %r" % (ctx, short(body)))
    check(isinstance(err.get("code"), str) and err["code"],
          "%s: error.code missing: %r" % (ctx, short(body)))
    check(isinstance(err.get("message"), str) and err["message"],
          "%s: error.message missing: %r" % (ctx, short(body)))
    if "details" in err:
        check(err["details"] is None or isinstance(err["details"], dict),
              "%s: error.details not an object: %r" % (ctx, short(body)))
    meta = js.get("meta")
    check(isinstance(meta, dict), "%s: error body lacks 'meta': %r" % (ctx, short(body)))
    check(isinstance(meta.get("request_id"), str) and meta["request_id"],
          "%s: meta.request_id missing: %r" % (ctx, short(body)))
    check(isinstance(meta.get("timestamp"), str) and TIME_RE.match(meta["timestamp"]),
          "%s: meta.timestamp not RFC 3339 UTC: %r" % (ctx, meta.get("timestamp")))
    rid = headers.get("x-request-id")
    if rid is not None:
        eq(meta["request_id"], rid, "%s: meta.request_id vs X-Request-ID header" % ctx)
    if status == 405:
        check(headers.get("allow"), "%s: 405 without an Allow header" % ctx)
    if status == 429 and err.get("code") == "RATE_LIMITED":
        check(headers.get("retry-after"), "%s: 429 RATE_LIMITED without Retry-After" % ctx)


class Client:
    def __init__(self, port, keep_alive=False, forbid_5xx=False, timeout=30):
        self.port = port
        self.keep_alive = keep_alive
        self.forbid_5xx = forbid_5xx
        self.timeout = timeout
        self.conn = None

    def _conn(self):
        if self.keep_alive and self.conn is not None:
            return self.conn
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        if self.keep_alive:
            self.conn = c
        return c

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def req(self, method, path, json=None, headers=None, key=None, raw_body=None,
            content_type=None, check_shape=True, api=True, x_api_key=False, cookie=None):
        """One request. path is relative to /api/v1 unless api=False or it
        starts with '/health', '/ready', ... (root routes are passed with
        api=False). Returns a Response (unpacks as status, headers, body, json)."""
        url = (API + path) if api else path
        hdrs = {}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif raw_body is not None:
            body = raw_body if isinstance(raw_body, bytes) else raw_body.encode("utf-8")
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if key is not None:
            if x_api_key:
                hdrs["X-API-Key"] = key
            else:
                hdrs["Authorization"] = "Bearer " + key
        if cookie is not None:
            hdrs["Cookie"] = cookie
        if headers:
            hdrs.update(headers)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        last_exc = None
        for attempt in range(2):
            c = self._conn()
            try:
                c.request(method, url, body=body, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                raw = r.getheaders()
                will_close = r.will_close
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                # A kept-alive connection the server closed: retry once fresh.
                last_exc = e
                self.close()
                if not self.keep_alive or attempt == 1:
                    raise
        else:
            raise last_exc
        if not self.keep_alive or will_close:
            if self.keep_alive:
                self.close()
            else:
                c.close()
        hd = {}
        for k, v in raw:
            hd[k.lower()] = v
        resp = Response(r.status, hd, raw, data, parse_json(data))
        where = "%s %s" % (method, url)
        if check_shape:
            check("x-request-id" in hd, "%s: answer %s without X-Request-ID" % (where, r.status))
            if not (200 <= r.status < 300):
                check_error_body(r.status, hd, data, resp.json, where)
        if self.forbid_5xx and r.status >= 500:
            raise TestFailure("%s: server answered %s: %s" % (where, r.status, short(data)))
        return resp

    # shorthands
    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.req("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.req("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)


def expect(resp, status, code=None, what=""):
    """Asserts the status (an int or a tuple of allowed ints) and error code."""
    allowed = status if isinstance(status, (tuple, list, set)) else (status,)
    check(resp.status in allowed, "%s: status %s, want %s; body %s" %
          (what or "request", resp.status, "/".join(str(s) for s in allowed), short(resp.body)))
    if code is not None and resp.status >= 300:
        got = (resp.json or {}).get("error", {}).get("code")
        codes = code if isinstance(code, (tuple, list, set)) else (code,)
        check(got in codes, "%s: error.code %r, want %s" % (what or "request", got, "/".join(codes)))
    return resp


# --------------------------------------------------------------------------
# Raw sockets


class RawConn:
    """A plain TCP connection for framing tests."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by server")
        self.buf += chunk

    def _read_line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_only=False, method="GET"):
        """Reads one response; returns a Response (raw_headers kept)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0]
        parts = status_line.split(" ", 2)
        check(len(parts) >= 2 and parts[0].startswith("HTTP/1."),
              "bad status line %r" % status_line)
        status = int(parts[1])
        raw = []
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                raw.append((k.strip(), v.strip()))
        hd = {}
        for k, v in raw:
            hd[k.lower()] = v
        body = b""
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200 or head_only:
            pass
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            while True:
                size_line = self._read_line().split(b";")[0].strip()
                size = int(size_line, 16)
                if size == 0:
                    while self._read_line() != b"":
                        pass
                    break
                body += self._read_exact(size)
                self._read_exact(2)
        elif "content-length" in hd:
            body = self._read_exact(int(hd["content-length"]))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            body, self.buf = self.buf, b""
        r = Response(status, hd, raw, body, parse_json(body))
        r.version = parts[0]
        return r

    def is_closed(self, wait=3.0):
        """True when the server has closed the connection (EOF or reset)
        within `wait` seconds and sent nothing more."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if data:
            self.buf += data
            return False
        return True


# --------------------------------------------------------------------------
# Helpers

_counter = [0]


def uniq(prefix="x"):
    _counter[0] += 1
    return "%s-%d-%s" % (prefix, _counter[0], uuid.uuid4().hex[:8])


def register_admin(client, email=None, password="correct horse battery"):
    email = email or (uniq("admin") + "@example.com")
    r = client.post("/auth/register", {"email": email, "password": password})
    expect(r, 201, what="register first user")
    return {"user_id": r.json["user_id"], "email": email, "password": password,
            "key": r.json["api_key"]}


def make_user(client, admin_key, email=None, password="correct horse battery", admin=False):
    email = email or (uniq("user") + "@example.com")
    body = {"email": email, "password": password}
    if admin:
        body["admin"] = True
    r = client.post("/admin/users", body, key=admin_key)
    expect(r, 201, what="POST /admin/users")
    return {"user_id": r.json["user_id"], "email": email, "password": password,
            "key": r.json["api_key"]}


def create_collection(client, key, name=None, config=None, **extra):
    body = {"name": name or uniq("coll")}
    if config is not None:
        body["config"] = config
    body.update(extra)
    r = client.post("/collections", body, key=key)
    expect(r, 201, what="POST /collections")
    return r.json


def upload_text(client, key, collection_id, content, title=None, metadata=None,
                want=(202,)):
    body = {"collection_id": collection_id, "content": content}
    if title is not None:
        body["title"] = title
    if metadata is not None:
        body["metadata"] = metadata
    r = client.post("/documents", body, key=key)
    expect(r, want, what="POST /documents (json)")
    return r.json


def multipart_body(fields, files):
    """fields: {name: str}; files: [(field, filename, content_type, bytes)].
    Returns (body bytes, content type header)."""
    boundary = "----engramtest" + uuid.uuid4().hex
    out = []
    for name, value in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" %
                    (boundary, name)).encode())
        out.append(value.encode("utf-8") if isinstance(value, str) else value)
        out.append(b"\r\n")
    for field, filename, ctype, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (boundary, field, filename, ctype)).encode())
        out.append(data)
        out.append(b"\r\n")
    out.append(("--%s--\r\n" % boundary).encode())
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def upload_multipart(client, key, collection_id, filename, data, ctype="text/plain",
                     title=None, metadata=None):
    fields = {"collection_id": collection_id}
    if title is not None:
        fields["title"] = title
    if metadata is not None:
        fields["metadata"] = jsonlib.dumps(metadata)
    body, ct = multipart_body(fields, [("file", filename, ctype, data)])
    return client.req("POST", "/documents", raw_body=body, content_type=ct, key=key)


def wait_completed(client, key, doc_id, timeout=30):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        r = client.get("/documents/%s/status" % doc_id, key=key)
        if r.status == 429:
            time.sleep(float(r.headers.get("retry-after", "1")))
            continue
        expect(r, 200, what="GET /documents/{id}/status")
        last = r.json
        st = last.get("status")
        check(st in ("pending", "processing", "completed", "failed"),
              "unknown document status %r" % st)
        if st == "completed":
            return last
        if st == "failed":
            raise TestFailure("document %s failed: %r" % (doc_id, last.get("error_message")))
        time.sleep(0.15)
    raise TestFailure("document %s not completed after %ss (last %r)" % (doc_id, timeout, last))


def search(client, key, query, collection_id=None, top_k=None, path="/retrievals", **extra):
    body = {"query": query, "mode": "keyword"}
    if collection_id is not None:
        body["collection_id"] = collection_id
    if top_k is not None:
        body["top_k"] = top_k
    body.update(extra)
    r = client.post(path, body, key=key)
    expect(r, 200, what="POST %s" % path)
    return r.json


def words(n, seed=1):
    """n filler words from a small vocabulary (deterministic)."""
    vocab = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
             "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
             "zulu river mountain lantern copper meadow harbor signal orchard").split()
    x = seed
    out = []
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(vocab[x % len(vocab)])
    return " ".join(out)


# --------------------------------------------------------------------------
# Test registry


class Suite:
    """Tests registered with @suite.test run in order against suite.server.

    A test whose function has attribute stops_server = True may leave the
    server stopped (no liveness check after it)."""

    def __init__(self, name, server_args=None, optional_args=None):
        self.name = name
        self.tests = []
        self.server_args = server_args or []
        self.optional_args = (optional_args if optional_args is not None
                              else ["--rate-limit", "0", "--auth-rate-limit", "0"])
        self.args = parse_args()
        self.binary = self.args.binary
        self.server = None
        self.client = None
        self.state = {}
        self.extra_servers = []

    def test(self, fn):
        self.tests.append(fn)
        return fn

    def restart_server(self, kill=False):
        """Stops (SIGTERM, or SIGKILL with kill=True) and starts the main
        server on the same data dir; returns the SIGTERM exit code."""
        rc = None
        if kill:
            self.server.kill()
        else:
            rc = self.server.stop()
        self.server.start()
        self.client.port = self.server.port
        return rc

    def new_server(self, data_dir=None, extra_args=None):
        """An extra server (cleaned up at the end of the suite)."""
        s = Server(self.binary, data_dir=data_dir,
                   extra_args=extra_args if extra_args is not None else self.server_args,
                   optional_args=list(self.optional_args))
        self.extra_servers.append(s)
        return s

    def run(self, forbid_5xx=False):
        if not os.path.exists(self.binary):
            print("FAIL %s.setup: binary %s does not exist" % (self.name, self.binary))
            sys.exit(1)
        failed = 0
        self.server = Server(self.binary, extra_args=self.server_args,
                             optional_args=list(self.optional_args))
        try:
            self.server.start()
        except Exception as e:  # noqa: BLE001 - report and give up
            print("FAIL %s.setup: %s" % (self.name, e))
            self.server.cleanup(self.args.keep)
            sys.exit(1)
        self.client = Client(self.server.port, forbid_5xx=forbid_5xx)
        for fn in self.tests:
            name = fn.__name__
            if name.startswith("test_"):
                name = name[5:]
            if self.args.only and self.args.only not in name:
                continue
            t0 = time.time()
            reason = None
            tb = None
            try:
                fn(self)
            except Exception as e:  # noqa: BLE001 - one failure must not stop the rest
                reason = "%s: %s" % (type(e).__name__, e) if not isinstance(e, TestFailure) else str(e)
                tb = traceback.format_exc()
            if not getattr(fn, "stops_server", False):
                if not self.server.alive():
                    rc = self.server.proc.poll() if self.server.proc else None
                    reason = (reason + "; " if reason else "") + "server died (exit %s)" % rc
                    tb = (tb or "") + "server log tail:\n" + self.server.tail(60)
            san = self.server.new_sanitizer_lines()
            if san:
                reason = (reason + "; " if reason else "") + "sanitizer report in server log"
                tb = (tb or "") + "\n".join(san[:20]) + "\n" + self.server.tail(80)
            reason_line = (reason or "").replace("\n", " ")
            if reason is None:
                print("PASS %s.%s" % (self.name, name))
            else:
                failed += 1
                print("FAIL %s.%s: %s" % (self.name, name, reason_line))
                print(tb.rstrip())
            print("    (%.2fs)" % (time.time() - t0))
            sys.stdout.flush()
            if not getattr(fn, "stops_server", False) and not self.server.alive():
                try:
                    self.server.proc = None
                    self.server.start()
                    self.client.port = self.server.port
                except Exception as e:  # noqa: BLE001
                    print("NOTE could not restart server: %s" % e)
                    break
        # Clean shutdown at the end: SIGTERM must end the process with 0.
        if self.server.proc is not None:
            rc = self.server.stop()
            san = self.server.new_sanitizer_lines()
            if rc != 0 or san:
                failed += 1
                print("FAIL %s.shutdown: SIGTERM exit code %r%s" %
                      (self.name, rc, " with sanitizer report" if san else ""))
                print(self.server.tail(60))
        for s in self.extra_servers:
            s.cleanup(self.args.keep)
        self.server.cleanup(self.args.keep)
        sys.stdout.flush()
        sys.exit(1 if failed else 0)


def stops_server(fn):
    fn.stops_server = True
    return fn


def nonce(n=10):
    """A made-up word no other document contains (letters only, so every
    tokenizer keeps it whole)."""
    import random
    letters = "bcdfghjklmnpqrstvwxz"
    return "q" + "".join(random.choice(letters) for _ in range(n - 1))


def strip_meta(js):
    """An error body without its per-request parts, for comparing two."""
    js = jsonlib.loads(jsonlib.dumps(js))
    if isinstance(js, dict) and isinstance(js.get("meta"), dict):
        js["meta"].pop("request_id", None)
        js["meta"].pop("timestamp", None)
    return js


def list_all(client, key, path, page=100):
    """Every item of a paginated list endpoint."""
    out = []
    offset = 0
    sep = "&" if "?" in path else "?"
    while True:
        r = client.get("%s%slimit=%d&offset=%d" % (path, sep, page, offset), key=key)
        expect(r, 200, what="GET " + path)
        data = r.json["data"]
        out.extend(data)
        if not r.json["pagination"]["has_more"] or not data:
            return out
        offset += len(data)
