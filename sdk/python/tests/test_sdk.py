#!/usr/bin/env python3
"""test_sdk.py - the Python client against the real engram binary.

Starts `engram serve` (tests/integration/harness.py's Server) and drives
every client method whose route the server has. Prints "PASS sdk_python.X"
or "FAIL sdk_python.X: why" per test. A test of a route this build does not
serve yet (the server answers 404 "no such route") prints
"SKIP sdk_python.X: route not served yet" - not a pass - and runs by itself
once the route exists. Exit status 1 when anything failed.

    python3 sdk/python/tests/test_sdk.py --binary build/asan/engram [--only NAME]
"""

import argparse
import http.server
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import engram_client as ec  # noqa: E402
from harness import Server  # noqa: E402

TESTS = []


class Skip(Exception):
    pass


class Failure(AssertionError):
    pass


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(got, want, what):
    if got != want:
        raise Failure("%s: got %r, want %r" % (what, got, want))


def raises(cls, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except cls as e:
        return e
    except Exception as e:  # noqa: BLE001
        raise Failure("expected %s, got %s: %s" % (cls.__name__, type(e).__name__, e))
    raise Failure("expected %s, nothing was raised" % cls.__name__)


def served(fn, *a, **kw):
    """Calls fn; a 404 "no such route" means the route is not in this build."""
    try:
        return fn(*a, **kw)
    except ec.NotFound as e:
        if e.message == "no such route":
            raise Skip("route not served yet")
        raise


def uniq(p):
    return "%s-%s" % (p, uuid.uuid4().hex[:8])


class Ctx:
    pass


# --------------------------------------------------------------------------


@test
def pip_install_offline(c):
    # --no-index: nothing may come from PyPI (the build backend is in the tree).
    with tempfile.TemporaryDirectory() as d:
        target = os.path.join(d, "site")
        p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--quiet",
                            "--no-cache-dir", "--target", target, os.path.dirname(HERE)],
                           capture_output=True, text=True, timeout=120)
        eq(p.returncode, 0, "pip install --no-index exit (stderr %s)" % p.stderr[-400:])
        check(os.path.exists(os.path.join(target, "engram_client", "client.py")),
              "the package files were not installed")
        code = "import engram_client; print(engram_client.__version__)"
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=target), cwd=d)
        eq(p.stdout.strip(), ec.__version__, "installed package version")


@test
def register_and_health(c):
    anon = ec.Client(base_url=c.url, api_key="")
    h = anon.health()
    eq(h.get("status"), "ok", "health status")
    c.admin_email = uniq("admin") + "@example.com"
    r = anon.auth.register(c.admin_email, "correct horse battery")
    check(r["api_key"].startswith("eg_"), "register answers a key: %r" % r)
    c.admin = ec.Client(api_key=r["api_key"], base_url=c.url)
    c.admin_id = r["user_id"]


@test
def errors_are_typed(c):
    bad = ec.Client(api_key="eg_" + "x" * 40, base_url=c.url, max_retries=0)
    e = raises(ec.Unauthorized, bad.collections.list)
    eq(e.status, 401, "status")
    eq(e.code, "UNAUTHORIZED", "code")
    check(e.request_id and e.request_id in str(e), "request id in the error: %s" % e)
    e = raises(ec.NotFound, c.admin.collections.get, str(uuid.uuid4()))
    eq(e.code, "NOT_FOUND", "missing collection code")
    e = raises(ec.ValidationError, c.admin.retrievals.retrieve, "x", top_k=0)
    eq(e.status, 422, "top_k=0 status")
    eq(e.details.get("field"), "top_k", "details.field")
    name = uniq("dup")
    c.admin.collections.create(name)
    raises(ec.Conflict, c.admin.collections.create, name)
    check(issubclass(ec.RateLimited, ec.EngramError) and issubclass(ec.Timeout, ec.EngramError),
          "every error is an EngramError")


