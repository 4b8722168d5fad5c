#!/usr/bin/env python3
"""test_static.py - the static binary alone in an empty directory tree.

Run by `make static-test` (as root: it uses chroot). Copies
build/static/engram into a fresh directory that holds nothing else but an
empty data directory, a TLS certificate for engram's own HTTPS port and, at
/etc/ssl/certs/ca-certificates.crt, the certificate of a local HTTPS test
server standing in for an OpenAI-compatible embeddings service. Then, with
the binary chrooted there (no /dev, no /proc, no libc, no resolver files):

  - `engram version` and `engram user add` run;
  - `engram serve` serves HTTPS; register, create a collection, upload a
    multipart document and search it by keyword through the API;
  - ingestion embeds the chunks through the test service over HTTPS
    (libcurl + mbedTLS verifying the certificate against the CA bundle in
    the tree) - the document reaches `completed` only if that call worked.

Prints PASS/FAIL lines like the other suites, the binary's size and what
`file` says about it; exits 1 on any failure.
"""
import http.client
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "build", "static", "engram")
DIM = 8
failures = []


def result(name, ok, why=""):
    print(("PASS static.%s" % name) if ok else ("FAIL static.%s: %s" % (name, why)))
    sys.stdout.flush()
    if not ok:
        failures.append(name)


