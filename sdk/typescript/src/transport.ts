/**
 * transport.ts - one HTTP exchange with retries, on fetch.
 *
 * Each request gets a fresh AbortController: the client's timeout aborts it
 * (for a streamed answer, only until the headers arrive), and so does the
 * caller's own signal. A 429, a 500/502/503/504 or a network failure is
 * retried up to maxRetries times with exponential backoff and jitter
 * (0.5 s, 1 s, 2 s ... capped at 30 s); a Retry-After header replaces the
 * computed delay. QUOTA_EXCEEDED is never retried, and a timeout only for
 * GET/HEAD/DELETE. Bodies (JSON text, FormData, Blob) are replayable, so a
 * retry sends the same bytes.
 *
 * Credentials: the API key as a Bearer header; without a key, the session
 * cookie from /auth/login (a browser sends it by itself; under Node the
 * Set-Cookie answer is kept and sent back).
 */

import { ConnectionFailed, EngramError, QuotaExceeded, RateLimited, Timeout, errorFromResponse } from "./errors.js";

export interface TransportOptions {
  apiKey?: string;
  baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  json?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  body?: BodyInit;
  headers?: Record<string, string>;
  /** Answer the open Response (2xx only) instead of parsing it. */
  stream?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** false for routes outside /api/v1 (such as /health). */
  api?: boolean;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

export class Transport {
  apiKey?: string;
  cookie?: string;
  readonly baseUrl: string;
  timeoutMs: number;
  maxRetries: number;
  backoffMs = 500;
  maxBackoffMs = 30000;
  /** Replaceable for tests. */
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms));
  private readonly fetchImpl: typeof fetch;

  constructor(opts: TransportOptions) {
    this.apiKey = opts.apiKey || undefined;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, "");
    this.timeoutMs = opts.timeoutMs;
    this.maxRetries = Math.max(0, Math.floor(opts.maxRetries));
    const f = opts.fetch ?? (globalThis as any).fetch;
    if (typeof f !== "function") throw new Error("engram-client needs fetch (Node 18+ or a browser)");
    this.fetchImpl = f.bind(globalThis);
  }

  url(path: string, query?: RequestOptions["query"], api = true): string {
    let u = this.baseUrl + (api ? "/api/v1" : "") + path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) qs.append(k, String(v));
      const s = qs.toString();
      if (s) u += "?" + s;
    }
    return u;
  }

  private delayMs(attempt: number, err: EngramError): number {
    const ra = (err as RateLimited).retryAfter;
    if (ra !== undefined) return Math.min(ra, 60) * 1000;
    const base = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
    return base / 2 + (Math.random() * base) / 2;
  }

  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", ...(opts.headers ?? {}) };
    let body = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["Content-Type"] = "application/json";
    }
    if (this.apiKey) headers["Authorization"] = "Bearer " + this.apiKey;
    else if (this.cookie) headers["Cookie"] = this.cookie;
    const url = this.url(path, opts.query, opts.api !== false);
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.once(method, url, headers, body, opts)) as T;
      } catch (e) {
        if (!(e instanceof EngramError)) throw e;
        let retry =
          e instanceof ConnectionFailed ||
          e instanceof RateLimited ||
          (e.status !== undefined && RETRY_STATUSES.has(e.status) && !(e instanceof QuotaExceeded));
        if (e instanceof Timeout) retry = method === "GET" || method === "HEAD" || method === "DELETE";
        if (opts.signal?.aborted || !retry || attempt >= this.maxRetries) throw e;
        await this.sleep(this.delayMs(attempt, e));
      }
    }
  }

  private async once(method: string, url: string, headers: Record<string, string>, body: BodyInit | undefined,
                     opts: RequestOptions): Promise<unknown> {
    const ctl = new AbortController();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, timeoutMs);
    const onAbort = () => ctl.abort();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let res: Response;
    let streaming = false;
    try {
      res = await this.fetchImpl(url, { method, headers, body, signal: ctl.signal, credentials: "same-origin" });
      const setCookie = res.headers.get("set-cookie");
      if (setCookie && setCookie.startsWith("engram_session=")) this.cookie = setCookie.split(";", 1)[0];
      if (res.ok && opts.stream) {
        streaming = true; // the caller's signal still aborts the body
        return res;
      }
      const text = await res.text();
      if (!res.ok) throw errorFromResponse(res.status, res.headers, text);
      if (!text) return undefined;
      const ctype = res.headers.get("content-type") ?? "";
      if (ctype.includes("json")) {
        try {
          return JSON.parse(text);
        } catch {
          return text;
        }
      }
      return text;
    } catch (e) {
      if (e instanceof EngramError) throw e;
      if (timedOut) throw new Timeout(`no answer from ${url} within ${timeoutMs} ms`);
      if (opts.signal?.aborted) throw e;
      const cause = (e as any)?.cause?.code ?? (e as Error)?.message ?? String(e);
      throw new ConnectionFailed(`cannot reach engram at ${this.baseUrl}: ${cause}`);
    } finally {
      clearTimeout(timer);
      if (!streaming) opts.signal?.removeEventListener("abort", onAbort);
    }
  }
}
