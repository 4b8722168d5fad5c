/*
 * app.js - engram's web page: sign in, collections, uploads with live
 * status, documents, search (modes + explain), streamed chat with sources,
 * memories and a drawing of a collection's knowledge graph.
 *
 * How it works: one module-less script, no framework. Every API call goes
 * through api(), which sends the session cookie (credentials
 * 'same-origin'; the cookie is HttpOnly, so the page never sees it), turns
 * an error body into an ApiError with the server's message, and sends the
 * page back to the sign-in form on a 401. The DOM is built with el()
 * (text only, never HTML from the server), so nothing the server returns
 * can run as script; the CSP forbids inline script anyway.
 *
 * Chat reads the text/event-stream answer of POST /chat with fetch and a
 * ReadableStream reader and cuts it into frames (blank-line separated
 * "event:" / "data:" lines, ":" comments ignored); deltas are appended as
 * they arrive. The graph view lays nodes out with a small force simulation
 * (repulsion between every pair, springs along relations, a pull to the
 * centre; fixed iteration count from a circular start, so the same graph
 * is always drawn the same way) and draws it as SVG.
 */
"use strict";

/* ---- small helpers ------------------------------------------------------- */

const $ = (id) => document.getElementById(id);

/* el("li", {class: "x", onclick: f}, "text", child, ...): an element. */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function fmtScore(x) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 1 ? x.toFixed(2) : x.toFixed(4);
}

function plural(n, word, many) { return n + " " + (n === 1 ? word : many || word + "s"); }

let toastTimer = 0;
function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove("show"), 3500);
}

function showError(box, err) {
  box.textContent = err && err.message ? err.message : String(err);
  box.hidden = false;
}

/* ---- the API --------------------------------------------------------------- */

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function errorFrom(res) {
  let msg = "";
  let code = "";
  try {
    const body = await res.json();
    msg = (body.error && body.error.message) || body.detail || "";
    code = (body.error && body.error.code) || "";
  } catch (_) { /* not JSON */ }
  if (!msg) msg = "The server answered " + res.status + " " + res.statusText;
  const err = new ApiError(res.status, code, msg);
  err.retryAfter = parseInt(res.headers.get("Retry-After") || "", 10) || 0;
  return err;
}

/* method, path under /api/v1, optional JSON body or FormData. opts.raw:
 * return the Response when ok (streams); opts.quiet401: no redirect. */
async function api(method, path, body, opts = {}) {
  const init = { method, credentials: "same-origin", headers: {}, signal: opts.signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (opts.accept) init.headers.Accept = opts.accept;
  let res;
  try {
    res = await fetch("/api/v1" + path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "NETWORK", "The server could not be reached. Check that engram is running.");
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401 && !opts.quiet401 && state.signedIn)
      signedOut("Your session has ended: please sign in again.");
    throw err;
  }
  if (opts.raw) return res;
  if (res.status === 204) return null;
  return res.json();
}

/* ---- state ----------------------------------------------------------------- */

const state = {
  signedIn: false,
  collections: [],
  current: null,          /* the selected collection */
  tab: "documents",
  polls: new Map(),       /* document id -> timer */
  sessionId: null,        /* chat session */
  chatAbort: null,
  graph: null,            /* {nodes, edges, byId} of the drawn collection */
  lastSearch: null,
};

/* ---- sign in / out --------------------------------------------------------- */

function showView(name) {
  $("boot-status").hidden = true;
  $("signin-view").hidden = name !== "signin";
  $("app-view").hidden = name !== "app";
  $("who").hidden = name !== "app";
}

function signedOut(message) {
  state.signedIn = false;
  for (const t of state.polls.values()) clearTimeout(t);
  state.polls.clear();
  if (state.chatAbort) state.chatAbort.abort();
  state.collections = [];
  state.current = null;
  state.sessionId = null;
  state.graph = null;
  $("upload-list").replaceChildren();
  $("search-results").replaceChildren();
  $("search-status").textContent = "";
  clearChat();
  showView("signin");
  const e = $("signin-error");
  if (message) showError(e, { message });
  else e.hidden = true;
  $("signin-email").focus();
}

async function signIn(email, password) {
  await api("POST", "/auth/login", { email, password }, { quiet401: true });
  try { sessionStorage.setItem("engram.email", email); } catch (_) { /* storage off */ }
  await enterApp();
}

async function onSignIn(ev) {
  ev.preventDefault();
  const email = $("signin-email").value.trim();
  const password = $("signin-password").value;
  const box = $("signin-error");
  box.hidden = true;
  if (!email || !password) {
    showError(box, { message: "Enter your email and password." });
    return;
  }
  $("signin-btn").disabled = true;
  try {
    await signIn(email, password);
    $("signin-password").value = "";
  } catch (e) {
    showError(box, e.status === 401 ? { message: "Wrong email or password." } : e);
  } finally {
    $("signin-btn").disabled = false;
  }
}

