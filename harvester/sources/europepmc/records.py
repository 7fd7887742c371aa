"""Europe PMC search responses, read: JSON (core, lite) and XML (lite, core) to Records (pure).

::

    search?format=json&resultType=core -> parse_search -> ParseResult (Records, Skipped)
    search?format=json&resultType=lite -> parse_search (no abstract, authors from authorString)
    search?format=xml                  -> the same, from <responseWrapper>
    search?resultType=idlist, format=dc -> ParseError (see below)

Field names follow the Europe PMC REST API (https://europepmc.org/RestfulWebService) and
its JSON/XML result schema. Two shapes are refused on purpose, with a ParseError that says
what to request instead: ``resultType=idlist`` carries only identifiers (no title, abstract
or keywords, so a topic cannot be matched locally: it is a request for ids, not records), and
Dublin Core (``format=dc``) flattens journal, volume and pages into a citation string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from harvester.errors import ParseError
from harvester.records import Identifiers, Record, Section, join_sections
from harvester.sources.base import (
    MAX_RECORD_BYTES,
    ParseResult,
    Skipped,
    cut_records,
    is_utf8,
    parse_items,
)
from harvester.sources.envelope import (
    BadItem,
    JsonBody,
    expect_object,
    item_list,
    item_object,
    item_text,
    read_json,
)
from harvester.sources.europepmc.fields import (
    _authors,
    _title_text,
)
from harvester.text.fields import (
    language_code,
    normalize_pages,
    parse_medline_date,
    partial_date,
)
from harvester.text.identifiers import (
    normalize_doi,
    normalize_pmcid,
    normalize_pmid,
)
from harvester.text.markup import markup_sections, markup_to_text

SOURCE = "europepmc"
ARTICLE_URL = "https://europepmc.org/article/{source}/{id}"

# Europe PMC "source" codes whose records are not journal articles whatever pubType says
# (https://europepmc.org/Help#contentsources): PPR preprints, PAT patents, ETH theses.
_SOURCE_TYPES = {"PPR": "preprint", "PAT": "patent", "ETH": "thesis"}
# pubType (lower case) -> Record.type, first match in this order wins; the same vocabulary
# as PubMed's publication types, which Europe PMC repeats for MEDLINE records.
_TYPES: tuple[tuple[str, str], ...] = (
    ("retraction of publication", "retraction"),
    ("retraction notice", "retraction"),
    ("published erratum", "erratum"),
    ("correction", "erratum"),
    ("preprint", "preprint"),
    ("editorial", "editorial"),
    ("letter", "letter"),
    ("systematic review", "review"),
    ("review-article", "review"),
    ("review", "review"),
)
_DEFAULT_TYPE = "journal-article"
_ID_ONLY_KEYS = frozenset({"id", "source", "pmid", "pmcid", "doi", "fullTextIdList"})


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """What fetch needs from a search answer to page on."""

    hit_count: int | None
    next_cursor: str | None
    results: int


def read_header(body: bytes, *, url: str = "") -> SearchHeader:
    """hitCount, nextCursorMark and the number of results of a JSON search answer."""
    data = _read_json(body, url).data
    results = _result_list(data, url)
    cursor = data.get("nextCursorMark")
    hits = data.get("hitCount")
    return SearchHeader(
        hit_count=hits if isinstance(hits, int) and not isinstance(hits, bool) else None,
        next_cursor=cursor if isinstance(cursor, str) and cursor else None,
        results=len(results),
    )


def parse_search(
    body: bytes, *, url: str = "", max_record_bytes: int = MAX_RECORD_BYTES
) -> ParseResult:
    """Records of one search answer (JSON or XML; resultType core or lite).

    Raises ParseError for a malformed or truncated body, an error answer, an idlist or a
    Dublin Core answer. A result that cannot be read (a wrong type, bytes that are not
    UTF-8, a number too long, over ``max_record_bytes``) becomes a Skipped.
    """
    text = body.lstrip()
    cut: tuple[Skipped, ...] = ()
    screen = None
    if text.startswith(b"<"):
        if len(body) > max_record_bytes or not is_utf8(body):
            body, cut = cut_records(
                body,
                _XML_RESULT,
                _XML_RESULT_END,
                _xml_source_id,
                max_record_bytes=max_record_bytes,
                check_bytes=True,
            )
        try:
            results, result_type = _xml_results(body, url)
        except RecursionError as error:  # elements nested deeper than Python's recursion
            raise ParseError(f"{_where(url)}: XML nested too deeply to read") from error
    else:
        read = _read_json(body, url)
        data = read.data
        screen = read.screen(max_record_bytes)
        results = _result_list(data, url)
        request = data.get("request")
        result_type = request.get("resultType") if isinstance(request, Mapping) else None
    if (isinstance(result_type, str) and result_type.lower() == "idlist") or (
        results and all(isinstance(r, Mapping) and set(r) <= _ID_ONLY_KEYS for r in results)
    ):
        raise ParseError(
            f"{_where(url)}: resultType=idlist has identifiers only (no title or abstract to "
            "match a topic on); request resultType=core"
        )
    # The typed readers below name the field for every shape they expect; catching
    # TypeError, ValueError and AttributeError too keeps a shape nobody foresaw from costing
    # the rest of the page.
    parsed = parse_items(
        results,
        lambda _index, item: _record(item),
        _source_id,
        skip=BadItem,
        unforeseen=(TypeError, ValueError, AttributeError),
        objects_only=True,
        noun="result",
        screen=screen,
        max_record_bytes=max_record_bytes,
    )
    return ParseResult(records=parsed.records, skipped=cut + parsed.skipped) if cut else parsed


# --- envelopes -------------------------------------------------------------------------------


def _where(url: str) -> str:
    return f"Europe PMC response {url}" if url else "Europe PMC response"


def _read_json(body: bytes, url: str) -> JsonBody:
    try:
        read = read_json(body, _where(url), problem="not JSON")
    except ParseError as e:
        snippet = " ".join(body[:120].decode("utf-8", "replace").split())
        raise ParseError(f"{e}: {snippet!r}") from e
    expect_object(read.data, _where(url))
    return read


_XML_RESULT = re.compile(rb"<result[\s>]")
_XML_RESULT_END = re.compile(rb"</result>")
_XML_ID = re.compile(rb"<source>([A-Z]+)</source>|<id>([^<]{1,40})</id>")


def _xml_source_id(record: bytes) -> str | None:
    """``SOURCE:id`` of one XML result's bytes, as :func:`_source_id` gives it from JSON."""
    found: dict[str, str] = {}
    for match in _XML_ID.finditer(record):
        key = "source" if match.group(1) else "id"
        found.setdefault(key, (match.group(1) or match.group(2)).decode("utf-8", "replace"))
    if "source" in found and "id" in found:
        return f"{found['source']}:{found['id']}"
    return None


