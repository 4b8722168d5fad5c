#!/usr/bin/env python3
"""Operations: rate limits and quotas, /metrics (parsed strictly), /openapi.json
against the router's table, /admin/stats, hot backup + restore + verify,
signed document links, the retrieval cache (invalidation and single flight)."""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Client, Suite, check, create_collection, eq, expect, make_user,  # noqa: E402
                     nonce, register_admin, run_cli, upload_text,
                     wait_completed, words)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
suite = Suite("test_ops")


def admin(s):
    if "admin" not in s.state:
        s.state["admin"] = register_admin(s.client)
    return s.state["admin"]


# --------------------------------------------------------------------------
# Prometheus text format 0.0.4, parsed strictly

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def parse_labels(s, where):
    """s is the text between { and }; returns a dict. Escapes: \\\\ \\" \\n."""
    out = {}
    i = 0
    while i < len(s):
        j = s.index("=", i)
        name = s[i:j]
        check(LABEL_NAME_RE.match(name), "%s: bad label name %r" % (where, name))
        check(s[j + 1] == '"', "%s: label value not quoted" % where)
        k = j + 2
        val = []
        while s[k] != '"':
            if s[k] == "\\":
                nxt = s[k + 1]
                check(nxt in '\\"n', "%s: bad escape \\%s" % (where, nxt))
                val.append("\n" if nxt == "n" else nxt)
                k += 2
            else:
                check(s[k] != "\n", "%s: raw newline in a label value" % where)
                val.append(s[k])
                k += 1
        check(name not in out, "%s: label %s twice" % (where, name))
        out[name] = "".join(val)
        i = k + 1
        if i < len(s):
            check(s[i] == ",", "%s: labels not separated by a comma" % where)
            i += 1
    return out


