#!/usr/bin/env python3
"""HTTPS against plain HTTP: keyword retrieval throughput with keep-alive.

Loads the first --docs SciFact abstracts (../shared/data/scifact) into one
data directory through the API, then serves that directory twice in turn -
plain HTTP, then HTTPS with a fresh self-signed certificate (RSA 2048 by
default, --ecdsa for P-256) - and drives each with wrk on loopback: POST
/api/v1/retrievals with the SciFact test queries in rotation, keep-alive,
--connections connections, --seconds seconds, after a warm-up. Prints both
rates and the ratio (target: HTTPS >= 0.8x plain).

Usage: bench/tls_wrk.py [--binary build/engram] [--docs 2000] [--seconds 10]
                        [--connections 16] [--threads 2] [--ecdsa] [--json]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """engram serve at log level warn (no access log: the benchmark is the
    transport's, and a drained log pipe would compete for the 2 cores)."""

    def __init__(self, binary, data, extra):
        self.port = free_port()
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:%d" % self.port,
                                      "--data", data, "--log-level", "warn",
                                      "--ingest-threads", "2"] + extra,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        self.log.seek(0)
        sys.exit("engram did not start: " + self.log.read().decode()[-500:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start(binary, data, extra):
    """Starts with --rate-limit 0 when this build has the flag, so the
    benchmark measures the transport, not the limiter."""
    p = subprocess.run([binary, "serve", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if "--rate-limit" in p.stdout:
        extra = extra + ["--rate-limit", "0"]
    return Server(binary, data, extra)


def load_corpus(data, n):
    docs = []
    with open(os.path.join(data, "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs.append(((d.get("title") or "") + " " + (d.get("text") or "")).strip())
            if len(docs) >= n:
                break
    queries = []
    with open(os.path.join(data, "queries.jsonl"), encoding="utf-8") as f:
        for line in f:
            queries.append(json.loads(line)["text"])
    return docs, queries[:300]


def api(port, method, path, body=None, key=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, (json.loads(data) if data else None)


def lua_script(path, key, coll, queries):
    bodies = [json.dumps({"query": q, "mode": "keyword", "top_k": 10, "collection_id": coll})
              for q in queries]

    def lua_str(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    with open(path, "w") as f:
        f.write("local bodies = {\n%s\n}\n" % ",\n".join(lua_str(b) for b in bodies))
        f.write("local i = 0\n")
        f.write('wrk.method = "POST"\n')
        f.write('wrk.headers["Content-Type"] = "application/json"\n')
        f.write('wrk.headers["Authorization"] = "Bearer %s"\n' % key)
        f.write("request = function()\n  i = i %% %d + 1\n"
                "  return wrk.format(nil, \"/api/v1/retrievals\", nil, bodies[i])\nend\n" %
                len(bodies))
        f.write("local errors = 0\n")
        f.write("response = function(status, headers, body)\n"
                "  if status ~= 200 then errors = errors + 1 end\nend\n")
        f.write("done = function(summary, latency, requests)\n"
                "  io.write(string.format(\"JSON {\\\"requests\\\": %d, \\\"seconds\\\": %.3f, "
                "\\\"p50_ms\\\": %.3f, \\\"p99_ms\\\": %.3f, \\\"non2xx\\\": %d, "
                "\\\"errors\\\": %d}\\n\", summary.requests, summary.duration / 1e6, "
                "latency:percentile(50) / 1e3, latency:percentile(99) / 1e3, "
                "summary.errors.status, summary.errors.connect + summary.errors.read + "
                "summary.errors.write + summary.errors.timeout))\nend\n")


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(url, script, threads, conns, seconds, pid=None):
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds, "-s", script, url]
    c0 = cpu_seconds(pid) if pid else 0.0
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + 60)
    c1 = cpu_seconds(pid) if pid else 0.0
    m = re.search(r"^JSON (.*)$", p.stdout, re.M)
    if not m:
        sys.exit("wrk failed:\n" + p.stdout)
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"] if r["seconds"] else 0.0
    # Server CPU per request: unlike the rate, barely moved by what else
    # runs on the machine.
    r["server_cpu_us"] = (c1 - c0) * 1e6 / r["requests"] if r["requests"] else 0.0
    return r


def tls_records(port):
    """(handshakes, of them on libsodium records) from the HTTPS server's
    /metrics (this request's own connection included)."""
    import ssl
    import urllib.request
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    body = urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx,
                                  timeout=30).read().decode()
    vals = {}
    for line in body.splitlines():
        name, _, v = line.partition(" ")
        vals[name] = v
    return (int(float(vals.get("engram_tls_handshakes_total", 0))),
            int(float(vals.get("engram_tls_libsodium_records_total", 0))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "engram"))
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "scifact"))
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="plain/HTTPS pairs, alternated; medians")
    ap.add_argument("--ecdsa", action="store_true", help="P-256 certificate instead of RSA 2048")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (tools/deps/tls.test; tools/dev deps)")
    docs, queries = load_corpus(args.data, args.docs)
    tmp = tempfile.mkdtemp(prefix="engram-bench-tls-")
    # A private copy: the build directory may be rebuilt while this runs.
    binary = os.path.join(tmp, "engram")
    for _ in range(50):
        try:
            shutil.copy2(args.binary, binary)
            break
        except OSError:
            time.sleep(0.2)
    args.binary = binary
    data = os.path.join(tmp, "data")
    cert, key_file = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if args.ecdsa else \
        ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509"] + newkey +
                   ["-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", key_file,
                    "-out", cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        srv = start(args.binary, data, [])
        st, u = api(srv.port, "POST", "/api/v1/auth/register",
                    {"email": "bench@example.org", "password": "benchmark-pw"})
        key = u["api_key"]
        st, c = api(srv.port, "POST", "/api/v1/collections", {"name": "scifact"}, key)
        coll = c["id"]
        for text in docs:
            st, d = api(srv.port, "POST", "/api/v1/documents",
                        {"collection_id": coll, "content": text}, key)
            if st not in (200, 202):
                sys.exit("upload failed: %s %s" % (st, d))
        while True:
            st, l = api(srv.port, "GET",
                        "/api/v1/documents?collection_id=%s&status=completed&limit=1" % coll,
                        None, key)
            if l["pagination"]["total"] >= len(docs):
                break
            time.sleep(0.3)
        srv.stop()
        script = os.path.join(tmp, "retrieve.lua")
        lua_script(script, key, coll, queries)
        results = {"http": [], "https": []}
        for _ in range(args.rounds):
            for scheme, extra in (("http", []), ("https", ["--tls-cert", cert, "--tls-key", key_file])):
                srv = start(args.binary, data, extra)
                url = "%s://127.0.0.1:%d" % (scheme, srv.port)
                run_wrk(url, script, args.threads, args.connections, 2)  # warm-up
                r = run_wrk(url, script, args.threads, args.connections, args.seconds,
                            srv.proc.pid)
                if scheme == "https":
                    records = tls_records(srv.port)
                srv.stop()
                if r["non2xx"] or r["errors"]:
                    sys.exit("%s: %d non-2xx answers, %d socket errors" %
                             (scheme, r["non2xx"], r["errors"]))
                results[scheme].append(r)
        def median(v):
            v = sorted(v)
            return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

        summary = {}
        for sc, runs in results.items():
            summary[sc] = {"rps": median([r["rps"] for r in runs]),
                           "p50_ms": median([r["p50_ms"] for r in runs]),
                           "p99_ms": median([r["p99_ms"] for r in runs]),
                           "server_cpu_us": median([r["server_cpu_us"] for r in runs]),
                           "runs_rps": [round(r["rps"]) for r in runs]}
        ratio = summary["https"]["rps"] / summary["http"]["rps"] if summary["http"]["rps"] else 0.0
        cpu_ratio = (summary["http"]["server_cpu_us"] / summary["https"]["server_cpu_us"]
                     if summary["https"]["server_cpu_us"] else 0.0)
        out = {"documents": len(docs), "connections": args.connections, "threads": args.threads,
               "seconds": args.seconds, "rounds": args.rounds,
               "certificate": "ECDSA P-256" if args.ecdsa else "RSA 2048",
               "http": summary["http"], "https": summary["https"], "ratio": round(ratio, 3),
               "cpu_ratio": round(cpu_ratio, 3), "target": 0.8,
               "tls_handshakes": records[0], "tls_libsodium_records": records[1]}
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            print("keyword retrieval, %d SciFact documents, wrk -t%d -c%d -d%ds, keep-alive, "
                  "median of %d alternated rounds" % (len(docs), args.threads, args.connections,
                                                      args.seconds, args.rounds))
            for sc in ("http", "https"):
                r = summary[sc]
                print("  %-5s %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms   server CPU %6.0f us/req"
                      "   (runs: %s)" % (sc, r["rps"], r["p50_ms"], r["p99_ms"], r["server_cpu_us"],
                                         " ".join(str(x) for x in r["runs_rps"])))
            print("  HTTPS / HTTP throughput = %.2f (target >= 0.80); by server CPU per request "
                  "= %.2f (%s certificate)" % (ratio, cpu_ratio, out["certificate"]))
            print("  record layer: libsodium on %d of %d TLS connections in the last round "
                  "(the rest: mbedTLS)" % (records[1], records[0]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
