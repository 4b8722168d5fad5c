"""crash_loop.py - SIGKILL engram at random moments of a mixed workload.

Two client threads upload (JSON, some with an Idempotency-Key, some large
enough to keep the ingest workers busy), delete documents they were told
were accepted, and query, while the main thread SIGKILLs the server after a
random pause (seeded; the seed is printed) and restarts it on the same data
directory, --kills times. The clients record exactly what was acknowledged:
an upload answered 202/200 and a delete answered 204. A request whose
answer never came (the kill cut it) is "in doubt": the upload may or may not
exist, the delete may or may not have happened, and neither is checked.

Afterwards, on a last restart:
  * every acknowledged, not deleted document is present and ends completed
    or failed (waits for the ingest queue to drain), and a keyword search
    for the word unique to it finds it when completed;
  * every acknowledged delete is 404;
  * `engram verify --data DIR` exits 0.

Used by `make crash-loop` (>= 100 kills, release build) and, with fewer kills,
by tests/integration/test_crash.py. Prints a summary and writes it as JSON
with --report.
"""

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import Client, Server, TestFailure, run_cli  # noqa: E402

VOCAB = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango river mountain lantern copper").split()


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # doc id -> unique word
        self.deleted = set()   # acknowledged deletes
        self.in_doubt = set()  # deletes whose answer never came
        self.uploads_in_doubt = 0
        self.queries_ok = 0
        self.errors = []       # unexpected answers (4xx/5xx that should not happen)
        self.port = None
        self.up = threading.Event()
        self.stop = False


def text_for(rng, word, big):
    n = rng.randint(2000, 6000) if big else rng.randint(20, 200)
    body = " ".join(rng.choice(VOCAB) for _ in range(n))
    return "Document %s.\n\n%s %s\n" % (word, body, word)


def worker(st, key, coll, seed, wid):
    rng = random.Random(seed * 1000 + wid)
    n = 0
    while not st.stop:
        if not st.up.wait(1):
            continue
        cl = Client(st.port, timeout=10)
        op = rng.random()
        try:
            if op < 0.55:
                n += 1
                word = "u%dw%dn%d" % (seed % 100000, wid, n)
                big = rng.random() < 0.15
                hdrs = {"Idempotency-Key": "k-" + word} if rng.random() < 0.5 else None
                r = cl.req("POST", "/documents", json={"collection_id": coll,
                                                       "content": text_for(rng, word, big)},
                           key=key, headers=hdrs, check_shape=False)
                if r.status in (200, 202):
                    with st.lock:
                        st.acked[r.json["id"]] = word
                elif r.status != 503:
                    st.errors.append("upload %s: %s" % (r.status, r.body[:200]))
            elif op < 0.75:
                with st.lock:
                    live = [d for d in st.acked if d not in st.deleted and d not in st.in_doubt]
                if not live:
                    continue
                d = rng.choice(live)
                with st.lock:
                    st.in_doubt.add(d)
                r = cl.req("DELETE", "/documents/%s" % d, key=key, check_shape=False)
                with st.lock:
                    if r.status == 204:
                        st.in_doubt.discard(d)
                        st.deleted.add(d)
                    elif r.status == 404:
                        st.errors.append("delete of acknowledged %s: 404" % d)
            else:
                r = cl.req("POST", "/retrievals", json={"query": rng.choice(VOCAB) + " " +
                                                        rng.choice(VOCAB), "mode": "keyword",
                                                        "collection_id": coll},
                           key=key, check_shape=False)
                if r.status == 200:
                    st.queries_ok += 1
                elif r.status != 503:
                    st.errors.append("query %s: %s" % (r.status, r.body[:200]))
        except (OSError, ValueError, TestFailure, AttributeError) as e:
            # the kill cut this request: its outcome is in doubt
            if op < 0.55:
                st.uploads_in_doubt += 1
            time.sleep(0.02)
        finally:
            cl.close()


def wait_settled(cl, key, st, timeout):
    deadline = time.time() + timeout
    pending = set(d for d in st.acked if d not in st.deleted and d not in st.in_doubt)
    final = {}
    while pending and time.time() < deadline:
        for d in list(pending):
            r = cl.req("GET", "/documents/%s/status" % d, key=key, check_shape=False)
            if r.status == 404:
                final[d] = "missing"
                pending.discard(d)
            elif r.status == 200 and r.json.get("status") in ("completed", "failed"):
                final[d] = r.json["status"]
                pending.discard(d)
        if pending:
            time.sleep(0.2)
    for d in pending:
        final[d] = "unfinished"
    return final


