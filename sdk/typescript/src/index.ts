/**
 * engram-client - a fetch-based client for the engram HTTP API (Node 18+ and
 * browsers, no runtime dependencies). See docs/CLIENTS.md in the engram
 * repository.
 *
 *   import { EngramClient } from "engram-client";
 *   const c = new EngramClient({ apiKey: "eg_...", baseUrl: "http://127.0.0.1:8080" });
 *   const coll = await c.collections.create({ name: "notes" });
 */
export { EngramClient, EngramClient as Client } from "./client.js";
export type { ClientOptions, PageOptions, UploadOptions, DocumentListOptions, CollectionCreate } from "./client.js";
export * from "./errors.js";
export { ChatStream, parseSSE } from "./sse.js";
export type { ChatEvent, SourcesEvent, DeltaEvent, UsageEvent, DoneEvent, ErrorEvent, OtherEvent, Source, Usage } from "./sse.js";
export { Transport } from "./transport.js";
export type { RequestOptions, TransportOptions } from "./transport.js";
export type * from "./types.js";