@test
def collections_crud_and_pages(c):
    cl = c.admin
    made = [cl.collections.create(uniq("page"), description="d%d" % i, metadata={"i": i})
            for i in range(5)]
    got = cl.collections.get(made[0]["id"])
    eq(got["name"], made[0]["name"], "get by id")
    eq(got["metadata"], {"i": 0}, "metadata kept")
    upd = cl.collections.update(made[0]["id"], description="changed")
    eq(upd["description"], "changed", "patched description")
    page = cl.collections.list(limit=2)
    eq(len(page["data"]), 2, "page size")
    check(page["pagination"]["has_more"], "has_more on the first page")
    all_ids = [x["id"] for x in cl.collections.iter(page_size=2)]
    for m in made:
        check(m["id"] in all_ids, "iter() missed collection %s" % m["name"])
    eq(len(all_ids), len(set(all_ids)), "iter() yields each collection once")
    eq(cl.collections.find(made[1]["name"])["id"], made[1]["id"], "find by name")
    cl.collections.delete(made[4]["id"])
    raises(ec.NotFound, cl.collections.get, made[4]["id"])


@test
def documents_upload_every_way(c):
    cl = c.admin
    coll = cl.collections.create(uniq("docs"))
    c.coll = coll
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "storage.md")
        with open(path, "w") as f:
            f.write("# Storage\n\nEvery write goes through one writer that batches commits.\n")
        a = cl.documents.upload(coll["id"], path, metadata={"lang": "en"})
        eq(a["status"], "pending", "path upload status")
        eq(a["filename"], "storage.md", "filename from the path")
        eq(a["metadata"], {"lang": "en"}, "metadata sent as a form field")
        dup = cl.documents.upload(coll["id"], path)
        eq(dup["id"], a["id"], "the same bytes answer the existing document")
    b = cl.documents.upload(coll["id"], b"Readers use short zanzibar transactions.",
                            filename="b.txt", title="Bytes")
    eq(b["title"], "Bytes", "title form field")
    f = io.BytesIO(b"IGNORED PREFIX|The quokka lives on Rottnest island.")
    f.seek(len(b"IGNORED PREFIX|"))
    fo = cl.documents.upload(coll["id"], f, filename="quokka.txt")
    eq(fo["size_bytes"], len(b"The quokka lives on Rottnest island."),
       "a file object is sent from its position")
    t = cl.documents.create(coll["id"], "Plain text about the narwhal tusk.", title="Narwhal",
                            metadata={"lang": "en"})
    for doc in (a, b, fo, t):
        st = cl.documents.wait_until_processed(doc["id"], timeout=60, poll=0.1)
        eq(st["status"], "completed", "status of %s" % doc["id"])
        check(st["chunk_count"] >= 1, "chunk_count")
    chunks = cl.documents.chunks(fo["id"])
    check("quokka" in chunks["data"][0]["content"], "chunk content: %r" % chunks)
    eq(cl.documents.get(t["id"])["title"], "Narwhal", "get")
    eq(cl.documents.update(t["id"], title="Tusk")["title"], "Tusk", "update title")
    ids = [x["id"] for x in cl.documents.iter(collection_id=coll["id"], page_size=2)]
    eq(sorted(ids), sorted([a["id"], b["id"], fo["id"], t["id"]]), "iter documents")
    eq(cl.documents.list(collection_id=coll["id"], status="completed")["pagination"]["total"], 4,
       "list filtered by status")
    cl.documents.delete(b["id"])
    raises(ec.NotFound, cl.documents.get, b["id"])
    e = raises(ec.UnsupportedMediaType, cl.documents.upload, coll["id"],
               b"\x00\x01\x02binary\x00" * 50, filename="x.bin")
    eq(e.status, 415, "binary upload status")
    c.docs = {"a": a, "fo": fo, "t": t}


@test
def large_file_streams(c):
    cl = c.admin
    # Big chunks keep the server's ingest work small: the test is about the upload.
    coll = cl.collections.create(uniq("big"), config={"chunk_size": 8192, "chunk_overlap": 0})
    line = b"The lighthouse keeper logs every ship that passes the harbor at night.\n"
    with tempfile.TemporaryFile() as f:
        n = 0
        while n < 2 * 1024 * 1024:
            f.write(line)
            n += len(line)
        f.seek(0)
        doc = cl.documents.upload(coll["id"], f, filename="big.txt")
    eq(doc["size_bytes"], n, "size of a 2 MiB streamed upload")
    eq(cl.documents.wait_until_processed(doc["id"], timeout=120, poll=0.2)["status"], "completed",
       "the big document is indexed")