async function onRegister() {
  const email = $("signin-email").value.trim();
  const password = $("signin-password").value;
  const box = $("signin-error");
  box.hidden = true;
  if (!email || password.length < 8) {
    showError(box, { message: "Enter an email and a password of at least 8 characters, then choose Create an account." });
    return;
  }
  try {
    const r = await api("POST", "/auth/register", { email, password }, { quiet401: true });
    await signIn(email, password);
    $("signin-password").value = "";
    notice("Account created. Your API key for scripts and the command line (shown only once): " + r.api_key);
  } catch (e) {
    showError(box, e);
  }
}

async function onSignOut() {
  try { await api("POST", "/auth/logout", undefined, { quiet401: true }); } catch (_) { /* gone anyway */ }
  try { sessionStorage.removeItem("engram.email"); } catch (_) { /* storage off */ }
  signedOut("");
  toast("Signed out.");
}

function notice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

async function enterApp() {
  state.signedIn = true;
  let email = "";
  try { email = sessionStorage.getItem("engram.email") || ""; } catch (_) { /* storage off */ }
  $("who-name").textContent = email;
  showView("app");
  selectTab(state.tab, false);
  await Promise.all([loadWorkspaces(), loadCollections()]);
}

/* ---- workspaces and collections --------------------------------------------- */

async function loadWorkspaces() {
  const list = $("workspace-list");
  try {
    const r = await api("GET", "/workspaces?limit=100");
    list.replaceChildren(...r.data.map((w) => el("li", {},
      el("span", { class: "ws-name", text: w.name }), " ",
      el("span", { class: "badge", text: w.role }),
      w.personal ? el("span", { class: "badge quiet", text: "this session" }) : null)));
    if (!$("who-name").textContent) {
      const mine = r.data.find((w) => w.personal);
      if (mine) $("who-name").textContent = mine.name;
    }
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: e.message }));
  }
}

async function loadCollections(selectId) {
  const r = await api("GET", "/collections?limit=100");
  state.collections = r.data;
  const want = selectId || (state.current && state.current.id);
  const found = state.collections.find((c) => c.id === want) || state.collections[0] || null;
  renderCollections();
  selectCollection(found, true);
}

function renderCollections() {
  const list = $("collection-list");
  $("collection-empty").hidden = state.collections.length > 0;
  list.replaceChildren(...state.collections.map((c) => {
    const current = state.current && state.current.id === c.id;
    return el("li", { class: current ? "current" : "" },
      el("button", { type: "button", class: "coll-pick", "aria-current": current ? "true" : null,
                     onclick: () => selectCollection(c) },
        el("span", { class: "coll-title", text: c.name }),
        el("span", { class: "muted small", text: plural(c.document_count, "doc") + " · " + plural(c.chunk_count, "chunk") })),
      el("button", { type: "button", class: "icon danger", "aria-label": "Delete collection " + c.name,
                     title: "Delete collection", onclick: () => deleteCollection(c) }, "×"));
  }));
}

function selectCollection(c, quiet) {
  const changed = (state.current && state.current.id) !== (c && c.id);
  state.current = c;
  renderCollections();
  for (const n of document.querySelectorAll(".coll-name")) {
    const every = n.closest("#panel-search, #panel-chat");
    n.textContent = c ? c.name : every ? "every collection" : "none (create one)";
  }
  $("file-input").disabled = !c;
  $("dropzone").classList.toggle("disabled", !c);
  if (changed) {
    state.sessionId = null;
    clearChat();
    state.graph = null;
    $("graph-svg").replaceChildren();
    $("graph-status").textContent = "";
  }
  loadDocuments();
  if (state.tab === "graph") loadGraph();
  if (!quiet && c) toast("Collection " + c.name + " selected.");
}

async function onCreateCollection(ev) {
  ev.preventDefault();
  const input = $("collection-name");
  const name = input.value.trim();
  if (!name) { input.focus(); return; }
  try {
    const c = await api("POST", "/collections", { name });
    input.value = "";
    await loadCollections(c.id);
    toast("Collection " + c.name + " created.");
  } catch (e) {
    toast(e.status === 409 ? "A collection named " + name + " already exists." : e.message);
  }
}

async function deleteCollection(c) {
  if (!window.confirm("Delete the collection " + c.name + " with all its documents?")) return;
  try {
    await api("DELETE", "/collections/" + c.id);
    if (state.current && state.current.id === c.id) state.current = null;
    await loadCollections();
    toast("Collection " + c.name + " deleted.");
  } catch (e) {
    toast(e.message);
  }
}

/* Refresh the counts shown in the sidebar after uploads and deletes. */
async function refreshCollectionCounts() {
  try {
    const r = await api("GET", "/collections?limit=100");
    state.collections = r.data;
    if (state.current) state.current = r.data.find((c) => c.id === state.current.id) || state.current;
    renderCollections();
  } catch (_) { /* the list stays as it was */ }
}

/* ---- documents and uploads --------------------------------------------------- */

const STATUS_LABEL = { pending: "pending", processing: "processing", completed: "completed", failed: "failed" };

