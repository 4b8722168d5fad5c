"""test_isolation.py - one user never sees or touches another's objects.

User A (the first, registered) and user B (made by A through
POST /admin/users, so B is not an admin). B gets 404, exactly as for an
object that does not exist, for every one of A's collections, documents,
chunks, keys and workspaces; B's searches and lists never show anything of
A's, even for a word only A's documents contain; the same bytes uploaded by
both are two documents; names are unique per workspace only.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Suite, check, create_collection, eq, expect, list_all, make_user,  # noqa: E402
                     nonce, search, strip_meta, upload_text, wait_completed, words)

suite = Suite("test_isolation")
S = suite.state
MISSING = "7d6c5b4a-3f2e-4d1c-9b8a-123456789abc"


@suite.test
def test_setup_two_users(s):
    r = s.client.post("/auth/register", {"email": "alice@example.com",
                                         "password": "correct horse battery"})
    expect(r, 201, what="register A")
    A = {"key": r.json["api_key"], "user_id": r.json["user_id"], "email": "alice@example.com"}
    B = make_user(s.client, A["key"], email="bob@example.com")
    S["A"], S["B"] = A, B
    S["a_word"] = nonce()
    S["shared_word"] = nonce()
    ca = create_collection(s.client, A["key"], name="shared-name", metadata={"owner": "a"})
    S["a_coll"] = ca
    texts = ["Alice's secret notes about %s and %s.\n\n%s" % (S["a_word"], S["shared_word"],
                                                              words(80, seed=1)),
             "More of Alice's %s material.\n\n%s" % (S["a_word"], words(40, seed=2))]
    S["a_docs"] = []
    for t in texts:
        d = upload_text(s.client, A["key"], ca["id"], t, metadata={"lang": "en"})
        S["a_docs"].append(d["id"])
    for d in S["a_docs"]:
        wait_completed(s.client, A["key"], d)
    S["a_chunks"] = [c["id"] for c in list_all(s.client, A["key"],
                                                "/documents/%s/chunks" % S["a_docs"][0])]
    S["a_texts"] = texts
    r = expect(s.client.get("/auth/keys", key=A["key"]), 200)
    S["a_key_ids"] = [k["id"] for k in r.json["data"]]
    r = expect(s.client.get("/workspaces", key=A["key"]), 200)
    S["a_ws"] = r.json["data"][0]["id"]


def nf(r, what):
    expect(r, 404, "NOT_FOUND", what=what)
    return r


@suite.test
def test_b_gets_404_for_a_collection(s):
    k = S["B"]["key"]
    cid = S["a_coll"]["id"]
    r_other = nf(s.client.get("/collections/" + cid, key=k), "B GET A's collection")
    r_missing = nf(s.client.get("/collections/" + MISSING, key=k), "B GET missing collection")
    eq(strip_meta(r_other.json)["error"]["code"], strip_meta(r_missing.json)["error"]["code"],
       "A's collection vs a missing one")
    nf(s.client.patch("/collections/" + cid, {"name": "hijacked"}, key=k), "B PATCH A's collection")
    nf(s.client.delete("/collections/" + cid, key=k), "B DELETE A's collection")
    r = expect(s.client.get("/collections/" + cid, key=S["A"]["key"]), 200)
    eq(r.json["name"], "shared-name", "A's collection name after B's attempts")


@suite.test
def test_b_gets_404_for_a_documents(s):
    k = S["B"]["key"]
    for d in S["a_docs"]:
        nf(s.client.get("/documents/" + d, key=k), "B GET A's document")
        nf(s.client.get("/documents/%s/status" % d, key=k), "B GET A's document status")
        nf(s.client.get("/documents/%s/chunks" % d, key=k), "B GET A's chunks")
        nf(s.client.get("/documents/%s/url" % d, key=k), "B GET A's document url")
        nf(s.client.patch("/documents/" + d, {"title": "hijacked"}, key=k), "B PATCH A's document")
    nf(s.client.delete("/documents/" + S["a_docs"][1], key=k), "B DELETE A's document")
    for d in S["a_docs"]:
        r = expect(s.client.get("/documents/" + d, key=S["A"]["key"]), 200)
        check(r.json.get("title") != "hijacked", "B's PATCH changed A's document")
        eq(r.json["status"], "completed", "A's document status")


@suite.test
def test_b_cannot_upload_into_a_collection(s):
    k = S["B"]["key"]
    nf(s.client.post("/documents", {"collection_id": S["a_coll"]["id"], "content": "intruder text"},
                     key=k), "B uploads into A's collection")
    r = expect(s.client.get("/collections/" + S["a_coll"]["id"], key=S["A"]["key"]), 200)
    eq(r.json["document_count"], 2, "A's document_count")


@suite.test
def test_b_retrieval_with_a_collection_404(s):
    k = S["B"]["key"]
    nf(s.client.post("/retrievals", {"query": S["a_word"], "mode": "keyword",
                                     "collection_id": S["a_coll"]["id"]}, key=k),
       "B searches A's collection")
    nf(s.client.post("/retrievals/retrieve", {"query": S["a_word"], "mode": "keyword",
                                              "collection_id": S["a_coll"]["id"]}, key=k),
       "B retrieves from A's collection")


@suite.test
def test_b_search_never_returns_a_chunks(s):
    k = S["B"]["key"]
    a_chunk_ids = set(S["a_chunks"])
    for q in (S["a_word"], S["shared_word"], "alice secret notes", words(10, seed=1)):
        res = search(s.client, k, q, top_k=100)
        eq(res["results"], [], "B's search for %r (B has no documents)" % q)
    # B gets documents of its own that share vocabulary with A's.
    cb = create_collection(s.client, k, name="bobs")
    d = upload_text(s.client, k, cb["id"], "Bob also writes about %s.\n\n%s" %
                    (S["shared_word"], words(80, seed=1)))
    wait_completed(s.client, k, d["id"])
    for q in (S["shared_word"], words(10, seed=1), S["a_word"]):
        res = search(s.client, k, q, top_k=100)
        for x in res["results"]:
            check(x["chunk_id"] not in a_chunk_ids, "B's search returned A's chunk")
            eq(x["document"]["id"], d["id"], "document of B's result")
            eq(x["collection_id"], cb["id"], "collection of B's result")
        res = search(s.client, k, q, top_k=100, metadata_filter={"lang": "en"})
        eq(res["results"], [], "B's filtered search (only A's docs have lang=en)")
    res = search(s.client, k, S["shared_word"], top_k=100)
    eq(len(res["results"]), 1, "B's results for the shared word")
    # A's view is unchanged by B's documents' presence.
    res = search(s.client, S["A"]["key"], S["shared_word"], top_k=100)
    eq(set(x["document"]["id"] for x in res["results"]), {S["a_docs"][0]},
       "A's results for the shared word")
    S["b_coll"] = cb
    S["b_doc"] = d["id"]


@suite.test
def test_b_lists_never_show_a_objects(s):
    k = S["B"]["key"]
    a_ids = set([S["a_coll"]["id"]] + S["a_docs"])
    for path in ("/collections", "/documents", "/documents?status=completed", "/auth/keys",
                 "/workspaces"):
        for item in list_all(s.client, k, path):
            check(item.get("id") not in a_ids, "%s shows A's object %s" % (path, item.get("id")))
            check(item.get("id") not in S["a_key_ids"], "%s shows A's key" % path)
            check(item.get("id") != S["a_ws"], "%s shows A's workspace" % path)
            check(item.get("user_id") in (None, S["B"]["user_id"]),
                  "%s shows an object of user %s" % (path, item.get("user_id")))
    r = s.client.get("/documents?collection_id=" + S["a_coll"]["id"], key=k)
    if r.status == 200:
        eq(r.json["data"], [], "B listing documents of A's collection")
        eq(r.json["pagination"]["total"], 0, "total for A's collection")
    else:
        expect(r, 404, "NOT_FOUND", what="B listing documents of A's collection")


@suite.test
def test_b_cannot_touch_a_keys_or_workspace(s):
    k = S["B"]["key"]
    for kid in S["a_key_ids"]:
        nf(s.client.delete("/auth/keys/" + kid, key=k), "B deletes A's key")
    expect(s.client.get("/collections", key=S["A"]["key"]), 200, what="A's key after B's attempt")
    ws = S["a_ws"]
    nf(s.client.get("/workspaces/%s/members" % ws, key=k), "B lists A's workspace members")
    nf(s.client.post("/workspaces/%s/members" % ws, {"email": S["B"]["email"], "role": "admin"},
                     key=k), "B adds itself to A's workspace")
    nf(s.client.delete("/workspaces/%s/members/%s" % (ws, S["A"]["user_id"]), key=k),
       "B removes A from A's workspace")
    nf(s.client.post("/auth/keys", {"name": "sneak", "scopes": ["read", "write"],
                                    "workspace_id": ws}, key=k), "B makes a key for A's workspace")
    r = expect(s.client.get("/workspaces/%s/members" % ws, key=S["A"]["key"]), 200)
    check(all(m.get("user_id") != S["B"]["user_id"] for m in r.json["data"]),
          "B became a member of A's workspace")


@suite.test
def test_b_cannot_use_admin_routes(s):
    k = S["B"]["key"]
    expect(s.client.get("/admin/users", key=k), 403, "FORBIDDEN", what="B GET /admin/users")
    expect(s.client.get("/admin/stats", key=k), (403, 404), ("FORBIDDEN", "NOT_FOUND"),
           what="B GET /admin/stats")
    expect(s.client.patch("/admin/users/" + S["A"]["user_id"], {"disabled": True}, key=k), 403,
           "FORBIDDEN", what="B disables A")
    expect(s.client.get("/collections", key=S["A"]["key"]), 200, what="A still enabled")
    r = s.client.post("/auth/keys", {"name": "escalate", "scopes": ["read", "write", "admin"]},
                      key=k)
    if r.status == 201:
        expect(s.client.get("/admin/users", key=r.json["api_key"]), 403, "FORBIDDEN",
               what="non-admin's self-made admin-scope key")
    else:
        expect(r, (403, 422), ("FORBIDDEN", "VALIDATION_ERROR"), what="non-admin asks for admin scope")


@suite.test
def test_same_bytes_two_users_two_documents(s):
    k = S["B"]["key"]
    r = s.client.post("/documents", {"collection_id": S["b_coll"]["id"],
                                     "content": S["a_texts"][0]}, key=k)
    expect(r, 202, what="B uploads bytes identical to A's document")
    check(r.json["id"] not in S["a_docs"], "B got A's document id for the same bytes")
    eq(r.json["collection_id"], S["b_coll"]["id"], "collection of B's copy")
    wait_completed(s.client, k, r.json["id"])
    res = search(s.client, k, S["a_word"], top_k=100)
    eq(set(x["document"]["id"] for x in res["results"]), {r.json["id"]}, "B finds only its copy")
    res = search(s.client, S["A"]["key"], S["a_word"], top_k=100)
    eq(set(x["document"]["id"] for x in res["results"]), set(S["a_docs"]), "A finds only its own")
    # Deleting B's copy does not touch A's.
    expect(s.client.delete("/documents/" + r.json["id"], key=k), 204)
    res = search(s.client, S["A"]["key"], S["a_word"], top_k=100)
    eq(set(x["document"]["id"] for x in res["results"]), set(S["a_docs"]), "A's after B's delete")


@suite.test
def test_collection_names_per_workspace(s):
    r = s.client.post("/collections", {"name": "shared-name"}, key=S["B"]["key"])
    expect(r, 201, what="B reuses A's collection name")
    eq(r.json["user_id"], S["B"]["user_id"], "owner of B's collection")
    expect(s.client.post("/collections", {"name": "shared-name"}, key=S["B"]["key"]), 409,
           "CONFLICT", what="B's duplicate name")
    expect(s.client.get("/collections/" + S["a_coll"]["id"], key=S["A"]["key"]), 200)


@suite.test
def test_b_deletes_own_collection_only(s):
    k = S["B"]["key"]
    expect(s.client.delete("/collections/" + S["b_coll"]["id"], key=k), 204)
    r = expect(s.client.get("/collections/" + S["a_coll"]["id"], key=S["A"]["key"]), 200)
    eq(r.json["document_count"], 2, "A's document_count after B deletes its collection")
    res = search(s.client, S["A"]["key"], S["shared_word"], top_k=100)
    eq(set(x["document"]["id"] for x in res["results"]), {S["a_docs"][0]}, "A's search")


@suite.test
def test_workspaces_of_one_user_are_separate(s):
    A, B = S["A"], S["B"]
    team = expect(s.client.post("/workspaces", {"name": "team"}, key=A["key"]), 201).json["id"]
    a_team = expect(s.client.post("/auth/keys", {"name": "t", "scopes": ["read", "write"],
                                                 "workspace_id": team}, key=A["key"]), 201)
    a_team = a_team.json["api_key"]
    expect(s.client.post("/workspaces/%s/members" % team, {"email": B["email"], "role": "editor"},
                         key=A["key"]), 201)
    b_team = expect(s.client.post("/auth/keys", {"name": "t", "scopes": ["read", "write"],
                                                 "workspace_id": team}, key=B["key"]), 201)
    b_team = b_team.json["api_key"]
    w = nonce()
    tc = create_collection(s.client, b_team, name="team-coll")  # an editor may write
    d = upload_text(s.client, b_team, tc["id"], "Team knowledge about %s." % w)
    wait_completed(s.client, a_team, d["id"])
    eq([x["document"]["id"] for x in search(s.client, a_team, w)["results"]], [d["id"]],
       "A's team key finds the team document")
    for who, k in (("A personal", A["key"]), ("B personal", B["key"])):
        eq(search(s.client, k, w, top_k=100)["results"], [], "%s key searching team words" % who)
        nf(s.client.get("/collections/" + tc["id"], key=k), "%s key GET team collection" % who)
        nf(s.client.get("/documents/" + d["id"], key=k), "%s key GET team document" % who)
        items = list_all(s.client, k, "/collections")
        check(all(c["id"] != tc["id"] for c in items), "%s key lists the team collection" % who)
    # And the other way round: the team key does not see A's personal objects.
    eq(search(s.client, a_team, S["a_word"], top_k=100)["results"], [],
       "team key searching A's personal words")
    nf(s.client.get("/collections/" + S["a_coll"]["id"], key=a_team), "team key GET A's collection")
    nf(s.client.post("/retrievals", {"query": w, "mode": "keyword",
                                     "collection_id": S["a_coll"]["id"]}, key=a_team),
       "team key searching A's personal collection")


@suite.test
def test_concurrent_users_never_mix(s):
    import threading
    A, B = S["A"], S["B"]
    ca = create_collection(s.client, A["key"])
    cb = create_collection(s.client, B["key"])
    common = nonce()
    errors = []
    seen = {"A": set(), "B": set()}
    owned = {"A": set(), "B": set()}

    def run(who, key, coll):
        try:
            for i in range(6):
                d = upload_text(s.client, key, coll, "%s writes %s number %d. %s" %
                                (who, common, i, words(30, seed=i)))
                owned[who].add(d["id"])
                for x in search(s.client, key, common, top_k=100)["results"]:
                    seen[who].add(x["document"]["id"])
            for dd in list(owned[who]):
                wait_completed(s.client, key, dd, timeout=60)
            for x in search(s.client, key, common, top_k=100)["results"]:
                seen[who].add(x["document"]["id"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("%s: %s" % (who, e))

    ts = [threading.Thread(target=run, args=("A", A["key"], ca["id"])),
          threading.Thread(target=run, args=("B", B["key"], cb["id"]))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    check(not errors, "; ".join(errors))
    check(not (seen["A"] & owned["B"]), "A's searches returned B's documents")
    check(not (seen["B"] & owned["A"]), "B's searches returned A's documents")
    eq(seen["A"] & owned["A"], owned["A"], "A finds all of its own documents")
    eq(seen["B"] & owned["B"], owned["B"], "B finds all of its own documents")


@suite.test
def test_disabled_user_refused(s):
    C = make_user(s.client, S["A"]["key"])
    expect(s.client.get("/collections", key=C["key"]), 200, what="C before disable")
    r = s.client.patch("/admin/users/" + C["user_id"], {"disabled": True}, key=S["A"]["key"])
    expect(r, 200, what="disable C")
    expect(s.client.get("/collections", key=C["key"]), 401, "UNAUTHORIZED", what="disabled C's key")
    expect(s.client.get("/collections", key=S["B"]["key"]), 200, what="B unaffected")


if __name__ == "__main__":
    suite.run()
