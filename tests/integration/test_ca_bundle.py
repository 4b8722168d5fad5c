#!/usr/bin/env python3
"""Outbound HTTPS trusts what --ca-bundle says: an embeddings service with a
self-signed certificate (made here with openssl) is refused by default and
accepted when its certificate is given as the CA bundle."""
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Suite, check, create_collection, eq, expect, register_admin, upload_text  # noqa: E402

suite = Suite("test_ca_bundle")
S = suite.state


class Embeddings(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        data = [{"object": "embedding", "index": i, "embedding": [1.0, float(len(t) % 7), 0.5, 0.25]}
                for i, t in enumerate(body["input"])]
        out = json.dumps({"object": "list", "data": data, "model": body.get("model")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def https_service(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Embeddings)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, cert


def final_status(s, key, doc_id):
    import time
    for _ in range(300):
        r = s.client.get("/documents/%s/status" % doc_id, key=key)
        if r.json["status"] in ("completed", "failed"):
            return r.json
        time.sleep(0.1)
    raise AssertionError("document did not finish")


def run_with(s, extra):
    srv = s.new_server(extra_args=extra)
    srv.start()
    old = s.client.port
    s.client.port = srv.port
    try:
        key = register_admin(s.client)["key"]
        coll = create_collection(s.client, key)["id"]
        d = upload_text(s.client, key, coll, "Bundled certificates are trusted explicitly.")
        return final_status(s, key, d["id"])
    finally:
        s.client.port = old
        srv.stop()


@suite.test
def test_self_signed_service_needs_the_bundle(s):
    tmp = tempfile.mkdtemp()
    svc, cert = https_service(tmp)
    url = "https://127.0.0.1:%d" % svc.server_address[1]
    common = ["--embedder", "openai", "--embed-url", url, "--embed-model", "m"]
    st = run_with(s, common)
    eq(st["status"], "failed", "an untrusted certificate is refused")
    check("certificate" in (st.get("error_message") or "").lower() or
          "ssl" in (st.get("error_message") or "").lower(),
          "the failure names the certificate: %r" % st.get("error_message"))
    st = run_with(s, common + ["--ca-bundle", cert])
    eq(st["status"], "completed", "trusted through --ca-bundle (%s)" % st.get("error_message"))
    svc.shutdown()


if __name__ == "__main__":
    suite.run()
