"""load.py - `make load`: loopback load and hostile clients, bounded.

1. A corpus of 300 documents is uploaded (4 metadata groups) and indexed.
2. wrk runs tests/robust/retrieval.lua (mixed keyword retrievals) at 64
   and then 256 connections for --seconds each (2 threads): requests/s,
   p50/p90/p99/max and every error class are recorded; any error fails.
3. The server's resident size (VmRSS) is read before the load, after each
   run and after the slowloris phase: memory must stay bounded (fails if
   the second run ends more than 256 MiB above the first).
4. 500 slowloris connections trickle a request head a byte a second while
   a normal client sends 200 retrievals: p50/p99/max latency reported and
   the share under 100 ms.
Writes a JSON report (--report) and prints it.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)

from harness import Client, Server  # noqa: E402
from slowloris import Slowloris, timed_queries  # noqa: E402

VOCAB = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima river "
         "mountain lantern copper meadow harbor signal orchard protein cell gene dose").split()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else None


def seed_corpus(cl, key, n, rng):
    coll = cl.post("/collections", {"name": "load"}, key=key).json["id"]
    ids = []
    for i in range(n):
        text = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(100, 600)))
        r = cl.post("/documents", {"collection_id": coll, "content": "doc %d. %s" % (i, text),
                                   "metadata": {"group": "g%d" % (i % 4)}}, key=key)
        ids.append(r.json["id"])
    deadline = time.time() + 300
    for d in ids:
        while time.time() < deadline:
            if cl.get("/documents/%s/status" % d, key=key).json.get("status") in ("completed", "failed"):
                break
            time.sleep(0.1)
    return coll


def run_wrk(port, key, coll, conns, seconds):
    env = dict(os.environ, ENGRAM_KEY=key, ENGRAM_COLL=coll)
    p = subprocess.run(["wrk", "-t", "2", "-c", str(conns), "-d", "%ds" % seconds, "--timeout", "10s",
                        "-s", os.path.join(HERE, "retrieval.lua"), "http://127.0.0.1:%d" % port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    out = p.stdout.decode("utf-8", "replace")
    line = [ln for ln in out.splitlines() if ln.startswith('{"requests"')]
    if not line:
        return {"error": "wrk gave no summary: " + out[-500:]}
    r = json.loads(line[-1])
    r["connections"] = conns
    r["requests_per_s"] = round(r["requests"] / (r["duration_us"] / 1e6), 1)
    for k in ("p50_us", "p90_us", "p99_us", "max_us"):
        r[k.replace("_us", "_ms")] = round(r.pop(k) / 1000.0, 2)
    r["errors"] = sum(r[k] for k in list(r) if k.startswith("err_"))
    return r


def run(binary, seconds, slow_conns=500, log=print):
    rng = random.Random(1)
    bindir = tempfile.mkdtemp(prefix="engram-load-bin-")
    shutil.copy2(binary, os.path.join(bindir, "engram"))
    srv = Server(os.path.join(bindir, "engram"),
                 extra_args=["--rate-limit", "0", "--max-connections", "2000",
                             "--header-timeout-ms", "60000"])
    res = {"seconds": seconds, "problems": []}
    try:
        srv.start()
        pid = srv.proc.pid
        cl = Client(srv.port, timeout=30)
        key = cl.post("/auth/register", {"email": "load@example.com",
                                         "password": "correct horse battery"}).json["api_key"]
        coll = seed_corpus(cl, key, 300, rng)
        res["rss_kb_before"] = rss_kb(pid)
        res["wrk"] = []
        for conns in (64, 256):
            w = run_wrk(srv.port, key, coll, conns, seconds)
            w["rss_kb_after"] = rss_kb(pid)
            res["wrk"].append(w)
            log(json.dumps(w))
            if w.get("error") or w.get("errors"):
                res["problems"].append("wrk at %d connections: %s" % (conns, w.get("error") or w))
        if len(res["wrk"]) == 2 and all("rss_kb_after" in w for w in res["wrk"]):
            growth = res["wrk"][1]["rss_kb_after"] - res["wrk"][0]["rss_kb_after"]
            res["rss_growth_between_runs_kb"] = growth
            if growth > 256 * 1024:
                res["problems"].append("RSS grew by %d KiB between the runs" % growth)
        sl = Slowloris(srv.port, slow_conns).open()
        time.sleep(2)
        lat, statuses = timed_queries(Client(srv.port, keep_alive=True, timeout=30), key, 200)
        res["slowloris"] = {
            "connections": slow_conns, "still_open": sl.open_count(),
            "closed_by_server": sl.closed_by_server,
            "normal_client_p50_ms": round(pct(lat, 50), 2), "normal_client_p99_ms": round(pct(lat, 99), 2),
            "normal_client_max_ms": round(max(lat), 2),
            "share_under_100ms": round(sum(1 for x in lat if x < 100) / len(lat), 3),
            "non_200": sum(1 for s in statuses if s != 200)}
        sl.close()
        res["rss_kb_end"] = rss_kb(pid)
        log(json.dumps(res["slowloris"]))
        if res["slowloris"]["non_200"]:
            res["problems"].append("normal client got errors during slowloris")
        if not srv.alive():
            res["problems"].append("server died")
    finally:
        srv.cleanup()
        shutil.rmtree(bindir, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/engram")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--report")
    a = ap.parse_args()
    res = run(a.binary, a.seconds)
    print(json.dumps(res, indent=1))
    if a.report:
        os.makedirs(os.path.dirname(a.report) or ".", exist_ok=True)
        with open(a.report, "w") as f:
            json.dump(res, f, indent=1)
    sys.exit(1 if res["problems"] else 0)


if __name__ == "__main__":
    main()
