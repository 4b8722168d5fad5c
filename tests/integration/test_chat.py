"""test_chat.py - POST /chat, sessions and memories against the real binary.

Two servers: the suite's own (no LLM: extractive answers) and one whose
--llm-url points at stub_llm.py (an OpenAI-compatible stub in this process,
whose behaviour each test sets), plus a third with a short keep-alive
interval. Checked as a client would: the SSE frames (event + data with the
same "type", sources / delta / usage / done, an error frame after the
stream began, a 502 before it), that deltas are relayed as they arrive (the
stub holds delta 2 until the client has received delta 1), that a client
leaving cancels the upstream call, the prompt the stub received (chunks,
memories, budget), extractive answers, sessions and messages, memories
(CRUD, validation, ranking signals and weights, access counts) and
isolation between users.
"""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (Client, Suite, check, create_collection, eq, expect, make_user,  # noqa: E402
                     upload_text, wait_completed, UUID_RE, TIME_RE)
from stub_llm import StubLLM  # noqa: E402

suite = Suite("test_chat")
S = suite.state
NOTHING = "I couldn't find anything about that in this collection."
MISSING = "7d6c5b4a-3f2e-4d1c-9b8a-123456789abc"

LIGHTHOUSE = ("The Bell Rock Lighthouse was built between 1807 and 1810 off the coast of Angus, "
              "Scotland. It is the oldest surviving sea-washed lighthouse in the world. Robert "
              "Stevenson designed the tower, and John Rennie advised on its construction. Its "
              "light was first lit on 1 February 1811.")
BEES = ("Honey bees communicate the location of flowers with a waggle dance. The angle of the "
        "dance shows the direction relative to the sun. The duration of the waggle run encodes "
        "the distance to the food source. Karl von Frisch described the dance in the 1940s.")
COPPER = ("Copper is an excellent conductor of heat and electricity. Pure copper is soft and "
          "malleable. Bronze is an alloy of copper and tin, and brass is an alloy of copper and "
          "zinc.")


def estimate(text):
    """engram's token estimate: a quarter of the ASCII bytes + 1 per other code point."""
    ascii_n = sum(1 for ch in text if ord(ch) < 128)
    return (ascii_n + 3) // 4 + sum(1 for ch in text if ord(ch) >= 128)


