"""client.py - Client and its resources, one per group of API.md routes.

Client(api_key, base_url) holds a Transport; each resource is a thin object
whose methods map one-to-one onto routes and return the server's JSON as
plain dicts and lists (the field names are API.md's). Optional arguments
left as None are not sent, so the server's defaults apply. List methods
return the whole answer ({"data", "pagination"}); iter() methods walk every
page and yield items.
"""

import mimetypes
import os
import time
from urllib.parse import quote

from . import errors
from ._transport import Transport, multipart_body
from .streaming import ChatStream


def _seg(v):
    return quote(str(v), safe="")


def _body(**kw):
    return {k: v for k, v in kw.items() if v is not None}


class _Resource:
    def __init__(self, client):
        self._t = client._transport

    def _call(self, method, path, json_body=None, params=None, **kw):
        return self._t.request(method, path, json_body=json_body, params=params, **kw)[2]

    def _pages(self, path, params, page_size):
        offset = 0
        while True:
            p = dict(params or {})
            p.update(limit=page_size, offset=offset)
            page = self._call("GET", path, params=p)
            data = page.get("data") or []
            for item in data:
                yield item
            pag = page.get("pagination") or {}
            if not pag.get("has_more") or not data:
                return
            offset += len(data)


class _Keys(_Resource):
    def list(self, limit=None, offset=None):
        return self._call("GET", "/auth/keys", params=_body(limit=limit, offset=offset))

    def create(self, name, scopes=("read",), workspace_id=None):
        return self._call("POST", "/auth/keys",
                          _body(name=name, scopes=list(scopes), workspace_id=workspace_id))

    def delete(self, key_id):
        self._call("DELETE", "/auth/keys/" + _seg(key_id))


class Auth(_Resource):
    def __init__(self, client):
        super().__init__(client)
        self.keys = _Keys(client)

    def register(self, email, password):
        """Creates a user; the answer's api_key is shown only this once."""
        return self._call("POST", "/auth/register", {"email": email, "password": password})

    def login(self, email, password):
        """Signs in; the session cookie is kept and used while no api_key is set."""
        return self._call("POST", "/auth/login", {"email": email, "password": password})

    def logout(self):
        self._call("POST", "/auth/logout")
        self._t.cookie = None


class _Members(_Resource):
    def list(self, workspace_id, limit=None, offset=None):
        return self._call("GET", "/workspaces/%s/members" % _seg(workspace_id),
                          params=_body(limit=limit, offset=offset))

    def add(self, workspace_id, email, role="reader"):
        return self._call("POST", "/workspaces/%s/members" % _seg(workspace_id),
                          {"email": email, "role": role})

    def remove(self, workspace_id, user_id):
        self._call("DELETE", "/workspaces/%s/members/%s" % (_seg(workspace_id), _seg(user_id)))


class Workspaces(_Resource):
    def __init__(self, client):
        super().__init__(client)
        self.members = _Members(client)

    def list(self, limit=None, offset=None):
        return self._call("GET", "/workspaces", params=_body(limit=limit, offset=offset))

    def create(self, name):
        return self._call("POST", "/workspaces", {"name": name})


class Collections(_Resource):
    def create(self, name, description=None, metadata=None, config=None):
        return self._call("POST", "/collections",
                          _body(name=name, description=description, metadata=metadata,
                                config=config))

    def list(self, limit=None, offset=None):
        return self._call("GET", "/collections", params=_body(limit=limit, offset=offset))

    def iter(self, page_size=100):
        """Every collection of the workspace, page by page."""
        return self._pages("/collections", None, page_size)

    def get(self, collection_id):
        return self._call("GET", "/collections/" + _seg(collection_id))

    def find(self, name):
        """The collection with this name, or None."""
        for c in self.iter():
            if c.get("name") == name:
                return c
        return None

    def update(self, collection_id, name=None, description=None, metadata=None):
        return self._call("PATCH", "/collections/" + _seg(collection_id),
                          _body(name=name, description=description, metadata=metadata))

    def delete(self, collection_id):
        self._call("DELETE", "/collections/" + _seg(collection_id))


