"""bioRxiv and medRxiv through api.biorxiv.org (https://api.biorxiv.org/).

::

    GET {base}/details/{server}/{YYYY-MM-DD}/{YYYY-MM-DD}/{cursor}
      -> {"messages": [{"status", "count", "total", "cursor", …}], "collection": [{…}, …]}
      -> parse_details -> Records

The API has no search: every record posted in the window is listed and the topic's query is
evaluated locally (``translate`` returns ""). Paging advances the cursor by the ``count``
each answer's ``messages[0]`` reports and stops at an empty collection; ``total`` is kept as
``Page.total`` but never used to stop, as it has been seen to disagree with the listing.

Versions: the listing holds one item per posted *version* (a revised preprint appears again
with ``version`` 2, 3, …). A page keeps only the latest version of each DOI, and every
record's ``source_id`` is the DOI, so versions on different pages or harvests replace one
another in the store instead of piling up as separate records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import structlog

from harvester.errors import ParseError
from harvester.query.syntax import Query
from harvester.records import Author, Identifiers, Record
from harvester.registry import SOURCE_INFO
from harvester.sources.base import (
    MAX_RECORD_BYTES,
    ApiSource,
    Page,
    ParseResult,
    Skipped,
    Window,
    offset_cursor,
    record_size,
)
from harvester.sources.envelope import JsonBody, expect_object, read_json
from harvester.text.fields import partial_date, split_name
from harvester.text.identifiers import normalize_doi
from harvester.text.markup import strip_markup

if TYPE_CHECKING:
    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher

log = structlog.get_logger(__name__)

__all__ = ["BiorxivSource", "MedrxivSource", "PageInfo", "page_info", "parse_details"]

VENUES = {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}
ARTICLE_URL = "https://www.{server}.org/content/{doi}v{version}"
_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$")
_PARAGRAPHS = re.compile(r"\n\s*\n")
_NOT_AVAILABLE = frozenset({"", "na", "n/a", "none", "null"})


class _BadItem(ValueError):
    """One listed item that cannot become a Record; its page is still used."""


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageInfo:
    """``messages[0]`` of an answer: how far to move the cursor, and the announced total."""

    status: str | None
    count: int | None
    total: int | None
    items: int


def _read(body: bytes, url: str) -> tuple[Mapping[str, Any], list[Any]]:
    data, collection, _ = _read_body(body, url)
    return data, collection


def _read_body(body: bytes, url: str) -> tuple[Mapping[str, Any], list[Any], JsonBody]:
    where = url or "bioRxiv API response"
    read = read_json(body, where, problem="not valid JSON")
    data = expect_object(read.data, where)
    collection = data.get("collection", [])
    if collection is None:
        collection = []
    if not isinstance(collection, list):
        raise ParseError(f"{where}: 'collection' is {type(collection).__name__}, not a list")
    return data, collection, read


def page_info(body: bytes, *, url: str = "") -> PageInfo:
    """The paging facts of one answer (raises ParseError like :func:`parse_details`)."""
    data, collection = _read(body, url)
    messages = data.get("messages")
    first = messages[0] if isinstance(messages, list) and messages else None
    message: Mapping[str, Any] = first if isinstance(first, dict) else {}
    status = message.get("status")
    return PageInfo(
        status=status if isinstance(status, str) else None,
        # counts arrive as numbers or as strings ("total": "152918")
        count=_integer(message.get("count")),
        total=_integer(message.get("total")),
        items=len(collection),
    )


def parse_details(
    body: bytes,
    *,
    source: str = "biorxiv",
    url: str = "",
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> ParseResult:
    """Records of a ``details`` answer, the latest version of each DOI.

    Raises ParseError for a body that is not a JSON object with a ``collection`` list; an
    item that cannot be read (not an object, no DOI, a field of the wrong type) is Skipped.
    """
    _, collection, read = _read_body(body, url)
    screen = read.screen(max_record_bytes)
    latest: dict[str, tuple[int, Record]] = {}
    skipped: list[Skipped] = []
    for position, item in enumerate(collection):
        try:
            problem = screen(item) if screen is not None else None
            if problem is not None:
                raise _BadItem(problem)
            version, record = _record(item, source)
            if record_size(record) > max_record_bytes:
                raise _BadItem(f"larger than the record size cap of {max_record_bytes:,} bytes")
        except (_BadItem, RecursionError) as error:
            doi = item.get("doi") if isinstance(item, dict) else None
            shown = normalize_doi(doi) if isinstance(doi, str) else None
            reason = str(error) if isinstance(error, _BadItem) else "nested too deeply"
            skipped.append(Skipped(source_id=shown, reason=f"item {position}: {reason}"))
            continue
        key = record.source_id or ""
        if key not in latest or version >= latest[key][0]:
            latest[key] = (version, record)
    return ParseResult(records=tuple(r for _, r in latest.values()), skipped=tuple(skipped))


def _record(item: Any, source: str) -> tuple[int, Record]:
    if not isinstance(item, dict):
        raise _BadItem(f"expected an object, got {type(item).__name__}")
    raw_doi = _string(item, "doi")
    doi = normalize_doi(raw_doi)
    if doi is None:
        raise _BadItem(f"missing or invalid doi {raw_doi!r}")
    version_text = _string(item, "version")
    version = _integer(version_text)
    if version_text is not None and version is None:
        raise _BadItem(f"version {version_text!r} is not a number")
    date = _DATE.match(_string(item, "date") or "")
    published = partial_date(*date.groups()) if date else None
    server = (_string(item, "server") or source).strip().lower()
    server = server if server in VENUES else source
    published_doi = _string(item, "published")
    category = strip_markup(_string(item, "category"))
    record = Record(
        source=source,
        source_id=doi,
        ids=Identifiers(doi=doi),
        title=strip_markup(_string(item, "title")),
        abstract=_abstract(_string(item, "abstract")),
        authors=_authors(_string(item, "authors")),
        venue=VENUES.get(server),
        year=int(published[:4]) if published else None,
        published=published,
        type="preprint",
        url=ARTICLE_URL.format(server=server, doi=doi, version=version or 1),
        keywords=(category,) if category else (),
        published_doi=(
            None
            if published_doi is None or published_doi.strip().lower() in _NOT_AVAILABLE
            else normalize_doi(published_doi)
        ),
    )
    return version or 0, record


def _string(item: Mapping[str, Any], key: str) -> str | None:
    """A field the API sends as a string (numbers are accepted as their digits)."""
    value = item.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _BadItem(f"{key} is {type(value).__name__}, expected a string")


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _abstract(text: str | None) -> str | None:
    # Paragraphs (blank lines in the API's text) stay apart, as in the other sources' abstracts.
    if text is None:
        return None
    paragraphs = (strip_markup(p) for p in _PARAGRAPHS.split(text))
    return "\n\n".join(p for p in paragraphs if p) or None


def _authors(text: str | None) -> tuple[Author, ...]:
    # "Durrieu, L.; Bush, A.; Janzen, D. L. I." — semicolon-separated "Family, Initials".
    authors: list[Author] = []
    for part in (text or "").split(";"):
        name = strip_markup(part)
        if name is None:
            continue
        family, given = split_name(name)
        authors.append(Author(family=family, given=given))
    return tuple(authors)


# --- fetching --------------------------------------------------------------------------------


class BiorxivSource(ApiSource):
    """Every preprint a server posted in the window, 100 per page (the API's page size)."""

    INFO = SOURCE_INFO["biorxiv"]  # the registry entry: label, key, caps, preference
    server: ClassVar[str] = "biorxiv"
    # bioRxiv and medRxiv share api.biorxiv.org, hence one pace for both.
    rate_key = "biorxiv"
    BASE_URL = "https://api.biorxiv.org"
    # No published limit; one request a second is the courtesy the API's users keep to.
    RATE = 1.0
    # Listings are by posting date, and items are added after screening, a day or more late.
    DEFAULT_OVERLAP = timedelta(days=3)

    def __init__(self, fetcher: Fetcher, *, base_url: str = BASE_URL) -> None:
        super().__init__(fetcher, base_url)

    @classmethod
    def from_settings(cls, settings: SourceSettings, fetcher: Fetcher) -> BiorxivSource:
        return cls(fetcher, base_url=settings.base_url or cls.BASE_URL)

    def translate(self, query: Query) -> str:
        return ""  # no search parameter: the whole window is listed, the query runs locally

    @staticmethod
    def parse(page: Page) -> ParseResult:
        return parse_details(
            page.body, source=page.source, url=page.url, max_record_bytes=page.max_record_bytes
        )

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        """Pages of the window's days (both inclusive); the cursor is the next API cursor."""
        first, last = window.start.date().isoformat(), window.end.date().isoformat()
        cursor = offset_cursor(resume, what="a bioRxiv cursor")
        number = 0
        while True:
            response = self.fetcher.get(
                f"{self.base_url}/details/{self.server}/{first}/{last}/{cursor}",
                rate_key=self.rate_key,
            )
            shown = self.fetcher.redact(response.url)
            info = page_info(response.content, url=shown)
            number += 1
            # Trust the count the answer reports; fall back to the items seen when it is
            # missing or nonsensical, so a broken message can neither stall nor skip.
            step = info.count if info.count and info.count >= info.items else info.items
            more = info.items > 0
            yield Page.received(
                self,
                response,
                url=shown,
                number=number,
                cursor=str(cursor + step) if more else None,
                # the announced total counts every version of every preprint, while a page keeps
                # one record per DOI, so it says nothing about completeness: not recorded
                total=None,
            )
            if not more:
                if info.status not in (None, "ok", "no posts found"):
                    log.warning("listing ended with status", status=info.status, cursor=cursor)
                return
            cursor += step


class MedrxivSource(BiorxivSource):
    """medRxiv: the same API and listing as bioRxiv, another server."""

    INFO = SOURCE_INFO["medrxiv"]  # the registry entry: label, key, caps, preference
    server: ClassVar[str] = "medrxiv"
