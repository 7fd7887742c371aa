"""A local stand-in for the bibliographic APIs, on 127.0.0.1, for tests and by hand.

::

    request ─▶ /<source>/<api path> ─▶ request log
             ─▶ rate limit (per source)   exceeded → 429 (+ Retry-After unless NCBI-like)
             ─▶ faults (per source/path)  status, slow, truncate, body
             ─▶ SOURCES[source].handle(request) ─▶ reply

Each emulated API is one module with one routes class, registered in ``SOURCES``.
Use it as ``with Emulator(fixtures_dir=...) as emu: emu.base_url("pubmed")``.
"""

from __future__ import annotations

import email.utils
import math
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from tests.emulator.arxiv import ArxivRoutes
from tests.emulator.base import RecordedRequest, Reply, Request, SourceRoutes, text_reply
from tests.emulator.biorxiv import BiorxivRoutes, MedrxivRoutes
from tests.emulator.crossref import CrossrefRoutes
from tests.emulator.europepmc import EuropePMCRoutes
from tests.emulator.openalex import OpenAlexRoutes
from tests.emulator.pubmed import PubMedRoutes
from tests.emulator.semanticscholar import SemanticScholarRoutes

SOURCES: dict[str, type[SourceRoutes]] = {
    "pubmed": PubMedRoutes,
    "openalex": OpenAlexRoutes,
    "semanticscholar": SemanticScholarRoutes,
    "arxiv": ArxivRoutes,
    "biorxiv": BiorxivRoutes,
    "medrxiv": MedrxivRoutes,
    "europepmc": EuropePMCRoutes,
    "crossref": CrossrefRoutes,
}

FaultKind = Literal["status", "slow", "truncate", "body"]
_KINDS = ("status", "slow", "truncate", "body")


@dataclass(slots=True)
class Fault:
    """One injected misbehaviour; ``times=None`` keeps it forever."""

    source: str
    kind: FaultKind
    path_suffix: str = ""
    times: int | None = 1
    status: int = 503
    retry_after: str | None = None
    delay: float = 1.0
    how: Literal["cut", "extend"] = "cut"
    body: bytes = b""
    content_type: str = "text/plain; charset=UTF-8"
    after: int = 0
    hits: int = 0


class Faults:
    """Faults to inject, consumed in the order they were added."""

    def __init__(self, fixtures_dir: Path) -> None:
        self._fixtures_dir = fixtures_dir
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        *,
        source: str,
        kind: FaultKind,
        path_suffix: str = "",
        times: int | None = 1,
        status: int | None = None,
        retry_after: str | float | None = None,
        delay: float = 1.0,
        how: Literal["cut", "extend"] = "cut",
        fixture: str | Path | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        after: int = 0,
    ) -> Fault:
        """Misbehave on the next ``times`` requests to ``source`` whose path ends so, once
        ``after`` such requests have been answered normally (a failure mid-harvest).

        - ``status``: answer ``status`` (default 503), with ``Retry-After: retry_after``
          if given, and ``body`` if given;
        - ``slow``: wait ``delay`` seconds, then answer normally;
        - ``truncate``: answer normally but close the connection early: ``how="cut"``
          sends half the body, ``how="extend"`` announces a longer Content-Length;
        - ``body``: answer ``status`` (default 200) with the file ``fixture`` (relative
          to the fixtures directory) or ``body`` instead, e.g. an NCBI ERROR document.
        """
        if kind not in _KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(_KINDS)}")
        if fixture is not None:
            body = (self._fixtures_dir / fixture).read_bytes()
        if kind == "body" and body is None:
            raise ValueError("a body fault needs a fixture or a body")
        if content_type is None:
            content_type = (
                "text/xml; charset=UTF-8"
                if body is not None and body.lstrip().startswith(b"<")
                else "text/plain; charset=UTF-8"
            )
        fault = Fault(
            source=source,
            kind=kind,
            path_suffix=path_suffix,
            times=times,
            status=status if status is not None else (200 if kind == "body" else 503),
            retry_after=None if retry_after is None else str(retry_after),
            delay=delay,
            how=how,
            body=body if body is not None else b"",
            content_type=content_type,
            after=after,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, source: str, path: str) -> Fault | None:
        """The fault that applies to this request, if any, counted as used."""
        with self._lock:
            for fault in self._faults:
                if fault.source == source and path.endswith(fault.path_suffix):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.hits += 1
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


@dataclass(slots=True)
class RateLimit:
    """At most ``limit`` requests per ``window`` seconds, per client key."""

    limit: int
    window: float
    retry_after: bool = True
    ncbi: bool = False
    admitted: dict[str, deque[float]] = field(default_factory=dict)

    def check(self, request: Request, now: float) -> Reply | None:
        key, limit, window = "127.0.0.1", self.limit, self.window
        if self.ncbi:
            # NCBI: 3 requests/s per IP, 10/s per api_key; 429 without Retry-After.
            key = request.params.get("api_key") or key
            limit, window = (10 if request.params.get("api_key") else 3), 1.0
        times = self.admitted.setdefault(key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) < limit:
            times.append(now)
            return None
        if self.ncbi:
            body = (
                f'{{"error":"API rate limit exceeded","api-key":"{key}",'
                f'"count":"{len(times) + 1}","limit":"{limit}"}}\n'
            )
            return Reply(429, body.encode(), content_type="application/json")
        headers = {}
        if self.retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(times[0] + window - now)))
        return Reply(429, b"Too Many Requests", "text/plain; charset=UTF-8", headers)


