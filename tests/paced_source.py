"""A fake source at a given pace: the recorded two-record PubMed page (real, see
recorded_source), one page per window, each page waiting for its slot in the app's own rate
limiter as a real source's requests do. For scheduler tests and benchmarks/scale.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from harvester.http.ratelimit import RateLimiter
from harvester.sources.base import Page, Window
from tests.recorded_source import RecordedSource, recorded


class PacedSource(RecordedSource):
    def __init__(self, limiter: RateLimiter, *, host: str, requests_per_second: float) -> None:
        body = recorded()
        super().__init__(lambda _w: [body])
        self.limiter = limiter
        self.host = host
        limiter.set_rate(host, requests_per_second)
        self._lock = threading.Lock()

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        self.limiter.acquire(self.host)  # the source's pace, as a request waits for it
        with self._lock:  # windows is appended from several threads in the old scheduler
            pages = list(super().fetch(term, window, resume=resume))
        yield from pages