@test
def retrieval_keyword(c):
    cl = c.admin
    r = cl.retrievals.retrieve("quokka island", mode="keyword", top_k=3,
                               collection_id=c.coll["id"], explain=True)
    eq(r["mode"], "keyword", "mode")
    check(r["results"], "no results")
    eq(r["results"][0]["document"]["id"], c.docs["fo"]["id"], "best hit")
    check("explain" in r["results"][0], "explain asked for")
    r = cl.retrieve("narwhal", mode="keyword", metadata_filter={"lang": "en"})
    check(any(x["document"]["id"] == c.docs["t"]["id"] for x in r["results"]),
          "metadata filter across collections")
    raises(ec.NotFound, cl.retrieve, "x", mode="keyword", collection_id=str(uuid.uuid4()))


@test
def keys_lifecycle(c):
    cl = c.admin
    k = cl.auth.keys.create("ro", scopes=["read"])
    check(k["api_key"].startswith("eg_"), "new key")
    listed = cl.auth.keys.list()["data"]
    check(any(x["id"] == k["id"] for x in listed), "the new key is listed")
    check(all("api_key" not in x for x in listed), "a listed key never shows its secret")
    ro = ec.Client(api_key=k["api_key"], base_url=c.url, max_retries=0)
    ro.collections.list()
    raises(ec.Forbidden, ro.collections.create, uniq("nope"))
    cl.auth.keys.delete(k["id"])
    raises(ec.Unauthorized, ro.collections.list)


@test
def workspaces_and_members(c):
    cl = c.admin
    user = cl.admin.users.create(uniq("member") + "@example.com", "correct horse battery")
    ws = cl.workspaces.create(uniq("team"))
    check(any(w["id"] == ws["id"] for w in cl.workspaces.list()["data"]), "listed workspace")
    m = cl.workspaces.members.add(ws["id"], user["email"], role="reader")
    eq(m["role"], "reader", "member role")
    emails = [x["email"] for x in cl.workspaces.members.list(ws["id"])["data"]]
    check(user["email"] in emails, "member listed: %r" % emails)
    cl.workspaces.members.remove(ws["id"], user["user_id"])
    emails = [x["email"] for x in cl.workspaces.members.list(ws["id"])["data"]]
    check(user["email"] not in emails, "member removed")


@test
def admin_users_and_stats(c):
    cl = c.admin
    st = cl.admin.stats()
    check(isinstance(st, dict) and st, "stats is an object")
    u = cl.admin.users.create(uniq("ops") + "@example.com", "correct horse battery")
    uc = ec.Client(api_key=u["api_key"], base_url=c.url, max_retries=0)
    uc.collections.list()
    raises(ec.Forbidden, uc.admin.stats)
    check(any(u["user_id"] in (x.get("id"), x.get("user_id")) for x in cl.admin.users.iter()),
          "user listed")
    cl.admin.users.update(u["user_id"], disabled=True)
    raises(ec.Unauthorized, uc.collections.list)
    cl.admin.users.update(u["user_id"], disabled=False)
    uc.collections.list()


@test
def login_cookie_session(c):
    s = ec.Client(base_url=c.url, api_key="", max_retries=0)
    raises(ec.Unauthorized, s.auth.login, c.admin_email, "wrong password!")
    r = s.auth.login(c.admin_email, "correct horse battery")
    eq(r["email"], c.admin_email, "login email")
    check(any(x["id"] == c.coll["id"] for x in s.collections.iter()), "cookie session reads")
    s.auth.logout()
    raises(ec.Unauthorized, s.collections.list)


