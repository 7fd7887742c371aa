"""OpenAlex works (https://developers.openalex.org/).

``OpenAlexSource.fetch`` pages ``/works`` with a cursor; ``records.parse_works`` reads a page
(pure).

The window is a publication-date window: OpenAlex's created/updated-date filters are for
paying users only, and a work is often indexed weeks after its publication date, so the
window is widened by a generous overlap (``DEFAULT_OVERLAP``) and dedup absorbs the repeats.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import structlog

from harvester.errors import ConfigError, FetchError
from harvester.query.translate import to_openalex
from harvester.registry import SOURCE_INFO
from harvester.sources.base import ApiSource, Page, Window
from harvester.sources.openalex.records import (
    _listing_meta,
    abstract_from_inverted_index,
    parse_works,
)

if TYPE_CHECKING:
    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

__all__ = [
    "OpenAlexSource",
    "abstract_from_inverted_index",
    "credit_pace",
    "parse_works",
    "smaller_page_size",
]

log = structlog.get_logger(__name__)


class OpenAlexSource(ApiSource):
    """OpenAlex ``/works`` filtered by title/abstract search and publication date, paged
    with ``cursor=*`` then ``meta.next_cursor`` until it is null or a page is empty."""

    INFO = SOURCE_INFO["openalex"]  # the registry entry: label, key, caps, preference
    BASE_URL = "https://api.openalex.org"
    # OpenAlex: an API key is required from 13 February 2026 (keyless use gets $0.01/day):
    # INFO.requires_key, hence REQUIRES_KEY.
    # OpenAlex allows 100 requests/s; the daily credit budget is the real limit, so a
    # modest pace leaves room for other jobs sharing the key.
    RATE = 10.0
    DEFAULT_OVERLAP = timedelta(days=30)
    # OpenAlex, "Page through results" (https://developers.openalex.org/guides/
    # page-through-results): per_page 1-100 (the older docs said per-page 1-200, and a
    # server enforcing the new range answers 400 to 200).
    PER_PAGE = 100
    PAGE_SIZE_PARAM = "per_page"  # the spelling of the current docs
    # When the credits left today cover fewer list requests than this, the pace is lowered
    # to spread them until the daily reset (RateLimiter.adapt only ever lowers a rate).
    LOW_CREDITS_REQUESTS = 100

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        api_key: str,
        base_url: str = BASE_URL,
        mailto: str | None = None,
        per_page: int = PER_PAGE,
    ) -> None:
        super().__init__(fetcher, base_url)
        self.per_page = min(per_page, self.PER_PAGE)
        self._identity = {"api_key": api_key, **({"mailto": mailto} if mailto else {})}

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> OpenAlexSource:
        if settings.api_key is None:
            raise ConfigError(
                f"[sources.openalex]: OpenAlex needs an API key: set api_key_env to the name "
                f"of the environment variable holding it (e.g. {cls.KEY_ENV})"
            )
        return cls(
            fetcher,
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url or cls.BASE_URL,
            mailto=settings.contact,
            per_page=settings.page_size or cls.PER_PAGE,
        )

    # what ApiSource's translate() and parse() call
    to_syntax = staticmethod(to_openalex)
    read_answer = staticmethod(parse_works)

    def fetch(
        self, term: str, window: Window, *, resume: str | None = None, dates: str | None = None
    ) -> Iterator[Page]:
        """``dates``: another date filter for the window (the update job's
        ``from_updated_date``), instead of the publication dates."""
        dates = dates or (
            f"from_publication_date:{window.start.date().isoformat()},"
            f"to_publication_date:{window.end.date().isoformat()}"
        )
        cursor = resume or "*"
        sent: set[str] = set()
        number = 0
        while True:
            sent.add(cursor)
            try:
                response = self.fetcher.get(
                    f"{self.base_url}/works",
                    {
                        "filter": f"{term},{dates}" if term else dates,
                        self.PAGE_SIZE_PARAM: self.per_page,
                        "cursor": cursor,
                        **self._identity,
                    },
                    rate_key=self.rate_key,
                )
            except FetchError as error:
                smaller = smaller_page_size(error, self.per_page)
                if smaller is None:
                    raise
                # The same page again with the size the server allows; kept on self, which
                # the app holds for the whole process, so later runs ask for it at once.
                log.warning(
                    "page size lowered", requested=self.per_page, accepted=smaller, status=400
                )
                self.per_page = smaller
                continue
            shown = self.fetcher.redact(response.url)
            self._honour_credits(response.headers)
            listing = _listing_meta(response.content, shown)
            self._note_page_size(listing.per_page)
            next_cursor = listing.next_cursor
            if not listing.results or next_cursor in sent:
                if listing.results:  # a cursor already used came back: paging would loop
                    log.error("cursor repeated", url=shown, cursor=next_cursor)
                next_cursor = None
            number += 1
            yield Page.received(
                self,
                response,
                url=shown,
                number=number,
                cursor=next_cursor,
                total=listing.count,
            )
            if next_cursor is None:
                return
            cursor = next_cursor

    def _note_page_size(self, accepted: int | None) -> None:
        if accepted is not None and 0 < accepted < self.per_page:
            log.warning("page size lowered", requested=self.per_page, accepted=accepted)
            self.per_page = accepted

    def _honour_credits(self, headers: Mapping[str, str]) -> None:
        pace = credit_pace(headers, low=self.LOW_CREDITS_REQUESTS)
        if pace is None:
            return
        requests_left, seconds = pace
        if requests_left <= 0:
            log.warning("credits exhausted", reset_s=round(seconds))
            return
        self.fetcher.limiter.adapt(self.rate_key, requests_left, seconds)


# OpenAlex's 400 for a page size out of range: "per-page parameter must be between 1 and 100"
# (either spelling of the parameter); the upper bound, when the message names one, is used.
_PAGE_SIZE_PARAM = re.compile(r"\bper[-_ ]?page\b", re.I)
_PAGE_SIZE_MAX = re.compile(
    r"between\s+\d+\s+and\s+(\d+)|(?:at most|maximum(?: of| is)?|<=|≤)\s*(\d+)", re.I
)


def smaller_page_size(error: FetchError, requested: int) -> int | None:
    """The page size to ask for after ``error``, if it is OpenAlex refusing ``requested``
    as a page size (HTTP 400 naming the page-size parameter): the maximum the message names,
    else half of ``requested``; None for any other error, or when it cannot get smaller."""
    message = str(error)
    if error.status != 400 or not _PAGE_SIZE_PARAM.search(message):
        return None
    bound = _PAGE_SIZE_MAX.search(message)
    named = int(bound.group(1) or bound.group(2)) if bound else None
    smaller = named if named is not None and 0 < named < requested else requested // 2
    return smaller if 0 < smaller < requested else None


def credit_pace(headers: Mapping[str, str], *, low: int) -> tuple[int, float] | None:
    """``(requests, seconds)`` the credits left allow until the daily reset, once they fall
    below ``low`` requests; None while there are plenty or the headers are absent.

    OpenAlex sends ``X-RateLimit-Limit`` (daily credits), ``X-RateLimit-Remaining``,
    ``X-RateLimit-Credits-Used`` (this request's cost) and ``X-RateLimit-Reset``
    (https://docs.openalex.org/how-to-use-the-api/rate-limits-and-authentication).
    """
    remaining = _header_number(headers, "x-ratelimit-remaining")
    reset = _header_number(headers, "x-ratelimit-reset")
    if remaining is None or reset is None:
        return None
    cost = max(1.0, _header_number(headers, "x-ratelimit-credits-used") or 1.0)
    if reset > 2 * 86_400:  # an epoch timestamp rather than seconds to go
        date = headers.get("date")
        try:
            now = parsedate_to_datetime(date).timestamp() if date else None
        except (TypeError, ValueError):
            now = None
        if now is None:
            return None
        reset -= now
    requests_left = int(remaining // cost)
    if requests_left >= low:
        return None
    return requests_left, max(1.0, reset)


def _header_number(headers: Mapping[str, str], name: str) -> float | None:
    try:
        value = float(headers.get(name, ""))
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None