def _result_list(data: Mapping[str, Any], url: str) -> list[Any]:
    if "resultList" not in data:
        # Error answers carry errCode/errMsg instead of results.
        message = data.get("errMsg") or data.get("message") or data.get("error")
        detail = f": {message}" if message else f" (keys: {', '.join(sorted(data)) or 'none'})"
        raise ParseError(f"{_where(url)}: no resultList{detail}")
    result_list = data["resultList"]
    if not isinstance(result_list, Mapping):
        raise ParseError(f"{_where(url)}: resultList is a {type(result_list).__name__}")
    results = result_list.get("result", [])
    if not isinstance(results, list):
        raise ParseError(f"{_where(url)}: resultList.result is a {type(results).__name__}")
    return results


def _xml_results(body: bytes, url: str) -> tuple[list[Any], str | None]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as e:
        raise ParseError(f"{_where(url)}: malformed or truncated XML: {e}") from e
    if root.tag != "responseWrapper":
        raise ParseError(f"{_where(url)}: expected <responseWrapper>, got <{root.tag}>")
    if root.find("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF") is not None:
        raise ParseError(
            f"{_where(url)}: Dublin Core (format=dc) flattens journal, volume and pages into "
            "a citation string; request format=json"
        )
    result_list = root.find("resultList")
    if result_list is None:
        message = root.findtext("errMsg") or "no <resultList>"
        raise ParseError(f"{_where(url)}: {message}")
    return [_xml_value(r) for r in result_list.iterchildren("result")], root.findtext(
        "request/resultType"
    )


def _xml_value(element: Any) -> Any:
    """An XML element in the shape Europe PMC's JSON gives the same data."""
    children = [c for c in element.iterchildren() if isinstance(c.tag, str)]
    if not children:
        if element.attrib:  # <authorId type="ORCID">0000-…</authorId>
            return {**dict(element.attrib), "value": element.text}
        return element.text
    value: dict[str, Any] = {}
    for child in children:
        item = _xml_value(child)
        # Europe PMC's JSON makes the children of every "…List" element a list
        # (authorList.author, pubTypeList.pubType); XML repeats the element instead.
        if str(element.tag).endswith("List"):
            value.setdefault(child.tag, []).append(item)
        else:
            value[child.tag] = item
    return value


# --- one result ------------------------------------------------------------------------------


def _source_id(result: Any) -> str | None:
    if not isinstance(result, Mapping):
        return None
    source, ident = result.get("source"), result.get("id")
    if isinstance(source, str) and isinstance(ident, str | int) and not isinstance(ident, bool):
        return f"{source}:{ident}"
    return None


