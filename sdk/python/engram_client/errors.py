"""errors.py - the exceptions the engram client raises.

Every non-2xx answer becomes an EngramError subclass chosen by its HTTP
status (and, for 429, by the error code: QUOTA_EXCEEDED is not worth
retrying, RATE_LIMITED is). The server's error body (API.md "Errors") gives
code, message, details and meta.request_id; an answer without that body still
maps by status, with the raw text as the message.
"""

import json


class EngramError(Exception):
    """Base class. status is the HTTP status (None when no answer came),
    code the API error code ("NOT_FOUND", ...), message the server's words,
    request_id the X-Request-ID to quote in a bug report, details a dict."""

    def __init__(self, message, status=None, code=None, request_id=None, details=None,
                 body=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details or {}
        self.body = body

    def __str__(self):
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.code:
            parts.append(self.code)
        head = " ".join(parts)
        text = "%s: %s" % (head, self.message) if head else self.message
        if self.request_id:
            text += " (request %s)" % self.request_id
        return text


class BadRequest(EngramError):
    """400: malformed JSON, multipart or HTTP."""


class Unauthorized(EngramError):
    """401: no credential, a wrong one, a deleted key or a disabled user."""


class Forbidden(EngramError):
    """403: the key lacks the scope, or the action is not allowed."""


class NotFound(EngramError):
    """404: no such object, or it belongs to another workspace."""


class MethodNotAllowed(EngramError):
    """405: the route exists with other methods."""


class Conflict(EngramError):
    """409: a name or email already taken, a workspace's last admin."""


class PayloadTooLarge(EngramError):
    """413: over the JSON or upload limit."""


class UnsupportedMediaType(EngramError):
    """415: a file type the server does not accept."""


class ValidationError(EngramError):
    """422: a field of the wrong type or out of range (details.field names it)."""


class RateLimited(EngramError):
    """429 RATE_LIMITED; retry_after is the server's Retry-After in seconds."""

    def __init__(self, *args, retry_after=None, **kw):
        super().__init__(*args, **kw)
        self.retry_after = retry_after


class QuotaExceeded(EngramError):
    """429 QUOTA_EXCEEDED: the workspace's quota is used up."""

    def __init__(self, *args, retry_after=None, **kw):
        super().__init__(*args, **kw)
        self.retry_after = retry_after


class ServerError(EngramError):
    """500 (and any other 5xx without a class of its own)."""


class UpstreamError(EngramError):
    """502: an embedding or LLM service failed."""


class Unavailable(EngramError):
    """503: the server is not ready or is shutting down."""


class ConnectionFailed(EngramError):
    """No answer: the server could not be reached or closed the connection."""


class Timeout(EngramError):
    """No answer within the client's timeout."""


_BY_STATUS = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound,
    405: MethodNotAllowed, 409: Conflict, 413: PayloadTooLarge,
    415: UnsupportedMediaType, 422: ValidationError, 500: ServerError,
    502: UpstreamError, 503: Unavailable,
}


def parse_retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime
        import datetime
        when = parsedate_to_datetime(value)
        now = datetime.datetime.now(datetime.timezone.utc)
        return max(0.0, (when - now).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def error_from_response(status, headers, body):
    """The exception for a non-2xx answer. headers: dict with lowercased names."""
    code = None
    message = None
    details = None
    request_id = headers.get("x-request-id")
    try:
        js = json.loads(body.decode("utf-8")) if body else None
    except (ValueError, UnicodeDecodeError):
        js = None
    if isinstance(js, dict):
        err = js.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            message = err.get("message")
            details = err.get("details") if isinstance(err.get("details"), dict) else None
        if not message and isinstance(js.get("detail"), str):
            message = js["detail"]
        meta = js.get("meta")
        if isinstance(meta, dict) and meta.get("request_id"):
            request_id = meta["request_id"]
    if not message:
        text = body.decode("utf-8", "replace").strip() if body else ""
        message = text[:500] or "HTTP %d" % status
    kw = dict(status=status, code=code, request_id=request_id, details=details, body=js)
    if status == 429:
        ra = parse_retry_after(headers.get("retry-after"))
        cls = QuotaExceeded if code == "QUOTA_EXCEEDED" else RateLimited
        return cls(message, retry_after=ra, **kw)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else EngramError
    return cls(message, **kw)
