// run.mjs - the TypeScript client (built to dist/) against a real engram
// server at $ENGRAM_TEST_URL (tests/extra/sdk_typescript.sh starts it).
// Prints "PASS sdk_typescript.X" / "FAIL sdk_typescript.X: why"; a test of a
// route this build does not serve yet (404 "no such route") prints
// "SKIP sdk_typescript.X: route not served yet" and runs once the route
// exists. Exit status 1 when anything failed.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as E from "../dist/index.js";

const HERE = path.dirname(fileURLToPath(import.meta.url));

const URL_ = process.env.ENGRAM_TEST_URL;
const only = process.argv[2] || "";
const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const ctx = {};
const uniq = (p) => `${p}-${Math.random().toString(16).slice(2, 10)}`;

class Skip extends Error {}

async function rejects(cls, promise) {
  try {
    await promise;
  } catch (e) {
    if (e instanceof cls) return e;
    throw new Error(`expected ${cls.name}, got ${e?.name}: ${e?.message}`);
  }
  throw new Error(`expected ${cls.name}, nothing was thrown`);
}

async function served(promise) {
  try {
    return await promise;
  } catch (e) {
    if (e instanceof E.NotFound && e.message === "no such route") throw new Skip("route not served yet");
    throw e;
  }
}

test("register_and_health", async () => {
  const anon = new E.EngramClient({ baseUrl: URL_, apiKey: "" });
  assert.equal((await anon.health()).status, "ok");
  ctx.email = uniq("admin") + "@example.com";
  const r = await anon.auth.register(ctx.email, "correct horse battery");
  assert.match(r.api_key, /^eg_[A-Za-z0-9]{40}$/);
  ctx.admin = new E.EngramClient({ baseUrl: URL_, apiKey: r.api_key });
});

test("errors_are_typed", async () => {
  const bad = new E.EngramClient({ baseUrl: URL_, apiKey: "eg_" + "x".repeat(40), maxRetries: 0 });
  const e = await rejects(E.Unauthorized, bad.collections.list());
  assert.equal(e.status, 401);
  assert.equal(e.code, "UNAUTHORIZED");
  assert.ok(e.requestId, "request id");
  assert.ok(e instanceof E.EngramError && e instanceof Error);
  await rejects(E.NotFound, ctx.admin.collections.get("00000000-0000-4000-8000-000000000000"));
  const v = await rejects(E.ValidationError, ctx.admin.retrieve({ query: "x", top_k: 0 }));
  assert.equal(v.details.field, "top_k");
  const name = uniq("dup");
  await ctx.admin.collections.create({ name });
  await rejects(E.Conflict, ctx.admin.collections.create({ name }));
});

test("collections_crud_and_pages", async () => {
  const c = ctx.admin;
  const made = [];
  for (let i = 0; i < 5; i++) made.push(await c.collections.create({ name: uniq("page"), metadata: { i } }));
  assert.deepEqual((await c.collections.get(made[0].id)).metadata, { i: 0 });
  assert.equal((await c.collections.update(made[0].id, { description: "changed" })).description, "changed");
  const page = await c.collections.list({ limit: 2 });
  assert.equal(page.data.length, 2);
  assert.ok(page.pagination.has_more);
  const ids = [];
  for await (const x of c.collections.iter(2)) ids.push(x.id);
  for (const m of made) assert.ok(ids.includes(m.id), "iter missed " + m.name);
  assert.equal(new Set(ids).size, ids.length, "each collection once");
  assert.equal((await c.collections.find(made[1].name)).id, made[1].id);
  await c.collections.delete(made[4].id);
  await rejects(E.NotFound, c.collections.get(made[4].id));
});

