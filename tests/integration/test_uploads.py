#!/usr/bin/env python3
"""test_uploads.py - large multipart uploads cost the server bounded memory.

A text file of --upload-mb MiB (30 under `make test`; `make bench-upload`
runs 100 against the release build) is generated while it is sent - never
held in Python memory - as a multipart/form-data body with Content-Length,
and a smaller one with chunked transfer coding. The server spools bodies of
the upload route to an unlinked file under DATA/tmp and hands the handler a
read-only mapping, so its peak resident memory (VmHWM in /proc/PID/status)
through the 202 stays far below the body size times anything: the test
asserts it stays under 300 MB. It also checks, while the body is still on
its way, that the spool file exists only as an open descriptor (no name in
DATA/tmp), and afterwards that the stored document has exactly the bytes
sent (size_bytes, content_hash).

Each upload runs on a fresh server so the figure is that upload's alone; the
server is killed right after (indexing 100 MB is the ingestion pipeline's
concern, measured by `make bench-bigdoc` (test_bigdoc.py); pass --wait-ingest to wait for
it here and report its peak too).
"""
import argparse
import hashlib
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--upload-mb", type=int, default=30)
ap.add_argument("--wait-ingest", action="store_true")
OPTS, _ = ap.parse_known_args()
LIMIT_MB = 300

S = h.Suite("test_uploads", server_args=["--max-upload-mb", str(max(OPTS.upload_mb + 8, 100))])


def vm(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return -1


def spool_fds(pid, tmp_dir):
    """Descriptors of the server open on a file in DATA/tmp (spool files)."""
    out = []
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith(tmp_dir + "/"):
            out.append(target)
    return out


class TextBody:
    """A multipart body holding a generated text file of `size` bytes, made
    piece by piece; its length is known in advance, the file part's sha256
    is known at the end."""

    def __init__(self, boundary, coll_id, size, on_half=None):
        self.head = ("--%s\r\nContent-Disposition: form-data; name=\"collection_id\"\r\n\r\n%s\r\n"
                     "--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                     "filename=\"big.txt\"\r\nContent-Type: text/plain\r\n\r\n" %
                     (boundary, coll_id, boundary)).encode()
        self.tail = ("\r\n--%s--\r\n" % boundary).encode()
        self.size = size
        self.sha = hashlib.sha256()
        self.on_half = on_half
        self.lines = [(h.words(12, seed=i) + " line %d\n" % i).encode() for i in range(64)]

    def __len__(self):
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self):
        yield self.head
        sent, i, half_done = 0, 0, False
        while sent < self.size:
            block = b"".join(self.lines[(i + k) % 64] for k in range(700))
            i += 1
            block = block[:self.size - sent]
            self.sha.update(block)
            sent += len(block)
            yield block
            if not half_done and sent >= self.size // 2 and self.on_half:
                half_done = True
                self.on_half()
        yield self.tail


def upload_and_measure(s, size, chunked):
    srv = s.new_server()
    srv.start()
    pid = srv.proc.pid
    tmp_dir = os.path.realpath(os.path.join(srv.data_dir, "tmp"))
    c = h.Client(srv.port, forbid_5xx=True)
    admin = h.register_admin(c)
    coll = h.create_collection(c, admin["key"])
    before = vm(pid, "VmHWM")
    seen = {}

    def at_half():
        # Half the body is on its way: the spool exists only as an open,
        # nameless file.
        seen["listing"] = sorted(os.listdir(tmp_dir))
        seen["fds"] = spool_fds(pid, tmp_dir)
        seen["rss_half"] = vm(pid, "VmRSS")

    body = TextBody("----engramupload" + h.nonce(), coll["id"], size, at_half)
    boundary = body.head[2:body.head.index(b"\r\n")].decode()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=600)
    headers = {"Authorization": "Bearer " + admin["key"],
               "Content-Type": "multipart/form-data; boundary=" + boundary}
    t0 = time.time()
    if chunked:
        conn.request("POST", "/api/v1/documents", body=iter(body), headers=headers,
                     encode_chunked=True)
    else:
        headers["Content-Length"] = str(len(body))
        conn.request("POST", "/api/v1/documents", body=iter(body), headers=headers)
    r = conn.getresponse()
    raw = r.read()
    peak = vm(pid, "VmHWM")
    secs = time.time() - t0
    conn.close()
    h.eq(r.status, 202, "upload of %d MiB: %s" % (size >> 20, h.short(raw)))
    doc = json.loads(raw)
    h.eq(doc["size_bytes"], size, "size_bytes")
    h.eq(doc["content_hash"], body.sha.hexdigest(), "content_hash")
    h.eq(seen.get("listing"), [], "names in DATA/tmp while the body arrives")
    h.check(seen.get("fds") and all(t.endswith("(deleted)") for t in seen["fds"]),
            "no unlinked spool file open mid-upload: %r" % seen.get("fds"))
    mode = os.stat(tmp_dir).st_mode & 0o777
    h.eq(oct(mode), oct(0o700), "DATA/tmp mode")
    print("FIGURE upload %s %d MiB: %.1f s, VmHWM %d MiB through the 202 (%d before the "
          "upload, VmRSS %d MiB mid-upload)" % ("chunked" if chunked else "content-length",
                                                size >> 20, secs, peak, before,
                                                seen.get("rss_half", -1)))
    h.check(peak < LIMIT_MB, "VmHWM %d MiB through a %d MiB upload (limit %d)" %
            (peak, size >> 20, LIMIT_MB))
    if OPTS.wait_ingest:
        t1 = time.time()
        st = h.wait_completed(c, admin["key"], doc["id"], timeout=3600)
        print("FIGURE ingest of %d MiB: %.1f s, %s chunks, VmHWM %d MiB" %
              (size >> 20, time.time() - t1, st.get("processing_info", {}).get("chunk_count"),
               vm(pid, "VmHWM")))
    # The spool is closed when the request is finished, just after the answer.
    deadline = time.time() + 5
    while spool_fds(pid, tmp_dir) and time.time() < deadline:
        time.sleep(0.05)
    h.eq(spool_fds(pid, tmp_dir), [], "spool files still open after the answer")
    h.eq(os.listdir(tmp_dir), [], "files left in DATA/tmp")
    # Indexing it is not this suite's business: stop here.
    srv.kill()


@S.test
def test_big_upload_with_content_length(s):
    upload_and_measure(s, OPTS.upload_mb << 20, chunked=False)


@S.test
def test_chunked_upload(s):
    upload_and_measure(s, max(OPTS.upload_mb // 3, 4) << 20, chunked=True)


if __name__ == "__main__":
    S.run()