function statusBadge(status) {
  return el("span", { class: "status s-" + status, text: STATUS_LABEL[status] || status });
}

async function loadDocuments() {
  const rows = $("doc-rows");
  const c = state.current;
  if (!c) {
    rows.replaceChildren();
    $("doc-empty").hidden = false;
    return;
  }
  try {
    const r = await api("GET", "/documents?collection_id=" + encodeURIComponent(c.id) + "&limit=100");
    if (!state.current || state.current.id !== c.id) return;
    $("doc-empty").hidden = r.data.length > 0;
    rows.replaceChildren(...r.data.map(docRow));
    for (const d of r.data)
      if ((d.status === "pending" || d.status === "processing") && !state.polls.has(d.id)) pollStatus(d.id, null);
  } catch (e) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "error", text: e.message })));
  }
}

function docRow(d) {
  const chunks = d.processing_info ? d.processing_info.chunk_count : 0;
  const title = d.title || d.filename || d.id;
  return el("tr", { "data-id": d.id },
    el("td", { class: "doc-title", "data-label": "Title" },
      el("button", { type: "button", class: "linkish", onclick: () => openChunk({ document_id: d.id, chunk_index: 0, title }),
                     disabled: d.status !== "completed" || !chunks },
        title),
      d.error_message ? el("div", { class: "error small", text: d.error_message }) : null),
    el("td", { "data-label": "Status" }, statusBadge(d.status)),
    el("td", { "data-label": "Chunks", class: "num", text: d.status === "completed" ? chunks : "–" }),
    el("td", { class: "actions" },
      el("button", { type: "button", class: "icon danger", "aria-label": "Delete " + title, title: "Delete document",
                     onclick: () => deleteDocument(d, title) }, "×")));
}

async function deleteDocument(d, title) {
  if (!window.confirm("Delete " + title + "?")) return;
  try {
    await api("DELETE", "/documents/" + d.id);
    toast(title + " deleted.");
    await loadDocuments();
    refreshCollectionCounts();
  } catch (e) {
    toast(e.message);
  }
}

function uploadFiles(files) {
  const c = state.current;
  if (!c) { toast("Create or select a collection first."); return; }
  for (const f of files) uploadOne(c, f);
}

async function uploadOne(c, file) {
  const bar = el("progress", { max: 1, "aria-label": "Progress of " + file.name });
  const text = el("span", { class: "up-status", text: "uploading…" });
  const item = el("li", { class: "upload" },
    el("div", { class: "up-line" }, el("span", { class: "up-name", text: file.name }), text), bar);
  $("upload-list").prepend(item);
  const fd = new FormData();
  fd.append("collection_id", c.id);
  fd.append("file", file, file.name);
  try {
    const d = await api("POST", "/documents", fd);
    if (d.status === "completed") {
      text.textContent = "already in the collection · completed";
      bar.value = 1;
      item.classList.add("done");
      loadDocuments();
      return;
    }
    text.textContent = d.status;
    loadDocuments();
    pollStatus(d.id, { bar, text, item });
  } catch (e) {
    bar.remove();
    text.textContent = "failed: " + e.message;
    item.classList.add("failed");
  }
}

/* Polls GET /documents/{id}/status until completed or failed, updating the
 * upload item (if any), then the document list and the counts. The pace
 * slows with time and with the number of documents polled at once, so a
 * big drop stays well under the server's per-user rate limit; a 429, 503
 * or a lost connection waits (Retry-After when given) and tries again. */
function pollStatus(id, ui) {
  let delay = 300;
  const tick = async () => {
    if (!state.signedIn) return;
    let s;
    try {
      s = await api("GET", "/documents/" + id + "/status");
    } catch (e) {
      if (state.signedIn && (e.status === 429 || e.status === 503 || e.status === 0)) {
        if (ui) ui.text.textContent = "waiting for the server…";
        state.polls.set(id, setTimeout(tick, Math.max(e.retryAfter * 1000, 3000)));
        return;
      }
      state.polls.delete(id);
      if (ui) { ui.text.textContent = "status unknown: " + e.message; ui.item.classList.add("failed"); }
      return;
    }
    const p = s.processing_info && typeof s.processing_info.progress === "number" ? s.processing_info.progress : null;
    if (ui) {
      if (p !== null) ui.bar.value = p; else ui.bar.removeAttribute("value");
      if (s.status === "completed") {
        ui.bar.value = 1;
        ui.text.textContent = "completed · " + plural(s.chunk_count, "chunk");
        ui.item.classList.add("done");
      } else if (s.status === "failed") {
        ui.text.textContent = "failed: " + (s.error_message || "unknown reason");
        ui.item.classList.add("failed");
      } else {
        ui.text.textContent = s.status + (p !== null ? " " + Math.round(p * 100) + "%" : "");
      }
    }
    if (s.status === "completed" || s.status === "failed") {
      state.polls.delete(id);
      await loadDocuments();
      refreshCollectionCounts();
      return;
    }
    delay = Math.min(Math.max(delay * 1.4, state.polls.size * 150), 10000);
    if (state.polls.size <= 4) delay = Math.min(delay, 2000);
    state.polls.set(id, setTimeout(tick, delay));
  };
  state.polls.set(id, setTimeout(tick, 150));
}

