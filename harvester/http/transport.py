"""The transport under every client: a deadline per request, a stop that ends waits, a size cap.

Every request through a client from :func:`build_client` (the Fetcher's and the Slack
notifier's) has a total deadline per attempt: ``GuardedTransport`` bounds each socket
operation by what is left of it, so a server dripping one byte at a time (headers or body)
or holding the connection open is cut off, and a stop request ends the wait within a
fraction of a second. The bytes read from the wire are counted against the size cap as they
are decoded, so a gzip bomb is refused before it inflates.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from harvester import __version__

PROJECT_URL = "https://github.com/harvester-project/harvester"
DEFAULT_TIMEOUT_SECONDS = 30.0  # per socket operation
DEFAULT_DEADLINE_SECONDS = 120.0  # per request attempt, from sending to the last byte
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # decoded; the largest real page is ~20 MB
# How often a blocked socket read looks at the stop request.
_POLL_SECONDS = 0.25
# Encoded chunks are handed to httpx's decoder in slices of this size, so a gzip bomb
# inflates at most ~1,000 x this per step (2 MB) before its decoded bytes are counted.
_SLICE_BYTES = 2 * 1024


def user_agent(contact: str | None) -> str:
    """The polite identification APIs ask for (Crossref, OpenAlex: a mailto to reach us)."""
    if contact:
        return f"harvester/{__version__} (+{PROJECT_URL}; mailto:{contact})"
    return f"harvester/{__version__} (+{PROJECT_URL})"


# --- the transport: a deadline per request, a stop that ends waits, a raw size cap --------


class DeadlineExceeded(httpx.TimeoutException):
    """A request did not complete within its total deadline (a ``TransportError``, so a
    caller that retries timeouts, like the Slack notifier, treats it as one)."""


class RequestInterrupted(httpx.TransportError):
    """A stop was requested: the request was not sent, or its wait was cut short."""


class ResponseTooLarge(httpx.TransportError):
    """A response's body was larger than the client's byte limit."""


@dataclass(slots=True)
class _Deadline:
    """One request attempt's end (``time.monotonic`` seconds) and the stop request."""

    seconds: float
    end: float
    stop: threading.Event | None

    def remaining(self, *, slack: float = 0.0) -> float:
        """Seconds left; raises once the deadline has passed (within ``slack``) or a stop
        was requested."""
        if self.stop is not None and self.stop.is_set():
            raise RequestInterrupted("stopped: request abandoned")
        left = self.end - time.monotonic()
        if left <= slack:
            raise DeadlineExceeded(
                f"no complete response within the {self.seconds:g} s request deadline"
            )
        return left


# The deadline of the request this thread is sending or reading, for the network streams.
_ACTIVE: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar(
    "harvester_http_deadline", default=None
)


class _GuardedNetworkStream(httpcore.NetworkStream):
    """A socket whose every operation ends by the active request's deadline, and whose
    blocked reads look at the stop request every ``_POLL_SECONDS``."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = _ACTIVE.get()
        if deadline is None:
            return self._inner.read(max_bytes, timeout)
        read_end = None if timeout is None else time.monotonic() + timeout
        while True:
            step = min(deadline.remaining(), _POLL_SECONDS)
            if read_end is not None:
                step = min(step, max(0.0, read_end - time.monotonic()))
            try:
                # a timed-out recv consumed nothing (TLS included), so it can be repeated
                return self._inner.read(max_bytes, step)
            except httpcore.ReadTimeout:
                if read_end is not None and time.monotonic() >= read_end:
                    raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        with _deadline_named():
            self._inner.write(buffer, _clip(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        with _deadline_named():
            inner = self._inner.start_tls(ssl_context, server_hostname, _clip(timeout))
        return _GuardedNetworkStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        with _deadline_named():
            stream = self._inner.connect_tcp(
                host,
                port,
                _clip(timeout),
                local_address=local_address,
                socket_options=socket_options,
            )
        return _GuardedNetworkStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        with _deadline_named():
            stream = self._inner.connect_unix_socket(path, _clip(timeout), socket_options)
        return _GuardedNetworkStream(stream)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@contextmanager
def _deadline_named() -> Iterator[None]:
    """A timeout that was the request's deadline is reported as that, not as a timeout."""
    try:
        yield
    except httpcore.TimeoutException:
        deadline = _ACTIVE.get()
        if deadline is not None:
            deadline.remaining(slack=0.05)
        raise


