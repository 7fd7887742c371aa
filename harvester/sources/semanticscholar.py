"""Semantic Scholar Academic Graph (https://api.semanticscholar.org/api-docs/graph).

``SemanticScholarSource.fetch`` pages ``/paper/search/bulk`` with its ``token``;
``parse_papers`` reads any paper answer of the Graph API (pure): bulk and relevance search
pages, the batch array, one paper.

The window is on ``publicationDateOrYear``, the only date the search filters on, so it is
widened by ``DEFAULT_OVERLAP`` for papers indexed after their publication date.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from harvester.errors import ParseError
from harvester.query.translate import to_semanticscholar
from harvester.records import Author, Identifiers, Record
from harvester.registry import SOURCE_INFO
from harvester.sources.base import (
    MAX_RECORD_BYTES,
    ApiSource,
    Page,
    ParseResult,
    Window,
    parse_items,
)
from harvester.sources.envelope import (
    JsonBody,
    UnexpectedValue,
    expect_object,
    json_date,
    json_int,
    json_list,
    json_object,
    json_text,
    read_json,
)
from harvester.text.fields import normalize_pages, partial_date, split_name
from harvester.text.identifiers import (
    normalize_arxiv,
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)
from harvester.text.markup import strip_markup

if TYPE_CHECKING:
    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

log = structlog.get_logger(__name__)

SOURCE = "semanticscholar"
FIELDS = (
    "title,abstract,authors,externalIds,journal,venue,year,publicationDate,"
    "publicationTypes,url,paperId"
)

# publicationTypes -> Record.type, first match wins (a "Review" that is also a
# "JournalArticle" is a review). Values as listed in the Graph API's paper schema.
_TYPES: tuple[tuple[str, str], ...] = (
    ("Review", "review"),
    ("MetaAnalysis", "review"),
    ("Editorial", "editorial"),
    ("LettersAndComments", "letter"),
    ("Conference", "proceedings-article"),
    ("BookSection", "book-chapter"),
    ("Book", "book"),
    ("Dataset", "dataset"),
    ("News", "news"),
    ("JournalArticle", "journal-article"),
    ("CaseReport", "journal-article"),
    ("ClinicalTrial", "journal-article"),
    ("Study", "journal-article"),
)
_DASH = re.compile(r"\s*[-\u2010-\u2015\u2212]+\s*")


class SemanticScholarSource(ApiSource):
    """Semantic Scholar bulk search: ``query`` plus ``publicationDateOrYear``, paged with
    the ``token`` each answer carries until it is null."""

    INFO = SOURCE_INFO["semanticscholar"]  # the registry entry: label, key, caps, preference
    BASE_URL = "https://api.semanticscholar.org/graph/v1"
    # Semantic Scholar: an API key gets 1 request per second on every endpoint; without
    # one, requests share a pool of 100 requests per 5 minutes with every keyless user,
    # so one request every 3 seconds is the most one client may assume.
    RATE_WITH_KEY = 1.0
    RATE_ANONYMOUS = 1 / 3
    DEFAULT_OVERLAP = timedelta(days=30)

    def __init__(
        self, fetcher: Fetcher, *, base_url: str = BASE_URL, api_key: str | None = None
    ) -> None:
        super().__init__(fetcher, base_url)
        # In a header, never in the URL: it stays out of Page.url, logs and errors.
        self._headers = {"x-api-key": api_key} if api_key else {}

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> SemanticScholarSource:
        # page_size is not used: bulk search answers up to 1,000 papers and takes no limit.
        return cls(
            fetcher,
            base_url=settings.base_url or cls.BASE_URL,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        )

    @classmethod
    def rate(cls, settings: SourceSettings) -> float:
        default = cls.RATE_WITH_KEY if settings.api_key else cls.RATE_ANONYMOUS
        return settings.requests_per_second or default

    @staticmethod
    def parse(page: Page) -> ParseResult:
        # its own: parse_papers is defined below the class
        return parse_papers(page.body, url=page.url, max_record_bytes=page.max_record_bytes)

    # what ApiSource's translate() and parse() call
    to_syntax = staticmethod(to_semanticscholar)

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        dates = f"{window.start.date().isoformat()}:{window.end.date().isoformat()}"
        token = resume
        seen: set[str] = set()
        number = 0
        while True:
            params: dict[str, str | int] = {
                "query": term,
                "publicationDateOrYear": dates,
                "fields": FIELDS,
            }
            if token:
                params["token"] = token
                seen.add(token)
            response = self.fetcher.get(
                f"{self.base_url}/paper/search/bulk",
                params,
                headers=self._headers,
                rate_key=self.rate_key,
            )
            # The token is not a secret, but Fetcher.redact hides any "token" parameter.
            shown = self.fetcher.redact(response.url)
            total, token = _bulk_meta(response.content, shown)
            if token in seen:
                log.error("token repeated", url=shown)
                token = None
            number += 1
            yield Page.received(
                self,
                response,
                url=shown,
                number=number,
                cursor=token,
                total=total,
            )
            if token is None:
                return


# --- parsing ---------------------------------------------------------------------------------


def _where(url: str) -> str:
    return f"Semantic Scholar response from {url}" if url else "Semantic Scholar response"


def _read(body: bytes, url: str) -> object:
    return _read_body(body, url).data


def _read_body(body: bytes, url: str) -> JsonBody:
    read = read_json(body, _where(url))
    data: object = read.data
    if isinstance(data, dict) and "data" not in data and "paperId" not in data:
        # Errors: {"error": "Paper with id 0 not found"} (400, 404) and
        # {"message": "Too Many Requests. …", "code": "429"}.
        message = data.get("error") or data.get("message")
        if message:
            raise ParseError(f"{_where(url)}: Semantic Scholar error: {message}")
    return read


def _bulk_meta(body: bytes, url: str) -> tuple[int | None, str | None]:
    """``(total, token)`` of a bulk search answer, as ``fetch`` needs them for paging."""
    data = expect_object(_read(body, url), _where(url))
    try:
        json_list(data.get("data"), "data")
        return json_int(data.get("total"), "total"), json_text(data.get("token"), "token") or None
    except UnexpectedValue as error:
        raise ParseError(f"{_where(url)}: {error}") from error


def parse_papers(
    body: bytes, *, url: str = "", max_record_bytes: int = MAX_RECORD_BYTES
) -> ParseResult:
    """The records of a search page (bulk or relevance), a batch array or one paper.

    An empty search (``{"total": 0, "offset": 0}``, no ``data``) has no records; a null in a
    batch (an id Semantic Scholar does not know) and an unreadable paper are Skipped.
    ParseError for a body that is not JSON, an API error, or no papers at all.
    """
    read = _read_body(body, url)
    data = read.data
    papers: list[tuple[str, object]]
    if isinstance(data, list):
        papers = [(f"[{i}]", paper) for i, paper in enumerate(data)]
    elif isinstance(data, dict) and "data" in data:
        if not isinstance(data["data"], list):
            raise ParseError(f"{_where(url)}: 'data' is not an array")
        papers = [(f"data[{i}]", paper) for i, paper in enumerate(data["data"])]
    elif isinstance(data, dict) and "paperId" in data:
        papers = [("paper", data)]
    elif isinstance(data, dict) and "total" in data:
        papers = []  # an empty search page carries no "data" at all
    else:
        raise ParseError(f"{_where(url)}: not a paper answer ({type(data).__name__})")
    return parse_items(
        papers,
        _listed_paper,
        _listed_paper_id,
        skip=UnexpectedValue,
        screen=read.screen(max_record_bytes),
        max_record_bytes=max_record_bytes,
    )


def _listed_paper(_index: int, listed: tuple[str, object]) -> Record:
    where, paper = listed
    if paper is None:
        raise UnexpectedValue(f"{where}: null (an id Semantic Scholar does not know)")
    return parse_paper(paper, where=where)


def _listed_paper_id(listed: tuple[str, object]) -> str | None:
    paper = listed[1]
    paper_id = paper.get("paperId") if isinstance(paper, dict) else None
    return paper_id if isinstance(paper_id, str) and paper_id else None


def parse_paper(value: object, *, where: str = "paper") -> Record:
    """One Graph API paper as a Record; UnexpectedValue names the field that is wrong."""
    paper = json_object(value, where)
    if paper is None:
        raise UnexpectedValue(f"{where}: null instead of a paper")
    paper_id = json_text(paper.get("paperId"), f"{where}.paperId")
    external = json_object(paper.get("externalIds"), f"{where}.externalIds") or {}

    def external_id(key: str) -> str | None:
        return json_text(external.get(key), f"{where}.externalIds.{key}", numbers=True)

    journal = json_object(paper.get("journal"), f"{where}.journal") or {}
    year = json_int(paper.get("year"), f"{where}.year")
    year = year if year is not None and 1000 <= year <= 9999 else None
    published = json_date(json_text(paper.get("publicationDate"), f"{where}.publicationDate"))
    listed = json_object(paper.get("publicationVenue"), f"{where}.publicationVenue") or {}
    return Record(
        source=SOURCE,
        source_id=paper_id or None,
        ids=Identifiers(
            doi=normalize_doi(external_id("DOI")),
            pmid=normalize_pmid(external_id("PubMed")),
            pmcid=normalize_pmcid(external_id("PubMedCentral")),
            arxiv=normalize_arxiv(external_id("ArXiv")),
            s2=(paper_id or "").strip() or None,
        ),
        title=strip_markup(json_text(paper.get("title"), f"{where}.title")),
        abstract=strip_markup(json_text(paper.get("abstract"), f"{where}.abstract")),
        authors=_authors(paper.get("authors"), f"{where}.authors"),
        # "venue" is Semantic Scholar's normalized full name ("Journal of machine learning
        # research"); journal.name is often abbreviated ("J. Mach. Learn. Res."), which
        # matches other sources' journal names less well.
        venue=strip_markup(json_text(paper.get("venue"), f"{where}.venue"))
        or strip_markup(json_text(journal.get("name"), f"{where}.journal.name"))
        or strip_markup(json_text(listed.get("name"), f"{where}.publicationVenue.name")),
        year=year,
        volume=_volume(json_text(journal.get("volume"), f"{where}.journal.volume", numbers=True)),
        pages=_pages(json_text(journal.get("pages"), f"{where}.journal.pages", numbers=True)),
        published=published or partial_date(year),
        type=_type(paper.get("publicationTypes"), f"{where}.publicationTypes"),
        url=strip_markup(json_text(paper.get("url"), f"{where}.url")),
    )


def _volume(value: str | None) -> str | None:
    text = strip_markup(value)
    # arXiv papers carry DBLP's CoRR pseudo-volume "abs/2201.11990": not a volume.
    return None if text is None or text.startswith("abs/") else text


def _pages(value: str | None) -> str | None:
    """``518-521`` from ``"518 - 521"``; a range is written out only when it ascends
    (``"117 - 97"`` is kept as given rather than guessed)."""
    text = strip_markup(value)
    if text is None:
        return None
    parts = _DASH.split(text)
    if len(parts) != 2 or not all(parts):
        return text
    first, last = parts
    if first.isdigit() and last.isdigit() and int(last) < int(first):
        return f"{first}-{last}"
    return normalize_pages(first, last)


def _authors(value: object, where: str) -> tuple[Author, ...]:
    authors: list[Author] = []
    for position, item in enumerate(json_list(value, where)):
        here = f"{where}[{position}]"
        author = json_object(item, here) or {}
        family, given = split_name(strip_markup(json_text(author.get("name"), f"{here}.name")))
        if family is not None or given is not None:
            authors.append(Author(family=family, given=given))
    return tuple(authors)


def _type(value: object, where: str) -> str | None:
    kinds = {json_text(kind, where) for kind in json_list(value, where)}
    return next((record_type for kind, record_type in _TYPES if kind in kinds), None)
