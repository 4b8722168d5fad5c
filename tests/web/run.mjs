// run.mjs - engram's web page in headless Chromium (Debian's chromium,
// driven by playwright-core), against a real server started by
// tests/extra/web.sh.
//
// Environment: ENGRAM_TEST_URL (http://127.0.0.1:PORT), ENGRAM_TEST_EMAIL and
// ENGRAM_TEST_PASSWORD (a registered user), ENGRAM_ARTIFACTS (where the
// screenshots go), CHROMIUM (default /usr/bin/chromium).
//
// What a user does, in order: open the page, sign in (a wrong password
// first), create a collection, upload a file through the file input, watch
// its status reach completed, search (keyword, explain on, then graph),
// chat (the answer streams in over SSE; a source opens its chunk), add and
// delete a memory, open the knowledge graph and select an entity, look at
// it on a phone-sized screen, sign out. Each step prints PASS name or
// FAIL name: why; a failed step stops the run (later steps need it). The
// page must log no console errors (a CSP violation would be one).
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const URL = process.env.ENGRAM_TEST_URL;
const EMAIL = process.env.ENGRAM_TEST_EMAIL;
const PASSWORD = process.env.ENGRAM_TEST_PASSWORD;
const ART = process.env.ENGRAM_ARTIFACTS || "build/test-artifacts/web";
const STEP_MS = 15000;
if (!URL || !EMAIL || !PASSWORD) {
  console.log("FAIL web.setup: ENGRAM_TEST_URL, ENGRAM_TEST_EMAIL and ENGRAM_TEST_PASSWORD are needed");
  process.exit(1);
}
mkdirSync(ART, { recursive: true });