function setupDropzone() {
  const z = $("dropzone");
  const stop = (ev) => { ev.preventDefault(); ev.stopPropagation(); };
  for (const t of ["dragenter", "dragover"])
    z.addEventListener(t, (ev) => { stop(ev); if (state.current) z.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) z.addEventListener(t, (ev) => { stop(ev); z.classList.remove("over"); });
  z.addEventListener("drop", (ev) => {
    if (ev.dataTransfer && ev.dataTransfer.files.length) uploadFiles(ev.dataTransfer.files);
  });
  /* a file dropped beside the zone must not replace the page */
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => ev.preventDefault());
  $("file-input").addEventListener("change", (ev) => {
    uploadFiles(ev.target.files);
    ev.target.value = "";
  });
}

/* ---- the chunk viewer (sources, results, documents) ------------------------ */

const viewer = { doc: null, index: 0, title: "", count: 0 };

/* src: {document_id, chunk_index, chunk_id?, title?} */
async function openChunk(src) {
  const dlg = $("chunk-dialog");
  viewer.doc = src.document_id;
  viewer.index = src.chunk_index || 0;
  viewer.title = src.title || "";
  if (!dlg.open) dlg.showModal();
  await showChunk();
}

async function showChunk() {
  const body = $("chunk-body");
  $("chunk-title").textContent = viewer.title || "Document";
  $("chunk-meta").textContent = "Loading…";
  body.replaceChildren();
  try {
    if (!viewer.title) {
      const d = await api("GET", "/documents/" + viewer.doc);
      viewer.title = d.title || d.filename || "";
      $("chunk-title").textContent = viewer.title;
    }
    const r = await api("GET", "/documents/" + viewer.doc + "/chunks?limit=1&offset=" + viewer.index);
    viewer.count = r.pagination.total;
    const ch = r.data[0];
    if (!ch) throw new Error("This chunk no longer exists.");
    const meta = ch.metadata || {};
    $("chunk-meta").textContent = "Chunk " + (ch.chunk_index + 1) + " of " + viewer.count +
      (ch.token_count ? " · " + plural(ch.token_count, "word") : "") + (meta.section ? " · " + meta.section : "");
    body.textContent = ch.content;
  } catch (e) {
    $("chunk-meta").textContent = "";
    body.replaceChildren(el("p", { class: "error", text: e.message }));
  }
  $("chunk-prev").disabled = viewer.index <= 0;
  $("chunk-next").disabled = viewer.index + 1 >= viewer.count;
}

/* ---- search ---------------------------------------------------------------- */

async function runSearch() {
  const q = $("search-query").value.trim();
  if (!q) { $("search-query").focus(); return; }
  const mode = document.querySelector('input[name="mode"]:checked').value;
  const explain = $("search-explain").checked;
  let topK = parseInt($("search-topk").value, 10);
  if (!(topK >= 1 && topK <= 100)) topK = 10;
  const req = { query: q, mode, top_k: topK, explain };
  if (state.current) req.collection_id = state.current.id;
  state.lastSearch = q;
  const err = $("search-error");
  err.hidden = true;
  $("search-status").textContent = "Searching…";
  $("search-btn").disabled = true;
  try {
    const r = await api("POST", "/retrievals", req);
    renderResults(r, explain);
  } catch (e) {
    $("search-results").replaceChildren();
    $("search-graph").hidden = true;
    $("search-status").textContent = "";
    if (e.status === 422 && mode !== "hybrid" && /not available|not enabled|graph|embed/i.test(e.message))
      showError(err, { message: "The " + mode + " mode cannot run here: " + e.message });
    else showError(err, e);
  } finally {
    $("search-btn").disabled = false;
  }
}

/* One side of an explain breakdown: score and rank, or why there is none. */
function side(score, rank, notRun) {
  if (rank) return fmtScore(score) + " (rank " + rank + ")";
  return notRun ? "– (not searched in this mode)" : "– (not found by this side)";
}

function renderResults(r, explain) {
  const ms = typeof r.processing_time_ms === "number" ? " in " + r.processing_time_ms.toFixed(1) + " ms" : "";
  $("search-status").textContent = r.total_results
    ? plural(r.total_results, "result") + " (" + r.mode + ")" + ms
    : "Nothing found (" + r.mode + ").";
  const g = $("search-graph");
  g.hidden = !r.graph_context;
  $("search-graph-text").textContent = r.graph_context || "";
  $("search-results").replaceChildren(...r.results.map((h, i) => {
    const title = (h.document && (h.document.title || h.document.filename)) || "document";
    const src = { document_id: h.document && h.document.id, chunk_index: h.chunk_index, title };
    const text = h.content.length > 600 ? h.content.slice(0, 600) + "…" : h.content;
    const x = h.explain;
    return el("li", { class: "result" },
      el("div", { class: "result-head" },
        el("span", { class: "rank", text: i + 1 }),
        el("button", { type: "button", class: "linkish", onclick: () => openChunk(src) }, title),
        el("span", { class: "muted small", text: "chunk " + (h.chunk_index + 1) }),
        h.metadata && h.metadata.graph_sourced ? el("span", { class: "badge", text: "graph" }) : null,
        el("span", { class: "score", title: "score", text: fmtScore(h.score) })),
      el("p", { class: "snippet", text }),
      explain && x ? el("dl", { class: "explain" },
        el("dt", { text: "BM25" }), el("dd", { text: side(x.bm25, x.bm25_rank, r.mode === "semantic") }),
        el("dt", { text: "Vector" }), el("dd", { text: side(x.vector, x.vector_rank, r.mode === "keyword") })) : null);
  }));
}

