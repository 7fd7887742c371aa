"""OpenAlex answers, read: ``/works`` listings and single works to Records (pure).

Field names follow the OpenAlex work object (https://developers.openalex.org/api-reference/works).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harvester.errors import ParseError
from harvester.records import Author, Identifiers, Record
from harvester.sources.base import MAX_RECORD_BYTES, ParseResult, parse_items
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
from harvester.sources.updates import openalex_updates
from harvester.text.fields import language_code, normalize_pages, partial_date, split_name
from harvester.text.identifiers import (
    normalize_arxiv,
    normalize_doi,
    normalize_orcid,
    normalize_pmcid,
    normalize_pmid,
)
from harvester.text.markup import markup_to_text

if TYPE_CHECKING:
    pass


SOURCE = "openalex"
_WORK_ID = re.compile(r"(?:^|/)(W\d+)$", re.I)

# OpenAlex work types (https://developers.openalex.org/api-reference/works, "type") are
# Crossref-like already; only "article" is renamed to the Record vocabulary.
_TYPES = {"article": "journal-article"}


def _where(url: str) -> str:
    return f"OpenAlex response from {url}" if url else "OpenAlex response"


def _read(body: bytes, url: str) -> dict[str, object]:
    """The JSON object of a response; ParseError for non-JSON bodies and API errors."""
    return _read_body(body, url)[0]


def _read_body(body: bytes, url: str) -> tuple[dict[str, object], JsonBody]:
    read = read_json(body, _where(url))
    data = expect_object(read.data, _where(url))
    # OpenAlex errors: {"error": "Invalid query parameters error.", "message": "…"}
    if "error" in data and "results" not in data and "id" not in data:
        message = " ".join(str(data.get(k)) for k in ("error", "message") if data.get(k))
        raise ParseError(f"{_where(url)}: OpenAlex error: {message or 'unspecified'}")
    return data, read


@dataclass(frozen=True, slots=True)
class _Listing:
    count: int | None
    per_page: int | None
    next_cursor: str | None
    results: int


def _listing_meta(body: bytes, url: str) -> _Listing:
    """What ``fetch`` needs for paging from a works listing's ``meta``."""
    data = _read(body, url)
    if "results" not in data:
        raise ParseError(_not_a_listing(data, url))
    try:
        meta = json_object(data.get("meta"), "meta") or {}
        return _Listing(
            count=json_int(meta.get("count"), "meta.count"),
            per_page=json_int(meta.get("per_page"), "meta.per_page"),
            next_cursor=json_text(meta.get("next_cursor"), "meta.next_cursor") or None,
            results=len(json_list(data["results"], "results")),
        )
    except UnexpectedValue as error:
        raise ParseError(f"{_where(url)}: {error}") from error


def _not_a_listing(data: Mapping[str, object], url: str) -> str:
    if "group_by" in data:
        # Decided: a group_by answer is counts, not works; reading it as "no records" would
        # hide a wrong request, so it is an error. harvester never asks for group_by.
        return f"{_where(url)}: not a works listing: a group_by response (counts per group)"
    return f"{_where(url)}: not a works listing: no 'results' (keys: {', '.join(sorted(data))})"


def parse_works(
    body: bytes, *, url: str = "", max_record_bytes: int = MAX_RECORD_BYTES
) -> ParseResult:
    """The records of a ``/works`` listing or of one ``/works/W…`` answer.

    A work that cannot be read (a wrong type, bytes that are not UTF-8, a number too long,
    over ``max_record_bytes``) is Skipped with the reason; the rest of the page is kept.
    ParseError for a body that is not JSON, an OpenAlex error, or not works at all.
    """
    data, read = _read_body(body, url)
    if "results" in data:
        try:
            works = json_list(data["results"], "results")
        except UnexpectedValue as error:
            raise ParseError(f"{_where(url)}: {error}") from error
    elif isinstance(data.get("id"), str) and _WORK_ID.search(str(data["id"])):
        works = [data]  # a single work: /works/W…
    else:
        raise ParseError(_not_a_listing(data, url))
    listing = "results" in data
    return parse_items(
        works,
        lambda position, work: parse_work(
            work, where=f"results[{position}]" if listing else "work"
        ),
        lambda work: _work_id(work.get("id")) if isinstance(work, dict) else None,
        skip=UnexpectedValue,
        screen=read.screen(max_record_bytes),
        max_record_bytes=max_record_bytes,
    )


def _work_id(value: object) -> str | None:
    match = _WORK_ID.search(value) if isinstance(value, str) else None
    return match.group(1).upper() if match else None


