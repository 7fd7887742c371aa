"""What every source is: ``fetch`` does HTTP only, ``parse`` is pure.

A harvest asks a source for the pages of one window::

    for page in source.fetch(term, window):       # HTTP, paging, rate limit, retries
        result = source.parse(page)               # bytes -> Records, no I/O
        store(result.records); commit(page.cursor)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from harvester.records import Record

if TYPE_CHECKING:
    import httpx

    from harvester.config.sections import SourceSettings
    from harvester.http.fetcher import Fetcher
    from harvester.query.syntax import Query
    from harvester.registry import SourceInfo


# The largest record a parser reads, measured on the API's own bytes (XML) or on the text of
# its JSON values: one record of 420 MB (an abstract repeated without end) was stored twice.
# The largest real records (a few thousand authors, a long structured abstract) are well
# under 1 MB. Every parse function takes ``max_record_bytes``; ``[sources.NAME] max_record_bytes``
# sets it for a source, and its pages carry it to ``parse``.
MAX_RECORD_BYTES = 2_000_000


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
    clock runs ahead; ``max_record_bytes`` is the record size cap of the source that fetched
    it, for ``parse``.
    """

    source: str
    url: str
    body: bytes
    number: int = 1
    cursor: str | None = None
    total: int | None = None
    content_type: str | None = None
    server_date: datetime | None = None
    max_record_bytes: int = MAX_RECORD_BYTES

    @classmethod
    def received(
        cls,
        source: Source,
        response: httpx.Response,
        *,
        url: str,
        number: int,
        cursor: str | None,
        total: int | None,
    ) -> Page:
        """The page ``source`` fetched as ``response``: its body, its content type and its
        ``Date`` header, with the source's name and record size cap. ``url`` is the request
        with its secrets removed (``Fetcher.redact``)."""
        return cls(
            max_record_bytes=source.max_record_bytes,
            source=source.name,
            url=url,
            body=response.content,
            number=number,
            cursor=cursor,
            total=total,
            content_type=response.headers.get("content-type"),
            server_date=server_date(response.headers),
        )


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

    def __post_init__(self) -> None:
        # A record skipped for a byte that is not UTF-8 may carry it (as a lone surrogate) in
        # its id or in the reason quoting a value: shown escaped, so logs can write it.
        for name in ("source_id", "reason"):
            value = getattr(self, name)
            if value is not None and not value.isascii() and LONE_SURROGATE.search(value):
                escaped = value.encode("utf-8", "backslashreplace").decode("utf-8")
                object.__setattr__(self, name, escaped)


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
    screen: Callable[[Any], str | None] | None = None,
    max_record_bytes: int | None = None,
) -> ParseResult:
    """The records of a page's items, ``parse_one(index, item)`` each, in order.

    An item whose parser raises ``skip`` becomes a Skipped with the error's message; one that
    raises ``unforeseen`` (a shape no typed reader foresaw) a Skipped that names the error
    type; with ``objects_only``, an item that is not a JSON object is Skipped unparsed; one
    that ``screen`` finds a problem with (see :meth:`JsonBody.screen`) is Skipped unparsed
    with that reason; one nested too deeply for the parser's recursion is Skipped, and so is
    one whose Record is larger than ``max_record_bytes`` (:func:`record_size`).
    Either way the rest of the page is still used. Anything else propagates.
    """
    records: list[Record] = []
    skipped: list[Skipped] = []
    for index, item in enumerate(items):
        if objects_only and not isinstance(item, Mapping):
            reason = f"{noun} #{index + 1} is a {type(item).__name__}, not an object"
            skipped.append(Skipped(source_id=source_id_of(item), reason=reason))
            continue
        problem = screen(item) if screen is not None else None
        if problem is not None:
            skipped.append(Skipped(source_id=source_id_of(item), reason=problem))
            continue
        try:
            record = parse_one(index, item)
        except skip as error:
            skipped.append(Skipped(source_id=source_id_of(item), reason=str(error)))
        except unforeseen as error:
            reason = f"unreadable {noun} #{index + 1}: {type(error).__name__}: {error}"
            skipped.append(Skipped(source_id=source_id_of(item), reason=reason))
        except RecursionError:
            reason = f"unreadable {noun} #{index + 1}: nested too deeply"
            skipped.append(Skipped(source_id=source_id_of(item), reason=reason))
        else:
            if max_record_bytes is not None and record_size(record) > max_record_bytes:
                reason = f"larger than the record size cap of {max_record_bytes:,} bytes"
                skipped.append(Skipped(source_id=record.source_id, reason=reason))
            else:
                records.append(record)
    return ParseResult(records=tuple(records), skipped=tuple(skipped))


# What surrogateescape turns an undecodable byte into; JSON's own "\udc80" escapes of lone
# surrogates are no text either (no encoder or database takes them).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def record_size(record: Record) -> int:
    """About the size of a Record as stored: the length of its texts."""
    size = sum(len(text) for text in (record.title, record.abstract, record.venue) if text)
    size += sum(len(section.text) for section in record.abstract_sections)
    size += sum(len(other.text) for other in record.other_abstracts)
    size += sum(len(keyword) for keyword in record.keywords)
    return size + 40 * len(record.authors)


# --- XML bodies: records cut out before the parser sees them ----------------------------------