def _record(result: Mapping[str, Any]) -> Record:
    source = item_text(result, "source")
    ident = item_text(result, "id")
    if source is None or ident is None:
        raise BadItem("result has no source or id")
    journal_info = item_object(result, "journalInfo")
    journal = item_object(journal_info, "journal") if journal_info else None
    sections = _sections(result)
    year, published = _dates(result, journal_info)
    book = item_object(result, "bookOrReportDetails")
    venue = (
        _title_text(journal, "title")
        if journal
        else _title_text(result, "journalTitle") or (item_text(book, "publisher") if book else None)
    )
    return Record(
        source=SOURCE,
        source_id=f"{source}:{ident}",
        ids=_ids(result, source),
        title=_title_text(result, "title"),
        abstract=join_sections(sections),
        abstract_sections=sections,
        authors=_authors(result),
        venue=venue,
        year=year,
        volume=item_text(journal_info, "volume")
        if journal_info
        else item_text(result, "journalVolume"),
        issue=item_text(journal_info, "issue") if journal_info else item_text(result, "issue"),
        pages=normalize_pages(None, None, item_text(result, "pageInfo")),
        published=published,
        type=_record_type(source, _pub_types(result)),
        language=language_code(item_text(result, "language")),
        url=ARTICLE_URL.format(source=source, id=ident),
        keywords=_keywords(result),
    )


def _ids(result: Mapping[str, Any], source: str) -> Identifiers:
    pmcid = item_text(result, "pmcid")
    if pmcid is None and source == "PMC":
        pmcid = item_text(result, "id")
    return Identifiers(
        doi=normalize_doi(item_text(result, "doi")),
        pmid=normalize_pmid(item_text(result, "pmid")),
        pmcid=normalize_pmcid(pmcid),
    )


def _sections(result: Mapping[str, Any]) -> tuple[Section, ...]:
    # abstractText is HTML: structured abstracts use <h4>Background</h4> or <b>…</b> labels.
    return markup_sections(item_text(result, "abstractText"))


def _dates(
    result: Mapping[str, Any], journal_info: Mapping[str, Any] | None
) -> tuple[int | None, str | None]:
    published = None
    if journal_info is not None:
        # dateOfPublication ("2025 Dec") keeps the precision the journal gave;
        # printPublicationDate ("2025-12-01") pads it with day 01, so it comes second.
        _, published = parse_medline_date(item_text(journal_info, "dateOfPublication"))
        published = published or _iso_date(item_text(journal_info, "printPublicationDate"))
    published = (
        published
        or _iso_date(item_text(result, "electronicPublicationDate"))
        or _iso_date(item_text(result, "firstPublicationDate"))
    )
    year_text = (
        item_text(journal_info, "yearOfPublication") if journal_info else None
    ) or item_text(result, "pubYear")
    year = int(year_text) if year_text and year_text.isdigit() else None
    if year is None and published is not None:
        year = int(published[:4])
    return year, published


def _iso_date(value: str | None) -> str | None:
    if not value:
        return None
    year, _, rest = value.partition("-")
    month, _, day = rest.partition("-")
    return partial_date(year, month or None, day or None)


def _pub_types(result: Mapping[str, Any]) -> list[str]:
    type_list = item_object(result, "pubTypeList")
    if type_list is not None:
        return [
            t for t in item_list(type_list, "pubType", "pubTypeList.pubType") if isinstance(t, str)
        ]
    # lite: "research-article; journal article"
    return [t.strip() for t in (item_text(result, "pubType") or "").split(";") if t.strip()]


def _record_type(source: str, pub_types: Iterable[str]) -> str:
    if source in _SOURCE_TYPES:
        return _SOURCE_TYPES[source]
    present = {t.lower() for t in pub_types}
    return next((kind for name, kind in _TYPES if name in present), _DEFAULT_TYPE)


def _keywords(result: Mapping[str, Any]) -> tuple[str, ...]:
    words: list[Any] = []
    keyword_list = item_object(result, "keywordList")
    if keyword_list is not None:
        words += [k for k in item_list(keyword_list, "keyword", "keywordList.keyword")]
    mesh = item_object(result, "meshHeadingList")
    if mesh is not None:
        for heading in item_list(mesh, "meshHeading", "meshHeadingList.meshHeading"):
            if isinstance(heading, Mapping):
                words.append(heading.get("descriptorName"))
    cleaned = (_clean(w) for w in words if isinstance(w, str))
    return tuple(dict.fromkeys(w for w in cleaned if w))


def _clean(value: str) -> str:
    return markup_to_text(value) or ""