class SSE:
    """One POST /chat read frame by frame as it arrives (chunked SSE)."""

    def __init__(self, port, key, body, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        data = json.dumps(body).encode()
        self.sock.sendall(("POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                           % (key, len(data))).encode() + data)
        self.raw = b""
        self.text = ""
        while b"\r\n\r\n" not in self.raw:
            self._recv()
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.json = None
        if self.status != 200:
            n = int(self.headers.get("content-length", "0"))
            while len(self.raw) < n:
                self._recv()
            self.json = json.loads(self.raw[:n].decode())

    def _recv(self):
        b = self.sock.recv(65536)
        if not b:
            raise EOFError("connection closed")
        self.raw += b

    def _chunk(self):
        """One chunk of the chunked body; None at the end."""
        while b"\r\n" not in self.raw:
            self._recv()
        line, self.raw = self.raw.split(b"\r\n", 1)
        size = int(line.split(b";")[0], 16)
        while len(self.raw) < size + 2:
            self._recv()
        data, self.raw = self.raw[:size], self.raw[size + 2:]
        return data if size else None

    def frames(self):
        """Yields (type, data dict or comment text, monotonic time received)."""
        while True:
            while "\n\n" not in self.text:
                c = self._chunk()
                if c is None:
                    check(self.text.strip() == "", "stream ended inside a frame: %r" % self.text)
                    return
                self.text += c.decode("utf-8")
            block, self.text = self.text.split("\n\n", 1)
            now = time.monotonic()
            if block.startswith(":"):
                yield ("comment", block, now)
                continue
            lines = block.split("\n")
            check(len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "),
                  "frame is not 'event: T' + 'data: JSON': %r" % block)
            typ = lines[0][7:]
            data = json.loads(lines[1][6:])
            eq(data.get("type"), typ, "data.type of an %s frame" % typ)
            yield (typ, data, now)

    def all(self):
        return [(t, d) for t, d, _ in self.frames()]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def answer_of(frames):
    return "".join(d["content"] for t, d in frames if t == "delta")


def check_stream_shape(frames, model=None):
    types = [t for t, _ in frames if t != "comment"]
    check(types and types[0] == "sources", "first frame is not sources: %r" % types)
    check(types[-2:] == ["usage", "done"], "stream does not end with usage, done: %r" % types)
    check(all(t == "delta" for t in types[1:-2]), "only deltas between sources and usage: %r" % types)
    for t, d in frames:
        if t == "delta":
            eq(d["delta"], d["content"], "delta and content carry the same text")
        if t == "sources":
            for s in d["sources"]:
                for k in ("document_id", "chunk_id", "title", "chunk_index", "score"):
                    check(k in s, "source lacks %s: %r" % (k, s))
    usage = [d for t, d in frames if t == "usage"][0]["usage"]
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        check(isinstance(usage.get(k), int), "usage.%s: %r" % (k, usage))
    done = [d for t, d in frames if t == "done"][0]
    check(UUID_RE.match(done["session_id"]), "done.session_id %r" % done.get("session_id"))
    md = done["metadata"]
    eq(md["session_id"], done["session_id"], "metadata.session_id")
    for k in ("retrieval_mode", "model", "latency_ms"):
        check(k in md, "done.metadata lacks %s" % k)
    if model is not None:
        eq(md["model"], model, "metadata.model")
    return done


def chat(key, port=None, **body):
    s = SSE(port or suite.server.port, key, body)
    check(s.status == 200, "POST /chat: %s %r" % (s.status, s.json))
    check(s.headers.get("content-type", "").startswith("text/event-stream"),
          "content type %r" % s.headers.get("content-type"))
    try:
        return s.all()
    finally:
        s.close()


@suite.test
def test_setup(s):
    r = s.client.post("/auth/register", {"email": "chat@example.com", "password": "correct horse battery"})
    expect(r, 201, what="register")
    S["key"] = r.json["api_key"]
    S["user"] = r.json["user_id"]
    S["other"] = make_user(s.client, S["key"])
    coll = create_collection(s.client, S["key"], name="chat-docs")
    S["coll"] = coll["id"]
    docs = [("Lighthouses", LIGHTHOUSE), ("Bees", BEES), ("Copper", COPPER)]
    for i in range(6):
        docs.append(("Filler %d" % i, " ".join("Paragraph %d of the long filler text about gardens, "
                     "rivers and old maps number %d." % (j, i) for j in range(40))))
    ids = []
    for title, text in docs:
        ids.append(upload_text(s.client, S["key"], coll["id"], text, title=title)["id"])
    for d in ids:
        wait_completed(s.client, S["key"], d)
    S["stub"] = StubLLM()
    S["llm"] = suite.new_server(extra_args=["--llm-url", S["stub"].url, "--llm-model", "stub-model",
                                            "--llm-first-token-timeout-ms", "1500"]).start()
    S["llm_key"] = S["llm_user"] = None
    c = Client(S["llm"].port)
    r = c.post("/auth/register", {"email": "llm@example.com", "password": "correct horse battery"})
    expect(r, 201, what="register on the LLM server")
    S["lkey"] = r.json["api_key"]
    lc = create_collection(c, S["lkey"], name="llm-docs")
    S["lcoll"] = lc["id"]
    lids = [upload_text(c, S["lkey"], lc["id"], text, title=title)["id"] for title, text in docs]
    for d in lids:
        wait_completed(c, S["lkey"], d)
    S["lclient"] = c


# ---- extractive answers (no LLM configured) ---------------------------------

@suite.test
def test_extractive_answer_has_sentence_and_marker(s):
    frames = chat(S["key"], message="When was the Bell Rock Lighthouse built?", collection_id=S["coll"])
    done = check_stream_shape(frames, model="extractive")
    sources = [d for t, d in frames if t == "sources"][0]["sources"]
    text = answer_of(frames)
    sentence = "The Bell Rock Lighthouse was built between 1807 and 1810 off the coast of Angus, Scotland."
    check(sentence in text, "answer lacks the relevant sentence: %r" % text)
    i = text.index(sentence) + len(sentence)
    marker = text[i:].split("]")[0] + "]"
    check(marker.startswith(" ["), "sentence not followed by a marker: %r" % text)
    n = int(marker.strip(" []"))
    eq(sources[n - 1]["title"], "Lighthouses", "the marker's source")
    check("waggle" not in text, "answer has unrelated sentences: %r" % text)
    S["session"] = done["session_id"]
    S["first_answer"] = text


@suite.test
def test_extractive_nothing_found(s):
    for q in ("Hello!", "hi there, how are you?", "How do volcanoes erupt on Mars?"):
        frames = chat(S["key"], message=q)
        check_stream_shape(frames, model="extractive")
        eq(answer_of(frames), NOTHING, "answer to %r" % q)


@suite.test
def test_extractive_covers_question_from_several_sentences(s):
    frames = chat(S["key"], message="How does the waggle dance show direction and distance?")
    text = answer_of(frames)
    check("direction relative to the sun" in text, "direction sentence missing: %r" % text)
    check("encodes the distance" in text, "distance sentence missing: %r" % text)
    check(text.index("direction relative") < text.index("encodes the distance"),
          "sentences not in reading order: %r" % text)


@suite.test
def test_stream_false_shape(s):
    r = s.client.post("/chat", {"message": "What is bronze an alloy of?", "stream": False}, key=S["key"])
    expect(r, 200, what="stream false")
    for k in ("query", "response", "sources", "usage", "metadata"):
        check(k in r.json, "answer lacks %s: %r" % (k, r.json))
    check("copper and tin" in r.json["response"], "response %r" % r.json["response"])
    eq(r.json["metadata"]["model"], "extractive", "metadata.model")
    check(UUID_RE.match(r.json["metadata"]["session_id"]), "metadata.session_id")


@suite.test
def test_sessions_and_messages(s):
    sid = S["session"]
    frames = chat(S["key"], message="Who designed it?", session_id=sid)
    done = check_stream_shape(frames)
    eq(done["session_id"], sid, "the same session continues")
    r = expect(s.client.get("/chat/sessions", key=S["key"]), 200)
    check(isinstance(r.json, list), "sessions is a bare array: %r" % r.json)
    mine = [x for x in r.json if x["id"] == sid]
    eq(len(mine), 1, "session listed once")
    x = mine[0]
    for k in ("id", "user_id", "collection_id", "title", "created_at", "last_message_at", "message_count"):
        check(k in x, "session lacks %s" % k)
    eq(x["title"], "When was the Bell Rock Lighthouse built?", "title from the first message")
    eq(x["message_count"], 4, "message_count")
    eq(x["user_id"], S["user"], "user_id")
    eq(x["collection_id"], S["coll"], "collection_id")
    check(TIME_RE.match(x["last_message_at"]), "last_message_at")
    eq(r.json[0]["id"], sid, "the most recent session first")
    r = expect(s.client.get("/chat/sessions/%s/messages" % sid, key=S["key"]), 200)
    check(isinstance(r.json, list), "messages is a bare array")
    eq([m["role"] for m in r.json], ["user", "assistant", "user", "assistant"], "roles")
    eq(r.json[0]["content"], "When was the Bell Rock Lighthouse built?", "stored question")
    eq(r.json[1]["content"], S["first_answer"], "stored answer is the streamed text")
    eq(r.json[3]["content"], answer_of(frames), "second stored answer")
    for m in r.json:
        for k in ("id", "session_id", "role", "content", "created_at"):
            check(k in m, "message lacks %s" % k)
        eq(m["session_id"], sid, "message.session_id")


@suite.test
def test_long_title_is_cut(s):
    q = "Please tell me everything you know about " + " ".join(["lighthouses"] * 40)
    r = expect(s.client.post("/chat", {"message": q, "stream": False}, key=S["key"]), 200)
    sid = r.json["metadata"]["session_id"]
    titles = [x["title"] for x in s.client.get("/chat/sessions", key=S["key"]).json if x["id"] == sid]
    check(titles and len(titles[0]) <= 80 and titles[0].endswith("...") and
          q.startswith(titles[0][:-3]), "title %r" % titles)


@suite.test
def test_messages_instead_of_message(s):
    body = {"messages": [{"role": "user", "content": "Tell me about copper."},
                         {"role": "assistant", "content": "Copper conducts heat."},
                         {"role": "user", "content": "What is brass an alloy of?"}], "stream": False}
    r = expect(s.client.post("/chat", body, key=S["key"]), 200)
    eq(r.json["query"], "What is brass an alloy of?", "question is the last message")
    check("copper and zinc" in r.json["response"], "response %r" % r.json["response"])
    bad = [{"messages": []}, {"messages": [{"role": "assistant", "content": "x"}]},
           {"messages": [{"role": "wizard", "content": "x"}]}, {"messages": "hi"}, {}]
    for b in bad:
        expect(s.client.post("/chat", b, key=S["key"]), 422, "VALIDATION_ERROR", what="body %r" % b)


@suite.test
def test_chat_validation_and_404(s):
    k = S["key"]
    for b, field in (({"message": "x", "retrieval": {"mode": "psychic"}}, "retrieval.mode"),
                     ({"message": "x", "retrieval": {"top_k": 0}}, "top_k"),
                     ({"message": "x", "generation": {"temperature": 9}}, "generation.temperature"),
                     ({"message": "x", "stream": "yes"}, "stream"),
                     ({"message": 5}, "message")):
        r = expect(s.client.post("/chat", b, key=k), 422, "VALIDATION_ERROR", what="body %r" % b)
        eq(r.json["error"]["details"].get("field"), field, "details.field for %r" % b)
    expect(s.client.post("/chat", {"message": "x", "session_id": MISSING}, key=k), 404, "NOT_FOUND")
    expect(s.client.post("/chat", {"message": "x", "collection_id": MISSING}, key=k), 404, "NOT_FOUND")
    o = S["other"]["key"]
    expect(s.client.post("/chat", {"message": "x", "session_id": S["session"]}, key=o), 404, "NOT_FOUND",
           what="another user's session")
    expect(s.client.get("/chat/sessions/%s/messages" % S["session"], key=o), 404, "NOT_FOUND")
    expect(s.client.delete("/chat/sessions/%s" % S["session"], key=o), 404, "NOT_FOUND")
    r = expect(s.client.get("/chat/sessions", key=o), 200)
    eq(r.json, [], "the other user sees no sessions")


@suite.test
def test_session_delete(s):
    r = expect(s.client.post("/chat", {"message": "copper", "stream": False}, key=S["key"]), 200)
    sid = r.json["metadata"]["session_id"]
    expect(s.client.delete("/chat/sessions/%s" % sid, key=S["key"]), 204)
    expect(s.client.get("/chat/sessions/%s/messages" % sid, key=S["key"]), 404, "NOT_FOUND")
    ids = [x["id"] for x in s.client.get("/chat/sessions", key=S["key"]).json]
    check(sid not in ids, "deleted session still listed")


# ---- memories ---------------------------------------------------------------

def mem(c, key, type_, content, **kw):
    body = {"type": type_, "content": content}
    body.update(kw)
    r = expect(c.post("/memories", body, key=key), 201, what="POST /memories")
    return r.json


@suite.test
def test_memory_crud(s):
    c, k = s.client, S["key"]
    m = mem(c, k, "semantic", "The user prefers tea over coffee.")
    for f in ("id", "type", "content", "reliability", "access_count", "metadata", "created_at",
              "updated_at", "last_accessed_at"):
        check(f in m, "memory lacks %s" % f)
    eq(m["reliability"], 0.8, "default reliability")
    eq(m["access_count"], 0, "access_count")
    eq(m["last_accessed_at"], None, "last_accessed_at")
    g = expect(c.get("/memories/%s" % m["id"], key=k), 200).json
    g = expect(c.get("/memories/%s" % m["id"], key=k), 200).json
    eq(g["access_count"], 0, "reading by id is not an access")
    p = expect(c.patch("/memories/%s" % m["id"], {"content": "The user prefers green tea.",
                                                     "reliability": 0.5, "metadata": {"src": "t"}},
                       key=k), 200).json
    eq((p["content"], p["reliability"], p["metadata"], p["type"]),
       ("The user prefers green tea.", 0.5, {"src": "t"}, "semantic"), "patched fields")
    mem(c, k, "episodic", "Visited the Bell Rock Lighthouse in 2024.")
    r = expect(c.get("/memories?type=semantic&limit=100", key=k), 200).json
    check("data" in r and "pagination" in r, "memories list shape")
    check(all(x["type"] == "semantic" for x in r["data"]), "type filter")
    check(m["id"] in [x["id"] for x in r["data"]], "created memory listed")
    expect(c.delete("/memories/%s" % m["id"], key=k), 204)
    expect(c.get("/memories/%s" % m["id"], key=k), 404, "NOT_FOUND")
    expect(c.delete("/memories/%s" % m["id"], key=k), 404, "NOT_FOUND")


@suite.test
def test_memory_validation(s):
    c, k = s.client, S["key"]
    for b, field in (({"type": "dream", "content": "x"}, "type"), ({"content": "x"}, "type"),
                     ({"type": "profile"}, "content"), ({"type": "profile", "content": ""}, "content"),
                     ({"type": "profile", "content": "x", "reliability": 1.5}, "reliability"),
                     ({"type": "profile", "content": "x", "reliability": "high"}, "reliability"),
                     ({"type": "profile", "content": "x", "metadata": [1]}, "metadata")):
        r = expect(c.post("/memories", b, key=k), 422, "VALIDATION_ERROR", what="body %r" % b)
        eq(r.json["error"]["details"].get("field"), field, "field for %r" % b)
    expect(c.get("/memories?type=dream", key=k), 422, "VALIDATION_ERROR")
    for b in ({"query": "x", "types": ["semantic", "dream"]}, {"query": "x", "types": "semantic"},
              {"query": "x", "weights": {"loudness": 1}}, {"query": "x", "weights": {"keyword": -1}},
              {"query": "x", "top_k": 0}, {"types": ["semantic"]}):
        expect(c.post("/memories/search", b, key=k), 422, "VALIDATION_ERROR", what="search %r" % b)


def weighted(signals, weights):
    w = {"keyword": 0.35, "vector": 0.25, "reliability": 0.20, "recency": 0.15, "frequency": 0.05}
    w.update(weights)
    return sum(w[k] * signals[k] for k in w)


@suite.test
def test_memory_search_ranking(s):
    c = s.client
    u = make_user(c, S["key"])
    k = u["key"]
    low = mem(c, k, "semantic", "Favourite marmalade flavour is bitter orange.", reliability=0.2)
    high = mem(c, k, "semantic", "Favourite marmalade flavour is bitter orange.", reliability=0.9)
    time.sleep(1.1)
    newer = mem(c, k, "semantic", "Favourite marmalade flavour is bitter orange.", reliability=0.2)
    other = mem(c, k, "procedural", "Always answer in French.")
    r = expect(c.post("/memories/search", {"query": "marmalade flavour"}, key=k), 200).json
    ids = [x["id"] for x in r["results"]]
    eq(len(ids), len(set(ids)), "each memory once")
    check(other["id"] not in ids, "a memory sharing no term is not returned")
    eq(ids[0], high["id"], "the reliable memory first")
    res = {x["id"]: x for x in r["results"]}
    check(res[newer["id"]]["signals"]["recency"] > res[low["id"]]["signals"]["recency"],
          "the newer memory is more recent")
    check(ids.index(newer["id"]) < ids.index(low["id"]), "recency breaks the tie")
    for x in r["results"]:
        sg = x["signals"]
        for name in ("keyword", "vector", "reliability", "recency", "frequency"):
            check(0 <= sg[name] <= 1, "signal %s out of 0..1: %r" % (name, sg))
        check(abs(x["score"] - weighted(sg, {})) < 1e-9, "score is the weighted sum: %r" % x)
        eq(x["access_count"], 1, "returned memories count as accessed")
    # Weights given in part override only those signals.
    w = {"reliability": 0.0, "recency": 5.0}
    r = expect(c.post("/memories/search", {"query": "marmalade", "weights": w}, key=k), 200).json
    eq(r["results"][0]["id"], newer["id"], "recency-heavy weights put the newest first")
    for x in r["results"]:
        check(abs(x["score"] - weighted(x["signals"], w)) < 1e-9, "partial weights: %r" % x)
        eq(x["access_count"], 2, "counted again")
        check(abs(x["signals"]["frequency"] - __import__("math").log(2) / __import__("math").log(101)) < 1e-9,
              "frequency signal of one earlier access: %r" % x["signals"])
    g = expect(c.get("/memories/%s" % other["id"], key=k), 200).json
    eq(g["access_count"], 0, "a memory not returned is not counted")
    r = expect(c.post("/memories/search", {"query": "marmalade", "types": ["procedural"]}, key=k), 200).json
    eq(r["results"], [], "types filter")
    r = expect(c.post("/memories/search", {"query": "marmalade", "top_k": 1}, key=k), 200).json
    eq(len(r["results"]), 1, "top_k")
    # Another user: 404 and nothing in search.
    o = S["other"]["key"]
    expect(c.get("/memories/%s" % high["id"], key=o), 404, "NOT_FOUND")
    expect(c.patch("/memories/%s" % high["id"], {"content": "x"}, key=o), 404, "NOT_FOUND")
    expect(c.delete("/memories/%s" % high["id"], key=o), 404, "NOT_FOUND")
    r = expect(c.post("/memories/search", {"query": "marmalade"}, key=o), 200).json
    eq(r["results"], [], "another user's search")


# ---- with an LLM (the stub) ---------------------------------------------------

def lchat(**body):
    return chat(S["lkey"], port=S["llm"].port, **body)


@suite.test
def test_llm_prompt_holds_chunks_memories_and_instruction(s):
    c, k, stub = S["lclient"], S["lkey"], S["stub"]
    mem(c, k, "profile", "The user's name is Ada Lovelace.")
    m2 = mem(c, k, "semantic", "The user is writing a report about the Bell Rock Lighthouse.")
    mem(c, k, "procedural", "Unrelated: likes spreadsheets sorted by date.")
    stub.set_plan(deltas=["It was built ", "between 1807 and 1810 [1]."])
    frames = lchat(message="When was the Bell Rock Lighthouse built?", custom_instruction="Answer like a pirate.",
                   generation={"temperature": 0.3, "max_tokens": 50})
    done = check_stream_shape(frames, model="stub-model")
    eq(answer_of(frames), "It was built between 1807 and 1810 [1].", "relayed answer")
    usage = [d for t, d in frames if t == "usage"][0]["usage"]
    eq((usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]), (11, 3, 14),
       "usage from the service")
    body = stub.last_request()["body"]
    eq(body["stream"], True, "stream requested upstream")
    eq(body["model"], "stub-model", "model")
    eq(body["temperature"], 0.3, "temperature")
    eq(body["max_tokens"], 50, "max_tokens")
    msgs = body["messages"]
    eq(msgs[0]["role"], "system", "system message first")
    eq(msgs[-1], {"role": "user", "content": "When was the Bell Rock Lighthouse built?"}, "question last")
    sysmsg = msgs[0]["content"]
    check("[1] Lighthouses" in sysmsg and "built between 1807 and 1810" in sysmsg,
          "numbered chunk with title missing from the prompt: %r" % sysmsg[:800])
    check("square brackets" in sysmsg and "[1]" in sysmsg, "the prompt asks for [n] citations")
    check("Answer like a pirate." in sysmsg, "custom instruction missing")
    check("Ada Lovelace" in sysmsg, "profile memory missing")
    check("report about the Bell Rock Lighthouse" in sysmsg, "matching memory missing")
    check("spreadsheets" not in sysmsg, "unrelated memory was included")
    g = expect(c.get("/memories/%s" % m2["id"], key=k), 200).json
    eq(g["access_count"], 1, "a memory used in chat counts as accessed")
    # The next turn carries the session's history.
    stub.set_plan(deltas=["Robert Stevenson [1]."])
    lchat(message="Who designed it?", session_id=done["session_id"], include_memory=False)
    msgs = stub.last_request()["body"]["messages"]
    eq([m["role"] for m in msgs], ["system", "user", "assistant", "user"], "history in the prompt")
    eq(msgs[2]["content"], "It was built between 1807 and 1810 [1].", "previous answer in history")
    check("Ada" not in msgs[0]["content"], "include_memory false leaves memories out")
    # A model named in the request is used and reported.
    stub.set_plan()
    frames = lchat(message="copper", generation={"model": "other-model"})
    eq(stub.last_request()["body"]["model"], "other-model", "generation.model upstream")
    check_stream_shape(frames, model="other-model")


@suite.test
def test_llm_prompt_respects_budget(s):
    stub = S["stub"]
    q = "Paragraph of the long filler text about gardens, rivers and old maps"
    for budget in (400, 1500):
        stub.set_plan()
        lchat(message=q, context_tokens=budget, include_memory=False, retrieval={"mode": "keyword", "top_k": 8})
        msgs = stub.last_request()["body"]["messages"]
        total = sum(estimate(m["content"]) + 4 for m in msgs)
        check(total <= budget, "prompt of %d estimated tokens over the budget %d" % (total, budget))
        check(total >= budget * 0.7, "budget %d left mostly unused (%d)" % (budget, total))
        sysmsg = msgs[0]["content"]
        check("[1] Filler" in sysmsg, "the best chunk is in the prompt")
        S["n_sources_%d" % budget] = sysmsg.count("\n[")
    check(S["n_sources_1500"] > S["n_sources_400"], "a larger budget holds more sources")


@suite.test
def test_llm_deltas_are_relayed_as_they_arrive(s):
    stub = S["stub"]
    hold = threading.Event()
    stub.set_plan(deltas=["first ", "second"], hold_event=hold, hold_timeout=20, usage=None)
    n_streams = len(stub.streams)
    sse = SSE(S["llm"].port, S["lkey"], {"message": "copper alloys", "include_memory": False})
    eq(sse.status, 200, "status")
    frames = []
    got_first = None
    for t, d, when in sse.frames():
        frames.append((t, d))
        if t == "delta" and got_first is None:
            got_first = when
            hold.set()
    sse.close()
    rec = stub.streams[n_streams]
    check(rec.get("held") is True, "the stub sent delta 2 before the client had delta 1 (buffered)")
    sent2 = [w for d, w in rec["sent"] if d == "second"][0]
    check(got_first < sent2, "delta 1 reached the client only after delta 2 was sent")
    eq([d["content"] for t, d in frames if t == "delta"], ["first ", "second"], "deltas in order, as sent")
    check_stream_shape(frames)
    usage = [d for t, d in frames if t == "usage"][0]["usage"]
    check(usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0, "estimated usage: %r" % usage)


@suite.test
def test_llm_client_disconnect_cancels_upstream(s):
    stub, c = S["stub"], S["lclient"]
    before = len(expect(c.get("/chat/sessions", key=S["lkey"]), 200).json)
    stub.set_plan(deltas=["tick "] * 100, pace_ms=100)
    n_streams = len(stub.streams)
    sse = SSE(S["llm"].port, S["lkey"], {"message": "copper", "include_memory": False})
    for t, d, _ in sse.frames():
        if t == "delta":
            break
    sse.close()
    deadline = time.time() + 10
    rec = None
    while time.time() < deadline:
        if len(stub.streams) > n_streams and stub.streams[n_streams]["closed_early"]:
            rec = stub.streams[n_streams]
            break
        time.sleep(0.05)
    check(rec is not None, "the upstream request was not cancelled (stub kept streaming)")
    check(len(rec["sent"]) < 100 and not rec["done"], "the stub finished its answer")
    after = len(expect(c.get("/chat/sessions", key=S["lkey"]), 200).json)
    eq(after, before, "a cancelled exchange stores nothing")


@suite.test
def test_llm_upstream_failures(s):
    stub, port, k = S["stub"], S["llm"].port, S["lkey"]
    body = {"message": "copper", "include_memory": False}
    # Before the stream began: 502 UPSTREAM_ERROR.
    for plan, what in (({"status": 500}, "500"), ({"malformed_after": 0}, "malformed first event"),
                       ({"cut_after": 0}, "closed before any delta"), ({"hang": True}, "timeout")):
        stub.set_plan(**plan)
        t0 = time.time()
        sse = SSE(port, k, body)
        sse.close()
        eq(sse.status, 502, "status for %s" % what)
        eq(sse.json["error"]["code"], "UPSTREAM_ERROR", "code for %s" % what)
        if what == "timeout":
            check("1500 ms" in sse.json["error"]["message"], "timeout message %r" % sse.json)
            check(time.time() - t0 < 10, "first-token timeout not applied")
    r = S["lclient"].post("/chat", dict(body, stream=False), key=k)
    expect(r, 502, "UPSTREAM_ERROR", what="stream false with a hanging service")
    # After the stream began: an error frame ends it.
    for plan, what in (({"error_after": 1}, "error event"), ({"malformed_after": 1}, "malformed event"),
                       ({"cut_after": 1}, "cut connection")):
        stub.set_plan(deltas=["one ", "two ", "three"], **plan)
        frames = lchat(**body)
        types = [t for t, _ in frames]
        eq(types, ["sources", "delta", "error"], "frames for %s" % what)
        check(isinstance(frames[-1][1]["error"], str) and frames[-1][1]["error"], "error text")
    stub.set_plan()
    check_stream_shape(lchat(**body))


@suite.test
def test_llm_non_streaming_service_and_stream_false(s):
    stub = S["stub"]
    stub.set_plan(deltas=["Copper ", "conducts [3]."], json=True)
    r = expect(S["lclient"].post("/chat", {"message": "copper", "stream": False}, key=S["lkey"]), 200)
    eq(r.json["response"], "Copper conducts [3].", "response")
    eq(r.json["usage"]["total_tokens"], 14, "usage")
    eq(r.json["metadata"]["model"], "stub-model", "model")
    frames = lchat(message="copper")
    eq(answer_of(frames), "Copper conducts [3].", "streamed from a JSON answer")
    stub.set_plan()


@suite.test
def test_keep_alive_comments(s):
    stub = S["stub"]
    srv = suite.new_server(extra_args=["--llm-url", stub.url, "--sse-keepalive-ms", "200"]).start()
    c = Client(srv.port)
    r = expect(c.post("/auth/register", {"email": "ka@example.com", "password": "correct horse battery"}), 201)
    stub.set_plan(deltas=["late ", "answer"], first_ms=1200)
    frames = chat(r.json["api_key"], port=srv.port, message="anything at all")
    types = [t for t, _ in frames]
    check("comment" in types and types.index("comment") < types.index("delta"),
          "no keep-alive comment during the silence: %r" % types)
    eq([d for t, d in frames if t == "comment"][0], ": keep-alive", "comment text")
    check_stream_shape([f for f in frames if f[0] != "comment"])
    stub.set_plan()
    check_clean_stop(srv, "keep-alive server")


def check_clean_stop(srv, what):
    rc = srv.stop()
    bad = srv.new_sanitizer_lines()
    check(not bad, "%s: sanitizer report: %s" % (what, "\n".join(bad[:10])))
    eq(rc, 0, "%s: exit code after SIGTERM" % what)


@suite.test
def test_llm_server_stops_cleanly(s):
    check_clean_stop(S["llm"], "LLM server")


if __name__ == "__main__":
    try:
        suite.run(forbid_5xx=False)
    finally:
        if S.get("stub"):
            S["stub"].stop()
