"""Shared machinery for fake ad platforms.

A fake is a plain object that answers ``FakeRequest`` with ``FakeResponse`` and keeps state
(audiences, members by hash). The same fake can be mounted two ways:

* ``install_responses(rsps, fake, base_url)`` for unit tests with the ``responses`` library;
* ``FakeServer([fakes...]).start()`` as a real loopback HTTP server (integration tests, the
  demo mode, benchmarks), each fake under its own path prefix.

Faults are queued with ``fake.inject(...)`` and consumed by the next matching requests, so a
test can script "three 429s then success" or "a 500 storm" deterministically.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class FakeRequest:
    method: str
    path: str  # without the fake's prefix, e.g. "/v26.0/act_1/customaudiences"
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body or b"null")

    _form: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def form(self) -> dict[str, str]:
        # Parsed once: a Graph request reads several parameters from one multi-megabyte body.
        if self._form is None:
            self._form = {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}
        return self._form

    def param(self, name: str, default=None):
        """A parameter from the query string or an urlencoded body (Graph API style)."""
        if name in self.query:
            return self.query[name][-1]
        ctype = self.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" in ctype:
            return self.form().get(name, default)
        return default


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes | str | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        return body or b"", headers


@dataclass
class Fault:
    """A scripted failure for the next ``times`` requests matching ``method`` / ``path_regex``.

    ``response`` is returned instead of the real answer; ``drop`` closes the connection with
    no answer (loopback server only; with ``responses`` it raises ConnectionError).
    """

    response: FakeResponse | None = None
    times: int = 1
    method: str | None = None
    path_regex: str | None = None
    drop: bool = False
    delay: float = 0.0

    def matches(self, request: FakeRequest) -> bool:
        if self.method and self.method != request.method:
            return False
        return not (self.path_regex and not re.search(self.path_regex, request.path))


class DroppedConnection(Exception):
    pass


class FakePlatform:
    """Base for fakes: records requests, plays queued faults, then calls ``handle``."""

    prefix = ""  # URL prefix when mounted on the shared loopback server, e.g. "/meta"

    def __init__(self):
        self.lock = threading.RLock()
        self.requests: list[FakeRequest] = []
        self.faults: deque[Fault] = deque()
        self.record_requests = True

    # Fault injection --------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def _take_fault(self, request: FakeRequest) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(request):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # Dispatch ---------------------------------------------------------------------------
    def __call__(self, request: FakeRequest) -> FakeResponse:
        with self.lock:
            if self.record_requests:
                self.requests.append(request)
        fault = self._take_fault(request)
        if fault is not None:
            if fault.delay:
                import time

                time.sleep(fault.delay)
            if fault.drop:
                raise DroppedConnection()
            if fault.response is not None:
                return fault.response
        with self.lock:
            return self.handle(request)

    def handle(self, request: FakeRequest) -> FakeResponse:
        raise NotImplementedError


class PastedToken:
    """A fake's pasted access token, which tests replace ("revoked on the platform's side"): the token's record in
    ``self.tokens`` (its expiry, scopes) follows it."""

    @property
    def access_token(self) -> str:
        return self._access_token

    @access_token.setter
    def access_token(self, value: str) -> None:
        old = getattr(self, "_access_token", None)
        tokens = getattr(self, "tokens", None)
        if tokens is not None and old in tokens:
            tokens[value] = tokens.pop(old)
        self._access_token = value


# Platforms that match identifiers to their own users (LinkedIn, TikTok) --------------------------------------
Pair = tuple[str, str]  # (identifier type, value)


def add_user(members: set[Pair], users_of: dict[Pair, set[Pair]], pairs: list[Pair]) -> None:
    """One uploaded row: its identifiers join the audience as those of one platform user.

    The row's user is that of its first identifier (the platform's strongest, email), known or new. An identifier
    two people share (a household phone) belongs to both of their users."""
    known = users_of.get(pairs[0])
    user = min(known) if known else pairs[0]
    for pair in pairs:
        users_of.setdefault(pair, set()).add(user)
    members.update(pairs)


def remove_users(members: set[Pair], users_of: dict[Pair, set[Pair]], pairs: list[Pair]) -> None:
    """A removal removes every user any identifier sent matches, with all of their identifiers (not only the
    ones sent); an identifier stays while another user still has it."""
    doomed = set().union(*(users_of[pair] for pair in pairs if pair in members))
    if not doomed:
        return
    for pair in list(members):
        users = users_of.get(pair, set())
        if users & doomed:
            users -= doomed
            if not users:
                members.discard(pair)


def users_holding(members: set[Pair], users_of: dict[Pair, set[Pair]], matched=lambda pair: True) -> int:
    """How many users the audience holds (by identifiers that ``matched``)."""
    return len(set().union(*(users_of.get(pair, set()) for pair in members if matched(pair))))


# Mounting with `responses` ----------------------------------------------------------------
def install_responses(rsps, fake: FakePlatform, base_url: str) -> None:
    """Route every request under ``base_url`` through ``fake`` in a ``responses`` mock."""
    import requests

    base = base_url.rstrip("/")
    base_path = urlsplit(base).path

    def callback(prepared):
        parts = urlsplit(prepared.url)
        body = prepared.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, (bytes, bytearray)):
            body = b"".join(body)  # multipart generators
        request = FakeRequest(
            method=prepared.method,
            path=parts.path[len(base_path):] or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in prepared.headers.items()},
            body=bytes(body),
        )
        try:
            response = fake(request)
        except DroppedConnection:
            raise requests.exceptions.ConnectionError("connection dropped by the fake") from None
        payload, headers = response.encoded()
        return response.status, headers, payload

    pattern = re.compile(re.escape(base) + r"(/.*)?(\?.*)?$")
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        rsps.add_callback(method, pattern, callback=callback)


# Mounting on a loopback HTTP server -------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FakeHTTPServer

    def log_message(self, format, *args):  # quiet: tests and the demo read their own logs
        pass

    def _dispatch(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake, path = self.server.route(parts.path)
        if fake is None:
            self._send(FakeResponse(404, {"error": f"no fake mounted for {parts.path}"}))
            return
        request = FakeRequest(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = fake(request)
        except DroppedConnection:
            self.close_connection = True
            self.connection.close()
            return
        except Exception as exc:  # a bug in a fake must show as a 500, not hang the client
            response = FakeResponse(500, {"error": f"fake crashed: {type(exc).__name__}: {exc}"})
        self._send(response)

    def _send(self, response: FakeResponse):
        payload, headers = response.encoded()
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, fakes):
        super().__init__(address, _Handler)
        self.fakes = sorted(fakes, key=lambda f: len(f.prefix), reverse=True)

    def route(self, path: str):
        for fake in self.fakes:
            if path == fake.prefix or path.startswith(fake.prefix + "/"):
                return fake, path[len(fake.prefix):] or "/"
        return None, path


class FakeServer:
    """A loopback HTTP server hosting one or more fakes, each under its ``prefix``."""

    def __init__(self, fakes: list[FakePlatform], host: str = "127.0.0.1", port: int = 0):
        self.httpd = _FakeHTTPServer((host, port), fakes)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-platforms", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
