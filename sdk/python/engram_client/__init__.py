"""engram_client - a Python client for the engram HTTP API (standard library only).

    from engram_client import Client
    c = Client(api_key="eg_...", base_url="http://127.0.0.1:8080")
    coll = c.collections.create("notes")
    doc = c.documents.upload(coll["id"], "notes.md")
    c.documents.wait_until_processed(doc["id"])
    for r in c.retrievals.retrieve("group commit", collection_id=coll["id"])["results"]:
        print(r["score"], r["content"])

See docs/CLIENTS.md in the engram repository.
"""

from .client import Client
from .errors import (BadRequest, Conflict, ConnectionFailed, EngramError, Forbidden,
                     MethodNotAllowed, NotFound, PayloadTooLarge, QuotaExceeded, RateLimited,
                     ServerError, Timeout, Unauthorized, Unavailable, UnsupportedMediaType,
                     UpstreamError, ValidationError)
from .streaming import (ChatStream, DeltaEvent, DoneEvent, ErrorEvent, Event, SourcesEvent,
                        UsageEvent, parse_sse)

__version__ = "0.1.0"

__all__ = [
    "Client", "EngramError", "BadRequest", "Unauthorized", "Forbidden", "NotFound",
    "MethodNotAllowed", "Conflict", "PayloadTooLarge", "UnsupportedMediaType", "ValidationError",
    "RateLimited", "QuotaExceeded", "ServerError", "UpstreamError", "Unavailable",
    "ConnectionFailed", "Timeout", "ChatStream", "Event", "SourcesEvent", "DeltaEvent",
    "UsageEvent", "DoneEvent", "ErrorEvent", "parse_sse",
]
