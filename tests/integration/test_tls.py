#!/usr/bin/env python3
"""test_tls.py - engram serve --tls-cert/--tls-key, as real TLS clients see it.

A self-signed RSA certificate (and an ECDSA one) is made with the openssl
command line when the suite starts; the server runs HTTPS only. Clients:
Python's ssl module, `curl` and `openssl s_client` (tools/deps/tls.test).

What a client must observe: TLS 1.2 works with ECDHE + AEAD suites; TLS 1.0
and 1.1 are refused; TLS 1.3 is refused too (mbedTLS 2.28 has no TLS 1.3
server); static-RSA, DHE and CBC suites are refused; renegotiation is
refused; plain HTTP on the port gets a plain-text 400 and a close; keep-alive,
a chunked multipart upload (in memory and spooled), register/upload/search
through curl, a large answer read slowly and a chat answer streamed as
server-sent events all work over TLS; a handshake that stalls is closed under
the header timeout; unreadable or mismatched certificate files stop the
server at start with a message naming the file.
"""
import atexit
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CERT_DIR = tempfile.mkdtemp(prefix="engram-tls-")
atexit.register(shutil.rmtree, CERT_DIR, True)


def _openssl(args):
    p = subprocess.run(["openssl"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), p.stderr.decode()[-400:]))


def make_certs():
    rsa_key, rsa_cert = os.path.join(CERT_DIR, "rsa.key"), os.path.join(CERT_DIR, "rsa.pem")
    _openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
              "-subj", "/CN=localhost", "-keyout", rsa_key, "-out", rsa_cert])
    ec_key, ec_cert = os.path.join(CERT_DIR, "ec.key"), os.path.join(CERT_DIR, "ec.pem")
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
              "-days", "2", "-subj", "/CN=localhost", "-keyout", ec_key, "-out", ec_cert])
    return rsa_cert, rsa_key, ec_cert, ec_key


RSA_CERT, RSA_KEY, EC_CERT, EC_KEY = make_certs()
S = h.Suite("test_tls", server_args=["--tls-cert", RSA_CERT, "--tls-key", RSA_KEY])


def client_ctx(min_v=None, max_v=None, ciphers=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if min_v:
        ctx.minimum_version = min_v
    if max_v:
        ctx.maximum_version = max_v
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


class TLSClient(h.Client):
    """The harness client over HTTPS (same checks on every answer)."""

    def __init__(self, port, ctx=None, **kw):
        super().__init__(port, **kw)
        self.ctx = ctx or client_ctx()

    def _conn(self):
        if self.keep_alive and self.conn is not None:
            return self.conn
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=self.timeout,
                                        context=self.ctx)
        if self.keep_alive:
            self.conn = c
        return c


def tls_client(suite, **kw):
    return TLSClient(suite.server.port, **kw)


