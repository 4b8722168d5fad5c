"""_transport.py - one HTTP exchange with retries, on http.client.

How it works: each request opens a connection to base_url (http or https),
sends the body (bytes, or a reader streamed in blocks with a known
Content-Length, so a large file is never held in memory), and reads the
answer. A 429, a 5xx or a failed connection is retried up to max_retries
times with exponential backoff and jitter (0.5 s, 1 s, 2 s ... capped at
30 s); a Retry-After header, when present, replaces the computed delay.
QUOTA_EXCEEDED is never retried (the quota does not reset in seconds).
A body reader is rewound before a retry; the caller guarantees it is
seekable (see multipart_body).

Streaming answers (chat SSE, backup) are returned unread with their
connection open; the caller reads and closes them.
"""

import http.client
import io
import json
import os
import random
import socket
import ssl
import time
import uuid
from urllib.parse import urlencode, urlsplit

from . import errors

API_PREFIX = "/api/v1"
USER_AGENT = "engram-python/0.1.0"
_RETRY_STATUSES = (429, 500, 502, 503, 504)


class Transport:
    def __init__(self, base_url, api_key, timeout, max_retries, backoff=0.5, max_backoff=30.0):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must look like http://host:port, got %r" % base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.root = parts.path.rstrip("/")
        self.api_key = api_key
        self.cookie = None
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = time.sleep

    def _connect(self, timeout):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def url(self, path, params=None, api=True):
        url = self.root + (API_PREFIX if api else "") + path
        if params:
            clean = [(k, v) for k, v in params.items() if v is not None]
            if clean:
                url += "?" + urlencode([(k, _qs(v)) for k, v in clean])
        return url

    def headers(self, extra=None):
        h = {"User-Agent": USER_AGENT, "Accept": "application/json",
             "X-Request-ID": "py-" + uuid.uuid4().hex}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        elif self.cookie:
            h["Cookie"] = self.cookie
        if extra:
            h.update(extra)
        return h

    def _delay(self, attempt, err):
        ra = getattr(err, "retry_after", None)
        if ra is not None:
            return min(float(ra), 60.0)
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base / 2 + random.random() * base / 2

    def request(self, method, path, json_body=None, params=None, body=None, headers=None,
                stream=False, api=True, timeout=None):
        """Sends one request (retrying as described above). Returns
        (status, headers, parsed JSON or None) for a 2xx, or with stream=True
        (status, headers, open HTTPResponse). Raises an EngramError subclass."""
        hdrs = self.headers(headers)
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        elif body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        start = body.tell() if hasattr(body, "read") else None
        url = self.url(path, params, api)
        attempt = 0
        while True:
            if start is not None:
                body.seek(start)
            try:
                return self._once(method, url, body, hdrs, stream, timeout)
            except errors.EngramError as e:
                retryable = isinstance(e, (errors.ConnectionFailed, errors.RateLimited)) or \
                    (e.status in _RETRY_STATUSES and not isinstance(e, errors.QuotaExceeded))
                if isinstance(e, errors.Timeout):
                    retryable = method in ("GET", "HEAD", "DELETE")
                if not retryable or attempt >= self.max_retries:
                    raise
                self.sleep(self._delay(attempt, e))
                attempt += 1

    def _once(self, method, url, body, hdrs, stream, timeout):
        conn = self._connect(self.timeout if timeout is None else timeout)
        try:
            if hasattr(body, "read"):
                hdrs = dict(hdrs)
                hdrs["Content-Length"] = str(body.length)
            conn.request(method, url, body=body, headers=hdrs)
            resp = conn.getresponse()
        except socket.timeout as e:
            conn.close()
            raise errors.Timeout("no answer from %s within %ss" % (self.host, conn.timeout)) from e
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise errors.ConnectionFailed("cannot reach engram at %s://%s:%s: %s" %
                                          (self.scheme, self.host, self.port or "", e)) from e
        rh = {k.lower(): v for k, v in resp.getheaders()}
        for k, v in resp.getheaders():
            if k.lower() == "set-cookie" and v.startswith("engram_session="):
                self.cookie = v.split(";", 1)[0]
        if 200 <= resp.status < 300 and stream:
            resp._engram_conn = conn  # keep the connection alive with the response
            return resp.status, rh, resp
        try:
            data = resp.read()
        except socket.timeout as e:
            raise errors.Timeout("answer from %s stalled" % self.host) from e
        except (OSError, http.client.HTTPException) as e:
            raise errors.ConnectionFailed("connection to %s broke: %s" % (self.host, e)) from e
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise errors.error_from_response(resp.status, rh, data)
        js = None
        if data and "json" in rh.get("content-type", "json"):
            try:
                js = json.loads(data.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                js = None
        if js is None and data:
            js = data.decode("utf-8", "replace") if "text" in rh.get("content-type", "") else data
        return resp.status, rh, js


def _qs(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


class ChainReader:
    """A read()-able concatenation of byte strings and one seekable file
    object, with a known total length: the multipart body streamed without
    loading the file. seek() only supports rewinding to a recorded tell()."""

    def __init__(self, head, fileobj, file_start, file_len, tail):
        self.head = head
        self.fileobj = fileobj
        self.file_start = file_start
        self.file_len = file_len
        self.tail = tail
        self.length = len(head) + file_len + len(tail)
        self.pos = 0

    def tell(self):
        return self.pos

    def seek(self, pos):
        self.pos = pos

    def read(self, n=-1):
        if n is None or n < 0:
            n = self.length - self.pos
        out = []
        while n > 0 and self.pos < self.length:
            hl, fl = len(self.head), self.file_len
            if self.pos < hl:
                piece = self.head[self.pos:self.pos + n]
            elif self.pos < hl + fl:
                off = self.pos - hl
                self.fileobj.seek(self.file_start + off)
                piece = self.fileobj.read(min(n, fl - off, 1 << 20))
                if not piece:
                    raise IOError("file shrank while being uploaded")
                if isinstance(piece, str):
                    raise TypeError("open the file in binary mode ('rb')")
            else:
                off = self.pos - hl - fl
                piece = self.tail[off:off + n]
            out.append(piece)
            self.pos += len(piece)
            n -= len(piece)
        return b"".join(out)


def _quote(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def multipart_body(fields, file_field, filename, content_type, source):
    """Builds a multipart/form-data body. source: bytes, a path, or a binary
    file object. Returns (reader with .length, Content-Type header). A file
    object that cannot seek is read into memory (it must be replayable for
    retries)."""
    boundary = "engram-" + uuid.uuid4().hex
    head = io.BytesIO()
    for name, value in fields.items():
        if value is None:
            continue
        head.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" %
                    (boundary, name)).encode("utf-8"))
        head.write(value.encode("utf-8") if isinstance(value, str) else value)
        head.write(b"\r\n")
    head.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                "Content-Type: %s\r\n\r\n" % (boundary, file_field, _quote(filename),
                                              content_type)).encode("utf-8"))
    tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")
    owned = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        fileobj, start, length = io.BytesIO(bytes(source)), 0, len(source)
    else:
        if isinstance(source, (str, os.PathLike)):
            owned = fileobj = open(source, "rb")
        else:
            fileobj = source
        try:
            start = fileobj.tell()
            end = fileobj.seek(0, io.SEEK_END)
            fileobj.seek(start)
            length = end - start
        except (AttributeError, OSError, io.UnsupportedOperation):
            data = fileobj.read()
            if isinstance(data, str):
                raise TypeError("open the file in binary mode ('rb')")
            fileobj, start, length = io.BytesIO(data), 0, len(data)
    reader = ChainReader(head.getvalue(), fileobj, start, length, tail)
    reader.owned = owned
    return reader, "multipart/form-data; boundary=" + boundary