class Documents(_Resource):
    def upload(self, collection_id, file, filename=None, title=None, metadata=None,
               content_type=None):
        """Uploads a file as multipart/form-data. file: a path, bytes, or a
        binary file object (streamed from its current position). Answers the
        document: 202 status "pending", or the existing one for the same bytes."""
        import json
        if filename is None:
            if isinstance(file, (str, os.PathLike)):
                filename = os.path.basename(os.fspath(file))
            else:
                filename = os.path.basename(getattr(file, "name", "") or "") or "upload"
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            if filename.endswith(".md"):
                content_type = "text/markdown"
        fields = {"collection_id": collection_id, "title": title,
                  "metadata": json.dumps(metadata) if metadata is not None else None}
        reader, ctype = multipart_body(fields, "file", filename, content_type, file)
        try:
            return self._t.request("POST", "/documents", body=reader,
                                   headers={"Content-Type": ctype})[2]
        finally:
            if reader.owned is not None:
                reader.owned.close()

    def create(self, collection_id, content, title=None, content_type=None, metadata=None):
        """Uploads text as JSON."""
        return self._call("POST", "/documents",
                          _body(collection_id=collection_id, content=content, title=title,
                                content_type=content_type, metadata=metadata))

    def list(self, collection_id=None, status=None, limit=None, offset=None):
        return self._call("GET", "/documents",
                          params=_body(collection_id=collection_id, status=status, limit=limit,
                                       offset=offset))

    def iter(self, collection_id=None, status=None, page_size=100):
        return self._pages("/documents", _body(collection_id=collection_id, status=status),
                           page_size)

    def get(self, document_id):
        return self._call("GET", "/documents/" + _seg(document_id))

    def update(self, document_id, title=None, metadata=None):
        return self._call("PATCH", "/documents/" + _seg(document_id),
                          _body(title=title, metadata=metadata))

    def delete(self, document_id):
        self._call("DELETE", "/documents/" + _seg(document_id))

    def status(self, document_id):
        return self._call("GET", "/documents/%s/status" % _seg(document_id))

    def chunks(self, document_id, limit=None, offset=None):
        return self._call("GET", "/documents/%s/chunks" % _seg(document_id),
                          params=_body(limit=limit, offset=offset))

    def url(self, document_id, expires_in=None):
        return self._call("GET", "/documents/%s/url" % _seg(document_id),
                          params=_body(expires_in=expires_in))

    def wait_until_processed(self, document_id, timeout=300.0, poll=0.5):
        """Polls the status until "completed" or "failed" and returns it (the
        status object). Raises errors.Timeout when timeout seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(document_id)
            if st.get("status") in ("completed", "failed"):
                return st
            if time.monotonic() >= deadline:
                raise errors.Timeout("document %s still %s after %ss" %
                                     (document_id, st.get("status"), timeout))
            time.sleep(poll)


class Retrievals(_Resource):
    def retrieve(self, query, mode=None, top_k=None, collection_id=None, rerank=None,
                 enable_graph=None, metadata_filter=None, explain=None):
        return self._call("POST", "/retrievals",
                          _body(query=query, mode=mode, top_k=top_k, collection_id=collection_id,
                                rerank=rerank, enable_graph=enable_graph,
                                metadata_filter=metadata_filter, explain=explain))


class Chat(_Resource):
    def _body(self, message, messages, stream, kw):
        return _body(message=message, messages=messages, stream=stream, **kw)

    def send(self, message=None, messages=None, session_id=None, collection_id=None,
             retrieval=None, generation=None, include_memory=None, custom_instruction=None):
        """One answer, not streamed: {"query","response","sources","usage","metadata"}."""
        return self._call("POST", "/chat", self._body(message, messages, False, dict(
            session_id=session_id, collection_id=collection_id, retrieval=retrieval,
            generation=generation, include_memory=include_memory,
            custom_instruction=custom_instruction)))

    def stream(self, message=None, messages=None, session_id=None, collection_id=None,
               retrieval=None, generation=None, include_memory=None, custom_instruction=None,
               timeout=None):
        """A ChatStream of typed events (sources, delta, usage, done, error).
        timeout bounds the wait between two reads (default: the client's)."""
        body = self._body(message, messages, True, dict(
            session_id=session_id, collection_id=collection_id, retrieval=retrieval,
            generation=generation, include_memory=include_memory,
            custom_instruction=custom_instruction))
        _, _, resp = self._t.request("POST", "/chat", json_body=body, stream=True,
                                     headers={"Accept": "text/event-stream"}, timeout=timeout)
        return ChatStream(resp)


class Sessions(_Resource):
    def list(self):
        return self._call("GET", "/chat/sessions")

    def messages(self, session_id):
        return self._call("GET", "/chat/sessions/%s/messages" % _seg(session_id))

    def delete(self, session_id):
        self._call("DELETE", "/chat/sessions/" + _seg(session_id))


class Memories(_Resource):
    def create(self, type, content, reliability=None, metadata=None):
        return self._call("POST", "/memories",
                          _body(type=type, content=content, reliability=reliability,
                                metadata=metadata))

    def list(self, type=None, limit=None, offset=None):
        return self._call("GET", "/memories", params=_body(type=type, limit=limit, offset=offset))

    def iter(self, type=None, page_size=100):
        return self._pages("/memories", _body(type=type), page_size)

    def get(self, memory_id):
        return self._call("GET", "/memories/" + _seg(memory_id))

    def update(self, memory_id, **fields):
        """Changes the given fields (type, content, reliability, metadata)."""
        return self._call("PATCH", "/memories/" + _seg(memory_id), fields)

    def delete(self, memory_id):
        self._call("DELETE", "/memories/" + _seg(memory_id))

    def search(self, query, types=None, top_k=None, weights=None):
        return self._call("POST", "/memories/search",
                          _body(query=query, types=types, top_k=top_k, weights=weights))


class Graph(_Resource):
    def entities(self, collection_id, q=None, limit=None, offset=None):
        return self._call("GET", "/collections/%s/graph/entities" % _seg(collection_id),
                          params=_body(q=q, limit=limit, offset=offset))

    def entity(self, collection_id, entity_id):
        return self._call("GET", "/collections/%s/graph/entities/%s" %
                          (_seg(collection_id), _seg(entity_id)))

    def export(self, collection_id, format="json"):
        """The whole graph: a dict for json, the GraphML text for graphml."""
        out = self._call("GET", "/collections/%s/graph/export" % _seg(collection_id),
                         params={"format": format})
        return out.decode("utf-8") if isinstance(out, bytes) else out


class _Users(_Resource):
    def create(self, email, password, admin=None):
        return self._call("POST", "/admin/users", _body(email=email, password=password,
                                                        admin=admin))

    def list(self, limit=None, offset=None):
        return self._call("GET", "/admin/users", params=_body(limit=limit, offset=offset))

    def iter(self, page_size=100):
        return self._pages("/admin/users", None, page_size)

    def update(self, user_id, **fields):
        """E.g. update(user_id, disabled=True)."""
        return self._call("PATCH", "/admin/users/" + _seg(user_id), fields)


class Admin(_Resource):
    def __init__(self, client):
        super().__init__(client)
        self.users = _Users(client)

    def stats(self):
        return self._call("GET", "/admin/stats")

    def quota(self, workspace_id, max_chunks=None, max_requests_per_day=None):
        return self._call("PUT", "/admin/workspaces/%s/quota" % _seg(workspace_id),
                          _body(max_chunks=max_chunks, max_requests_per_day=max_requests_per_day))

    def backup(self, dest, timeout=None):
        """Writes the server's backup to dest (a path or a binary file object)
        and returns the number of bytes written. A path is written to a
        temporary name and renamed when complete."""
        _, _, resp = self._t.request("POST", "/admin/backup", stream=True,
                                     headers={"Accept": "application/octet-stream"},
                                     timeout=timeout)
        total = 0
        tmp = None
        try:
            if isinstance(dest, (str, os.PathLike)):
                tmp = os.fspath(dest) + ".part"
                out = open(tmp, "wb")
            else:
                out = dest
            try:
                while True:
                    block = resp.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
                    total += len(block)
            finally:
                if tmp is not None:
                    out.close()
            if tmp is not None:
                os.replace(tmp, os.fspath(dest))
                tmp = None
            return total
        except OSError as e:
            raise errors.ConnectionFailed("backup interrupted: %s" % e) from e
        finally:
            resp.close()
            conn = getattr(resp, "_engram_conn", None)
            if conn is not None:
                conn.close()
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


class Client:
    """An engram server. api_key defaults to $ENGRAM_API_KEY, base_url to
    $ENGRAM_URL or http://127.0.0.1:8080. timeout is per request in seconds;
    429s, 5xx answers and failed connections are retried max_retries times."""

    def __init__(self, api_key=None, base_url=None, timeout=30, max_retries=3):
        if api_key is None:
            api_key = os.environ.get("ENGRAM_API_KEY") or None
        if base_url is None:
            base_url = os.environ.get("ENGRAM_URL") or "http://127.0.0.1:8080"
        self._transport = Transport(base_url, api_key, timeout, max_retries)
        self.auth = Auth(self)
        self.workspaces = Workspaces(self)
        self.collections = Collections(self)
        self.documents = Documents(self)
        self.retrievals = Retrievals(self)
        self.chat = Chat(self)
        self.sessions = Sessions(self)
        self.memories = Memories(self)
        self.graph = Graph(self)
        self.admin = Admin(self)

    @property
    def api_key(self):
        return self._transport.api_key

    @api_key.setter
    def api_key(self, value):
        self._transport.api_key = value

    def health(self):
        """GET /health (no credential needed)."""
        return self._transport.request("GET", "/health", api=False)[2]

    def retrieve(self, query, **kw):
        """Shorthand for retrievals.retrieve."""
        return self.retrievals.retrieve(query, **kw)

    def __repr__(self):
        t = self._transport
        return "<engram Client %s://%s:%s>" % (t.scheme, t.host, t.port or "")
