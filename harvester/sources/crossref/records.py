"""Crossref REST answers, read: ``/works`` work-lists (and single works) to Records (pure).

::

    /works?query.bibliographic=…&filter=from-index-date:…&cursor=*  -> parse_works
    error bodies (400 validation-failure, 404 "Resource not found.")  -> ParseError

Field names follow the Crossref REST API work schema
(https://api.crossref.org/swagger-ui/index.html, "Work"). Abstracts are JATS fragments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from os.path import commonprefix
from typing import Any

from harvester.errors import ParseError
from harvester.records import Author, Identifiers, Record, join_sections
from harvester.sources.base import MAX_RECORD_BYTES, ParseResult, parse_items
from harvester.sources.envelope import (
    BadItem,
    JsonBody,
    expect_object,
    item_list,
    item_object,
    item_text,
    read_json,
)
from harvester.text.fields import language_code, normalize_pages, partial_date
from harvester.text.fold import collapse_whitespace
from harvester.text.identifiers import normalize_doi, normalize_orcid
from harvester.text.markup import markup_sections, markup_to_text

SOURCE = "crossref"
# Crossref's own dates, most telling first: `published` is the earlier of print and online.
_DATE_FIELDS = ("published", "published-print", "published-online", "issued", "posted")


@dataclass(frozen=True, slots=True)
class WorksHeader:
    """What fetch needs from a work-list to page on."""

    total: int | None
    next_cursor: str | None
    items: int


def error_text(body: bytes) -> str | None:
    """The message of a Crossref error body (JSON ``status: failed`` or plain text), or None."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, a number too long
        text = collapse_whitespace(body[:200].decode("utf-8", "replace"))
        return text if text and not body.lstrip().startswith((b"{", b"[")) else None
    if not isinstance(data, Mapping) or data.get("status") == "ok":
        return None
    messages = data.get("message")
    parts = []
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, Mapping):
                parts.append(f"{m.get('type')} {m.get('value')!r}: {m.get('message')}")
            else:
                parts.append(str(m))
    else:
        parts.append(str(messages))
    return f"{data.get('message-type', 'error')}: " + "; ".join(parts)


def read_header(body: bytes, *, url: str = "") -> WorksHeader:
    """total-results, next-cursor and the number of items of a work-list."""
    message = _message(body, url)
    items = message.get("items", [message] if "DOI" in message else [])
    cursor = message.get("next-cursor")
    total = message.get("total-results")
    return WorksHeader(
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        next_cursor=cursor if isinstance(cursor, str) and cursor else None,
        items=len(items) if isinstance(items, list) else 0,
    )


def parse_works(
    body: bytes, *, url: str = "", max_record_bytes: int = MAX_RECORD_BYTES
) -> ParseResult:
    """Records of a work-list (or of one work). Raises ParseError for error bodies and
    malformed JSON; an item that cannot be read (bytes that are not UTF-8, a number too long,
    over ``max_record_bytes``, a wrong type) becomes a Skipped."""
    message, read = _message_body(body, url)
    if "items" in message:
        items = message["items"]
        if not isinstance(items, list):
            raise ParseError(f"{_where(url)}: message.items is a {type(items).__name__}")
    elif "DOI" in message:  # /works/{doi}: message-type "work"
        items = [message]
    else:
        raise ParseError(f"{_where(url)}: neither items nor a work in the message")
    # The typed readers name the field for every expected shape; catching TypeError,
    # ValueError and AttributeError too keeps a shape nobody foresaw from costing the rest
    # of the page.
    return parse_items(
        items,
        lambda _index, item: _record(item),
        _doi_of,
        skip=BadItem,
        unforeseen=(TypeError, ValueError, AttributeError),
        objects_only=True,
        screen=read.screen(max_record_bytes),
        max_record_bytes=max_record_bytes,
    )


def _where(url: str) -> str:
    return f"Crossref response {url}" if url else "Crossref response"


def _message(body: bytes, url: str) -> Mapping[str, Any]:
    return _message_body(body, url)[0]


def _message_body(body: bytes, url: str) -> tuple[Mapping[str, Any], JsonBody]:
    try:
        read = read_json(body, _where(url))
    except ParseError as e:
        error = error_text(body)
        if error:  # 404 "Resource not found." is plain text
            raise ParseError(f"{_where(url)}: Crossref answered {error!r}, not JSON") from e
        raise
    data = expect_object(read.data, _where(url))
    if data.get("status") != "ok":
        raise ParseError(f"{_where(url)}: Crossref error: {error_text(body)}")
    message = data.get("message")
    if not isinstance(message, Mapping):
        raise ParseError(f"{_where(url)}: message is a {type(message).__name__}")
    return message, read


def _doi_of(item: Any) -> str | None:
    if isinstance(item, Mapping) and isinstance(item.get("DOI"), str):
        return normalize_doi(item["DOI"]) or item["DOI"]
    return None


def _record(item: Mapping[str, Any]) -> Record:
    doi = normalize_doi(item_text(item, "DOI"))
    if doi is None:
        raise BadItem(f"no valid DOI ({item.get('DOI')!r})")
    sections = markup_sections(item_text(item, "abstract"))
    year, published = _date(item)
    kind = item_text(item, "type")
    if kind == "posted-content" and item_text(item, "subtype") == "preprint":
        kind = "preprint"
    venue = _first(item, "container-title")
    if venue is None and kind in ("preprint", "posted-content"):
        # Preprints name their server as the posting institution ("bioRxiv").
        venue = _institution(item)
    return Record(
        source=SOURCE,
        source_id=doi,
        ids=Identifiers(doi=doi),
        title=_title(item),
        abstract=join_sections(sections),
        abstract_sections=sections,
        authors=_authors(item),
        venue=venue,
        year=year,
        volume=item_text(item, "volume"),
        issue=item_text(item, "issue"),
        pages=normalize_pages(None, None, item_text(item, "page")),
        published=published,
        type=kind,
        language=language_code(item_text(item, "language")),
        url=item_text(item, "URL") or f"https://doi.org/{doi}",
        keywords=tuple(dict.fromkeys(s for s in _strings(item, "subject") if s)),
        published_doi=_published_doi(item),
    )


