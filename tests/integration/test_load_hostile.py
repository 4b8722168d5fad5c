"""test_load_hostile.py - hostile clients in `make test` (the measured,
longer version is `make load`, tests/robust/load.py).

  * 200 slowloris connections trickling a request head: a normal client
    is still answered (no timing threshold here; `make load` reports the
    latency with 500);
  * limits test_bad_input.py does not reach: chunk trailers over 8 KiB
    (431), a chunk extension over 1 KiB (400), a chunked upload over
    --max-upload-mb (413), a chunked JSON body over 1 MiB (413), a request
    head that never ends (closed at --header-timeout-ms) - each answered
    cleanly or closed, and the server keeps serving.
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "robust"))

from harness import (Client, RawConn, Suite, check, check_error_body, create_collection,  # noqa: E402
                     eq, expect, register_admin, short)
from slowloris import Slowloris, timed_queries  # noqa: E402

suite = Suite("test_load_hostile", server_args=["--max-upload-mb", "1", "--header-timeout-ms", "1500"])
S = suite.state


@suite.test
def test_setup(s):
    S["A"] = register_admin(s.client)
    S["coll"] = create_collection(s.client, S["A"]["key"])["id"]


@suite.test
def test_normal_client_answered_beside_200_slowloris(s):
    srv = s.new_server(extra_args=["--rate-limit", "0"]).start()
    cl = Client(srv.port, timeout=30)
    key = register_admin(cl)["key"]
    sl = Slowloris(srv.port, 200).open()
    try:
        time.sleep(1.5)
        lat, statuses = timed_queries(Client(srv.port, timeout=30), key, 20)
        eq(statuses, [200] * 20, "normal client's answers while 200 slow connections are open")
        check(sl.open_count() >= 150, "slow connections should still be open (%d)" % sl.open_count())
        print("    normal client beside %d slow connections: max %.1f ms" % (sl.open_count(), max(lat)))
    finally:
        sl.close()
    check(srv.alive(), "server died")


def raw_error(conn, status, code=None):
    r = conn.read_response()
    eq(r.status, status, "status (body %s)" % short(r.body))
    check_error_body(r.status, r.headers, r.body, r.json, "raw")
    if code:
        eq(r.json["error"]["code"], code, "error.code")
    return r


def chunked_head(path, key, ctype="application/json"):
    return ("POST /api/v1%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n" % (path, key, ctype)).encode()


@suite.test
def test_trailers_over_limit_431(s):
    c = RawConn(s.server.port)
    try:
        body = b'{"query":"x"}'
        c.send(chunked_head("/retrievals", S["A"]["key"]) + b"%x\r\n" % len(body) + body +
               b"\r\n0\r\n" + b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 100) for i in range(100)) + b"\r\n")
        raw_error(c, 431)
        check(c.is_closed(), "connection open after 431")
    finally:
        c.close()


@suite.test
def test_chunk_extension_over_limit_400(s):
    c = RawConn(s.server.port)
    try:
        c.send(chunked_head("/retrievals", S["A"]["key"]) + b"5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n")
        raw_error(c, 400)
    finally:
        c.close()


@suite.test
def test_chunked_upload_over_max_413(s):
    c = RawConn(s.server.port)
    try:
        c.send(chunked_head("/documents", S["A"]["key"]))
        chunk = b"a" * 65536
        try:
            for _ in range(40):  # 2.5 MiB > --max-upload-mb 1
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass  # the server may close while we still send: fine after its answer
        raw_error(c, 413)
    finally:
        c.close()


@suite.test
def test_chunked_json_over_1mib_413(s):
    c = RawConn(s.server.port)
    try:
        c.send(chunked_head("/collections", S["A"]["key"]))
        chunk = b" " * 65536
        try:
            for _ in range(20):
                c.send(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        except OSError:
            pass
        raw_error(c, 413)
    finally:
        c.close()


@suite.test
def test_endless_head_closed_at_timeout(s):
    c = RawConn(s.server.port)
    try:
        c.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        t0 = time.time()
        closed = False
        while time.time() - t0 < 8:
            try:
                c.send(b"X-A: b\r\n")
            except OSError:
                closed = True
                break
            if c.is_closed(wait=0.5):
                closed = True
                break
        check(closed, "a head still arriving after 8 s was not cut (header timeout 1.5 s)")
    finally:
        c.close()


@suite.test
def test_still_serving(s):
    expect(s.client.get("/health", api=False), 200)
    r = s.client.post("/retrievals", {"query": "anything", "mode": "keyword"}, key=S["A"]["key"])
    expect(r, 200)


if __name__ == "__main__":
    suite.run()
