"""Pacing: one request rate (GCRA) and one in-flight cap per host, shared by the process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction

import structlog

log = structlog.get_logger(__name__)
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
