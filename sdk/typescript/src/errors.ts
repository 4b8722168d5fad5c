/**
 * errors.ts - the exceptions the engram client throws.
 *
 * Every non-2xx answer becomes an EngramError subclass chosen by its HTTP
 * status (for 429 also by the error code: QUOTA_EXCEEDED is not retried,
 * RATE_LIMITED is). The fields come from the API.md error body
 * ({"detail", "error": {"code","message","details"}, "meta": {"request_id"}});
 * an answer without that body still maps by status with its text as message.
 */

export interface ErrorInit {
  status?: number;
  code?: string;
  requestId?: string;
  details?: Record<string, unknown>;
  body?: unknown;
  retryAfter?: number;
}

export class EngramError extends Error {
  /** HTTP status; undefined when no answer came (connection failure, timeout). */
  readonly status?: number;
  /** API error code such as "NOT_FOUND" or "VALIDATION_ERROR". */
  readonly code?: string;
  /** X-Request-ID of the failed request, to quote in a bug report. */
  readonly requestId?: string;
  readonly details: Record<string, unknown>;
  readonly body?: unknown;

  constructor(message: string, init: ErrorInit = {}) {
    super(message);
    this.name = new.target.name;
    this.status = init.status;
    this.code = init.code;
    this.requestId = init.requestId;
    this.details = init.details ?? {};
    this.body = init.body;
  }
}

export class BadRequest extends EngramError {}
export class Unauthorized extends EngramError {}
export class Forbidden extends EngramError {}
export class NotFound extends EngramError {}
export class MethodNotAllowed extends EngramError {}
export class Conflict extends EngramError {}
export class PayloadTooLarge extends EngramError {}
export class UnsupportedMediaType extends EngramError {}
export class ValidationError extends EngramError {}
export class ServerError extends EngramError {}
export class UpstreamError extends EngramError {}
export class Unavailable extends EngramError {}
/** No answer: the server could not be reached or the connection broke. */
export class ConnectionFailed extends EngramError {}
/** No answer within the client's timeout. */
export class Timeout extends EngramError {}

export class RateLimited extends EngramError {
  /** Seconds from the Retry-After header, when the server sent one. */
  readonly retryAfter?: number;
  constructor(message: string, init: ErrorInit = {}) {
    super(message, init);
    this.retryAfter = init.retryAfter;
  }
}

export class QuotaExceeded extends EngramError {
  readonly retryAfter?: number;
  constructor(message: string, init: ErrorInit = {}) {
    super(message, init);
    this.retryAfter = init.retryAfter;
  }
}

type ErrorClass = new (message: string, init?: ErrorInit) => EngramError;

const BY_STATUS: Record<number, ErrorClass> = {
  400: BadRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  405: MethodNotAllowed,
  409: Conflict,
  413: PayloadTooLarge,
  415: UnsupportedMediaType,
  422: ValidationError,
  500: ServerError,
  502: UpstreamError,
  503: Unavailable,
};

/** Seconds from a Retry-After value (delta-seconds or an HTTP date). */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const n = Number(value.trim());
  if (Number.isFinite(n)) return Math.max(0, n);
  const t = Date.parse(value);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, (t - Date.now()) / 1000);
}

/** The error for a non-2xx answer whose body text has been read. */
export function errorFromResponse(status: number, headers: Headers, text: string): EngramError {
  let code: string | undefined;
  let message: string | undefined;
  let details: Record<string, unknown> | undefined;
  let requestId = headers.get("x-request-id") ?? undefined;
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (body && typeof body === "object" && !Array.isArray(body)) {
    const b = body as Record<string, any>;
    if (b.error && typeof b.error === "object") {
      code = typeof b.error.code === "string" ? b.error.code : undefined;
      message = typeof b.error.message === "string" ? b.error.message : undefined;
      if (b.error.details && typeof b.error.details === "object") details = b.error.details;
    }
    if (!message && typeof b.detail === "string") message = b.detail;
    if (b.meta && typeof b.meta.request_id === "string") requestId = b.meta.request_id;
  }
  if (!message) message = text.trim().slice(0, 500) || `HTTP ${status}`;
  const init: ErrorInit = { status, code, requestId, details, body };
  if (status === 429) {
    init.retryAfter = parseRetryAfter(headers.get("retry-after"));
    return code === "QUOTA_EXCEEDED" ? new QuotaExceeded(message, init) : new RateLimited(message, init);
  }
  const cls = BY_STATUS[status] ?? (status >= 500 ? ServerError : EngramError);
  return new cls(message, init);
}