def run(binary, kills, seed, min_pause=0.05, max_pause=0.8, settle_timeout=120, log=print):
    rng = random.Random(seed)
    log("crash loop: seed %d, %d kills, binary %s" % (seed, kills, binary))
    data = tempfile.mkdtemp(prefix="engram-crash-")
    # a private copy: a rebuild of the tree meanwhile must not pull it away
    bindir = tempfile.mkdtemp(prefix="engram-crash-bin-")
    shutil.copy2(binary, os.path.join(bindir, "engram"))
    binary = os.path.join(bindir, "engram")
    srv = Server(binary, data_dir=data, extra_args=["--rate-limit", "0"])
    srv.start()
    st = State()
    st.port = srv.port
    cl = Client(srv.port)
    r = cl.post("/auth/register", {"email": "crash@example.com", "password": "correct horse battery"})
    key = r.json["api_key"]
    coll = cl.post("/collections", {"name": "crash"}, key=key).json["id"]
    st.up.set()
    threads = [threading.Thread(target=worker, args=(st, key, coll, seed, i), daemon=True)
               for i in range(2)]
    for t in threads:
        t.start()
    t0 = time.time()
    restart_s = []
    for _ in range(kills):
        time.sleep(rng.uniform(min_pause, max_pause))
        st.up.clear()
        srv.kill()
        t1 = time.time()
        srv.start()
        restart_s.append(time.time() - t1)
        st.port = srv.port
        st.up.set()
    st.stop = True
    for t in threads:
        t.join(15)
    loop_s = time.time() - t0
    srv.kill()
    srv.start()
    cl = Client(srv.port)
    final = wait_settled(cl, key, st, settle_timeout)
    problems = list(st.errors)
    completed = failed = 0
    for d, status in sorted(final.items()):
        if status == "completed":
            completed += 1
            res = cl.post("/retrievals", {"query": st.acked[d], "mode": "keyword",
                                          "collection_id": coll, "top_k": 5}, key=key)
            ids = [x["document"]["id"] for x in (res.json or {}).get("results", [])]
            if d not in ids:
                problems.append("completed %s not found by its word %s" % (d, st.acked[d]))
        elif status == "failed":
            failed += 1
        else:
            problems.append("acknowledged %s is %s" % (d, status))
    for d in sorted(st.deleted):
        r = cl.req("GET", "/documents/%s" % d, key=key, check_shape=False)
        if r.status != 404:
            problems.append("deleted %s answers %s" % (d, r.status))
    srv.stop()
    rc, out, err = run_cli(binary, ["verify", "--data", data], timeout=300)
    if rc != 0:
        problems.append("engram verify exited %d: %s" % (rc, (out + err)[-2000:]))
    restart_s.sort()
    summary = {
        "seed": seed, "kills": kills, "loop_seconds": round(loop_s, 1),
        "acknowledged_uploads": len(st.acked), "acknowledged_deletes": len(st.deleted),
        "uploads_in_doubt": st.uploads_in_doubt, "deletes_in_doubt": len(st.in_doubt),
        "completed": completed, "failed": failed, "queries_ok": st.queries_ok,
        "restart_p50_ms": round(1000 * restart_s[len(restart_s) // 2], 1) if restart_s else None,
        "restart_max_ms": round(1000 * restart_s[-1], 1) if restart_s else None,
        "verify": "clean" if rc == 0 else "defects", "problems": problems[:50],
    }
    log(json.dumps(summary, indent=1))
    shutil.rmtree(bindir, ignore_errors=True)
    if not problems:
        shutil.rmtree(data, ignore_errors=True)
    else:
        log("data directory kept: %s" % data)
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/engram")
    ap.add_argument("--kills", type=int, default=120)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--report")
    a = ap.parse_args()
    s = run(a.binary, a.kills, a.seed)
    if a.report:
        os.makedirs(os.path.dirname(a.report) or ".", exist_ok=True)
        with open(a.report, "w") as f:
            json.dump(s, f, indent=1)
    sys.exit(1 if s["problems"] else 0)


if __name__ == "__main__":
    main()