/* ---- chat -------------------------------------------------------------------- */

function clearChat() {
  const log = $("chat-log");
  log.replaceChildren(el("p", { id: "chat-empty", class: "muted center", text: "Ask a question about your documents." }));
}

/* Calls onFrame(type, data) for each SSE frame of a fetch Response. */
async function readEvents(res, onFrame) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const flush = (block) => {
    let type = "message";
    const data = [];
    for (const raw of block.split("\n")) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (!line || line.startsWith(":")) continue;
      const c = line.indexOf(":");
      const field = c < 0 ? line : line.slice(0, c);
      let value = c < 0 ? "" : line.slice(c + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    let obj;
    try { obj = JSON.parse(data.join("\n")); } catch (_) { return; }
    onFrame(obj.type || type, obj);
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      flush(buf.slice(0, at));
      buf = buf.slice(at + 2);
    }
  }
  buf += dec.decode();
  if (buf.trim()) flush(buf);
}

function chatMessage(role, text) {
  const e = $("chat-empty");
  if (e) e.remove();
  const body = el("div", { class: "msg-text", text: text || "" });
  const m = el("div", { class: "msg " + role }, el("div", { class: "msg-who", text: role === "user" ? "You" : "engram" }), body);
  $("chat-log").append(m);
  m.scrollIntoView({ block: "end" });
  return { m, body };
}

function sourceButton(s) {
  const label = "[" + s.n + "] " + (s.title || "document") + " · chunk " + (s.chunk_index + 1);
  return el("button", { type: "button", class: "source", title: "score " + fmtScore(s.score),
                        onclick: () => openChunk(s) }, label);
}

/* Turns "[n]" markers of a finished answer into buttons opening source n. */
function linkMarkers(body, text, sources) {
  const byN = new Map(sources.map((s) => [s.n, s]));
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const s = byN.get(parseInt(m[1], 10));
    if (!s) continue;
    parts.push(text.slice(last, m.index));
    parts.push(el("button", { type: "button", class: "marker", "aria-label": "Source " + s.n + ": " + (s.title || "document"),
                              onclick: () => openChunk(s) }, m[0]));
    last = m.index + m[0].length;
  }
  if (!parts.length) return;
  parts.push(text.slice(last));
  body.replaceChildren(...parts);
}

async function sendChat(ev) {
  if (ev) ev.preventDefault();
  const input = $("chat-input");
  const message = input.value.trim();
  if (!message || state.chatAbort) return;
  input.value = "";
  chatMessage("user", message);
  const { m, body } = chatMessage("assistant", "");
  body.setAttribute("aria-busy", "true");
  body.classList.add("streaming");
  const req = {
    message, stream: true, include_memory: $("chat-memory").checked,
    retrieval: { mode: $("chat-mode").value },
  };
  if (state.current) req.collection_id = state.current.id;
  if (state.sessionId) req.session_id = state.sessionId;
  const ctl = new AbortController();
  state.chatAbort = ctl;
  $("chat-stop").hidden = false;
  $("chat-send").disabled = true;
  let text = "";
  let sources = [];
  let meta = null;
  let failure = null;
  try {
    const res = await api("POST", "/chat", req, { raw: true, signal: ctl.signal, accept: "text/event-stream" });
    const ct = res.headers.get("Content-Type") || "";
    if (!ct.includes("text/event-stream")) {
      const j = await res.json(); /* a server answering JSON despite stream true */
      text = j.response || "";
      sources = j.sources || [];
      meta = j.metadata || null;
      if (j.session_id) state.sessionId = j.session_id;
      body.textContent = text;
    } else {
      await readEvents(res, (type, d) => {
        if (type === "sources") {
          sources = (d.sources || []).map((s, i) => Object.assign({ n: i + 1 }, s));
        } else if (type === "delta") {
          const piece = d.delta !== undefined ? d.delta : d.content || "";
          text += piece;
          body.append(piece);
          m.scrollIntoView({ block: "end" });
        } else if (type === "done") {
          meta = d.metadata || {};
          if (d.session_id) state.sessionId = d.session_id;
        } else if (type === "error") {
          failure = d.error || "the answer was interrupted";
        }
      });
      if (!meta && !failure) failure = "the connection closed before the answer was complete";
    }
  } catch (e) {
    if (e.name === "AbortError") failure = "stopped";
    else failure = e.message;
  } finally {
    state.chatAbort = null;
    $("chat-stop").hidden = true;
    $("chat-send").disabled = false;
    body.removeAttribute("aria-busy");
    body.classList.remove("streaming");
  }
  if (text) linkMarkers(body, text, sources);
  else if (!failure) body.textContent = "(no answer)";
  if (failure) m.append(el("p", { class: "error", role: "alert", text: failure === "stopped" ? "Stopped." : "Error: " + failure }));
  if (sources.length)
    m.append(el("div", { class: "sources" }, el("span", { class: "muted small", text: "Sources" }),
      el("ul", { class: "plain source-list" }, ...sources.map((s) => el("li", {}, sourceButton(s))))));
  if (meta && meta.model)
    m.append(el("p", { class: "muted small", text: meta.model + (meta.latency_ms !== undefined ? " · " + meta.latency_ms + " ms" : "") +
      (meta.retrieval_fallback_from ? " · " + meta.retrieval_fallback_from + " was not available, keyword ran" : "") }));
  m.scrollIntoView({ block: "end" });
  input.focus();
}

