"""test_persistence.py - what the server has accepted survives restarts.

A clean restart (SIGTERM, start again on the same data dir) keeps users,
keys, collections, documents and the keyword index. A crash (SIGKILL right
after a 202) loses nothing either: the restarted server resumes the job and
the document ends completed and searchable. `engram user add` works on the
data directory directly and its key is accepted by the server.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Suite, check, cli_user_add, create_collection, eq, expect,  # noqa: E402
                     list_all, nonce, search, upload_text, wait_completed, words)

suite = Suite("test_persistence")
S = suite.state


@suite.test
def test_setup_data(s):
    r = s.client.post("/auth/register", {"email": "keeper@example.com",
                                         "password": "correct horse battery"})
    expect(r, 201, what="register")
    S["key"] = r.json["api_key"]
    S["user_id"] = r.json["user_id"]
    k = S["key"]
    S["coll"] = create_collection(s.client, k, name="persistent", description="kept",
                                  metadata={"a": 1}, config={"chunk_size": 128, "chunk_overlap": 32})
    S["words"] = []
    S["docs"] = []
    for i in range(3):
        w = nonce()
        d = upload_text(s.client, k, S["coll"]["id"],
                        "Document %d is about %s.\n\n%s" % (i, w, words(120, seed=100 + i)),
                        title="doc %d" % i, metadata={"n": i})
        S["words"].append(w)
        S["docs"].append(d["id"])
    S["chunks"] = {}
    for d in S["docs"]:
        st = wait_completed(s.client, k, d)
        S["chunks"][d] = st["chunk_count"]
    r = expect(s.client.post("/auth/keys", {"name": "extra", "scopes": ["read"]}, key=k), 201)
    S["read_key"] = r.json["api_key"]
    r = expect(s.client.post("/auth/keys", {"name": "doomed", "scopes": ["read"]}, key=k), 201)
    S["doomed_key"] = r.json["api_key"]
    expect(s.client.delete("/auth/keys/" + r.json["id"], key=k), 204)
    expect(s.client.get("/collections", key=S["doomed_key"]), 401, what="deleted key")


@suite.test
def test_clean_restart_keeps_everything(s):
    rc = s.restart_server()
    eq(rc, 0, "exit code after SIGTERM")
    k = S["key"]
    expect(s.client.get("/collections", key=k), 200, what="registration key after restart")
    expect(s.client.get("/collections", key=S["read_key"]), 200, what="created key after restart")
    expect(s.client.get("/collections", key=S["doomed_key"]), 401, "UNAUTHORIZED",
           what="deleted key after restart")
    r = expect(s.client.get("/collections/" + S["coll"]["id"], key=k), 200)
    c = r.json
    eq(c["name"], "persistent", "name")
    eq(c["description"], "kept", "description")
    eq(c["metadata"], {"a": 1}, "metadata")
    eq(c["config"].get("chunk_size"), 128, "chunk_size")
    eq(c["config"].get("chunk_overlap"), 32, "chunk_overlap")
    eq(c["document_count"], 3, "document_count")
    eq(c["chunk_count"], sum(S["chunks"].values()), "chunk_count")
    docs = list_all(s.client, k, "/documents?collection_id=" + S["coll"]["id"])
    eq(sorted(d["id"] for d in docs), sorted(S["docs"]), "documents after restart")
    for d in docs:
        eq(d["status"], "completed", "status of %s" % d["id"])
        chunks = list_all(s.client, k, "/documents/%s/chunks" % d["id"])
        eq(len(chunks), S["chunks"][d["id"]], "chunks of %s" % d["id"])
        eq([c["chunk_index"] for c in chunks], list(range(len(chunks))), "chunk order")
    for w, d in zip(S["words"], S["docs"]):
        res = search(s.client, k, w, collection_id=S["coll"]["id"])
        check(res["results"], "%s not found after restart" % w)
        eq(res["results"][0]["document"]["id"], d, "document found for %s" % w)
    r = expect(s.client.post("/auth/login", {"email": "keeper@example.com",
                                             "password": "correct horse battery"}), 200,
               what="login after restart")
    # Registration is still closed: the server remembers it has users.
    r = s.client.post("/auth/register", {"email": "late@example.com", "password": "long enough pw"})
    expect(r, 403, "FORBIDDEN", what="registration after restart")


@suite.test
def test_changes_survive_restart(s):
    k = S["key"]
    expect(s.client.patch("/documents/" + S["docs"][2], {"title": "renamed", "metadata": {"n": 20}},
                           key=k), 200)
    expect(s.client.patch("/collections/" + S["coll"]["id"], {"description": "changed"}, key=k), 200)
    gone = create_collection(s.client, k, name="gone")
    d = upload_text(s.client, k, gone["id"], "Ephemeral %s." % nonce())
    wait_completed(s.client, k, d["id"])
    expect(s.client.delete("/collections/" + gone["id"], key=k), 204)
    t = expect(s.client.post("/workspaces", {"name": "kept-team"}, key=k), 201).json
    rc = s.restart_server()
    eq(rc, 0, "exit code after SIGTERM")
    r = expect(s.client.get("/documents/" + S["docs"][2], key=k), 200)
    eq((r.json["title"], r.json["metadata"]), ("renamed", {"n": 20}), "patched document")
    r = expect(s.client.get("/collections/" + S["coll"]["id"], key=k), 200)
    eq(r.json["description"], "changed", "patched collection")
    expect(s.client.get("/collections/" + gone["id"], key=k), 404, "NOT_FOUND",
           what="deleted collection after restart")
    expect(s.client.get("/documents/" + d["id"], key=k), 404, "NOT_FOUND",
           what="document of a deleted collection after restart")
    r = expect(s.client.post("/collections", {"name": "gone"}, key=k), 201,
               what="reuse a deleted collection's name after restart")
    expect(s.client.delete("/collections/" + r.json["id"], key=k), 204)
    r = expect(s.client.get("/workspaces", key=k), 200)
    eq([w.get("role") for w in r.json["data"] if w.get("id") == t["id"]], ["admin"],
       "created workspace after restart")


@suite.test
def test_crash_after_202_resumes(s):
    k = S["key"]
    w = nonce()
    # Large enough that processing is likely still under way when killed.
    text = ("Crash test about %s.\n\n" % w) + "\n\n".join(words(150, seed=500 + i) for i in range(400))
    d = upload_text(s.client, k, S["coll"]["id"], text, title="crash")
    eq(d["status"], "pending", "status on 202")
    s.restart_server(kill=True)
    st = wait_completed(s.client, k, d["id"], timeout=90)
    check(st["chunk_count"] > 0, "no chunks after resume")
    res = search(s.client, k, w, collection_id=S["coll"]["id"])
    check(res["results"], "crash-test document not searchable after restart")
    eq(res["results"][0]["document"]["id"], d["id"], "found document")
    chunks = list_all(s.client, k, "/documents/%s/chunks" % d["id"])
    eq(len(chunks), st["chunk_count"], "chunk list vs chunk_count (no duplicates from a resumed job)")
    eq([c["chunk_index"] for c in chunks], list(range(len(chunks))), "chunk order after resume")
    r = expect(s.client.get("/collections/" + S["coll"]["id"], key=k), 200)
    eq(r.json["document_count"], 4, "document_count after crash")  # 3 + this one
    eq(r.json["chunk_count"], sum(S["chunks"].values()) + st["chunk_count"],
       "chunk_count after crash")
    S["crash_doc"] = d["id"]
    S["chunks"][d["id"]] = st["chunk_count"]


@suite.test
def test_crash_during_many_uploads(s):
    k = S["key"]
    ids = []
    ws = []
    for i in range(5):
        w = nonce()
        ws.append(w)
        d = upload_text(s.client, k, S["coll"]["id"],
                        "Burst %d mentions %s.\n\n%s" % (i, w, words(2000, seed=900 + i)))
        ids.append(d["id"])
    s.restart_server(kill=True)
    for d in ids:
        wait_completed(s.client, k, d, timeout=90)
    for w, d in zip(ws, ids):
        res = search(s.client, k, w, collection_id=S["coll"]["id"])
        eq([x["document"]["id"] for x in res["results"]][:1], [d], "search for burst word")


@suite.test
def test_delete_survives_crash(s):
    k = S["key"]
    d = S["docs"][0]
    w = S["words"][0]
    expect(s.client.delete("/documents/" + d, key=k), 204)
    s.restart_server(kill=True)
    expect(s.client.get("/documents/" + d, key=k), 404, "NOT_FOUND", what="deleted doc after crash")
    eq(search(s.client, k, w, collection_id=S["coll"]["id"])["results"], [],
       "deleted doc's word after crash")
    res = search(s.client, k, S["words"][1], collection_id=S["coll"]["id"])
    check(res["results"], "other documents lost after crash")


@suite.test
def test_sigterm_during_ingest(s):
    k = S["key"]
    w = nonce()
    text = ("Shutdown test about %s.\n\n" % w) + "\n\n".join(words(150, seed=1500 + i)
                                                             for i in range(500))
    d = upload_text(s.client, k, S["coll"]["id"], text)
    t0 = time.time()
    rc = s.server.stop(timeout=15)
    check(rc is not None, "server did not exit within 15 s of SIGTERM while ingesting")
    eq(rc, 0, "exit code of SIGTERM while ingesting")
    check(time.time() - t0 < 15, "shutdown took %.1fs" % (time.time() - t0))
    s.server.start()
    s.client.port = s.server.port
    wait_completed(s.client, k, d["id"], timeout=90)
    res = search(s.client, k, w, collection_id=S["coll"]["id"])
    eq([x["document"]["id"] for x in res["results"]][:1], [d["id"]], "found after restart")


@suite.test
def test_cli_user_add(s):
    rc = s.server.stop()
    eq(rc, 0, "exit code after SIGTERM")
    key = cli_user_add(s.binary, s.server.data_dir, "cli-user@example.com")
    admin_key = cli_user_add(s.binary, s.server.data_dir, "cli-admin@example.com", admin=True)
    s.server.start()
    s.client.port = s.server.port
    r = expect(s.client.get("/collections", key=key), 200, what="key printed by user add")
    eq(r.json["data"], [], "new CLI user's collections")
    expect(s.client.post("/admin/users", {"email": "x@example.com", "password": "long enough"},
                         key=key), 403, "FORBIDDEN", what="non-admin CLI user on /admin/users")
    expect(s.client.post("/admin/users", {"email": "y@example.com", "password": "long enough"},
                         key=admin_key), 201, what="--admin CLI user on /admin/users")
    # The original user is untouched.
    expect(s.client.get("/collections/" + S["coll"]["id"], key=S["key"]), 200)
    expect(s.client.get("/collections/" + S["coll"]["id"], key=key), 404, "NOT_FOUND",
           what="CLI user reading another user's collection")


@suite.test
def test_restart_twice_quickly(s):
    for _ in range(2):
        rc = s.restart_server()
        eq(rc, 0, "exit code")
    t0 = time.time()
    res = search(s.client, S["key"], S["words"][2], collection_id=S["coll"]["id"])
    check(res["results"], "not found after two restarts")
    check(time.time() - t0 < 10, "first search after restart slow")


if __name__ == "__main__":
    suite.run()