test("documents_upload_every_way", async () => {
  const c = ctx.admin;
  const coll = await c.collections.create({ name: uniq("docs") });
  ctx.coll = coll;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engram-ts-"));
  const file = path.join(dir, "storage.md");
  fs.writeFileSync(file, "# Storage\n\nEvery write goes through one writer that batches commits.\n");
  const a = await c.documents.uploadPath(coll.id, file, { metadata: { lang: "en" } });
  assert.equal(a.status, "pending");
  assert.equal(a.filename, "storage.md");
  assert.deepEqual(a.metadata, { lang: "en" });
  assert.equal((await c.documents.uploadPath(coll.id, file)).id, a.id, "same bytes -> existing document");
  const b = await c.documents.upload(coll.id, new TextEncoder().encode("The quokka lives on Rottnest island."),
    { filename: "quokka.txt", title: "Quokka" });
  assert.equal(b.title, "Quokka");
  const blob = await c.documents.upload(coll.id, new Blob(["Blobs about the axolotl."], { type: "text/plain" }),
    { filename: "axolotl.txt" });
  const t = await c.documents.create({ collection_id: coll.id, content: "Plain text about the narwhal tusk.",
    title: "Narwhal" });
  for (const d of [a, b, blob, t]) {
    const st = await c.documents.waitUntilProcessed(d.id, { timeoutMs: 60000, pollMs: 100 });
    assert.equal(st.status, "completed", `status of ${d.id}`);
  }
  const chunks = await c.documents.chunks(b.id);
  assert.match(chunks.data[0].content, /quokka/);
  assert.equal((await c.documents.update(t.id, { title: "Tusk" })).title, "Tusk");
  const ids = [];
  for await (const d of c.documents.iter({ collectionId: coll.id, pageSize: 2 })) ids.push(d.id);
  assert.deepEqual(ids.sort(), [a.id, b.id, blob.id, t.id].sort());
  await c.documents.delete(blob.id);
  await rejects(E.NotFound, c.documents.get(blob.id));
  const bin = new Uint8Array(600);
  bin[10] = 1;
  await rejects(E.UnsupportedMediaType, c.documents.upload(coll.id, bin, { filename: "x.bin" }));
  fs.rmSync(dir, { recursive: true });
  ctx.docs = { a, b, t };
});

test("large_file_streams", async () => {
  const c = ctx.admin;
  // Big chunks keep the server's ingest work small: the test is about the upload.
  const coll = await c.collections.create({ name: uniq("big"), config: { chunk_size: 8192, chunk_overlap: 0 } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engram-ts-"));
  const file = path.join(dir, "big.txt");
  const line = "The lighthouse keeper logs every ship that passes the harbor at night.\n";
  fs.writeFileSync(file, line.repeat(Math.ceil((2 << 20) / line.length)));
  const doc = await c.documents.uploadPath(coll.id, file);
  assert.equal(doc.size_bytes, fs.statSync(file).size);
  await c.documents.waitUntilProcessed(doc.id, { timeoutMs: 120000, pollMs: 200 });
  fs.rmSync(dir, { recursive: true });
});

test("retrieval_keyword", async () => {
  const r = await ctx.admin.retrieve({ query: "quokka island", mode: "keyword", top_k: 3,
    collection_id: ctx.coll.id, explain: true });
  assert.equal(r.mode, "keyword");
  assert.equal(r.results[0].document.id, ctx.docs.b.id);
  assert.ok("explain" in r.results[0]);
  await rejects(E.NotFound, ctx.admin.retrievals.retrieve({ query: "x", mode: "keyword",
    collection_id: "00000000-0000-4000-8000-000000000000" }));
});

test("keys_lifecycle", async () => {
  const c = ctx.admin;
  const k = await c.auth.keys.create("ro", ["read"]);
  const listed = (await c.auth.keys.list()).data;
  assert.ok(listed.some((x) => x.id === k.id));
  assert.ok(listed.every((x) => !("api_key" in x)));
  const ro = new E.EngramClient({ baseUrl: URL_, apiKey: k.api_key, maxRetries: 0 });
  await ro.collections.list();
  await rejects(E.Forbidden, ro.collections.create({ name: uniq("nope") }));
  await c.auth.keys.delete(k.id);
  await rejects(E.Unauthorized, ro.collections.list());
});

test("workspaces_and_members", async () => {
  const c = ctx.admin;
  const u = await c.admin.users.create(uniq("member") + "@example.com", "correct horse battery");
  const ws = await c.workspaces.create(uniq("team"));
  assert.ok((await c.workspaces.list()).data.some((w) => w.id === ws.id));
  assert.equal((await c.workspaces.members.add(ws.id, u.email, "editor")).role, "editor");
  assert.ok((await c.workspaces.members.list(ws.id)).data.some((m) => m.email === u.email));
  await c.workspaces.members.remove(ws.id, u.user_id);
  assert.ok(!(await c.workspaces.members.list(ws.id)).data.some((m) => m.email === u.email));
});

test("admin_users_and_stats", async () => {
  const c = ctx.admin;
  assert.equal(typeof (await c.admin.stats()), "object");
  const u = await c.admin.users.create(uniq("ops") + "@example.com", "correct horse battery");
  const uc = new E.EngramClient({ baseUrl: URL_, apiKey: u.api_key, maxRetries: 0 });
  await uc.collections.list();
  await rejects(E.Forbidden, uc.admin.stats());
  let seen = false;
  for await (const x of c.admin.users.iter()) if ((x.user_id ?? x.id) === u.user_id) seen = true;
  assert.ok(seen, "user listed");
  await c.admin.users.update(u.user_id, { disabled: true });
  await rejects(E.Unauthorized, uc.collections.list());
});

test("login_cookie_session", async () => {
  const s = new E.EngramClient({ baseUrl: URL_, apiKey: "", maxRetries: 0 });
  await rejects(E.Unauthorized, s.auth.login(ctx.email, "wrong password!"));
  assert.equal((await s.auth.login(ctx.email, "correct horse battery")).email, ctx.email);
  assert.ok((await s.collections.list({ limit: 100 })).data.some((x) => x.id === ctx.coll.id));
  await s.auth.logout();
  await rejects(E.Unauthorized, s.collections.list());
});

test("sse_parser_byte_by_byte", async () => {
  const text =
    'event: sources\ndata: {"type":"sources","sources":[{"chunk_id":"c1","title":"Überblick"}]}\n\n' +
    ": keep-alive\n\n" +
    'event: delta\r\ndata: {"type":"delta","content":"Grüß ","delta":"Grüß "}\r\n\r\n' +
    'event: delta\ndata: {"type":"delta","delta":"dich 🌍"}\n\n' +
    'event: usage\ndata: {"type":"usage","usage":{"total_tokens":3}}\n\n' +
    'event: future\ndata: {"type":"future","x":1}\n\n' +
    'event: done\ndata: {"type":"done","session_id":"s1","metadata":{"model":"m"}}\n\n';
  const bytes = new TextEncoder().encode(text);
  const pieces = Array.from(bytes, (b) => new Uint8Array([b]));
  const evs = [];
  for await (const ev of E.parseSSE(pieces)) evs.push(ev);
  assert.deepEqual(evs.map((e) => e.type), ["sources", "delta", "delta", "usage", "future", "done"]);
  assert.equal(evs[0].sources[0].title, "Überblick");
  assert.equal(evs[1].content + evs[2].content, "Grüß dich 🌍");
  assert.equal(evs[3].usage.total_tokens, 3);
  assert.deepEqual(evs[4].data, { type: "future", x: 1 });
  assert.equal(evs[5].session_id, "s1");
  const err = [];
  for await (const ev of E.parseSSE(['event: error\ndata: {"type":"error","error":"boom"}\n\n'])) err.push(ev);
  assert.equal(err[0].error, "boom");
});

test("retries_on_connection_errors", async () => {
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const port = srv.address().port;
  await new Promise((r) => srv.close(r)); // nothing listens there now
  const c = new E.EngramClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "k", maxRetries: 2 });
  const slept = [];
  c.transport.sleep = async (ms) => { slept.push(ms); };
  const e = await rejects(E.ConnectionFailed, c.collections.list());
  assert.equal(e.status, undefined);
  assert.equal(slept.length, 2);
});

