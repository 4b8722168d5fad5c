/**
 * sse.ts - chat answers as typed events from a text/event-stream body.
 *
 * The server answers POST /chat with stream=true as frames of
 * "event: <type>" and "data: <JSON>" lines ended by a blank line, with
 * ": keep-alive" comments between them (API.md "Chat"). parseSSE decodes the
 * byte stream incrementally (a frame may arrive split anywhere, even inside
 * a UTF-8 sequence) and yields one ChatEvent per frame. ChatStream wraps it
 * as an async iterator that also keeps what it saw (text, sources, usage,
 * sessionId); close() (or breaking out of for await) cancels the body,
 * which drops the connection and tells the server to stop.
 */

import { EngramError } from "./errors.js";

export interface Source {
  document_id: string;
  chunk_id: string;
  title?: string;
  chunk_index?: number;
  score?: number;
  [key: string]: unknown;
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  [key: string]: unknown;
}

export interface SourcesEvent { type: "sources"; sources: Source[] }
/** content and delta carry the same text. */
export interface DeltaEvent { type: "delta"; content: string; delta: string }
export interface UsageEvent { type: "usage"; usage: Usage }
export interface DoneEvent { type: "done"; session_id?: string; metadata: Record<string, unknown> }
export interface ErrorEvent { type: "error"; error: string }
/** An event type this client does not know; its data is kept as sent. */
export interface OtherEvent { type: string; data: Record<string, unknown> }

export type ChatEvent = SourcesEvent | DeltaEvent | UsageEvent | DoneEvent | ErrorEvent | OtherEvent;

function toEvent(etype: string | undefined, data: Record<string, any>): ChatEvent {
  const type = etype || (typeof data.type === "string" ? data.type : "message");
  switch (type) {
    case "sources":
      return { type, sources: Array.isArray(data.sources) ? data.sources : [] };
    case "delta": {
      const text = typeof data.content === "string" ? data.content : typeof data.delta === "string" ? data.delta : "";
      return { type, content: text, delta: text };
    }
    case "usage":
      return { type, usage: data.usage && typeof data.usage === "object" ? data.usage : {} };
    case "done": {
      const metadata = data.metadata && typeof data.metadata === "object" ? data.metadata : {};
      return { type, session_id: data.session_id ?? metadata.session_id, metadata };
    }
    case "error": {
      const e = data.error;
      const msg = typeof e === "string" ? e : e && typeof e.message === "string" ? e.message : "unknown error";
      return { type, error: msg };
    }
    default:
      return { type, data };
  }
}

function frameToEvent(etype: string | undefined, lines: string[]): ChatEvent {
  const text = lines.join("\n");
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = { text };
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) data = { value: data };
  return toEvent(etype, data as Record<string, any>);
}

/** Events from an SSE byte stream (or from an iterable of string/byte pieces). */
export async function* parseSSE(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>,
): AsyncGenerator<ChatEvent> {
  const decoder = new TextDecoder();
  let buffer = "";
  let etype: string | undefined;
  let data: string[] = [];

  function* drain(final: boolean): Generator<ChatEvent> {
    for (;;) {
      const nl = buffer.search(/\r\n|\r|\n/);
      if (nl < 0) {
        if (!final || !buffer) return;
        buffer += "\n";
        continue;
      }
      // A lone "\r" at the end may be the first half of "\r\n": wait for more.
      if (!final && buffer[nl] === "\r" && nl === buffer.length - 1) return;
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        if (data.length) yield frameToEvent(etype, data);
        etype = undefined;
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") etype = value;
      else if (field === "data") data.push(value);
    }
  }

  const add = (piece: Uint8Array | string) => {
    buffer += typeof piece === "string" ? piece : decoder.decode(piece, { stream: true });
  };
  if (typeof (source as ReadableStream<Uint8Array>).getReader === "function") {
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        add(value);
        yield* drain(false);
      }
      finished = true;
    } finally {
      // Left early (break, error): cancel the body so the connection closes.
      if (!finished) await reader.cancel().catch(() => undefined);
      reader.releaseLock();
    }
  } else {
    for await (const piece of source as AsyncIterable<Uint8Array | string>) {
      add(piece);
      yield* drain(false);
    }
  }
  buffer += decoder.decode();
  yield* drain(true);
  if (data.length) yield frameToEvent(etype, data);
}

/** An answer being streamed: iterate with for await; fields fill in as events arrive. */
export class ChatStream implements AsyncIterable<ChatEvent> {
  text = "";
  sources: Source[] = [];
  usage?: Usage;
  sessionId?: string;
  metadata: Record<string, unknown> = {};
  error?: string;
  private readonly events: AsyncGenerator<ChatEvent>;
  private readonly body: ReadableStream<Uint8Array>;
  private closed = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.body = body;
    this.events = parseSSE(body);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ChatEvent> {
    try {
      for await (const ev of this.events) {
        switch (ev.type) {
          case "delta":
            this.text += (ev as DeltaEvent).content;
            break;
          case "sources":
            this.sources = (ev as SourcesEvent).sources;
            break;
          case "usage":
            this.usage = (ev as UsageEvent).usage;
            break;
          case "done":
            this.sessionId = (ev as DoneEvent).session_id;
            this.metadata = (ev as DoneEvent).metadata;
            break;
          case "error":
            this.error = (ev as ErrorEvent).error;
            break;
        }
        yield ev;
      }
    } finally {
      await this.close();
    }
  }

  /** Reads to the end; throws if the stream ended with an error event. */
  async untilDone(): Promise<this> {
    for await (const _ of this) {
      // the fields above collect everything
    }
    if (this.error !== undefined) {
      throw new EngramError(this.error, { code: "STREAM_ERROR" });
    }
    return this;
  }

  /** Stops reading and drops the connection (the server cancels the answer). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.body.cancel();
    } catch {
      // already released or finished
    }
  }
}
