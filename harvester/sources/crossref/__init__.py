"""Crossref through its REST API (https://api.crossref.org, "Swagger" docs and
https://www.crossref.org/documentation/retrieve-metadata/rest-api/).

``CrossrefSource.fetch`` pages through ``/works`` with deep-paging cursors; ``records``
reads the answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from harvester.errors import FetchError
from harvester.query.translate import to_crossref
from harvester.registry import SOURCE_INFO
from harvester.sources.base import ApiSource, Page, Window
from harvester.sources.crossref.records import WorksHeader, error_text, parse_works, read_header

if TYPE_CHECKING:
    import httpx

    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

log = structlog.get_logger(__name__)

__all__ = ["CrossrefSource", "WorksHeader", "error_text", "parse_works", "read_header"]

_INTERVAL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class CrossrefSource(ApiSource):
    """Crossref ``/works`` filtered on the index date, paged with ``cursor``.

    The window is on ``indexed`` (from-index-date/until-index-date): the day Crossref last
    (re)indexed a work, which covers new registrations and updated metadata alike; dedup
    absorbs the repeats. Crossref has no Boolean search, so ``query.bibliographic`` only
    ranks; the topic's query is applied locally.
    """

    INFO = SOURCE_INFO["crossref"]  # the registry entry: label, key, caps, preference
    BASE_URL = "https://api.crossref.org"
    # Crossref REST API etiquette (Dec 2025): anonymous ("public") 5 requests/s and one
    # at a time; with a mailto ("polite") 10 requests/s and 3 at a time (the in-flight caps
    # are in the registry entry). A source fetches sequentially, so concurrency stays at
    # one either way.
    RATE_ANONYMOUS = 5.0
    RATE_POLITE = 10.0
    DEFAULT_OVERLAP = timedelta(days=1)
    # Crossref: rows up to 1000 with cursors.
    ROWS = 1000
    # Crossref: cursors expire after five minutes unused; a window restarts from `*` at most
    # this many times before the error is raised.
    MAX_RESTARTS = 2

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        base_url: str = BASE_URL,
        mailto: str | None = None,
        rows: int = ROWS,
        max_restarts: int = MAX_RESTARTS,
    ) -> None:
        super().__init__(fetcher, base_url)
        self.rows = max(1, min(rows, self.ROWS))
        self.max_restarts = max_restarts
        self._identity = {"mailto": mailto} if mailto else {}

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> CrossrefSource:
        return cls(
            fetcher,
            base_url=settings.base_url or cls.BASE_URL,
            mailto=settings.contact,
            rows=settings.page_size or cls.ROWS,
        )

    @classmethod
    def rate(cls, settings: SourceSettings) -> float:
        default = cls.RATE_POLITE if settings.contact else cls.RATE_ANONYMOUS
        return settings.requests_per_second or default

    # what ApiSource's translate() and parse() call
    to_syntax = staticmethod(to_crossref)
    read_answer = staticmethod(parse_works)

    def fetch(
        self, term: str, window: Window, *, resume: str | None = None, filters: str = ""
    ) -> Iterator[Page]:
        """``filters``: more Crossref filters, comma-separated (the update job's
        ``update-type:…``)."""
        params: dict[str, str | int] = {
            "filter": (
                f"from-index-date:{window.start.date().isoformat()},"
                f"until-index-date:{window.end.date().isoformat()}"
            )
            + (f",{filters}" if filters else ""),
            "rows": self.rows,
            **self._identity,
        }
        if term.strip():
            params["query.bibliographic"] = term
        cursor = resume or "*"
        restarts = 0
        number = 0
        while True:
            try:
                response = self.fetcher.get(
                    f"{self.base_url}/works", {**params, "cursor": cursor}, rate_key=self.rate_key
                )
            except FetchError as error:
                if cursor == "*" or not _cursor_expired(error) or restarts >= self.max_restarts:
                    raise
                restarts += 1
                # Pages already yielded come again; dedup makes the repeats harmless.
                log.warning("cursor expired, window restarted", restart=restarts, pages=number)
                cursor = "*"
                continue
            self._adapt_rate(response)
            url = self.fetcher.redact(response.url)
            header = read_header(response.content, url=url)
            if header.items == 0:  # Crossref: deep paging ends with an empty items list
                log.debug("works done", pages=number, total=header.total)
                return
            number += 1
            yield Page.received(
                self,
                response,
                url=url,
                number=number,
                cursor=header.next_cursor,
                total=header.total,
            )
            if header.next_cursor is None:
                return
            cursor = header.next_cursor

    def _adapt_rate(self, response: httpx.Response) -> None:
        # Crossref announces its current limit as x-rate-limit-limit per x-rate-limit-interval
        # ("50", "1s"); it changes them under load, and slower is what we follow.
        limit = response.headers.get("x-rate-limit-limit")
        interval = _seconds(response.headers.get("x-rate-limit-interval"))
        if limit is not None and limit.strip().isdigit() and interval:
            self.fetcher.limiter.adapt(self.rate_key, int(limit), interval)


def _cursor_expired(error: FetchError) -> bool:
    # Crossref: HTTP 404 resource-failure, message type "cursor-invalid" (as recorded in
    # crossref/works_404_cursor_invalid.json). FetchError keeps the start of the body.
    return error.status == 404 and "cursor-invalid" in str(error)


def _seconds(value: str | None) -> float | None:
    match = _INTERVAL.match(value or "")
    if match is None:
        return None
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    return seconds if seconds > 0 else None