/* ---- memories ------------------------------------------------------------------ */

async function loadMemories() {
  const list = $("memory-list");
  try {
    const r = await api("GET", "/memories?limit=100");
    $("memory-status").textContent = r.data.length ? plural(r.pagination.total, "memory", "memories") : "No memories yet.";
    list.replaceChildren(...r.data.map((mem) => el("li", { class: "memory" },
      el("div", { class: "memory-text" },
        el("p", { text: mem.content }),
        el("span", { class: "badge", text: mem.type }),
        el("span", { class: "muted small", text: " reliability " + mem.reliability + " · used " + plural(mem.access_count, "time") })),
      el("button", { type: "button", class: "icon danger", "aria-label": "Delete memory: " + mem.content.slice(0, 60),
                     title: "Delete memory", onclick: () => deleteMemory(mem) }, "×"))));
  } catch (e) {
    $("memory-status").textContent = "";
    list.replaceChildren(el("li", { class: "error", text: e.message }));
  }
}

async function onAddMemory(ev) {
  ev.preventDefault();
  const content = $("memory-content").value.trim();
  if (!content) { $("memory-content").focus(); return; }
  let rel = parseFloat($("memory-reliability").value);
  if (!(rel >= 0 && rel <= 1)) rel = 0.8;
  try {
    await api("POST", "/memories", { type: $("memory-type").value, content, reliability: rel });
    $("memory-content").value = "";
    toast("Memory added.");
    await loadMemories();
  } catch (e) {
    $("memory-status").textContent = "Could not add: " + e.message;
  }
}

async function deleteMemory(mem) {
  try {
    await api("DELETE", "/memories/" + mem.id);
    toast("Memory deleted.");
    await loadMemories();
  } catch (e) {
    toast(e.message);
  }
}

/* ---- the knowledge graph --------------------------------------------------------- */

const GRAPH_MAX_NODES = 150;
const GRAPH_W = 800, GRAPH_H = 560;

/* Positions nodes (x, y set in place; drawGraph scales them to the frame)
 * with Fruchterman and Reingold's forces: pairs closer than 3k repel
 * (k^2/d; the cut keeps far pieces from drifting apart), relations pull
 * (d^2/k), a pull to the centre keeps separate pieces together, and the
 * step shrinks each round. Same graph in, same drawing out. */
function layoutGraph(nodes, edges) {
  const n = nodes.length;
  nodes.forEach((nd, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1);
    const r = 100 * (0.6 + (0.4 * ((i * 7) % 5)) / 4);
    nd.x = Math.cos(a) * r;
    nd.y = Math.sin(a) * r;
  });
  if (n < 2) return;
  const k = 40, cut2 = 9 * k * k, gravity = 0.1;
  let temp = 40;
  const rounds = n > 100 ? 200 : 300;
  for (let it = 0; it < rounds; it++) {
    const fx = new Float64Array(n), fy = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let dx = nodes[i].x - nodes[j].x, dy = nodes[i].y - nodes[j].y;
        let d2 = dx * dx + dy * dy;
        if (d2 > cut2) continue;
        if (d2 < 0.01) { dx = 0.1 * (i - j); dy = 0.1; d2 = dx * dx + dy * dy; }
        const f = (k * k) / d2;
        fx[i] += dx * f; fy[i] += dy * f;
        fx[j] -= dx * f; fy[j] -= dy * f;
      }
    }
    for (const e of edges) {
      const dx = nodes[e.a].x - nodes[e.b].x, dy = nodes[e.a].y - nodes[e.b].y;
      const f = Math.sqrt(dx * dx + dy * dy) / k;
      fx[e.a] -= dx * f; fy[e.a] -= dy * f;
      fx[e.b] += dx * f; fy[e.b] += dy * f;
    }
    for (let i = 0; i < n; i++) {
      fx[i] -= nodes[i].x * gravity;
      fy[i] -= nodes[i].y * gravity;
      const len = Math.sqrt(fx[i] * fx[i] + fy[i] * fy[i]) || 1;
      const step = Math.min(len, temp);
      nodes[i].x += (fx[i] / len) * step;
      nodes[i].y += (fy[i] / len) * step;
    }
    temp = Math.max(0.5, temp * 0.98);
  }
}

