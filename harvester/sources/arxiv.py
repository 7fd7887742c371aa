"""arXiv through its Atom API (https://info.arxiv.org/help/api/user-manual.html).

::

    GET {base}/query?search_query=(<query>) AND submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]
                    &sortBy=submittedDate&sortOrder=ascending&start=N&max_results=2000
      -> Atom feed (opensearch:totalResults, <entry>…) -> parse_feed -> Records

Identifiers: ``ids.arxiv`` is the id without version; ``ids.doi`` is the preprint's own
DataCite DOI ``10.48550/arxiv.<id>``, which arXiv registers for every paper (also the DOI
OpenAlex, Crossref and DataCite give the preprint), so the preprint dedups with their records
of it. The journal version's DOI (``<arxiv:doi>``) is never ``ids.doi``: it would merge the
preprint with the article. It goes to ``published_doi`` so the two can be linked later, as
bioRxiv's ``published`` does. ``<arxiv:journal_ref>`` is a free-text citation of that
version, not this record's venue: ``venue`` stays None and journal_ref is not kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import structlog
from lxml import etree

from harvester.errors import ParseError
from harvester.query.translate import to_arxiv
from harvester.records import Author, Identifiers, Record
from harvester.registry import SOURCE_INFO
from harvester.sources.base import (
    MAX_RECORD_BYTES,
    ApiSource,
    Page,
    ParseResult,
    Skipped,
    Window,
    cut_records,
    is_utf8,
    offset_cursor,
    parse_items,
)
from harvester.text.fields import partial_date, split_name
from harvester.text.fold import collapse_whitespace
from harvester.text.identifiers import normalize_arxiv, normalize_doi
from harvester.text.markup import strip_markup

if TYPE_CHECKING:  # lxml ships no type information; these names are Any to mypy
    from lxml.etree import _Element

    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

log = structlog.get_logger(__name__)

__all__ = ["ArxivSource", "FeedInfo", "feed_info", "parse_feed"]

SOURCE = "arxiv"
ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
ARXIV = "{http://arxiv.org/schemas/atom}"
DATACITE_DOI = "10.48550/arxiv.{id}"
# arXiv's error feed: one entry whose <id> is https://arxiv.org/api/errors#<what>
# (see arxiv/query_id_list_malformed_id_error_400.xml).
_ERROR_ID = re.compile(r"^https?://(?:export\.)?arxiv\.org/api/errors", re.I)
_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")
_COLLECTIVE = re.compile(r"\b(?:collaboration|consortium|group|team|project)\b", re.I)


class _BadEntry(ValueError):
    """One entry that cannot become a Record; its page is still used."""


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What a feed says about the whole result: opensearch totalResults/startIndex, and
    how many entries this page holds."""

    total: int | None
    start: int | None
    entries: int


def _safe_parser() -> etree.XMLParser:
    # No entity expansion, no DTD or network access: the feed is untrusted input.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


_ENTRY = re.compile(rb"<entry[\s>]")
_ENTRY_END = re.compile(rb"</entry>")
_ENTRY_ID = re.compile(rb"<id>\s*([^<]{1,200}?)\s*</id>")


def _entry_id_of_bytes(entry: bytes) -> str | None:
    found = _ENTRY_ID.search(entry)
    raw = found.group(1).decode("utf-8", "replace") if found else None
    return normalize_arxiv(raw) or raw


def _read_feed(
    body: bytes, url: str, max_record_bytes: int = MAX_RECORD_BYTES
) -> tuple[_Element, tuple[Skipped, ...]]:
    """The feed's root, and the entries cut out of it before it was parsed: those over
    ``max_record_bytes``, and, when libxml2 refused the page, those holding bytes that are
    not UTF-8 (one such byte would cost the whole page)."""
    where = url or "arXiv response"
    body, cut = cut_records(
        body, _ENTRY, _ENTRY_END, _entry_id_of_bytes, max_record_bytes=max_record_bytes
    )
    try:
        root = etree.fromstring(body, _safe_parser())
    except etree.XMLSyntaxError as e:
        damaged: tuple[Skipped, ...] = ()
        if not is_utf8(body):
            body, damaged = cut_records(
                body, _ENTRY, _ENTRY_END, _entry_id_of_bytes, check_bytes=True
            )
        if not damaged:
            raise ParseError(f"{where}: not well-formed XML: {e}") from e
        return _read_feed(body, url, max_record_bytes)[0], cut + damaged
    if root.getroottree().docinfo.internalDTD is not None:
        # An Atom feed has no DOCTYPE; one with entity declarations is an expansion attack.
        raise ParseError(f"{where}: unexpected DOCTYPE (entity declarations are refused)")
    if root.tag != f"{ATOM}feed":
        raise ParseError(f"{where}: expected an Atom <feed>, got <{root.tag}>")
    for entry in root.iterchildren(f"{ATOM}entry"):
        if _ERROR_ID.match(_text(entry.find(f"{ATOM}id")) or ""):
            message = _text(entry.find(f"{ATOM}summary")) or _text(entry.find(f"{ATOM}title"))
            raise ParseError(f"{where}: arXiv API error: {message or 'unspecified'}")
    return root, cut


