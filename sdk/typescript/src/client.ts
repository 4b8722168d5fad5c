/**
 * client.ts - EngramClient and its resources, one per group of API.md routes.
 *
 * Methods map one-to-one onto routes and resolve to the server's JSON
 * (types.ts). Optional fields left undefined are not sent, so the server's
 * defaults apply. list() answers one page ({data, pagination}); iter() is an
 * async generator over every page. Uploads take a Blob/File, bytes or a
 * string; uploadPath() (Node only) streams a file from disk.
 */

import { EngramError, Timeout } from "./errors.js";
import { ChatStream } from "./sse.js";
import { RequestOptions, Transport } from "./transport.js";
import type {
  AdminUser, ApiKey, ChatMessage, ChatRequest, ChatResponse, ChatSession, Chunk, Collection, CollectionConfig,
  Document, DocumentState, DocumentStatus, Entity, EntityDetail, Json, LoginResponse, Member, Memory,
  MemorySearchResult, MemoryType, Page, RegisterResponse, RetrievalRequest, RetrievalResponse, Role, Scope,
  SignedUrl, Workspace,
} from "./types.js";

export interface ClientOptions {
  /** An API key (eg_...). Without one, /auth/login's session cookie is used. */
  apiKey?: string;
  /** Default http://127.0.0.1:8080 (under Node: $ENGRAM_URL first). */
  baseUrl?: string;
  /** Per request, in milliseconds (default 30000). */
  timeoutMs?: number;
  /** Retries of 429, 5xx and network failures (default 3). */
  maxRetries?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface PageOptions { limit?: number; offset?: number }

const seg = (v: string) => encodeURIComponent(v);

function defined<T extends object>(o: T): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as Partial<T>;
}

function env(name: string): string | undefined {
  const p = (globalThis as any).process;
  return p && p.env ? p.env[name] || undefined : undefined;
}

abstract class Resource {
  constructor(protected readonly t: Transport) {}

  protected call<T>(method: string, path: string, opts?: RequestOptions): Promise<T> {
    return this.t.request<T>(method, path, opts);
  }

  protected async *pages<T>(path: string, query: Record<string, string | undefined>, pageSize: number): AsyncGenerator<T> {
    let offset = 0;
    for (;;) {
      const page = await this.call<Page<T>>("GET", path, { query: { ...query, limit: pageSize, offset } });
      for (const item of page.data) yield item;
      if (!page.pagination?.has_more || page.data.length === 0) return;
      offset += page.data.length;
    }
  }
}

class Keys extends Resource {
  list(page: PageOptions = {}): Promise<Page<ApiKey>> {
    return this.call("GET", "/auth/keys", { query: { ...page } });
  }
  create(name: string, scopes: Scope[] = ["read"], workspaceId?: string): Promise<ApiKey & { api_key: string }> {
    return this.call("POST", "/auth/keys", { json: defined({ name, scopes, workspace_id: workspaceId }) });
  }
  async delete(id: string): Promise<void> {
    await this.call("DELETE", "/auth/keys/" + seg(id));
  }
}

export class Auth extends Resource {
  readonly keys = new Keys(this.t);
  /** A new user; the answer's api_key is shown only this once. */
  register(email: string, password: string): Promise<RegisterResponse> {
    return this.call("POST", "/auth/register", { json: { email, password } });
  }
  /** Signs in; the session cookie is used while the client has no API key. */
  login(email: string, password: string): Promise<LoginResponse> {
    return this.call("POST", "/auth/login", { json: { email, password } });
  }
  async logout(): Promise<void> {
    await this.call("POST", "/auth/logout");
    this.t.cookie = undefined;
  }
}

class Members extends Resource {
  list(workspaceId: string, page: PageOptions = {}): Promise<Page<Member>> {
    return this.call("GET", `/workspaces/${seg(workspaceId)}/members`, { query: { ...page } });
  }
  add(workspaceId: string, email: string, role: Role = "reader"): Promise<Member> {
    return this.call("POST", `/workspaces/${seg(workspaceId)}/members`, { json: { email, role } });
  }
  async remove(workspaceId: string, userId: string): Promise<void> {
    await this.call("DELETE", `/workspaces/${seg(workspaceId)}/members/${seg(userId)}`);
  }
}

