"""The HTTP layer every source shares: a polite client, per-host rate limits, retries.

One request, as a source sees it::

    fetcher.get(url, params)
      ├─ stop requested?             → Interrupted, before anything is sent
      ├─ limiter.acquire(host)       # paced at the START of each attempt, one pace per host
      ├─ client.send(request)        # streamed: decoded bytes counted against the size cap
      ├─ 2xx                         → the response, its body read
      ├─ 3xx to the same host        → followed (at most MAX_REDIRECTS); to another host:
      │                                refused, logged, FetchError (credentials never leave)
      ├─ larger than the cap / past the deadline → FetchError at once, not retried
      ├─ 429 / 5xx / timeout / transport error
      │    → sleep(Retry-After or exponential backoff with full jitter), try again
      │    → out of attempts: RateLimited (429) or FetchError
      └─ other 4xx                   → FetchError at once, with a snippet of the body

Every request through a client from ``build_client`` (the Fetcher's and the Slack
notifier's) has a total deadline per attempt: ``GuardedTransport`` bounds each socket
operation by what is left of it, so a server dripping one byte at a time (headers or body)
or holding the connection open is cut off, and a stop request ends the wait within a
fraction of a second.

Nothing here is global: ``app.build_app`` builds one client, one limiter and one fetcher
and hands them to the sources. URLs in logs and exceptions have their secrets replaced by
``REDACTED``, and so have the values of secret headers echoed in an error body.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from fractions import Fraction
from typing import Any

import httpcore
import httpx
import structlog

from harvester import __version__
from harvester.errors import FetchError, Interrupted, RateLimited

log = structlog.get_logger(__name__)

PROJECT_URL = "https://github.com/harvester-project/harvester"
DEFAULT_SECRET_PARAMS = frozenset({"api_key", "api-key", "key", "token"})
# Request headers whose values are credentials (Semantic Scholar: x-api-key).
DEFAULT_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}
)
REDACTED = "REDACTED"
DEFAULT_TIMEOUT_SECONDS = 30.0  # per socket operation
DEFAULT_DEADLINE_SECONDS = 120.0  # per request attempt, from sending to the last byte
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # decoded; the largest real page is ~20 MB
MAX_REDIRECTS = 5
_UPGRADE = ("http", "https")  # a redirect from http to https on the same host is followed
_SNIPPET_CHARS = 200
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


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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


def redact_url(url: str | httpx.URL, secret_params: frozenset[str] = DEFAULT_SECRET_PARAMS) -> str:
    """``url`` with the values of secret query parameters (and any password) replaced."""
    parsed = httpx.URL(url)
    secrets = {name.lower() for name in secret_params}
    items = parsed.params.multi_items()
    if any(name.lower() in secrets for name, _ in items):
        parsed = parsed.copy_with(
            params=[(n, REDACTED if n.lower() in secrets else v) for n, v in items]
        )
    if parsed.password:
        parsed = parsed.copy_with(username=parsed.username, password=REDACTED)
    return str(parsed)


# --- pacing -------------------------------------------------------------------------------


class RateLimiter:
    """One request pace per host, shared by every job (thread) of the process.

    GCRA with a burst of one, so requests are spread evenly: at 3 per second a request may
    start every 334 ms, at 1/3 per second every 3 s. Each ``acquire`` reserves the next
    start under a lock, then sleeps until it outside the lock, so threads sharing a host
    take consecutive slots. ``clock`` (monotonic seconds) and ``sleep`` are injected: the
    schedule is testable without the wall clock, and the app's sleep ends on a stop
    request. A host without a rate is not limited.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._rates: dict[str, Fraction] = {}
        self._last: dict[str, float] = {}  # the start reserved last, per host
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def set_rate(self, host: str, requests_per_second: float) -> None:
        """Let requests to ``host`` start at most ``requests_per_second`` times a second."""
        per_second = Fraction(requests_per_second).limit_denominator(1000)
        if per_second <= 0:
            raise ValueError(f"rate for {host} must be positive, not {requests_per_second}")
        self._install(host, per_second)

    def set_concurrency(self, host: str, requests: int) -> None:
        """Let at most ``requests`` requests to ``host`` be in flight at once (Crossref: one
        anonymously, three in its polite pool), across every job of the process."""
        if requests < 1:
            raise ValueError(f"concurrency for {host} must be at least 1, not {requests}")
        with self._lock:
            self._slots[host] = threading.BoundedSemaphore(requests)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Hold one of ``host``'s in-flight slots (no limit if none was set)."""
        with self._lock:
            semaphore = self._slots.get(host)
        if semaphore is None:
            yield
            return
        with semaphore:
            yield

    def adapt(self, host: str, limit: int, interval_s: float) -> bool:
        """Lower ``host``'s rate to ``limit`` per ``interval_s`` seconds if that is slower.

        For APIs that announce their limit in headers (Crossref ``x-rate-limit-limit`` and
        ``x-rate-limit-interval``). Never raises a rate; returns whether it changed.
        """
        if limit <= 0 or interval_s <= 0:
            return False
        announced = (Fraction(limit) / Fraction(interval_s)).limit_denominator(1000)
        if not self._install(host, announced, only_lower=True):
            return False
        log.info("rate adapted", host=host, requests_per_second=float(announced))
        return True

    def rate(self, host: str) -> float | None:
        """Requests per second allowed to ``host``, or None if it is not limited."""
        with self._lock:
            current = self._rates.get(host)
        return None if current is None else float(current)

    def acquire(self, host: str) -> float:
        """Block until a request to ``host`` may start; returns that start (clock seconds)."""
        with self._lock:
            now = self._clock()
            per_second = self._rates.get(host)
            if per_second is None:
                return now
            last = self._last.get(host)
            start = now if last is None else max(now, last + float(1 / per_second))
            self._last[host] = start
        if start > now:
            self._sleep(start - now)
        return start

    def _install(self, host: str, per_second: Fraction, *, only_lower: bool = False) -> bool:
        with self._lock:
            current = self._rates.get(host)
            if only_lower and current is not None and current <= per_second:
                return False
            # the last reserved start is kept: the new pace applies to the next request
            self._rates[host] = per_second
            return True