def parse_value(v, where):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    check(re.match(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$", v), "%s: bad value %r" % (where, v))
    return float(v)


def parse_exposition(text):
    """Returns {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    check(text.endswith("\n"), "exposition does not end with a newline")
    fams = {}
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d %r" % (n, line[:80])
        check(line != "", "%s: empty line" % where)
        if line.startswith("#"):
            m = re.match(r"^# (HELP|TYPE) (\S+) (.*)$", line)
            check(m, "%s: comment is neither HELP nor TYPE" % where)
            kind, name, rest = m.groups()
            check(NAME_RE.match(name), "%s: bad metric name" % where)
            fam = fams.setdefault(name, {"type": None, "help": None, "samples": []})
            if kind == "HELP":
                check(fam["help"] is None, "%s: second HELP for %s" % (where, name))
                fam["help"] = rest
            else:
                check(fam["type"] is None, "%s: second TYPE for %s" % (where, name))
                check(not fam["samples"], "%s: TYPE after samples" % where)
                check(rest in ("counter", "gauge", "histogram", "summary", "untyped"),
                      "%s: unknown type" % where)
                fam["type"] = rest
            current = name
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$", line)
        check(m, "%s: not a sample line" % where)
        name, _, labels, value = m.groups()
        fam_name = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name[:-len(suffix)] in fams and \
                    fams[name[:-len(suffix)]]["type"] == "histogram":
                fam_name = name[:-len(suffix)]
        check(fam_name == current, "%s: sample of %s outside its family block" % (where, fam_name))
        check(fams[fam_name]["type"] is not None, "%s: sample before TYPE" % where)
        fams[fam_name]["samples"].append((name, parse_labels(labels or "", where),
                                          parse_value(value, where)))
    for name, fam in fams.items():
        check(fam["type"] is not None, "%s has no TYPE" % name)
        if fam["type"] == "counter":
            check(name.endswith("_total"), "counter %s does not end in _total" % name)
        if fam["type"] == "histogram":
            check_histogram(name, fam["samples"])
    return fams


def check_histogram(name, samples):
    series = {}
    for sname, labels, value in samples:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        s = series[key]
        if sname == name + "_bucket":
            check("le" in labels, "%s bucket without le" % name)
            s["buckets"].append((parse_value(labels["le"], name), value))
        elif sname == name + "_sum":
            s["sum"] = value
        elif sname == name + "_count":
            s["count"] = value
    for key, s in series.items():
        les = [le for le, _ in s["buckets"]]
        check(les == sorted(les), "%s%s: buckets not in increasing le order" % (name, key))
        check(les and les[-1] == float("inf"), "%s%s: no le=\"+Inf\" bucket" % (name, key))
        counts = [c for _, c in s["buckets"]]
        check(all(a <= b for a, b in zip(counts, counts[1:])),
              "%s%s: buckets not cumulative: %r" % (name, key, counts))
        check(s["sum"] is not None and s["count"] is not None, "%s%s: _sum/_count missing" % (name, key))
        eq(s["count"], counts[-1], "%s%s: _count vs the +Inf bucket" % (name, key))


def scrape(client):
    r = client.get("/metrics", api=False)
    expect(r, 200, what="GET /metrics")
    check(r.headers.get("content-type", "").startswith("text/plain; version=0.0.4"),
          "metrics content type %r" % r.headers.get("content-type"))
    return parse_exposition(r.body.decode("utf-8"))


def value(fams, name, **labels):
    fam = fams.get(name)
    if not fam:
        return 0.0
    for sname, l, v in fam["samples"]:
        if sname == name and all(l.get(k) == str(x) for k, x in labels.items()):
            return v
    return 0.0


@suite.test
def test_metrics_exposition_is_valid(s):
    a = admin(s)
    coll = create_collection(s.client, a["key"])
    doc = upload_text(s.client, a["key"], coll["id"], "metrics " + words(30))
    wait_completed(s.client, a["key"], doc["id"])
    s.client.get("/nope", api=False)
    fams = scrape(s.client)
    for name in ("engram_http_requests_total", "engram_http_request_duration_seconds",
                 "engram_ingest_queue_depth", "engram_documents", "engram_chunks",
                 "engram_lmdb_map_bytes", "engram_lmdb_used_bytes", "engram_http_connections",
                 "engram_cache_hits_total", "engram_cache_misses_total", "engram_embed_calls_total",
                 "engram_llm_calls_total", "engram_rerank_calls_total"):
        check(name in fams, "metric %s missing" % name)
    eq(fams["engram_http_request_duration_seconds"]["type"], "histogram", "latency type")
    check(value(fams, "engram_http_requests_total", route="collections.create", status=201) >= 1,
          "collections.create 201 not counted")
    check(value(fams, "engram_http_requests_total", route="not_found", status=404) >= 1,
          "404 not counted under route not_found")
    check(value(fams, "engram_documents") >= 1 and value(fams, "engram_chunks") >= 1,
          "documents/chunks totals not counted")
    check(value(fams, "engram_lmdb_used_bytes") <= value(fams, "engram_lmdb_map_bytes"),
          "used bytes above the map size")
    check(1 <= value(fams, "engram_lmdb_commits") <= value(fams, "engram_lmdb_write_ops"),
          "write transactions not counted, or more of them than writes")


@suite.test
def test_metrics_scrape_with_100_collections(s):
    a = admin(s)
    for i in range(100):
        create_collection(s.client, a["key"], name="m100-%d" % i)
    s.client.get("/metrics", api=False)  # first scrape after writes recomputes totals
    c = Client(s.server.port, keep_alive=True)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        r = c.get("/metrics", api=False)
        times.append(time.perf_counter() - t0)
        expect(r, 200, what="GET /metrics")
    c.close()
    times.sort()
    print("    /metrics with %d collections: median %.2f ms (sanitizer build, client included)" %
          (value(parse_exposition(r.body.decode()), "engram_collections"), times[10] * 1000))
    check(value(parse_exposition(r.body.decode()), "engram_collections") >= 100, "collections total")


# --------------------------------------------------------------------------
# OpenAPI: same set of paths and methods as the router's table

def router_routes():
    src = open(os.path.join(ROOT, "src", "api", "router.c"), encoding="utf-8").read()
    table = re.search(r"static const api_route_t routes\[\] = \{(.*?)\n\};", src, re.S)
    check(table, "route table not found in src/api/router.c")
    out = set()
    for m in re.finditer(r'\{"([A-Z]+)",\s*"([^"]+)",\s*h_\w+', table.group(1)):
        out.add((m.group(1), re.sub(r"\{[^}]*\}", "{}", m.group(2))))
    check(len(out) > 20, "too few routes parsed from router.c: %d" % len(out))
    return out


@suite.test
def test_openapi_matches_router(s):
    r = s.client.get("/openapi.json", api=False)
    expect(r, 200, what="GET /openapi.json")
    doc = r.json
    check(isinstance(doc, dict) and str(doc.get("openapi", "")).startswith("3.1"),
          "not an OpenAPI 3.1 document: %r" % (doc or {}).get("openapi"))
    check(doc.get("info", {}).get("title") and doc["info"].get("version"), "info incomplete")
    documented = set()
    for path, item in doc["paths"].items():
        params = re.findall(r"\{([^}]*)\}", path)
        eq(len(params), len(set(params)), "distinct parameter names in %s" % path)
        for method, op in item.items():
            documented.add((method.upper(), re.sub(r"\{[^}]*\}", "{}", path)))
            check(op.get("responses"), "%s %s has no responses" % (method, path))
            names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            eq(names, set(params), "path parameters of %s %s" % (method, path))
    routes = router_routes()
    eq(sorted(documented - routes), [], "documented but not routed")
    eq(sorted(routes - documented), [], "routed but not documented")
    ops = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    eq(len(ops), len(set(ops)), "operationIds unique")


# --------------------------------------------------------------------------
# /admin/stats

@suite.test
def test_admin_stats_totals(s):
    a = admin(s)
    r = s.client.get("/admin/stats", key=a["key"])
    expect(r, 200, what="GET /admin/stats")
    st = r.json
    for k in ("collections", "documents", "chunks"):
        check(isinstance(st.get("totals", {}).get(k), int), "totals.%s missing: %r" % (k, st))
    check(st["totals"]["collections"] >= 1 and st["totals"]["documents"] >= 1, "totals: %r" % st)
    for k in ("map_bytes", "used_bytes", "file_bytes", "map_use"):
        check(k in st["storage"], "storage.%s missing" % k)
    check(isinstance(st.get("ingest_queue_depth"), int), "ingest_queue_depth missing")
    u = make_user(s.client, a["key"])
    expect(s.client.get("/admin/stats", key=u["key"]), 403, "FORBIDDEN", "stats without admin scope")


# --------------------------------------------------------------------------
# Rate limits

@suite.test
def test_rate_limit_per_key(s):
    srv = s.new_server(extra_args=["--rate-limit", "30", "--auth-rate-limit", "0"])
    srv.optional_args = []
    srv.start()
    c = Client(srv.port)
    a = register_admin(c)
    statuses = []
    last = None
    for _ in range(40):
        last = c.get("/collections", key=a["key"])
        statuses.append(last.status)
        if last.status == 429:
            break
    check(429 in statuses, "no 429 after 40 requests at 30/min: %r" % statuses[-5:])
    check(statuses.count(200) >= 25, "fewer requests allowed than the bucket holds: %r" % statuses)
    expect(last, 429, "RATE_LIMITED", "over the rate limit")
    ra = last.headers.get("retry-after", "")
    check(ra.isdigit() and 1 <= int(ra) <= 2, "Retry-After %r (a token every 2 s)" % ra)
    time.sleep(int(ra))
    expect(c.get("/collections", key=a["key"]), 200, what="after Retry-After")
    # Metrics count the refusals.
    check(value(scrape(c), "engram_rate_limited_total") >= 1, "rate_limited counter")


@suite.test
def test_login_guessing_limited_per_address(s):
    srv = s.new_server(extra_args=["--rate-limit", "0", "--auth-rate-limit", "4"])
    srv.optional_args = []
    srv.start()
    c = Client(srv.port)
    a = register_admin(c)  # attempt 1
    for i in range(3):     # attempts 2..4
        expect(c.post("/auth/login", {"email": a["email"], "password": "wrong %d" % i}), 401,
               "UNAUTHORIZED", "wrong password")
    r = c.post("/auth/login", {"email": a["email"], "password": a["password"]})
    expect(r, 429, "RATE_LIMITED", "5th attempt in a minute, even with the right password")
    ra = r.headers.get("retry-after", "")
    check(ra.isdigit() and 1 <= int(ra) <= 15, "Retry-After %r" % ra)
    # Keys keep working: the limit is on guessing, not on the account.
    expect(c.get("/collections", key=a["key"]), 200, what="key still works")


# --------------------------------------------------------------------------
# Quotas

def personal_ws(client, key):
    r = client.get("/workspaces", key=key)
    expect(r, 200, what="GET /workspaces")
    items = r.json["data"] if isinstance(r.json, dict) else r.json
    return items[0]["id"]


@suite.test
def test_quota_requests_per_day(s):
    a = admin(s)
    u = make_user(s.client, a["key"])
    ws = personal_ws(s.client, u["key"])
    r = s.client.req("PUT", "/admin/workspaces/%s/quota" % ws, json={"max_requests_per_day": 10**6},
                     key=a["key"])
    expect(r, 200, what="PUT quota")
    used = r.json["usage"]["requests_today"]
    check(used >= 1, "requests_today counts the user's requests: %r" % r.json)
    r = s.client.req("PUT", "/admin/workspaces/%s/quota" % ws,
                     json={"max_requests_per_day": used + 3, "max_chunks": None}, key=a["key"])
    expect(r, 200, what="PUT quota")
    eq(r.json["max_requests_per_day"], used + 3, "quota echoed")
    eq(r.json["max_chunks"], None, "max_chunks null = no limit")
    eq(r.json["workspace_id"], ws, "workspace_id")
    for i in range(3):
        expect(s.client.get("/collections", key=u["key"]), 200, what="request %d under quota" % i)
    r = s.client.get("/collections", key=u["key"])
    expect(r, 429, "QUOTA_EXCEEDED", "over max_requests_per_day")
    check(r.headers.get("retry-after", "").isdigit(), "Retry-After on QUOTA_EXCEEDED")
    # Other workspaces are not affected; the admin can lift it.
    expect(s.client.get("/collections", key=a["key"]), 200, what="admin unaffected")
    r = s.client.req("PUT", "/admin/workspaces/%s/quota" % ws, json={}, key=a["key"])
    expect(r, 200, what="lift quota")
    expect(s.client.get("/collections", key=u["key"]), 200, what="after lifting the quota")
    # Validation and access.
    expect(s.client.req("PUT", "/admin/workspaces/%s/quota" % ws, json={"max_chunks": -1},
                        key=a["key"]), 422, "VALIDATION_ERROR", "negative max_chunks")
    expect(s.client.req("PUT", "/admin/workspaces/%s/quota" % ws, json={"max_chunks": "x"},
                        key=a["key"]), 422, "VALIDATION_ERROR", "string max_chunks")
    expect(s.client.req("PUT", "/admin/workspaces/00000000-0000-4000-8000-000000000000/quota",
                        json={}, key=a["key"]), 404, "NOT_FOUND", "unknown workspace")
    expect(s.client.req("PUT", "/admin/workspaces/%s/quota" % ws, json={}, key=u["key"]), 403,
           "FORBIDDEN", "quota without admin scope")


@suite.test
def test_quota_max_chunks(s):
    a = admin(s)
    u = make_user(s.client, a["key"])
    ws = personal_ws(s.client, u["key"])
    expect(s.client.req("PUT", "/admin/workspaces/%s/quota" % ws, json={"max_chunks": 2},
                        key=a["key"]), 200, what="PUT quota")
    coll = create_collection(s.client, u["key"], config={"chunk_size": 16, "chunk_overlap": 0})
    d = upload_text(s.client, u["key"], coll["id"], words(60, seed=5))  # several chunks
    st = wait_completed(s.client, u["key"], d["id"])
    check(st["chunk_count"] >= 2, "expected several chunks, got %r" % st["chunk_count"])
    r = s.client.post("/documents", {"collection_id": coll["id"], "content": "one more"}, key=u["key"])
    expect(r, 429, "QUOTA_EXCEEDED", "upload past max_chunks")
    # Reading still works, and deleting makes room.
    expect(s.client.get("/documents/%s" % d["id"], key=u["key"]), 200, what="read under chunk quota")
    expect(s.client.delete("/documents/%s" % d["id"], key=u["key"]), 204, what="delete")
    upload_text(s.client, u["key"], coll["id"], "one more")


# --------------------------------------------------------------------------
# Backup and restore

@suite.test
def test_backup_under_load_restore_verify(s):
    a = admin(s)
    coll = create_collection(s.client, a["key"])
    acked = []          # (time acknowledged, doc id)
    stop = threading.Event()
    errors = []

    def writer(seed):
        c = Client(s.server.port, keep_alive=True)
        i = 0
        while not stop.is_set():
            i += 1
            r = c.post("/documents", {"collection_id": coll["id"],
                                      "content": "load %d %d %s" % (seed, i, words(80, seed * 1000 + i))},
                       key=a["key"])
            if r.status == 202:
                acked.append((time.time(), r.json["id"]))
            else:
                errors.append(r.status)
        c.close()

    threads = [threading.Thread(target=writer, args=(k,)) for k in (1, 2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    started = time.time()
    before = [d for t, d in list(acked) if t < started]
    r = s.client.post("/admin/backup", key=a["key"])
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    expect(r, 200, what="POST /admin/backup")
    eq(r.headers.get("content-type"), "application/octet-stream", "backup content type")
    eq(errors, [], "uploads during the backup")
    check(len(before) >= 3, "too few uploads before the backup: %d" % len(before))
    tmp = tempfile.mkdtemp(prefix="engram-bk-")
    bk = os.path.join(tmp, "api.mdb")
    with open(bk, "wb") as f:
        f.write(r.body)
    # CLI backup beside the running server, too.
    cli_bk = os.path.join(tmp, "cli.mdb")
    rc, out, err = run_cli(s.binary, ["backup", cli_bk, "--data", s.server.data_dir])
    eq(rc, 0, "engram backup exit code (%s)" % err.strip())
    # Restore refuses garbage and a non-empty directory.
    junk = os.path.join(tmp, "junk.mdb")
    with open(junk, "wb") as f:
        f.write(b"not a database" * 1000)
    rc, out, err = run_cli(s.binary, ["restore", junk, "--data", os.path.join(tmp, "j")])
    eq(rc, 1, "restore of a junk file: %s" % err.strip())
    rc, out, err = run_cli(s.binary, ["restore", bk, "--data", s.server.data_dir])
    eq(rc, 1, "restore over a live directory: %s" % err.strip())
    for name in ("api.mdb", "cli.mdb"):
        dest = os.path.join(tmp, "restored-" + name)
        rc, out, err = run_cli(s.binary, ["restore", os.path.join(tmp, name), "--data", dest])
        eq(rc, 0, "engram restore %s exit code (%s)" % (name, err.strip()))
        rc, out, err = run_cli(s.binary, ["verify", "--data", dest], timeout=120)
        eq(rc, 0, "engram verify on the restored %s: %s" % (name, (out + err)[-500:]))
    srv = s.new_server(data_dir=os.path.join(tmp, "restored-api.mdb"))
    srv.start()
    c = Client(srv.port)
    missing = [d for d in before if c.get("/documents/%s" % d, key=a["key"]).status != 200]
    eq(missing, [], "documents acknowledged before the backup, missing after restore")
    d = before[0]
    wait_completed(c, a["key"], d)
    srv.stop()
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# Signed document links

@suite.test
def test_signed_document_urls(s):
    a = admin(s)
    coll = create_collection(s.client, a["key"])
    data = ("signed link body %s\n" % nonce()).encode() * 20
    fname = 'we "ird"\\ näme.txt'
    r = s.client.post("/documents", {"collection_id": coll["id"], "content": data.decode(),
                                     "filename": fname}, key=a["key"])
    expect(r, 202, what="upload")
    doc = r.json["id"]
    r = s.client.get("/documents/%s/url?expires_in=60" % doc, key=a["key"])
    expect(r, 200, what="GET url")
    for k in ("url", "expires_in", "filename", "content_type"):
        check(k in r.json, "url answer lacks %s: %r" % (k, r.json))
    eq(r.json["expires_in"], 60, "expires_in")
    u = urllib.parse.urlsplit(r.json["url"])
    check(u.path == "/api/v1/files/%s" % doc, "link path %r" % u.path)
    target = u.path + "?" + u.query
    got = s.client.get(target, api=False)  # no credential
    expect(got, 200, what="GET signed link")
    eq(got.body, data, "file bytes")
    check(got.headers.get("content-type", "").startswith("text/plain"), "content type %r" %
          got.headers.get("content-type"))
    cd = got.headers.get("content-disposition", "")
    check(cd.startswith("attachment;") and "filename*=UTF-8''" in cd, "Content-Disposition %r" % cd)
    quoted = re.search(r'filename="([^"]*)"', cd)
    check(quoted and "\\" not in quoted.group(1), "fallback filename safely quoted: %r" % cd)
    star = urllib.parse.unquote(cd.split("filename*=UTF-8''")[1].split(";")[0])
    eq(star, fname, "RFC 8187 filename")
    q = urllib.parse.parse_qs(u.query)
    sig = q["sig"][0]
    bad = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    expect(s.client.get("/api/v1/files/%s?exp=%s&sig=%s" % (doc, q["exp"][0], bad), api=False),
           403, "FORBIDDEN", "tampered signature")
    expect(s.client.get("/api/v1/files/%s?exp=%d&sig=%s" % (doc, int(q["exp"][0]) + 1000, sig),
                        api=False), 403, "FORBIDDEN", "extended expiry")
    expect(s.client.get("/api/v1/files/%s" % doc, api=False), 403, "FORBIDDEN", "no signature")
    other = create_collection(s.client, a["key"])
    d2 = upload_text(s.client, a["key"], other["id"], "another " + nonce())
    expect(s.client.get("/api/v1/files/%s?%s" % (d2["id"], u.query), api=False), 403, "FORBIDDEN",
           "another document's signature")
    r = s.client.get("/documents/%s/url?expires_in=1" % doc, key=a["key"])
    expect(r, 200, what="short link")
    u1 = urllib.parse.urlsplit(r.json["url"])
    time.sleep(2.2)
    expect(s.client.get(u1.path + "?" + u1.query, api=False), 403, "FORBIDDEN", "expired link")
    for bad_exp in ("0", "604801", "abc", "-5"):
        expect(s.client.get("/documents/%s/url?expires_in=%s" % (doc, bad_exp), key=a["key"]), 422,
               "VALIDATION_ERROR", "expires_in=%s" % bad_exp)
    other_user = make_user(s.client, a["key"])
    expect(s.client.get("/documents/%s/url" % doc, key=other_user["key"]), 404, "NOT_FOUND",
           "another workspace's document")


# --------------------------------------------------------------------------
# Retrieval cache

@suite.test
def test_cache_hit_then_invalidated_by_upload(s):
    a = admin(s)
    coll = create_collection(s.client, a["key"])
    word = nonce()
    d1 = upload_text(s.client, a["key"], coll["id"], "first %s %s" % (word, words(20)))
    wait_completed(s.client, a["key"], d1["id"])
    body = {"query": word, "mode": "keyword", "collection_id": coll["id"], "top_k": 10}
    m0 = scrape(s.client)
    r1 = s.client.post("/retrievals", body, key=a["key"])
    expect(r1, 200, what="first query")
    # The same request with members in another order is the same query.
    r2 = s.client.post("/retrievals", dict(reversed(list(body.items()))), key=a["key"])
    expect(r2, 200, what="second query")
    m1 = scrape(s.client)
    eq(value(m1, "engram_cache_misses_total") - value(m0, "engram_cache_misses_total"), 1, "misses")
    eq(value(m1, "engram_cache_hits_total") - value(m0, "engram_cache_hits_total"), 1, "hits")
    eq([x["chunk_id"] for x in r2.json["results"]], [x["chunk_id"] for x in r1.json["results"]],
       "cached results")
    d2 = upload_text(s.client, a["key"], coll["id"], "second %s %s" % (word, words(20, seed=9)))
    wait_completed(s.client, a["key"], d2["id"])
    r3 = s.client.post("/retrievals", body, key=a["key"])
    m2 = scrape(s.client)
    eq(value(m2, "engram_cache_misses_total") - value(m1, "engram_cache_misses_total"), 1,
       "a miss after the upload")
    docs = {x["document"]["id"] for x in r3.json["results"]}
    eq(docs, {d1["id"], d2["id"]}, "results after the upload")
    # Another workspace asking the same thing shares nothing.
    other = make_user(s.client, a["key"])
    r4 = s.client.post("/retrievals", {"query": word, "mode": "keyword"}, key=other["key"])
    expect(r4, 200, what="other workspace")
    eq(r4.json["results"], [], "another workspace's results")


@suite.test
def test_cache_concurrent_identical_queries_computed_once(s):
    a = admin(s)
    coll = create_collection(s.client, a["key"])
    word = nonce()
    d = upload_text(s.client, a["key"], coll["id"], "%s %s" % (word, words(40)))
    wait_completed(s.client, a["key"], d["id"])
    body = {"query": "%s %s" % (word, words(30, seed=3)), "mode": "keyword", "top_k": 50}
    m0 = scrape(s.client)
    n = 8
    barrier = threading.Barrier(n)
    out = [None] * n

    def one(i):
        c = Client(s.server.port)
        barrier.wait()
        out[i] = c.post("/retrievals", body, key=a["key"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for r in out:
        expect(r, 200, what="concurrent query")
    first = [x["chunk_id"] for x in out[0].json["results"]]
    check(first, "no results")
    for r in out[1:]:
        eq([x["chunk_id"] for x in r.json["results"]], first, "identical answers")
    m1 = scrape(s.client)
    eq(value(m1, "engram_cache_misses_total") - value(m0, "engram_cache_misses_total"), 1,
       "computations for %d identical queries" % n)
    eq(value(m1, "engram_cache_hits_total") - value(m0, "engram_cache_hits_total"), n - 1,
       "answers shared or cached")


if __name__ == "__main__":
    suite.run()