def openssl_cert(dirpath, name, cn, san=None):
    key, cert = os.path.join(dirpath, name + ".key"), os.path.join(dirpath, name + ".pem")
    ext = ["-addext", "subjectAltName=" + san] if san else []
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=" + cn] + ext +
                   ["-keyout", key, "-out", cert],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class Embeddings(http.server.BaseHTTPRequestHandler):
    calls = 0

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(n) or b"{}")
        inputs = body.get("input") or []
        if isinstance(inputs, str):
            inputs = [inputs]
        Embeddings.calls += 1
        data = [{"object": "embedding", "index": i,
                 "embedding": [((len(t) + i * 7 + k) % 13) / 13.0 + 0.01 for k in range(DIM)]}
                for i, t in enumerate(inputs)]
        out = json.dumps({"object": "list", "data": data, "model": body.get("model", "m")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if os.geteuid() != 0:
        print("FAIL static.setup: run as root (chroot)")
        return 1
    if not os.path.exists(BINARY):
        print("FAIL static.setup: %s missing: make static" % BINARY)
        return 1
    size = os.path.getsize(BINARY)
    kind = subprocess.run(["file", "-b", BINARY], stdout=subprocess.PIPE, text=True).stdout.strip()
    print("NOTE binary %.1f MB: %s" % (size / 1e6, kind))
    result("statically_linked", "statically linked" in kind or "static-pie" in kind, kind)

    work = tempfile.mkdtemp(prefix="engram-static-")
    tree = os.path.join(work, "root")
    try:
        os.makedirs(os.path.join(tree, "data"))
        os.makedirs(os.path.join(tree, "tls"))
        os.makedirs(os.path.join(tree, "etc", "ssl", "certs"))
        shutil.copy2(BINARY, os.path.join(tree, "engram"))
        # engram's own HTTPS certificate, inside the tree.
        cert, key = openssl_cert(os.path.join(tree, "tls"), "engram", "localhost",
                                 "IP:127.0.0.1")
        # The embeddings service's certificate is the tree's whole CA bundle.
        # mbedTLS 2.28 matches the host against DNS names only (never an IP
        # in subjectAltName), so the address goes in the CN, with no SAN.
        ecert, ekey = openssl_cert(work, "embed", "127.0.0.1")
        shutil.copy2(ecert, os.path.join(tree, "etc", "ssl", "certs", "ca-certificates.crt"))
        listing = sorted(os.path.relpath(os.path.join(d, f), tree)
                         for d, _, fs in os.walk(tree) for f in fs)
        print("NOTE tree: %s" % " ".join(listing))

        eport = free_port()
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", eport), Embeddings)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ecert, ekey)
        httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()

        def chrooted(args, **kw):
            return subprocess.run(["chroot", tree, "/engram"] + args, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=60, **kw)

        r = chrooted(["version"])
        result("version", r.returncode == 0 and r.stdout.strip() != "", r.stdout)
        r = chrooted(["user", "add", "--email", "cli@example.org", "--data", "/data"])
        result("user_add", r.returncode == 0 and "eg_" in r.stdout, r.stdout[-300:])

        port = free_port()
        log = open(os.path.join(work, "serve.log"), "w+")
        proc = subprocess.Popen(["chroot", tree, "/engram", "serve", "--listen",
                                 "127.0.0.1:%d" % port, "--data", "/data",
                                 "--tls-cert", "/tls/engram.pem", "--tls-key", "/tls/engram.key",
                                 "--embedder", "openai", "--embed-url",
                                 "https://127.0.0.1:%d/v1" % eport, "--embed-model", "test",
                                 "--embed-dim", str(DIM), "--open-registration"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            cctx = ssl.create_default_context(cafile=cert)
            deadline = time.time() + 20
            up = False
            while time.time() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    up = True
                    break
                except OSError:
                    time.sleep(0.1)
            log.seek(0)
            result("serve_https", up, log.read()[-800:])
            if not up:
                return 1

            def call(method, path, body=None, key=None, raw=None, ctype="application/json"):
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=cctx)
                hd = {"Content-Type": ctype}
                if key:
                    hd["Authorization"] = "Bearer " + key
                c.request(method, "/api/v1" + path,
                          body=raw if raw is not None else
                          (json.dumps(body) if body is not None else None), headers=hd)
                resp = c.getresponse()
                data = resp.read()
                c.close()
                return resp.status, (json.loads(data) if data[:1] in (b"{", b"[") else data)

            st, reg = call("POST", "/auth/register",
                           {"email": "static@example.org", "password": "correct horse battery"})
            result("register", st == 201, "%s %s" % (st, reg))
            key = reg.get("api_key") if isinstance(reg, dict) else None
            st, coll = call("POST", "/collections", {"name": "static"}, key)
            result("collection", st == 201, "%s %s" % (st, coll))
            word = "zq" + uuid.uuid4().hex[:10]
            boundary = "----static" + word
            text = ("The static binary indexes this note about %s and lanterns.\n" % word) * 20
            body = ("--%s\r\nContent-Disposition: form-data; name=\"collection_id\"\r\n\r\n%s\r\n"
                    "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"n.txt\"\r\n"
                    "Content-Type: text/plain\r\n\r\n%s\r\n--%s--\r\n" %
                    (boundary, coll.get("id"), boundary, text, boundary)).encode()
            st, doc = call("POST", "/documents", key=key, raw=body,
                           ctype="multipart/form-data; boundary=" + boundary)
            result("upload", st == 202, "%s %s" % (st, doc))
            status = None
            deadline = time.time() + 60
            while time.time() < deadline:
                st, s = call("GET", "/documents/%s/status" % doc.get("id"), key=key)
                status = s.get("status") if isinstance(s, dict) else None
                if status in ("completed", "failed"):
                    break
                time.sleep(0.2)
            result("ingest_with_https_embeddings", status == "completed" and Embeddings.calls > 0,
                   "status %s, %d calls to the embeddings service: %s" %
                   (status, Embeddings.calls, s))
            st, res = call("POST", "/retrievals", {"query": word, "mode": "keyword",
                                                   "collection_id": coll.get("id")}, key)
            found = st == 200 and any(x["document"]["id"] == doc.get("id") for x in res["results"])
            result("search", found, "%s %s" % (st, str(res)[:300]))
        finally:
            proc.terminate()
            try:
                rc = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = None
            result("clean_stop", rc == 0, "exit %s" % rc)
            log.seek(0)
            tail = log.read()[-1500:]
            if failures:
                print("server log tail:\n" + tail)
            httpd.shutdown()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