class Emulator:
    """The emulated APIs on ``http://127.0.0.1:<port>``, served from a background thread."""

    def __init__(self, fixtures_dir: Path, *, port: int = 0, verbose: bool = False) -> None:
        self.fixtures_dir = Path(fixtures_dir)
        self.faults = Faults(self.fixtures_dir)
        self.verbose = verbose
        self._port = port
        self._routes: dict[str, SourceRoutes] = {}
        self._limits: dict[str, RateLimit] = {}
        self._log: list[RecordedRequest] = []
        self._generation = 0  # bumped by reset(): stragglers from before are not logged
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # the servers' own clock, sent as each response's Date header: real time unless a
        # test sets the emulated world's now (harvester bounds its watermark by it)
        self.server_now: datetime | None = None

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="api-emulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def base_url(self, source: str) -> str:
        """The API root of ``source``, e.g. ``http://127.0.0.1:PORT/pubmed/entrez/eutils``."""
        return f"{self.url}/{source}{_routes_class(source).base_path}"

    def source(self, name: str) -> SourceRoutes:
        """The routes object of ``name`` (created on first use), to adjust its settings."""
        with self._lock:
            routes = self._routes.get(name)
            if routes is None:
                routes = self._routes[name] = _routes_class(name)(self.fixtures_dir)
            return routes

    def set_rate_limit(
        self,
        source: str,
        per_second: float | None = None,
        *,
        ncbi: bool = False,
        retry_after: bool = True,
    ) -> None:
        """Answer 429 when ``source`` gets more than ``per_second`` requests a second.

        ``ncbi=True`` behaves like E-utilities: 3/s, 10/s with ``api_key``, no Retry-After.
        """
        if ncbi:
            limit = RateLimit(3, 1.0, retry_after=False, ncbi=True)
        elif per_second is None or per_second <= 0:
            raise ValueError("give per_second > 0, or ncbi=True")
        else:
            rate = Fraction(per_second).limit_denominator(1000)
            limit = RateLimit(rate.numerator, float(rate.denominator), retry_after=retry_after)
        with self._lock:
            self._limits[source] = limit

    def clear_rate_limit(self, source: str) -> None:
        with self._lock:
            self._limits.pop(source, None)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Forget faults, rate limits, the request log and every source's settings."""
        self.faults.clear()
        with self._lock:
            self._limits.clear()
            self._log.clear()
            self._routes.clear()
            self._generation += 1
        self.server_now = None

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def _arrival(self) -> tuple[float, int]:
        with self._lock:
            return time.monotonic(), self._generation

    def _record(self, entry: RecordedRequest, generation: int) -> None:
        with self._lock:
            if generation == self._generation:
                self._log.append(entry)

    def _rate_check(self, source: str, request: Request, now: float) -> Reply | None:
        with self._lock:
            limit = self._limits.get(source)
            return None if limit is None else limit.check(request, now)


def _routes_class(name: str) -> type[SourceRoutes]:
    try:
        return SOURCES[name]
    except KeyError:
        raise KeyError(f"no emulated source {name!r}; known: {', '.join(SOURCES)}") from None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "harvester-emulator"
    timeout = 30  # idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def date_time_string(self, timestamp: float | None = None) -> str:
        now = self.server.emulator.server_now
        if now is not None and timestamp is None:
            return email.utils.format_datetime(now.astimezone(UTC), usegmt=True)
        return super().date_time_string(timestamp)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        if self.server.emulator.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        emulator = self.server.emulator
        arrived, generation = emulator._arrival()
        split = urlsplit(self.path)
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            form = self.rfile.read(length).decode("utf-8", "replace")
            params.update(parse_qsl(form, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        name, _, rest = split.path.lstrip("/").partition("/")
        source = name if name in SOURCES else None
        truncate: Fault | None = None
        if source is None or not ("/" + rest).startswith(SOURCES[source].base_path + "/"):
            reply = text_reply(404, f"emulator: no route for {split.path}\n")
        else:
            routes = emulator.source(source)
            request = Request(
                self.command, "/" + rest[len(routes.base_path) :].lstrip("/"), params, headers
            )
            reply, truncate = self._answer(emulator, source, routes, request, arrived)
        # Recorded before answering, so a test that has its response sees the entry.
        emulator._record(
            RecordedRequest(
                self.command, split.path, params, headers, arrived, source, reply.status
            ),
            generation,
        )
        self._send(reply, truncate)

    def _answer(
        self,
        emulator: Emulator,
        source: str,
        routes: SourceRoutes,
        request: Request,
        arrived: float,
    ) -> tuple[Reply, Fault | None]:
        refused = emulator._rate_check(source, request, arrived)
        if refused is not None:
            return refused, None
        fault = emulator.faults.take(source, request.path)
        if fault is not None and fault.kind in ("status", "body"):
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return Reply(fault.status, fault.body, fault.content_type, headers), None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        try:
            reply = routes.handle(request)
        except Exception:  # the emulator must answer; show the bug to the test
            reply = text_reply(500, "emulator bug:\n" + traceback.format_exc())
        return reply, fault if fault is not None and fault.kind == "truncate" else None

    def _send(self, reply: Reply, truncate: Fault | None) -> None:
        body, length = reply.body, len(reply.body)
        if truncate is not None and truncate.how == "cut":
            body = body[: len(body) // 2]
        elif truncate is not None:
            length += max(16, length // 2)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(length))
            for header, value in reply.headers.items():
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if truncate is not None:
            self.close_connection = True  # the peer sees the body end early