export class Workspaces extends Resource {
  readonly members = new Members(this.t);
  list(page: PageOptions = {}): Promise<Page<Workspace>> {
    return this.call("GET", "/workspaces", { query: { ...page } });
  }
  create(name: string): Promise<Workspace> {
    return this.call("POST", "/workspaces", { json: { name } });
  }
}

export interface CollectionCreate { name: string; description?: string; metadata?: Json; config?: CollectionConfig }

export class Collections extends Resource {
  create(body: CollectionCreate): Promise<Collection> {
    return this.call("POST", "/collections", { json: defined(body) });
  }
  list(page: PageOptions = {}): Promise<Page<Collection>> {
    return this.call("GET", "/collections", { query: { ...page } });
  }
  /** Every collection of the workspace, page by page. */
  iter(pageSize = 100): AsyncGenerator<Collection> {
    return this.pages<Collection>("/collections", {}, pageSize);
  }
  get(id: string): Promise<Collection> {
    return this.call("GET", "/collections/" + seg(id));
  }
  /** The collection with this name, or undefined. */
  async find(name: string): Promise<Collection | undefined> {
    for await (const c of this.iter()) if (c.name === name) return c;
    return undefined;
  }
  update(id: string, changes: { name?: string; description?: string; metadata?: Json }): Promise<Collection> {
    return this.call("PATCH", "/collections/" + seg(id), { json: defined(changes) });
  }
  async delete(id: string): Promise<void> {
    await this.call("DELETE", "/collections/" + seg(id));
  }
}

export interface UploadOptions { filename?: string; title?: string; metadata?: Json; contentType?: string }
export interface DocumentListOptions extends PageOptions { collectionId?: string; status?: DocumentState }

function guessType(filename: string): string {
  const ext = filename.toLowerCase().split(".").pop() ?? "";
  const types: Record<string, string> = {
    txt: "text/plain", md: "text/markdown", markdown: "text/markdown", html: "text/html", htm: "text/html",
    pdf: "application/pdf", png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", tif: "image/tiff",
    tiff: "image/tiff", docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  };
  return types[ext] ?? "application/octet-stream";
}

export class Documents extends Resource {
  /** Uploads a file as multipart/form-data: 202 "pending", or the existing document for the same bytes. */
  upload(collectionId: string, file: Blob | ArrayBuffer | ArrayBufferView | string, opts: UploadOptions = {}): Promise<Document> {
    const filename = opts.filename ?? ((file as any)?.name ? String((file as any).name) : "upload");
    const type = opts.contentType ?? ((file instanceof Blob && file.type) || guessType(filename));
    const blob = file instanceof Blob && !opts.contentType ? file : new Blob([file as BlobPart], { type });
    const form = new FormData();
    form.append("collection_id", collectionId);
    if (opts.title !== undefined) form.append("title", opts.title);
    if (opts.metadata !== undefined) form.append("metadata", JSON.stringify(opts.metadata));
    form.append("file", blob, filename);
    return this.call("POST", "/documents", { body: form });
  }
  /** Node only: uploads a file from disk, streamed (fs.openAsBlob) where the runtime has it. */
  async uploadPath(collectionId: string, path: string, opts: UploadOptions = {}): Promise<Document> {
    const fsName = "node:fs";
    const fs: any = await import(fsName);
    const filename = opts.filename ?? path.split(/[\\/]/).pop() ?? "upload";
    const type = opts.contentType ?? guessType(filename);
    const blob: Blob = typeof fs.openAsBlob === "function"
      ? await fs.openAsBlob(path, { type })
      : new Blob([await fs.promises.readFile(path)], { type });
    return this.upload(collectionId, blob, { ...opts, filename, contentType: undefined });
  }
  /** Uploads text as JSON. */
  create(body: { collection_id: string; content: string; title?: string; content_type?: string; metadata?: Json }): Promise<Document> {
    return this.call("POST", "/documents", { json: defined(body) });
  }
  list(opts: DocumentListOptions = {}): Promise<Page<Document>> {
    return this.call("GET", "/documents", {
      query: { collection_id: opts.collectionId, status: opts.status, limit: opts.limit, offset: opts.offset },
    });
  }
  iter(opts: { collectionId?: string; status?: DocumentState; pageSize?: number } = {}): AsyncGenerator<Document> {
    return this.pages<Document>("/documents", { collection_id: opts.collectionId, status: opts.status }, opts.pageSize ?? 100);
  }
  get(id: string): Promise<Document> {
    return this.call("GET", "/documents/" + seg(id));
  }
  update(id: string, changes: { title?: string; metadata?: Json }): Promise<Document> {
    return this.call("PATCH", "/documents/" + seg(id), { json: defined(changes) });
  }
  async delete(id: string): Promise<void> {
    await this.call("DELETE", "/documents/" + seg(id));
  }
  status(id: string): Promise<DocumentStatus> {
    return this.call("GET", `/documents/${seg(id)}/status`);
  }
  chunks(id: string, page: PageOptions = {}): Promise<Page<Chunk>> {
    return this.call("GET", `/documents/${seg(id)}/chunks`, { query: { ...page } });
  }
  url(id: string, expiresIn?: number): Promise<SignedUrl> {
    return this.call("GET", `/documents/${seg(id)}/url`, { query: { expires_in: expiresIn } });
  }
  /** Polls until "completed" or "failed" and resolves to that status; throws Timeout first. */
  async waitUntilProcessed(id: string, opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<DocumentStatus> {
    const deadline = Date.now() + (opts.timeoutMs ?? 300000);
    for (;;) {
      const st = await this.status(id);
      if (st.status === "completed" || st.status === "failed") return st;
      if (Date.now() >= deadline) throw new Timeout(`document ${id} still ${st.status}`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 500));
    }
  }
}