def feed_info(body: bytes, *, url: str = "") -> FeedInfo:
    """Totals and entry count of one feed page (raises ParseError like :func:`parse_feed`)."""
    root, cut = _read_feed(body, url)
    return FeedInfo(
        total=_count(root.find(f"{OPENSEARCH}totalResults")),
        start=_count(root.find(f"{OPENSEARCH}startIndex")),
        # entries cut out unread still count: paging goes on after a full page
        entries=sum(1 for _ in root.iterchildren(f"{ATOM}entry")) + len(cut),
    )


def parse_feed(
    body: bytes, *, url: str = "", max_record_bytes: int = MAX_RECORD_BYTES
) -> ParseResult:
    """Records of an arXiv API Atom feed.

    Raises ParseError for a malformed or truncated body and for arXiv's error feed; an
    entry without a usable arXiv id becomes a Skipped, and so does one over
    ``max_record_bytes`` or holding bytes that are not UTF-8.
    """
    root, cut = _read_feed(body, url, max_record_bytes)
    parsed = parse_items(
        root.iterchildren(f"{ATOM}entry"),
        lambda _index, entry: _record(entry),
        _entry_id,
        skip=_BadEntry,
        max_record_bytes=max_record_bytes,
    )
    return ParseResult(records=parsed.records, skipped=cut + parsed.skipped) if cut else parsed


def _entry_id(entry: _Element) -> str | None:
    raw = collapse_whitespace(_text(entry.find(f"{ATOM}id")))
    return normalize_arxiv(raw) or raw


def _record(entry: _Element) -> Record:
    raw_id = _text(entry.find(f"{ATOM}id"))
    arxiv_id = normalize_arxiv(raw_id)
    if arxiv_id is None:
        raise _BadEntry(f"no arXiv id in <id>: {raw_id!r}")
    published = _text(entry.find(f"{ATOM}published"))
    date = _DATE.match(published or "")
    when = partial_date(*date.groups()) if date else None
    return Record(
        source=SOURCE,
        source_id=arxiv_id,
        ids=Identifiers(arxiv=arxiv_id, doi=normalize_doi(DATACITE_DOI.format(id=arxiv_id))),
        title=strip_markup(_text(entry.find(f"{ATOM}title"))),
        abstract=strip_markup(_text(entry.find(f"{ATOM}summary"))),
        authors=_authors(entry),
        year=int(when[:4]) if when else None,
        published=when,
        type="preprint",
        url=_alternate(entry) or f"https://arxiv.org/abs/{arxiv_id}",
        keywords=_categories(entry),
        published_doi=_journal_doi(entry),
    )


def _text(element: _Element | None) -> str | None:
    if element is None:
        return None
    return "".join(element.itertext()) or None


def _count(element: _Element | None) -> int | None:
    text = (_text(element) or "").strip()
    return int(text) if text.isdigit() else None


def _authors(entry: _Element) -> tuple[Author, ...]:
    authors: list[Author] = []
    for author in entry.iterchildren(f"{ATOM}author"):
        name = strip_markup(_text(author.find(f"{ATOM}name")))
        if name is None:
            continue
        if _COLLECTIVE.search(name):  # "ATLAS Collaboration" is not Mr Collaboration
            authors.append(Author(collective=name))
            continue
        family, given = split_name(name)
        authors.append(Author(family=family, given=given))
    return tuple(authors)


def _categories(entry: _Element) -> tuple[str, ...]:
    terms = (collapse_whitespace(c.get("term")) for c in entry.iterchildren(f"{ATOM}category"))
    return tuple(dict.fromkeys(t for t in terms if t))


def _alternate(entry: _Element) -> str | None:
    for link in entry.iterchildren(f"{ATOM}link"):
        if link.get("rel") == "alternate" and (href := collapse_whitespace(link.get("href"))):
            return href
    return None


