"""The HTTP layer every source shares: a polite client, per-host rate limits, retries.

One request, as a source sees it::

    fetcher.get(url, params)
      ├─ limiter.acquire(host)       # paced at the START of each attempt, one pace per host
      ├─ client.send(request)        # body read in full; a short body is a transport error
      ├─ 2xx                         → the response
      ├─ 429 / 5xx / timeout / transport error
      │    → sleep(Retry-After or exponential backoff with full jitter), try again
      │    → out of attempts: RateLimited (429) or FetchError
      └─ other 4xx                   → FetchError at once, with a snippet of the body

Nothing here is global: ``app.build_app`` builds one client, one limiter and one fetcher
and hands them to the sources. URLs in logs and exceptions have their secrets replaced by
``REDACTED``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from fractions import Fraction

import httpx
import structlog
from pyrate_limiter import GCRA, Limiter, Rate, SingleBucketFactory, StateBucket

from harvester import __version__
from harvester.errors import FetchError, RateLimited

log = structlog.get_logger(__name__)

PROJECT_URL = "https://github.com/harvester-project/harvester"
DEFAULT_SECRET_PARAMS = frozenset({"api_key", "api-key", "key", "token"})
REDACTED = "REDACTED"
_SNIPPET_CHARS = 200


def user_agent(contact: str | None) -> str:
    """The polite identification APIs ask for (Crossref, OpenAlex: a mailto to reach us)."""
    if contact:
        return f"harvester/{__version__} (+{PROJECT_URL}; mailto:{contact})"
    return f"harvester/{__version__} (+{PROJECT_URL})"


def build_client(
    *,
    contact: str | None,
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """An ``httpx.Client`` that identifies harvester, follows redirects and times out."""
    return httpx.Client(
        headers={"User-Agent": user_agent(contact)},
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        transport=transport,
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


class RateLimiter:
    """One request pace per host, shared by every job (thread) of the process.

    Built on pyrate-limiter's GCRA with a burst of one, so requests are spread evenly:
    at 3 per second a request may start every 334 ms, at 1/3 per second every 3 s.
    A host without a rate is not limited.
    """

    def __init__(self, *, buffer_ms: int = 1) -> None:
        # buffer_ms: pyrate-limiter's margin added to each computed wait. The app already
        # paces 3 % under each published limit, so it only covers timer precision; a larger
        # buffer is added to every paced request and costs a sequential harvest its rate
        # (10 ms is 10 % of a 10 requests/s budget).
        self._buffer_ms = buffer_ms
        self._limiters: dict[str, Limiter] = {}
        self._buckets: dict[str, StateBucket] = {}
        self._rates: dict[str, Fraction] = {}
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

    def acquire(self, host: str) -> None:
        """Block until a request to ``host`` may start."""
        with self._lock:
            limiter = self._limiters.get(host)
        if limiter is None:
            return
        if limiter.try_acquire(host) is not True:  # only if a weight can never fit
            raise RuntimeError(f"rate limiter refused {host}")

    def _install(self, host: str, per_second: Fraction, *, only_lower: bool = False) -> bool:
        # Rate(n, d seconds): n requests per d * 1000 ms, spaced evenly (burst=1).
        rate = Rate(per_second.numerator, per_second.denominator * 1000, burst=1)
        with self._lock:
            current = self._rates.get(host)
            if only_lower and current is not None and current <= per_second:
                return False
            bucket = self._buckets.get(host)
            if bucket is None:
                bucket = StateBucket([rate], algorithm=GCRA())
                factory = SingleBucketFactory(bucket, schedule_leak=False)  # GCRA never leaks
                self._buckets[host] = bucket
                self._limiters[host] = Limiter(factory, buffer_ms=self._buffer_ms)
            else:
                # Same bucket, same stored arrival time: the new pace applies from now on.
                bucket.rates = [rate]
            self._rates[host] = per_second
            return True


class Fetcher:
    """GETs with a per-host rate limit, retries with backoff, and secrets kept out of logs."""

    def __init__(
        self,
        client: httpx.Client,
        limiter: RateLimiter,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        secret_params: frozenset[str] = DEFAULT_SECRET_PARAMS,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.client = client
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.secret_params = secret_params
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._requests = 0
        self._count_lock = threading.Lock()

    @property
    def requests(self) -> int:
        """HTTP requests sent so far (every attempt counts)."""
        with self._count_lock:
            return self._requests

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
        host, as in the local emulator). Raises ``RateLimited`` when 429s outlast the
        attempts and ``FetchError`` for any other failure.
        """
        request = self.client.build_request("GET", url, params=params, headers=headers)
        shown = self.redact(request.url)
        key = rate_key if rate_key is not None else request.url.host
        for attempt in range(1, self.max_attempts + 1):
            try:
                with self.limiter.slot(key):
                    self.limiter.acquire(key)
                    with self._count_lock:
                        self._requests += 1
                    response = self.client.send(request)
            except (httpx.TransportError, httpx.DecodingError) as e:
                # Timeouts, refused connections, and bodies shorter than their
                # Content-Length (httpx raises RemoteProtocolError) are all worth a retry.
                error = self._scrub(f"{type(e).__name__}: {e}", request.url)
                if attempt == self.max_attempts:
                    raise FetchError(
                        f"request failed after {attempt} attempts: {error}", url=shown
                    ) from e
                self._wait(shown, attempt, None, status=None, error=error)
                continue
            except httpx.TooManyRedirects as e:
                raise FetchError("too many redirects", url=shown) from e

            status = response.status_code
            if response.is_success:
                log.debug("request done", url=shown, status=status, attempt=attempt)
                return response
            if status == 429 or status >= 500:
                if attempt == self.max_attempts:
                    error_class = RateLimited if status == 429 else FetchError
                    raise error_class(
                        f"HTTP {status} after {attempt} attempts: {self._snippet(response)}",
                        url=shown,
                        status=status,
                    )
                self._wait(shown, attempt, response, status=status, error=None)
                continue
            raise FetchError(f"HTTP {status}: {self._snippet(response)}", url=shown, status=status)
        raise AssertionError("unreachable")  # the loop returns or raises

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
        self._sleep(delay)

    def _snippet(self, response: httpx.Response) -> str:
        text = " ".join(response.text[: _SNIPPET_CHARS * 2].split())
        text = text[:_SNIPPET_CHARS] if text else "(empty body)"
        return self._scrub(text, response.request.url)

    def _scrub(self, text: str, url: httpx.URL) -> str:
        # Some APIs echo the request (and its key) in error bodies and messages.
        secrets = {name.lower() for name in self.secret_params}
        for name, value in url.params.multi_items():
            if name.lower() in secrets and value:
                text = text.replace(value, REDACTED)
        return text.replace(str(url), self.redact(url))


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
