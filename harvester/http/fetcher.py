"""The fetcher every source shares: paced GETs, retries, same-host redirects, secrets redacted.

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

URLs in logs and exceptions have their secrets replaced by ``REDACTED``, and so have the
values of secret headers echoed in an error body.
"""

from __future__ import annotations

import contextvars
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from harvester.errors import FetchError, Interrupted, RateLimited
from harvester.http.ratelimit import RateLimiter
from harvester.http.transport import DEFAULT_MAX_RESPONSE_BYTES, DeadlineExceeded, ResponseTooLarge

log = structlog.get_logger(__name__)

DEFAULT_SECRET_PARAMS = frozenset({"api_key", "api-key", "key", "token"})
# Request headers whose values are credentials (Semantic Scholar: x-api-key).
DEFAULT_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie"}
)
REDACTED = "REDACTED"
MAX_REDIRECTS = 5
_UPGRADE = ("http", "https")  # a redirect from http to https on the same host is followed
_SNIPPET_CHARS = 200


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
        # secret names match in any case (redact_url's rule for parameters, HTTP's for headers)
        self.secret_params = frozenset(name.lower() for name in secret_params)
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
        values = [v for n, v in url.params.multi_items() if n.lower() in self.secret_params and v]
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