let failed = 0;
class StepFailure extends Error {}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`PASS web.${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    const why = (e && e.message ? e.message : String(e)).split("\n").slice(0, 6).join(" | ");
    console.log(`FAIL web.${name}: ${why}`);
    throw new StepFailure(name);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const DOC = [
  "# Notes on the Analytical Engine",
  "",
  "Ada Lovelace wrote the first published program for the Analytical Engine, a machine designed by",
  "Charles Babbage in London. The engine used punched cards borrowed from the Jacquard loom.",
  "",
  "## The mill and the store",
  "",
  "The mill performed the arithmetic while the store held one thousand numbers of fifty digits.",
  "Luigi Menabrea described the engine in a paper that Ada Lovelace translated and annotated.",
  "",
].join("\n");

async function main() {
  const profile = mkdtempSync(join(tmpdir(), "engram-web-chromium-"));
  const consoleErrors = [];
  let ctx;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1280, height: 860 },
      timeout: 30000,
    });
  } catch (e) {
    console.log("FAIL web.launch_chromium: " + String(e.message || e).split("\n")[0]);
    rmSync(profile, { recursive: true, force: true });
    process.exit(1);
  }
  ctx.setDefaultTimeout(STEP_MS);
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push("page error: " + e.message));
  const shot = (name) => page.screenshot({ path: join(ART, name + ".png"), fullPage: true });
  const collName = "web-test " + Date.now().toString(36);

  try {
    await step("served_with_headers", async () => {
      const r = await fetch(URL + "/");
      check(r.status === 200, "GET / answered " + r.status);
      check((r.headers.get("content-type") || "").startsWith("text/html"), "content-type " + r.headers.get("content-type"));
      const csp = r.headers.get("content-security-policy") || "";
      check(/default-src 'none'/.test(csp) && /script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), "CSP: " + csp);
      const etag = r.headers.get("etag");
      check(etag && /^"[0-9a-f]+"$/.test(etag), "ETag: " + etag);
      const again = await fetch(URL + "/", { headers: { "If-None-Match": etag } });
      check(again.status === 304, "revalidation answered " + again.status);
      const js = await fetch(URL + "/assets/app.js");
      check(js.status === 200 && (js.headers.get("content-type") || "").startsWith("text/javascript"), "app.js: " + js.status + " " + js.headers.get("content-type"));
      const css = await fetch(URL + "/assets/app.css");
      check(css.status === 200 && (css.headers.get("content-type") || "").startsWith("text/css"), "app.css: " + css.status);
      const none = await fetch(URL + "/assets/nothing.js");
      check(none.status === 404, "a missing asset answered " + none.status);
      const idx = await fetch(URL + "/assets/index.html");
      check(idx.status === 404, "/assets/index.html answered " + idx.status + " (the page has one address)");
      const list = await fetch(URL + "/", { headers: { "If-None-Match": '"0000", W/' + etag } });
      check(list.status === 304, "a list naming the weak ETag answered " + list.status);
      const other = await fetch(URL + "/", { headers: { "If-None-Match": '"0000"' } });
      check(other.status === 200 && (await other.text()).includes("<!doctype html>"), "another ETag answered " + other.status);
      const head = await fetch(URL + "/", { method: "HEAD" });
      check(head.status === 200 && (await head.text()) === "", "HEAD / answered " + head.status);
    });

    await step("sign_in_form_first", async () => {
      await page.goto(URL + "/");
      await page.locator("#signin-form").waitFor({ state: "visible" });
      check(await page.locator("#app-view").isHidden(), "the app shows before signing in");
    });

    await step("wrong_password_message", async () => {
      await page.getByLabel("Email").fill(EMAIL);
      await page.getByLabel("Password").fill("not-the-password");
      await page.getByRole("button", { name: "Sign in" }).click();
      const err = page.locator("#signin-error");
      await err.waitFor({ state: "visible" });
      check(/wrong email or password/i.test(await err.textContent()), "message: " + (await err.textContent()));
      await shot("01-sign-in");
    });

    await step("sign_in", async () => {
      await page.getByLabel("Password").fill(PASSWORD);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.locator("#app-view").waitFor({ state: "visible" });
      await page.locator("#workspace-list li").first().waitFor();
      const ws = await page.locator("#workspace-list").textContent();
      check(/admin/.test(ws), "the personal workspace with role admin is not listed: " + ws);
    });

    await step("create_collection", async () => {
      await page.getByLabel("New collection").fill(collName);
      await page.getByRole("button", { name: "Create", exact: true }).click();
      const current = page.locator('.coll-pick[aria-current="true"]');
      await current.filter({ hasText: collName }).waitFor();
      await page.locator("#panel-documents .coll-name", { hasText: collName }).waitFor();
    });

    await step("upload_status_completed", async () => {
      await page.locator("#file-input").setInputFiles({ name: "engine-notes.md", mimeType: "text/markdown", buffer: Buffer.from(DOC) });
      const item = page.locator(".upload", { hasText: "engine-notes.md" });
      await item.waitFor();
      await item.locator(".up-status", { hasText: /completed/ }).waitFor({ timeout: 30000 });
      const row = page.locator("#doc-rows tr", { hasText: "engine-notes.md" });
      await row.locator(".status", { hasText: "completed" }).waitFor();
      const chunks = (await row.locator('td[data-label="Chunks"]').textContent()).trim();
      check(/^[1-9]\d*$/.test(chunks), "chunks column: " + chunks);
      check((await item.locator("progress").getAttribute("value")) === "1", "the progress bar did not reach 1");
      await page.locator('.coll-pick[aria-current="true"]', { hasText: "1 doc" }).waitFor();
      await shot("02-documents");
    });

    await step("drop_upload_and_delete", async () => {
      /* a drop of two files: one text file that is processed, one binary
       * file the server refuses (415) with a message shown on its line */
      await page.evaluate(() => {
        const dt = new DataTransfer();
        dt.items.add(new File(["Babbage also planned a Difference Engine.\n"], "dropped.txt", { type: "text/plain" }));
        dt.items.add(new File([new Uint8Array([0, 1, 2, 3, 0, 255, 0, 7])], "blob.bin", { type: "application/octet-stream" }));
        const z = document.getElementById("dropzone");
        for (const t of ["dragenter", "dragover", "drop"])
          z.dispatchEvent(new DragEvent(t, { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      await page.locator(".upload", { hasText: "dropped.txt" }).locator(".up-status", { hasText: /completed/ }).waitFor();
      const bad = page.locator(".upload.failed", { hasText: "blob.bin" });
      await bad.waitFor();
      const why = await bad.locator(".up-status").textContent();
      check(/failed: .{8,}/.test(why) && !/\{/.test(why), "the refused file's line: " + why);
      const row = page.locator("#doc-rows tr", { hasText: "dropped.txt" });
      await row.waitFor();
      page.once("dialog", (d) => d.accept());
      await row.getByRole("button", { name: "Delete dropped.txt" }).click();
      await row.waitFor({ state: "detached" });
      check((await page.locator("#doc-rows tr", { hasText: "engine-notes.md" }).count()) === 1, "the other document went too");
    });

    await step("search_keyword_explain", async () => {
      await page.getByRole("tab", { name: "Search" }).click();
      await page.getByRole("searchbox", { name: /^Search/ }).fill("punched cards Jacquard");
      await page.locator('label[for="mode-keyword"]').click();
      await page.getByRole("button", { name: "Search", exact: true }).click();
      const first = page.locator("#search-results .result").first();
      await first.waitFor();
      check(/Jacquard/.test(await first.locator(".snippet").textContent()), "the first result lacks the words searched");
      check(/keyword/.test(await page.locator("#search-status").textContent()), "status: " + (await page.locator("#search-status").textContent()));
      check((await page.locator("dl.explain").count()) === 0, "explain shown before it was asked for");
      await page.getByLabel("Explain scores").check();
      await page.locator("#search-results dl.explain").first().waitFor();
      const x = await page.locator("#search-results dl.explain").first().textContent();
      check(/BM25\s*[\d.]+ \(rank 1\)/.test(x) && /Vector.*not searched/.test(x), "keyword explain: " + x);
      await page.locator('label[for="mode-hybrid"]').click(); /* re-runs the search */
      await page.locator("#search-status", { hasText: "(hybrid)" }).waitFor();
      const hx = await page.locator("#search-results dl.explain").first().textContent();
      check(/BM25\s*[\d.]+ \(rank 1\)/.test(hx) && /Vector\s*[\d.]+ \(rank \d+\)/.test(hx), "hybrid explain: " + hx);
      await shot("03-search");
    });

    await step("search_graph_mode_answers", async () => {
      await page.locator('label[for="mode-graph"]').click(); /* re-runs the search */
      await page.waitForFunction(() => {
        const s = document.getElementById("search-status").textContent;
        const e = document.getElementById("search-error");
        return /graph/.test(s) || !e.hidden;
      });
      const err = page.locator("#search-error");
      if (await err.isVisible()) {
        const t = await err.textContent();
        check(t.length > 10 && !/\{/.test(t), "the error is not a readable message: " + t);
      }
      await page.locator('label[for="mode-keyword"]').click();
    });

    await step("search_error_message", async () => {
      /* a 422 (what a build without a mode answers) is shown as words */
      await page.route("**/api/v1/retrievals", (route) => route.fulfill({
        status: 422, contentType: "application/json",
        body: JSON.stringify({ detail: "mode graph is not available in this build",
                               error: { code: "VALIDATION_ERROR", message: "mode graph is not available in this build", details: { field: "mode" } } }),
      }));
      await page.locator('label[for="mode-graph"]').click();
      const err = page.locator("#search-error");
      await err.waitFor({ state: "visible" });
      const t = await err.textContent();
      check(/graph mode cannot run here: mode graph is not available in this build/.test(t), "message: " + t);
      check((await page.locator("#search-results .result").count()) === 0, "stale results left beside the error");
      await page.unroute("**/api/v1/retrievals");
      await page.locator('label[for="mode-keyword"]').click();
      await err.waitFor({ state: "hidden" });
      await page.locator("#search-results .result").first().waitFor();
    });

    await step("sse_parser_split_frames", async () => {
      /* frames cut at every 5 bytes, CRLF line ends, a keep-alive comment,
       * a character of 3 UTF-8 bytes split between reads */
      const got = await page.evaluate(async () => {
        const text = ": keep-alive\r\n\r\nevent: sources\r\ndata: {\"type\":\"sources\",\"sources\":[]}\r\n\r\n" +
          "event: delta\ndata: {\"type\":\"delta\",\"delta\":\"caf\u00e9 \u20ac\"}\n\n" +
          "event: delta\ndata: {\"type\":\"delta\",\"delta\":\"5\"}\n\nevent: done\ndata: {\"type\":\"done\",\"session_id\":\"s\"}\n\n";
        const bytes = new TextEncoder().encode(text);
        let at = 0;
        const body = new ReadableStream({ pull(c) { if (at >= bytes.length) c.close(); else { c.enqueue(bytes.slice(at, at + 5)); at += 5; } } });
        const seen = [];
        await readEvents(new Response(body), (type, d) => seen.push(type + ":" + (d.delta || "")));
        return seen.join("|");
      });
      check(got === "sources:|delta:caf\u00e9 \u20ac|delta:5|done:", "frames: " + got);
    });

    await step("chat_error_frame_shown", async () => {
      /* a failure after the stream began ends it with an error frame: the
       * text so far stays and the error is said in words */
      await page.getByRole("tab", { name: "Chat" }).click();
      await page.route("**/api/v1/chat", (route) => route.fulfill({
        status: 200, contentType: "text/event-stream",
        body: "event: delta\ndata: {\"type\":\"delta\",\"content\":\"Partial \",\"delta\":\"Partial \"}\n\n" +
              "event: delta\ndata: {\"type\":\"delta\",\"content\":\"answer\",\"delta\":\"answer\"}\n\n" +
              "event: error\ndata: {\"type\":\"error\",\"error\":\"the language model stopped answering\"}\n\n",
      }));
      await page.getByLabel("Message").fill("test the error path");
      await page.getByLabel("Message").press("Enter");
      const answer = page.locator(".msg.assistant").last();
      await answer.locator(".error", { hasText: "the language model stopped answering" }).waitFor();
      check((await answer.locator(".msg-text").textContent()) === "Partial answer", "text kept: " + (await answer.locator(".msg-text").textContent()));
      await page.unroute("**/api/v1/chat");
      await page.getByRole("button", { name: "New conversation" }).click();
    });

    await step("chat_streams_with_sources", async () => {
      await page.getByRole("tab", { name: "Chat" }).click();
      const input = page.getByLabel("Message");
      await input.fill("Who wrote the first program for the Analytical Engine?");
      const resp = page.waitForResponse((r) => r.url().endsWith("/api/v1/chat"));
      await input.press("Enter");
      const r = await resp;
      check(r.status() === 200, "POST /chat answered " + r.status());
      check((r.headers()["content-type"] || "").startsWith("text/event-stream"), "not an event stream: " + r.headers()["content-type"]);
      const answer = page.locator(".msg.assistant").last();
      await answer.locator(".source-list button").first().waitFor();
      check((await answer.locator(".msg-text[aria-busy]").count()) === 0, "still marked busy after the answer");
      const text = await answer.locator(".msg-text").textContent();
      check(/Lovelace/.test(text), "the answer does not quote the document: " + text.slice(0, 200));
      check(!/Error:/.test(await answer.textContent()), "an error was shown: " + (await answer.textContent()).slice(0, 200));
      await shot("04-chat");
      await answer.locator(".source-list button").first().click();
      const dlg = page.locator("#chunk-dialog");
      await dlg.waitFor({ state: "visible" });
      await page.locator("#chunk-meta", { hasText: /Chunk \d+ of \d+/ }).waitFor();
      const body = await page.locator("#chunk-body").textContent();
      check(/Analytical Engine/.test(body), "the source does not show the chunk: " + body.slice(0, 120));
      await shot("05-source");
      await page.keyboard.press("Escape");
      await dlg.waitFor({ state: "hidden" });
    });

    await step("memories_add_delete", async () => {
      await page.getByRole("tab", { name: "Memories" }).click();
      await page.getByLabel("New memory").fill("I prefer answers with dates.");
      await page.getByRole("button", { name: "Add", exact: true }).click();
      const item = page.locator("#memory-list .memory", { hasText: "I prefer answers with dates." });
      await item.waitFor();
      await item.getByRole("button", { name: /Delete memory/ }).click();
      await item.waitFor({ state: "detached" });
    });

    await step("graph_view", async () => {
      await page.getByRole("tab", { name: "Graph" }).click();
      await page.waitForFunction(() => document.getElementById("graph-status").textContent && !/Loading/.test(document.getElementById("graph-status").textContent));
      const status = await page.locator("#graph-status").textContent();
      const nodes = page.locator("#graph-svg .node");
      if ((await nodes.count()) > 0) {
        await nodes.first().focus();
        await page.keyboard.press("Enter");
        await page.locator("#graph-detail h3").waitFor();
        await page.locator("#graph-detail").locator("text=/mention/").waitFor();
      } else {
        check(/No entities|no knowledge graph/.test(status), "neither a graph nor a reason: " + status);
      }
      await shot("06-graph");
    });

    await step("keyboard_tabs", async () => {
      await page.getByRole("tab", { name: "Graph" }).focus();
      await page.keyboard.press("Home");
      check((await page.getByRole("tab", { name: "Documents" }).getAttribute("aria-selected")) === "true", "Home did not select the first tab");
      await page.keyboard.press("ArrowRight");
      check((await page.getByRole("tab", { name: "Search" }).getAttribute("aria-selected")) === "true", "ArrowRight did not move to Search");
      check(await page.locator("#panel-search").isVisible(), "the Search panel is hidden");
    });

    await step("phone_layout", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.getByRole("tab", { name: "Documents" }).click();
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= 390, "the page is wider than the phone screen: " + wide + "px");
      const tabs = await page.evaluate(() => { const t = document.getElementById("tabs"); return t.scrollWidth - t.clientWidth; });
      check(tabs <= 0, "the tabs do not fit the phone screen (" + tabs + "px over)");
      await shot("07-phone-documents");
      await page.getByRole("tab", { name: "Chat" }).click();
      const wide2 = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide2 <= 390, "the chat is wider than the phone screen: " + wide2 + "px");
      await shot("08-phone-chat");
      await page.emulateMedia({ colorScheme: "dark" });
      await page.getByRole("tab", { name: "Search" }).click();
      await shot("09-phone-search-dark");
      await page.emulateMedia({ colorScheme: "light" });
      await page.setViewportSize({ width: 1280, height: 860 });
    });

    await step("sign_out", async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.locator("#signin-form").waitFor({ state: "visible" });
      await page.reload();
      await page.locator("#signin-form").waitFor({ state: "visible" });
      const r = await page.evaluate(async () => (await fetch("/api/v1/collections", { credentials: "same-origin" })).status);
      check(r === 401, "the API still accepts the browser after sign-out: " + r);
    });

    await step("no_console_errors", async () => {
      /* answers of 4xx that the steps asked for (wrong password, refused
       * file, 422 search, after sign-out) are logged by Chromium itself;
       * anything else (a script error, a CSP refusal, a 5xx) counts */
      const real = consoleErrors.filter((m) => !/^Failed to load resource: the server responded with a status of 4\d\d/.test(m));
      check(real.length === 0, real.slice(0, 3).join(" | "));
    });
  } catch (e) {
    if (!(e instanceof StepFailure)) {
      failed++;
      console.log("FAIL web.run: " + (e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e));
    }
    await shot("zz-failure").catch(() => {});
    if (consoleErrors.length) console.log("    console: " + consoleErrors.slice(0, 5).join(" | "));
  } finally {
    await ctx.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

main();
