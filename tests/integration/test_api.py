"""test_api.py - the HTTP API as a client uses it, route by route.

One server (registration closed, the default) with a fresh data dir. Tests
run in order and share state through suite.state: the first test registers
the admin, later ones add users, workspaces, collections and documents.
Every assertion is something a user of the API would check against
API.md; the harness checks the error-body shape and X-Request-ID on every
answer. The last test stops the server with SIGTERM (exit 0 within 15 s).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (KEY_RE, REQID_RE, TIME_RE, UUID_RE, Suite, check, create_collection,  # noqa: E402
                     eq, expect, list_all, make_user, nonce, search, short, stops_server,
                     strip_meta, uniq, upload_multipart, upload_text, wait_completed, words)

suite = Suite("test_api")
S = suite.state


def admin_key():
    return S["admin"]["key"]


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ---------------------------------------------------------------- basics


@suite.test
def test_health_ready(s):
    r = expect(s.client.get("/health", api=False), 200, what="GET /health")
    eq(r.json.get("status"), "ok", "health status")
    check(isinstance(r.json.get("version"), str) and r.json["version"], "health version missing")
    check(is_num(r.json.get("uptime_s")) and r.json["uptime_s"] >= 0, "health uptime_s missing")
    deadline = time.time() + 10
    while True:
        r = s.client.get("/ready", api=False)
        if r.status == 200 or time.time() > deadline:
            break
        time.sleep(0.2)
    expect(r, 200, what="GET /ready")


# ---------------------------------------------------------------- auth


@suite.test
def test_register_first_user_is_admin(s):
    email = "first-admin@example.com"
    r = s.client.post("/auth/register", {"email": email, "password": "correct horse battery"})
    expect(r, 201, what="first registration")
    check(UUID_RE.match(str(r.json.get("user_id"))), "user_id not a uuid: %r" % r.json.get("user_id"))
    eq(r.json.get("email"), email, "email")
    key = r.json.get("api_key")
    check(isinstance(key, str) and KEY_RE.match(key), "api_key not eg_+40 base62: %r" % key)
    S["admin"] = {"user_id": r.json["user_id"], "email": email,
                  "password": "correct horse battery", "key": key}
    expect(s.client.get("/collections", key=key), 200, what="GET /collections with the new key")
    # The first user is the admin: an admin-only route works.
    r = s.client.post("/admin/users", {"email": "probe-%s@example.com" % nonce(),
                                       "password": "another password"}, key=key)
    expect(r, 201, what="first user can use POST /admin/users")


@suite.test
def test_second_registration_forbidden(s):
    r = s.client.post("/auth/register", {"email": "second@example.com",
                                         "password": "correct horse battery"})
    expect(r, 403, "FORBIDDEN", what="second registration with registration closed")


def login(s, email, password):
    return s.client.post("/auth/login", {"email": email, "password": password})


def session_cookie(resp):
    cookies = resp.header_all("set-cookie")
    check(cookies, "login answered without Set-Cookie")
    c = cookies[0]
    attrs = [a.strip().lower() for a in c.split(";")[1:]]
    check("httponly" in attrs, "session cookie is not HttpOnly: %r" % c)
    check("samesite=strict" in attrs, "session cookie is not SameSite=Strict: %r" % c)
    return c.split(";")[0].strip()


@suite.test
def test_login_cookie_authenticates(s):
    a = S["admin"]
    r = login(s, a["email"], a["password"])
    expect(r, 200, what="login")
    eq(r.json.get("user_id"), a["user_id"], "login user_id")
    eq(r.json.get("email"), a["email"], "login email")
    check("api_key" not in r.json, "login answer leaks an api key")
    cookie = session_cookie(r)
    S["cookie"] = cookie
    r = s.client.get("/collections", cookie=cookie)
    expect(r, 200, what="GET /collections with the session cookie")
    check("data" in r.json, "collections list lacks data")


@suite.test
def test_logout_ends_session(s):
    cookie = S["cookie"]
    r = s.client.post("/auth/logout", cookie=cookie)
    expect(r, 204, what="logout")
    eq(r.body, b"", "logout body")
    r = s.client.get("/collections", cookie=cookie)
    expect(r, 401, "UNAUTHORIZED", what="GET /collections with the logged-out cookie")


@suite.test
def test_login_failures_identical(s):
    a = S["admin"]

    def timed(email, pw):
        t0 = time.time()
        r = login(s, email, pw)
        return r, time.time() - t0

    bad_pw, t_pw = [], []
    bad_em, t_em = [], []
    for _ in range(3):
        r, t = timed(a["email"], "wrong password!")
        bad_pw.append(r)
        t_pw.append(t)
        r, t = timed("nobody-%s@example.com" % nonce(), "wrong password!")
        bad_em.append(r)
        t_em.append(t)
    for r in bad_pw + bad_em:
        expect(r, 401, "UNAUTHORIZED", what="failed login")
        check(not r.header_all("set-cookie"), "failed login sets a cookie")
    eq(strip_meta(bad_em[0].json), strip_meta(bad_pw[0].json),
       "unknown-email body vs wrong-password body")
    m_pw = sorted(t_pw)[1]
    m_em = sorted(t_em)[1]
    if m_pw > 0.02:
        check(m_em > 0.2 * m_pw and m_em < 5 * m_pw,
              "login timing differs: wrong password %.1f ms, unknown email %.1f ms"
              % (m_pw * 1000, m_em * 1000))


@suite.test
def test_keys_list_hides_key_material(s):
    key = admin_key()
    r = expect(s.client.get("/auth/keys", key=key), 200, what="GET /auth/keys")
    check(isinstance(r.json.get("data"), list) and r.json["data"], "keys list empty")
    p = r.json.get("pagination")
    check(isinstance(p, dict) and all(k in p for k in ("total", "limit", "offset", "has_more")),
          "keys list lacks pagination: %r" % p)
    check(key not in r.body.decode("utf-8", "replace"), "key list contains the key itself")
    check(key[3:] not in r.body.decode("utf-8", "replace"), "key list contains the key body")
    found = None
    for k in r.json["data"]:
        for f in ("id", "name", "prefix", "scopes", "created_at", "last_used_at"):
            check(f in k, "key entry lacks %r: %r" % (f, k))
        check("api_key" not in k and "key" not in k and "hash" not in k,
              "key entry has key material: %r" % k)
        check(isinstance(k["prefix"], str) and 3 <= len(k["prefix"]) < 20,
              "prefix is not a short prefix: %r" % k["prefix"])
        if key.startswith(k["prefix"]):
            found = k
    check(found is not None, "no key entry's prefix is a prefix of the admin key")
    for sc in ("read", "write", "admin"):
        check(sc in found["scopes"], "admin's registration key lacks scope %r: %r" %
              (sc, found["scopes"]))
    check(TIME_RE.match(found["created_at"] or ""), "created_at not RFC 3339: %r" % found["created_at"])


def new_key(s, key, scopes, name=None, workspace_id=None, want=201):
    body = {"name": name or uniq("key"), "scopes": scopes}
    if workspace_id is not None:
        body["workspace_id"] = workspace_id
    r = s.client.post("/auth/keys", body, key=key)
    expect(r, want, what="POST /auth/keys %r" % scopes)
    return r.json


@suite.test
def test_key_read_scope(s):
    k = new_key(s, admin_key(), ["read"], name="read-only")
    for f in ("id", "name", "prefix", "scopes", "workspace_id", "created_at", "api_key"):
        check(f in k, "POST /auth/keys answer lacks %r" % f)
    check(KEY_RE.match(k["api_key"]), "new key malformed: %r" % k["api_key"])
    check(k["api_key"].startswith(k["prefix"]), "prefix %r does not start the key" % k["prefix"])
    eq(sorted(k["scopes"]), ["read"], "scopes")
    eq(k["name"], "read-only", "name")
    ro = k["api_key"]
    expect(s.client.get("/collections", key=ro), 200, what="read key GET /collections")
    expect(s.client.post("/collections", {"name": uniq("ro")}, key=ro), 403, "FORBIDDEN",
           what="read key POST /collections")
    r = expect(s.client.get("/auth/keys", key=admin_key()), 200)
    check(ro not in r.body.decode(), "key list shows a created key")


@suite.test
def test_key_last_used_at(s):
    k = new_key(s, admin_key(), ["read"])
    r = expect(s.client.get("/auth/keys", key=admin_key()), 200)
    mine = [x for x in r.json["data"] if x["id"] == k["id"]]
    check(mine, "new key not listed")
    eq(mine[0]["last_used_at"], None, "last_used_at of an unused key")
    expect(s.client.get("/collections", key=k["api_key"]), 200)
    deadline = time.time() + 5
    while True:
        r = expect(s.client.get("/auth/keys", key=admin_key()), 200)
        mine = [x for x in r.json["data"] if x["id"] == k["id"]]
        if mine[0]["last_used_at"] or time.time() > deadline:
            break
        time.sleep(0.2)
    check(mine[0]["last_used_at"] and TIME_RE.match(mine[0]["last_used_at"]),
          "last_used_at after use: %r" % mine[0]["last_used_at"])


@suite.test
def test_key_write_only_cannot_read(s):
    wo = new_key(s, admin_key(), ["write"])["api_key"]
    expect(s.client.get("/collections", key=wo), 403, "FORBIDDEN", what="write key GET /collections")
    r = expect(s.client.post("/collections", {"name": uniq("wo")}, key=wo), 201,
               what="write key POST /collections")
    expect(s.client.post("/retrievals", {"query": "x", "mode": "keyword"}, key=wo), 403,
           "FORBIDDEN", what="write key retrieval")
    expect(s.client.delete("/collections/" + r.json["id"], key=admin_key()), 204)


@suite.test
def test_key_delete_refused_afterwards(s):
    k = new_key(s, admin_key(), ["read"])
    expect(s.client.get("/collections", key=k["api_key"]), 200, what="before delete")
    r = s.client.delete("/auth/keys/" + k["id"], key=admin_key())
    expect(r, 204, what="DELETE /auth/keys/{id}")
    eq(r.body, b"", "delete body")
    expect(s.client.get("/collections", key=k["api_key"]), 401, "UNAUTHORIZED",
           what="deleted key")
    r = expect(s.client.get("/auth/keys", key=admin_key()), 200)
    check(all(x["id"] != k["id"] for x in r.json["data"]), "deleted key still listed")


@suite.test
def test_bearer_and_x_api_key(s):
    expect(s.client.get("/collections", key=admin_key()), 200, what="Bearer")
    expect(s.client.get("/collections", key=admin_key(), x_api_key=True), 200, what="X-API-Key")
    expect(s.client.get("/collections"), 401, "UNAUTHORIZED", what="no credential")


@suite.test
def test_admin_creates_users(s):
    email = "bob-%s@example.com" % nonce()
    r = s.client.post("/admin/users", {"email": email, "password": "bob's password"},
                      key=admin_key())
    expect(r, 201, what="POST /admin/users")
    check(UUID_RE.match(str(r.json.get("user_id"))), "user_id not a uuid")
    eq(r.json.get("email"), email, "email")
    check(KEY_RE.match(str(r.json.get("api_key"))), "api_key malformed")
    bob = {"user_id": r.json["user_id"], "email": email, "key": r.json["api_key"]}
    S["bob"] = bob
    r = expect(s.client.get("/collections", key=bob["key"]), 200, what="new user's key")
    eq(r.json["data"], [], "new user's collections")
    eq(r.json["pagination"]["total"], 0, "new user's collection total")
    r = s.client.post("/admin/users", {"email": "x%s@example.com" % nonce(),
                                       "password": "whatever12"}, key=bob["key"])
    expect(r, 403, "FORBIDDEN", what="non-admin POST /admin/users")
    S["carol"] = make_user(s.client, admin_key())
    # Duplicate email: 409.
    r = s.client.post("/admin/users", {"email": email, "password": "bob's password"},
                      key=admin_key())
    expect(r, 409, "CONFLICT", what="duplicate email")


@suite.test
def test_admin_users_list(s):
    r = s.client.get("/admin/users", key=admin_key())
    expect(r, 200, what="GET /admin/users")
    check(isinstance(r.json.get("data"), list), "users list lacks data")
    check("pagination" in r.json, "users list lacks pagination")
    emails = [u.get("email") for u in r.json["data"]]
    for who in (S["admin"], S["bob"], S["carol"]):
        check(who["email"] in emails, "%s missing from GET /admin/users" % who["email"])
    body = r.body.decode("utf-8", "replace").lower()
    check("password" not in body and "hash" not in body, "user list shows password material")
    expect(s.client.get("/admin/users", key=S["bob"]["key"]), 403, "FORBIDDEN",
           what="non-admin GET /admin/users")


@suite.test
def test_admin_stats(s):
    r = s.client.get("/admin/stats", key=admin_key())
    expect(r, 200, what="GET /admin/stats")
    check(isinstance(r.json, dict) and r.json, "stats is not a JSON object")
    expect(s.client.get("/admin/stats", key=S["bob"]["key"]), 403, "FORBIDDEN",
           what="non-admin GET /admin/stats")


@suite.test
def test_admin_disable_user(s):
    u = make_user(s.client, admin_key())
    expect(s.client.get("/collections", key=u["key"]), 200, what="before disable")
    r = s.client.patch("/admin/users/" + u["user_id"], {"disabled": True}, key=admin_key())
    expect(r, 200, what="PATCH /admin/users/{id} disabled")
    eq(r.json.get("disabled"), True, "disabled in the answer")
    expect(s.client.get("/collections", key=u["key"]), 401, "UNAUTHORIZED", what="disabled user's key")
    expect(s.client.post("/auth/login", {"email": u["email"], "password": u["password"]}), 401,
           "UNAUTHORIZED", what="disabled user's login")
    r = s.client.patch("/admin/users/" + u["user_id"], {"disabled": False}, key=admin_key())
    expect(r, 200, what="re-enable")
    expect(s.client.get("/collections", key=u["key"]), 200, what="re-enabled user's key")
    expect(s.client.patch("/admin/users/" + u["user_id"], {"disabled": True}, key=S["bob"]["key"]),
           403, "FORBIDDEN", what="non-admin disables a user")


# ---------------------------------------------------------------- workspaces


@suite.test
def test_workspaces_personal(s):
    r = expect(s.client.get("/workspaces", key=S["bob"]["key"]), 200, what="GET /workspaces")
    data = r.json.get("data")
    check(isinstance(data, list) and len(data) == 1, "want exactly the personal workspace: %r" % data)
    check(UUID_RE.match(str(data[0].get("id"))), "workspace id not a uuid")
    eq(data[0].get("role"), "admin", "role in the personal workspace")
    check("pagination" in r.json, "workspaces list lacks pagination")


@suite.test
def test_workspace_create(s):
    name = uniq("team")
    r = expect(s.client.post("/workspaces", {"name": name}, key=admin_key()), 201,
               what="POST /workspaces")
    check(UUID_RE.match(str(r.json.get("id"))), "workspace id not a uuid")
    eq(r.json.get("name"), name, "workspace name")
    S["team"] = r.json["id"]
    r = expect(s.client.get("/workspaces", key=admin_key()), 200)
    mine = [w for w in r.json["data"] if w.get("id") == S["team"]]
    check(mine, "new workspace not in GET /workspaces")
    eq(mine[0].get("role"), "admin", "creator's role")


@suite.test
def test_workspace_reader_member(s):
    team = S["team"]
    bob = S["bob"]
    team_key = new_key(s, admin_key(), ["read", "write"], workspace_id=team)
    eq(team_key.get("workspace_id"), team, "key workspace_id")
    S["team_key"] = team_key["api_key"]
    tc = create_collection(s.client, team_key["api_key"], name=uniq("team-coll"))
    r = s.client.post("/workspaces/%s/members" % team, {"email": bob["email"], "role": "reader"},
                      key=admin_key())
    expect(r, 201, what="add member")
    r = expect(s.client.get("/workspaces/%s/members" % team, key=admin_key()), 200,
               what="GET members")
    ms = [m for m in r.json["data"] if m.get("user_id") == bob["user_id"] or
          m.get("email") == bob["email"]]
    check(ms, "bob not in the member list: %r" % r.json["data"])
    eq(ms[0].get("role"), "reader", "bob's role")
    r = expect(s.client.get("/workspaces", key=bob["key"]), 200)
    ws = [w for w in r.json["data"] if w.get("id") == team]
    check(ws, "shared workspace not in bob's GET /workspaces")
    eq(ws[0].get("role"), "reader", "bob's role in his workspace list")
    bk = new_key(s, bob["key"], ["read", "write"], workspace_id=team)
    eq(bk.get("workspace_id"), team, "bob's key workspace")
    S["bob_team_key"] = bk["api_key"]
    r = expect(s.client.get("/collections", key=bk["api_key"]), 200, what="reader GET /collections")
    check(any(c["id"] == tc["id"] for c in r.json["data"]), "reader does not see team collection")
    expect(s.client.post("/collections", {"name": uniq("nope")}, key=bk["api_key"]), 403,
           "FORBIDDEN", what="reader POST /collections")
    expect(s.client.post("/documents", {"collection_id": tc["id"], "content": "hello there"},
                         key=bk["api_key"]), 403, "FORBIDDEN", what="reader POST /documents")
    expect(s.client.delete("/collections/" + tc["id"], key=bk["api_key"]), 403, "FORBIDDEN",
           what="reader DELETE collection")
    r = s.client.post("/workspaces/%s/members" % team,
                      {"email": S["carol"]["email"], "role": "editor"}, key=bob["key"])
    expect(r, (403, 404), what="reader adds a member")


@suite.test
def test_key_for_foreign_workspace_404(s):
    carol = S["carol"]
    r = s.client.post("/auth/keys", {"name": "x", "scopes": ["read"], "workspace_id": S["team"]},
                      key=carol["key"])
    expect(r, 404, "NOT_FOUND", what="key for a workspace carol is not in")
    r = s.client.post("/auth/keys", {"name": "x", "scopes": ["read"],
                                     "workspace_id": "00000000-0000-4000-8000-000000000000"},
                      key=carol["key"])
    expect(r, 404, "NOT_FOUND", what="key for a nonexistent workspace")


@suite.test
def test_workspace_remove_member(s):
    team = S["team"]
    bob = S["bob"]
    r = s.client.delete("/workspaces/%s/members/%s" % (team, bob["user_id"]), key=admin_key())
    expect(r, 204, what="remove member")
    r = expect(s.client.get("/workspaces/%s/members" % team, key=admin_key()), 200)
    check(all(m.get("user_id") != bob["user_id"] for m in r.json["data"]), "bob still a member")
    r = s.client.get("/collections", key=S["bob_team_key"])
    expect(r, (401, 403, 404), what="removed member's workspace key")
    r = expect(s.client.get("/workspaces", key=bob["key"]), 200)
    check(all(w.get("id") != team for w in r.json["data"]), "bob still lists the team")


# ---------------------------------------------------------------- collections


@suite.test
def test_collection_create_defaults(s):
    name = uniq("coll")
    r = s.client.post("/collections", {"name": name, "description": "first",
                                       "metadata": {"owner": "qa"}}, key=admin_key())
    expect(r, 201, what="POST /collections")
    c = r.json
    for f in ("id", "user_id", "name", "description", "metadata", "config", "document_count",
              "chunk_count", "created_at", "updated_at"):
        check(f in c, "collection lacks %r" % f)
    check(UUID_RE.match(c["id"]), "id not uuid")
    eq(c["user_id"], S["admin"]["user_id"], "user_id")
    eq(c["name"], name, "name")
    eq(c["description"], "first", "description")
    eq(c["metadata"], {"owner": "qa"}, "metadata")
    eq(c["config"].get("chunk_size"), 512, "default chunk_size")
    eq(c["config"].get("chunk_overlap"), 128, "default chunk_overlap")
    eq(c["config"].get("graph"), True, "default graph")
    eq(c["document_count"], 0, "document_count")
    eq(c["chunk_count"], 0, "chunk_count")
    check(TIME_RE.match(c["created_at"]), "created_at not RFC 3339: %r" % c["created_at"])
    S["coll"] = c
    r = expect(s.client.post("/collections", {"name": uniq("cfg"),
                                              "config": {"chunk_size": 200, "chunk_overlap": 20,
                                                         "graph": False}}, key=admin_key()), 201)
    eq(r.json["config"].get("chunk_size"), 200, "given chunk_size")
    eq(r.json["config"].get("chunk_overlap"), 20, "given chunk_overlap")
    eq(r.json["config"].get("graph"), False, "given graph")
    expect(s.client.delete("/collections/" + r.json["id"], key=admin_key()), 204)


@suite.test
def test_collection_duplicate_name_409(s):
    r = s.client.post("/collections", {"name": S["coll"]["name"]}, key=admin_key())
    expect(r, 409, "CONFLICT", what="duplicate collection name")


@suite.test
def test_collection_list_pagination(s):
    u = make_user(s.client, admin_key())
    k = u["key"]
    ids = set(create_collection(s.client, k)["id"] for _ in range(5))
    r = expect(s.client.get("/collections", key=k), 200)
    p = r.json["pagination"]
    eq(p.get("total"), 5, "total")
    eq(p.get("limit"), 20, "default limit")
    eq(p.get("offset"), 0, "default offset")
    eq(p.get("has_more"), False, "has_more")
    eq(set(c["id"] for c in r.json["data"]), ids, "listed ids")
    r1 = expect(s.client.get("/collections?limit=2", key=k), 200)
    eq(len(r1.json["data"]), 2, "page 1 size")
    eq(r1.json["pagination"], {"total": 5, "limit": 2, "offset": 0, "has_more": True}, "page 1")
    r2 = expect(s.client.get("/collections?limit=2&offset=2", key=k), 200)
    eq(len(r2.json["data"]), 2, "page 2 size")
    eq(r2.json["pagination"]["has_more"], True, "page 2 has_more")
    r3 = expect(s.client.get("/collections?limit=2&offset=4", key=k), 200)
    eq(len(r3.json["data"]), 1, "page 3 size")
    eq(r3.json["pagination"]["has_more"], False, "page 3 has_more")
    seen = [c["id"] for rr in (r1, r2, r3) for c in rr.json["data"]]
    eq(len(set(seen)), 5, "distinct ids across pages")
    eq(set(seen), ids, "ids across pages")
    r4 = expect(s.client.get("/collections?offset=10", key=k), 200)
    eq(r4.json["data"], [], "past the end")
    eq(r4.json["pagination"]["total"], 5, "total past the end")


@suite.test
def test_collection_get(s):
    c = S["coll"]
    r = expect(s.client.get("/collections/" + c["id"], key=admin_key()), 200)
    for f in ("id", "name", "description", "metadata", "config", "created_at"):
        eq(r.json.get(f), c[f], "GET collection %s" % f)


@suite.test
def test_collection_patch(s):
    c = S["coll"]
    new_name = uniq("renamed")
    r = s.client.patch("/collections/" + c["id"], {"name": new_name, "description": "changed",
                                                    "metadata": {"owner": "ops", "n": 2}},
                       key=admin_key())
    expect(r, 200, what="PATCH collection")
    eq(r.json.get("name"), new_name, "patched name")
    eq(r.json.get("description"), "changed", "patched description")
    eq(r.json.get("metadata"), {"owner": "ops", "n": 2}, "patched metadata")
    r = expect(s.client.get("/collections/" + c["id"], key=admin_key()), 200)
    eq(r.json.get("name"), new_name, "name after PATCH")
    eq(r.json.get("description"), "changed", "description after PATCH")
    check(r.json["updated_at"] >= r.json["created_at"], "updated_at before created_at")
    # Only the description: the rest stays.
    r = expect(s.client.patch("/collections/" + c["id"], {"description": "again"},
                              key=admin_key()), 200)
    eq(r.json.get("name"), new_name, "name after partial PATCH")
    eq(r.json.get("metadata"), {"owner": "ops", "n": 2}, "metadata after partial PATCH")
    # config is fixed at creation.
    r = s.client.patch("/collections/" + c["id"], {"config": {"chunk_size": 100}}, key=admin_key())
    expect(r, (200, 422), what="PATCH config")
    r = expect(s.client.get("/collections/" + c["id"], key=admin_key()), 200)
    eq(r.json["config"].get("chunk_size"), 512, "chunk_size after PATCH config")
    S["coll"] = r.json


@suite.test
def test_collection_delete(s):
    c = create_collection(s.client, admin_key())
    r = s.client.delete("/collections/" + c["id"], key=admin_key())
    expect(r, 204, what="DELETE collection")
    eq(r.body, b"", "204 body")
    expect(s.client.get("/collections/" + c["id"], key=admin_key()), 404, "NOT_FOUND",
           what="GET deleted collection")
    expect(s.client.delete("/collections/" + c["id"], key=admin_key()), 404, "NOT_FOUND",
           what="DELETE deleted collection")
    r = expect(s.client.get("/collections", key=admin_key()), 200)
    check(all(x["id"] != c["id"] for x in r.json["data"]), "deleted collection still listed")


# ---------------------------------------------------------------- documents


@suite.test
def test_document_json_upload(s):
    coll = S["coll"]["id"]
    w = nonce()
    content = "Engram keeps notes about %s and other rare birds.\n\n%s" % (w, words(60))
    d = upload_text(s.client, admin_key(), coll, content, title="Birds",
                    metadata={"topic": "birds"})
    for f in ("id", "collection_id", "user_id", "title", "filename", "content_type", "size_bytes",
              "content_hash", "status", "metadata", "processing_info", "created_at", "updated_at"):
        check(f in d, "document lacks %r" % f)
    eq(d["status"], "pending", "status on 202")
    eq(d["collection_id"], coll, "collection_id")
    eq(d["title"], "Birds", "title")
    eq(d["metadata"], {"topic": "birds"}, "metadata")
    eq(d["size_bytes"], len(content.encode()), "size_bytes")
    check(UUID_RE.match(d["id"]), "id not uuid")
    st = wait_completed(s.client, admin_key(), d["id"])
    for f in ("document_id", "status", "chunk_count", "total_tokens", "error_message",
              "processing_info", "created_at", "processed_at"):
        check(f in st, "status answer lacks %r" % f)
    eq(st["document_id"], d["id"], "status document_id")
    check(st["chunk_count"] > 0, "chunk_count %r" % st["chunk_count"])
    check(st["total_tokens"] > 0, "total_tokens %r" % st["total_tokens"])
    check(st["processed_at"] and TIME_RE.match(st["processed_at"]), "processed_at %r" % st["processed_at"])
    S["doc"] = d
    S["doc_word"] = w
    S["doc_content"] = content


@suite.test
def test_document_get(s):
    d = S["doc"]
    r = expect(s.client.get("/documents/" + d["id"], key=admin_key()), 200, what="GET document")
    eq(r.json["status"], "completed", "status")
    eq(r.json["id"], d["id"], "id")
    eq(r.json["title"], "Birds", "title")
    check(r.json["processing_info"]["chunk_count"] > 0, "processing_info.chunk_count")
    check(r.json["processing_info"]["total_tokens"] > 0, "processing_info.total_tokens")
    check(isinstance(r.json["content_hash"], str) and r.json["content_hash"], "content_hash")


@suite.test
def test_document_list_filters(s):
    d = S["doc"]
    coll = S["coll"]["id"]
    other = create_collection(s.client, admin_key())
    S["coll2"] = other
    r = expect(s.client.get("/documents?collection_id=" + coll, key=admin_key()), 200)
    check(any(x["id"] == d["id"] for x in r.json["data"]), "doc missing from its collection list")
    for f in ("total", "limit", "offset", "has_more"):
        check(f in r.json["pagination"], "pagination lacks %s" % f)
    r = expect(s.client.get("/documents?collection_id=%s&status=completed" % coll,
                            key=admin_key()), 200)
    check(any(x["id"] == d["id"] for x in r.json["data"]), "doc missing with status=completed")
    check(all(x["status"] == "completed" for x in r.json["data"]), "status filter leaks")
    r = expect(s.client.get("/documents?collection_id=%s&status=pending" % coll,
                            key=admin_key()), 200)
    check(all(x["id"] != d["id"] for x in r.json["data"]), "completed doc listed as pending")
    r = expect(s.client.get("/documents?collection_id=" + other["id"], key=admin_key()), 200)
    eq(r.json["data"], [], "documents of an empty collection")
    r = expect(s.client.get("/documents", key=admin_key()), 200)
    check(any(x["id"] == d["id"] for x in r.json["data"]), "doc missing from the unfiltered list")


@suite.test
def test_document_patch(s):
    d = S["doc"]
    r = s.client.patch("/documents/" + d["id"], {"title": "Rare birds",
                                                  "metadata": {"topic": "birds", "v": 2}},
                       key=admin_key())
    expect(r, 200, what="PATCH document")
    eq(r.json.get("title"), "Rare birds", "patched title")
    eq(r.json.get("metadata"), {"topic": "birds", "v": 2}, "patched metadata")
    r = expect(s.client.get("/documents/" + d["id"], key=admin_key()), 200)
    eq(r.json.get("title"), "Rare birds", "title after PATCH")
    eq(r.json.get("metadata"), {"topic": "birds", "v": 2}, "metadata after PATCH")
    eq(r.json.get("status"), "completed", "status after PATCH")


@suite.test
def test_document_chunks_in_order(s):
    c = create_collection(s.client, admin_key(), config={"chunk_size": 64, "chunk_overlap": 16})
    S["small_coll"] = c
    text = "\n\n".join("Paragraph %d. %s." % (i, words(40, seed=i + 7)) for i in range(15))
    d = upload_text(s.client, admin_key(), c["id"], text, title="long")
    st = wait_completed(s.client, admin_key(), d["id"])
    check(st["chunk_count"] >= 4, "want several chunks of 64 tokens, got %r" % st["chunk_count"])
    chunks = list_all(s.client, admin_key(), "/documents/%s/chunks" % d["id"])
    eq(len(chunks), st["chunk_count"], "listed chunks vs chunk_count")
    for i, ch in enumerate(chunks):
        for f in ("id", "document_id", "chunk_index", "content", "token_count", "metadata"):
            check(f in ch, "chunk lacks %r" % f)
        eq(ch["chunk_index"], i, "chunk_index of chunk %d" % i)
        eq(ch["document_id"], d["id"], "chunk document_id")
        check(ch["content"].strip(), "empty chunk %d" % i)
        check(isinstance(ch["token_count"], int) and 0 < ch["token_count"] <= 64,
              "token_count %r not in 1..64" % ch["token_count"])
    check("Paragraph 0." in chunks[0]["content"], "first chunk does not start the text")
    check("Paragraph 14." in chunks[-1]["content"], "last chunk does not end the text")
    r = expect(s.client.get("/documents/%s/chunks?limit=2&offset=1" % d["id"], key=admin_key()), 200)
    eq([x["chunk_index"] for x in r.json["data"]], [1, 2], "chunk page limit=2 offset=1")
    eq(r.json["pagination"]["total"], len(chunks), "chunk total")
    S["long_doc"] = d


@suite.test
def test_document_same_bytes_200(s):
    d = S["doc"]
    r = s.client.post("/documents", {"collection_id": S["coll"]["id"],
                                     "content": S["doc_content"]}, key=admin_key())
    expect(r, 200, what="same bytes again")
    eq(r.json.get("id"), d["id"], "id of the duplicate upload")
    r = expect(s.client.get("/documents?collection_id=" + S["coll"]["id"], key=admin_key()), 200)
    eq(sum(1 for x in r.json["data"] if x["id"] == d["id"]), 1, "listed once")


@suite.test
def test_document_multipart_markdown(s):
    coll = S["coll"]["id"]
    w = nonce()
    md = ("# Field notes\n\nThe **%s** is a small heron.\n\n- wades\n- fishes\n\n"
          "## More\n\n%s\n" % (w, words(30, seed=3))).encode()
    r = upload_multipart(s.client, admin_key(), coll, "notes.md", md, ctype="text/markdown",
                         title="Heron notes", metadata={"kind": "md"})
    expect(r, 202, what="multipart upload")
    d = r.json
    eq(d.get("filename"), "notes.md", "filename")
    eq(d.get("title"), "Heron notes", "title")
    eq(d.get("metadata"), {"kind": "md"}, "metadata")
    eq(d.get("status"), "pending", "status")
    eq(d.get("size_bytes"), len(md), "size_bytes")
    wait_completed(s.client, admin_key(), d["id"])
    res = search(s.client, admin_key(), w, collection_id=coll)
    check(res["results"], "markdown document not found by its word")
    eq(res["results"][0]["document"]["id"], d["id"], "found document")
    eq(res["results"][0]["document"]["filename"], "notes.md", "found filename")
    S["md_doc"] = d


@suite.test
def test_document_multipart_field_order_and_type(s):
    coll = S["coll"]["id"]
    w = nonce()
    # The file part first, then the fields; a generic content type: the
    # type is told by content, not by the declared type.
    import uuid as _uuid
    boundary = "b" + _uuid.uuid4().hex
    parts = [
        b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; name=\"file\"; "
        b"filename=\"upload.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + ("# Title\n\nPlain words about %s.\n" % w).encode() + b"\r\n",
        b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
        b"Order test\r\n",
        b"--" + boundary.encode() + b"\r\nContent-Disposition: form-data; name=\"collection_id\""
        b"\r\n\r\n" + coll.encode() + b"\r\n",
        b"--" + boundary.encode() + b"--\r\n",
    ]
    r = s.client.req("POST", "/documents", raw_body=b"preamble is ignored\r\n" + b"".join(parts),
                     content_type='multipart/form-data; boundary="%s"' % boundary, key=admin_key())
    expect(r, 202, what="multipart with the file first, quoted boundary and a preamble")
    eq(r.json.get("title"), "Order test", "title")
    eq(r.json.get("filename"), "upload.bin", "filename")
    wait_completed(s.client, admin_key(), r.json["id"])
    res = search(s.client, admin_key(), w, collection_id=coll)
    eq([x["document"]["id"] for x in res["results"]], [r.json["id"]], "found")


@suite.test
def test_document_json_unicode_escapes(s):
    coll = S["coll"]["id"]
    w = nonce()
    raw = ('{"collection_id":"%s","title":"\\u00e9t\\u00e9 \\ud83d\\ude00",'
           '"content":"caf\\u00e9 %s \\ud83d\\ude00 \\"quoted\\" tab\\there"}' % (coll, w)).encode()
    r = s.client.req("POST", "/documents", raw_body=raw, content_type="application/json",
                     key=admin_key())
    expect(r, 202, what="JSON with \\u escapes and a surrogate pair")
    eq(r.json.get("title"), "\u00e9t\u00e9 \U0001F600", "title decoded")
    wait_completed(s.client, admin_key(), r.json["id"])
    chunks = expect(s.client.get("/documents/%s/chunks" % r.json["id"], key=admin_key()), 200)
    text = "".join(c["content"] for c in chunks.json["data"])
    for piece in ("caf\u00e9", "\U0001F600", '"quoted"', "tab\there"):
        check(piece in text, "chunk text lacks %r: %r" % (piece, text))


@suite.test
def test_document_filename_not_a_path(s):
    coll = S["coll"]["id"]
    base = os.path.basename(s.server.data_dir.rstrip("/"))
    fname = "../../%s-escape.txt" % base
    r = upload_multipart(s.client, admin_key(), coll, fname, b"escape attempt " + nonce().encode())
    expect(r, 202, what="upload with ../ in the file name")
    wait_completed(s.client, admin_key(), r.json["id"])
    parent = os.path.dirname(s.server.data_dir.rstrip("/"))
    for d in (parent, os.path.dirname(parent)):
        check(not os.path.exists(os.path.join(d, "%s-escape.txt" % base)),
              "upload file name used as a path: %s exists" % d)


@suite.test
def test_document_large_json_content(s):
    # JSON content counts against the upload limit, not the 1 MiB JSON limit.
    coll = create_collection(s.client, admin_key())
    text = ("%s\n" % words(200, seed=11)) * 900
    check(len(text) > 1100000, "test text too small")
    r = s.client.post("/documents", {"collection_id": coll["id"], "content": text,
                                     "title": "big"}, key=admin_key())
    expect(r, 202, what="1.1 MB JSON content upload")
    wait_completed(s.client, admin_key(), r.json["id"], timeout=90)


@suite.test
def test_document_same_bytes_other_collection(s):
    other = create_collection(s.client, admin_key())
    r = s.client.post("/documents", {"collection_id": other["id"], "content": S["doc_content"]},
                      key=admin_key())
    expect(r, 202, what="same bytes into another collection")
    check(r.json["id"] != S["doc"]["id"], "another collection got the first document's id")
    eq(r.json["collection_id"], other["id"], "collection_id")
    wait_completed(s.client, admin_key(), r.json["id"])
    expect(s.client.delete("/collections/" + other["id"], key=admin_key()), 204)


@suite.test
def test_document_list_pagination(s):
    c = create_collection(s.client, admin_key())
    ids = set()
    for i in range(5):
        ids.add(upload_text(s.client, admin_key(), c["id"], "page doc %d %s" % (i, nonce()))["id"])
    path = "/documents?collection_id=" + c["id"]
    r1 = expect(s.client.get(path + "&limit=2", key=admin_key()), 200)
    eq(r1.json["pagination"], {"total": 5, "limit": 2, "offset": 0, "has_more": True}, "page 1")
    r3 = expect(s.client.get(path + "&limit=2&offset=4", key=admin_key()), 200)
    eq(len(r3.json["data"]), 1, "last page size")
    eq(r3.json["pagination"]["has_more"], False, "last page has_more")
    got = set(d["id"] for d in list_all(s.client, admin_key(), path, page=2))
    eq(got, ids, "ids across pages")
    for i in ids:
        wait_completed(s.client, admin_key(), i)


@suite.test
def test_document_patch_empty_body(s):
    d = S["doc"]
    before = expect(s.client.get("/documents/" + d["id"], key=admin_key()), 200).json
    r = expect(s.client.patch("/documents/" + d["id"], {}, key=admin_key()), 200,
               what="PATCH with {}")
    eq(r.json.get("title"), before["title"], "title after empty PATCH")
    eq(r.json.get("metadata"), before["metadata"], "metadata after empty PATCH")


@suite.test
def test_document_delete_while_processing(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    text = ("Short-lived %s.\n\n" % w) + "\n\n".join(words(150, seed=300 + i) for i in range(200))
    d = upload_text(s.client, admin_key(), c["id"], text)
    r = s.client.delete("/documents/" + d["id"], key=admin_key())
    expect(r, 204, what="DELETE a document still being processed")
    expect(s.client.get("/documents/" + d["id"], key=admin_key()), 404, "NOT_FOUND")
    # Give a worker that had the job time to finish (or abandon) it.
    deadline = time.time() + 5
    while time.time() < deadline:
        eq(search(s.client, admin_key(), w)["results"], [], "search after deleting a pending doc")
        expect(s.client.get("/documents/" + d["id"], key=admin_key()), 404, "NOT_FOUND",
               what="deleted pending doc came back")
        time.sleep(0.5)
    r = expect(s.client.get("/collections/" + c["id"], key=admin_key()), 200)
    eq((r.json["document_count"], r.json["chunk_count"]), (0, 0), "collection counts")
    eq(list_all(s.client, admin_key(), "/documents?collection_id=" + c["id"]), [], "document list")


@suite.test
def test_collection_delete_while_processing(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    ids = []
    for i in range(3):
        text = ("Doomed %s %d.\n\n" % (w, i)) + "\n\n".join(words(150, seed=700 + i * 50 + j)
                                                          for j in range(100))
        ids.append(upload_text(s.client, admin_key(), c["id"], text)["id"])
    expect(s.client.delete("/collections/" + c["id"], key=admin_key()), 204,
           what="DELETE a collection with documents in processing")
    deadline = time.time() + 5
    while time.time() < deadline:
        eq(search(s.client, admin_key(), w)["results"], [], "search after collection delete")
        for i in ids:
            expect(s.client.get("/documents/" + i, key=admin_key()), 404, "NOT_FOUND")
        time.sleep(0.5)
    expect(s.client.get("/collections/" + c["id"], key=admin_key()), 404, "NOT_FOUND")


@suite.test
def test_document_delete(s):
    coll = S["coll"]["id"]
    w = nonce()
    d = upload_text(s.client, admin_key(), coll, "Temporary note mentioning %s twice: %s." % (w, w))
    wait_completed(s.client, admin_key(), d["id"])
    check(search(s.client, admin_key(), w, collection_id=coll)["results"], "not found before delete")
    r = s.client.delete("/documents/" + d["id"], key=admin_key())
    expect(r, 204, what="DELETE document")
    eq(r.body, b"", "204 body")
    expect(s.client.get("/documents/" + d["id"], key=admin_key()), 404, "NOT_FOUND",
           what="GET deleted document")
    expect(s.client.get("/documents/%s/status" % d["id"], key=admin_key()), 404, "NOT_FOUND",
           what="status of deleted document")
    expect(s.client.get("/documents/%s/chunks" % d["id"], key=admin_key()), 404, "NOT_FOUND",
           what="chunks of deleted document")
    res = search(s.client, admin_key(), w, collection_id=coll)
    eq(res["results"], [], "search results after delete")
    res = search(s.client, admin_key(), w)
    eq(res["results"], [], "workspace-wide search results after delete")
    # Uploading the same bytes again is a new document, not a 200.
    r = s.client.post("/documents", {"collection_id": coll,
                                     "content": "Temporary note mentioning %s twice: %s." % (w, w)},
                      key=admin_key())
    expect(r, 202, what="re-upload after delete")
    check(r.json["id"] != d["id"], "re-upload got the deleted id")
    wait_completed(s.client, admin_key(), r.json["id"])
    expect(s.client.delete("/documents/" + r.json["id"], key=admin_key()), 204)


@suite.test
def test_collection_counts(s):
    c = create_collection(s.client, admin_key())
    d1 = upload_text(s.client, admin_key(), c["id"], "first %s" % words(50, seed=21))
    d2 = upload_text(s.client, admin_key(), c["id"], "second %s" % words(80, seed=22))
    s1 = wait_completed(s.client, admin_key(), d1["id"])
    s2 = wait_completed(s.client, admin_key(), d2["id"])
    r = expect(s.client.get("/collections/" + c["id"], key=admin_key()), 200)
    eq(r.json["document_count"], 2, "document_count")
    eq(r.json["chunk_count"], s1["chunk_count"] + s2["chunk_count"], "chunk_count")
    expect(s.client.delete("/documents/" + d1["id"], key=admin_key()), 204)
    r = expect(s.client.get("/collections/" + c["id"], key=admin_key()), 200)
    eq(r.json["document_count"], 1, "document_count after delete")
    eq(r.json["chunk_count"], s2["chunk_count"], "chunk_count after delete")


@suite.test
def test_collection_delete_removes_documents(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    d = upload_text(s.client, admin_key(), c["id"], "Cascade check for %s." % w)
    wait_completed(s.client, admin_key(), d["id"])
    check(search(s.client, admin_key(), w)["results"], "not found before collection delete")
    expect(s.client.delete("/collections/" + c["id"], key=admin_key()), 204)
    expect(s.client.get("/documents/" + d["id"], key=admin_key()), 404, "NOT_FOUND",
           what="document of a deleted collection")
    eq(search(s.client, admin_key(), w)["results"], [], "search after collection delete")
    r = s.client.get("/documents?collection_id=" + c["id"], key=admin_key())
    if r.status == 200:
        eq(r.json["data"], [], "documents listed for a deleted collection")
    else:
        expect(r, 404, "NOT_FOUND", what="document list of a deleted collection")


# ---------------------------------------------------------------- retrieval


def check_result_shape(res, query, mode="keyword"):
    for f in ("query", "mode", "total_results", "processing_time_ms", "results", "graph_enhanced"):
        check(f in res, "retrieval answer lacks %r" % f)
    eq(res["query"], query, "query echoed")
    eq(res["mode"], mode, "mode echoed")
    eq(res["total_results"], len(res["results"]), "total_results vs len(results)")
    check(is_num(res["processing_time_ms"]) and res["processing_time_ms"] >= 0,
          "processing_time_ms %r" % res["processing_time_ms"])
    eq(res["graph_enhanced"], False, "graph_enhanced")
    for x in res["results"]:
        for f in ("chunk_id", "content", "chunk_index", "score", "metadata", "chunk_metadata",
                  "document", "collection_id"):
            check(f in x, "result lacks %r: %s" % (f, short(str(x))))
        check(UUID_RE.match(x["chunk_id"]), "chunk_id not uuid")
        check(isinstance(x["chunk_index"], int) and x["chunk_index"] >= 0, "chunk_index")
        check(is_num(x["score"]), "score not a number")
        check(isinstance(x["metadata"], dict), "metadata not an object")
        cm = x["chunk_metadata"]
        check(isinstance(cm, dict) and isinstance(cm.get("start"), int) and
              isinstance(cm.get("end"), int) and 0 <= cm["start"] < cm["end"],
              "chunk_metadata start/end: %r" % cm)
        doc = x["document"]
        for f in ("id", "title", "filename", "metadata"):
            check(f in doc, "result document lacks %r" % f)
    scores = [x["score"] for x in res["results"]]
    check(scores == sorted(scores, reverse=True), "results not sorted by score: %r" % scores)


@suite.test
def test_retrieval_keyword_shape(s):
    coll = S["coll"]["id"]
    w = S["doc_word"]
    res = search(s.client, admin_key(), w, collection_id=coll)
    check_result_shape(res, w)
    check(res["results"], "no result for the document's word")
    x = res["results"][0]
    eq(x["document"]["id"], S["doc"]["id"], "document id")
    eq(x["document"]["title"], "Rare birds", "document title (after PATCH)")
    eq(x["document"]["metadata"], {"topic": "birds", "v": 2}, "document metadata")
    eq(x["collection_id"], coll, "collection_id")
    check(w in x["content"], "content lacks the word")
    check(x["score"] > 0, "score %r" % x["score"])
    check("explain" not in x or x["explain"] is None, "explain present without asking")
    r = expect(s.client.get("/documents/%s/chunks" % S["doc"]["id"], key=admin_key()), 200)
    ids = [c["id"] for c in r.json["data"]]
    check(x["chunk_id"] in ids, "result chunk_id not among the document's chunks")


@suite.test
def test_retrieval_content_matches_chunks(s):
    d = S["long_doc"]
    chunks = {c["id"]: c for c in list_all(s.client, admin_key(), "/documents/%s/chunks" % d["id"])}
    res = search(s.client, admin_key(), "paragraph", collection_id=S["small_coll"]["id"], top_k=100)
    eq(len(res["results"]), len(chunks), "every chunk of the long document matches 'paragraph'")
    for x in res["results"]:
        check(x["chunk_id"] in chunks, "result chunk not in the document's chunk list")
        c = chunks[x["chunk_id"]]
        eq(x["content"], c["content"], "result content vs chunk content")
        eq(x["chunk_index"], c["chunk_index"], "result chunk_index vs chunk")


@suite.test
def test_retrieval_chunk_offsets(s):
    # For plain ASCII text the offsets locate the chunk in the original.
    c = create_collection(s.client, admin_key(), config={"chunk_size": 32, "chunk_overlap": 8})
    w = nonce()
    text = " ".join("Sentence %d mentions %s and %s." % (i, w, words(6, seed=i)) for i in range(40))
    d = upload_text(s.client, admin_key(), c["id"], text)
    wait_completed(s.client, admin_key(), d["id"])
    res = search(s.client, admin_key(), w, collection_id=c["id"], top_k=100)
    check(len(res["results"]) > 3, "want several chunks")
    for x in res["results"]:
        cm = x["chunk_metadata"]
        check(0 <= cm["start"] < cm["end"] <= len(text), "offsets %r outside the text" % cm)
        eq(text[cm["start"]:cm["end"]].strip(), x["content"].strip(),
           "text[start:end] vs chunk content (chunk %d)" % x["chunk_index"])


@suite.test
def test_retrieval_top_k_100_cap(s):
    c = create_collection(s.client, admin_key(), config={"chunk_size": 16, "chunk_overlap": 0})
    w = nonce()
    text = "\n\n".join("Line %d %s %s." % (i, w, words(8, seed=i)) for i in range(150))
    d = upload_text(s.client, admin_key(), c["id"], text)
    st = wait_completed(s.client, admin_key(), d["id"])
    check(st["chunk_count"] > 100, "want over 100 chunks, got %d" % st["chunk_count"])
    res = search(s.client, admin_key(), w, collection_id=c["id"], top_k=100)
    eq(len(res["results"]), 100, "results with top_k 100")
    eq(len(set(x["chunk_id"] for x in res["results"])), 100, "distinct chunks")


@suite.test
def test_retrieval_filter_sees_patched_metadata(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    d = upload_text(s.client, admin_key(), c["id"], "Patched metadata %s." % w,
                    metadata={"state": "draft"})
    wait_completed(s.client, admin_key(), d["id"])
    eq(len(search(s.client, admin_key(), w, collection_id=c["id"],
                  metadata_filter={"state": "draft"})["results"]), 1, "draft before PATCH")
    expect(s.client.patch("/documents/" + d["id"], {"metadata": {"state": "final"}},
                          key=admin_key()), 200)
    eq(search(s.client, admin_key(), w, collection_id=c["id"],
              metadata_filter={"state": "draft"})["results"], [], "draft after PATCH")
    res = search(s.client, admin_key(), w, collection_id=c["id"], metadata_filter={"state": "final"})
    eq([x["document"]["id"] for x in res["results"]], [d["id"]], "final after PATCH")
    eq(res["results"][0]["document"]["metadata"], {"state": "final"}, "result metadata after PATCH")


@suite.test
def test_retrieval_retrieve_alias(s):
    w = S["doc_word"]
    a = search(s.client, admin_key(), w, collection_id=S["coll"]["id"])
    b = search(s.client, admin_key(), w, collection_id=S["coll"]["id"], path="/retrievals/retrieve")
    check_result_shape(b, w)
    eq([x["chunk_id"] for x in b["results"]], [x["chunk_id"] for x in a["results"]],
       "/retrievals/retrieve vs /retrievals")


@suite.test
def test_retrieval_all_collections(s):
    w = nonce()
    c1 = S["coll2"]
    c2 = create_collection(s.client, admin_key())
    d1 = upload_text(s.client, admin_key(), c1["id"], "One collection talks about %s." % w)
    d2 = upload_text(s.client, admin_key(), c2["id"], "Another also mentions %s here." % w)
    wait_completed(s.client, admin_key(), d1["id"])
    wait_completed(s.client, admin_key(), d2["id"])
    res = search(s.client, admin_key(), w)
    check_result_shape(res, w)
    got = set(x["document"]["id"] for x in res["results"])
    eq(got, {d1["id"], d2["id"]}, "documents found without collection_id")
    eq(set(x["collection_id"] for x in res["results"]), {c1["id"], c2["id"]}, "collections")
    res = search(s.client, admin_key(), w, collection_id=c2["id"])
    eq(set(x["document"]["id"] for x in res["results"]), {d2["id"]}, "one collection only")


@suite.test
def test_retrieval_top_k(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    ids = []
    for i in range(6):
        d = upload_text(s.client, admin_key(), c["id"],
                        "Note %d: %s %s" % (i, (w + " ") * (i + 1), words(20, seed=40 + i)))
        ids.append(d["id"])
    for i in ids:
        wait_completed(s.client, admin_key(), i)
    res = search(s.client, admin_key(), w, collection_id=c["id"], top_k=2)
    eq(len(res["results"]), 2, "results with top_k 2")
    eq(res["total_results"], 2, "total_results with top_k 2")
    res = search(s.client, admin_key(), w, collection_id=c["id"])
    eq(len(res["results"]), 6, "results with default top_k (6 matches)")
    # More term occurrences in a document of the same length rank higher.
    eq(res["results"][0]["document"]["id"], ids[5], "best-scoring document")
    S["topk_coll"] = c
    S["topk_word"] = w


@suite.test
def test_retrieval_explain(s):
    w = S["topk_word"]
    res = search(s.client, admin_key(), w, collection_id=S["topk_coll"]["id"], explain=True)
    check(res["results"], "no results")
    for i, x in enumerate(res["results"]):
        e = x.get("explain")
        check(isinstance(e, dict), "explain missing: %r" % e)
        check(is_num(e.get("bm25")) and e["bm25"] > 0, "explain.bm25 %r" % e.get("bm25"))
        eq(e.get("bm25_rank"), i + 1, "explain.bm25_rank of result %d" % i)
        check("vector" in e and e["vector"] is None, "explain.vector should be null: %r" % e)
        check("vector_rank" in e and e["vector_rank"] is None,
              "explain.vector_rank should be null: %r" % e)


@suite.test
def test_retrieval_stemming(s):
    c = create_collection(s.client, admin_key())
    d1 = upload_text(s.client, admin_key(), c["id"],
                     "The grey fox runs along the old stone wall every morning.")
    d2 = upload_text(s.client, admin_key(), c["id"],
                     "Bake the bread slowly in a warm oven with butter.")
    wait_completed(s.client, admin_key(), d1["id"])
    wait_completed(s.client, admin_key(), d2["id"])
    res = search(s.client, admin_key(), "running", collection_id=c["id"])
    eq([x["document"]["id"] for x in res["results"]], [d1["id"]], "'running' finds 'runs'")
    res = search(s.client, admin_key(), "FOXES", collection_id=c["id"])
    eq([x["document"]["id"] for x in res["results"]], [d1["id"]], "'FOXES' finds 'fox'")


@suite.test
def test_retrieval_metadata_filter(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    en = upload_text(s.client, admin_key(), c["id"], "An English page about %s." % w,
                     metadata={"lang": "en"})
    de = upload_text(s.client, admin_key(), c["id"], "Eine deutsche Seite über %s." % w,
                     metadata={"lang": "de"})
    wait_completed(s.client, admin_key(), en["id"])
    wait_completed(s.client, admin_key(), de["id"])
    res = search(s.client, admin_key(), w, collection_id=c["id"])
    eq(set(x["document"]["id"] for x in res["results"]), {en["id"], de["id"]}, "unfiltered")
    res = search(s.client, admin_key(), w, collection_id=c["id"], metadata_filter={"lang": "en"})
    eq([x["document"]["id"] for x in res["results"]], [en["id"]], "filtered lang=en")
    eq(res["results"][0]["document"]["metadata"], {"lang": "en"}, "filtered doc metadata")
    res = search(s.client, admin_key(), w, collection_id=c["id"], metadata_filter={"lang": "fr"})
    eq(res["results"], [], "filtered lang=fr")


@suite.test
def test_retrieval_metadata_filter_types(s):
    c = create_collection(s.client, admin_key())
    w = nonce()
    a = upload_text(s.client, admin_key(), c["id"], "First %s." % w,
                    metadata={"n": 1, "ok": True, "tag": "x"})
    b = upload_text(s.client, admin_key(), c["id"], "Second %s." % w,
                    metadata={"n": 2, "ok": False, "tag": "x"})
    wait_completed(s.client, admin_key(), a["id"])
    wait_completed(s.client, admin_key(), b["id"])

    def ids(f):
        res = search(s.client, admin_key(), w, collection_id=c["id"], metadata_filter=f)
        return sorted(x["document"]["id"] for x in res["results"])
    eq(ids({"n": 1}), [a["id"]], "filter n=1")
    eq(ids({"ok": False}), [b["id"]], "filter ok=false")
    eq(ids({"tag": "x"}), sorted([a["id"], b["id"]]), "filter tag=x")
    eq(ids({"tag": "x", "n": 2}), [b["id"]], "filter tag=x and n=2")
    eq(ids({"n": "1"}), [], "filter n='1' (a string is not the number 1)")
    eq(ids({}), sorted([a["id"], b["id"]]), "empty filter")


@suite.test
def test_retrieval_unicode_case(s):
    c = create_collection(s.client, admin_key())
    d = upload_text(s.client, admin_key(), c["id"],
                    "Die Straße führt nach München; ein naïve café in Ærøskøbing.")
    other = upload_text(s.client, admin_key(), c["id"], "Nothing related at all here.")
    wait_completed(s.client, admin_key(), d["id"])
    wait_completed(s.client, admin_key(), other["id"])
    for q in ("MÜNCHEN", "münchen", "Café", "CAFÉ", "ærøskøbing"):
        res = search(s.client, admin_key(), q, collection_id=c["id"])
        eq([x["document"]["id"] for x in res["results"]], [d["id"]], "query %r" % q)


@suite.test
def test_retrieval_empty_query(s):
    r = s.client.post("/retrievals", {"query": "", "mode": "keyword"}, key=admin_key())
    expect(r, (200, 422), what="empty query")
    if r.status == 200:
        eq(r.json["results"], [], "results for an empty query")
    r = s.client.post("/retrievals", {"query": "the of and", "mode": "keyword"}, key=admin_key())
    expect(r, 200, what="stop-word-only query")


@suite.test
def test_concurrent_uploads_and_searches(s):
    import threading
    errors = []
    found = {}

    def worker(n):
        try:
            c = create_collection(s.client, admin_key())
            mine = []
            for i in range(4):
                w = nonce()
                d = upload_text(s.client, admin_key(), c["id"], "Thread %d doc %d about %s. %s"
                                % (n, i, w, words(60, seed=n * 10 + i)))
                mine.append((w, d["id"]))
                search(s.client, admin_key(), w)
            for w, d in mine:
                wait_completed(s.client, admin_key(), d, timeout=60)
            for w, d in mine:
                res = search(s.client, admin_key(), w)
                found[w] = (d, [x["document"]["id"] for x in res["results"]])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("thread %d: %s" % (n, e))

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    check(not errors, "; ".join(errors[:3]))
    eq(len(found), 24, "documents checked")
    for w, (d, got) in found.items():
        eq(got, [d], "search for %s" % w)


@suite.test
def test_retrieval_other_modes_422(s):
    # semantic, hybrid and hierarchical are covered by test_vectors.py, graph by test_graph.py.
    for mode in ("nonsense", ""):
        r = s.client.post("/retrievals", {"query": "birds", "mode": mode}, key=admin_key())
        expect(r, 422, "VALIDATION_ERROR", what="mode %s" % mode)


@suite.test
def test_retrieval_foreign_collection_404(s):
    r = s.client.post("/retrievals", {"query": S["doc_word"], "mode": "keyword",
                                      "collection_id": S["coll"]["id"]}, key=S["carol"]["key"])
    expect(r, 404, "NOT_FOUND", what="search another user's collection")
    r = s.client.post("/retrievals", {"query": S["doc_word"], "mode": "keyword"},
                      key=S["carol"]["key"])
    expect(r, 200)
    eq(r.json["results"], [], "another user's words in carol's search")


# ---------------------------------------------------------------- request ids, logs


@suite.test
def test_request_id_kept_or_replaced(s):
    sane = "it-req.42_%s" % nonce()
    r = s.client.get("/health", api=False, headers={"X-Request-ID": sane})
    eq(r.headers.get("x-request-id"), sane, "sane request id kept")
    r = s.client.get("/collections/00000000-0000-4000-8000-000000000000", key=admin_key(),
                     headers={"X-Request-ID": sane + "x"})
    eq(r.headers.get("x-request-id"), sane + "x", "request id on an error answer")
    eq(r.json["meta"]["request_id"], sane + "x", "meta.request_id")
    long_ok = "a" * 128
    r = s.client.get("/health", api=False, headers={"X-Request-ID": long_ok})
    eq(r.headers.get("x-request-id"), long_ok, "128-char request id kept")
    for bad in ("b" * 200, "has spaces in it", "semi;colon", "a" * 129):
        r = s.client.get("/health", api=False, headers={"X-Request-ID": bad})
        got = r.headers.get("x-request-id")
        check(got and got != bad, "insane request id %r kept" % bad[:40])
        check(REQID_RE.match(got), "replacement request id %r is not sane" % got)
    a = s.client.get("/health", api=False).headers.get("x-request-id")
    b = s.client.get("/health", api=False).headers.get("x-request-id")
    check(a and b and a != b, "generated request ids not unique: %r %r" % (a, b))
    S["reqid"] = sane


@suite.test
def test_access_log_has_request_id(s):
    rid = "acc-log-%s" % nonce()
    expect(s.client.get("/collections", key=admin_key(), headers={"X-Request-ID": rid}), 200)
    deadline = time.time() + 5
    line = None
    while time.time() < deadline and line is None:
        for j in s.server.json_logs():
            if j.get("request_id") == rid and j.get("msg") == "request":
                line = j
                break
        time.sleep(0.1)
    check(line is not None, "no access-log line with msg=request and request_id %s; tail:\n%s"
          % (rid, s.server.tail(10)))
    eq(line.get("method"), "GET", "logged method")
    check("/api/v1/collections" in str(line.get("path")), "logged path %r" % line.get("path"))
    eq(line.get("status"), 200, "logged status")
    text = "\n".join(s.server.log_lines())
    check(admin_key() not in text, "the server log contains an API key")
    check(S["admin"]["password"] not in text, "the server log contains a password")


@stops_server
@suite.test
def test_sigterm_exit_0(s):
    t0 = time.time()
    rc = s.server.stop(timeout=15)
    took = time.time() - t0
    check(rc is not None, "server did not exit within 15 s of SIGTERM")
    eq(rc, 0, "exit code after SIGTERM")
    check(took < 15, "shutdown took %.1fs" % took)


if __name__ == "__main__":
    suite.run()