def _title(item: Mapping[str, Any]) -> str | None:
    title = _first(item, "title")
    subtitle = _first(item, "subtitle")
    if title and subtitle and subtitle.lower() not in title.lower():
        if is_running_head(title, subtitle):
            return title
        return f"{title}: {subtitle}"
    return title or subtitle


_WORDS = re.compile(r"[^\W_]+")
_MINOR_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to",
     "vs", "with", "without"}
)  # fmt: skip
# How a subtitle that is part of the title begins after a question ("Does it work? A
# randomized trial", "…? Results of …"): anything else after a "?" is a running head.
_SUBTITLE_OPENINGS = frozenset(
    {"a", "an", "the", "analysis", "assessment", "case", "cohort", "comparison", "evaluation",
     "evidence", "experience", "experiences", "findings", "from", "insights", "lessons",
     "perspectives", "protocol", "report", "results", "review", "study", "survey", "trial"}
)  # fmt: skip


def is_running_head(title: str, subtitle: str) -> bool:
    """Whether Crossref's ``subtitle`` is the journal's running head, not part of the title.

    Some publishers (Wiley) deposit the short running head as the subtitle: "Do doctors cause
    or prevent cerebral edema in children with diabetic ketoacidosis?" + "Cerebral edema in
    DKA". It is one when it only abbreviates the title (each of its words is a word of the
    title, a short word, or an acronym of title words), or when it follows a question and
    does not open like a subtitle ("A randomized trial", "Results of …").
    """
    words = _WORDS.findall(subtitle)
    if not words:
        return False
    title_words = [w.lower() for w in _WORDS.findall(title)]
    initials = {w[0] for w in title_words}

    def abbreviates(word: str) -> bool:
        lower = word.lower()
        if lower in _MINOR_WORDS or lower in title_words:
            return True
        if len(lower) >= 5 and any(len(commonprefix((lower, t))) >= 5 for t in title_words):
            return True  # the same stem: "diabetes" for "diabetic", "children" for "child"
        # an acronym (DKA, ICU) whose first letter starts a title word
        return word.isupper() and 2 <= len(word) <= 6 and lower[0] in initials

    if len(words) < len(title_words) and all(abbreviates(w) for w in words):
        return True
    return title.rstrip().endswith("?") and words[0].lower() not in _SUBTITLE_OPENINGS


def _authors(item: Mapping[str, Any]) -> tuple[Author, ...]:
    authors = []
    for number, author in enumerate(item_list(item, "author"), 1):
        if not isinstance(author, Mapping):
            raise BadItem(f"author #{number} is a {type(author).__name__}, expected an object")
        family, given = _clean(item_text(author, "family")), _clean(item_text(author, "given"))
        if family is None and given is None:
            # Crossref: organisations are authors with a `name` only.
            name = _clean(item_text(author, "name"))
            if name:
                authors.append(Author(collective=name))
            continue
        authors.append(
            Author(family=family, given=given, orcid=normalize_orcid(item_text(author, "ORCID")))
        )
    return tuple(authors)


def _date(item: Mapping[str, Any]) -> tuple[int | None, str | None]:
    for name in _DATE_FIELDS:
        value = item_object(item, name)
        if value is None:
            continue
        parts = value.get("date-parts")
        if not isinstance(parts, list) or not parts or not isinstance(parts[0], list):
            continue  # Crossref writes "date-parts": [[null]] for an unknown date
        numbers = [p if isinstance(p, int) and not isinstance(p, bool) else None for p in parts[0]]
        numbers += [None, None, None]
        published = partial_date(numbers[0], numbers[1], numbers[2])
        if published is not None:
            return int(published[:4]), published
    return None, None


def _published_doi(item: Mapping[str, Any]) -> str | None:
    # relation.is-preprint-of on a preprint names its journal version; has-preprint points
    # the other way (from the article to its preprint), so it is not this record's.
    relation = item.get("relation")
    if not isinstance(relation, Mapping):
        return None
    targets = relation.get("is-preprint-of")
    if not isinstance(targets, list):
        return None
    for target in targets:
        if isinstance(target, Mapping) and target.get("id-type") == "doi":
            doi = normalize_doi(str(target.get("id") or ""))
            if doi:
                return doi
    return None


def _institution(item: Mapping[str, Any]) -> str | None:
    for institution in item_list(item, "institution"):
        if isinstance(institution, Mapping) and (name := _clean(item_text(institution, "name"))):
            return name
    return _clean(item_text(item, "group-title"))


# --- typed readers: every wrong shape names its field ----------------------------------------


def _clean(value: str | None) -> str | None:
    return markup_to_text(value) if value else None


def _strings(data: Mapping[str, Any], key: str) -> Iterator[str | None]:
    for number, value in enumerate(item_list(data, key), 1):
        if not isinstance(value, str):
            raise BadItem(f"{key} #{number} is a {type(value).__name__}, expected text")
        yield markup_to_text(value)


def _first(data: Mapping[str, Any], key: str) -> str | None:
    """The first non-empty string of a Crossref list field (title, container-title)."""
    return next((s for s in _strings(data, key) if s), None)