def cut_records(
    body: bytes,
    start: re.Pattern[bytes],
    end: re.Pattern[bytes],
    id_of: Callable[[bytes], str | None],
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
    check_bytes: bool = False,
) -> tuple[bytes, tuple[Skipped, ...]]:
    """``body`` without the records (from a ``start`` match to the next ``end``) that are over
    ``max_record_bytes`` or, with ``check_bytes``, hold bytes that are not UTF-8; each one cut
    is a Skipped (``id_of`` reads its id from its bytes). libxml2 refuses a whole document
    for one bad byte, and builds a tree of any size: this way only that record is lost.
    The body comes back unchanged (the same object) when nothing was cut."""
    if len(body) <= max_record_bytes and not check_bytes:
        return body, ()
    kept: list[bytes] = []
    skipped: list[Skipped] = []
    position = last = 0  # where to look next; where the part not cut out began
    while (found := start.search(body, position)) is not None:
        close = end.search(body, found.end())
        if close is None:
            break
        position = close.end()
        size = position - found.start()
        reason = None
        if size > max_record_bytes:
            reason = f"larger than the record size cap of {max_record_bytes:,} bytes ({size:,})"
        elif check_bytes:
            try:
                body[found.start() : position].decode("utf-8")
            except UnicodeDecodeError as error:
                reason = (
                    f"holds bytes that are not UTF-8 (byte {found.start() + error.start:,} "
                    "of the page): the API's text is damaged"
                )
        if reason is not None:
            kept.append(body[last : found.start()])
            last = position
            record_id = id_of(body[found.start() : min(position, found.start() + 100_000)])
            skipped.append(Skipped(source_id=record_id, reason=reason))
    if not skipped:
        return body, ()
    kept.append(body[last:])
    return b"".join(kept), tuple(skipped)


def offset_cursor(cursor: str | None, *, what: str) -> int:
    """A cursor that is the offset of the next result (none: from the start); ``what`` names
    it in the error, e.g. ``"an arXiv cursor"``."""
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise ValueError(f"not {what}: {cursor!r}")
    return int(cursor)


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class Source(Protocol):
    """A bibliographic API."""

    max_record_bytes: int

    @property
    def name(self) -> str: ...  # the API classes (ApiSource) set it on the class

    def translate(self, query: Query) -> str:
        """The portable query in this API's own search syntax (pure)."""
        ...

    def fetch(self, term: str, window: Window, *, resume: str | None = None) -> Iterator[Page]:
        """Every page of results for ``term`` indexed within ``window`` (HTTP only)."""
        ...

    def parse(self, page: Page) -> ParseResult:
        """The records of one page (pure; raises ParseError if the page is unreadable)."""
        ...


class AnswerReader(Protocol):
    """A source's pure reader of one API answer: its bytes to records."""

    def __call__(self, body: bytes, *, url: str, max_record_bytes: int) -> ParseResult: ...


class QueryTranslator(Protocol):
    """A source's translator of the portable query into its API's search syntax."""

    def __call__(self, query: Query) -> str: ...


class ApiSource:
    """What the source classes share: a subclass names its registry entry (``INFO``, which
    gives it ``name``, ``REQUIRES_KEY`` and ``KEY_ENV``, and ``rate_key`` unless it inherits
    one), its answer reader (``read_answer``) and its query translator (``to_syntax``), and
    its pace ``RATE`` unless ``rate`` is its own (a pace that depends on a key or a
    contact)."""

    INFO: ClassVar[SourceInfo]  # its entry in harvester.registry
    name: ClassVar[str]
    rate_key: ClassVar[str]  # the fetcher's pace for its API: its own name unless inherited
    max_record_bytes = MAX_RECORD_BYTES  # [sources.NAME] max_record_bytes
    REQUIRES_KEY: ClassVar[bool]  # INFO's requires_key and key_env, set for each subclass
    KEY_ENV: ClassVar[str | None]
    RATE: ClassVar[float]
    read_answer: ClassVar[AnswerReader]
    to_syntax: ClassVar[QueryTranslator]

    def __init__(self, fetcher: Fetcher, base_url: str) -> None:
        self.fetcher = fetcher
        self.base_url = base_url.rstrip("/")

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls.name = cls.INFO.name
        if not hasattr(cls, "rate_key"):
            cls.rate_key = cls.INFO.name
        cls.REQUIRES_KEY = cls.INFO.requires_key
        cls.KEY_ENV = cls.INFO.key_env

    @classmethod
    def rate(cls, settings: SourceSettings) -> float:
        return settings.requests_per_second or cls.RATE

    def translate(self, query: Query) -> str:
        return type(self).to_syntax(query)

    @classmethod
    def parse(cls, page: Page) -> ParseResult:
        return cls.read_answer(page.body, url=page.url, max_record_bytes=page.max_record_bytes)


class SourceFactory(Protocol):
    """What the registry holds: a source class, built from its settings by the app."""

    INFO: SourceInfo  # its entry in harvester.registry
    name: str
    rate_key: str
    DEFAULT_OVERLAP: timedelta

    def from_settings(self, settings: SourceSettings, fetcher: Fetcher) -> Source: ...

    def rate(self, settings: SourceSettings) -> float: ...

    def parse(self, page: Page) -> ParseResult: ...