async function loadGraph() {
  const c = state.current;
  const svg = $("graph-svg");
  const status = $("graph-status");
  if (!c) {
    svg.replaceChildren();
    status.textContent = "Create or select a collection to see its knowledge graph.";
    return;
  }
  status.textContent = "Loading the graph…";
  let g;
  try {
    g = await api("GET", "/collections/" + c.id + "/graph/export?format=json");
  } catch (e) {
    svg.replaceChildren();
    status.textContent = e.status === 404 && !/collection/i.test(e.message)
      ? "This server has no knowledge graph." : "The graph could not be loaded: " + e.message;
    return;
  }
  if (!state.current || state.current.id !== c.id) return;
  const all = (g.nodes || []).slice().sort((a, b) => b.mention_count - a.mention_count);
  const nodes = all.slice(0, GRAPH_MAX_NODES).map((x) => Object.assign({}, x));
  const index = new Map(nodes.map((x, i) => [x.id, i]));
  const edges = [];
  for (const e of g.edges || []) {
    const a = index.get(e.source), b = index.get(e.target);
    if (a !== undefined && b !== undefined && a !== b) edges.push({ a, b, relation: e.relation, weight: e.weight });
  }
  if (!nodes.length) {
    svg.replaceChildren();
    status.textContent = "No entities in this collection yet (the graph is built as documents are processed).";
    return;
  }
  layoutGraph(nodes, edges);
  state.graph = { nodes, edges, index, coll: c.id };
  status.textContent = plural(all.length, "entity", "entities") + ", " +
    plural((g.edges || []).length, "relation") + (all.length > nodes.length ? " (the " + nodes.length + " most mentioned are drawn)" : "") + ".";
  drawGraph();
}

function drawGraph() {
  const { nodes, edges } = state.graph;
  const svg = $("graph-svg");
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const nd of nodes) {
    x0 = Math.min(x0, nd.x); x1 = Math.max(x1, nd.x);
    y0 = Math.min(y0, nd.y); y1 = Math.max(y1, nd.y);
  }
  /* room on the right for the labels, which are drawn beside the dots */
  const padL = 30, padR = 130, padY = 30;
  const s = Math.min((GRAPH_W - padL - padR) / Math.max(x1 - x0, 1), (GRAPH_H - 2 * padY) / Math.max(y1 - y0, 1), 3);
  const px = (nd) => padL + (GRAPH_W - padL - padR - s * (x1 - x0)) / 2 + (nd.x - x0) * s;
  const py = (nd) => (GRAPH_H - s * (y1 - y0)) / 2 + (nd.y - y0) * s;
  const maxM = Math.max(...nodes.map((nd) => nd.mention_count), 1);
  const lines = svgEl("g", { class: "edges" });
  for (const e of edges) {
    const a = nodes[e.a], b = nodes[e.b];
    const ln = svgEl("line", { x1: px(a), y1: py(a), x2: px(b), y2: py(b) });
    ln.append(svgEl("title"));
    ln.firstChild.textContent = a.name + " – " + e.relation + " – " + b.name;
    e.el = ln;
    lines.append(ln);
  }
  const dots = svgEl("g", { class: "nodes" });
  nodes.forEach((nd, i) => {
    const r = 5 + 9 * Math.sqrt(nd.mention_count / maxM);
    const g = svgEl("g", { class: "node t-" + nd.type, tabindex: 0, role: "button",
                           transform: "translate(" + px(nd).toFixed(1) + " " + py(nd).toFixed(1) + ")",
                           "aria-label": nd.name + " (" + nd.type + ", " + plural(nd.mention_count, "mention") + ")" });
    g.append(svgEl("circle", { r: r.toFixed(1) }));
    const label = svgEl("text", { x: (r + 3).toFixed(1), y: 4 });
    label.textContent = nd.name.length > 28 ? nd.name.slice(0, 27) + "…" : nd.name;
    g.append(label);
    g.addEventListener("click", () => selectEntity(i));
    g.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); selectEntity(i); }
    });
    nd.el = g;
    dots.append(g);
  });
  svg.replaceChildren(lines, dots);
  applyGraphFilter();
}

function applyGraphFilter() {
  if (!state.graph) return;
  const q = $("graph-filter").value.trim().toLowerCase();
  for (const nd of state.graph.nodes) nd.el.classList.toggle("dim", !!q && !nd.name.toLowerCase().includes(q));
}

