"""streaming.py - chat answers as a stream of typed events.

The server answers POST /chat with stream=true as text/event-stream: frames
of "event: <type>" and "data: <JSON>" lines ended by a blank line, and
": keep-alive" comments in between (API.md "Chat"). ChatStream reads the
open response line by line and yields one event object per frame:
SourcesEvent, DeltaEvent, UsageEvent, DoneEvent, ErrorEvent, or a plain
Event for a type this client does not know (the data stays in .data).
It also keeps what it has seen (text, sources, usage, session_id) so a
caller can simply drain it. Closing it (or leaving a with block) drops the
connection, which tells the server to cancel the answer.
"""

import json
import socket

from . import errors


class Event:
    """One server-sent event: type and the decoded JSON data."""

    def __init__(self, type, data):
        self.type = type
        self.data = data

    def __repr__(self):
        return "<%s %r>" % (type(self).__name__, self.data)


class SourcesEvent(Event):
    @property
    def sources(self):
        return self.data.get("sources") or []


class DeltaEvent(Event):
    @property
    def content(self):
        v = self.data.get("content")
        return v if isinstance(v, str) else (self.data.get("delta") or "")


class UsageEvent(Event):
    @property
    def usage(self):
        return self.data.get("usage") or {}


class DoneEvent(Event):
    @property
    def session_id(self):
        return self.data.get("session_id") or (self.data.get("metadata") or {}).get("session_id")

    @property
    def metadata(self):
        return self.data.get("metadata") or {}


class ErrorEvent(Event):
    @property
    def error(self):
        e = self.data.get("error")
        if isinstance(e, dict):
            return e.get("message") or json.dumps(e)
        return e if isinstance(e, str) else "unknown error"


_TYPES = {"sources": SourcesEvent, "delta": DeltaEvent, "usage": UsageEvent,
          "done": DoneEvent, "error": ErrorEvent}


def make_event(etype, data):
    if not isinstance(data, dict):
        data = {"value": data}
    etype = etype or data.get("type") or "message"
    return _TYPES.get(etype, Event)(etype, data)


def parse_sse(lines):
    """Events from an iterable of lines (bytes or str, with or without line
    ends). A frame's several data lines are joined with newlines, as the SSE
    specification says; a frame whose data is not JSON keeps the text."""
    etype, data = None, []
    for raw in lines:
        line = raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                try:
                    payload = json.loads(text)
                except ValueError:
                    payload = {"text": text}
                yield make_event(etype, payload)
            etype, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            etype = value
        elif field == "data":
            data.append(value)
    if data:
        try:
            yield make_event(etype, json.loads("\n".join(data)))
        except ValueError:
            pass


class ChatStream:
    """Iterate for events; .text, .sources, .usage, .session_id, .metadata
    fill in as they arrive. Use as a context manager or call close()."""

    def __init__(self, resp):
        self._resp = resp
        self._events = parse_sse(self._lines())
        self.text = ""
        self.sources = []
        self.usage = None
        self.session_id = None
        self.metadata = {}
        self.error = None

    def _lines(self):
        try:
            while True:
                line = self._resp.readline()
                if not line:
                    return
                yield line
        except socket.timeout as e:
            raise errors.Timeout("the chat stream stalled") from e
        except OSError as e:
            raise errors.ConnectionFailed("the chat stream broke: %s" % e) from e

    def __iter__(self):
        return self

    def __next__(self):
        try:
            ev = next(self._events)
        except StopIteration:
            self.close()
            raise
        if isinstance(ev, DeltaEvent):
            self.text += ev.content
        elif isinstance(ev, SourcesEvent):
            self.sources = ev.sources
        elif isinstance(ev, UsageEvent):
            self.usage = ev.usage
        elif isinstance(ev, DoneEvent):
            self.session_id = ev.session_id
            self.metadata = ev.metadata
        elif isinstance(ev, ErrorEvent):
            self.error = ev.error
        return ev

    def until_done(self):
        """Drains the stream; returns self. Raises EngramError if the stream
        ended with an error event."""
        for _ in self:
            pass
        if self.error is not None:
            raise errors.EngramError(self.error, code="STREAM_ERROR")
        return self

    def close(self):
        if self._resp is not None:
            conn = getattr(self._resp, "_engram_conn", None)
            self._resp.close()
            if conn is not None:
                conn.close()
            self._resp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