def parse_work(value: object, *, where: str = "work") -> Record:
    """One OpenAlex work as a Record; UnexpectedValue names the field that is wrong."""
    work = json_object(value, where)
    if work is None:
        raise UnexpectedValue(f"{where}: null instead of a work")
    openalex_url = json_text(work.get("id"), f"{where}.id")
    work_id = _work_id(openalex_url)
    ids = json_object(work.get("ids"), f"{where}.ids") or {}
    doi = normalize_doi(json_text(work.get("doi"), f"{where}.doi")) or normalize_doi(
        json_text(ids.get("doi"), f"{where}.ids.doi")
    )
    identifiers = Identifiers(
        doi=doi,
        pmid=normalize_pmid(json_text(ids.get("pmid"), f"{where}.ids.pmid", numbers=True)),
        pmcid=normalize_pmcid(json_text(ids.get("pmcid"), f"{where}.ids.pmcid", numbers=True)),
        # arXiv's DataCite DOIs (10.48550/arXiv.2101.00001) name the preprint.
        arxiv=normalize_arxiv(doi) if doi and doi.startswith("10.48550/arxiv.") else None,
        openalex=work_id,
    )
    title = json_text(work.get("title"), f"{where}.title") or json_text(
        work.get("display_name"), f"{where}.display_name"
    )
    primary = json_object(work.get("primary_location"), f"{where}.primary_location") or {}
    biblio = json_object(work.get("biblio"), f"{where}.biblio") or {}
    year = json_int(work.get("publication_year"), f"{where}.publication_year")
    published = json_date(json_text(work.get("publication_date"), f"{where}.publication_date"))
    return Record(
        source=SOURCE,
        source_id=work_id,
        ids=identifiers,
        title=markup_to_text(title),
        abstract=abstract_from_inverted_index(
            work.get("abstract_inverted_index"), f"{where}.abstract_inverted_index"
        ),
        authors=_authors(work.get("authorships"), f"{where}.authorships"),
        venue=_venue(work, primary, where),
        year=year if year is not None and 1000 <= year <= 9999 else None,
        volume=_text(biblio.get("volume"), f"{where}.biblio.volume"),
        issue=_text(biblio.get("issue"), f"{where}.biblio.issue"),
        pages=normalize_pages(
            _text(biblio.get("first_page"), f"{where}.biblio.first_page"),
            _text(biblio.get("last_page"), f"{where}.biblio.last_page"),
        ),
        published=published or partial_date(year),
        type=_type(work, primary, where),
        language=language_code(json_text(work.get("language"), f"{where}.language")),
        url=_text(primary.get("landing_page_url"), f"{where}.primary_location.landing_page_url")
        or openalex_url,
        keywords=_keywords(work, where),
        updates=openalex_updates(work),
    )


def abstract_from_inverted_index(value: object, where: str) -> str | None:
    """The abstract OpenAlex ships as ``{word: [positions]}``, written out in order.

    OpenAlex may not redistribute abstracts as text, so it sends this index instead
    (https://developers.openalex.org/api-reference/works, "abstract_inverted_index").
    Positions are sorted rather than used as list indexes, so a huge or sparse position
    cannot make a huge list; a position claimed twice keeps its first word.
    """
    index = json_object(value, where)
    if not index:
        return None
    placed: dict[int, str] = {}
    for word, positions in index.items():
        for position in json_list(positions, f"{where}[{word!r}]"):
            if not isinstance(position, int) or isinstance(position, bool) or position < 0:
                raise UnexpectedValue(f"{where}[{word!r}]: positions must be whole numbers ≥ 0")
            placed.setdefault(position, word)
    # Publishers' markup survives as words ("<p>", "&amp;"): removed like any markup.
    return markup_to_text(" ".join(placed[p] for p in sorted(placed)))


def _text(value: object, where: str) -> str | None:
    return markup_to_text(json_text(value, where, numbers=True))


def _authors(value: object, where: str) -> tuple[Author, ...]:
    authors: list[Author] = []
    for position, item in enumerate(json_list(value, where)):
        here = f"{where}[{position}]"
        authorship = json_object(item, here) or {}
        person = json_object(authorship.get("author"), f"{here}.author") or {}
        name = json_text(person.get("display_name"), f"{here}.author.display_name") or (
            json_text(authorship.get("raw_author_name"), f"{here}.raw_author_name")
        )
        family, given = split_name(markup_to_text(name))
        if family is None and given is None:
            continue
        orcid = normalize_orcid(json_text(person.get("orcid"), f"{here}.author.orcid"))
        authors.append(Author(family=family, given=given, orcid=orcid))
    return tuple(authors)


def _source_of(location: Mapping[str, object], where: str) -> dict[str, object]:
    return json_object(location.get("source"), f"{where}.source") or {}


def _venue(work: Mapping[str, object], primary: Mapping[str, object], where: str) -> str | None:
    source = _source_of(primary, f"{where}.primary_location")
    # host_venue is the pre-2023 form of primary_location.source, still in old recordings.
    host = json_object(work.get("host_venue"), f"{where}.host_venue") or {}
    for value, here in (
        (source.get("display_name"), "primary_location.source.display_name"),
        (host.get("display_name"), "host_venue.display_name"),
        (primary.get("raw_source_name"), "primary_location.raw_source_name"),
    ):
        venue = markup_to_text(json_text(value, f"{where}.{here}"))
        # raw_source_name is sometimes the repository URL of a thesis PDF, not a name.
        if venue and not venue.lower().startswith(("http://", "https://")):
            return venue
    return None


def _type(work: Mapping[str, object], primary: Mapping[str, object], where: str) -> str | None:
    kind = json_text(work.get("type"), f"{where}.type")
    kind = kind.strip().lower() if kind else None
    if not kind:
        return None
    source = _source_of(primary, f"{where}.primary_location")
    source_type = json_text(source.get("type"), f"{where}.primary_location.source.type")
    if kind == "article" and source_type == "conference":
        return "proceedings-article"  # OpenAlex calls conference papers articles
    return _TYPES.get(kind, kind)


def _keywords(work: Mapping[str, object], where: str) -> tuple[str, ...]:
    """Display names of keywords, topics, concepts and MeSH headings, without repeats."""
    found: dict[str, str] = {}
    for key, name_key in (
        ("keywords", "display_name"),
        ("topics", "display_name"),
        ("concepts", "display_name"),
        ("mesh", "descriptor_name"),
    ):
        for position, item in enumerate(json_list(work.get(key), f"{where}.{key}")):
            here = f"{where}.{key}[{position}]"
            entry = json_object(item, here) or {}
            name = markup_to_text(json_text(entry.get(name_key), f"{here}.{name_key}"))
            if name:
                found.setdefault(name.casefold(), name)
    return tuple(found.values())
