"""A small HTTP proxy in front of the moto S3 server, for fault injection in tests.

Requests pass through to the upstream endpoint unchanged unless a rule matches: a rule can answer with an
S3 error (``503 SlowDown``, ``403 InvalidAccessKeyId``...), delay the response, drop the connection without
an answer (before the request reaches the server, or after it was carried out: the answer is lost), or cut a
response's body short. A rule applies to every matching request or, with ``rate``, to a seeded random share of
them (``S3Proxy.chaos`` sets up the fault kinds of the chaos campaign, tests/chaos). Every request is
recorded (method, path, access key id from the Authorization header, headers) so tests can count them.
"""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_AKID = re.compile(r"Credential=([^/]+)/")


@dataclass
class Rule:
    method: str | None = None  # None: any
    path_re: str | None = None
    status: int | None = None  # answer with this error...
    code: str = "SlowDown"
    delay: float = 0.0  # ...or wait this long before forwarding
    drop: bool = False  # ...or close the connection without answering (after reading the request)
    truncate: int | None = None  # ...or forward, but send only this many bytes of the body, then close
    drop_after: bool = False  # ...or forward, then close the connection without the answer (the request took effect)
    times: int = 1  # how many matching requests it applies to (-1: all)
    rate: float = 1.0  # the share of matching requests it applies to (drawn from ``rng``)
    methods: tuple = ()  # any of these methods (with ``method`` None)
    rng: random.Random | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times != -1 and self.hits >= self.times:
            return False
        if self.method and self.method != method:
            return False
        if self.methods and method not in self.methods:
            return False
        if self.path_re and not re.search(self.path_re, path):
            return False
        if self.rate < 1.0 and (self.rng or random).random() >= self.rate:
            return False
        return True


@dataclass
class Seen:
    method: str
    path: str
    akid: str | None
    status: int
    headers: dict = field(default_factory=dict)


class S3Proxy:
    def __init__(self, upstream: str):
        up = urlsplit(upstream)
        self.up_host, self.up_port = up.hostname, up.port
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                akid = None
                m = _AKID.search(self.headers.get("Authorization", ""))
                if m:
                    akid = m.group(1)
                rule = proxy._match(self.command, self.path)
                if rule and rule.delay:
                    time.sleep(rule.delay)
                if rule and rule.drop:
                    proxy._record(self.command, self.path, akid, 0, dict(self.headers.items()))
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if rule and rule.status and not rule.drop_after:
                    proxy._record(self.command, self.path, akid, rule.status, dict(self.headers.items()))
                    payload = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{rule.code}</Code>'
                               f"<Message>injected by the test proxy</Message></Error>").encode()
                    self.send_response(rule.status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload) if self.command != "HEAD" else 0))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    self.close_connection = True
                    return
                conn = http.client.HTTPConnection(proxy.up_host, proxy.up_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                # recorded before the client sees the answer
                proxy._record(self.command, self.path, akid, 0 if rule and rule.drop_after else resp.status,
                              dict(self.headers.items()))
                conn.close()
                if rule and rule.drop_after:  # carried out, the answer lost
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else
                                                       resp.getheader("Content-Length", "0")))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    cut = rule.truncate if rule and rule.truncate is not None else None
                    if cut is not None and cut < 0:  # a share of the body: -2 = half
                        cut = len(data) // -cut
                    self.wfile.write(data if cut is None else data[:cut])
                self.close_connection = True

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _match(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _record(self, method, path, akid, status, headers) -> None:
        with self.lock:
            self.seen.append(Seen(method, path, akid, status, headers))

    def add(self, **kwargs) -> Rule:
        rule = Rule(**kwargs)
        with self.lock:
            self.rules.append(rule)
        return rule

    def chaos(self, kind: str, rate: float, seed: int, *, methods: tuple = (), path_re: str | None = None,
              stall: float = 1.5) -> Rule:
        """A fault of the chaos campaign on ``rate`` of the requests (seeded: the same seed, the same requests).

        kinds: ``reset`` (the connection drops before the request reaches the server), ``lost`` (it is carried
        out, then the connection drops: the answer is lost), ``503`` (SlowDown), ``stall`` (the answer comes
        ``stall`` seconds late), ``truncate`` (the answer's body is cut in half, the connection closed).
        ``methods``: only requests of these methods (``("PUT", "POST", "DELETE")``: the writes).
        """
        spec = {"reset": dict(drop=True), "lost": dict(drop_after=True), "503": dict(status=503, code="SlowDown"),
                "stall": dict(delay=stall), "truncate": dict(truncate=-2)}
        if kind not in spec:
            raise ValueError(f"unknown fault {kind!r} (one of {', '.join(spec)})")
        return self.add(times=-1, rate=rate, rng=random.Random(seed), methods=tuple(methods), path_re=path_re,
                        **spec[kind])

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.seen.clear()

    def count(self, method: str | None = None, status: int | None = None) -> int:
        with self.lock:
            return sum(1 for s in self.seen if (method is None or s.method == method)
                       and (status is None or s.status == status))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