def _clip(timeout: float | None) -> float | None:
    deadline = _ACTIVE.get()
    if deadline is None:
        return timeout
    left = deadline.remaining()
    return left if timeout is None else min(timeout, left)


class _GuardedStream(httpx.SyncByteStream):
    """A response body read under its request's deadline, counted against a byte cap."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        deadline: _Deadline,
        max_bytes: int | None,
        *,
        encoded: bool,
    ) -> None:
        self._inner = inner
        self._deadline = deadline
        self._max_bytes = max_bytes
        self._slice = _SLICE_BYTES if encoded else None

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        seen = 0
        while True:
            self._deadline.remaining()
            token = _ACTIVE.set(self._deadline)
            try:
                chunk = next(chunks, None)
            finally:
                _ACTIVE.reset(token)
            if chunk is None:
                return
            seen += len(chunk)
            if self._max_bytes is not None and seen > self._max_bytes:
                raise ResponseTooLarge(
                    f"response body larger than the {self._max_bytes:,} byte limit"
                )
            if self._slice is None:
                yield chunk
                continue
            for start in range(0, len(chunk), self._slice):
                yield chunk[start : start + self._slice]

    def close(self) -> None:
        self._inner.close()


class GuardedTransport(httpx.BaseTransport):
    """Gives every request a total deadline per attempt and refuses to start one once
    ``stop`` is set; ``max_bytes`` caps the bytes read from the wire per response."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        max_bytes: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if deadline <= 0:
            raise ValueError(f"deadline must be positive, not {deadline}")
        self._inner = inner
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.stop = stop
        pool = getattr(inner, "_pool", None)
        if isinstance(inner, httpx.HTTPTransport):
            # httpx builds its connection pool with no way to pass a network backend; the
            # wrapped backend is what bounds a read of dripped headers, so its absence (a
            # different httpx) must fail here, not weaken the deadline unnoticed
            if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(
                pool, "_network_backend"
            ):
                raise RuntimeError("this httpx version's transport has no network backend")
            pool._network_backend = _GuardedBackend(pool._network_backend)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = _Deadline(self.deadline, time.monotonic() + self.deadline, self.stop)
        left = deadline.remaining()  # no request starts after a stop
        # the wait for a pooled connection is not a socket operation: bounded here
        timeouts = dict(request.extensions.get("timeout") or {})
        pool = timeouts.get("pool")
        timeouts["pool"] = left if pool is None else min(pool, left)
        request.extensions = {**request.extensions, "timeout": timeouts}
        token = _ACTIVE.set(deadline)
        try:
            response = self._inner.handle_request(request)
        finally:
            _ACTIVE.reset(token)
        response.stream = _GuardedStream(
            response.stream,  # type: ignore[arg-type]
            deadline,
            self.max_bytes,
            encoded="content-encoding" in response.headers,
        )
        return response

    def close(self) -> None:
        self._inner.close()


def build_client(
    *,
    contact: str | None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
    deadline: float = DEFAULT_DEADLINE_SECONDS,
    max_response_bytes: int | None = DEFAULT_MAX_RESPONSE_BYTES,
    stop: threading.Event | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` that identifies harvester, times out per socket operation
    (``timeout``) and per request (``deadline``), reads at most ``max_response_bytes`` from
    the wire per response, and starts nothing once ``stop`` is set.

    It follows no redirects: the Fetcher follows those within the requested host itself,
    and a webhook must not be redirected at all (its URL is the credential).
    """
    inner = transport if transport is not None else httpx.HTTPTransport()
    return httpx.Client(
        headers={"User-Agent": user_agent(contact)},
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        transport=GuardedTransport(
            inner, deadline=deadline, max_bytes=max_response_bytes, stop=stop
        ),
    )
