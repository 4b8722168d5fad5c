"""full_disk.py - engram ingesting into a filesystem that fills up.

Mounts a small tmpfs (16 MiB; root needed - without it this FAILS with the
reason, it never passes silently), serves from it, and uploads poorly
compressible documents until the server refuses. Then checks:
  * the refusals are clean answers (503 "storage could not commit"), never a
    error shape), never a crash or a hang; the server stays up;
  * every acknowledged upload is still readable and reads/searches are
    served while the disk is full;
  * with the filesystem grown again (remount), writes work without a
    restart - or, if the store refuses further work until restart, that is
    reported - and after a restart every acknowledged document ends
    completed or failed and `engram verify` is clean.
Prints PASS/FAIL lines (it is also tests/integration/test_full_disk.py's
body) and writes a JSON summary with --report.
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

from harness import Client, Server, run_cli  # noqa: E402


def mount_tmpfs(path, size):
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode == 0, p.stdout.decode("utf-8", "replace").strip()


def run(binary, size="16m", seed=1, log=print):
    rng = random.Random(seed)
    mnt = tempfile.mkdtemp(prefix="engram-fulldisk-")
    ok, why = mount_tmpfs(mnt, size)
    if not ok:
        os.rmdir(mnt)
        return {"error": "cannot mount a %s tmpfs for the full-disk test (needs root or "
                         "CAP_SYS_ADMIN): %s" % (size, why)}
    bindir = tempfile.mkdtemp(prefix="engram-fulldisk-bin-")
    shutil.copy2(binary, os.path.join(bindir, "engram"))
    binary = os.path.join(bindir, "engram")
    data = os.path.join(mnt, "data")
    srv = Server(binary, data_dir=data, extra_args=["--rate-limit", "0"])
    res = {"fs_size": size, "seed": seed, "problems": []}
    P = res["problems"]
    try:
        srv.start()
        cl = Client(srv.port, timeout=30)
        key = cl.post("/auth/register", {"email": "full@example.com",
                                         "password": "correct horse battery"}).json["api_key"]
        coll = cl.post("/collections", {"name": "full"}, key=key).json["id"]
        acked, refusals = {}, {}
        first_refusal = None
        for i in range(2000):
            word = "fd%dx%d" % (seed, i)
            body = word + " " + " ".join("%x" % rng.getrandbits(40) for _ in range(6000))
            r = cl.req("POST", "/documents", json={"collection_id": coll, "content": body},
                       key=key)
            if r.status in (200, 202):
                acked[r.json["id"]] = word
                continue
            refusals[r.status] = refusals.get(r.status, 0) + 1
            if first_refusal is None:
                first_refusal = "%s %s" % (r.status, (r.json or {}).get("error", {}).get("message"))
            if sum(refusals.values()) >= 5:
                break
        res.update(acknowledged=len(acked), refusals=refusals, first_refusal=first_refusal)
        df = shutil.disk_usage(mnt)
        res["fs_used_bytes"] = df.used
        if not refusals:
            P.append("the disk never filled")
        if not srv.alive():
            P.append("server died when the disk filled: " + srv.tail(20))
            return res
        bad = [s for s in refusals if s != 503]
        if bad:
            P.append("unexpected refusal statuses %r" % bad)
        # reads still served with the disk full
        t0 = time.time()
        missing = [d for d in acked if cl.req("GET", "/documents/%s" % d, key=key).status != 200]
        if missing:
            P.append("%d acknowledged documents unreadable while full" % len(missing))
        r = cl.post("/retrievals", {"query": "anything " + next(iter(acked.values())),
                                    "mode": "keyword"}, key=key)
        res["search_while_full"] = r.status
        if r.status != 200:
            P.append("search while full answered %s" % r.status)
        res["reads_while_full_s"] = round(time.time() - t0, 2)
        # grow the filesystem: do writes work again without a restart?
        subprocess.run(["mount", "-o", "remount,size=256m", mnt], check=False)
        r = cl.req("POST", "/documents", json={"collection_id": coll, "content": "after growing " +
                                                 str(seed)}, key=key)
        res["write_after_space_freed_without_restart"] = r.status
        # restart: everything acknowledged present, ingestion finishes, verify clean
        srv.kill()
        srv.start()
        cl = Client(srv.port, timeout=30)
        # Documents whose commit met the full disk stay queued and are
        # processed now (each is 6,000 distinct words: slow under ASan).
        t_restart = time.time()
        deadline = time.time() + 300
        final = {}
        for d in acked:
            while True:
                r = cl.req("GET", "/documents/%s/status" % d, key=key)
                st = (r.json or {}).get("status") if r.status == 200 else "missing %s" % r.status
                if st in ("completed", "failed") or st.startswith("missing") or time.time() > deadline:
                    break
                time.sleep(0.2)
            final[st] = final.get(st, 0) + 1
            if st == "failed":
                msg = (r.json or {}).get("error_message") or ""
                res.setdefault("failed_messages", {})
                res["failed_messages"][msg] = res["failed_messages"].get(msg, 0) + 1
        res["after_restart"] = final
        res["resume_s"] = round(time.time() - t_restart, 1)
        for st in final:
            if st not in ("completed", "failed"):
                P.append("%d acknowledged documents %s after restart" % (final[st], st))
        srv.stop()
        rc, out, err = run_cli(binary, ["verify", "--data", data], timeout=300)
        res["verify"] = "clean" if rc == 0 else "defects"
        if rc != 0:
            P.append("engram verify: " + (out + err)[-1000:])
    finally:
        srv.cleanup()
        subprocess.run(["umount", mnt], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
        shutil.rmtree(bindir, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/engram")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--report")
    a = ap.parse_args()
    res = run(a.binary, seed=a.seed)
    print(json.dumps(res, indent=1))
    if a.report:
        os.makedirs(os.path.dirname(a.report) or ".", exist_ok=True)
        with open(a.report, "w") as f:
            json.dump(res, f, indent=1)
    if "error" in res:
        print("FAIL full_disk: " + res["error"])
        sys.exit(1)
    if res["problems"]:
        print("FAIL full_disk: seed %d: %s" % (a.seed, "; ".join(res["problems"])))
        sys.exit(1)
    print("PASS full_disk (seed %d)" % a.seed)


if __name__ == "__main__":
    main()
