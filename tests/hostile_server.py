"""A real loopback HTTP server that misbehaves on purpose, for the HTTP layer's limits.

``HostileServer(host="127.0.0.1").behave(kind, **options)`` sets how every request (any
path) is answered from then on:

- ``ok``: ``status`` (200), ``body``, ``content_type``, extra ``headers``;
- ``drip``: a complete set of headers, then ``body`` one byte every ``interval`` seconds;
- ``drip_headers``: the status line and headers themselves one byte every ``interval``;
- ``tarpit``: reads the request and never answers (until the server closes);
- ``redirect``: ``status`` (302) with ``Location: location``;
- ``big``: ``size`` bytes streamed on the fly in 64 KiB chunks (never held in memory), made
  of ``unit`` repeated (the tests pass a real recorded page), with a Content-Length unless
  ``chunked``;
- ``gzip_bomb``: ``Content-Encoding: gzip``, a small gzip stream that inflates to
  ``inflated`` bytes of zeros;
- ``echo``: ``status`` (403) with ``template`` formatted with the request's headers
  (``{x-api-key}``), as APIs that quote the rejected key back do.

Every request is recorded first in ``requests`` (time, path, headers), whatever it is
answered.
"""

from __future__ import annotations

import contextlib
import threading
import time
import zlib
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    time: float
    path: str
    headers: dict[str, str]


@cache
def gzip_bomb(inflated: int) -> bytes:
    """A gzip stream of ``inflated`` zero bytes (1 GiB compresses to about 1 MB)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = []
    left = inflated
    while left > 0:
        parts.append(compressor.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(compressor.flush())
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer()

    def _answer(self) -> None:
        owner = self.server.owner
        headers = {k.lower(): v for k, v in self.headers.items()}
        with owner.lock:
            owner.requests.append(Seen(time.monotonic(), self.path, headers))
            kind, options = owner.kind, dict(owner.options)
        closing = owner.closing
        # the client giving up (a broken pipe) is what most of these are for
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            getattr(self, f"_{kind}")(options, headers, closing)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _ok(self, o: dict[str, Any], _h: dict[str, str], _c: threading.Event) -> None:
        body: bytes = o.get("body", b"")
        self._head(
            o.get("status", 200),
            {
                "Content-Type": o.get("content_type", "application/json"),
                "Content-Length": str(len(body)),
                **o.get("headers", {}),
            },
        )
        self.wfile.write(body)

    def _drip(self, o: dict[str, Any], _h: dict[str, str], closing: threading.Event) -> None:
        body: bytes = o["body"]
        self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        self.wfile.flush()
        for i in range(len(body)):
            if closing.wait(o["interval"]):
                return
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()

    def _drip_headers(
        self, o: dict[str, Any], _h: dict[str, str], closing: threading.Event
    ) -> None:
        body: bytes = o["body"]
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + "".join(f"X-Padding-{i}: {'x' * 40}\r\n" for i in range(50))
            + f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        for i in range(len(head)):
            if closing.wait(o["interval"]):
                return
            self.wfile.write(head[i : i + 1])
            self.wfile.flush()
        self.wfile.write(body)

    def _tarpit(self, _o: dict[str, Any], _h: dict[str, str], closing: threading.Event) -> None:
        closing.wait()

    def _redirect(self, o: dict[str, Any], _h: dict[str, str], _c: threading.Event) -> None:
        self._head(o.get("status", 302), {"Location": o["location"], "Content-Length": "0"})

    def _big(self, o: dict[str, Any], _h: dict[str, str], closing: threading.Event) -> None:
        size: int = o["size"]
        unit: bytes = o.get("unit") or b"x"
        chunk = (unit * (65536 // len(unit) + 1))[:65536]
        headers = {"Content-Type": o.get("content_type", "application/xml")}
        if o.get("chunked"):
            self.protocol_version = "HTTP/1.1"
            headers["Transfer-Encoding"] = "chunked"
            headers["Connection"] = "close"
        else:
            headers["Content-Length"] = str(size)
        self._head(200, headers)
        sent = 0
        while sent < size and not closing.is_set():
            piece = chunk[: min(len(chunk), size - sent)]
            if o.get("chunked"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
            sent += len(piece)
        if o.get("chunked"):
            self.wfile.write(b"0\r\n\r\n")

    def _gzip_bomb(self, o: dict[str, Any], _h: dict[str, str], _c: threading.Event) -> None:
        data = gzip_bomb(o["inflated"])
        self._head(
            200,
            {
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(data)),
            },
        )
        self.wfile.write(data)

    def _echo(self, o: dict[str, Any], headers: dict[str, str], _c: threading.Event) -> None:
        body = o["template"].format_map(_Missing(headers)).encode()
        self._head(
            o.get("status", 403),
            {"Content-Type": "application/json", "Content-Length": str(len(body))},
        )
        self.wfile.write(body)


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: HostileServer


class HostileServer:
    """One misbehaving server on ``host`` (any loopback address), on a free port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.lock = threading.Lock()
        self.requests: list[Seen] = []
        self.kind = "ok"
        self.options: dict[str, Any] = {}
        self.closing = threading.Event()
        self._server = _Server((host, 0), _Handler)
        self._server.owner = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def behave(self, kind: str, **options: Any) -> HostileServer:
        if not hasattr(_Handler, f"_{kind}"):
            raise ValueError(f"unknown behaviour {kind!r}")
        with self.lock:
            self.kind, self.options = kind, options
        return self

    def seen(self) -> list[Seen]:
        with self.lock:
            return list(self.requests)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()  # ends drips and tarpits
        self._server.shutdown()
        self._server.server_close()
