"""Europe PMC through its REST search (https://europepmc.org/RestfulWebService).

``EuropePMCSource.fetch`` pages through one search with ``cursorMark``; ``records`` reads
the answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from harvester.query.translate import to_europepmc
from harvester.registry import SOURCE_INFO
from harvester.sources.base import ApiSource, Page, Window
from harvester.sources.europepmc.records import SearchHeader, parse_search, read_header

if TYPE_CHECKING:
    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

log = structlog.get_logger(__name__)

__all__ = ["EuropePMCSource", "SearchHeader", "parse_search", "read_header"]


class EuropePMCSource(ApiSource):
    """Europe PMC ``search`` with ``resultType=core``, paged by ``cursorMark``.

    The window is on ``FIRST_IDATE``, the day a record was first indexed by Europe PMC, so
    late-indexed records (and preprints, source PPR) are found when they arrive.
    """

    INFO = SOURCE_INFO["europepmc"]  # the registry entry: label, key, caps, preference
    BASE_URL = "https://www.ebi.ac.uk/europepmc/webservices/rest"
    # Europe PMC: at most 10 requests a second and 500 a minute; 500/60 (8.33/s) keeps both.
    RATE = 500 / 60
    DEFAULT_OVERLAP = timedelta(days=2)
    # Europe PMC: pageSize "1 to 1000".
    PAGE_SIZE = 1000

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        base_url: str = BASE_URL,
        email: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(fetcher, base_url)
        self.page_size = max(1, min(page_size, self.PAGE_SIZE))
        # Europe PMC asks heavy users to identify themselves with the `email` parameter.
        self._identity = {"email": email} if email else {}

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> EuropePMCSource:
        return cls(
            fetcher,
            base_url=settings.base_url or cls.BASE_URL,
            email=settings.contact,
            page_size=settings.page_size or cls.PAGE_SIZE,
        )

    def search_query(self, term: str, window: Window) -> str:
        """``term`` restricted to records first indexed within the window (days, inclusive);
        no term: the window's whole delta (shared harvesting)."""
        first, last = window.start.date().isoformat(), window.end.date().isoformat()
        span = f"FIRST_IDATE:[{first} TO {last}]"
        return f"({term}) AND {span}" if term.strip() else span

    # what ApiSource's translate() and parse() call
    to_syntax = staticmethod(to_europepmc)
    read_answer = staticmethod(parse_search)

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        cursor = resume or "*"
        query = self.search_query(term, window)
        number = 0
        while True:
            response = self.fetcher.get(
                f"{self.base_url}/search",
                {
                    "query": query,
                    "resultType": "core",
                    "format": "json",
                    "cursorMark": cursor,
                    "pageSize": self.page_size,
                    **self._identity,
                },
                rate_key=self.rate_key,
            )
            url = self.fetcher.redact(response.url)
            header = read_header(response.content, url=url)
            # Europe PMC: the last page's nextCursorMark is absent or repeats the cursor sent.
            following = header.next_cursor if header.next_cursor != cursor else None
            if header.results == 0 and number > 0:
                return  # the answer after the last page: nothing more to yield
            number += 1
            yield Page.received(
                self,
                response,
                url=url,
                number=number,
                cursor=following,
                total=header.hit_count,
            )
            if following is None or header.results == 0:
                log.debug("search done", pages=number, hits=header.hit_count)
                return
            cursor = following
