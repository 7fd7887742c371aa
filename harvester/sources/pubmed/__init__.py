"""PubMed through NCBI E-utilities (https://www.ncbi.nlm.nih.gov/books/NBK25499/).

``PubMedSource.fetch`` does the HTTP (esearch on the history server, then efetch in batches);
``records`` reads the responses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING

import structlog

from harvester.query.translate import to_pubmed
from harvester.registry import SOURCE_INFO
from harvester.sources.base import ApiSource, Page, Window
from harvester.sources.pubmed.cutter import parse_efetch
from harvester.sources.pubmed.esearch import ESearchResult, parse_esearch

if TYPE_CHECKING:
    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

log = structlog.get_logger(__name__)

__all__ = ["ESearchResult", "PubMedSource", "parse_efetch", "parse_esearch"]


class PubMedSource(ApiSource):
    """NCBI E-utilities: esearch (history server) then efetch in batches.

    The window is on the Entrez date (``datetype=edat``): the day a record entered PubMed.
    Publication-date windows miss records indexed late, which is most of them.
    """

    INFO = SOURCE_INFO["pubmed"]  # the registry entry: label, key, caps, preference
    BASE_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
    # NCBI: "no more than 3 requests per second" without an API key, 10 with one
    RATE_ANONYMOUS = 3.0
    RATE_WITH_KEY = 10.0
    DEFAULT_OVERLAP = timedelta(days=2)
    # esearch cannot page past the 10,000th record (retstart ≤ 9,998), so larger windows split
    MAX_PER_SEARCH = 9999
    # NCBI allows efetch up to 10,000 records; 1,000 keeps a response near 15 MB
    BATCH = 1000

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        base_url: str = BASE_URL,
        email: str | None = None,
        api_key: str | None = None,
        tool: str = "harvester",
        batch_size: int = BATCH,
        max_per_search: int = MAX_PER_SEARCH,
    ) -> None:
        super().__init__(fetcher, base_url)
        self.batch_size = batch_size
        self.max_per_search = max_per_search
        self._identity: dict[str, str] = {"tool": tool}
        if email:
            self._identity["email"] = email
        if api_key:
            self._identity["api_key"] = api_key

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> PubMedSource:
        return cls(
            fetcher,
            base_url=settings.base_url or cls.BASE_URL,
            email=settings.contact,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            batch_size=settings.page_size or cls.BATCH,
        )

    @classmethod
    def rate(cls, settings: SourceSettings) -> float:
        default = cls.RATE_WITH_KEY if settings.api_key else cls.RATE_ANONYMOUS
        return settings.requests_per_second or default

    # what ApiSource's translate() and parse() call
    to_syntax = staticmethod(to_pubmed)
    read_answer = staticmethod(parse_efetch)

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        first, last = window.start.date(), window.end.date()
        skip_until, start_at = _read_cursor(resume)
        number = 0
        whole = self._esearch(term, first, last)  # its Count is what the window holds
        for lo, hi, search in self._searches(term, first, last, whole):
            if skip_until is not None and hi < skip_until:
                continue
            retstart = start_at if skip_until is not None and lo == skip_until else 0
            skip_until = None
            available = min(search.count, self.max_per_search)
            while retstart < available:
                retmax = min(self.batch_size, available - retstart)
                response = self.fetcher.get(
                    f"{self.base_url}/efetch.fcgi",
                    {
                        "db": "pubmed",
                        "WebEnv": search.webenv or "",
                        "query_key": search.query_key or "",
                        "retstart": retstart,
                        "retmax": retmax,
                        "retmode": "xml",
                        **self._identity,
                    },
                    rate_key=self.rate_key,
                )
                retstart += retmax
                number += 1
                more = retstart < available
                yield Page.received(
                    self,
                    response,
                    url=self.fetcher.redact(response.url),
                    number=number,
                    cursor=f"{lo.isoformat()}:{retstart}" if more else f"{hi.isoformat()}:done",
                    total=whole.count,
                )

    def _esearch(self, term: str, lo: date, hi: date) -> ESearchResult:
        response = self.fetcher.get(
            f"{self.base_url}/esearch.fcgi",
            {
                "db": "pubmed",
                "term": term,
                "datetype": "edat",
                "mindate": lo.strftime("%Y/%m/%d"),
                "maxdate": hi.strftime("%Y/%m/%d"),
                "usehistory": "y",
                "retmax": 0,
                "retmode": "xml",
                **self._identity,
            },
            rate_key=self.rate_key,
        )
        return parse_esearch(response.content, url=self.fetcher.redact(response.url))

    def _searches(
        self, term: str, lo: date, hi: date, search: ESearchResult | None = None
    ) -> Iterator[tuple[date, date, ESearchResult]]:
        """Date windows, oldest first, each small enough to be retrieved whole."""
        search = search or self._esearch(term, lo, hi)
        if search.count <= self.max_per_search:
            if search.count:
                yield lo, hi, search
            return
        if lo == hi:
            # one day holds more than esearch can page through: take what it gives, say so
            log.error(
                "window too large",
                day=lo.isoformat(),
                count=search.count,
                retrievable=self.max_per_search,
            )
            yield lo, hi, search
            return
        middle = lo + (hi - lo) // 2
        log.info("window split", start=lo.isoformat(), end=hi.isoformat(), count=search.count)
        yield from self._searches(term, lo, middle)
        yield from self._searches(term, middle + timedelta(days=1), hi)


def _read_cursor(cursor: str | None) -> tuple[date | None, int]:
    """A page cursor is ``<day>:<retstart>`` (continue that sub-window) or ``<day>:done``."""
    if not cursor:
        return None, 0
    day, _, position = cursor.partition(":")
    try:
        start = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"not a PubMed cursor: {cursor!r}") from None
    if position == "done":
        return start + timedelta(days=1), 0
    return start, int(position)
