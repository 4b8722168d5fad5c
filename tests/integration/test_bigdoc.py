#!/usr/bin/env python3
"""test_bigdoc.py - large documents stream through ingestion, fairly.

  * A generated text of --bigdoc-mb MiB (16 under `make test`; `make
    bench-bigdoc` runs 100 against the release build) is uploaded and must
    end completed and searchable: a word found only near its end is the top
    keyword hit, and the hit's character offsets cut exactly that chunk's
    content out of the uploaded text. The server's memory is sampled while
    it ingests: the heap it uses (RssAnon) must stay bounded by the part
    size (1,024 chunks, a few MiB of text), not by the document (the
    whole-document pipeline held the text, a 24-byte record per word, every
    vector and the whole commit at once); VmHWM (heap + mapped pages of the
    database) is printed beside it.
  * A server killed (SIGKILL) while a large document is half committed -
    status processing with chunk_count > 0 - resumes it from its committed
    chunks at restart (says so in its log), ends completed with the same
    chunk count as an uninterrupted upload of the same text, and `engram
    verify` is clean.
  * Fairness: one workspace queues many documents, then another uploads
    one: with one ingest thread the second workspace's document completes
    while most of the first's backlog is still waiting (round-robin between
    workspaces, not first come first served). And a document far larger
    than a part does not hold the worker: another workspace's small document
    completes while the large one is still processing.
"""
import argparse
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--bigdoc-mb", type=int, default=16)
OPTS, _ = ap.parse_known_args()

S = h.Suite("test_bigdoc", server_args=["--max-upload-mb", str(OPTS.bigdoc_mb + 8)])
ASAN = "asan" in S.binary
# Heap bound while a large document ingests: parts of 1,024 chunks (about
# 2.5 MiB of text, their vectors and graph entries, two at a time) plus one
# write transaction's dirty pages; ASan adds shadow memory and its
# quarantine of freed blocks (kept small for this server, see below).
ANON_LIMIT_MB = 250 if ASAN else 100
UNIQUE = "zyzzogeton"


def gen_text(size, seed):
    """ASCII prose of `size` bytes (so code point offsets are byte offsets)
    with UNIQUE once, about 2 KiB before the end, and "aardwolf" once near
    the start."""
    rng = random.Random(seed)
    vocab = ("river mountain lantern copper harbor meadow signal garden winter orbit basalt "
             "falcon quiet ember thistle canyon marble violet summit cedar prism tundra").split()
    lines = []
    for i in range(512):
        n = rng.randint(8, 20)
        line = " ".join(rng.choice(vocab) for _ in range(n))
        lines.append((line[0].upper() + line[1:] + (". " if i % 3 else ".\n\n")).encode())
    block = b"".join(lines)
    out = bytearray(b"Aardwolf opens this text. ")
    while len(out) < size:
        out += block
    del out[size:]
    pos = size - 2048
    while out[pos:pos + 1] != b" ":
        pos += 1
    out[pos:pos] = b" " + UNIQUE.encode()
    del out[size:]
    return bytes(out)


def status_of(pid):
    got = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                got[k] = int(v.split()[0]) // 1024
    return got