@test
def sse_parser(c):
    raw = (b"event: sources\ndata: {\"type\":\"sources\",\"sources\":[{\"chunk_id\":\"c1\"}]}\n\n"
           b": keep-alive\n\n"
           b"event: delta\r\ndata: {\"type\":\"delta\",\"content\":\"Hel\",\"delta\":\"Hel\"}\r\n\r\n"
           b"event: delta\ndata: {\"type\":\"delta\",\"delta\":\"lo\"}\n\n"
           b"event: usage\ndata: {\"type\":\"usage\",\"usage\":{\"total_tokens\":3}}\n\n"
           b"event: future\ndata: {\"type\":\"future\",\"x\":1}\n\n"
           b"event: done\ndata: {\"type\":\"done\",\"session_id\":\"s1\"}\n\n")
    evs = list(ec.parse_sse(io.BytesIO(raw)))
    eq([e.type for e in evs], ["sources", "delta", "delta", "usage", "future", "done"], "types")
    eq(evs[0].sources[0]["chunk_id"], "c1", "sources")
    eq(evs[1].content + evs[2].content, "Hello", "deltas in both spellings")
    eq(evs[3].usage["total_tokens"], 3, "usage")
    eq(type(evs[4]), ec.Event, "an unknown type stays a plain Event")
    eq(evs[5].session_id, "s1", "done session")
    err = list(ec.parse_sse([b'event: error\n', b'data: {"type":"error","error":"boom"}\n', b"\n"]))
    eq(err[0].error, "boom", "error event")


@test
def retries_on_connection_errors(c):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    cl = ec.Client(api_key="k", base_url="http://127.0.0.1:%d" % port, max_retries=2)
    slept = []
    cl._transport.sleep = slept.append
    e = raises(ec.ConnectionFailed, cl.collections.list)
    check(e.status is None, "no status without an answer")
    eq(len(slept), 2, "two retries before giving up")
    check(slept[1] > slept[0] * 1.01 or slept[1] >= 0.5, "backoff grows: %r" % slept)


class _Flaky(http.server.BaseHTTPRequestHandler):
    """Answers 429 with Retry-After (or 503) to the first requests, then 200.
    The server under test cannot be made to rate-limit on demand, so the
    retry policy is checked against this stand-in."""
    plan = []
    seen = []

    def do_GET(self):
        self.seen.append(self.path)
        status = self.plan.pop(0) if self.plan else 200
        body = b'{"status":"ok"}' if status == 200 else (
            b'{"detail":"slow down","error":{"code":"%s","message":"slow down"},'
            b'"meta":{"request_id":"r1"}}' % (b"QUOTA_EXCEEDED" if status == 4291 else
                                               b"RATE_LIMITED"))
        self.send_response(429 if status == 4291 else status)
        if status in (429, 4291):
            self.send_header("Retry-After", "2")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@test
def retries_respect_retry_after(c):
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Flaky)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        cl = ec.Client(api_key="k", base_url="http://127.0.0.1:%d" % srv.server_port,
                       max_retries=3)
        slept = []
        cl._transport.sleep = slept.append
        _Flaky.plan[:] = [429, 503]
        eq(cl.health(), {"status": "ok"}, "answer after retries")
        eq(slept[0], 2.0, "Retry-After honoured")
        eq(len(slept), 2, "one retry per failure")
        slept.clear()
        _Flaky.plan[:] = [4291]
        e = raises(ec.QuotaExceeded, cl.health)
        eq((e.retry_after, slept), (2.0, []), "quota errors are not retried")
        _Flaky.plan[:] = [429] * 5
        e = raises(ec.RateLimited, cl.health)
        eq(len(slept), 3, "gives up after max_retries")
    finally:
        srv.shutdown()
        srv.server_close()


@test
def timeout_is_raised(c):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)  # accepts the connection, never answers
    try:
        cl = ec.Client(api_key="k", base_url="http://127.0.0.1:%d" % s.getsockname()[1],
                       timeout=0.3, max_retries=0)
        t0 = time.monotonic()
        raises(ec.Timeout, cl.collections.list)
        check(time.monotonic() - t0 < 10, "timeout took far too long")
    finally:
        s.close()


# Routes being built by others: each test runs as soon as its route exists.


@test
def chat_stream_and_sessions(c):
    cl = c.admin
    with served(cl.chat.stream, "Where does the quokka live?",
                collection_id=c.coll["id"]) as st:
        types = [ev.type for ev in st]
    check("delta" in types and types[-1] == "done", "event order: %r" % types)
    check(types.index("sources") < types.index("delta"), "sources come first: %r" % types)
    check("usage" in types, "a usage frame is always sent")
    check(st.text, "streamed text")
    check(st.session_id, "done names the session")
    sessions = served(cl.sessions.list)
    check(any(s["id"] == st.session_id for s in sessions), "the session is listed")
    msgs = cl.sessions.messages(st.session_id)
    eq([m["role"] for m in msgs], ["user", "assistant"], "stored turns")
    eq(msgs[1]["content"], st.text, "the stored answer is the streamed text")
    r = cl.chat.send("And the narwhal?", session_id=st.session_id)
    check(r["response"] and "sources" in r, "non-streamed answer: %r" % r)
    cl.sessions.delete(st.session_id)
    raises(ec.NotFound, cl.sessions.messages, st.session_id)