async function selectEntity(i) {
  const gr = state.graph;
  const nd = gr.nodes[i];
  const near = new Set([i]);
  for (const e of gr.edges) {
    const on = e.a === i || e.b === i;
    e.el.classList.toggle("hl", on);
    if (on) { near.add(e.a); near.add(e.b); }
  }
  for (const [k, x] of gr.nodes.entries()) {
    x.el.classList.toggle("selected", k === i);
    x.el.classList.toggle("near", k !== i && near.has(k));
  }
  const box = $("graph-detail");
  box.replaceChildren(el("h3", { text: nd.name }), el("p", { class: "muted", text: "Loading relations…" }));
  try {
    const d = await api("GET", "/collections/" + gr.coll + "/graph/entities/" + nd.id);
    const rels = (d.relations || []).slice().sort((a, b) => b.weight - a.weight);
    box.replaceChildren(
      el("h3", { text: d.name }),
      el("p", { class: "muted", text: d.type + " · " + plural(d.mention_count, "mention") + " · in " + plural((d.chunk_ids || []).length, "chunk") }),
      rels.length
        ? el("ul", { class: "plain relations" }, ...rels.map((r) => {
            const j = gr.index.get(r.target_id);
            return el("li", {},
              el("span", { class: "rel", text: r.relation }), " ",
              j !== undefined
                ? el("button", { type: "button", class: "linkish", onclick: () => { selectEntity(j); gr.nodes[j].el.focus(); } }, r.target_name)
                : el("span", { text: r.target_name }),
              el("span", { class: "muted small", text: " ×" + fmtScore(r.weight) }));
          }))
        : el("p", { class: "muted", text: "No relations." }));
  } catch (e) {
    box.replaceChildren(el("h3", { text: nd.name }), el("p", { class: "error", text: e.message }));
  }
}

/* ---- tabs -------------------------------------------------------------------------- */

const TABS = ["documents", "search", "chat", "memories", "graph"];

function selectTab(name, focus) {
  state.tab = name;
  for (const t of TABS) {
    const on = t === name;
    const tab = $("tab-" + t);
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    $("panel-" + t).hidden = !on;
  }
  if (focus) $("tab-" + name).focus();
  if (!state.signedIn) return;
  if (name === "memories") loadMemories();
  if (name === "graph" && (!state.graph || !state.current || state.graph.coll !== state.current.id)) loadGraph();
  if (name === "documents") loadDocuments();
}

function setupTabs() {
  for (const t of TABS) $("tab-" + t).addEventListener("click", () => selectTab(t, false));
  $("tabs").addEventListener("keydown", (ev) => {
    const i = TABS.indexOf(state.tab);
    let j = -1;
    if (ev.key === "ArrowRight") j = (i + 1) % TABS.length;
    else if (ev.key === "ArrowLeft") j = (i + TABS.length - 1) % TABS.length;
    else if (ev.key === "Home") j = 0;
    else if (ev.key === "End") j = TABS.length - 1;
    if (j < 0) return;
    ev.preventDefault();
    selectTab(TABS[j], true);
  });
}

/* ---- start ---------------------------------------------------------------------------- */

function setup() {
  $("signin-form").addEventListener("submit", onSignIn);
  $("register-btn").addEventListener("click", onRegister);
  $("signout-btn").addEventListener("click", onSignOut);
  $("notice-close").addEventListener("click", () => { $("notice").hidden = true; });
  $("collection-form").addEventListener("submit", onCreateCollection);
  $("docs-refresh").addEventListener("click", () => { loadDocuments(); refreshCollectionCounts(); });
  setupDropzone();
  $("search-form").addEventListener("submit", (ev) => { ev.preventDefault(); runSearch(); });
  const rerun = () => { if (state.lastSearch && $("search-query").value.trim()) runSearch(); };
  $("search-explain").addEventListener("change", rerun);
  for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener("change", rerun);
  $("chat-form").addEventListener("submit", sendChat);
  $("chat-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendChat(); }
  });
  $("chat-stop").addEventListener("click", () => { if (state.chatAbort) state.chatAbort.abort(); });
  $("chat-new").addEventListener("click", () => { state.sessionId = null; clearChat(); $("chat-input").focus(); });
  $("memory-form").addEventListener("submit", onAddMemory);
  $("graph-filter").addEventListener("input", applyGraphFilter);
  $("graph-reload").addEventListener("click", loadGraph);
  $("chunk-close").addEventListener("click", () => $("chunk-dialog").close());
  $("chunk-prev").addEventListener("click", () => { if (viewer.index > 0) { viewer.index--; showChunk(); } });
  $("chunk-next").addEventListener("click", () => { viewer.index++; showChunk(); });
  $("chunk-dialog").addEventListener("click", (ev) => { if (ev.target === $("chunk-dialog")) $("chunk-dialog").close(); });
  setupTabs();
  selectTab("documents", false);
}

async function boot() {
  setup();
  try {
    await api("GET", "/workspaces?limit=1", undefined, { quiet401: true });
  } catch (e) {
    signedOut(e.status === 401 ? "" : e.message);
    return;
  }
  try {
    await enterApp();
  } catch (e) {
    toast(e.message);
  }
}

document.addEventListener("DOMContentLoaded", boot);