export class Retrievals extends Resource {
  retrieve(req: RetrievalRequest): Promise<RetrievalResponse> {
    return this.call("POST", "/retrievals", { json: defined(req) });
  }
}

export class Chat extends Resource {
  /** One answer, not streamed. */
  send(req: ChatRequest): Promise<ChatResponse> {
    return this.call("POST", "/chat", { json: { ...defined(req), stream: false } });
  }
  /** The answer as a stream of typed events: for await (const ev of await client.chat.stream({...})). */
  async stream(req: ChatRequest, opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ChatStream> {
    const res = await this.call<Response>("POST", "/chat", {
      json: { ...defined(req), stream: true },
      headers: { Accept: "text/event-stream" },
      stream: true,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
    if (!res.body) throw new EngramError("the chat answer has no body");
    return new ChatStream(res.body);
  }
}

export class Sessions extends Resource {
  list(): Promise<ChatSession[]> {
    return this.call("GET", "/chat/sessions");
  }
  messages(id: string): Promise<ChatMessage[]> {
    return this.call("GET", `/chat/sessions/${seg(id)}/messages`);
  }
  async delete(id: string): Promise<void> {
    await this.call("DELETE", "/chat/sessions/" + seg(id));
  }
}

export class Memories extends Resource {
  create(body: { type: MemoryType; content: string; reliability?: number; metadata?: Json }): Promise<Memory> {
    return this.call("POST", "/memories", { json: defined(body) });
  }
  list(opts: PageOptions & { type?: MemoryType } = {}): Promise<Page<Memory>> {
    return this.call("GET", "/memories", { query: { ...opts } });
  }
  iter(opts: { type?: MemoryType; pageSize?: number } = {}): AsyncGenerator<Memory> {
    return this.pages<Memory>("/memories", { type: opts.type }, opts.pageSize ?? 100);
  }
  get(id: string): Promise<Memory> {
    return this.call("GET", "/memories/" + seg(id));
  }
  update(id: string, changes: { type?: MemoryType; content?: string; reliability?: number; metadata?: Json }): Promise<Memory> {
    return this.call("PATCH", "/memories/" + seg(id), { json: defined(changes) });
  }
  async delete(id: string): Promise<void> {
    await this.call("DELETE", "/memories/" + seg(id));
  }
  search(req: { query: string; types?: MemoryType[]; top_k?: number; weights?: Record<string, number> }): Promise<{ results: MemorySearchResult[] }> {
    return this.call("POST", "/memories/search", { json: defined(req) });
  }
}

export class Graph extends Resource {
  entities(collectionId: string, opts: PageOptions & { q?: string } = {}): Promise<Page<Entity>> {
    return this.call("GET", `/collections/${seg(collectionId)}/graph/entities`, { query: { ...opts } });
  }
  entity(collectionId: string, entityId: string): Promise<EntityDetail> {
    return this.call("GET", `/collections/${seg(collectionId)}/graph/entities/${seg(entityId)}`);
  }
  /** The whole graph: parsed JSON for "json", the GraphML text for "graphml". */
  export(collectionId: string, format: "json" | "graphml" = "json"): Promise<unknown> {
    return this.call("GET", `/collections/${seg(collectionId)}/graph/export`, { query: { format } });
  }
}

class Users extends Resource {
  create(email: string, password: string, admin?: boolean): Promise<RegisterResponse> {
    return this.call("POST", "/admin/users", { json: defined({ email, password, admin }) });
  }
  list(page: PageOptions = {}): Promise<Page<AdminUser>> {
    return this.call("GET", "/admin/users", { query: { ...page } });
  }
  iter(pageSize = 100): AsyncGenerator<AdminUser> {
    return this.pages<AdminUser>("/admin/users", {}, pageSize);
  }
  update(id: string, changes: { disabled?: boolean; [k: string]: unknown }): Promise<AdminUser> {
    return this.call("PATCH", "/admin/users/" + seg(id), { json: changes });
  }
}

export class Admin extends Resource {
  readonly users = new Users(this.t);
  stats(): Promise<Json> {
    return this.call("GET", "/admin/stats");
  }
  quota(workspaceId: string, quota: { max_chunks?: number; max_requests_per_day?: number }): Promise<Json> {
    return this.call("PUT", `/admin/workspaces/${seg(workspaceId)}/quota`, { json: defined(quota) });
  }
  /** The backup as a byte stream (application/octet-stream). */
  async backup(opts: { timeoutMs?: number } = {}): Promise<ReadableStream<Uint8Array>> {
    const res = await this.call<Response>("POST", "/admin/backup", {
      stream: true,
      headers: { Accept: "application/octet-stream" },
      timeoutMs: opts.timeoutMs,
    });
    if (!res.body) throw new EngramError("the backup answer has no body");
    return res.body;
  }
  /** Node only: writes the backup to path (via path + ".part", renamed when complete); resolves to its size. */
  async backupToFile(path: string, opts: { timeoutMs?: number } = {}): Promise<number> {
    const fsName = "node:fs/promises";
    const fs: any = await import(fsName);
    const body = await this.backup(opts);
    const part = path + ".part";
    const fh = await fs.open(part, "w");
    let total = 0;
    try {
      const reader = body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await fh.write(value);
        total += value.byteLength;
      }
    } catch (e) {
      await fh.close();
      await fs.unlink(part).catch(() => undefined);
      throw e;
    }
    await fh.close();
    await fs.rename(part, path);
    return total;
  }
}

export class EngramClient {
  readonly auth: Auth;
  readonly workspaces: Workspaces;
  readonly collections: Collections;
  readonly documents: Documents;
  readonly retrievals: Retrievals;
  readonly chat: Chat;
  readonly sessions: Sessions;
  readonly memories: Memories;
  readonly graph: Graph;
  readonly admin: Admin;
  /** The transport (timeouts, retries, credentials) shared by every resource. */
  readonly transport: Transport;

  constructor(opts: ClientOptions = {}) {
    this.transport = new Transport({
      apiKey: opts.apiKey ?? env("ENGRAM_API_KEY"),
      baseUrl: opts.baseUrl ?? env("ENGRAM_URL") ?? "http://127.0.0.1:8080",
      timeoutMs: opts.timeoutMs ?? 30000,
      maxRetries: opts.maxRetries ?? 3,
      fetch: opts.fetch,
    });
    const t = this.transport;
    this.auth = new Auth(t);
    this.workspaces = new Workspaces(t);
    this.collections = new Collections(t);
    this.documents = new Documents(t);
    this.retrievals = new Retrievals(t);
    this.chat = new Chat(t);
    this.sessions = new Sessions(t);
    this.memories = new Memories(t);
    this.graph = new Graph(t);
    this.admin = new Admin(t);
  }

  get apiKey(): string | undefined {
    return this.transport.apiKey;
  }
  set apiKey(key: string | undefined) {
    this.transport.apiKey = key || undefined;
  }

  /** GET /health (no credential needed). */
  health(): Promise<{ status: string; version: string; uptime_s: number }> {
    return this.transport.request("GET", "/health", { api: false });
  }

  /** Shorthand for retrievals.retrieve. */
  retrieve(req: RetrievalRequest): Promise<RetrievalResponse> {
    return this.retrievals.retrieve(req);
  }
}