@test
def memories_crud_and_search(c):
    cl = c.admin
    m = served(cl.memories.create, "profile", "Prefers answers with code in Rust.",
               metadata={"src": "sdk"})
    eq(m["reliability"], 0.8, "default reliability")
    eq(cl.memories.get(m["id"])["content"], m["content"], "get")
    eq(cl.memories.update(m["id"], reliability=0.5)["reliability"], 0.5, "update")
    check(any(x["id"] == m["id"] for x in cl.memories.list(type="profile")["data"]), "list")
    res = cl.memories.search("Rust code", top_k=5)["results"]
    check(res and res[0]["id"] == m["id"] and "signals" in res[0], "search: %r" % res)
    raises(ec.ValidationError, cl.memories.search, "x", types=["nonsense"])
    cl.memories.delete(m["id"])
    raises(ec.NotFound, cl.memories.get, m["id"])


@test
def graph_routes(c):
    cl = c.admin
    ents = served(cl.graph.entities, c.coll["id"], limit=10)
    check("data" in ents and "pagination" in ents, "entities list shape")
    if ents["data"]:
        e = cl.graph.entity(c.coll["id"], ents["data"][0]["id"])
        check("relations" in e and "chunk_ids" in e, "entity detail: %r" % e)
    js = cl.graph.export(c.coll["id"], format="json")
    check(isinstance(js, dict), "json export")
    gml = cl.graph.export(c.coll["id"], format="graphml")
    check(isinstance(gml, str) and "graphml" in gml, "graphml export")


@test
def signed_url(c):
    cl = c.admin
    u = served(cl.documents.url, c.docs["fo"]["id"], expires_in=60)
    eq(u["expires_in"], 60, "expires_in")
    import urllib.request
    url = u["url"] if u["url"].startswith("http") else c.url + u["url"]
    with urllib.request.urlopen(url, timeout=10) as r:
        eq(r.read(), b"The quokka lives on Rottnest island.", "the original bytes, no key")


@test
def admin_quota(c):
    cl = c.admin
    ws = cl.workspaces.list()["data"][0]
    q = served(cl.admin.quota, ws["id"], max_chunks=100000, max_requests_per_day=100000)
    check(isinstance(q, dict), "quota answer")


@test
def admin_backup(c):
    cl = c.admin
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "backup.mdb")
        n = served(cl.admin.backup, path)
        check(n > 0 and os.path.getsize(path) == n, "backup bytes written: %d" % n)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build/asan/engram"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    server = Server(args.binary, optional_args=["--rate-limit", "0"])
    try:
        server.start()
    except Exception as e:  # noqa: BLE001
        print("FAIL sdk_python.setup: %s" % e)
        return 1
    c = Ctx()
    c.url = "http://127.0.0.1:%d" % server.port
    failed = 0
    try:
        for fn in TESTS:
            if args.only and args.only not in fn.__name__:
                continue
            t0 = time.time()
            try:
                fn(c)
                print("PASS sdk_python.%s (%.2fs)" % (fn.__name__, time.time() - t0))
            except Skip as e:
                print("SKIP sdk_python.%s: %s" % (fn.__name__, e))
            except Exception as e:  # noqa: BLE001 - one failure must not stop the rest
                failed += 1
                print("FAIL sdk_python.%s: %s: %s" % (fn.__name__, type(e).__name__,
                                                       str(e).replace("\n", " ")))
                traceback.print_exc(file=sys.stdout)
            if not server.alive():
                failed += 1
                print("FAIL sdk_python.%s: server died; log:\n%s" % (fn.__name__, server.tail()))
                break
            sys.stdout.flush()
    finally:
        rc = server.stop()
        bad = server.new_sanitizer_lines()
        if bad or rc != 0:
            failed += 1
            print("FAIL sdk_python.shutdown: exit %r %s" % (rc, "\n".join(bad[:20])))
        server.cleanup()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