test("retries_respect_retry_after", async () => {
  // The real server cannot be made to rate-limit on demand: a stand-in answers 429/503 first.
  const plan = [];
  const srv = http.createServer((req, res) => {
    const s = plan.length ? plan.shift() : 200;
    const code = s === 4291 ? "QUOTA_EXCEEDED" : "RATE_LIMITED";
    const body = s === 200 ? '{"status":"ok"}'
      : `{"detail":"slow","error":{"code":"${code}","message":"slow"},"meta":{"request_id":"r"}}`;
    const h = { "Content-Type": "application/json" };
    if (s === 429 || s === 4291) h["Retry-After"] = "2";
    res.writeHead(s === 4291 ? 429 : s, h);
    res.end(body);
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  try {
    const c = new E.EngramClient({ baseUrl: `http://127.0.0.1:${srv.address().port}`, apiKey: "k", maxRetries: 3 });
    const slept = [];
    c.transport.sleep = async (ms) => { slept.push(ms); };
    plan.push(429, 503);
    assert.deepEqual(await c.health(), { status: "ok" });
    assert.equal(slept[0], 2000, "Retry-After honoured");
    assert.equal(slept.length, 2);
    slept.length = 0;
    plan.push(4291);
    const q = await rejects(E.QuotaExceeded, c.health());
    assert.equal(q.retryAfter, 2);
    assert.equal(slept.length, 0, "quota is not retried");
    plan.push(429, 429, 429, 429, 429);
    await rejects(E.RateLimited, c.health());
    assert.equal(slept.length, 3, "gives up after maxRetries");
  } finally {
    srv.closeAllConnections?.();
    await new Promise((r) => srv.close(r));
  }
});

test("timeout_is_raised", async () => {
  const socks = [];
  const srv = net.createServer((s) => socks.push(s)); // accepts, never answers
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  try {
    const c = new E.EngramClient({ baseUrl: `http://127.0.0.1:${srv.address().port}`, apiKey: "k",
      timeoutMs: 300, maxRetries: 0 });
    await rejects(E.Timeout, c.collections.list());
  } finally {
    socks.forEach((s) => s.destroy());
    await new Promise((r) => srv.close(r));
  }
});

test("readme_typescript_example", async () => {
  // The README's block runs as a module inside the package, so "engram-client" resolves to dist/.
  const readme = fs.readFileSync(path.join(HERE, "..", "..", "..", "README.md"), "utf8");
  const m = readme.match(/<!-- example: typescript -->\s*```js\n([\s\S]*?)```/);
  assert.ok(m, "README has the typescript example block");
  const file = path.join(HERE, ".readme_example.mjs");
  fs.writeFileSync(file, m[1]);
  try {
    await served(ctx.admin.sessions.list()); // the example chats
    const out = execFileSync(process.execPath, [file], {
      env: { ...process.env, ENGRAM_URL: URL_, ENGRAM_API_KEY: ctx.admin.apiKey },
      encoding: "utf8",
      timeout: 120000,
    });
    assert.match(out, /within one day/, "the streamed answer quotes the document");
    assert.match(out, /\nsources: support\.txt/, "the sources line");
  } finally {
    fs.rmSync(file, { force: true });
  }
});

// Routes being built by others: each test runs as soon as its route exists.

test("chat_stream_and_sessions", async () => {
  const c = ctx.admin;
  const st = await served(c.chat.stream({ message: "Where does the quokka live?", collection_id: ctx.coll.id }));
  const types = [];
  for await (const ev of st) types.push(ev.type);
  assert.equal(types[types.length - 1], "done", types.join(","));
  assert.ok(types.indexOf("sources") < types.indexOf("delta"), types.join(","));
  assert.ok(types.includes("usage"));
  assert.ok(st.text && st.sessionId);
  const sessions = await served(c.sessions.list());
  assert.ok(sessions.some((s) => s.id === st.sessionId));
  const msgs = await c.sessions.messages(st.sessionId);
  assert.deepEqual(msgs.map((m) => m.role), ["user", "assistant"]);
  assert.equal(msgs[1].content, st.text);
  const r = await c.chat.send({ message: "And the narwhal?", session_id: st.sessionId });
  assert.ok(r.response && Array.isArray(r.sources));
  await c.sessions.delete(st.sessionId);
  await rejects(E.NotFound, c.sessions.messages(st.sessionId));
});

test("memories_crud_and_search", async () => {
  const c = ctx.admin;
  const m = await served(c.memories.create({ type: "profile", content: "Prefers answers with code in Rust." }));
  assert.equal(m.reliability, 0.8);
  assert.equal((await c.memories.update(m.id, { reliability: 0.5 })).reliability, 0.5);
  const res = (await c.memories.search({ query: "Rust code", top_k: 5 })).results;
  assert.equal(res[0].id, m.id);
  assert.ok(res[0].signals);
  await rejects(E.ValidationError, c.memories.search({ query: "x", types: ["nonsense"] }));
  await c.memories.delete(m.id);
  await rejects(E.NotFound, c.memories.get(m.id));
});

test("graph_routes", async () => {
  const c = ctx.admin;
  const ents = await served(c.graph.entities(ctx.coll.id, { limit: 10 }));
  assert.ok(Array.isArray(ents.data));
  if (ents.data.length) {
    const e = await c.graph.entity(ctx.coll.id, ents.data[0].id);
    assert.ok(Array.isArray(e.relations) && Array.isArray(e.chunk_ids));
  }
  assert.equal(typeof (await c.graph.export(ctx.coll.id, "json")), "object");
  assert.match(String(await c.graph.export(ctx.coll.id, "graphml")), /graphml/);
});

test("signed_url", async () => {
  const u = await served(ctx.admin.documents.url(ctx.docs.b.id, 60));
  assert.equal(u.expires_in, 60);
  const res = await fetch(u.url.startsWith("http") ? u.url : URL_ + u.url);
  assert.equal(await res.text(), "The quokka lives on Rottnest island.");
});

test("admin_quota", async () => {
  const ws = (await ctx.admin.workspaces.list()).data[0];
  const q = await served(ctx.admin.admin.quota(ws.id, { max_chunks: 100000, max_requests_per_day: 100000 }));
  assert.equal(typeof q, "object");
});

test("admin_backup", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engram-ts-"));
  const file = path.join(dir, "backup.mdb");
  try {
    const n = await served(ctx.admin.admin.backupToFile(file));
    assert.ok(n > 0 && fs.statSync(file).size === n);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

let failed = 0;
for (const { name, fn } of tests) {
  if (only && !name.includes(only)) continue;
  const t0 = Date.now();
  try {
    await fn();
    console.log(`PASS sdk_typescript.${name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
  } catch (e) {
    if (e instanceof Skip) {
      console.log(`SKIP sdk_typescript.${name}: ${e.message}`);
      continue;
    }
    failed++;
    console.log(`FAIL sdk_typescript.${name}: ${String(e?.message ?? e).replace(/\n/g, " ")}`);
    console.log(e?.stack ?? "");
  }
}
process.exit(failed ? 1 : 0);