def s_client(port, args, stdin=b"", wait=0.0):
    """openssl s_client against the server; returns its whole output."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + args
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    killer = threading.Timer(20, p.kill)
    killer.start()
    try:
        try:
            p.stdin.write(stdin)
            p.stdin.flush()
            if wait:
                time.sleep(wait)
            p.stdin.close()
        except BrokenPipeError:
            pass
        out = p.stdout.read()
        p.wait()
    finally:
        killer.cancel()
    return out.decode("utf-8", "replace")


def negotiated(out):
    """(protocol, cipher) openssl reports, cipher '(NONE)' when refused."""
    proto = cipher = None
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("New, "):
            # "New, TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256"
            cipher = line.split("Cipher is", 1)[1].strip() if "Cipher is" in line else None
        if line.startswith("Protocol") and ":" in line:
            proto = line.split(":", 1)[1].strip()
    return proto, cipher


def curl(port, path, extra=(), data_args=(), key=None):
    cmd = ["curl", "-sS", "-k", "-o", "-", "-w", "\n%{http_code}", "--max-time", "30"]
    if key:
        cmd += ["-H", "Authorization: Bearer " + key]
    cmd += list(extra) + list(data_args) + ["https://127.0.0.1:%d%s" % (port, path)]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    body, _, code = out.rpartition("\n")
    return p.returncode, int(code or 0), body, p.stderr.decode("utf-8", "replace")


@S.test
def test_curl_register_upload_search(s):
    email = h.uniq("curl") + "@example.com"
    rc, code, body, err = curl(s.server.port, "/api/v1/auth/register",
                               ["-H", "Content-Type: application/json"],
                               ["--data", json.dumps({"email": email,
                                                      "password": "correct horse battery"})])
    h.check(rc == 0 and code == 201, "register via curl: %s %s %s %s" % (rc, code, body, err))
    key = json.loads(body)["api_key"]
    s.state["key"] = key
    rc, code, body, err = curl(s.server.port, "/api/v1/collections",
                               ["-H", "Content-Type: application/json"],
                               ["--data", json.dumps({"name": h.uniq("c")})], key=key)
    h.check(code == 201, "collection via curl: %s %s" % (code, body))
    coll = json.loads(body)["id"]
    marker = h.nonce()
    path = os.path.join(CERT_DIR, "note.txt")
    with open(path, "w") as f:
        f.write("A note about %s for the curl test.\n" % marker)
    rc, code, body, err = curl(s.server.port, "/api/v1/documents", [],
                               ["-F", "collection_id=" + coll, "-F", "file=@" + path], key=key)
    h.check(code == 202, "upload via curl: %s %s %s" % (code, body, err))
    doc = json.loads(body)["id"]
    c = tls_client(s)
    h.wait_completed(c, key, doc)
    rc, code, body, err = curl(s.server.port, "/api/v1/retrievals",
                               ["-H", "Content-Type: application/json"],
                               ["--data", json.dumps({"query": marker, "mode": "keyword",
                                                      "collection_id": coll})], key=key)
    h.check(code == 200 and doc in body, "search via curl: %s %s" % (code, h.short(body)))


@S.test
def test_tls12_with_ecdhe_aead(s):
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2)
    c = http.client.HTTPSConnection("127.0.0.1", s.server.port, timeout=10, context=ctx)
    c.request("GET", "/health")
    r = c.getresponse()
    body = r.read()
    h.eq(r.status, 200, "GET /health over TLS 1.2")
    h.check(json.loads(body)["status"] == "ok", "health body %r" % body)
    h.eq(c.sock.version(), "TLSv1.2", "protocol")
    name = c.sock.cipher()[0]
    h.check(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name),
            "cipher %s is not ECDHE with AEAD" % name)
    c.close()
    out = s_client(s.server.port, ["-tls1_2"])
    proto, cipher = negotiated(out)
    h.eq(proto, "TLSv1.2", "openssl s_client protocol")
    h.check(cipher and cipher.startswith("ECDHE-RSA-") and ("GCM" in cipher or "CHACHA20" in cipher),
            "openssl s_client cipher %r" % cipher)
    rc, code, _, err = curl(s.server.port, "/health", ["--tlsv1.2", "--tls-max", "1.2"])
    h.check(rc == 0 and code == 200, "curl --tlsv1.2: rc %s code %s %s" % (rc, code, err))


@S.test
def test_tls13_not_offered(s):
    # mbedTLS 2.28 has no TLS 1.3 server: a 1.3-only client must fail its
    # handshake cleanly (and a 1.2-capable client still works afterwards).
    ctx = client_ctx(ssl.TLSVersion.TLSv1_3)
    try:
        with socket.create_connection(("127.0.0.1", s.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                raise h.TestFailure("TLS 1.3-only client connected with %s" % t.version())
    except ssl.SSLError:
        pass
    out = s_client(s.server.port, ["-tls1_3"])
    h.eq(negotiated(out)[1], "(NONE)", "openssl -tls1_3 cipher")
    rc, code, _, err = curl(s.server.port, "/health")
    h.check(rc == 0 and code == 200, "curl default after a 1.3 attempt: %s %s %s" % (rc, code, err))


@S.test
def test_tls10_and_tls11_refused(s):
    for flag in ("-tls1", "-tls1_1"):
        # SECLEVEL=0 so the refusal is the server's, not OpenSSL's own policy.
        out = s_client(s.server.port, [flag, "-cipher", "DEFAULT@SECLEVEL=0"])
        proto, cipher = negotiated(out)
        h.eq(cipher, "(NONE)", "openssl %s negotiated a cipher" % flag)
        h.check("protocol version" in out or "handshake failure" in out or "alert" in out,
                "openssl %s: no alert in %s" % (flag, h.short(out, 600)))
    rc, code, _, _ = curl(s.server.port, "/health",
                          ["--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0"])
    h.check(rc != 0 and code == 0, "curl with TLS <= 1.1 got rc %s code %s" % (rc, code))


@S.test
def test_weak_suites_refused(s):
    weak = ["AES128-GCM-SHA256",            # static RSA key exchange (no forward secrecy)
            "DHE-RSA-AES128-GCM-SHA256",    # finite-field DHE
            "ECDHE-RSA-AES128-SHA256",      # CBC
            "ECDHE-RSA-AES256-SHA"]         # CBC with SHA-1
    for suite in weak:
        out = s_client(s.server.port, ["-tls1_2", "-cipher", suite + ":@SECLEVEL=0"])
        h.eq(negotiated(out)[1], "(NONE)", "suite %s" % suite)
    for suite in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
                  "ECDHE-RSA-CHACHA20-POLY1305"):
        out = s_client(s.server.port, ["-tls1_2", "-cipher", suite])
        h.eq(negotiated(out)[1], suite, "suite %s" % suite)
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "AES128-SHA:@SECLEVEL=0")
    try:
        with socket.create_connection(("127.0.0.1", s.server.port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                raise h.TestFailure("AES128-SHA accepted: %s" % (t.cipher(),))
    except ssl.SSLError:
        pass


@S.test
def test_renegotiation_refused(s):
    # "R" asks s_client to renegotiate on the established connection.
    out = s_client(s.server.port, ["-tls1_2"], stdin=b"R\n", wait=1.5)
    h.check("RENEGOTIATING" in out, "s_client did not try: %s" % h.short(out, 600))
    h.check("no renegotiation" in out, "renegotiation not refused: %s" % h.short(out[-800:], 800))


@S.test
def test_plain_http_closed_cleanly(s):
    rc = h.RawConn(s.server.port)
    rc.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    rc.sock.settimeout(5)
    while True:
        try:
            chunk = rc.sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    rc.close()
    h.check(data.startswith(b"HTTP/1.1 400 "), "plain HTTP answer %r" % data[:200])
    h.check(b"Connection: close" in data and b"HTTPS" in data, "plain answer %r" % data[:300])
    # Bytes that are neither: closed without an answer.
    rc = h.RawConn(s.server.port)
    rc.send(b"\x00\x01\x02\x03hello")
    h.check(rc.is_closed(wait=5), "garbage connection not closed")
    rc.close()
    rc2, code, _, err = curl(s.server.port, "/health")
    h.check(rc2 == 0 and code == 200, "HTTPS after plain attempts: %s %s %s" % (rc2, code, err))


@S.test
def test_keep_alive_over_tls(s):
    c = tls_client(s, keep_alive=True, forbid_5xx=True)
    c.get("/health", api=False)
    sock = c.conn.sock
    local = sock.getsockname()
    for _ in range(30):
        r = c.get("/health", api=False)
        h.eq(r.status, 200, "GET /health")
    h.check(c.conn is not None and c.conn.sock is sock, "the TLS connection was not kept")
    h.eq(c.conn.sock.getsockname(), local, "local address of the kept connection")
    c.close()


def multipart_pieces(boundary, coll_id, filename, ctype, pieces):
    """Yields a multipart body: the collection field, then a file part made
    of `pieces` (an iterable of bytes)."""
    yield ("--%s\r\nContent-Disposition: form-data; name=\"collection_id\"\r\n\r\n%s\r\n" %
           (boundary, coll_id)).encode()
    yield ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
           "Content-Type: %s\r\n\r\n" % (boundary, filename, ctype)).encode()
    for p in pieces:
        yield p
    yield ("\r\n--%s--\r\n" % boundary).encode()


def post_chunked(s, key, boundary, body_iter):
    conn = http.client.HTTPSConnection("127.0.0.1", s.server.port, timeout=120,
                                       context=client_ctx())
    conn.request("POST", "/api/v1/documents", body=body_iter,
                 headers={"Authorization": "Bearer " + key,
                          "Content-Type": "multipart/form-data; boundary=" + boundary},
                 encode_chunked=True)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    return r.status, raw


@S.test
def test_chunked_upload_over_tls(s):
    # A text of about 300 KB sent in 4 KB chunks: the stored document has
    # exactly these bytes, it is indexed and found by a word in its end.
    key = s.state["key"]
    c = tls_client(s, forbid_5xx=True)
    coll = h.create_collection(c, key)
    marker = h.nonce()
    text = ("\n\n".join(h.words(120, seed=i) for i in range(400)) +
            "\n\nThe closing paragraph names %s once.\n" % marker).encode()
    boundary = "----tlsupload" + marker
    status, raw = post_chunked(s, key, boundary, multipart_pieces(
        boundary, coll["id"], "long.txt", "text/plain",
        (text[i:i + 4096] for i in range(0, len(text), 4096))))
    h.eq(status, 202, "chunked multipart upload over TLS: %s" % h.short(raw))
    doc = json.loads(raw)
    h.eq(doc["size_bytes"], len(text), "size_bytes")
    h.eq(doc["content_hash"], hashlib.sha256(text).hexdigest(), "content_hash")
    h.wait_completed(c, key, doc["id"], timeout=120)
    res = h.search(c, key, marker, collection_id=coll["id"])
    h.check(any(x["document"]["id"] == doc["id"] for x in res["results"]),
            "the marker is not found: %s" % h.short(json.dumps(res)))
    s.state["long_doc"] = doc["id"]


@S.test
def test_spooled_upload_over_tls(s):
    # 3 MB in chunks: over 1 MiB on the upload route, so the server spools
    # it to a file under DATA/tmp. Random bytes: the handler reads the whole
    # multipart body, finds the file part and refuses it by its content
    # (415) - the transport delivered all of it, and nothing is indexed.
    key = s.state["key"]
    c = tls_client(s, forbid_5xx=True)
    coll = h.create_collection(c, key)
    seed = int(time.time())
    print("seed %d" % seed)
    rnd = random.Random(seed)
    boundary = "----tlsspool%d" % seed
    status, raw = post_chunked(s, key, boundary, multipart_pieces(
        boundary, coll["id"], "noise.bin", "application/octet-stream",
        (bytes(rnd.getrandbits(8) for _ in range(16384)) for _ in range(192))))
    h.eq(status, 415, "random bytes: %s" % h.short(raw))
    h.eq(json.loads(raw)["error"]["code"], "UNSUPPORTED_MEDIA_TYPE", "error code")
    left = os.listdir(os.path.join(s.server.data_dir, "tmp"))
    h.eq(left, [], "files left in DATA/tmp")


@S.test
def test_large_answer_to_slow_reader(s):
    # The long document's chunk list read 512 bytes at a time through a
    # 4 KB receive window: the server's TLS writes meet a full socket again
    # and again.
    key, doc = s.state["key"], s.state["long_doc"]
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(30)
    raw.connect(("127.0.0.1", s.server.port))
    t = client_ctx().wrap_socket(raw)
    t.sendall(("GET /api/v1/documents/%s/chunks?limit=100 HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % (doc, key)).encode())
    data = b""
    reads = 0
    while True:
        chunk = t.recv(512)
        if not chunk:
            break
        data += chunk
        reads += 1
        if reads % 50 == 0:
            time.sleep(0.01)
    t.close()
    head, _, body = data.partition(b"\r\n\r\n")
    h.check(head.startswith(b"HTTP/1.1 200"), "status line %r" % head[:80])
    if b"chunked" in head.lower():
        out, rest = b"", body
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0], 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        body = out
    js = json.loads(body)
    h.check(len(js["data"]) >= 20 and len(body) > 50000,
            "a large answer expected: %d chunks, %d bytes" % (len(js["data"]), len(body)))


def tls_metrics(s, ciphers):
    """engram_tls_handshakes_total and engram_tls_libsodium_records_total, read over a
    connection that negotiates `ciphers` (it counts itself)."""
    c = tls_client(s, ctx=client_ctx(max_v=ssl.TLSVersion.TLSv1_2, ciphers=ciphers))
    r = c.get("/metrics", api=False)
    h.eq(r.status, 200, "GET /metrics")
    vals = {}
    for line in r.body.decode().splitlines():
        name, _, v = line.partition(" ")
        if name in ("engram_tls_handshakes_total", "engram_tls_libsodium_records_total"):
            vals[name] = float(v)
    h.eq(sorted(vals), ["engram_tls_handshakes_total", "engram_tls_libsodium_records_total"], "TLS metrics")
    return vals["engram_tls_handshakes_total"], vals["engram_tls_libsodium_records_total"]


@S.test
def test_each_record_layer(s):
    # After mbedTLS's handshake, ChaCha20-Poly1305 and AES-256-GCM records
    # go through libsodium (tls_record.c), AES-128-GCM stays on mbedTLS.
    # Each suite carries the same traffic - a large multi-record answer,
    # a multi-record upload, pipelined requests - with the same results,
    # and /metrics says which record layer each connection got.
    key, doc = s.state["key"], s.state["long_doc"]
    suites = [("ECDHE-RSA-CHACHA20-POLY1305", True), ("ECDHE-RSA-AES256-GCM-SHA384", True),
              ("ECDHE-RSA-AES128-GCM-SHA256", False)]
    answers = {}
    for name, fast in suites:
        hs0, fast0 = tls_metrics(s, name)
        ctx = client_ctx(max_v=ssl.TLSVersion.TLSv1_2, ciphers=name)
        c = TLSClient(s.server.port, ctx=ctx, keep_alive=True, forbid_5xx=True)
        r = c.get("/documents/%s/chunks?limit=100" % doc, key=key)
        h.eq(r.status, 200, "%s: chunk list" % name)
        h.eq(c.conn.sock.cipher()[0], name, "negotiated suite")
        h.check(len(r.body) > 3 * 16384, "%s: a multi-record answer expected, %d bytes"
                % (name, len(r.body)))
        answers[name] = r.body
        coll = h.create_collection(c, key)
        text = ("\n\n".join(h.words(100, seed=i) for i in range(60)) + "\n").encode()
        r = h.upload_multipart(c, key, coll["id"], "multi.txt", text)
        h.eq(r.status, 202, "%s: %d-byte upload" % (name, len(text)))
        h.eq(r.json["content_hash"], hashlib.sha256(text).hexdigest(), "content_hash")
        c.close()
        # Three requests in one write; three answers in order.
        t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.server.port), timeout=30))
        t.sendall(b"".join(b"GET /health?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                           for i in range(3)))
        data = b""
        while data.count(b"HTTP/1.1 200") < 3:
            chunk = t.recv(65536)
            h.check(chunk, "%s: connection closed after %r" % (name, data[-200:]))
            data += chunk
        t.close()
        hs1, fast1 = tls_metrics(s, name)
        h.eq(hs1 - hs0, 3, "%s: handshakes counted" % name)
        h.eq(fast1 - fast0, 3 if fast else 0, "%s: connections on libsodium records" % name)
    h.check(len(set(answers.values())) == 1, "the suites gave different answers")


@S.test
def test_chat_sse_over_tls(s):
    # Server-sent events through the TLS record layer: the chat answer
    # (extractive: no LLM configured) arrives as event frames in chunks,
    # read here in small pieces as they come.
    key, doc = s.state["key"], s.state["long_doc"]
    c = tls_client(s, forbid_5xx=True)
    coll = c.get("/documents/%s" % doc, key=key).json["collection_id"]
    raw = socket.create_connection(("127.0.0.1", s.server.port), timeout=60)
    t = client_ctx().wrap_socket(raw)
    body = json.dumps({"message": "what do the lantern and harbor paragraphs say",
                       "collection_id": coll}).encode()
    t.sendall(("POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nAccept: text/event-stream\r\n"
               "Content-Length: %d\r\nConnection: close\r\n\r\n" % (key, len(body))).encode() + body)
    data = b""
    while True:
        chunk = t.recv(700)
        if not chunk:
            break
        data += chunk
    t.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    h.check(head.startswith(b"HTTP/1.1 200"), "chat status %r" % head[:200])
    h.check(b"text/event-stream" in head.lower() and b"chunked" in head.lower(),
            "not a chunked event stream: %r" % head)
    out = b""
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        rest = rest[n + 2:]
    events = [line[7:].strip() for line in out.decode().split("\n") if line.startswith("event: ")]
    h.check(events and events[0] == "sources" and events[-1] == "done" and "delta" in events,
            "event sequence %r" % events)


@S.test
def test_slow_handshake_times_out(s):
    srv = s.new_server(extra_args=["--tls-cert", RSA_CERT, "--tls-key", RSA_KEY,
                                   "--header-timeout-ms", "1000"]).start()
    # The first bytes of a ClientHello, then silence.
    rc = h.RawConn(srv.port)
    rc.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    t0 = time.time()
    h.check(rc.is_closed(wait=8), "a stalled handshake was not closed")
    h.check(time.time() - t0 < 8, "closed late")
    rc.close()
    # A connection that never says anything.
    rc = h.RawConn(srv.port)
    h.check(rc.is_closed(wait=8), "a silent TLS connection was not closed")
    rc.close()
    code = curl(srv.port, "/health")[1]
    h.eq(code, 200, "the server still answers")


@S.test
def test_ecdsa_certificate(s):
    srv = s.new_server(extra_args=["--tls-cert", EC_CERT, "--tls-key", EC_KEY]).start()
    out = s_client(srv.port, ["-tls1_2"])
    cipher = negotiated(out)[1]
    h.check(cipher and cipher.startswith("ECDHE-ECDSA-") and ("GCM" in cipher or "CHACHA20" in cipher),
            "ECDSA certificate negotiated %r" % cipher)
    rc, code, _, err = curl(srv.port, "/health")
    h.check(rc == 0 and code == 200, "curl over ECDSA: %s %s %s" % (rc, code, err))


@S.test
def test_certificate_errors_at_start(s):
    data = tempfile.mkdtemp(prefix="engram-tls-data-")
    try:
        def serve(args):
            return h.run_cli(s.binary, ["serve", "--listen", "127.0.0.1:0", "--data", data] + args,
                             timeout=60)
        missing = os.path.join(CERT_DIR, "missing.pem")
        rc, out, err = serve(["--tls-cert", missing, "--tls-key", RSA_KEY])
        h.eq(rc, 1, "missing certificate exit code")
        h.check("missing.pem" in out + err and "No such file" in out + err,
                "message for a missing certificate: %s" % h.short(out + err, 500))
        rc, out, err = serve(["--tls-cert", RSA_CERT, "--tls-key", EC_KEY])
        h.eq(rc, 1, "mismatched key exit code")
        h.check("does not belong" in out + err, "mismatch message: %s" % h.short(out + err, 500))
        rc, out, err = serve(["--tls-cert", RSA_KEY, "--tls-key", RSA_KEY])
        h.eq(rc, 1, "key as certificate exit code")
        h.check("not a usable PEM certificate" in out + err,
                "bad certificate message: %s" % h.short(out + err, 500))
        rc, out, err = serve(["--tls-cert", RSA_CERT])
        h.eq(rc, 2, "certificate without key exit code")
        h.check("both --tls-cert and --tls-key" in out + err, "message: %s" % h.short(out + err))
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    S.run()