class Sampler(threading.Thread):
    """Samples a process's memory every 50 ms until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop, self.max_anon = pid, threading.Event(), 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.max_anon = max(self.max_anon, status_of(self.pid).get("RssAnon", 0))
            except OSError:
                return
            time.sleep(0.05)


def small_asan_quarantine():
    # ASan keeps freed blocks (256 MiB by default) to catch use-after-free:
    # that is the sanitizer's memory, not ours, so keep it small here.
    if ASAN:
        os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "detect_leaks=1") + \
            ":quarantine_size_mb=16"


def chunk_of(c, key, doc_id, offset):
    r = c.get("/documents/%s/chunks?limit=1&offset=%d" % (doc_id, offset), key=key)
    h.expect(r, 200, what="GET /documents/{id}/chunks")
    return r.json["data"][0] if isinstance(r.json, dict) else r.json[0]


@S.test
def test_large_document_streams(s):
    small_asan_quarantine()
    srv = s.new_server()
    srv.start()
    c = h.Client(srv.port, forbid_5xx=True)
    admin = h.register_admin(c)
    coll = h.create_collection(c, admin["key"])
    text = gen_text(OPTS.bigdoc_mb << 20, seed=7)
    base = status_of(srv.proc.pid)
    sampler = Sampler(srv.proc.pid)
    sampler.start()
    t0 = time.time()
    r = h.upload_multipart(c, admin["key"], coll["id"], "big.txt", text)
    h.expect(r, 202, what="upload of %d MiB" % OPTS.bigdoc_mb)
    doc = r.json
    st = h.wait_completed(c, admin["key"], doc["id"], timeout=1800)
    secs = time.time() - t0
    sampler.stop.set()
    sampler.join()
    end = status_of(srv.proc.pid)
    n = st["chunk_count"]
    print("FIGURE bigdoc %d MiB: %.1f s to completed (%.2f MB/s), %d chunks, VmHWM %d MiB, "
          "peak RssAnon %d MiB (%d before), RssFile now %d MiB%s" %
          (OPTS.bigdoc_mb, secs, len(text) / 1e6 / secs, n, end["VmHWM"], sampler.max_anon,
           base["RssAnon"], end["RssFile"], " (ASan)" if ASAN else ""))
    h.check(n > len(text) // 4096, "only %d chunks for %d bytes" % (n, len(text)))
    h.eq(st["total_tokens"], len(text.split()), "total_tokens")
    # The word near the end: the top hit, in the document's last chunks, and
    # the hit's offsets cut its content out of the uploaded text.
    res = h.search(c, admin["key"], UNIQUE, collection_id=coll["id"], top_k=3)["results"]
    h.check(res, "no hit for the word near the end")
    top = res[0]
    h.eq(top["document"]["id"], doc["id"], "document of the top hit")
    h.check(top["chunk_index"] >= n - 3, "hit in chunk %d of %d" % (top["chunk_index"], n))
    meta = top["chunk_metadata"]
    h.eq(text[meta["start"]:meta["end"]].decode(), top["content"], "text at the hit's offsets")
    h.check(UNIQUE in top["content"], "unique word in the hit")
    first = chunk_of(c, admin["key"], doc["id"], 0)
    h.eq(first["metadata"]["start"], 0, "first chunk starts the text")
    h.check(first["content"].startswith("Aardwolf opens"), "first chunk's content")
    h.check(sampler.max_anon < ANON_LIMIT_MB,
            "heap (RssAnon) reached %d MiB ingesting %d MiB (limit %d)" %
            (sampler.max_anon, OPTS.bigdoc_mb, ANON_LIMIT_MB))
    srv.stop()
    rc, out, err = h.run_cli(S.binary, ["verify", "--data", srv.data_dir])
    h.eq(rc, 0, "engram verify: %s %s" % (out[-400:], err[-400:]))


@S.test
def test_kill_mid_document_resumes(s):
    small_asan_quarantine()
    srv = s.new_server()
    srv.start()
    c = h.Client(srv.port, forbid_5xx=True)
    admin = h.register_admin(c)
    coll = h.create_collection(c, admin["key"])
    text = gen_text(6 << 20, seed=11)  # about 2,700 chunks: three parts
    r = h.upload_multipart(c, admin["key"], coll["id"], "big.txt", text)
    h.expect(r, 202, what="upload")
    doc = r.json
    kills = 0
    for _ in range(2):
        # Kill once a part is committed and more are to come.
        deadline = time.time() + 600
        while time.time() < deadline:
            d = c.get("/documents/%s" % doc["id"], key=admin["key"]).json
            committed = d["processing_info"]["chunk_count"]
            if d["status"] == "completed" or (d["status"] == "processing" and committed > 0 and
                                              committed > 1024 * kills):
                break
            time.sleep(0.05)
        if d["status"] == "completed":
            break
        srv.kill()
        kills += 1
        srv.start()
        c = h.Client(srv.port, forbid_5xx=True)
    h.check(kills >= 1, "the document completed before a part was committed")
    h.check(any(re.search(r"resumes after its \d+ committed chunks", line) for line in srv.logs),
            "no resume in the log")
    st = h.wait_completed(c, admin["key"], doc["id"], timeout=1200)
    # The same text, uninterrupted, in another collection: the same chunks.
    coll2 = h.create_collection(c, admin["key"])
    r = h.upload_multipart(c, admin["key"], coll2["id"], "again.txt", text)
    h.expect(r, 202, what="second upload")
    st2 = h.wait_completed(c, admin["key"], r.json["id"], timeout=1200)
    h.eq(st["chunk_count"], st2["chunk_count"], "chunk count after %d kill(s)" % kills)
    h.eq(st["total_tokens"], st2["total_tokens"], "total_tokens after kills")
    res = h.search(c, admin["key"], UNIQUE, collection_id=coll["id"], top_k=1)["results"]
    h.check(res and res[0]["document"]["id"] == doc["id"], "no hit for the word near the end")
    h.check(res[0]["chunk_index"] >= st["chunk_count"] - 3, "hit in chunk %d of %d" %
            (res[0]["chunk_index"], st["chunk_count"]))
    meta = res[0]["chunk_metadata"]
    h.eq(text[meta["start"]:meta["end"]].decode(), res[0]["content"], "offsets after resume")
    for coll_id in (coll["id"], coll2["id"]):
        r = c.get("/collections/%s" % coll_id, key=admin["key"])
        h.eq(r.json.get("chunk_count", r.json.get("stats", {}).get("chunk_count")),
             st["chunk_count"], "collection chunk_count")
    srv.stop()
    rc, out, err = h.run_cli(S.binary, ["verify", "--data", srv.data_dir])
    h.eq(rc, 0, "engram verify after %d kill(s): %s %s" % (kills, out[-400:], err[-400:]))
    print("FIGURE killed %d time(s) mid-document; resumed and completed with %d chunks" %
          (kills, st["chunk_count"]))


def two_workspaces(srv):
    c = h.Client(srv.port, forbid_5xx=True)
    admin = h.register_admin(c)
    other = h.make_user(c, admin["key"])
    ca = h.create_collection(c, admin["key"])
    cb = h.create_collection(c, other["key"])
    return c, admin, other, ca, cb


@S.test
def test_fair_between_workspaces(s):
    srv = s.new_server(extra_args=["--ingest-threads", "1"])
    srv.start()
    c, a, b, ca, cb = two_workspaces(srv)
    backlog = []
    for i in range(40):
        r = h.upload_multipart(c, a["key"], ca["id"], "b%d.txt" % i, gen_text(400 << 10, 100 + i))
        h.expect(r, 202, what="backlog upload")
        backlog.append(r.json["id"])
    r = h.upload_text(c, b["key"], cb["id"], h.words(300, seed=5) + " latecomer")
    late = r["id"]
    h.wait_completed(c, b["key"], late, timeout=300)
    done = sum(c.get("/documents/%s/status" % d, key=a["key"]).json["status"] == "completed"
               for d in backlog)
    print("FIGURE fairness: the other workspace's document completed after %d of the first "
          "workspace's %d queued documents" % (done, len(backlog)))
    h.check(done < len(backlog) // 2,
            "%d of %d earlier documents of the other workspace finished first" %
            (done, len(backlog)))
    for d in backlog:
        h.wait_completed(c, a["key"], d, timeout=600)


@S.test
def test_big_document_does_not_hold_the_worker(s):
    small_asan_quarantine()
    srv = s.new_server(extra_args=["--ingest-threads", "1", "--max-upload-mb", "32"])
    srv.start()
    c, a, b, ca, cb = two_workspaces(srv)
    text = gen_text(8 << 20, seed=3)
    r = h.upload_multipart(c, a["key"], ca["id"], "big.txt", text)
    h.expect(r, 202, what="big upload")
    big = r.json["id"]
    # Once the big document is being processed, a small one arrives.
    deadline = time.time() + 300
    while time.time() < deadline:
        if c.get("/documents/%s/status" % big, key=a["key"]).json["status"] == "processing":
            break
        time.sleep(0.05)
    r = h.upload_text(c, b["key"], cb["id"], h.words(200, seed=9) + " smallone")
    small = r["id"]
    h.wait_completed(c, b["key"], small, timeout=300)
    st = c.get("/documents/%s/status" % big, key=a["key"]).json["status"]
    print("FIGURE a small document of another workspace completed while the %d MiB one was %s" %
          (len(text) >> 20, st))
    h.eq(st, "processing", "the big document's status when the small one completed")
    h.wait_completed(c, a["key"], big, timeout=1200)


if __name__ == "__main__":
    S.run()