def _journal_doi(entry: _Element) -> str | None:
    # <arxiv:doi> may list several DOIs separated by spaces; the first valid one is kept.
    for candidate in (_text(entry.find(f"{ARXIV}doi")) or "").split():
        if doi := normalize_doi(candidate):
            return doi
    return None


# --- fetching --------------------------------------------------------------------------------


class ArxivSource(ApiSource):
    """arXiv API search by submission date, oldest first, in pages of up to 2,000."""

    INFO = SOURCE_INFO["arxiv"]  # the registry entry: label, key, caps, preference
    BASE_URL = "https://export.arxiv.org/api"
    # arXiv API terms of use: "no more than one request every three seconds", on one
    # connection at a time.
    RATE = 1 / 3
    # A paper is searchable only once announced, up to several days after its submittedDate
    # (weekends, holidays, moderation holds); the overlap picks the late ones up.
    DEFAULT_OVERLAP = timedelta(days=7)
    # User manual: "limit ... max_results to 2000" per call ("slices of at most 2000").
    PAGE_SIZE = 2000
    # User manual: a query's results are capped at 30,000 however they are paged.
    MAX_RESULTS = 30_000
    # A page with no entries while totalResults says more remain is a known API flake.
    EMPTY_PAGE_RETRIES = 3
    EMPTY_PAGE_DELAY = 3.0

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        base_url: str = BASE_URL,
        page_size: int = PAGE_SIZE,
        empty_page_retries: int = EMPTY_PAGE_RETRIES,
        empty_page_delay: float = EMPTY_PAGE_DELAY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 1 <= page_size <= self.PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{self.PAGE_SIZE}, not {page_size}")
        super().__init__(fetcher, base_url)
        self.page_size = page_size
        self.empty_page_retries = empty_page_retries
        self.empty_page_delay = empty_page_delay
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> ArxivSource:
        return cls(
            fetcher,
            base_url=settings.base_url or cls.BASE_URL,
            page_size=min(settings.page_size or cls.PAGE_SIZE, cls.PAGE_SIZE),
        )

    @staticmethod
    def search_query(term: str, window: Window) -> str:
        """``term`` restricted to the window's submission dates (arXiv: GMT, to the minute,
        both ends inclusive; the overlap makes the inclusive start harmless)."""
        span = f"submittedDate:[{_minute(window.start)} TO {_minute(window.end)}]"
        return f"({term}) AND {span}" if term.strip() else span

    # what ApiSource's translate() and parse() call
    to_syntax = staticmethod(to_arxiv)
    read_answer = staticmethod(parse_feed)

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        """Pages oldest first; the cursor is the ``start`` of the next page of this window."""
        search = self.search_query(term, window)
        start = offset_cursor(resume, what="an arXiv cursor")
        number = 0
        while True:
            response, info = self._get(search, start)
            number += 1
            if number == 1 and info.total is not None and info.total > self.MAX_RESULTS:
                log.error("window too large", total=info.total, retrievable=self.MAX_RESULTS)
            following = start + info.entries
            if info.total is not None:
                more = info.entries > 0 and following < info.total
            else:  # no totalResults: a full page may have a successor
                more = info.entries >= self.page_size
            yield Page.received(
                self,
                response,
                url=self.fetcher.redact(response.url),
                number=number,
                cursor=str(following) if more else None,
                total=info.total,
            )
            if not more:
                return
            start = following

    def _get(self, search: str, start: int) -> tuple[httpx.Response, FeedInfo]:
        params: dict[str, str | int] = {
            "search_query": search,
            "sortBy": "submittedDate",
            "sortOrder": "ascending",
            "start": start,
            "max_results": self.page_size,
        }
        url = f"{self.base_url}/query"
        for attempt in range(self.empty_page_retries + 1):
            response = self.fetcher.get(url, params, rate_key=self.rate_key)
            info = feed_info(response.content, url=self.fetcher.redact(response.url))
            if info.entries or info.total is None or start >= info.total:
                return response, info
            if attempt < self.empty_page_retries:
                log.warning(
                    "empty page retried", start=start, total=info.total, attempt=attempt + 1
                )
                self._sleep(self.empty_page_delay * (attempt + 1))
        # Believed after the retries: the search really ends here (totalResults can run
        # ahead of what the index returns); the overlap of the next harvest covers the rest.
        log.warning("empty page believed", start=start, total=info.total)
        return response, info


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M")
