"""What every source is: ``fetch`` does HTTP only, ``parse`` is pure.

A harvest asks a source for the pages of one window::

    for page in source.fetch(term, window):       # HTTP, paging, rate limit, retries
        result = source.parse(page)               # bytes -> Records, no I/O
        store(result.records); commit(page.cursor)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from harvester.errors import ParseError
from harvester.records import Record

if TYPE_CHECKING:
    from harvester.config import SourceSettings
    from harvester.http import Fetcher
    from harvester.query import Query


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open interval ``(start, end]`` of index dates a harvest covers (tz-aware UTC)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True, slots=True)
class Page:
    """One raw response body, as the API sent it.

    ``url`` is the request with secrets removed; ``cursor`` is what ``fetch(resume=...)``
    needs to continue after this page (None on the last page); ``total`` is the number of
    results the API announced for the whole request, if it says; ``server_date`` is the
    response's ``Date`` header: the server's now, which bounds the watermark when the local
    clock runs ahead.
    """

    source: str
    url: str
    body: bytes
    number: int = 1
    cursor: str | None = None
    total: int | None = None
    content_type: str | None = None
    server_date: datetime | None = None

    @staticmethod
    def date_of(headers: Mapping[str, str]) -> datetime | None:
        """A response's ``Date`` header as ``server_date`` (so each source's fetch fills
        it with the one name it already imports)."""
        return server_date(headers)


def server_date(headers: Mapping[str, str]) -> datetime | None:
    """The time an HTTP response's ``Date`` header gives (tz-aware UTC), None if absent or
    unreadable."""
    value = headers.get("Date") or headers.get("date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record a parser could not read; the rest of its page is still used."""

    source_id: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ParseResult:
    records: tuple[Record, ...]
    skipped: tuple[Skipped, ...] = ()


_Item = TypeVar("_Item")


def parse_items(
    items: Iterable[_Item],
    parse_one: Callable[[int, _Item], Record],
    source_id_of: Callable[[_Item], str | None],
    *,
    skip: type[Exception],
    unforeseen: tuple[type[Exception], ...] = (),
    noun: str = "item",
    objects_only: bool = False,
) -> ParseResult:
    """The records of a page's items, ``parse_one(index, item)`` each, in order.

    An item whose parser raises ``skip`` becomes a Skipped with the error's message; one that
    raises ``unforeseen`` (a shape no typed reader foresaw) a Skipped that names the error
    type; with ``objects_only``, an item that is not a JSON object is Skipped unparsed.
    Either way the rest of the page is still used. Anything else propagates.
    """
    records: list[Record] = []
    skipped: list[Skipped] = []
    for index, item in enumerate(items):
        if objects_only and not isinstance(item, Mapping):
            reason = f"{noun} #{index + 1} is a {type(item).__name__}, not an object"
            skipped.append(Skipped(source_id=source_id_of(item), reason=reason))
            continue
        try:
            records.append(parse_one(index, item))
        except skip as error:
            skipped.append(Skipped(source_id=source_id_of(item), reason=str(error)))
        except unforeseen as error:
            reason = f"unreadable {noun} #{index + 1}: {type(error).__name__}: {error}"
            skipped.append(Skipped(source_id=source_id_of(item), reason=reason))
    return ParseResult(records=tuple(records), skipped=tuple(skipped))


def load_json(body: bytes, where: str, *, problem: str = "malformed or truncated JSON") -> Any:
    """The JSON value of a response body; ParseError ``"{where}: {problem}: {error}"`` if the
    body is not JSON (JSONDecodeError and UnicodeDecodeError are both ValueErrors)."""
    try:
        return json.loads(body)
    except ValueError as error:
        raise ParseError(f"{where}: {problem}: {error}") from error


def expect_object(data: Any, where: str) -> dict[str, Any]:
    """``data`` if it is a JSON object, else ParseError naming what it is instead."""
    if not isinstance(data, dict):
        raise ParseError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return data


class Source(Protocol):
    """A bibliographic API."""

    name: str

    def translate(self, query: Query) -> str:
        """The portable query in this API's own search syntax (pure)."""
        ...

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        """Every page of results for ``term`` indexed within ``window`` (HTTP only)."""
        ...

    def parse(self, page: Page) -> ParseResult:
        """The records of one page (pure; raises ParseError if the page is unreadable)."""
        ...


class SourceFactory(Protocol):
    """What the registry holds: a source class, built from its settings by the app."""

    name: str
    rate_key: str
    DEFAULT_OVERLAP: timedelta

    def from_settings(self, settings: SourceSettings, fetcher: Fetcher) -> Source: ...

    def rate(self, settings: SourceSettings) -> float: ...

    def parse(self, page: Page) -> ParseResult: ...
