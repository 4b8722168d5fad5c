"""slowloris.py - many connections that send a request head a byte at a
time, while a normal client keeps asking. Shared by load.py (500
connections, latency reported) and tests/integration/test_load_hostile.py
(200 connections, only "answered at all" asserted)."""

import socket
import threading
import time

HEAD = (b"POST /api/v1/retrievals HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nX-Slow-Header-Number-One: ")


class Slowloris:
    def __init__(self, port, n, interval=1.0):
        self.port, self.n, self.interval = port, n, interval
        self.socks = []
        self.closed_by_server = 0
        self.stop = threading.Event()
        self.thread = None

    def open(self):
        for _ in range(self.n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            s.sendall(HEAD[:20])
            self.socks.append(s)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()
        return self

    def _trickle(self):
        i = 20
        while not self.stop.wait(self.interval):
            byte = HEAD[i:i + 1] if i < len(HEAD) else b"a"
            i += 1
            for s in list(self.socks):
                try:
                    s.sendall(byte)
                except OSError:
                    self.closed_by_server += 1
                    self.socks.remove(s)

    def open_count(self):
        return len(self.socks)

    def close(self):
        self.stop.set()
        if self.thread:
            self.thread.join(5)
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        self.socks = []


def timed_queries(client, key, n, query="copper harbor"):
    """n retrievals by a normal client; returns (latencies_ms, statuses)."""
    lat, statuses = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.req("POST", "/retrievals", json={"query": query, "mode": "keyword"}, key=key)
        lat.append((time.perf_counter() - t0) * 1000)
        statuses.append(r.status)
    return lat, statuses