# --- requests counted per run -------------------------------------------------------------


class RequestCounter:
    """The requests one harvest run sent (every attempt and redirect counts); calling it
    gives the count so far. Shared by the run's threads (its prefetch copies the context)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self._count += 1

    def __call__(self) -> int:
        with self._lock:
            return self._count


_RUN_COUNTER: contextvars.ContextVar[RequestCounter | None] = contextvars.ContextVar(
    "harvester_run_requests", default=None
)


# --- the fetcher --------------------------------------------------------------------------


class Fetcher:
    """GETs with a per-host rate limit, retries with backoff, same-host redirects, a size
    cap, and secrets kept out of logs and errors."""

    def __init__(
        self,
        client: httpx.Client,
        limiter: RateLimiter,
        *,
        sleep: Callable[[float], object] = time.sleep,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        secret_params: frozenset[str] = DEFAULT_SECRET_PARAMS,
        secret_headers: frozenset[str] = DEFAULT_SECRET_HEADERS,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_response_bytes < 1:
            raise ValueError("max_response_bytes must be at least 1")
        self.client = client
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.secret_params = secret_params
        self.secret_headers = frozenset(name.lower() for name in secret_headers)
        self.max_response_bytes = max_response_bytes
        self.stop = stop
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._max_bytes: dict[str, int] = {}
        self._requests = 0
        self._count_lock = threading.Lock()

    @property
    def requests(self) -> int:
        """HTTP requests sent so far by this process (every attempt counts)."""
        with self._count_lock:
            return self._requests

    @contextmanager
    def counting(self) -> Iterator[RequestCounter]:
        """Count the requests sent in this context (and threads copying it) on their own."""
        counter = RequestCounter()
        token = _RUN_COUNTER.set(counter)
        try:
            yield counter
        finally:
            _RUN_COUNTER.reset(token)

    def set_max_bytes(self, rate_key: str, max_bytes: int) -> None:
        """Cap the decoded body of responses fetched under ``rate_key`` (one source)."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes for {rate_key} must be at least 1, not {max_bytes}")
        self._max_bytes[rate_key] = max_bytes

    def redact(self, url: str | httpx.URL) -> str:
        """``url`` with this fetcher's secret parameters replaced by ``REDACTED``."""
        return redact_url(url, self.secret_params)

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        rate_key: str | None = None,
    ) -> httpx.Response:
        """GET ``url`` and return the successful (2xx) response, its body read.

        ``rate_key`` overrides the host as the rate limit's key (several APIs behind one
        host, as in the local emulator); it also selects the source's size cap. Raises
        ``Interrupted`` once a stop is requested, ``RateLimited`` when 429s outlast the
        attempts and ``FetchError`` for any other failure.
        """
        request = self.client.build_request("GET", url, params=params, headers=headers)
        origin = request.url
        shown = self.redact(request.url)
        key = rate_key if rate_key is not None else request.url.host
        max_bytes = self._max_bytes.get(key, self.max_response_bytes)
        attempt, redirects = 1, 0
        while True:
            self._check_stop(shown)
            try:
                with self.limiter.slot(key):
                    self.limiter.acquire(key)
                    self._check_stop(shown)  # the pace may have waited through a stop
                    self._count()
                    response = self._send(request, max_bytes)
            except DeadlineExceeded as e:
                # a server that cannot finish within the deadline will not on the next try
                raise FetchError(str(e), url=shown) from e
            except ResponseTooLarge as e:
                log.error("response refused", url=shown, max_bytes=max_bytes)
                raise FetchError(
                    f"response larger than the {max_bytes:,} byte limit; not read further",
                    url=shown,
                ) from e
            except (httpx.TransportError, httpx.DecodingError) as e:
                # Timeouts, refused connections, and bodies shorter than their
                # Content-Length (httpx raises RemoteProtocolError) are all worth a retry.
                self._check_stop(shown, cause=e)
                error = self._scrub(f"{type(e).__name__}: {e}", request)
                if attempt == self.max_attempts:
                    raise FetchError(
                        f"request failed after {_plural(attempt, 'attempt')}: {error}", url=shown
                    ) from e
                self._wait(shown, attempt, None, status=None, error=error)
                attempt += 1
                continue

            status = response.status_code
            if response.is_redirect:
                redirects += 1
                request = self._follow(request, response, origin, shown, redirects)
                continue
            if response.is_success:
                log.debug("request done", url=shown, status=status, attempt=attempt)
                return response
            if status == 429 or status >= 500:
                if attempt == self.max_attempts:
                    error_class = RateLimited if status == 429 else FetchError
                    raise error_class(
                        f"HTTP {status} after {_plural(attempt, 'attempt')}: "
                        f"{self._snippet(response, request)}",
                        url=shown,
                        status=status,
                    )
                self._wait(shown, attempt, response, status=status, error=None)
                attempt += 1
                continue
            raise FetchError(
                f"HTTP {status}: {self._snippet(response, request)}", url=shown, status=status
            )

    def _count(self) -> None:
        with self._count_lock:
            self._requests += 1
        counter = _RUN_COUNTER.get()
        if counter is not None:
            counter.add()

    def _check_stop(self, shown: str, *, cause: BaseException | None = None) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("stopped: no further request sent", url=shown) from cause

    def _send(self, request: httpx.Request, max_bytes: int) -> httpx.Response:
        """``request`` sent and its body read, counting decoded bytes as they stream."""
        response = self.client.send(request, stream=True)
        try:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > max_bytes:
                raise ResponseTooLarge(f"Content-Length {length} over the limit")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ResponseTooLarge(f"more than {max_bytes} bytes decoded")
                chunks.append(chunk)
        finally:
            response.close()
        # the body is decoded already: the copy must not claim an encoding (httpx would
        # decode it again) or the wire's length
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-encoding", "content-length")
        ]
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=b"".join(chunks),
            request=response.request,
            extensions=response.extensions,
        )

    def _follow(
        self,
        request: httpx.Request,
        response: httpx.Response,
        origin: httpx.URL,
        shown: str,
        redirects: int,
    ) -> httpx.Request:
        """The request a same-host redirect leads to; FetchError for any other."""
        target = request.url.join(response.headers["Location"])
        where = self._scrub(self.redact(target), request)
        same_host = (
            target.host == origin.host
            and target.port == origin.port
            and (target.scheme == origin.scheme or (origin.scheme, target.scheme) == _UPGRADE)
        )
        if not same_host:
            # the request carries the API's credentials (a header or a parameter): another
            # host must never receive them, so the redirect is not followed at all
            log.warning("redirect refused", url=shown, status=response.status_code, location=where)
            raise FetchError(
                f"HTTP {response.status_code} redirect to another host refused: {where}",
                url=shown,
                status=response.status_code,
            )
        if redirects > MAX_REDIRECTS:
            raise FetchError(f"more than {MAX_REDIRECTS} redirects", url=shown)
        log.debug("redirect followed", url=shown, location=where)
        return self.client.build_request("GET", target, headers=request.headers)

    def _wait(
        self,
        shown: str,
        attempt: int,
        response: httpx.Response | None,
        *,
        status: int | None,
        error: str | None,
    ) -> None:
        retry_after = None if response is None else retry_after_seconds(response)
        if retry_after is not None:
            delay = min(retry_after, self.backoff_max)
        else:
            # Exponential backoff with full jitter (AWS Architecture Blog, 2015).
            ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
            delay = self._rng.uniform(0, ceiling)
        log.warning(
            "request retried",
            url=shown,
            status=status,
            error=error,
            attempt=attempt,
            delay=round(delay, 3),
            retry_after=retry_after,
        )
        self._sleep(delay)  # the app's sleep returns early on a stop request
        self._check_stop(shown)

    def _snippet(self, response: httpx.Response, request: httpx.Request) -> str:
        text = " ".join(response.text[: _SNIPPET_CHARS * 2].split())
        text = text[:_SNIPPET_CHARS] if text else "(empty body)"
        return self._scrub(text, request)

    def _scrub(self, text: str, request: httpx.Request) -> str:
        # Some APIs echo the request (and its key) in error bodies and messages: the values
        # of secret query parameters and of secret headers (x-api-key, Authorization).
        url = request.url
        secrets = {name.lower() for name in self.secret_params}
        values = [v for n, v in url.params.multi_items() if n.lower() in secrets and v]
        for name, value in request.headers.multi_items():
            if name.lower() in self.secret_headers and len(value) >= 4:
                values.append(value)
                scheme, _, credential = value.partition(" ")  # "Bearer <token>"
                if credential and scheme.isalpha():
                    values.append(credential)
        text = text.replace(str(url), self.redact(url))
        for value in sorted(values, key=len, reverse=True):
            text = text.replace(value, REDACTED)
        return text


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The wait a ``Retry-After`` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    when = _http_date(value)
    if when is None:
        return None
    # Measured against the server's own Date when it sends one, so clock skew cancels out.
    now = _http_date(response.headers.get("Date", "")) or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
